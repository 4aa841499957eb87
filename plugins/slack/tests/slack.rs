//! The Slack connector on its own fixture export and on the real houstondatavis export, as a
//! folder and as a zip built from that folder.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use trellis_connector_slack::{ChannelState, Config, SlackConnector, channel_slot};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export")
}

fn real_export() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let export = root.join("slack/houstondatavis");
    if export.join("users.json").is_file() {
        Some(export)
    } else {
        eprintln!(
            "skipped: no Slack export at {} (set TRELLIS_SHARED_DATA)",
            export.display()
        );
        None
    }
}

/// A zip of `folder`, with the export inside one top folder as Slack's download has it.
fn zip_of(folder: &Path, into: &Path) {
    let file = std::fs::File::create(into).unwrap();
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for entry in walkdir::WalkDir::new(folder).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let inner = entry.path().strip_prefix(folder).unwrap();
        let name = format!("export/{}", inner.to_string_lossy().replace('\\', "/"));
        writer.start_file(name, options).unwrap();
        writer
            .write_all(&std::fs::read(entry.path()).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
}

fn config(path: &Path, batch_size: usize) -> Config {
    serde_json::from_value(serde_json::json!({
        "path": path, "batch_size": batch_size, "workspace_url": "https://trellis.slack.invalid"
    }))
    .unwrap()
}

#[derive(Debug, Default)]
struct Read {
    people: Vec<pb::Person>,
    conversations: Vec<pb::Conversation>,
    posts: Vec<pb::Post>,
    assets: Vec<pb::Asset>,
    state: State,
}

impl Read {
    fn records(&self) -> usize {
        self.people.len() + self.conversations.len() + self.posts.len() + self.assets.len()
    }
    fn conversation(&self, id: &str) -> &pb::Conversation {
        self.conversations
            .iter()
            .find(|c| c.r#ref.as_ref().unwrap().external_id == id)
            .unwrap_or_else(|| panic!("no conversation {id}"))
    }
    fn post(&self, id: &str) -> &pb::Post {
        self.posts
            .iter()
            .find(|p| p.r#ref.as_ref().unwrap().external_id == id)
            .unwrap_or_else(|| panic!("no post {id}"))
    }
    fn person(&self, id: &str) -> &pb::Person {
        self.people
            .iter()
            .find(|p| p.r#ref.as_ref().unwrap().external_id == id)
            .unwrap_or_else(|| panic!("no person {id}"))
    }
}

fn read(config: Config, state: State) -> Result<Read, ConnectorError> {
    let mut reader = SlackConnector.open_read(config, state.clone(), CancelToken::new())?;
    let mut out = Read {
        state,
        ..Read::default()
    };
    loop {
        let proto = reader.next_batch()?.into_proto();
        for item in proto.items {
            match item.item.unwrap() {
                batch_item::Item::Record(record) => match record.payload.unwrap() {
                    record::Payload::Person(p) => out.people.push(p),
                    record::Payload::Conversation(c) => out.conversations.push(c),
                    record::Payload::Post(p) => out.posts.push(p),
                    record::Payload::Asset(a) => out.assets.push(a),
                },
                batch_item::Item::Checkpoint(checkpoint) => {
                    out.state.set(&checkpoint.stream, &checkpoint.state_json);
                }
            }
        }
        if proto.end {
            return Ok(out);
        }
    }
}

fn check_fixture_mapping(read: &Read) {
    // Four users and the bot that posted.
    assert_eq!(read.people.len(), 5);
    let ada = read.person("U01ADA");
    assert_eq!(ada.display_name, "ada.l");
    assert_eq!(ada.bio, "Community lead");
    assert!(ada.member);
    assert_eq!(ada.identities[0].platform, "slack");
    assert_eq!(ada.identities[0].handle, "ada");
    assert_eq!(
        ada.identities[0].profile_url,
        "https://trellis.slack.invalid/team/U01ADA"
    );
    assert_eq!(ada.identities[0].email_sha256.len(), 64);
    assert_eq!(read.person("U02GRACE").display_name, "Grace Hopper");
    assert!(!read.person("U03GONE").member);
    assert!(!read.person("U04BOT").member);

    // general: one channel-day on 05-01, a thread and a channel-day (the bot) on 05-02;
    // strategy: one channel-day.
    assert_eq!(read.conversations.len(), 4);
    let day = read.conversation("C01GEN:2024-05-01");
    assert_eq!(day.title, "#general on 2024-05-01");
    assert_eq!(day.body, "Welcome @grace! Our onboarding guide is here 🎉");
    assert_eq!(day.author, "U01ADA");
    assert!(day.open);
    assert_eq!(day.tags, ["general"]);
    assert_eq!(day.platform, pb::PlatformKind::Chat as i32);
    assert_eq!(day.created_at.unwrap().seconds, 1_714_550_400);
    assert_eq!(day.last_activity_at.unwrap().seconds, 1_714_550_460);
    assert_eq!(
        day.url,
        "https://trellis.slack.invalid/archives/C01GEN/p1714550400000200"
    );

    let thread = read.conversation("C01GEN:thread:1714640000.000100");
    assert_eq!(thread.title, "How do people import their spreadsheets?");
    assert_eq!(thread.last_activity_at.unwrap().seconds, 1_714_640_200);
    let reply = read.post("C01GEN:1714640100.000200");
    assert_eq!(reply.conversation, "C01GEN:thread:1714640000.000100");
    assert_eq!(reply.parent, "C01GEN:1714640000.000100");
    assert_eq!(reply.author, "U02GRACE");
    assert_eq!(reply.text, "With the CSV importer");
    assert_eq!(read.post("C01GEN:1714640000.000100").parent, "");

    let welcome = read.post("C01GEN:1714550400.000200");
    assert_eq!(welcome.conversation, "C01GEN:2024-05-01");
    assert_eq!(welcome.reactions, 3);
    assert_eq!(
        read.post("C01GEN:1714550460.000300").text,
        "Thanks & hello #strategy"
    );
    let bot = read.post("C01GEN:1714650000.000400");
    assert_eq!(bot.author, "bot:B01DIGEST");
    assert_eq!(bot.conversation, "C01GEN:2024-05-02");

    // Channel events are skipped: 2 + 4 + 2 messages.
    assert_eq!(read.posts.len(), 8);
    let archived = read.conversation("C02STR:2024-05-01");
    assert!(!archived.open);
    assert_eq!(archived.body, "@grace uploaded a file: Plan 2025");

    assert_eq!(read.assets.len(), 2);
    let plan = read.assets.iter().find(|a| a.title == "Plan 2025").unwrap();
    assert_eq!(
        plan.url,
        "https://trellis.slack.invalid/files/grace/F01PLAN/plan.pdf"
    );
    assert!(
        !format!("{:?}", read.assets).contains("xoxe"),
        "no private URL with a token"
    );
    let link = read
        .assets
        .iter()
        .find(|a| a.kind == pb::AssetKind::Article as i32)
        .unwrap();
    assert_eq!(link.url, "http://blog.trellis.invalid/why");
    assert_eq!(link.text, "Communities grow where people find help.");
}

#[test]
fn the_fixture_export_maps_people_threads_days_and_assets() {
    let read = read(config(&fixture(), 2), State::new()).unwrap();
    check_fixture_mapping(&read);
    let again = self::read(config(&fixture(), 2), read.state.clone()).unwrap();
    assert_eq!(again.records(), 0);
    let general: ChannelState = read.state.get(&channel_slot("C01GEN")).unwrap().unwrap();
    assert_eq!(general.day, "2024-05-02");
    assert_eq!(general.ts, "1714650000.000400");
    assert!(general.complete);
}

#[test]
fn the_fixture_export_reads_the_same_from_a_zip() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    zip_of(&fixture(), &zip);
    let from_zip = read(config(&zip, 3), State::new()).unwrap();
    check_fixture_mapping(&from_zip);
    let from_folder = read(config(&fixture(), 3), State::new()).unwrap();
    assert_eq!(from_zip.posts, from_folder.posts);
    assert_eq!(from_zip.conversations, from_folder.conversations);
}

#[test]
fn a_later_export_yields_only_the_new_messages() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("export");
    for entry in walkdir::WalkDir::new(fixture()) {
        let entry = entry.unwrap();
        let target = copy.join(entry.path().strip_prefix(fixture()).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let first = read(config(&copy, 50), State::new()).unwrap();
    // The last day gains a message, and a new day appears.
    let day_file = copy.join("general/2024-05-02.json");
    let mut messages: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&day_file).unwrap()).unwrap();
    messages.push(serde_json::json!({"type": "message", "user": "U02GRACE", "text": "late", "ts": "1714660000.000500"}));
    std::fs::write(&day_file, serde_json::to_vec(&messages).unwrap()).unwrap();
    std::fs::write(
        copy.join("general/2024-05-03.json"),
        r#"[{"type": "message", "user": "U01ADA", "text": "next day", "ts": "1714730000.000100"}]"#,
    )
    .unwrap();
    let second = read(config(&copy, 50), first.state).unwrap();
    let texts: Vec<_> = second.posts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["late", "next day"]);
    let conversations: Vec<_> = second
        .conversations
        .iter()
        .map(|c| c.r#ref.as_ref().unwrap().external_id.as_str())
        .collect();
    assert_eq!(conversations, ["C01GEN:2024-05-02", "C01GEN:2024-05-03"]);
    assert_eq!(
        second.conversations[0].last_activity_at.unwrap().seconds,
        1_714_660_000
    );
    assert!(second.people.is_empty(), "users.json did not change");
}

#[test]
fn a_missing_or_wrong_export_is_a_config_error_naming_the_path() {
    let error = SlackConnector
        .check(&config(Path::new("/nonexistent/export"), 10))
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("path"));
    assert!(error.message.contains("cannot be read"), "{error}");
    let not_zip = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_zip.path(), b"not a zip").unwrap();
    let error = SlackConnector
        .check(&config(not_zip.path(), 10))
        .unwrap_err();
    assert!(error.message.contains("is not a zip file"), "{error}");
    let empty = tempfile::tempdir().unwrap();
    let error = SlackConnector.check(&config(empty.path(), 10)).unwrap_err();
    assert!(
        error.message.contains("has no readable users.json"),
        "{error}"
    );
}

