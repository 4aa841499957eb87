//! The Discourse connector on its own fixtures, on the real capture of ask.cyberinfrastructure.org
//! (from saved responses, and over HTTP from a local server that replays them with pagination,
//! split post streams, errors and rate limits), and through the conformance kit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use trellis_conformance::{Options, built_library, run};
use trellis_connector_discourse::{Config, DiscourseConnector};
use trellis_plugin_sdk::egress::{self, EgressPolicy};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/forum")
}

/// The real capture, or `None` (with a message) when the shared data is not here.
fn capture() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let dir = root.join("discourse/ask-cyberinfrastructure");
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
    people: BTreeMap<String, trellis_plugin_sdk::pb::Person>,
    conversations: BTreeMap<String, trellis_plugin_sdk::pb::Conversation>,
    posts: BTreeMap<String, trellis_plugin_sdk::pb::Post>,
    records: usize,
    checkpoints: usize,
    state: State,
}

fn read(config: Value, state: State) -> Result<Read, ConnectorError> {
    let config: Config = serde_json::from_value(config).expect("a config");
    let mut reader = DiscourseConnector.open_read(config, state.clone(), CancelToken::new())?;
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
                            let id = person.r#ref.clone().unwrap().external_id;
                            out.people.insert(id, person);
                        }
                        record::Payload::Conversation(conversation) => {
                            let id = conversation.r#ref.clone().unwrap().external_id;
                            out.conversations.insert(id, conversation);
                        }
                        record::Payload::Post(post) => {
                            let id = post.r#ref.clone().unwrap().external_id;
                            out.posts.insert(id, post);
                        }
                        record::Payload::Asset(_) => panic!("the forum has no assets"),
                    }
                }
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

fn millis(timestamp: &Option<records::Timestamp>) -> i64 {
    records::millis_of(timestamp.as_ref().expect("a timestamp"))
}

fn rfc3339(value: &str) -> i64 {
    records::millis_of(&records::parse_rfc3339(value, "test").unwrap())
}

#[test]
fn the_fixture_forum_maps_to_people_conversations_and_posts() {
    let config = json!({"base_url": "https://forum.example.org/", "saved_dir": fixtures()});
    let full = read(config, State::new()).unwrap();
    assert_eq!(
        full.people.keys().collect::<Vec<_>>(),
        ["ana", "ben", "chen", "dee"]
    );
    assert_eq!(full.conversations.len(), 3);
    assert_eq!(
        full.posts.keys().collect::<Vec<_>>(),
        ["11/2", "11/3", "11/4", "12/2"]
    );
    assert_eq!(full.records, 11, "every record once");
    assert_eq!(full.checkpoints, 4, "one after each topic, and the last");

    let ana = &full.people["ana"];
    assert_eq!(ana.display_name, "Ana Ruiz");
    assert!(ana.member);
    assert_eq!(ana.identities[0].platform, "discourse");
    assert_eq!(ana.identities[0].handle, "ana");
    assert_eq!(
        ana.identities[0].profile_url,
        "https://forum.example.org/u/ana"
    );
    assert_eq!(
        full.people["chen"].display_name, "chen",
        "no name: the handle"
    );

    let tracing = &full.conversations["11"];
    assert_eq!(tracing.title, "Tracing across message queues");
    assert_eq!(
        tracing.url,
        "https://forum.example.org/t/tracing-across-queues/11"
    );
    assert_eq!(
        tracing.body,
        "Our traces stop at the message queue. How do you propagate context?"
    );
    assert_eq!(tracing.tags, ["tracing", "queues"]);
    assert_eq!(tracing.author, "ana");
    assert!(tracing.open);
    assert_eq!(
        tracing.platform,
        i32::from(pb::PlatformKind::PrivateNetwork)
    );
    assert_eq!(
        millis(&tracing.created_at),
        rfc3339("2024-05-01T09:00:00.000Z")
    );
    assert_eq!(
        millis(&tracing.last_activity_at),
        rfc3339("2024-05-03T10:00:00.000Z")
    );
    assert!(!full.conversations["12"].open, "a closed topic");

    assert_eq!(full.posts["11/2"].parent, "", "a reply to the topic itself");
    assert_eq!(full.posts["11/3"].parent, "11/2");
    assert_eq!(full.posts["11/4"].parent, "11/3");
    assert_eq!(full.posts["11/4"].author, "chen");
    assert_eq!(
        full.posts["11/4"].text,
        "Yes, if the consumer re-reads it & starts a new span."
    );
    assert_eq!(full.posts["11/4"].conversation, "11");
    assert_eq!(full.posts["12/2"].reactions, 3);
    assert!(full.posts["12/2"].text.contains("Tail-based sampling"));
}

