//! Reads through the connector's Rust API: the project's own fixture dump mapped field by field,
//! resumption by Id, a newer dump read incrementally, refusals; and the real dumps of the shared
//! data (counts and exact mappings checked against the files), skipped when they are missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trellis_connector_stackexchange::{Config, StackExchangeConnector};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini")
}

fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    if root.join("stackexchange").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "skipped: no shared data at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        None
    }
}

fn config(path: &Path, extra: serde_json::Value) -> Config {
    let mut value = serde_json::json!({"path": path});
    if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    serde_json::from_value(value).unwrap()
}

/// Everything a read produces, and its final state.
#[derive(Default)]
struct Read {
    people: Vec<pb::Person>,
    conversations: Vec<pb::Conversation>,
    posts: Vec<(String, pb::Post)>,
    state: State,
}

fn read(config: Config, state: State) -> Read {
    let mut reader = StackExchangeConnector
        .open_read(config, state.clone(), CancelToken::new())
        .unwrap();
    let mut out = Read {
        state,
        ..Read::default()
    };
    loop {
        let batch = reader.next_batch().unwrap();
        let last = batch.is_last();
        for item in batch.into_proto().items {
            match item.item.unwrap() {
                batch_item::Item::Record(record) => match record.payload.unwrap() {
                    record::Payload::Person(person) => out.people.push(person),
                    record::Payload::Conversation(conversation) => {
                        out.conversations.push(conversation)
                    }
                    record::Payload::Post(post) => out.posts.push((record.stream, post)),
                    record::Payload::Asset(_) => panic!("no assets expected"),
                },
                batch_item::Item::Checkpoint(checkpoint) => {
                    out.state.set(&checkpoint.stream, &checkpoint.state_json)
                }
            }
        }
        if last {
            return out;
        }
    }
}

fn id_of(reference: &Option<pb::RecordRef>) -> &str {
    &reference.as_ref().unwrap().external_id
}

