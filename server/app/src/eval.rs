//! `trellis eval`: runs the protocol of `EVALUATION.md` through the public gRPC API of a Trellis
//! server (started in-process on a loopback port with a temporary database, unless `--addr`
//! names one), then judges Trellis and the baselines side by side on the same split.
//!
//! What the server sees is exactly what the protocol allows: history items before the cut-off,
//! people's AboutMe, and the title and body of test threads. The strategy's `label_tags` are
//! dropped when the file is parsed and never leave this process.

use anyhow::Context;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use trellis_eval::{Dump, ItemKind, LabelStrategy, Protocol, Rankings};
use trellis_grpc::pb;

use crate::cli::describe;
use crate::config::{Config, Overrides};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A StackExchange dump folder (Posts.xml, Comments.xml, Users.xml, PostLinks.xml); repeat
    /// it (or separate folders with commas) to evaluate several communities in one run.
    #[arg(long, required = true, value_delimiter = ',')]
    dump: Vec<PathBuf>,
    /// The strategy file (TOML) with `label_tags` for evaluation, one per `--dump` in the same
    /// order. Without it, each dump's strategy is `strategies/<dump folder name>.toml` two
    /// folders up from the dump (the layout of the shared data).
    #[arg(long, value_delimiter = ',')]
    strategy: Vec<PathBuf>,
    /// Write the engine's rankings (the JSON of EVALUATION.md) here; with several dumps, a
    /// folder that gets `<dump folder name>.json` per dump.
    #[arg(long)]
    rankings_out: Option<PathBuf>,
    /// Use a running server instead of starting one (its workspace must be empty); one dump only.
    #[arg(long)]
    addr: Option<String>,
    /// Workspace to load the dump into.
    #[arg(long, default_value = "eval")]
    workspace: String,
    /// Skip the baselines (no Python and no model needed).
    #[arg(long)]
    no_baselines: bool,
    /// Skip the Dense and Hybrid baselines, which embed every history item of each dump (minutes
    /// on a CPU): the tables then show random, popularity and BM25.
    #[arg(long)]
    no_dense: bool,
    /// Rank only these tasks (of a, b, c, d, e; A' comes with a).
    #[arg(long, value_delimiter = ',', default_values = ["a", "b", "c", "d", "e"])]
    tasks: Vec<String>,
    /// The semantic tier of the server started here: auto (when the model files are present),
    /// off (lexical-only) or required.
    #[arg(long, default_value = "auto")]
    semantic: String,
    /// The model folder for the semantic tier and the Dense baseline.
    #[arg(long, default_value = "models/all-minilm-l6-v2")]
    model_dir: PathBuf,
    /// How long to wait, in seconds, for the server to embed the loaded conversations before
    /// ranking; the evaluation fails rather than judge a half-embedded engine.
    #[arg(long, default_value_t = 3600)]
    embedding_timeout: u64,
    /// Instead of the tables against the baselines, measure what feedback does
    /// (`docs/feedback.md`): two workspaces load the same history; in one, the participations
    /// in the first half of the test period are recorded as accepted suggestions; Tasks A, A' and
    /// B are then ranked in both, as of the middle of the test period, and judged on its second
    /// half.
    #[arg(long)]
    feedback_replay: bool,
    /// A folder where the Dense baseline keeps the vectors it computed (one file per model), so
    /// that evaluating the same dumps again does not embed them again.
    #[arg(long)]
    embedding_cache: Option<PathBuf>,
}

const SOURCE: &str = "dump";

fn timestamp(value: &trellis_eval::Timestamp) -> prost_types::Timestamp {
    let seconds = value.0.assume_utc().unix_timestamp();
    prost_types::Timestamp {
        seconds,
        nanos: value.0.nanosecond() as i32,
    }
}

fn reference(id: String) -> Option<pb::RecordRef> {
    Some(pb::RecordRef {
        source: SOURCE.to_owned(),
        external_id: id,
    })
}

