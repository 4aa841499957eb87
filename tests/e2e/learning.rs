//! A workspace learns how to rank people from its own history.
//!
//! The community here changes hands: until day 150 one expert per topic answers every question
//! of it; from day 150 another takes over; askers thank each other in comments
//! everywhere. Asked on day 200 who should be brought into a new question, the default fusion
//! misses the expert of the day (the profiles, the threads like the question and the activity
//! are someone else's); a server that learned from this community's history (who answered
//! what, at moments inside it) knows that who answered lately is who answers, and says so in
//! `trellis model show`.

use super::*;

const SOURCE: &str = "forum";
const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
const TOPICS: [[&str; 6]; 6] = [
    ["kubernetes", "helm", "pod", "ingress", "cluster", "node"],
    ["postgres", "index", "vacuum", "query", "replica", "wal"],
    ["react", "component", "hook", "render", "props", "jsx"],
    ["rust", "borrow", "lifetime", "trait", "cargo", "crate"],
    [
        "terraform",
        "module",
        "provider",
        "plan",
        "backend",
        "drift",
    ],
    [
        "kafka",
        "topic",
        "partition",
        "consumer",
        "offset",
        "broker",
    ],
];
const DETAILS: [&str; 11] = [
    "the defaults",
    "a fresh install",
    "the latest release",
    "docker compose",
    "a staging copy",
    "two replicas",
    "the official guide",
    "a minimal example",
    "verbose logging",
    "a clean cache",
    "an older version",
];
const OPENINGS: [&str; 4] = [
    "How do I fix my",
    "What is the best way to set up",
    "Why does my setup fail with",
    "Any advice on",
];

fn at(day: f64) -> Option<prost_types::Timestamp> {
    let millis = START_MS + (day * DAY_MS as f64) as i64;
    Some(prost_types::Timestamp {
        seconds: millis / 1000,
        nanos: 0,
    })
}

fn record(record: pb::ingest_request::Record) -> pb::IngestRequest {
    pb::IngestRequest {
        workspace: String::new(),
        record: Some(record),
    }
}