#[test]
fn a_read_from_the_final_state_yields_nothing_and_new_posts_come_alone() {
    let config = json!({"base_url": "https://forum.example.org", "saved_dir": fixtures()});
    let first = read(config.clone(), State::new()).unwrap();
    let again = read(config, first.state.clone()).unwrap();
    assert_eq!(again.records, 0, "nothing new");

    // The forum moves on: topic 11 gets a fifth post by a new person.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let topic_path = dir.path().join("example.org-forum-post-11-2024-05-04.json");
    let mut topic: Value =
        serde_json::from_str(&std::fs::read_to_string(&topic_path).unwrap()).unwrap();
    let mut reply = topic["post_stream"]["posts"][3].clone();
    reply["id"] = json!(999);
    reply["post_number"] = json!(5);
    reply["username"] = json!("eve");
    reply["name"] = json!("Eve Tan");
    reply["reply_to_post_number"] = json!(1);
    reply["created_at"] = json!("2024-05-06T10:00:00.000Z");
    reply["cooked"] = json!("<p>One more idea.</p>");
    topic["post_stream"]["posts"]
        .as_array_mut()
        .unwrap()
        .push(reply);
    topic["post_stream"]["stream"]
        .as_array_mut()
        .unwrap()
        .push(json!(999));
    topic["last_posted_at"] = json!("2024-05-06T10:00:00.000Z");
    std::fs::write(&topic_path, topic.to_string()).unwrap();
    let list_path = dir.path().join("example.org-forum-topics-2024-05-04.json");
    let mut list: Value =
        serde_json::from_str(&std::fs::read_to_string(&list_path).unwrap()).unwrap();
    list[0]["highest_post_number"] = json!(5);
    list[0]["bumped_at"] = json!("2024-05-06T10:00:00.000Z");
    std::fs::write(&list_path, list.to_string()).unwrap();

    let config = json!({"base_url": "https://forum.example.org", "saved_dir": dir.path()});
    let next = read(config.clone(), first.state).unwrap();
    assert_eq!(next.people.keys().collect::<Vec<_>>(), ["eve"]);
    assert_eq!(next.posts.keys().collect::<Vec<_>>(), ["11/5"]);
    assert_eq!(
        next.conversations.keys().collect::<Vec<_>>(),
        ["11"],
        "the bumped topic, with its new activity time"
    );
    assert_eq!(
        millis(&next.conversations["11"].last_activity_at),
        rfc3339("2024-05-06T10:00:00.000Z")
    );
    assert_eq!(read(config, next.state).unwrap().records, 0);
}

#[test]
fn a_folder_without_saved_responses_is_a_config_error_naming_saved_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config: Config = serde_json::from_value(
        json!({"base_url": "https://forum.example.org", "saved_dir": dir.path()}),
    )
    .unwrap();
    let error = DiscourseConnector.check(&config).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.field.as_deref(), Some("saved_dir"));
    assert!(error.message.contains("needs saved topic lists"), "{error}");
}

