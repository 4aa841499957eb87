//! The Mastodon connector on its own archive fixture, on the real archive of one account, and
//! through the conformance kit.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use trellis_conformance::{Options, built_library, run};
use trellis_connector_mastodon::{Config, MastodonConnector};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive")
}

fn archive() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let dir = root.join("mastodon/dealingwith");
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

#[derive(Debug, Default)]
struct Read {
    people: BTreeMap<String, pb::Person>,
    conversations: BTreeMap<String, pb::Conversation>,
    posts: BTreeMap<String, pb::Post>,
    records: usize,
    state: State,
}

fn read(config: Value, state: State) -> Result<Read, ConnectorError> {
    let config: Config = serde_json::from_value(config).expect("a config");
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
                batch_item::Item::Record(record) => {
                    out.records += 1;
                    match record.payload.expect("a payload") {
                        record::Payload::Person(person) => {
                            out.people
                                .insert(person.r#ref.clone().unwrap().external_id, person);
                        }
                        record::Payload::Conversation(conversation) => {
                            out.conversations.insert(
                                conversation.r#ref.clone().unwrap().external_id,
                                conversation,
                            );
                        }
                        record::Payload::Post(post) => {
                            out.posts
                                .insert(post.r#ref.clone().unwrap().external_id, post);
                        }
                        record::Payload::Asset(_) => panic!("no assets"),
                    }
                }
                batch_item::Item::Checkpoint(checkpoint) => {
                    out.state.set(&checkpoint.stream, &checkpoint.state_json);
                }
            }
        }
        if last {
            return Ok(out);
        }
    }
}

const ANA: &str = "https://social.example/users/ana";

fn thread(n: u32) -> String {
    format!("tag:social.example,2023:objectId=c{n}:objectType=Conversation")
}

#[test]
fn the_fixture_archive_maps_to_threads_posts_and_the_account() {
    let full = read(json!({"archive_dir": fixture()}), State::new()).unwrap();
    assert_eq!(full.records, 1 + 3 + 2, "the boost is skipped");
    let ana = &full.people[ANA];
    assert_eq!(ana.display_name, "Ana Ruiz");
    assert_eq!(ana.bio, "Observability nerd.");
    assert!(!ana.member, "outside the community");
    assert_eq!(ana.identities[0].platform, "mastodon");
    assert_eq!(ana.identities[0].handle, "ana@social.example");
    assert_eq!(ana.identities[0].profile_url, "https://social.example/@ana");

    let opened = &full.conversations[&thread(1)];
    assert_eq!(opened.url, "https://social.example/@ana/1");
    assert_eq!(opened.body, "Our traces stop at the queue. #Tracing");
    assert_eq!(opened.title, opened.body);
    assert_eq!(opened.tags, ["tracing"]);
    assert_eq!(opened.author, ANA);
    assert_eq!(opened.platform, i32::from(pb::PlatformKind::PublicNetwork));

    let first = &full.posts[&format!("{ANA}/statuses/2")];
    assert_eq!(first.conversation, thread(1));
    assert_eq!(first.parent, "", "a reply to the opening status");
    let second = &full.posts[&format!("{ANA}/statuses/3")];
    assert_eq!(second.parent, format!("{ANA}/statuses/2"));
    assert_eq!(second.text, "And sample the slow ones & keep errors.");

    let elsewhere = &full.conversations[&thread(2)];
    assert_eq!(
        elsewhere.body, "@bo agreed!",
        "a reply to a status outside the archive opens its thread"
    );
    assert_eq!(
        full.conversations[&thread(3)].body,
        "work\n\nLong day.",
        "the content warning first"
    );

    assert_eq!(
        read(json!({"archive_dir": fixture()}), full.state)
            .unwrap()
            .records,
        0
    );
}

#[test]
fn a_folder_without_an_archive_is_a_config_error_naming_archive_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config: Config = serde_json::from_value(json!({"archive_dir": dir.path()})).unwrap();
    let error = MastodonConnector.check(&config).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.field.as_deref(), Some("archive_dir"));
}

#[test]
fn the_real_archive_reads_as_its_threads_and_replies() {
    let Some(dir) = archive() else { return };
    let full = read(json!({"archive_dir": dir}), State::new()).unwrap();
    // 1,586 activities: 1,260 statuses (422 of them replies) and 326 boosts; the statuses fall
    // into 957 threads.
    assert_eq!(full.people.len(), 1);
    assert_eq!(full.conversations.len(), 957);
    assert_eq!(full.posts.len(), 1260 - 957);
    assert_eq!(full.records, 1 + 1260);
    let account = &full.people["https://indieweb.social/users/dealingwith"];
    assert_eq!(account.identities[0].handle, "dealingwith@indieweb.social");
    assert_eq!(
        account.identities[0].profile_url,
        "https://indieweb.social/@dealingwith"
    );
    let status = full
        .conversations
        .values()
        .find(|c| c.url == "https://indieweb.social/@dealingwith/109376719336938342")
        .expect("the status of 2022-11-20");
    assert_eq!(
        status.body,
        "Watched the Demetri Martin Netflix special last night. This was my favorite bit."
    );
    assert_eq!(
        records::millis_of(status.created_at.as_ref().unwrap()),
        records::millis_of(&records::parse_rfc3339("2022-11-20T14:58:08Z", "test").unwrap())
    );
    assert!(full.posts.values().all(|post| !post.text.contains("<p>")));
}

#[test]
fn the_kit_passes_on_the_fixture_and_the_real_archive() {
    let config = json!({"archive_dir": fixture(), "batch_size": 1});
    let report = run(&Options::new(
        built_library("trellis_connector_mastodon"),
        config.to_string(),
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");

    let Some(dir) = archive() else { return };
    let mut options = Options::new(
        built_library("trellis_connector_mastodon"),
        json!({"archive_dir": dir, "batch_size": 100}).to_string(),
    );
    options.max_resumes = 20;
    let report = run(&options);
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn the_outbox_streams_its_last_ordered_items_and_a_broken_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("actor.json"), dir.path().join("actor.json")).unwrap();
    let note = |n: u32| {
        json!({
            "type": "Create",
            "object": {
                "id": format!("{ANA}/statuses/x{n}"),
                "type": "Note",
                "content": format!("<p>status {n}</p>"),
                "published": "2023-05-01T10:00:00Z",
                "conversation": format!("c{n}"),
                "attributedTo": ANA
            }
        })
    };
    // Real archives repeat the key; the last one counts.
    let outbox = format!(
        r#"{{"type": "OrderedCollection", "orderedItems": [{}], "totalItems": 2, "orderedItems": [{}, {}], "id": "outbox"}}"#,
        note(1),
        note(2),
        note(3)
    );
    std::fs::write(dir.path().join("outbox.json"), &outbox).unwrap();
    let config = json!({"archive_dir": dir.path(), "batch_size": 1});
    let full = read(config.clone(), State::new()).unwrap();
    assert_eq!(
        full.conversations.keys().collect::<Vec<_>>(),
        ["c2", "c3"],
        "only the last orderedItems"
    );
    assert_eq!(full.conversations["c3"].body, "status 3");
    let resumed = read(config.clone(), {
        let mut state = State::new();
        state.set("outbox", r#"{"activities": 1, "account": true}"#);
        state
    })
    .unwrap();
    assert_eq!(resumed.conversations.keys().collect::<Vec<_>>(), ["c3"]);

    std::fs::write(dir.path().join("outbox.json"), &outbox[..outbox.len() - 40]).unwrap();
    let error = read(config, State::new()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::System, "{error}");
    assert!(error.message.contains("outbox.json"), "{error}");
}