/// The records the protocol lets the engine see, as ingest messages.
fn visible_records(protocol: &Protocol, workspace: &str) -> Vec<pb::IngestRequest> {
    use pb::ingest_request::Record;
    let mut messages = Vec::new();
    let message = |record| pb::IngestRequest {
        workspace: workspace.to_owned(),
        record: Some(record),
    };
    // Everyone who wrote before the cut-off or has an AboutMe is a member of the site.
    let mut people: BTreeMap<i64, &str> = protocol
        .history_items()
        .iter()
        .filter_map(|item| item.author)
        .map(|user| (user, ""))
        .collect();
    people.extend(protocol.about_me());
    for (user, about) in people {
        messages.push(message(Record::Person(pb::Person {
            r#ref: reference(format!("u{user}")),
            bio: about.to_owned(),
            member: true,
            ..Default::default()
        })));
    }
    for item in protocol.history_items() {
        let Some(thread) = item.thread_id else {
            continue;
        };
        let author = item
            .author
            .map(|user| format!("u{user}"))
            .unwrap_or_default();
        let record = match item.kind {
            ItemKind::Question => Record::Conversation(pb::Conversation {
                r#ref: reference(format!("q{}", item.id)),
                platform: pb::PlatformKind::QaForum.into(),
                // The question's text is title + body; the protocol hands it over joined.
                body: item.text.clone(),
                author,
                // History threads are the past; the test threads are the ones open now.
                open: false,
                created_at: Some(timestamp(&item.creation_date)),
                ..Default::default()
            }),
            ItemKind::Answer | ItemKind::Comment => Record::Post(pb::Post {
                r#ref: reference(match item.kind {
                    ItemKind::Answer => format!("a{}", item.id),
                    _ => format!("c{}", item.id),
                }),
                conversation: format!("q{thread}"),
                author,
                parent: item
                    .parent_post_id
                    .map(|parent| {
                        if parent == thread {
                            format!("q{parent}")
                        } else {
                            format!("a{parent}")
                        }
                    })
                    .unwrap_or_default(),
                created_at: Some(timestamp(&item.creation_date)),
                text: item.text.clone(),
                reactions: 0,
            }),
        };
        messages.push(message(record));
    }
    // Task D's assets: every history thread, as EVALUATION.md defines its text (title, body and
    // the accepted answer's body when written before the cut-off).
    for asset in protocol.assets() {
        let text = asset
            .text
            .strip_prefix(asset.title.as_str())
            .map_or(asset.text.as_str(), str::trim_start);
        messages.push(message(Record::Asset(pb::Asset {
            r#ref: reference(format!("q{}", asset.thread_id)),
            title: asset.title.clone(),
            text: text.to_owned(),
            kind: pb::AssetKind::Thread.into(),
            ..Default::default()
        })));
    }
    for thread in protocol.test_threads() {
        messages.push(message(Record::Conversation(pb::Conversation {
            r#ref: reference(format!("q{}", thread.id)),
            platform: pb::PlatformKind::QaForum.into(),
            title: thread.title.clone(),
            body: thread.body.clone(),
            // The asker is left out: the question was written after the cut-off, and taking
            // it into the asker's profile would let the future leak into the rankings.
            open: true,
            created_at: Some(timestamp(&thread.creation_date)),
            ..Default::default()
        })));
    }
    messages
}