#[test]
fn the_real_capture_reads_as_593_posts_by_110_people_in_179_topics() {
    let Some(dir) = capture() else { return };
    let config = json!({"base_url": "https://ask.cyberinfrastructure.org", "saved_dir": dir});
    let full = read(config.clone(), State::new()).unwrap();
    assert_eq!(full.conversations.len(), 179);
    assert_eq!(full.people.len(), 110);
    assert_eq!(
        full.posts.len() + full.conversations.len(),
        593,
        "every post but the topics' first ones is a post record"
    );
    assert_eq!(full.records, 110 + 179 + 414, "no record twice");

    let topic = &full.conversations["72"];
    assert_eq!(
        topic.title,
        "How do I check that all mount points are in place, and mark a node out of service if a mount point is missing before a job is scheduled in Slurm?"
    );
    assert_eq!(topic.tags, ["slurm"]);
    assert_eq!(topic.author, "raminder");
    assert_eq!(
        topic.url,
        "https://ask.cyberinfrastructure.org/t/how-do-i-check-that-all-mount-points-are-in-place-and-mark-a-node-out-of-service-if-a-mount-point-is-missing-before-a-job-is-scheduled-in-slurm/72"
    );
    assert_eq!(
        millis(&topic.created_at),
        rfc3339("2018-03-16T01:09:38.204Z")
    );
    assert_eq!(
        millis(&topic.last_activity_at),
        rfc3339("2018-07-22T21:41:54.139Z")
    );
    let answer = &full.posts["72/2"];
    assert_eq!(answer.author, "payerle");
    assert_eq!(answer.conversation, "72");
    assert_eq!(
        millis(&answer.created_at),
        rfc3339("2018-04-24T16:57:51.965Z")
    );
    assert!(answer.text.starts_with("ANSWER:"), "{}", answer.text);
    assert!(!answer.text.contains("<p>"));
    let payerle = &full.people["payerle"];
    assert_eq!(payerle.display_name, "Tom Payerle");
    assert_eq!(
        payerle.identities[0].profile_url,
        "https://ask.cyberinfrastructure.org/u/payerle"
    );
    let replies = full
        .posts
        .values()
        .filter(|post| !post.parent.is_empty())
        .count();
    assert!(replies > 0 && replies <= 88, "{replies} replies to replies");

    assert_eq!(read(config, full.state).unwrap().records, 0);
}

// ---- the replaying HTTP server ----

