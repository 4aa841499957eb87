//! The Mastodon connector in REST mode, against a local server replaying recorded HTTP
//! exchanges: the project's own cassettes (tests/fixtures/rest) and the real ones captured by
//! Mastodon.py's test suite, through the conformance kit too.

mod replay;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use replay::{Exchange, Replay};
use serde_json::{Value, json};
use trellis_conformance::{Options, built_library, run};
use trellis_connector_mastodon::{Config, MastodonConnector};
use trellis_plugin_sdk::egress::{self, EgressPolicy};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rest")
        .join(name)
}

/// The real cassettes, or `None` (with a message) when the shared data is missing.
fn cassettes() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let dir = root.join("mastodon/rest-api-cassettes");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is missing; set TRELLIS_SHARED_DATA to the shared data folder",
            dir.display()
        );
        None
    }
}

/// What a read produced, in order.
#[derive(Debug, Default)]
struct Read {
    people: BTreeMap<String, pb::Person>,
    conversations: BTreeMap<String, pb::Conversation>,
    posts: BTreeMap<String, pb::Post>,
    /// External ids of the records in the order they came.
    order: Vec<String>,
    checkpoints: usize,
    state: State,
}

fn read(config: &Value, state: State) -> Result<Read, ConnectorError> {
    let config: Config = serde_json::from_value(config.clone()).expect("a config");
    let mut reader = MastodonConnector.open_read(config, state.clone(), CancelToken::new())?;
    let mut out = Read {
        state,
        ..Read::default()
    };
    loop {
        let batch = reader.next_batch()?;
        let last = batch.is_last();
        for item in batch.into_proto().items {
            match item.item.expect("an item") {
                batch_item::Item::Record(record) => match record.payload.expect("a payload") {
                    record::Payload::Person(person) => {
                        let id = person.r#ref.clone().unwrap().external_id;
                        out.order.push(id.clone());
                        out.people.insert(id, person);
                    }
                    record::Payload::Conversation(conversation) => {
                        let id = conversation.r#ref.clone().unwrap().external_id;
                        out.order.push(id.clone());
                        out.conversations.insert(id, conversation);
                    }
                    record::Payload::Post(post) => {
                        let id = post.r#ref.clone().unwrap().external_id;
                        out.order.push(id.clone());
                        out.posts.insert(id, post);
                    }
                    record::Payload::Asset(_) => panic!("no assets"),
                },
                batch_item::Item::Checkpoint(checkpoint) => {
                    out.checkpoints += 1;
                    out.state.set(&checkpoint.stream, &checkpoint.state_json);
                }
            }
        }
        if last {
            return Ok(out);
        }
    }
}

fn error_of(config: &Value) -> ConnectorError {
    read(config, State::new()).expect_err("the read fails")
}

fn status(server: &Replay, user: &str, id: u32) -> String {
    format!("{}/users/{user}/statuses/{id}", server.origin)
}

fn timelines_config(server: &Replay) -> Value {
    json!({
        "base_url": server.origin,
        "accounts": ["ana"],
        "hashtags": ["observability"],
        "public": {"local": true},
        "page_size": 2
    })
}