/// Task C through `ScoreConversations`: per facet, test threads by facet relevance; and the
/// overall strategic relevance of each.
async fn task_c(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
) -> anyhow::Result<Rankings> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);
    let mut per_facet: BTreeMap<String, Vec<(f32, i64)>> = BTreeMap::new();
    let mut overall = BTreeMap::new();
    let ids: Vec<i64> = protocol
        .test_threads()
        .iter()
        .map(|thread| thread.id)
        .collect();
    for chunk in ids.chunks(500) {
        let response = insight
            .score_conversations(pb::ScoreConversationsRequest {
                workspace: workspace.to_owned(),
                conversations: chunk
                    .iter()
                    .map(|id| pb::RecordRef {
                        source: SOURCE.to_owned(),
                        external_id: format!("q{id}"),
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        for (id, score) in chunk.iter().zip(response.scores) {
            overall.insert(*id, f64::from(score.relevance));
            for facet in score.facets {
                per_facet
                    .entry(facet.facet_id)
                    .or_default()
                    .push((facet.relevance, *id));
            }
        }
    }
    let c = per_facet
        .into_iter()
        .map(|(facet, mut scored)| {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            (facet, scored.into_iter().map(|(_, id)| id).collect())
        })
        .collect();
    Ok(Rankings {
        c: Some(c),
        c_overall: Some(overall),
        ..Rankings::default()
    })
}

fn user_id(reference: Option<&pb::RecordRef>) -> Option<i64> {
    reference?.external_id.strip_prefix('u')?.parse().ok()
}

fn thread_id(reference: Option<&pb::RecordRef>) -> Option<i64> {
    reference?.external_id.strip_prefix('q')?.parse().ok()
}

/// How far down the rankings of Tasks A and B go: every candidate and every test thread of a
/// community this size.
const RANKING_DEPTH: i32 = 500;

/// Task A through `SuggestParticipants`: for each test thread, the people to bring in.
async fn task_a(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
    as_of: trellis_eval::Timestamp,
) -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);
    let as_of = Some(timestamp(&as_of));
    let mut rankings = BTreeMap::new();
    for thread in protocol.test_threads() {
        let response = insight
            .suggest_participants(pb::SuggestParticipantsRequest {
                workspace: workspace.to_owned(),
                conversation: reference(format!("q{}", thread.id)),
                limit: RANKING_DEPTH,
                as_of,
                ..Default::default()
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        let ranked = response
            .participants
            .iter()
            .filter_map(|participant| {
                user_id(participant.person.as_ref().and_then(|p| p.r#ref.as_ref()))
            })
            .collect();
        rankings.insert(thread.id, ranked);
    }
    Ok(rankings)
}

/// Task B through `SuggestDiscussions`: for each candidate, the test threads to join.
async fn task_b(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
    as_of: trellis_eval::Timestamp,
) -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);
    let as_of = Some(timestamp(&as_of));
    let mut rankings = BTreeMap::new();
    for &user in protocol.candidates() {
        let response = insight
            .suggest_discussions(pb::SuggestDiscussionsRequest {
                workspace: workspace.to_owned(),
                person: reference(format!("u{user}")),
                limit: RANKING_DEPTH,
                as_of,
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        let ranked = response
            .join
            .iter()
            .filter_map(|discussion| thread_id(discussion.conversation.as_ref()))
            .collect();
        rankings.insert(user, ranked);
    }
    Ok(rankings)
}

/// Task D through `FindSupportingAssets`: for each test thread, its title and body as the text
/// to support, against every asset.
async fn task_d(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
) -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);
    let mut rankings = BTreeMap::new();
    for thread in protocol.test_threads() {
        let response = insight
            .find_supporting_assets(pb::FindSupportingAssetsRequest {
                workspace: workspace.to_owned(),
                context: Some(pb::find_supporting_assets_request::Context::Text(
                    pb::TextInput {
                        title: thread.title.clone(),
                        body: thread.body.clone(),
                    },
                )),
                limit: RANKING_DEPTH,
                own_only: false,
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        let ranked = response
            .assets
            .iter()
            .filter_map(|supporting| {
                thread_id(supporting.asset.as_ref().and_then(|a| a.r#ref.as_ref()))
            })
            .collect();
        rankings.insert(thread.id, ranked);
    }
    Ok(rankings)
}

/// Task E through `FindProspects`: everyone, members included (every candidate of the protocol
/// wrote on the site), ranked for the whole strategy as of the cut-off.
async fn task_e(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
) -> anyhow::Result<Vec<i64>> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);
    let response = insight
        .find_prospects(pb::FindProspectsRequest {
            workspace: workspace.to_owned(),
            limit: RANKING_DEPTH.max(protocol.candidates().len() as i32),
            include_members: true,
            as_of: Some(timestamp(&protocol.cutoff_time())),
            ..Default::default()
        })
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    Ok(response
        .prospects
        .iter()
        .filter_map(|prospect| user_id(prospect.person.as_ref().and_then(|p| p.r#ref.as_ref())))
        .collect())
}

/// Waits until the server has embedded every conversation of the workspace, when its semantic
/// tier is on, so that the tasks are ranked by the engine as it runs once settled. Returns the
/// engine's mode in words.
async fn wait_for_embeddings(
    channel: Channel,
    workspace: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let waiting = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (status, current) = server_status(&mut server, workspace).await?;
        let semantic = status.semantic.unwrap_or_default();
        if !semantic.enabled {
            return Ok(format!("lexical-only ({})", semantic.lexical_only_reason));
        }
        let pending = current.pending_embeddings + current.pending_asset_embeddings;
        let embedded = current.embedded_conversations + current.embedded_assets;
        if pending == 0 {
            return Ok(format!(
                "lexical and semantic fused ({}; {} conversations and {} assets embedded in {:.1}s)",
                semantic.model_id,
                current.embedded_conversations,
                current.embedded_assets,
                waiting.elapsed().as_secs_f64()
            ));
        }
        if waiting.elapsed() > timeout {
            anyhow::bail!(
                "the server still had {pending} of {} conversations and assets to embed after {}s; raise --embedding-timeout or run with --semantic off",
                embedded + pending,
                timeout.as_secs()
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "embedding: {embedded} of {} conversations and assets done",
                embedded + pending
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The server's status, and the part of it about `workspace` (empty until it has one).
async fn server_status(
    server: &mut pb::server_service_client::ServerServiceClient<Channel>,
    workspace: &str,
) -> anyhow::Result<(pb::GetServerStatusResponse, pb::WorkspaceStatus)> {
    let status = server
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let current = status
        .workspaces
        .iter()
        .find(|status| status.workspace == workspace)
        .cloned()
        .unwrap_or_default();
    Ok((status, current))
}

/// Waits until the server has fitted the workspace's ranking models on at least `records`
/// records (the history just loaded), at least `fits` times, so that the tasks are ranked as a
/// server that has settled ranks them. Returns what the fit concluded.
async fn wait_for_models(
    channel: Channel,
    workspace: &str,
    records: u64,
    fits: u64,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let waiting = Instant::now();
    loop {
        let (_, current) = server_status(&mut server, workspace).await?;
        if current.models_fitted_records >= records && current.models_fits >= fits {
            let weights: Vec<String> = current
                .ranking_models
                .iter()
                .map(|model| {
                    let top: Vec<String> = model
                        .features
                        .iter()
                        .take(6)
                        .map(|feature| format!("{} {:+.2}", feature.name, feature.weight))
                        .collect();
                    format!("{} v{}: {}", model.kind, model.version, top.join(", "))
                })
                .collect();
            return Ok(format!(
                "{} ({:.1}s); {}",
                current.models_last_outcome,
                waiting.elapsed().as_secs_f64(),
                weights.join("; ")
            ));
        }
        if waiting.elapsed() > timeout {
            anyhow::bail!(
                "the server had not fitted its rankings after {}s ({})",
                timeout.as_secs(),
                current.models_last_outcome
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The config of the server started here. `--model-dir` is resolved against the current
/// directory now, as `--dump` and `--strategy` are read from it, and reaches the config as a path
/// (an override), never as a value parsed from the environment: `--model-dir 2024-01-01` or
/// `--model-dir true` name folders too.
fn server_config(args: &EvalArgs, database: &Path) -> anyhow::Result<Config> {
    let model_dir = std::path::absolute(&args.model_dir).with_context(|| {
        format!(
            "--model-dir {}: cannot resolve it against the current directory",
            args.model_dir.display()
        )
    })?;
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        storage_path: Some(database.to_owned()),
        semantic_model_dir: Some(model_dir),
        ..Overrides::default()
    };
    // Ranking waits for every conversation to be embedded: the server started here may embed on
    // every core.
    let threads = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let environment = vec![
        ("TRELLIS__SEMANTIC__MODE".to_owned(), args.semantic.clone()),
        ("TRELLIS__SEMANTIC__THREADS".to_owned(), threads.to_string()),
    ];
    Config::load(None, environment, &overrides).map_err(anyhow::Error::msg)
}

/// Each dump with its strategy file: given in the same order, or found beside the dump.
fn dumps_and_strategies(args: &EvalArgs) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if !args.strategy.is_empty() && args.strategy.len() != args.dump.len() {
        anyhow::bail!(
            "--strategy: {} strategy files for {} dumps; give one per --dump in the same order, or none to use strategies/<dump name>.toml beside the dumps",
            args.strategy.len(),
            args.dump.len()
        );
    }
    args.dump
        .iter()
        .enumerate()
        .map(|(index, dump)| {
            let strategy = match args.strategy.get(index) {
                Some(strategy) => strategy.clone(),
                None => {
                    let name = dump_name(dump);
                    let parent = std::path::absolute(dump)?
                        .parent()
                        .and_then(Path::parent)
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    let guess = parent.join("strategies").join(format!("{name}.toml"));
                    if !guess.is_file() {
                        anyhow::bail!(
                            "--strategy: no strategy given for {} and none at {}; pass --strategy FILE",
                            dump.display(),
                            guess.display()
                        );
                    }
                    guess
                }
            };
            Ok((dump.clone(), strategy))
        })
        .collect()
}

/// The name a dump goes by in tables and file names: its folder's.
fn dump_name(dump: &Path) -> String {
    std::path::absolute(dump)
        .ok()
        .as_deref()
        .unwrap_or(dump)
        .file_name()
        .map_or_else(
            || "dump".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
}

pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    // The server started here logs only what goes wrong, unless RUST_LOG says otherwise.
    let mut quiet = Config::default();
    quiet.log.filter = "warn".to_owned();
    crate::cli::init_tracing(&quiet);
    for task in &args.tasks {
        if !["a", "b", "c", "d", "e"].contains(&task.as_str()) {
            anyhow::bail!("--tasks: {task:?} is not a task Trellis ranks; use a, b, c, d or e");
        }
    }
    let jobs = dumps_and_strategies(&args)?;
    if args.addr.is_some() && jobs.len() > 1 {
        anyhow::bail!(
            "--addr: a running server evaluates one dump at a time; pass one --dump, or leave out --addr"
        );
    }
    let several = jobs.len() > 1;
    if several && let Some(folder) = &args.rankings_out {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "--rankings-out {}: with several dumps it names a folder, which cannot be created",
                folder.display()
            )
        })?;
    }
    let embedder = if args.no_baselines || args.no_dense {
        None
    } else {
        match crate::dense::DenseEmbedder::load(&args.model_dir, args.embedding_cache.as_deref()) {
            Ok(embedder) => Some(embedder),
            Err(error) => {
                eprintln!("the Dense and Hybrid baselines are skipped: {error}");
                None
            }
        }
    };
    let mut summaries = Vec::new();
    for (dump, strategy) in &jobs {
        let name = dump_name(dump);
        let rankings_out = args.rankings_out.as_ref().map(|path| {
            if several {
                path.join(format!("{name}.json"))
            } else {
                path.clone()
            }
        });
        let outcome = evaluate_dump(
            &args,
            dump,
            strategy,
            rankings_out.as_deref(),
            embedder.as_ref(),
        )
        .await
        .with_context(|| format!("evaluating {}", dump.display()))?;
        println!("## {name}\n");
        match outcome {
            DumpOutcome::Feedback(table) => println!("{table}"),
            DumpOutcome::Baselines(reports) => {
                let (trellis_report, baselines) = *reports;
                println!(
                    "{}",
                    trellis_eval::comparison_table(&trellis_report, &baselines)
                );
                summaries.push(trellis_eval::summary_line(
                    &name,
                    &trellis_eval::compare(&trellis_report, &baselines),
                ));
            }
        }
    }
    if !args.no_baselines && !args.feedback_replay {
        println!("## Against the best baseline\n");
        for line in summaries {
            println!("- {line}");
        }
    }
    Ok(())
}

/// Loads what the protocol lets the engine see into `workspace` with the strategy, waits for
/// the server to embed it and fit its rankings on it, and returns what the fit concluded.
async fn load_workspace(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
    strategy: &trellis_core::strategy::Strategy,
    timeout: Duration,
) -> anyhow::Result<String> {
    let messages = visible_records(protocol, workspace);
    let sent = messages.len();
    let mut ingest = pb::ingest_service_client::IngestServiceClient::new(channel.clone());
    let response = ingest
        .ingest(tokio_stream::iter(messages))
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    if !response.errors.is_empty() {
        anyhow::bail!(
            "the server refused {} of {sent} records; first: {:?}",
            response.errors.len(),
            response.errors.first()
        );
    }
    let mut strategies = pb::strategy_service_client::StrategyServiceClient::new(channel.clone());
    strategies
        .put_strategy(pb::PutStrategyRequest {
            workspace: workspace.to_owned(),
            strategy: Some(trellis_grpc::convert::strategy_to_pb(strategy)),
        })
        .await
        .map_err(|status| describe(&status))?;
    let engine = wait_for_embeddings(channel.clone(), workspace, timeout).await?;
    eprintln!("{workspace}: {sent} records; engine: {engine}");
    let records = protocol.history_items().len() as u64;
    wait_for_models(channel, workspace, records, 0, timeout).await
}

/// What one dump's evaluation gives: the tables against the baselines, or (with
/// `--feedback-replay`) the table of what feedback did.
enum DumpOutcome {
    Baselines(Box<(trellis_eval::Report, trellis_eval::BaselineReports)>),
    Feedback(String),
}

/// The feedback protocol of `docs/feedback.md` on one dump: `workspace` is loaded already;
/// a second workspace gets the same history and, as accepted suggestions, the participations
/// of candidates in the test threads of the first half of the test period (the time each thread
/// was opened, since the dump's answers are not shown). Both rank Tasks A, A' and B as of the
/// middle of the test period; both are judged on the second half. Returns the table.
async fn feedback_replay(
    channel: Channel,
    protocol: &Protocol,
    workspace: &str,
    strategy: &trellis_core::strategy::Strategy,
    timeout: Duration,
) -> anyhow::Result<String> {
    let middle = protocol
        .test_period_middle()
        .ok_or_else(|| anyhow::anyhow!("the dump has no test threads to replay"))?;
    let with_feedback = format!("{workspace}-feedback");
    load_workspace(channel.clone(), protocol, &with_feedback, strategy, timeout).await?;
    let mut feedback = Vec::new();
    for (thread, people) in &protocol.ground_truth().routing {
        let Some(opened) = protocol
            .test_thread(*thread)
            .map(|thread| thread.creation_date)
            .filter(|opened| *opened < middle)
        else {
            continue;
        };
        for person in people {
            feedback.push(pb::Feedback {
                kind: pb::SuggestionKind::Participant.into(),
                outcome: pb::FeedbackOutcome::Accepted.into(),
                person: reference(format!("u{person}")),
                conversation: reference(format!("q{thread}")),
                at: Some(timestamp(&opened)),
                actor: "feedback replay".into(),
                ..Default::default()
            });
        }
    }
    let replayed = feedback.len();
    let mut client = pb::feedback_service_client::FeedbackServiceClient::new(channel.clone());
    for chunk in feedback.chunks(1_000) {
        client
            .record_feedback(pb::RecordFeedbackRequest {
                workspace: with_feedback.clone(),
                feedback: chunk.to_vec(),
            })
            .await
            .map_err(|status| describe(&status))?;
    }
    let mut server = pb::server_service_client::ServerServiceClient::new(channel.clone());
    let (_, before) = server_status(&mut server, &with_feedback).await?;
    let refit = if replayed as u64 >= trellis_core::service::REFIT_FEEDBACK {
        let records = protocol.history_items().len() as u64;
        wait_for_models(
            channel.clone(),
            &with_feedback,
            records,
            before.models_fits + 1,
            timeout,
        )
        .await?
    } else {
        format!(
            "not refitted: {replayed} feedback outcomes are fewer than the {} a refit waits for",
            trellis_core::service::REFIT_FEEDBACK
        )
    };
    eprintln!("{with_feedback}: {replayed} participations replayed as feedback; {refit}");
    let later = protocol.from_time(middle);
    let mut reports = Vec::new();
    for name in [workspace, with_feedback.as_str()] {
        let rankings = Rankings {
            a: Some(task_a(channel.clone(), &later, name, middle).await?),
            b: Some(task_b(channel.clone(), &later, name, middle).await?),
            ..Rankings::default()
        };
        reports.push(trellis_eval::evaluate(&later, &rankings));
    }
    let mut table = format!(
        "{replayed} participations in {} test threads opened before {middle} replayed as accepted suggestions; judged on the {} threads opened from then on ({} evaluated for A, {} candidates for B)\n\n| task | metric | without feedback | with feedback | ratio |\n|---|---|---|---|---|\n",
        protocol.test_threads().len() - later.test_threads().len(),
        later.test_threads().len(),
        later.ground_truth().routing.len(),
        later.ground_truth().discussions.len(),
    );
    for (without, with) in reports[0].rows().into_iter().zip(reports[1].rows()) {
        let (Some(without_value), Some(with_value)) = (without.value, with.value) else {
            continue;
        };
        let ratio = if without_value > 0.0 {
            format!("{:.2}x", with_value / without_value)
        } else {
            "-".to_owned()
        };
        table.push_str(&format!(
            "| {} | {} | {without_value:.3} | {with_value:.3} | {ratio} |\n",
            without.task, without.metric
        ));
    }
    Ok(table)
}

/// Runs the protocol on one dump: loads what the engine may see into a server, ranks every task
/// through the API, and judges Trellis and the baselines on the same split.
async fn evaluate_dump(
    args: &EvalArgs,
    dump: &Path,
    strategy: &Path,
    rankings_out: Option<&Path>,
    embedder: Option<&crate::dense::DenseEmbedder>,
) -> anyhow::Result<DumpOutcome> {
    let started = Instant::now();
    let strategy_text = std::fs::read_to_string(strategy)
        .with_context(|| format!("cannot read {}", strategy.display()))?;
    let engine_strategy = trellis_core::strategy::parse_strategy_toml(&strategy_text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", strategy.display()))?;
    let labels = LabelStrategy::load(strategy)?;
    let dump_dir = dump.to_path_buf();
    let protocol = tokio::task::spawn_blocking(move || -> anyhow::Result<Protocol> {
        let dump = Dump::load(&dump_dir)?;
        Ok(Protocol::new(&dump, &labels)?)
    })
    .await??;
    let counts = protocol.counts();
    eprintln!("{}: {counts}", dump.display());

    let temp = tempfile::tempdir()?;
    let mut local = None;
    let addr = match &args.addr {
        Some(addr) => addr.clone(),
        None => {
            let config = server_config(args, &temp.path().join("eval.db"))?;
            let running = crate::serve::start(&config).await?;
            let addr = running.addr.to_string();
            local = Some(running);
            addr
        }
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {addr}"))?;

    let learned = load_workspace(
        channel.clone(),
        &protocol,
        &args.workspace,
        &engine_strategy,
        Duration::from_secs(args.embedding_timeout),
    )
    .await?;
    eprintln!(
        "loaded into Trellis at {addr} in {:.1}s; rankings: {learned}",
        started.elapsed().as_secs_f64()
    );
    if args.feedback_replay {
        let table = feedback_replay(
            channel.clone(),
            &protocol,
            &args.workspace,
            &engine_strategy,
            Duration::from_secs(args.embedding_timeout),
        )
        .await?;
        if let Some(running) = local {
            running.stop(Duration::from_secs(5)).await?;
        }
        return Ok(DumpOutcome::Feedback(table));
    }

    let wants = |task: &str| args.tasks.iter().any(|wanted| wanted == task);
    let mut rankings = Rankings::default();
    if wants("c") {
        rankings = task_c(channel.clone(), &protocol, &args.workspace).await?;
    }
    if wants("a") {
        rankings.a = Some(
            task_a(
                channel.clone(),
                &protocol,
                &args.workspace,
                protocol.cutoff_time(),
            )
            .await?,
        );
    }
    if wants("b") {
        rankings.b = Some(
            task_b(
                channel.clone(),
                &protocol,
                &args.workspace,
                protocol.cutoff_time(),
            )
            .await?,
        );
    }
    if wants("d") {
        rankings.d = Some(task_d(channel.clone(), &protocol, &args.workspace).await?);
    }
    if wants("e") {
        rankings.e = Some(task_e(channel.clone(), &protocol, &args.workspace).await?);
    }
    eprintln!(
        "ranked through the API in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Some(running) = local {
        running.stop(Duration::from_secs(5)).await?;
    }
    if let Some(path) = rankings_out {
        std::fs::write(path, rankings.to_json())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("rankings written to {}", path.display());
    }
    let trellis_report = trellis_eval::evaluate(&protocol, &rankings);
    let baselines = if args.no_baselines {
        trellis_eval::BaselineReports {
            random: trellis_eval::baselines::random_report(&protocol),
            popularity: trellis_eval::evaluate(
                &protocol,
                &trellis_eval::baselines::popularity(&protocol),
            ),
            ..trellis_eval::BaselineReports::default()
        }
    } else {
        let embedder = embedder.cloned();
        tokio::task::spawn_blocking(move || {
            trellis_eval::BaselineReports::compute(
                &protocol,
                embedder
                    .as_ref()
                    .map(|embedder| embedder as &dyn trellis_eval::TextEmbedder),
            )
        })
        .await??
    };
    eprintln!(
        "evaluation of {} finished in {:.1}s",
        dump.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(DumpOutcome::Baselines(Box::new((
        trellis_report,
        baselines,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        eval: EvalArgs,
    }

    fn config_of(extra: &[&str]) -> Config {
        let mut argv = vec!["eval", "--dump", "dump", "--strategy", "strategy.toml"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("the arguments parse");
        server_config(&cli.eval, Path::new("eval.db")).expect("a valid config")
    }

    #[test]
    fn the_model_dir_is_resolved_against_the_current_directory() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            config_of(&[]).semantic.model_dir,
            here.join("models/all-minilm-l6-v2")
        );
        assert_eq!(
            config_of(&["--model-dir", "models/other"])
                .semantic
                .model_dir,
            here.join("models/other")
        );
        // Names that would read as TOML values (a date, a boolean) are folders all the same.
        for name in ["2026-01-01", "true", "1.5"] {
            assert_eq!(
                config_of(&["--model-dir", name]).semantic.model_dir,
                here.join(name),
                "{name}"
            );
        }
        let absolute = here.join("elsewhere/model");
        assert_eq!(
            config_of(&["--model-dir", absolute.to_str().unwrap()])
                .semantic
                .model_dir,
            absolute
        );
    }
}