/// Serves the capture as the Discourse API would: `/latest.json` in pages of 50 with
/// `more_topics_url`, `/t/{id}.json` (the topic with the most posts cut to its first two posts,
/// the rest through `/t/{id}/posts.json?post_ids[]=`), and under `/limited`, `/failing` and
/// `/private` a 429 with Retry-After, a 500, and a 403 without the API key; under `/stuck` it
/// ignores `page`, as some servers and proxies do: every page is the first, with a link on.
struct Replay {
    base: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn replay(dir: &Path) -> Replay {
    let mut lists: Vec<Value> = Vec::new();
    let mut topics: BTreeMap<u64, Value> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let body: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if name.contains("-post-") {
            topics.insert(body["id"].as_u64().unwrap(), body);
        } else if name.ends_with(&format!("-topics-{}", &name[name.len() - 15..])) {
            lists.extend(body.as_array().unwrap().iter().cloned());
        }
    }
    lists.sort_by(|a, b| b["bumped_at"].as_str().cmp(&a["bumped_at"].as_str()));
    let split = *topics
        .iter()
        .max_by_key(|(_, topic)| topic["post_stream"]["posts"].as_array().unwrap().len())
        .unwrap()
        .0;
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let url = request.url().to_owned();
            log.lock().unwrap().push(url.clone());
            let header = |name: &str| {
                request
                    .headers()
                    .iter()
                    .find(|h| h.field.to_string().eq_ignore_ascii_case(name))
                    .map(|h| h.value.as_str().to_owned())
            };
            let (status, body, extra): (u16, String, Option<(&str, &str)>) = if url
                .starts_with("/limited/")
            {
                (
                    429,
                    "{\"errors\":[\"too many requests\"]}".into(),
                    Some(("Retry-After", "7")),
                )
            } else if url.starts_with("/failing/") {
                (500, "oops".into(), None)
            } else if url.starts_with("/private/")
                && (header("Api-Key").as_deref() != Some("secret")
                    || header("Api-Username").as_deref() != Some("system"))
            {
                (403, "{\"errors\":[\"not allowed\"]}".into(), None)
            } else {
                let stuck = url.starts_with("/stuck/");
                let path = url
                    .trim_start_matches("/private")
                    .trim_start_matches("/stuck")
                    .split('?')
                    .next()
                    .unwrap()
                    .to_owned();
                let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
                if path == "/latest.json" {
                    let asked: usize = query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("page="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let page = if stuck { 0 } else { asked };
                    let chunk: Vec<Value> =
                        lists.iter().skip(page * 50).take(50).cloned().collect();
                    let mut topic_list =
                        json!({"can_create_topic": false, "per_page": 50, "topics": chunk});
                    if stuck || (page + 1) * 50 < lists.len() {
                        topic_list["more_topics_url"] =
                            json!(format!("/latest?order=activity&page={}", asked + 1));
                    }
                    (
                        200,
                        json!({"users": [], "topic_list": topic_list}).to_string(),
                        None,
                    )
                } else if let Some(rest) = path.strip_prefix("/t/") {
                    if let Some(id) = rest.strip_suffix("/posts.json") {
                        let topic = &topics[&id.parse::<u64>().unwrap()];
                        let wanted: BTreeSet<u64> = query
                            .split('&')
                            .filter_map(|pair| pair.strip_prefix("post_ids[]="))
                            .map(|n| n.parse().unwrap())
                            .collect();
                        let posts: Vec<Value> = topic["post_stream"]["posts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|post| wanted.contains(&post["id"].as_u64().unwrap()))
                            .cloned()
                            .collect();
                        (
                            200,
                            json!({"post_stream": {"posts": posts}, "id": topic["id"]}).to_string(),
                            None,
                        )
                    } else {
                        let id: u64 = rest.trim_end_matches(".json").parse().unwrap();
                        match topics.get(&id) {
                            Some(topic) if id == split => {
                                let mut cut = topic.clone();
                                cut["post_stream"]["posts"]
                                    .as_array_mut()
                                    .unwrap()
                                    .truncate(2);
                                (200, cut.to_string(), None)
                            }
                            Some(topic) => (200, topic.to_string(), None),
                            None => (404, "{\"errors\":[\"not found\"]}".into(), None),
                        }
                    }
                } else {
                    (404, "{\"errors\":[\"not found\"]}".into(), None)
                }
            };
            let mut response = tiny_http::Response::from_string(body).with_status_code(status);
            response.add_header(
                tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap(),
            );
            if let Some((name, value)) = extra {
                response.add_header(tiny_http::Header::from_bytes(name, value).unwrap());
            }
            let _ = request.respond(response);
        }
    });
    Replay {
        base: format!("http://127.0.0.1:{port}"),
        requests,
    }
}

#[test]
fn over_http_the_replayed_capture_reads_the_same_as_the_saved_responses() {
    let Some(dir) = capture() else { return };
    let server = replay(&dir);
    let _local = egress::enter(EgressPolicy::allowing_private());
    let saved = read(
        json!({"base_url": server.base, "saved_dir": dir}),
        State::new(),
    )
    .unwrap();
    let live = read(json!({"base_url": server.base}), State::new()).unwrap();
    assert_eq!(live.conversations.len(), 179);
    assert_eq!(live.people.len(), 110);
    assert_eq!(live.posts.len(), 414);
    assert_eq!(live.conversations, saved.conversations);
    assert_eq!(live.posts, saved.posts);
    assert_eq!(live.people, saved.people);
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|url| url.contains("page=3")),
        "pagination followed: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|url| url.contains("/posts.json?post_ids[]=")),
        "the rest of a long post stream fetched: {requests:?}"
    );
    // From the final state only the first page of the list is asked for, and no topic.
    let before = requests.len();
    let again = read(json!({"base_url": server.base}), live.state).unwrap();
    assert_eq!(again.records, 0);
    let after = server.requests.lock().unwrap()[before..].to_vec();
    assert!(
        after.iter().all(|url| url.starts_with("/latest.json")),
        "{after:?}"
    );
    assert_eq!(after.len(), 1, "{after:?}");
}