#[test]
fn the_fixture_dump_maps_field_by_field() {
    let read = read(
        config(
            &fixture(),
            serde_json::json!({"site_url": "https://garden.stackexchange.com/", "batch_size": 2}),
        ),
        State::new(),
    );
    assert_eq!(read.people.len(), 4);
    let ada = read
        .people
        .iter()
        .find(|person| id_of(&person.r#ref) == "2")
        .unwrap();
    assert_eq!(ada.display_name, "Ada Gardener");
    assert!(ada.member);
    assert!(
        ada.bio.starts_with("I grow trellises & climbing roses."),
        "{}",
        ada.bio
    );
    assert!(ada.bio.contains("pruning") && !ada.bio.contains('<'));
    assert_eq!(ada.identities.len(), 3);
    assert_eq!(ada.identities[0].platform, "stackexchange");
    assert_eq!(ada.identities[0].handle, "Ada Gardener");
    assert_eq!(
        ada.identities[0].profile_url,
        "https://garden.stackexchange.com/users/2"
    );
    assert_eq!(ada.identities[1].platform, "github");
    assert_eq!(ada.identities[1].handle, "adagardener");
    assert_eq!(
        (
            ada.identities[2].platform.as_str(),
            ada.identities[2].handle.as_str(),
            ada.identities[2].profile_url.as_str()
        ),
        ("stackexchange", "", "https://stackexchange.com/users/20"),
        "the network account"
    );
    assert!(
        ada.identities
            .iter()
            .all(|identity| !identity.handle_unique),
        "display names are not unique"
    );
    let bo = read
        .people
        .iter()
        .find(|person| id_of(&person.r#ref) == "3")
        .unwrap();
    assert_eq!(
        bo.identities.len(),
        2,
        "a home page is not a profile: the site user and the network account only"
    );
    let cy = read
        .people
        .iter()
        .find(|person| id_of(&person.r#ref) == "5")
        .unwrap();
    assert_eq!(cy.identities[1].handle, "@cy@fosstodon.org");

    assert_eq!(read.conversations.len(), 2);
    let first = &read.conversations[0];
    assert_eq!(id_of(&first.r#ref), "1");
    assert_eq!(first.platform, pb::PlatformKind::QaForum as i32);
    assert_eq!(first.title, "Best wood for a trellis");
    assert_eq!(
        first.body,
        "Which wood lasts longest for a garden trellis?\n\nCedar or oak?"
    );
    assert_eq!(first.tags, vec!["wood", "durability"]);
    assert_eq!(first.author, "2");
    assert!(first.open);
    assert_eq!(first.url, "https://garden.stackexchange.com/questions/1");
    assert_eq!(
        records::millis_of(first.created_at.as_ref().unwrap()),
        1_580_544_000_000
    );
    assert_eq!(
        records::millis_of(first.last_activity_at.as_ref().unwrap()),
        1_580_731_200_000
    );
    let closed = &read.conversations[1];
    assert_eq!(closed.tags, vec!["design", "spacing"]);
    assert!(!closed.open, "a question with a ClosedDate is closed");

    let posts: BTreeMap<&str, (&str, &pb::Post)> = read
        .posts
        .iter()
        .map(|(stream, post)| (id_of(&post.r#ref), (stream.as_str(), post)))
        .collect();
    assert_eq!(
        posts.keys().copied().collect::<Vec<_>>(),
        vec!["2", "3", "8", "c1", "c2", "c4"],
        "tag wikis (types 4, 5) and the comment on one are skipped"
    );
    let (stream, answer) = posts["2"];
    assert_eq!(stream, "answers");
    assert_eq!(
        (answer.conversation.as_str(), answer.parent.as_str()),
        ("1", "1")
    );
    assert_eq!(answer.author, "3");
    assert_eq!(answer.text, "Cedar: it resists rot.");
    assert_eq!(answer.reactions, 3);
    assert_eq!(posts["3"].1.author, "", "a deleted owner has no author");
    assert_eq!(posts["3"].1.reactions, 0, "a negative score is no reaction");
    let (stream, comment) = posts["c2"];
    assert_eq!(stream, "comments");
    assert_eq!(
        (comment.conversation.as_str(), comment.parent.as_str()),
        ("1", "2"),
        "a comment on an answer belongs to the question and replies to the answer"
    );
    assert_eq!(posts["c1"].1.text, "Which climate? It matters & a lot.");
    assert_eq!(posts["c4"].1.conversation, "7");
    assert_eq!(posts["c4"].1.author, "");

    let cursor: serde_json::Value = serde_json::from_str(read.state.raw("posts").unwrap()).unwrap();
    assert_eq!(
        cursor,
        serde_json::json!({"id": 8, "created": "2020-02-04T08:00:00.000"})
    );
}

#[test]
fn the_final_state_reads_nothing_and_a_newer_dump_brings_only_the_new_rows() {
    let first = read(config(&fixture(), serde_json::json!({})), State::new());
    let again = read(
        config(&fixture(), serde_json::json!({})),
        first.state.clone(),
    );
    assert!(again.people.is_empty() && again.conversations.is_empty() && again.posts.is_empty());

    // A newer dump of the same site: the old rows plus a new user, question and comment.
    let newer = tempfile::tempdir().unwrap();
    for name in ["Users.xml", "Posts.xml", "Comments.xml"] {
        let text = std::fs::read_to_string(fixture().join(name)).unwrap();
        let (closing, row) = match name {
            "Users.xml" => (
                "</users>",
                r#"<row Id="9" CreationDate="2020-03-01T00:00:00.000" DisplayName="Dee" />"#,
            ),
            "Posts.xml" => (
                "</posts>",
                r#"<row Id="12" PostTypeId="1" CreationDate="2020-03-01T00:00:00.000" Title="Trellis paint" Body="&lt;p&gt;Which paint?&lt;/p&gt;" OwnerUserId="9" Tags="&lt;paint&gt;" />"#,
            ),
            _ => (
                "</comments>",
                r#"<row Id="7" PostId="12" Text="Linseed oil." CreationDate="2020-03-02T00:00:00.000" UserId="2" />"#,
            ),
        };
        let text = text.replace(closing, &format!("  {row}\n{closing}"));
        std::fs::write(newer.path().join(name), text).unwrap();
    }
    let incremental = read(config(newer.path(), serde_json::json!({})), first.state);
    assert_eq!(incremental.people.len(), 1);
    assert_eq!(id_of(&incremental.people[0].r#ref), "9");
    assert_eq!(incremental.conversations.len(), 1);
    assert_eq!(incremental.conversations[0].title, "Trellis paint");
    assert_eq!(incremental.posts.len(), 1);
    assert_eq!(incremental.posts[0].1.conversation, "12");
}

#[test]
fn a_file_out_of_id_order_is_refused_and_a_missing_folder_is_a_config_error() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("Posts.xml"),
        r#"<posts><row Id="5" PostTypeId="1" Title="a" /><row Id="3" PostTypeId="1" Title="b" /></posts>"#,
    )
    .unwrap();
    let mut reader = StackExchangeConnector
        .open_read(
            config(folder.path(), serde_json::json!({})),
            State::new(),
            CancelToken::new(),
        )
        .unwrap();
    let error = loop {
        match reader.next_batch() {
            Ok(batch) if batch.is_last() => panic!("the read should fail"),
            Ok(_) => {}
            Err(error) => break error,
        }
    };
    assert!(
        error.message.contains("Id 3 does not follow Id 5"),
        "{error}"
    );

    let missing = StackExchangeConnector
        .check(&config(
            Path::new("/nonexistent/dump"),
            serde_json::json!({}),
        ))
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::Config);
    assert_eq!(missing.field.as_deref(), Some("path"));
    let empty = tempfile::tempdir().unwrap();
    let no_posts = StackExchangeConnector
        .check(&config(empty.path(), serde_json::json!({})))
        .unwrap_err();
    assert!(no_posts.message.contains("Posts.xml"), "{no_posts}");
}

/// Counts rows of a dump file by `PostTypeId`, with a plain scan independent of the connector.
fn count_rows(path: &Path, attribute: &str) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|line| line.trim_start().starts_with("<row "))
    {
        let key = format!(" {attribute}=\"");
        let value = line
            .find(&key)
            .map(|start| {
                let rest = &line[start + key.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .unwrap_or_default();
        *counts.entry(value).or_default() += 1;
    }
    counts
}

#[test]
fn the_real_quantumcomputing_dump_has_the_counts_of_the_sources() {
    let Some(data) = shared_data() else { return };
    let folder = data.join("stackexchange/quantumcomputing");
    let read = read(
        config(
            &folder,
            serde_json::json!({"site_url": "https://quantumcomputing.stackexchange.com"}),
        ),
        State::new(),
    );
    // SOURCES.md: 1,986 posts, 3,461 users, 3,413 comments.
    let types = count_rows(&folder.join("Posts.xml"), "PostTypeId");
    assert_eq!(types.values().sum::<usize>(), 1986);
    assert_eq!(read.people.len(), 3461);
    assert_eq!(read.conversations.len(), types["1"]);
    assert_eq!(read.conversations.len(), 612);
    let answers = read.posts.iter().filter(|(stream, _)| stream == "answers");
    assert_eq!(answers.count(), types["2"]);
    let comments = read
        .posts
        .iter()
        .filter(|(stream, _)| stream == "comments")
        .count();
    assert_eq!(
        comments, 3413,
        "every comment of the dump is on a question or answer"
    );

    let first = &read.conversations[0];
    assert_eq!(id_of(&first.r#ref), "1");
    assert_eq!(
        first.title,
        "Can a Turing machine simulate a quantum computer?"
    );
    assert_eq!(first.tags, vec!["simulation", "quantum-turing-machine"]);
    assert_eq!(first.author, "7");
    assert!(
        first
            .body
            .starts_with("I know that a Turing machine¹ can theoretically simulate \"anything\""),
        "{}",
        first.body
    );
    assert!(!first.body.contains("&quot;") && !first.body.contains("<p>"));
    assert_eq!(
        first.url,
        "https://quantumcomputing.stackexchange.com/questions/1"
    );
    for conversation in &read.conversations {
        assert!(!conversation.title.is_empty() && !conversation.tags.is_empty());
        assert!(conversation.created_at.is_some() && conversation.last_activity_at.is_some());
    }
    let closed = read
        .conversations
        .iter()
        .filter(|conversation| !conversation.open)
        .count();
    let closed_in_file = std::fs::read_to_string(folder.join("Posts.xml"))
        .unwrap()
        .matches(" ClosedDate=\"")
        .count();
    assert_eq!(closed, closed_in_file);
}

#[test]
fn the_real_conlang_dump_maps_exactly() {
    let Some(data) = shared_data() else { return };
    let folder = data.join("stackexchange/conlang");
    let read = read(config(&folder, serde_json::json!({})), State::new());
    assert_eq!(read.people.len(), 272);
    assert_eq!(read.conversations.len(), 54);
    let answers: Vec<&pb::Post> = read
        .posts
        .iter()
        .filter(|(stream, _)| stream == "answers")
        .map(|(_, post)| post)
        .collect();
    assert_eq!(answers.len(), 115);
    let comments = read
        .posts
        .iter()
        .filter(|(stream, _)| stream == "comments")
        .count();
    assert_eq!(
        comments, 230,
        "every comment of the dump is on a question or answer"
    );

    let question = &read.conversations[0];
    assert_eq!(
        question.title,
        "Are questions asked in conlangs accepted on this site?"
    );
    assert_eq!(question.tags, vec!["discussion", "on-topic"]);
    assert_eq!(question.author, "14");
    assert!(
        question
            .body
            .ends_with("do we accept questions asked in (popular) conlangs?")
    );
    let answer = answers[0];
    assert_eq!(id_of(&answer.r#ref), "2");
    assert_eq!(
        (answer.conversation.as_str(), answer.parent.as_str()),
        ("1", "1")
    );
    assert_eq!(answer.reactions, 22);
    assert!(
        answer
            .text
            .starts_with("I don't think this is a good idea to allow on-site.")
    );

    let comment = read
        .posts
        .iter()
        .map(|(_, post)| post)
        .find(|post| id_of(&post.r#ref) == "c3")
        .unwrap();
    assert_eq!(
        (comment.conversation.as_str(), comment.parent.as_str()),
        ("1", "2")
    );
    assert_eq!(comment.author, "12");
    assert!(
        comment
            .text
            .starts_with("\"*English is the official language of Stack Exchange")
    );

    let community = &read.people[0];
    assert_eq!(id_of(&community.r#ref), "-1");
    assert_eq!(community.display_name, "Community");
    assert!(community.bio.starts_with("Hi, I'm not really a person."));
    assert!(community.bio.contains("Remove abandoned questions"));
    assert_eq!(community.identities[0].profile_url, "");
    assert_eq!(
        community.identities.len(),
        1,
        "the network's own account has no page"
    );
}
