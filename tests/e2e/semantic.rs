//! The semantic tier end to end, in both modes: without the model the server runs lexical-only
//! and says so (with the fix) in its status, its health and its answers; with the model it
//! embeds conversations in the background, fuses meaning with words (a question that shares no
//! word with a thread still finds the people of that thread), and keeps its vectors through a
//! restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ROOT, Server, pb, reference};

fn model_dir() -> PathBuf {
    Path::new(ROOT).join("models/all-minilm-l6-v2")
}

fn has_model() -> bool {
    model_dir().join("model.safetensors").is_file()
}

fn status_client(
    server: &Server,
) -> pb::server_service_client::ServerServiceClient<tonic::transport::Channel> {
    pb::server_service_client::ServerServiceClient::new(server.channel.clone())
}

async fn status(server: &Server) -> pb::GetServerStatusResponse {
    status_client(server)
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .expect("the server status")
        .into_inner()
}

fn default_workspace(status: &pb::GetServerStatusResponse) -> pb::WorkspaceStatus {
    status
        .workspaces
        .iter()
        .find(|workspace| workspace.workspace == "default")
        .cloned()
        .expect("the default workspace is listed")
}

/// Three threads about unrelated things, each answered by its own person.
fn threads() -> Vec<pb::IngestRequest> {
    let mut messages = Vec::new();
    for (id, title, body, author, answer) in [
        (
            "bread",
            "How do I bake sourdough bread at home?",
            "My starter is bubbly but what comes out of the oven is dense.",
            "u-baker",
            "Feed the starter twice a day and proof the dough overnight in the fridge.",
        ),
        (
            "oil",
            "Changing the engine oil on a hatchback",
            "Which viscosity should I use in winter?",
            "u-mechanic",
            "Use 5W-30 and replace the filter at the same time.",
        ),
        (
            "tax",
            "Filing taxes as a freelancer",
            "How do quarterly estimates work?",
            "u-accountant",
            "Set aside a quarter of each invoice and pay every three months.",
        ),
    ] {
        messages.push(pb::IngestRequest {
            workspace: String::new(),
            record: Some(pb::ingest_request::Record::Conversation(pb::Conversation {
                r#ref: reference("forum", id),
                platform: pb::PlatformKind::QaForum.into(),
                title: title.into(),
                body: body.into(),
                open: true,
                created_at: Some(prost_types::Timestamp {
                    seconds: 1_750_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        });
        messages.push(pb::IngestRequest {
            workspace: String::new(),
            record: Some(pb::ingest_request::Record::Post(pb::Post {
                r#ref: reference("forum", &format!("{id}-answer")),
                conversation: id.into(),
                author: author.into(),
                text: answer.into(),
                created_at: Some(prost_types::Timestamp {
                    seconds: 1_750_000_600,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        });
    }
    messages
}

/// Who should join a question that shares no word with the bread thread but means the same.
async fn participants_for_a_loaf(server: &Server) -> Vec<pb::SuggestedParticipant> {
    server
        .insight()
        .suggest_participants(pb::SuggestParticipantsRequest {
            workspace: String::new(),
            text: Some(pb::TextInput {
                title: "Tips for a crusty loaf with a levain".into(),
                body: "What flour gives an airy interior?".into(),
            }),
            limit: 3,
            ..Default::default()
        })
        .await
        .expect("participants for a free text")
        .into_inner()
        .participants
}

fn handle(participant: &pb::SuggestedParticipant) -> String {
    participant
        .person
        .as_ref()
        .and_then(|person| person.r#ref.as_ref())
        .map(|reference| reference.external_id.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_model_the_server_runs_lexical_only_and_says_why() {
    let dir = crate::test_dir().unwrap();
    let empty = dir.path().join("no-model");
    std::fs::create_dir_all(&empty).unwrap();
    let server = Server::start_with(
        &dir.path().join("t.db"),
        &[("TRELLIS__SEMANTIC__MODEL_DIR", empty.to_str().unwrap())],
    )
    .await;
    super::ingest(&server, threads()).await;

    let status = status(&server).await;
    let semantic = status
        .semantic
        .clone()
        .expect("the semantic tier is described");
    assert!(!semantic.enabled);
    assert_eq!(semantic.model_id, "");
    assert!(
        semantic.lexical_only_reason.contains("missing")
            && semantic.lexical_only_reason.contains("fetch-model"),
        "{semantic:?}"
    );
    assert!(!status.version.is_empty());
    let workspace = default_workspace(&status);
    assert_eq!(
        (
            workspace.conversations,
            workspace.embedded_conversations,
            workspace.pending_embeddings
        ),
        (3, 0, 0)
    );

    // Words only: nothing ties the loaf to the bread thread.
    let participants = participants_for_a_loaf(&server).await;
    assert!(
        participants.iter().all(|participant| participant
            .reasons
            .iter()
            .all(|reason| !reason.contains("sourdough"))),
        "{participants:?}"
    );

    // `required` refuses to start without the model, naming the fix.
    let output = super::trellis()
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("other.db"))
        .env("TRELLIS__SEMANTIC__MODE", "required")
        .env("TRELLIS__SEMANTIC__MODEL_DIR", empty.to_str().unwrap())
        .output()
        .expect("the trellis binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("required") && stderr.contains("fetch-model"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_model_meaning_finds_what_words_miss_and_vectors_survive_a_restart() {
    if !has_model() {
        eprintln!(
            "skipped: no model at {} (run scripts/fetch-model.sh)",
            model_dir().display()
        );
        return;
    }
    let dir = crate::test_dir().unwrap();
    let db = dir.path().join("t.db");
    let model = model_dir();
    let settings = [
        ("TRELLIS__SEMANTIC__MODE", "required"),
        ("TRELLIS__SEMANTIC__MODEL_DIR", model.to_str().unwrap()),
    ];
    let server = Server::start_with(&db, &settings).await;
    super::ingest(&server, threads()).await;

    // Embedding happens in the background; the status shows it finish.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let workspace = default_workspace(&status(&server).await);
        if workspace.pending_embeddings == 0 && workspace.embedded_conversations == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "embedding did not finish: {workspace:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let semantic = status(&server).await.semantic.unwrap();
    assert!(semantic.enabled, "{semantic:?}");
    assert_eq!(semantic.model_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(semantic.lexical_only_reason, "");
    let health = server.cli_json(&["health"]);
    assert_eq!(health["engine"], "semantic", "{health}");

    // Meaning: the baker comes first, because of the bread thread.
    let participants = participants_for_a_loaf(&server).await;
    let first = participants.first().expect("someone is suggested");
    assert_eq!(handle(first), "u-baker", "{participants:?}");
    assert!(
        first
            .reasons
            .iter()
            .any(|reason| reason.contains("sourdough")),
        "{first:?}"
    );

    // A restart reads the vectors back: nothing is waiting, nothing is embedded again.
    drop(server);
    let server = Server::start_with(&db, &settings).await;
    let workspace = default_workspace(&status(&server).await);
    assert_eq!(
        (
            workspace.embedded_conversations,
            workspace.pending_embeddings
        ),
        (3, 0)
    );
    assert_eq!(
        handle(&participants_for_a_loaf(&server).await[0]),
        "u-baker"
    );

    // An edited thread waits for a new vector and gets one.
    super::ingest(
        &server,
        vec![super::conversation(
            "forum",
            "tax",
            "Filing taxes as a freelancer in two countries",
            "How do quarterly estimates work?",
        )],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let workspace = default_workspace(&status(&server).await);
        if workspace.pending_embeddings == 0 && workspace.embedded_conversations == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{workspace:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