#[test]
fn over_http_errors_map_to_the_sdk_kinds() {
    let Some(dir) = capture() else { return };
    let server = replay(&dir);
    let _local = egress::enter(EgressPolicy::allowing_private());
    let limited = read(
        json!({"base_url": format!("{}/limited", server.base)}),
        State::new(),
    )
    .unwrap_err();
    assert_eq!(limited.kind, ErrorKind::RateLimited);
    assert_eq!(limited.retry_after, Some(Duration::from_secs(7)));

    let failing = read(
        json!({"base_url": format!("{}/failing", server.base)}),
        State::new(),
    )
    .unwrap_err();
    assert_eq!(failing.kind, ErrorKind::Transient);

    let private = format!("{}/private", server.base);
    let refused = DiscourseConnector
        .check(&serde_json::from_value(json!({"base_url": private})).unwrap())
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Config);
    assert_eq!(refused.field.as_deref(), Some("api_key"));
    let accepted = DiscourseConnector
        .check(
            &serde_json::from_value(
                json!({"base_url": private, "api_key": "secret", "api_username": "system"}),
            )
            .unwrap(),
        )
        .unwrap();
    assert!(accepted.contains("50 topics"), "{accepted}");

    let closed = DiscourseConnector
        .check(&serde_json::from_value(json!({"base_url": "http://127.0.0.1:9"})).unwrap())
        .unwrap_err();
    assert_eq!(closed.kind, ErrorKind::Transient);
}