fn words(topic: usize, from: usize, count: usize) -> String {
    (0..count)
        .map(|index| TOPICS[topic][(from + index) % 6])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The expert who answers `topic` on `day`: "old-T" until day 150, "new-T" after.
fn expert(topic: usize, day: f64) -> String {
    if day < 150.0 {
        format!("old-{topic}")
    } else {
        format!("new-{topic}")
    }
}

/// 400 questions over 200 days, each answered by its topic's expert of the day and commented on
/// by another asker.
pub(super) fn community() -> Vec<pb::IngestRequest> {
    let mut messages = Vec::new();
    for topic in 0..TOPICS.len() {
        for era in ["old", "new"] {
            messages.push(record(pb::ingest_request::Record::Person(pb::Person {
                r#ref: reference(SOURCE, &format!("{era}-{topic}")),
                display_name: format!("{era} expert {topic}"),
                member: true,
                ..Default::default()
            })));
        }
    }
    for question in 0..400usize {
        let day = question as f64 * 0.5;
        let topic = question % TOPICS.len();
        let id = format!("q{question}");
        let asker = format!("asker-{}", question % 30);
        messages.push(record(pb::ingest_request::Record::Conversation(
            pb::Conversation {
                r#ref: reference(SOURCE, &id),
                platform: pb::PlatformKind::QaForum.into(),
                title: format!(
                    "{} {} {}",
                    OPENINGS[question % OPENINGS.len()],
                    TOPICS[topic][(question * 7) % 6],
                    TOPICS[topic][(question * 11 + 1) % 6]
                ),
                body: format!(
                    "I tried {} with {} but it still fails; {} looks wrong.",
                    words(topic, question * 5 + 2, 1 + question % 3),
                    DETAILS[question % DETAILS.len()],
                    TOPICS[topic][(question * 13 + 4) % 6]
                ),
                author: asker.clone(),
                open: false,
                created_at: at(day),
                ..Default::default()
            },
        )));
        let answerer = expert(topic, day);
        let length = 6 + question % 3;
        messages.push(record(pb::ingest_request::Record::Post(pb::Post {
            r#ref: reference(SOURCE, &format!("a{question}")),
            conversation: id.clone(),
            author: answerer,
            created_at: at(day + 0.1),
            text: format!(
                "Check the {} settings first.",
                words(topic, question, length)
            ),
            ..Default::default()
        })));
        messages.push(record(pb::ingest_request::Record::Post(pb::Post {
            r#ref: reference(SOURCE, &format!("c{question}")),
            conversation: id,
            parent: format!("a{question}"),
            author: format!("asker-{}", (question + 7) % 30),
            created_at: at(day + 0.2),
            text: "Thanks, that helped me too.".to_owned(),
            ..Default::default()
        })));
    }
    // The question asked now, on day 200, about the third topic: nobody has answered it yet.
    messages.push(record(pb::ingest_request::Record::Conversation(
        pb::Conversation {
            r#ref: reference(SOURCE, "new-question"),
            platform: pb::PlatformKind::QaForum.into(),
            title: "Why does my react component render twice".to_owned(),
            body: "The hook runs on every render and the props look stale.".to_owned(),
            author: "asker-3".to_owned(),
            open: true,
            created_at: at(200.2),
            ..Default::default()
        },
    )));
    messages
}

pub(super) async fn status_of(server: &Server) -> pb::WorkspaceStatus {
    pb::server_service_client::ServerServiceClient::new(server.channel.clone())
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .expect("the status")
        .into_inner()
        .workspaces
        .into_iter()
        .find(|workspace| workspace.workspace == "default")
        .expect("the default workspace")
}

async fn first_suggested(server: &Server) -> String {
    let response = server
        .insight()
        .suggest_participants(pb::SuggestParticipantsRequest {
            conversation: reference(SOURCE, "new-question"),
            limit: 5,
            ..Default::default()
        })
        .await
        .expect("participants")
        .into_inner();
    response.participants[0]
        .person
        .as_ref()
        .and_then(|person| person.r#ref.as_ref())
        .map(|reference| reference.external_id.clone())
        .expect("a person")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_learns_who_answers_from_its_own_history() {
    let messages = community();
    let records = messages.len() as u64;

    // Without learning, the default fusion serves.
    let plain_dir = test_dir().expect("a temporary folder");
    let plain = Server::start_with(
        &plain_dir.path().join("t.db"),
        &[("TRELLIS__LEARNING__BACKGROUND", "false")],
    )
    .await;
    assert!(ingest(&plain, messages.clone()).await.errors.is_empty());
    let status = status_of(&plain).await;
    assert_eq!(status.models_fitted_records, 0);
    let kinds: Vec<&str> = status
        .ranking_models
        .iter()
        .map(|model| model.kind.as_str())
        .collect();
    assert_eq!(kinds, ["participants", "discussions"]);
    for model in &status.ranking_models {
        assert!(!model.learned);
        assert!(
            model.default_reason.contains("no model learned yet"),
            "{model:?}"
        );
    }
    let by_default = first_suggested(&plain).await;
    assert_ne!(
        by_default, "new-2",
        "the default fusion misses the change of hands"
    );

    // With learning, the server fits once the records stop arriving.
    let (_dir, server) = fresh().await;
    assert!(ingest(&server, messages).await.errors.is_empty());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = status_of(&server).await;
        if status.models_fitted_records >= records {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no fit within two minutes: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let model = &status.ranking_models[0];
    assert!(model.learned, "{}", status.models_last_outcome);
    assert!(model.version >= 1);
    let training = model.training.as_ref().expect("how it was fitted");
    assert!(
        training.validated > training.replaced && training.gain_in_standard_errors >= 1.0,
        "the learned model ranks held-back history better: {training:?}"
    );
    assert_eq!(training.metric, "MRR");
    assert_eq!(training.splits, 6);
    assert!(training.queries >= 100, "{training:?}");
    assert_eq!(
        first_suggested(&server).await,
        "new-2",
        "{}",
        server.cli_json(&["model", "show"])
    );

    // The discussion model's scores are calibrated on the same history: chances of taking part,
    // and the answers and the command line say so.
    assert!(
        status
            .models_last_outcome
            .contains("scores calibrated as chances of taking part"),
        "{}",
        status.models_last_outcome
    );
    let person = format!("{SOURCE}:new-2");
    let suggested = server.cli_json(&["suggest", "--person", &person, "--limit", "5"]);
    let join = suggested["join"].as_array().cloned().unwrap_or_default();
    assert!(!join.is_empty(), "{suggested}");
    for discussion in &join {
        assert_eq!(discussion["score_scale"], "probability", "{discussion}");
        let score = discussion["score"].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&score), "{discussion}");
    }
    let printed = super::trellis()
        .args(["suggest", "--person", &person, "--limit", "5"])
        .args(["--addr", &server.addr])
        .output()
        .expect("the trellis binary runs");
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.contains("(score: the chance they take part, calibrated"),
        "{printed}"
    );
    // Without learning, a suggestion's score is relative, and said to be.
    let plain_join = plain.cli_json(&["suggest", "--person", &person, "--limit", "5"]);
    for discussion in plain_join["join"].as_array().into_iter().flatten() {
        assert_eq!(discussion["score_scale"], "relative", "{discussion}");
    }

    // What it learned, from the command line: recency weighs, and weighs positively.
    let shown = server.cli_json(&["model", "show", "--workspace", "default"]);
    let shown_model = &shown[0]["models"][0];
    assert_eq!(shown_model["learned"], true);
    assert!(
        shown[0]["last_outcome"]
            .as_str()
            .is_some_and(|outcome| outcome.starts_with("participants: learned from")),
        "{shown}"
    );
    let features = shown_model["features"].as_array().expect("features");
    assert_eq!(features.len(), 20);
    let weight = |name: &str| {
        features
            .iter()
            .find(|feature| feature["name"] == name)
            .and_then(|feature| feature["weight"].as_f64())
            .unwrap_or_else(|| panic!("feature {name} in {shown}"))
    };
    assert!(
        weight("recent_30d") > 0.0 || weight("replies_30d") > 0.0,
        "{shown}"
    );
    let health = server.cli_json(&["health"]);
    assert!(
        health["workspaces"][0]["models_last_outcome"]
            .as_str()
            .is_some_and(|outcome| outcome.starts_with("participants: learned from")),
        "{health}"
    );
}