#[test]
fn fixture_timelines_backfill_through_link_pages_and_map_statuses() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&fixture("timelines.yaml")]);
    let config = timelines_config(&server);
    let full = read(&config, State::new()).unwrap();
    assert_eq!(server.misses(), Vec::<String>::new());
    // ana's pages: [105, 104], [103 (a boost), 102], [101], []; then min_id=105 finds nothing.
    let account_requests: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|url| url.starts_with("/api/v1/accounts/1/"))
        .collect();
    assert_eq!(
        account_requests,
        [
            "/api/v1/accounts/1/statuses?limit=2",
            "/api/v1/accounts/1/statuses?limit=2&max_id=104",
            "/api/v1/accounts/1/statuses?limit=2&max_id=102",
            "/api/v1/accounts/1/statuses?limit=2&max_id=101",
            "/api/v1/accounts/1/statuses?limit=2&min_id=105",
        ]
    );
    // People once per page they author on: ana 3 + 1 (tag), bo 1, cy 1; statuses 101, 102,
    // 104, 105 (account), 104, 120 (tag), 130 (public).
    assert_eq!(full.order.len(), 6 + 7);
    assert_eq!(full.people.len(), 3);
    assert_eq!(full.conversations.len(), 5, "101, 102, 104, 120, 130");
    assert_eq!(full.posts.len(), 1, "105");
    assert!(
        !full.order.iter().any(|id| id.contains("/103")),
        "the boost is skipped"
    );
    assert_eq!(full.checkpoints, 5 + 3 + 3, "one per page");

    let ana = &full.people[&format!("{}/users/ana", server.origin)];
    assert_eq!(ana.display_name, "Ana Ruiz");
    assert_eq!(ana.bio, "Observability nerd. #tracing");
    assert!(!ana.member);
    assert_eq!(ana.identities[0].platform, "mastodon");
    assert_eq!(
        ana.identities[0].handle,
        format!("ana@{}", server.host()),
        "a local acct is qualified with the instance host"
    );
    assert_eq!(
        ana.identities[0].profile_url,
        format!("{}/@ana", server.origin)
    );
    let bo = &full.people["https://other.example/users/bo"];
    assert_eq!(bo.identities[0].handle, "bo@other.example");
    assert_eq!(bo.display_name, "bo@other.example", "no display name");
    assert_eq!(bo.bio, "Queues & streams.");

    let opened = &full.conversations[&status(&server, "ana", 104)];
    assert_eq!(
        opened.body,
        "Sampling every trace is not observability, it is hoarding. #observability"
    );
    assert_eq!(opened.title, opened.body);
    assert_eq!(opened.tags, ["observability"]);
    assert_eq!(opened.url, format!("{}/@ana/104", server.origin));
    assert_eq!(opened.author, format!("{}/users/ana", server.origin));
    assert_eq!(
        records::millis_of(opened.created_at.as_ref().unwrap()),
        records::millis_of(&records::parse_rfc3339("2024-03-03T09:00:00Z", "test").unwrap())
    );
    let reply = &full.posts[&status(&server, "ana", 105)];
    assert_eq!(reply.conversation, status(&server, "ana", 104));
    assert_eq!(reply.parent, "", "it answers the opening status");
    assert_eq!(reply.text, "Sample the slow ones & keep errors.");
    assert_eq!(reply.reactions, 1, "reblogs and favourites");
    let elsewhere = &full.conversations[&status(&server, "ana", 102)];
    assert!(
        elsewhere.title.starts_with("Re: ") && elsewhere.body.ends_with("agreed!"),
        "a reply to an unknown status opens a conversation flagged as a reply: {elsewhere:?}"
    );
    assert_eq!(
        full.conversations[&status(&server, "ana", 101)].tags,
        ["tracing"]
    );
    assert_eq!(
        full.conversations["https://other.example/users/bo/statuses/120"].author,
        "https://other.example/users/bo"
    );
    assert_eq!(
        full.conversations[&status(&server, "cy", 130)].body,
        "Hello from the local timeline."
    );

    let again = read(&config, full.state).unwrap();
    assert!(again.order.is_empty(), "nothing new: {:?}", again.order);
    assert_eq!(server.misses(), Vec::<String>::new());
}