#[test]
fn the_kit_passes_on_the_fixture_forum() {
    let config =
        json!({"base_url": "https://forum.example.org", "saved_dir": fixtures(), "batch_size": 2});
    let report = run(&Options::new(
        built_library("trellis_connector_discourse"),
        config.to_string(),
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn the_kit_passes_on_the_real_capture_saved_and_over_http() {
    let Some(dir) = capture() else { return };
    let saved = json!({"base_url": "https://ask.cyberinfrastructure.org", "saved_dir": dir, "batch_size": 50});
    let mut options = Options::new(
        built_library("trellis_connector_discourse"),
        saved.to_string(),
    );
    options.max_resumes = 30;
    let report = run(&options);
    println!("{report}");
    assert!(report.passed(), "{report}");

    let server = replay(&dir);
    let live = json!({"base_url": server.base, "batch_size": 50});
    let mut options = Options::new(
        built_library("trellis_connector_discourse"),
        live.to_string(),
    );
    options.max_resumes = 10;
    options.egress = EgressPolicy::allowing_private();
    let report = run(&options);
    println!("{report}");
    assert!(report.passed(), "{report}");
}

/// A copy of the fixture forum in a fresh folder.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Topic 13 of the fixtures saved again as topic `id`, titled `title`.
fn another_topic(id: u64, title: &str) -> Value {
    let path = fixtures().join("example.org-forum-post-13-2024-05-04.json");
    let mut topic: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    topic["id"] = json!(id);
    topic["title"] = json!(title);
    topic["slug"] = json!("unlisted");
    for post in topic["post_stream"]["posts"].as_array_mut().unwrap() {
        post["topic_id"] = json!(id);
        post["id"] = json!(id * 100 + post["post_number"].as_u64().unwrap());
    }
    let ids: Vec<Value> = topic["post_stream"]["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["id"].clone())
        .collect();
    topic["post_stream"]["stream"] = json!(ids);
    topic
}

#[test]
fn a_saved_topic_that_no_list_mentions_is_read_all_the_same() {
    let dir = fixture_copy();
    std::fs::write(
        dir.path().join("example.org-forum-post-14-2024-05-05.json"),
        another_topic(14, "Saved after the list").to_string(),
    )
    .unwrap();
    let config = json!({"base_url": "https://forum.example.org", "saved_dir": dir.path()});
    let checked = DiscourseConnector
        .check(&serde_json::from_value(config.clone()).unwrap())
        .unwrap();
    assert!(checked.contains("4 topics"), "{checked}");
    let full = read(config.clone(), State::new()).unwrap();
    assert_eq!(
        full.conversations.keys().collect::<Vec<_>>(),
        ["11", "12", "13", "14"],
        "every topic check counted"
    );
    assert_eq!(full.conversations["14"].title, "Saved after the list");
    assert_eq!(read(config, full.state).unwrap().records, 0);

    // Topics alone, without any list, are a forum too.
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir(bare.path().join("t")).unwrap();
    std::fs::write(
        bare.path().join("t/14.json"),
        another_topic(14, "Only topics here").to_string(),
    )
    .unwrap();
    let topics_only = read(json!({"saved_dir": bare.path()}), State::new()).unwrap();
    assert_eq!(topics_only.conversations.keys().collect::<Vec<_>>(), ["14"]);
}

#[test]
fn base_url_is_needed_only_without_saved_dir() {
    let schema =
        trellis_plugin_sdk::ConfigSchema::new(&DiscourseConnector.spec().config_schema).unwrap();
    schema
        .validate(&json!({"saved_dir": "/some/folder"}))
        .unwrap();
    schema
        .validate(&json!({"base_url": "https://forum.example.org"}))
        .unwrap();
    let neither = schema.validate(&json!({"batch_size": 10})).unwrap_err();
    assert_eq!(neither.kind, ErrorKind::Config);
    assert!(neither.message.contains("base_url"), "{neither}");

    // Saved responses without an address: the same records, without links.
    let without = read(json!({"saved_dir": fixtures()}), State::new()).unwrap();
    let with = read(
        json!({"base_url": "https://forum.example.org", "saved_dir": fixtures()}),
        State::new(),
    )
    .unwrap();
    assert_eq!(without.posts, with.posts);
    assert_eq!(
        without.conversations.keys().collect::<Vec<_>>(),
        with.conversations.keys().collect::<Vec<_>>()
    );
    assert_eq!(without.conversations["11"].url, "");
    assert_eq!(without.people["ana"].identities[0].profile_url, "");
    assert_eq!(
        without.conversations["11"].title,
        with.conversations["11"].title
    );

    // Neither, past the schema (a caller that skips it): a config error naming both.
    let config: Config = serde_json::from_value(json!({})).unwrap();
    let error = DiscourseConnector.check(&config).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.field.as_deref(), Some("base_url"));
    assert!(error.message.contains("saved_dir"), "{error}");
}

fn api_layout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api-layout")
}

#[test]
fn the_layout_of_discourses_own_api_fixtures_reads_in_saved_mode() {
    // topic.json (/t/57.json), latest.json (/latest.json), posts_latest.json (/posts.json) and
    // user.json (/u/sam.json), named as Discourse's API client names its fixtures.
    let config = json!({"base_url": "https://try.example.org", "saved_dir": api_layout()});
    let checked = DiscourseConnector
        .check(&serde_json::from_value(config.clone()).unwrap())
        .unwrap();
    assert!(
        checked.contains("1 topic lists, 1 topics, 1 topics only as latest posts and 1 users"),
        "{checked}"
    );
    let full = read(config.clone(), State::new()).unwrap();
    assert_eq!(full.conversations.keys().collect::<Vec<_>>(), ["57", "61"]);
    let sandbox = &full.conversations["57"];
    assert_eq!(sandbox.title, "This site is a sandbox");
    assert_eq!(
        sandbox.url,
        "https://try.example.org/t/this-site-is-a-sandbox/57"
    );
    assert_eq!(sandbox.author, "sam");
    assert_eq!(
        millis(&sandbox.created_at),
        rfc3339("2013-02-04T15:26:25.977-05:00")
    );
    assert_eq!(
        full.posts.keys().collect::<Vec<_>>(),
        ["57/14", "57/2", "57/3", "61/2"],
        "topic 57 from its own file, not from the latest posts; topic 61 from them"
    );
    assert_eq!(full.posts["57/3"].reactions, 5);
    let partial = &full.conversations["61"];
    assert_eq!(partial.title, "An uncategorized question");
    assert_eq!(partial.body, "Is this the right place to ask?");
    assert_eq!(partial.author, "jo");
    assert_eq!(full.posts["61/2"].text, "Yes, ask away.");

    let sam = &full.people["sam"];
    assert_eq!(sam.display_name, "Sam Example");
    assert_eq!(sam.bio, "Runs the sandbox.");
    assert_eq!(
        millis(&sam.created_at),
        rfc3339("2013-01-02T08:04:25.104-05:00")
    );
    assert_eq!(
        full.people.keys().collect::<Vec<_>>(),
        ["adam", "jo", "rae", "sam", "stefan"]
    );
    assert_eq!(read(config, full.state).unwrap().records, 0);
}

#[test]
fn the_kit_passes_on_the_api_layout_without_base_url() {
    let config = json!({"saved_dir": api_layout(), "batch_size": 1});
    let report = run(&Options::new(
        built_library("trellis_connector_discourse"),
        config.to_string(),
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn a_server_that_ignores_the_page_is_not_asked_for_it_again_and_again() {
    let server = replay(&fixtures());
    let _local = egress::enter(EgressPolicy::allowing_private());
    let stuck = format!("{}/stuck", server.base);
    let full = read(json!({"base_url": stuck}), State::new()).unwrap();
    assert_eq!(
        full.conversations.keys().collect::<Vec<_>>(),
        ["11", "12", "13"]
    );
    let pages = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|url| url.starts_with("/stuck/latest.json"))
        .count();
    assert_eq!(pages, 2, "the first page, and the same again: the end");
}

/// What a server answers that a source should not read: never in an error.
const PEER_SECRET: &str = "internal-session-cookie-0f3a9";

/// A local server answering `/failing/…` with a 500 and `/odd/…` with JSON of another shape,
/// both quoting [`PEER_SECRET`]; counts its requests.
fn odd_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (status, body) = if request.url().starts_with("/failing/") {
                (500, format!("session {PEER_SECRET} expired"))
            } else {
                (200, format!(r#"{{"topic_list": "{PEER_SECRET}"}}"#))
            };
            let _ =
                request.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (base, requests)
}

#[test]
fn a_forum_on_a_loopback_address_is_refused_unless_allowed_and_its_answers_are_never_quoted() {
    let (base, requests) = odd_server();
    let config = |path: &str| -> Config {
        serde_json::from_value(json!({"base_url": format!("{base}{path}")})).unwrap()
    };
    let refused = DiscourseConnector.check(&config("/odd")).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Config, "{refused}");
    assert_eq!(refused.field.as_deref(), Some("base_url"));
    assert!(refused.message.contains("[egress] allow"), "{refused}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);

    let _allowed = egress::enter(EgressPolicy::allowing([base.trim_start_matches("http://")]));
    for path in ["/failing", "/odd"] {
        let error = DiscourseConnector.check(&config(path)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Transient, "{error}");
        assert!(error.message.contains(&base), "names the URL: {error}");
        assert!(!error.to_string().contains(PEER_SECRET), "{path}: {error}");
    }
}
