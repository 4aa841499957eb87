//! The semantic tier end to end, in both modes: without the model the server runs lexical-only
//! and says so (with the fix) in its status, its health and its answers; with the model it
//! embeds conversations in the background, fuses meaning with words (a question that shares no
//! word with a thread still finds the people of that thread, and an asset that shares no word
//! with a question still supports it), and keeps its vectors through a restart.

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

/// Twenty-two assets: twenty-one about other things, and a baking guide that shares no word
/// with the loaf question (twenty vectors are the fewest a closeness by meaning is read against).
fn assets() -> Vec<pb::IngestRequest> {
    let others = [
        "Tuning a six-string guitar by ear",
        "Planting tomatoes on a balcony",
        "Patching a punctured bicycle tube",
        "Choosing running shoes for trails",
        "Cleaning a cast-iron skillet",
        "Training a puppy to walk on a leash",
        "Painting a bedroom wall evenly",
        "Learning chess openings for beginners",
        "Knitting a scarf with two colours",
        "Setting up a home aquarium",
        "Writing a cover letter for a job",
        "Brewing cold coffee overnight",
        "Storing winter clothes in summer",
        "Fixing a dripping kitchen tap",
        "Photographing birds with a zoom lens",
        "Budgeting for a family holiday",
        "Caring for a snake plant",
        "Hanging shelves on plasterboard",
        "Sharpening kitchen knives on a stone",
        "Packing a suitcase for a week",
        "Reading a nautical chart",
    ];
    let mut assets: Vec<(String, String, String)> = others
        .iter()
        .enumerate()
        .map(|(n, title)| {
            (
                format!("other-{n}"),
                (*title).to_owned(),
                format!("{title}, step by step."),
            )
        })
        .collect();
    assets.push((
        "bread-guide".into(),
        "Sourdough baking at home".into(),
        "Feed the starter twice daily, then bake in a very hot dutch oven.".into(),
    ));
    assets
        .into_iter()
        .map(|(id, title, text)| pb::IngestRequest {
            workspace: String::new(),
            record: Some(pb::ingest_request::Record::Asset(pb::Asset {
                r#ref: reference("docs", &id),
                url: format!("https://docs.example/{id}"),
                title,
                text,
                kind: pb::AssetKind::Doc.into(),
                own: true,
                ..Default::default()
            })),
        })
        .collect()
}

/// The assets that support the loaf question, as a free text.
async fn assets_for_a_loaf(server: &Server) -> Vec<pb::SupportingAsset> {
    server
        .insight()
        .find_supporting_assets(pb::FindSupportingAssetsRequest {
            workspace: String::new(),
            context: Some(pb::find_supporting_assets_request::Context::Text(
                pb::TextInput {
                    title: "Tips for a crusty loaf with a levain".into(),
                    body: "What flour gives an airy interior?".into(),
                },
            )),
            limit: 3,
            own_only: false,
        })
        .await
        .expect("assets for a free text")
        .into_inner()
        .assets
}

fn asset_handle(supporting: &pb::SupportingAsset) -> String {
    supporting
        .asset
        .as_ref()
        .and_then(|asset| asset.r#ref.as_ref())
        .map(|reference| reference.external_id.clone())
        .unwrap_or_default()
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
    // Words alone find no asset for the loaf question: the guide shares none of its words.
    assert!(assets_for_a_loaf(&server).await.is_empty());
    super::ingest(&server, assets()).await;

    // Embedding happens in the background, conversations then assets; the status shows it
    // finish.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let workspace = default_workspace(&status(&server).await);
        if workspace.pending_embeddings == 0
            && workspace.embedded_conversations == 3
            && workspace.pending_asset_embeddings == 0
            && workspace.embedded_assets == 22
        {
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

    // By meaning, the baking guide supports the loaf question, and its reason says so.
    let supporting = assets_for_a_loaf(&server).await;
    let first = supporting.first().expect("an asset supports the question");
    assert_eq!(asset_handle(first), "bread-guide", "{supporting:?}");
    assert!(
        first.reasons.iter().any(
            |reason| reason.starts_with("close in meaning to the context")
                && reason.contains("shares none of its telling words")
        ),
        "{first:?}"
    );
    assert!(first.passage.starts_with("Feed the starter"), "{first:?}");

    // A restart reads the vectors back: nothing is waiting, nothing is embedded again.
    drop(server);
    let server = Server::start_with(&db, &settings).await;
    let workspace = default_workspace(&status(&server).await);
    assert_eq!(
        (
            workspace.embedded_conversations,
            workspace.pending_embeddings,
            workspace.embedded_assets,
            workspace.pending_asset_embeddings
        ),
        (3, 0, 22, 0)
    );
    assert_eq!(
        assets_for_a_loaf(&server)
            .await
            .first()
            .map(asset_handle)
            .as_deref(),
        Some("bread-guide")
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