#[test]
fn fixture_timelines_read_new_statuses_after_min_id() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&fixture("timelines.yaml")]);
    let config = timelines_config(&server);
    let first = read(&config, State::new()).unwrap();

    server.serve(&[&fixture("timelines-later.yaml")]);
    let later = read(&config, first.state.clone()).unwrap();
    assert_eq!(server.misses(), Vec::<String>::new());
    assert_eq!(
        later.order,
        [
            format!("{}/users/ana", server.origin),
            status(&server, "ana", 106),
            status(&server, "ana", 107),
            format!("{}/users/ana", server.origin),
            status(&server, "ana", 108),
        ],
        "the new statuses, oldest first, with their author per page"
    );
    let deeper = &later.posts[&status(&server, "ana", 106)];
    assert_eq!(deeper.conversation, status(&server, "ana", 104));
    assert_eq!(
        deeper.parent,
        status(&server, "ana", 105),
        "the thread is known from the state of the first read"
    );
    let update = &later.posts[&status(&server, "ana", 107)];
    assert_eq!(update.conversation, status(&server, "ana", 101));
    assert_eq!(update.parent, "");
    assert_eq!(update.reactions, 7);
    let warned = &later.conversations[&status(&server, "ana", 108)];
    assert!(
        warned.body.starts_with("work\n\nLong day."),
        "the content warning first: {:?}",
        warned.body
    );

    // Resuming from the checkpoint after 106 and 107 gives 108 alone.
    let mut state = first.state;
    state.set(
        "account:ana",
        &json!({"newest": "107", "threads": {
            "101": {"key": status(&server, "ana", 101), "thread": status(&server, "ana", 101)}
        }})
        .to_string(),
    );
    let resumed = read(&config, state).unwrap();
    assert_eq!(
        resumed.order,
        [
            format!("{}/users/ana", server.origin),
            status(&server, "ana", 108)
        ]
    );
    assert!(read(&config, later.state).unwrap().order.is_empty());
}

#[test]
fn http_failures_map_to_the_sdk_kinds() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&fixture("errors.yaml")]);
    let base = |extra: Value| {
        let mut config = json!({"base_url": server.origin, "page_size": 2});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config
    };

    let failing = error_of(&base(json!({"hashtags": ["flaky"]})));
    assert_eq!(failing.kind, ErrorKind::Transient, "{failing}");
    assert!(failing.message.contains("answered 500"), "{failing}");
    assert!(
        !failing.message.contains("went wrong"),
        "the body is not quoted: {failing}"
    );

    let busy = error_of(&base(json!({"hashtags": ["busy"]})));
    assert_eq!(busy.kind, ErrorKind::RateLimited, "{busy}");
    assert_eq!(busy.retry_after, Some(Duration::from_secs(17)));

    let unknown = error_of(&base(json!({"accounts": ["nobody"]})));
    assert_eq!(unknown.kind, ErrorKind::Config, "{unknown}");
    assert_eq!(unknown.field.as_deref(), Some("accounts"));
    let config: Config = serde_json::from_value(base(json!({"accounts": ["nobody"]}))).unwrap();
    let refused = MastodonConnector.check(&config).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("accounts"));

    let gone = error_of(&base(json!({"hashtags": ["gone"]})));
    assert_eq!(gone.kind, ErrorKind::Config, "{gone}");
    assert_eq!(gone.field.as_deref(), Some("hashtags"));

    let closed = error_of(&base(json!({"public": {}})));
    assert_eq!(closed.kind, ErrorKind::Config, "{closed}");
    assert_eq!(closed.field.as_deref(), Some("public"));

    let nothing = error_of(&base(json!({})));
    assert_eq!(nothing.field.as_deref(), Some("accounts"), "{nothing}");
}

#[test]
fn an_unreachable_instance_is_transient_and_a_bad_url_names_base_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let _allowed = egress::enter(EgressPolicy::allowing(["127.0.0.1"]));
    let config: Config = serde_json::from_value(
        json!({"base_url": format!("http://127.0.0.1:{port}"), "hashtags": ["rust"], "timeout_secs": 5}),
    )
    .unwrap();
    let error = MastodonConnector.check(&config).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");

    let config: Config =
        serde_json::from_value(json!({"base_url": "mastodon.social", "hashtags": ["rust"]}))
            .unwrap();
    let error = MastodonConnector.check(&config).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("base_url"), "{error}");
}

#[test]
fn check_proves_the_instance_and_the_accounts() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&fixture("timelines.yaml")]);
    let config: Config = serde_json::from_value(timelines_config(&server)).unwrap();
    let line = MastodonConnector.check(&config).unwrap();
    assert!(line.contains("social.example"), "{line}");
    assert!(line.contains("3 timelines"), "{line}");
}