/// Counts of the real export computed here from its files, independently of the connector.
fn expected_counts(export: &Path) -> (usize, usize, usize) {
    let users: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(export.join("users.json")).unwrap()).unwrap();
    let channels: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(export.join("channels.json")).unwrap()).unwrap();
    let mut talk = 0;
    let mut days = 0;
    for channel in &channels {
        let folder = export.join(channel["name"].as_str().unwrap());
        for entry in std::fs::read_dir(folder).unwrap() {
            let messages: Vec<serde_json::Value> =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            let kept = messages
                .iter()
                .filter(|m| {
                    matches!(
                        m.get("subtype").and_then(|s| s.as_str()),
                        None | Some("file_share" | "file_comment" | "bot_message")
                    )
                })
                .count();
            talk += kept;
            days += usize::from(kept > 0);
        }
    }
    (users.len(), talk, days)
}

fn check_real(read: &Read, export: &Path) {
    let (users, talk, days) = expected_counts(export);
    assert_eq!(users, 71);
    let members = read
        .people
        .iter()
        .filter(|p| !p.r#ref.as_ref().unwrap().external_id.starts_with("bot:"));
    let mut ids: Vec<_> = members
        .map(|p| p.r#ref.as_ref().unwrap().external_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 71);
    assert_eq!(read.posts.len(), talk);
    // No threads in this 2016 export: every conversation is a channel-day.
    assert_eq!(read.conversations.len(), days);
    let channels: BTreeMap<_, _> = read
        .conversations
        .iter()
        .map(|c| (c.tags[0].clone(), ()))
        .collect();
    assert!(channels.len() <= 16);
    let first = read.conversation("C061A0WJG:2015-06-05");
    assert_eq!(first.title, "#datajam on 2015-06-05");
    for post in &read.posts {
        assert!(!post.text.contains("<@U"), "markup left in {:?}", post.text);
    }
    let amanda = read
        .assets
        .iter()
        .find(|a| a.url == "http://datastori.es/ds-56-amanda-cox-nyt/")
        .expect("the shared link preview is an asset");
    assert!(amanda.title.starts_with("Data Stories #56"));
    assert!(
        !format!("{:?}", read.assets).contains("xoxe"),
        "no private URL with a token"
    );
}

#[test]
fn the_real_export_reads_as_a_folder_and_as_a_zip() {
    let Some(export) = real_export() else { return };
    let from_folder = read(config(&export, 200), State::new()).unwrap();
    check_real(&from_folder, &export);
    println!(
        "houstondatavis: {} people, {} conversations, {} posts, {} assets",
        from_folder.people.len(),
        from_folder.conversations.len(),
        from_folder.posts.len(),
        from_folder.assets.len()
    );
    let again = read(config(&export, 200), from_folder.state.clone()).unwrap();
    assert_eq!(again.records(), 0);

    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("houstondatavis.zip");
    zip_of(&export, &zip);
    let from_zip = read(config(&zip, 200), State::new()).unwrap();
    check_real(&from_zip, &export);
    assert_eq!(from_zip.posts, from_folder.posts);
    assert_eq!(from_zip.conversations, from_folder.conversations);
    let checked = SlackConnector.check(&config(&zip, 200)).unwrap();
    assert!(checked.contains("71 users, 16 channels"), "{checked}");
}

fn tombstone_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tombstone")
}

/// Every post names a conversation of `conversations` and, when it has one, a parent of
/// `posts`.
fn assert_posts_reference_emitted_records(
    posts: &[pb::Post],
    conversations: &[pb::Conversation],
    parents: &[pb::Post],
) {
    let conversation_ids: Vec<&str> = conversations
        .iter()
        .map(|c| c.r#ref.as_ref().unwrap().external_id.as_str())
        .collect();
    let post_ids: Vec<&str> = parents
        .iter()
        .map(|p| p.r#ref.as_ref().unwrap().external_id.as_str())
        .collect();
    for post in posts {
        let id = &post.r#ref.as_ref().unwrap().external_id;
        assert!(
            conversation_ids.contains(&post.conversation.as_str()),
            "post {id} is in conversation {}, which is never emitted (emitted: {conversation_ids:?})",
            post.conversation
        );
        assert!(
            post.parent.is_empty() || post_ids.contains(&post.parent.as_str()),
            "post {id} answers {}, which is never emitted",
            post.parent
        );
    }
}

#[test]
fn a_reply_to_a_deleted_opener_is_in_a_conversation_that_is_emitted() {
    let read = read(config(&tombstone_fixture(), 2), State::new()).unwrap();
    assert_posts_reference_emitted_records(&read.posts, &read.conversations, &read.posts);

    // The tombstone opens its thread's conversation, titled so that a reader knows why the
    // first message is missing; it is no post, and Slackbot is not its author.
    let deleted = read.conversation("C03HLP:thread:1717236000.000100");
    assert_eq!(
        deleted.title,
        "thread in #help (its first message was deleted)"
    );
    assert_eq!(deleted.body, "");
    assert_eq!(deleted.author, "");
    assert_eq!(deleted.last_activity_at.unwrap().seconds, 1_717_340_400);
    assert!(
        !read
            .posts
            .iter()
            .any(|p| p.r#ref.as_ref().unwrap().external_id == "C03HLP:1717236000.000100"),
        "the deleted message is not a post"
    );
    let later = read.post("C03HLP:1717340400.000100");
    assert_eq!(later.conversation, "C03HLP:thread:1717236000.000100");
    assert_eq!(later.parent, "", "the message it answers is gone");
    assert_eq!(later.author, "U01ADA");

    // A thread on a channel event: its conversation, its replies, no post of the event.
    let joined = read.conversation("C03HLP:thread:1717293600.000400");
    assert_eq!(joined.title, "@grace has joined the channel");
    assert_eq!(
        read.post("C03HLP:1717340500.000200").conversation,
        "C03HLP:thread:1717293600.000400"
    );

    // A reply whose opener is not in the export at all is talk of its day.
    let orphan = read.post("C03HLP:1717340600.000300");
    assert_eq!(orphan.conversation, "C03HLP:2024-06-02");
    assert_eq!(orphan.parent, "");
    assert_eq!(
        read.conversation("C03HLP:2024-06-02").body,
        "Following up on last week's question"
    );
    assert_eq!(read.posts.len(), 6, "every reply and the day's message");
    assert_eq!(read.conversations.len(), 4);
}

#[test]
fn a_reply_on_a_later_day_finds_its_deleted_opener_when_the_read_resumes() {
    // The first export ends on the day of the openers; the next one adds the replies after it.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("export");
    std::fs::create_dir_all(copy.join("help")).unwrap();
    for name in ["users.json", "channels.json", "help/2024-06-01.json"] {
        std::fs::copy(tombstone_fixture().join(name), copy.join(name)).unwrap();
    }
    let first = read(config(&copy, 50), State::new()).unwrap();
    std::fs::copy(
        tombstone_fixture().join("help/2024-06-02.json"),
        copy.join("help/2024-06-02.json"),
    )
    .unwrap();
    let second = read(config(&copy, 50), first.state).unwrap();
    let texts: Vec<_> = second.posts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Answering the deleted question anyway: it was the proxy",
            "Thanks, glad to be here",
            "Following up on last week's question"
        ]
    );
    let conversations: Vec<_> = first
        .conversations
        .iter()
        .chain(&second.conversations)
        .cloned()
        .collect();
    let posts: Vec<_> = first.posts.iter().chain(&second.posts).cloned().collect();
    assert_posts_reference_emitted_records(&second.posts, &conversations, &posts);
    assert_eq!(
        second.post("C03HLP:1717340400.000100").conversation,
        "C03HLP:thread:1717236000.000100"
    );
    assert_eq!(
        second.post("C03HLP:1717340500.000200").conversation,
        "C03HLP:thread:1717293600.000400",
        "the opener's day file is the day before its UTC date"
    );
}
