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
    assert!(
        account.identities[0].handle_unique,
        "user@instance names one account"
    );
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
        state.set(
            "outbox",
            &json!({"activities": 1, "account": true, "after": {"id": format!("{ANA}/statuses/x2")}})
                .to_string(),
        );
        state
    })
    .unwrap();
    assert_eq!(resumed.conversations.keys().collect::<Vec<_>>(), ["c3"]);

    std::fs::write(dir.path().join("outbox.json"), &outbox[..outbox.len() - 40]).unwrap();
    let error = read(config, State::new()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::System, "{error}");
    assert!(error.message.contains("outbox.json"), "{error}");
}

/// A `Create` activity of status `n` of Ana, as Mastodon exports it, answering `reply_to` (a
/// status number) in thread number `in_thread`.
fn status(n: u32, in_thread: u32, reply_to: Option<u32>) -> Value {
    let id = format!("{ANA}/statuses/{n}");
    let published = format!("2023-05-{:02}T10:00:00Z", n.min(28));
    json!({
        "id": format!("{id}/activity"),
        "type": "Create",
        "actor": ANA,
        "published": published,
        "object": {
            "id": id,
            "type": "Note",
            "inReplyTo": reply_to.map(|to| format!("{ANA}/statuses/{to}")),
            "published": published,
            "url": format!("https://social.example/@ana/{n}"),
            "attributedTo": ANA,
            "conversation": thread(in_thread),
            "content": format!("<p>status {n}</p>"),
        }
    })
}

/// An archive of Ana holding `activities`, in a fresh folder.
fn archive_of(activities: &[Value]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("actor.json"), dir.path().join("actor.json")).unwrap();
    let outbox = json!({
        "id": "outbox.json",
        "type": "OrderedCollection",
        "totalItems": activities.len(),
        "orderedItems": activities,
    });
    std::fs::write(dir.path().join("outbox.json"), outbox.to_string()).unwrap();
    dir
}

/// Ids of the statuses a read emitted, as conversations and posts, in id order.
fn statuses_of(read: &Read) -> Vec<String> {
    let mut ids: Vec<String> = read
        .conversations
        .values()
        .map(|conversation| conversation.url.rsplit('/').next().unwrap().to_owned())
        .chain(
            read.posts
                .keys()
                .map(|id| id.rsplit('/').next().unwrap().to_owned()),
        )
        .collect();
    ids.sort_by_key(|id| id.parse::<u32>().unwrap());
    ids
}

/// The state after the first batch of a read.
fn state_after_first_batch(config: Value) -> State {
    let config: Config = serde_json::from_value(config).unwrap();
    let mut reader = MastodonConnector
        .open_read(config, State::new(), CancelToken::new())
        .unwrap();
    let batch = reader.next_batch().unwrap();
    assert!(!batch.is_last());
    let mut state = State::new();
    for item in batch.into_proto().items {
        if let Some(batch_item::Item::Checkpoint(checkpoint)) = item.item {
            state.set(&checkpoint.stream, &checkpoint.state_json);
        }
    }
    state
}

#[test]
fn a_later_export_with_its_oldest_statuses_pruned_skips_no_new_status() {
    // Five statuses, the second and fourth answering the first and third.
    let old = [
        status(1, 1, None),
        status(2, 1, Some(1)),
        status(3, 3, None),
        status(4, 3, Some(3)),
        status(5, 5, None),
    ];
    let first_export = archive_of(&old);
    let first = read(
        json!({"archive_dir": first_export.path(), "batch_size": 2}),
        State::new(),
    )
    .unwrap();
    assert_eq!(statuses_of(&first), ["1", "2", "3", "4", "5"]);

    // The same account exported later: its two oldest statuses pruned, three new ones, one of
    // them answering a thread of the first export.
    let mut shifted = old[2..].to_vec();
    shifted.extend([
        status(6, 6, None),
        status(7, 3, Some(4)),
        status(8, 8, None),
    ]);
    let later_export = archive_of(&shifted);
    let config = json!({"archive_dir": later_export.path(), "batch_size": 2});
    let next = read(config.clone(), first.state.clone()).unwrap();
    assert_eq!(
        statuses_of(&next),
        ["6", "7", "8"],
        "every new status once, none read before"
    );
    let reply = &next.posts[&format!("{ANA}/statuses/7")];
    assert_eq!(
        reply.conversation,
        thread(3),
        "the thread opened before is known"
    );
    assert_eq!(reply.parent, format!("{ANA}/statuses/4"));
    assert!(next.people.is_empty(), "the account was emitted before");
    assert_eq!(read(config, next.state).unwrap().records, 0);

    // From a checkpoint in the middle of the first export: the rest of it, then the new ones.
    let middle =
        state_after_first_batch(json!({"archive_dir": first_export.path(), "batch_size": 3}));
    let rest = read(
        json!({"archive_dir": later_export.path(), "batch_size": 2}),
        middle,
    )
    .unwrap();
    assert_eq!(statuses_of(&rest), ["3", "4", "5", "6", "7", "8"]);
}

#[test]
fn a_later_export_without_the_last_status_read_is_read_again_whole() {
    let first_export = archive_of(&[status(1, 1, None), status(2, 2, None)]);
    let first = read(json!({"archive_dir": first_export.path()}), State::new()).unwrap();
    // Everything read before is pruned: the archive cannot say where the last read stopped.
    let later_export = archive_of(&[status(3, 3, None), status(4, 3, Some(3))]);
    let config = json!({"archive_dir": later_export.path()});
    let next = read(config.clone(), first.state).unwrap();
    assert_eq!(statuses_of(&next), ["3", "4"]);
    assert_eq!(read(config, next.state).unwrap().records, 0);
}

#[test]
fn a_state_that_counted_activities_reads_the_archive_again_whole() {
    // The versions before ids kept only a count: 2 activities read, of an archive since shifted.
    let later_export = archive_of(&[status(2, 2, None), status(3, 3, None), status(4, 4, None)]);
    let config = json!({"archive_dir": later_export.path()});
    let mut counted = State::new();
    counted.set("outbox", r#"{"activities": 2, "account": true}"#);
    let again = read(config.clone(), counted).unwrap();
    assert_eq!(statuses_of(&again), ["2", "3", "4"], "none skipped");
    assert_eq!(again.people.len(), 1);
    assert_eq!(read(config, again.state).unwrap().records, 0);
}