#[test]
fn check_falls_back_to_the_v1_instance_of_older_servers() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.add(
        "/api/v1/instance",
        Exchange {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body:
                r#"{"uri":"old.example","title":"Old","version":"3.5.3","stats":{"user_count":2}}"#
                    .into(),
        },
    );
    let config: Config =
        serde_json::from_value(json!({"base_url": server.origin, "hashtags": ["rust"]})).unwrap();
    let line = MastodonConnector.check(&config).unwrap();
    assert!(
        line.starts_with("old.example (Old, Mastodon 3.5.3)"),
        "{line}"
    );
    assert!(line.contains("1 timeline to read"), "{line}");
    assert_eq!(server.requests(), ["/api/v2/instance", "/api/v1/instance"]);
}

#[test]
fn the_kit_passes_on_the_fixture_timelines() {
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&fixture("timelines.yaml")]);
    let mut options = Options::new(
        built_library("trellis_connector_mastodon"),
        timelines_config(&server).to_string(),
    );
    options.egress = server.policy();
    let report = run(&options);
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(server.misses(), Vec::<String>::new());
}

const TAG: &str = "fgiztsshwiaqqiztpmmjbtvmescsculuvmgjgopwoeidbcrixp";

fn tag_page(query: &str) -> String {
    format!("/api/v1/timelines/tag/{TAG}?limit=10{query}")
}

fn real_config(server: &Replay) -> Value {
    json!({"base_url": server.origin, "hashtags": [TAG], "page_size": 10})
}

#[test]
fn the_real_cassette_backfills_through_its_link_pages() {
    let Some(dir) = cassettes() else { return };
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&dir.join("test_pagination_iterator.yaml")]);
    let config = real_config(&server);
    let full = read(&config, State::new()).unwrap();
    assert_eq!(server.misses(), Vec::<String>::new());
    assert_eq!(
        server.requests(),
        [
            tag_page(""),
            tag_page("&max_id=117020582177108552"),
            tag_page("&max_id=117020582097668259"),
            tag_page("&max_id=117020582018205171"),
            tag_page("&min_id=117020582251615632"),
        ],
        "three pages of ten, an empty one, then nothing newer"
    );
    assert_eq!(full.conversations.len(), 30, "30 toots, none a reply");
    assert_eq!(full.posts.len(), 0);
    assert_eq!(full.people.len(), 1);
    assert_eq!(full.order.len(), 30 + 3, "the author once per page");
    let author = format!("{}/ap/users/117020566092212359", server.origin);
    let person = &full.people[&author];
    assert_eq!(
        person.identities[0].handle,
        format!("mastodonpy_test_2@{}", server.host())
    );
    assert_eq!(
        person.identities[0].profile_url,
        format!("{}/@mastodonpy_test_2", server.origin)
    );
    assert_eq!(person.display_name, "mastodonpy_test_2", "no display name");
    let first = &full.conversations[&format!(
        "{}/ap/users/117020566092212359/statuses/117020582018205171",
        server.origin
    )];
    assert_eq!(first.body, format!("Toot number 0! #{TAG}"));
    assert_eq!(first.tags, [TAG]);
    assert_eq!(first.author, author);
    assert_eq!(
        first.url,
        format!("{}/@mastodonpy_test_2/117020582018205171", server.origin)
    );
    assert_eq!(
        records::millis_of(first.created_at.as_ref().unwrap()),
        records::millis_of(&records::parse_rfc3339("2026-08-01T13:52:56.988Z", "test").unwrap())
    );
    assert!(
        read(&config, full.state).unwrap().order.is_empty(),
        "the final state reads nothing new"
    );
}

