//! The blog connector on its own fixtures (RSS 2.0, Atom, JSON Feed, WXR), on the real feeds and
//! WordPress export in the shared data, and over HTTP against a local server that answers 304
//! when the validators match.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use trellis_connector_blog::{BlogConnector, Config, SlotState, slot_of};
use trellis_plugin_sdk::egress::{self, EgressPolicy};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The shared real data, or `None` (with a message) when it is not there.
fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if root.join("feeds").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "skipped: the shared data is not at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        None
    }
}

fn config(feeds: &[String], batch_size: usize) -> Config {
    serde_json::from_value(serde_json::json!({"feeds": feeds, "batch_size": batch_size})).unwrap()
}

#[derive(Debug, Default)]
struct Read {
    people: Vec<pb::Person>,
    conversations: Vec<pb::Conversation>,
    posts: Vec<pb::Post>,
    assets: Vec<pb::Asset>,
    checkpoints: usize,
    state: State,
}

impl Read {
    fn conversation(&self, id: &str) -> &pb::Conversation {
        self.conversations
            .iter()
            .find(|c| c.r#ref.as_ref().unwrap().external_id == id)
            .unwrap_or_else(|| panic!("no conversation {id}"))
    }
    fn person(&self, id: &str) -> &pb::Person {
        self.people
            .iter()
            .find(|p| p.r#ref.as_ref().unwrap().external_id == id)
            .unwrap_or_else(|| panic!("no person {id}"))
    }
    fn records(&self) -> usize {
        self.people.len() + self.conversations.len() + self.posts.len() + self.assets.len()
    }
}

fn read(config: Config, state: State) -> Result<Read, ConnectorError> {
    let mut reader = BlogConnector.open_read(config, state.clone(), CancelToken::new())?;
    let mut out = Read {
        state,
        ..Read::default()
    };
    loop {
        let batch = reader.next_batch()?;
        let proto = batch.into_proto();
        for item in proto.items {
            match item.item.unwrap() {
                batch_item::Item::Record(record) => match record.payload.unwrap() {
                    record::Payload::Person(p) => out.people.push(p),
                    record::Payload::Conversation(c) => out.conversations.push(c),
                    record::Payload::Post(p) => out.posts.push(p),
                    record::Payload::Asset(a) => out.assets.push(a),
                },
                batch_item::Item::Checkpoint(checkpoint) => {
                    out.checkpoints += 1;
                    out.state.set(&checkpoint.stream, &checkpoint.state_json);
                }
            }
        }
        if proto.end {
            return Ok(out);
        }
    }
}

fn millis(stamp: &Option<records::Timestamp>) -> i64 {
    records::millis_of(stamp.as_ref().expect("a timestamp"))
}

#[test]
fn rss_atom_and_json_feed_fixtures_map_to_conversations_and_people() {
    let feeds = vec![
        fixture("rss2.xml"),
        fixture("atom.xml"),
        fixture("feed.json"),
    ];
    let read = read(config(&feeds, 2), State::new()).unwrap();
    assert_eq!(read.conversations.len(), 7);
    assert!(read.posts.is_empty());

    let onboarding = read.conversation("entry:https://notes.trellis.invalid/?p=1");
    assert_eq!(onboarding.title, "Onboarding new members");
    assert_eq!(onboarding.body, "How we welcome people & keep them.");
    assert_eq!(onboarding.url, "https://notes.trellis.invalid/onboarding");
    assert_eq!(onboarding.tags, ["community", "onboarding"]);
    assert_eq!(onboarding.platform, pb::PlatformKind::Blog as i32);
    assert_eq!(onboarding.author, "author:name:ada lovelace");
    assert_eq!(millis(&onboarding.created_at), 1_714_986_000_000);
    assert_eq!(
        read.person("author:name:ada lovelace").display_name,
        "Ada Lovelace"
    );

    let streaming = read.conversation("entry:urn:uuid:7f0c5c0e-0000-4000-8000-000000000010");
    assert_eq!(streaming.title, "Streaming parsers");
    assert_eq!(streaming.body, "Never hold a whole dump in memory.");
    assert_eq!(streaming.tags, ["Rust"]);
    assert_eq!(streaming.author, "author:https://eng.trellis.invalid/linus");
    assert!(millis(&streaming.last_activity_at) > millis(&streaming.created_at));
    let margaret = read.conversation("entry:urn:uuid:7f0c5c0e-0000-4000-8000-000000000011");
    assert_eq!(margaret.body, "A checkpoint covers the records before it.");
    let person = read.person(&margaret.author);
    let identity = &person.identities[0];
    assert_eq!(identity.platform, "blog");
    assert_eq!(identity.email_sha256.len(), 64, "the e-mail is hashed");
    assert!(!format!("{person:?}").to_lowercase().contains("margaret@"));

    let digest = read.conversation("entry:digest-1");
    assert_eq!(digest.body, "Three new guides.");
    assert_eq!(digest.tags, ["digest", "guides"]);
    assert_eq!(digest.author, "author:https://digest.trellis.invalid/bot");
    let untitled = read.conversation("entry:digest-2");
    assert_eq!(untitled.body, "A quiet week: one release, two meet-ups.");

    // The final state reads nothing new.
    let again = self::read(config(&feeds, 2), read.state.clone()).unwrap();
    assert_eq!(again.records(), 0);
    // Each feed keeps its newest entry.
    let rss: SlotState = read.state.get(&slot_of(&feeds[0])).unwrap().unwrap();
    assert_eq!(rss.newest.unwrap().id, "https://notes.trellis.invalid/?p=3");
}

#[test]
fn a_feed_that_gains_an_entry_yields_only_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    let original = std::fs::read_to_string(fixture("rss2.xml")).unwrap();
    std::fs::write(&path, &original).unwrap();
    let feeds = vec![path.display().to_string()];
    let first = read(config(&feeds, 100), State::new()).unwrap();
    assert_eq!(first.conversations.len(), 3);
    let newer = original.replace(
        "<item>",
        "<item><title>Fresh</title><guid>fresh-1</guid><pubDate>Thu, 09 May 2024 08:00:00 GMT</pubDate><description>new</description></item><item>",
    );
    std::fs::write(&path, newer).unwrap();
    let second = read(config(&feeds, 100), first.state).unwrap();
    let ids: Vec<_> = second
        .conversations
        .iter()
        .map(|c| c.r#ref.as_ref().unwrap().external_id.clone())
        .collect();
    assert_eq!(ids, ["entry:fresh-1"]);
}

#[test]
fn the_wordpress_fixture_maps_posts_pages_comments_attachments_and_authors() {
    let read = read(config(&[fixture("wordpress.xml")], 2), State::new()).unwrap();
    // Two authors and one visiting commenter.
    assert_eq!(read.people.len(), 3, "{:?}", read.people);
    let ada = read.person("wp:author:ada");
    assert_eq!(ada.display_name, "Ada L.");
    assert!(ada.member);
    assert_eq!(ada.identities[0].handle, "ada");
    assert_eq!(
        ada.identities[0].email_sha256,
        sha256_hex("ada@trellis.invalid")
    );
    assert_eq!(read.person("wp:author:grace").display_name, "Grace Hopper");

    assert_eq!(
        read.conversations.len(),
        2,
        "a post and a page; the menu item is skipped"
    );
    let post = read.conversation("wp:post:10");
    assert_eq!(post.title, "Why communities & strategy meet");
    assert_eq!(post.body, "Communities grow where people find help.");
    assert_eq!(post.tags, ["Community", "strategy"]);
    assert_eq!(post.author, "wp:author:ada");
    assert!(post.open);
    assert_eq!(post.url, "https://blog.trellis.invalid/why");
    assert_eq!(millis(&post.created_at), 1_714_986_000_000);
    // The last activity is the newest comment.
    assert_eq!(millis(&post.last_activity_at), 1_715_166_000_000);
    assert!(!read.conversation("wp:post:11").open);

    assert_eq!(read.posts.len(), 2, "spam is skipped");
    let reply = read
        .posts
        .iter()
        .find(|p| p.r#ref.as_ref().unwrap().external_id == "wp:comment:101")
        .unwrap();
    assert_eq!(reply.parent, "wp:comment:100");
    assert_eq!(
        reply.author, "wp:author:grace",
        "a site user's comment is theirs"
    );
    assert_eq!(reply.conversation, "wp:post:10");
    let first = &read.posts[0];
    assert_eq!(first.text, "Great post!");
    assert_eq!(first.author, "wp:commenter:url:https://one.visitor.invalid");

    assert_eq!(read.assets.len(), 1);
    assert_eq!(
        read.assets[0].url,
        "https://blog.trellis.invalid/files/diagram.png"
    );

    let again = self::read(config(&[fixture("wordpress.xml")], 2), read.state).unwrap();
    assert_eq!(again.records(), 0);
}

/// The sha256 the connector must send for an e-mail, computed here independently.
fn sha256_hex(value: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn a_new_wordpress_export_yields_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.xml");
    let original = std::fs::read_to_string(fixture("wordpress.xml")).unwrap();
    std::fs::write(&path, &original).unwrap();
    let feeds = vec![path.display().to_string()];
    let first = read(config(&feeds, 100), State::new()).unwrap();
    assert_eq!(first.posts.len(), 2);
    // A later export: one more comment on post 10, and a few bytes more.
    let comment = "<wp:comment><wp:comment_id>103</wp:comment_id><wp:comment_author>Visitor Two</wp:comment_author><wp:comment_date_gmt>2024-06-01 10:00:00</wp:comment_date_gmt><wp:comment_content>Late reply</wp:comment_content><wp:comment_approved>1</wp:comment_approved><wp:comment_parent>0</wp:comment_parent><wp:comment_user_id>0</wp:comment_user_id></wp:comment>";
    let newer = original.replacen("<wp:comment>", &format!("{comment}<wp:comment>"), 1);
    std::fs::write(&path, newer).unwrap();
    let second = read(config(&feeds, 100), first.state).unwrap();
    assert_eq!(second.conversations.len(), 1);
    assert_eq!(second.posts.len(), 1);
    assert_eq!(second.posts[0].text, "Late reply");
    assert!(second.assets.is_empty());
}

#[test]
fn a_broken_feed_is_a_config_error_naming_it() {
    let feeds = vec![fixture("rss2.xml"), fixture("broken.xml")];
    let error = read(config(&feeds, 100), State::new()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.field.as_deref(), Some("feeds[1]"));
    assert!(
        error.message.contains("is not a feed that can be read"),
        "{error}"
    );
    let checked = BlogConnector.check(&config(&feeds, 100)).unwrap_err();
    assert_eq!(checked.field.as_deref(), Some("feeds[1]"));
    let missing = BlogConnector
        .check(&config(&["/nonexistent/feed.xml".to_owned()], 100))
        .unwrap_err();
    assert!(
        missing.to_string().contains("feeds[0]: cannot open"),
        "{missing}"
    );
    let scheme = BlogConnector
        .check(&config(&["ftp://x.invalid/feed".to_owned()], 100))
        .unwrap_err();
    assert!(
        scheme
            .message
            .contains("neither a file path nor an http(s) URL"),
        "{scheme}"
    );
}

#[test]
fn every_real_feed_is_read_or_refused_with_a_clear_error() {
    let Some(data) = shared_data() else { return };
    let mut read_ok = 0;
    let mut refused = Vec::new();
    let mut entries = 0;
    for folder in [
        "feeds/rsparser",
        "feeds/feed-rs/atom",
        "feeds/feed-rs/jsonfeed",
        "feeds/feed-rs/rss0",
        "feeds/feed-rs/rss1",
        "feeds/feed-rs/rss2",
        "feeds/feed-rs/xml",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| !path.display().to_string().ends_with(".serde.json"))
            .collect();
        files.sort();
        for path in files {
            let feeds = vec![path.display().to_string()];
            match read(config(&feeds, 50), State::new()) {
                Ok(result) => {
                    read_ok += 1;
                    entries += result.conversations.len();
                    for conversation in &result.conversations {
                        assert!(!conversation.title.is_empty() || !conversation.body.is_empty());
                        assert!(conversation.r#ref.as_ref().unwrap().external_id.len() <= 256);
                    }
                    let again = read(config(&feeds, 50), result.state).unwrap();
                    assert_eq!(again.records(), 0, "{}", path.display());
                }
                Err(error) => {
                    assert_eq!(error.kind, ErrorKind::Config, "{}: {error}", path.display());
                    assert_eq!(error.field.as_deref(), Some("feeds[0]"));
                    refused.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    println!("{read_ok} feeds read ({entries} entries); refused: {refused:?}");
    // The HTML pages and OPML subscription lists of rsparser are not feeds.
    for name in ["DaringFireball.html", "Subs.opml"] {
        assert!(
            refused.iter().any(|r| r == name),
            "{name} should be refused"
        );
    }
    assert!(read_ok >= 80, "{read_ok}");
}

#[test]
fn real_feeds_map_exactly() {
    let Some(data) = shared_data() else { return };
    let feed = data
        .join("feeds/rsparser/DaringFireball.json")
        .display()
        .to_string();
    let result = read(config(&[feed], 100), State::new()).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("feeds/rsparser/DaringFireball.json")).unwrap(),
    )
    .unwrap();
    let items = raw["items"].as_array().unwrap();
    assert_eq!(result.conversations.len(), items.len());
    let first = &items[0];
    let conversation = result.conversation(&format!("entry:{}", first["id"].as_str().unwrap()));
    assert_eq!(conversation.title, first["title"].as_str().unwrap().trim());
    assert_eq!(conversation.url, first["url"].as_str().unwrap());
}

#[test]
fn the_real_wordpress_export_has_its_items_comments_and_authors() {
    let Some(data) = shared_data() else { return };
    let export = data
        .join("wordpress/themeunittestdata.wordpress.xml")
        .display()
        .to_string();
    let checked = BlogConnector
        .check(&config(std::slice::from_ref(&export), 100))
        .unwrap();
    assert!(
        checked.contains("2 authors, 186 items, 33 comments"),
        "{checked}"
    );
    let result = read(config(std::slice::from_ref(&export), 25), State::new()).unwrap();
    // 186 items: 58 posts and 21 pages (conversations), 37 attachments (assets), 70 menu items.
    assert_eq!(result.conversations.len(), 79);
    assert_eq!(result.assets.len(), 37);
    assert_eq!(result.posts.len(), 33);
    let authors: Vec<_> = result.people.iter().filter(|p| p.member).collect();
    let mut logins: Vec<_> = authors
        .iter()
        .map(|p| p.identities[0].handle.clone())
        .collect();
    logins.sort();
    logins.dedup();
    assert_eq!(logins, ["themedemos", "themereviewteam"]);
    let comment = result
        .posts
        .iter()
        .find(|p| p.r#ref.as_ref().unwrap().external_id == "wp:comment:2")
        .unwrap();
    assert_eq!(comment.text, "This test post needs a comment.");
    let replies = result.posts.iter().filter(|p| !p.parent.is_empty()).count();
    assert!(replies >= 10, "{replies}");
    let again = read(config(&[export], 25), result.state).unwrap();
    assert_eq!(again.records(), 0);
}

/// A local HTTP server that serves one real feed with an ETag and Last-Modified, answers 304
/// when the request's validators match, and answers 429 and 500 on their own paths, a JSON
/// document that is no feed on `/internal.json` and a redirect to a cloud metadata address on
/// `/moved.xml`.
struct Server {
    url: String,
    /// `127.0.0.1:port`, what the tests allow.
    address: String,
    full: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

/// What a server a source should not reach answers: it must never appear in an error.
const PEER_SECRET: &str = "internal-admin-token-93be1";

impl Server {
    /// The policy that lets connectors reach this server, and only it, while the guard lives.
    fn allowed(&self) -> egress::PolicyGuard {
        egress::enter(EgressPolicy::allowing([self.address.clone()]))
    }
}

fn serve(body: Vec<u8>) -> Server {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let address = server.server_addr().to_ip().unwrap();
    let url = format!("http://{address}");
    let moved = "http://169.254.169.254/latest/meta-data/";
    let full = Arc::new(AtomicUsize::new(0));
    let not_modified = Arc::new(AtomicUsize::new(0));
    let (full_count, not_modified_count) = (full.clone(), not_modified.clone());
    std::thread::spawn(move || {
        let etag = "\"v1\"";
        let modified = "Wed, 08 May 2024 12:00:00 GMT";
        for request in server.incoming_requests() {
            let header = |name: &'static str| {
                request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv(name))
                    .map(|h| h.value.as_str().to_owned())
            };
            let response = match request.url() {
                "/limited.xml" => tiny_http::Response::from_string("slow down")
                    .with_status_code(429)
                    .with_header("Retry-After: 7".parse::<tiny_http::Header>().unwrap()),
                "/broken.xml" => {
                    tiny_http::Response::from_string(format!("stack trace: {PEER_SECRET}"))
                        .with_status_code(500)
                }
                "/internal.json" => tiny_http::Response::from_string(format!(
                    r#"{{"version": "{PEER_SECRET}", "items": []}}"#
                )),
                "/moved.xml" => tiny_http::Response::from_string("moved")
                    .with_status_code(302)
                    .with_header(
                        tiny_http::Header::from_bytes("Location", moved.as_bytes()).unwrap(),
                    ),
                "/missing.xml" => tiny_http::Response::from_string("no").with_status_code(404),
                _ if header("If-None-Match").as_deref() == Some(etag)
                    || header("If-Modified-Since").as_deref() == Some(modified) =>
                {
                    not_modified_count.fetch_add(1, Ordering::SeqCst);
                    tiny_http::Response::from_data(Vec::new()).with_status_code(304)
                }
                _ => {
                    full_count.fetch_add(1, Ordering::SeqCst);
                    tiny_http::Response::from_data(body.clone())
                        .with_header(
                            format!("ETag: {etag}")
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        )
                        .with_header(
                            format!("Last-Modified: {modified}")
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        )
                }
            };
            let _ = request.respond(response);
        }
    });
    Server {
        url,
        address: address.to_string(),
        full,
        not_modified,
    }
}

fn real_or_fixture_feed() -> Vec<u8> {
    match shared_data() {
        Some(data) => std::fs::read(data.join("feeds/rsparser/DaringFireball.rss")).unwrap(),
        None => std::fs::read(fixture("rss2.xml")).unwrap(),
    }
}

#[test]
fn an_unchanged_feed_over_http_costs_a_304() {
    let body = real_or_fixture_feed();
    let server = serve(body.clone());
    let _allowed = server.allowed();
    let feeds = vec![format!("{}/feed.xml", server.url)];
    let first = read(config(&feeds, 10), State::new()).unwrap();
    assert!(!first.conversations.is_empty());
    assert_eq!(server.full.load(Ordering::SeqCst), 1);
    let saved: SlotState = first.state.get(&slot_of(&feeds[0])).unwrap().unwrap();
    assert_eq!(saved.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        saved.last_modified.as_deref(),
        Some("Wed, 08 May 2024 12:00:00 GMT")
    );

    let second = read(config(&feeds, 10), first.state.clone()).unwrap();
    assert_eq!(second.records(), 0);
    assert_eq!(second.checkpoints, 1);
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(server.full.load(Ordering::SeqCst), 1, "no second download");

    // The same entries come from the file and the URL.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    std::fs::write(&path, &body).unwrap();
    let from_file = read(config(&[path.display().to_string()], 10), State::new()).unwrap();
    assert_eq!(from_file.conversations, first.conversations);

    // Validators are kept only once the feed is done: a resume from the middle downloads again.
    let mut middle = BTreeMap::new();
    let mut reader = BlogConnector
        .open_read(config(&feeds, 1), State::new(), CancelToken::new())
        .unwrap();
    let batch = reader.next_batch().unwrap().into_proto();
    for item in batch.items {
        if let Some(batch_item::Item::Checkpoint(checkpoint)) = item.item {
            middle.insert(checkpoint.stream, checkpoint.state_json);
        }
    }
    let state_json = middle.get(&slot_of(&feeds[0])).unwrap();
    assert!(!state_json.contains("etag"), "{state_json}");
}

#[test]
fn http_errors_are_typed() {
    let server = serve(real_or_fixture_feed());
    let _allowed = server.allowed();
    let error = read(
        config(&[format!("{}/limited.xml", server.url)], 10),
        State::new(),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(std::time::Duration::from_secs(7)));
    let error = read(
        config(&[format!("{}/broken.xml", server.url)], 10),
        State::new(),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(error.message.contains("answered 500"), "{error}");
    assert!(!error.to_string().contains(PEER_SECRET), "{error}");
    let error = read(
        config(&[format!("{}/missing.xml", server.url)], 10),
        State::new(),
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("answered 404"), "{error}");
}

/// The issue this guards against: a source pointing at `http://127.0.0.1:PORT/` made the server
/// fetch its own loopback services, and the error told what answered.
#[test]
fn a_feed_on_a_loopback_address_is_refused_unless_the_operator_allows_it() {
    let server = serve(real_or_fixture_feed());
    let feeds = vec![format!("{}/feed.xml", server.url)];
    // No policy from a host: the default, which refuses loopback.
    let error = BlogConnector.check(&config(&feeds, 10)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config, "{error}");
    assert_eq!(error.field.as_deref(), Some("feeds[0]"));
    assert!(
        error.message.contains("refused by the egress policy"),
        "{error}"
    );
    assert!(error.message.contains("[egress] allow"), "{error}");
    let error = read(config(&feeds, 10), State::new()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config, "{error}");
    // A name that resolves to loopback is refused the same.
    let by_name = vec![feeds[0].replace("127.0.0.1", "localhost")];
    let error = BlogConnector.check(&config(&by_name, 10)).unwrap_err();
    assert!(
        error
            .message
            .contains("localhost resolves to a loopback address"),
        "{error}"
    );
    assert_eq!(server.full.load(Ordering::SeqCst), 0, "nothing was fetched");

    let _allowed = server.allowed();
    let message = BlogConnector.check(&config(&feeds, 10)).unwrap();
    assert!(message.contains("a feed of"), "{message}");
    let _everything = egress::enter(EgressPolicy::allowing_private());
    BlogConnector.check(&config(&by_name, 10)).unwrap();
}

#[test]
fn a_redirect_to_an_address_the_operator_did_not_allow_is_refused_at_the_hop() {
    let server = serve(real_or_fixture_feed());
    // 127.0.0.1:PORT is allowed; the redirect goes to a link-local address, which is not (and
    // is refused before any connection is tried: nothing leaves the machine).
    let _allowed = server.allowed();
    let error = BlogConnector
        .check(&config(&[format!("{}/moved.xml", server.url)], 10))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config, "{error}");
    assert!(
        error
            .message
            .contains("169.254.169.254 is a link-local address"),
        "{error}"
    );
    assert_eq!(server.full.load(Ordering::SeqCst), 0);
}

#[test]
fn what_an_allowed_peer_answers_is_never_quoted_in_an_error() {
    let server = serve(real_or_fixture_feed());
    let _allowed = server.allowed();
    for path in ["/broken.xml", "/internal.json"] {
        let feeds = [format!("{}{path}", server.url)];
        let checked = BlogConnector.check(&config(&feeds, 10)).unwrap_err();
        let read = read(config(&feeds, 10), State::new()).unwrap_err();
        for error in [checked, read] {
            assert!(!error.to_string().contains(PEER_SECRET), "{path}: {error}");
            assert!(error.message.contains(&feeds[0]), "names the URL: {error}");
        }
    }
}