/// Serves what `min_id` requests would have answered on the recorded server: `min_id` set to
/// the newest status of a page answers the next newer page (Mastodon answers `min_id` with the
/// statuses right after it, newest first), and the newest page's own `prev` link answers `[]`.
/// `pages` are the recorded `max_id` queries, newest first; `below` is the newest status
/// before the oldest page.
fn serve_min_id_pages(server: &Replay, pages: &[&str], below: &str) {
    let mut min_id = below.to_owned();
    for page in pages.iter().rev() {
        let exchange = server.exchange(&tag_page(page)).expect("a recorded page");
        let statuses: Vec<Value> = serde_json::from_str(&exchange.body).unwrap();
        server.add(&tag_page(&format!("&min_id={min_id}")), exchange);
        min_id = statuses[0]["id"].as_str().unwrap().to_owned();
    }
    if server
        .exchange(&tag_page(&format!("&min_id={min_id}")))
        .is_none()
    {
        server.add(
            &tag_page(&format!("&min_id={min_id}")),
            Exchange {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: "[]".into(),
            },
        );
    }
}

#[test]
fn the_real_cassettes_read_incrementally_with_min_id() {
    let Some(dir) = cassettes() else { return };
    let server = Replay::start();
    let _allowed = server.allowed();
    // Phase one: the 30 toots of test_fetch_remaining.
    server.serve(&[&dir.join("test_fetch_remaining.yaml")]);
    serve_min_id_pages(&server, &[], "117020581413876942");
    let config = real_config(&server);
    let first = read(&config, State::new()).unwrap();
    assert_eq!(server.misses(), Vec::<String>::new());
    assert_eq!(first.conversations.len(), 30);

    // Phase two: the 30 newer toots of test_pagination_iterator appeared.
    server.serve(&[&dir.join("test_pagination_iterator.yaml")]);
    serve_min_id_pages(
        &server,
        &[
            "",
            "&max_id=117020582177108552",
            "&max_id=117020582097668259",
        ],
        "117020581413876942",
    );
    let later = read(&config, first.state.clone()).unwrap();
    assert_eq!(server.misses(), Vec::<String>::new());
    assert_eq!(later.conversations.len(), 30, "the new toots only");
    assert!(
        later
            .conversations
            .keys()
            .all(|key| !first.conversations.contains_key(key)),
        "no duplicate"
    );
    let ids: Vec<&str> = later
        .order
        .iter()
        .filter(|key| key.contains("/statuses/"))
        .map(|key| key.rsplit('/').next().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "oldest first");
    assert_eq!(later.checkpoints, 4, "three pages and the empty one");
    assert!(read(&config, later.state).unwrap().order.is_empty());
}

#[test]
fn the_kit_passes_on_the_real_cassette() {
    let Some(dir) = cassettes() else { return };
    let server = Replay::start();
    let _allowed = server.allowed();
    server.serve(&[&dir.join("test_pagination_iterator.yaml")]);
    let mut options = Options::new(
        built_library("trellis_connector_mastodon"),
        real_config(&server).to_string(),
    );
    options.egress = server.policy();
    let report = run(&options);
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(server.misses(), Vec::<String>::new());
}

#[test]
fn an_instance_on_a_loopback_address_is_refused_unless_allowed_and_its_answers_are_never_quoted() {
    let server = Replay::start();
    server.add(
        "/api/v2/instance",
        Exchange {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            // serde's own text would quote it: invalid type: string "…", expected struct.
            body: r#""internal-build-id-5c2e""#.into(),
        },
    );
    let config: Config =
        serde_json::from_value(json!({"base_url": server.origin, "hashtags": ["rust"]})).unwrap();
    let refused = MastodonConnector.check(&config).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Config, "{refused}");
    assert_eq!(refused.field.as_deref(), Some("base_url"));
    assert!(refused.message.contains("[egress] allow"), "{refused}");
    assert!(server.requests().is_empty(), "nothing was asked");

    let _allowed = server.allowed();
    let error = MastodonConnector.check(&config).unwrap_err();
    assert!(
        error.message.contains("not a Mastodon API answer"),
        "{error}"
    );
    assert!(!error.message.contains("internal-build-id"), "{error}");
}
