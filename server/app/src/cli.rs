//! The command line: `serve`, `eval`, and client commands that talk gRPC to a running server.
//! Client commands print a table for people by default and JSON with `--json` for scripts.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::PathBuf;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;
use trellis_grpc::pb;

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "trellis",
    version,
    about = "Shape the conversations around your organisation, in line with its strategy."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this runs a server in this process (`serve`, and `eval`, which loads each dump
    /// into a server of its own), which must never die of a closed pipe or socket. Every other
    /// command prints for a person or for a pipe, and ends quietly when the pipe closes, as
    /// `trellis people list | head` expects.
    pub fn is_service(&self) -> bool {
        matches!(self.command, Command::Serve { .. } | Command::Eval(_))
    }
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The server to talk to.
    #[arg(
        long,
        env = "TRELLIS_ADDR",
        default_value = "127.0.0.1:50151",
        global = true
    )]
    pub(crate) addr: String,
    /// The workspace; empty for the default one.
    #[arg(long, env = "TRELLIS_WORKSPACE", default_value = "", global = true)]
    pub(crate) workspace: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The API key to send, for a server with `[auth] required = true`.
    #[arg(long, env = "TRELLIS_API_KEY", global = true, hide_env_values = true)]
    pub(crate) api_key: Option<String>,
}

/// A channel to the server that sends the API key, if one was given, with every call.
pub(crate) type ClientChannel = tonic::service::interceptor::InterceptedService<Channel, BearerKey>;

/// Adds `authorization: Bearer <key>` to each call.
#[derive(Debug, Clone)]
pub(crate) struct BearerKey(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve {
        /// A TOML config file (see examples/trellis.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// SQLite database file (overrides storage.path).
        #[arg(long)]
        db: Option<PathBuf>,
        /// A strategy file to load at start (overrides strategy.file).
        #[arg(long)]
        strategy: Option<PathBuf>,
        /// `pretty` or `json` (overrides log.format).
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Check that the server is up and serving.
    Health(#[command(flatten)] ClientArgs),
    /// Put, get and list strategy versions.
    Strategy {
        #[command(subcommand)]
        command: StrategyCommand,
    },
    /// Send people, conversations, posts and assets from a JSON Lines file.
    Ingest {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Score a text or a stored conversation against the strategy, with evidence.
    Score {
        /// Text to score.
        #[arg(long, conflicts_with = "conversation")]
        text: Option<String>,
        /// Title of the text to score.
        #[arg(long, default_value = "")]
        title: String,
        /// A stored conversation, as SOURCE:ID.
        #[arg(long)]
        conversation: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Conversations to nourish.
    Conversations {
        #[command(subcommand)]
        command: ConversationsCommand,
    },
    /// Audit a community mission statement against the strategy.
    Audit {
        #[arg(long)]
        mission: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// People: profiles, CRM matches.
    People {
        #[command(subcommand)]
        command: crate::cli_people::PeopleCommand,
    },
    /// Discussions a person should join, and topics they could start.
    Suggest {
        /// The person, as SOURCE:ID.
        #[arg(long)]
        person: String,
        #[arg(long, default_value_t = 10)]
        limit: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who should be brought into a conversation.
    Participants {
        /// A stored conversation, as SOURCE:ID.
        #[arg(long, conflicts_with = "text")]
        conversation: Option<String>,
        /// Or the text of a conversation that is not stored.
        #[arg(long)]
        text: Option<String>,
        /// The title that goes with --text.
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long, default_value_t = 10)]
        limit: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Assets that support a key message, a stored conversation or a text.
    Assets(crate::cli_assets::AssetsArgs),
    /// People outside the community whose interests meet the strategy, with draft invitations.
    Prospects(crate::cli_prospects::ProspectsArgs),
    /// Which platforms carry the strategic conversations, and how to split the effort.
    Mix(crate::cli_mix::MixArgs),
    /// Writes the report (HTML with charts, Markdown, JSON) for the workspace into a folder.
    Report(crate::report::ReportArgs),
    /// The next concrete actions per platform, each with its facet, why now and a draft.
    Plan(crate::cli_plan::PlanArgs),
    /// Run the evaluation protocol (EVALUATION.md) on StackExchange dumps.
    Eval(crate::eval::EvalArgs),
    /// Records and lists what became of suggestions: shown, accepted, dismissed, done.
    Feedback {
        #[command(subcommand)]
        command: crate::cli_feedback::FeedbackCommand,
    },
    /// How each workspace ranks, as learned from its own history.
    Model {
        #[command(subcommand)]
        command: crate::cli_model::ModelCommand,
    },
    /// The connector plugins the server loaded.
    Connectors {
        #[command(subcommand)]
        command: crate::sources_cli::ConnectorsCommand,
    },
    /// Configure, check and sync sources (connector instances).
    Sources {
        #[command(subcommand)]
        command: crate::sources_cli::SourcesCommand,
    },
    /// Create, list and revoke API keys, on the server's database.
    Keys {
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
    },
    /// The key that seals connector secrets at rest.
    Secrets {
        #[command(subcommand)]
        command: crate::sources_cli::SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StrategyCommand {
    /// Validate and store a strategy file (TOML) as a new version.
    Put {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the latest (or a given) version.
    Get {
        #[arg(long, default_value_t = 0)]
        version: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List versions, newest first.
    Versions {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ConversationsCommand {
    /// The conversations to nourish now, with their reasons.
    Top {
        #[arg(long, default_value_t = 10)]
        limit: i32,
        /// Only conversations connected to this facet.
        #[arg(long, default_value = "")]
        facet: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A score as the API rounds it, for JSON output: three decimals.
pub fn round3(value: f32) -> f64 {
    (f64::from(value) * 1000.0).round() / 1000.0
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            db,
            strategy,
            log_format,
        } => {
            let overrides = Overrides {
                listen,
                storage_path: db,
                strategy_file: strategy,
                log_format,
                semantic_model_dir: None,
            };
            let config = Config::load(config.as_deref(), std::env::vars(), &overrides)
                .map_err(anyhow::Error::msg)?;
            init_tracing(&config);
            crate::serve::run(config).await
        }
        Command::Health(client) => health(&client).await,
        Command::Strategy { command } => match command {
            StrategyCommand::Put { file, client } => strategy_put(&client, &file).await,
            StrategyCommand::Get { version, client } => strategy_get(&client, version).await,
            StrategyCommand::Versions { client } => strategy_versions(&client).await,
        },
        Command::Ingest { file, client } => ingest(&client, &file).await,
        Command::Score {
            text,
            title,
            conversation,
            client,
        } => score(&client, text, title, conversation).await,
        Command::Conversations { command } => match command {
            ConversationsCommand::Top {
                limit,
                facet,
                client,
            } => top(&client, limit, facet).await,
        },
        Command::Audit { mission, client } => audit(&client, mission).await,
        Command::People { command } => crate::cli_people::people(command).await,
        Command::Suggest {
            person,
            limit,
            client,
        } => crate::cli_people::suggest(&client, &person, limit).await,
        Command::Participants {
            conversation,
            text,
            title,
            limit,
            client,
        } => crate::cli_people::participants(&client, conversation, text, title, limit).await,
        Command::Assets(args) => crate::cli_assets::assets(args).await,
        Command::Prospects(args) => crate::cli_prospects::prospects(args).await,
        Command::Mix(args) => crate::cli_mix::mix(args).await,
        Command::Report(args) => crate::report::report(args).await,
        Command::Plan(args) => crate::cli_plan::plan(args).await,
        Command::Eval(args) => crate::eval::run(args).await,
        Command::Model { command } => crate::cli_model::model(command).await,
        Command::Feedback { command } => crate::cli_feedback::feedback(command).await,
        Command::Connectors { command } => crate::sources_cli::connectors(command).await,
        Command::Sources { command } => crate::sources_cli::sources(command).await,
        Command::Secrets { command } => crate::sources_cli::secrets(command),
        // The storage clients block (PostgreSQL's on a runtime of its own): off the async one.
        Command::Keys { command } => {
            tokio::task::spawn_blocking(move || crate::keys_cli::keys(command)).await?
        }
    }
}

pub fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub(crate) async fn channel(client: &ClientArgs) -> anyhow::Result<ClientChannel> {
    let key = match &client.api_key {
        Some(key) => Some(format!("Bearer {}", key.trim()).parse().map_err(|_| {
            anyhow::anyhow!("--api-key / TRELLIS_API_KEY is not a key; pass it as `trellis keys create` printed it")
        })?),
        None => None,
    };
    let channel = plain_channel(client).await?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        BearerKey(key),
    ))
}

async fn plain_channel(client: &ClientArgs) -> anyhow::Result<Channel> {
    let url = if client.addr.starts_with("http://") || client.addr.starts_with("https://") {
        client.addr.clone()
    } else {
        format!("http://{}", client.addr)
    };
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("--addr {:?} is not an address; write HOST:PORT", client.addr))?
        .connect()
        .await
        .with_context(|| format!("cannot reach a Trellis server at {url}; start one with `trellis serve` or set --addr / TRELLIS_ADDR"))
}

/// A gRPC error as a person should read it: the message, then each field violation.
pub fn describe(status: &tonic::Status) -> anyhow::Error {
    // An invalid argument's message is its violations joined; they read better one per line,
    // and once.
    let violations = status
        .get_details_bad_request()
        .map(|bad_request| bad_request.field_violations)
        .unwrap_or_default();
    let text = if violations.is_empty() {
        format!("{:?}: {}", status.code(), status.message())
    } else {
        let mut text = format!("{:?}:", status.code());
        for violation in violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
        text
    };
    anyhow::Error::msg(text)
}

pub(crate) fn print(client: &ClientArgs, value: &Value, table: impl FnOnce(&Value)) {
    if client.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

async fn health(client: &ClientArgs) -> anyhow::Result<()> {
    let channel = channel(client).await?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let mut statuses = Vec::new();
    for service in [
        "trellis.v1.StrategyService",
        "trellis.v1.IngestService",
        "trellis.v1.InsightService",
        "trellis.v1.PeopleService",
        "trellis.v1.SourceService",
        "trellis.v1.ServerService",
    ] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|status| describe(&status))?;
        let serving = response.into_inner().status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        statuses.push(json!({"service": service, "serving": serving}));
    }
    let all = statuses.iter().all(|status| status["serving"] == true);
    let status = pb::server_service_client::ServerServiceClient::new(channel)
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let semantic = status.semantic.unwrap_or_default();
    let workspaces: Vec<Value> = status
        .workspaces
        .iter()
        .map(|workspace| {
            json!({
                "workspace": workspace.workspace,
                "conversations": workspace.conversations,
                "embedded_conversations": workspace.embedded_conversations,
                "pending_embeddings": workspace.pending_embeddings,
                "embedded_assets": workspace.embedded_assets,
                "pending_asset_embeddings": workspace.pending_asset_embeddings,
                "applied_change": workspace.applied_change,
                "change_log_head": workspace.change_log_head,
                "replication_lag": workspace.replication_lag,
                "standing_judged": workspace.standing_judged,
                "standing_pending": workspace.standing_pending,
                "standing_stale": workspace.standing_stale,
                "standing_bytes": workspace.standing_bytes,
                "insights_ready": workspace.insights_ready,
                "insights_pending": workspace.insights_pending,
                "insights_bytes": workspace.insights_bytes,
                "models_last_outcome": workspace.models_last_outcome,
                "models_fitted_records": workspace.models_fitted_records,
                "languages": workspace.languages.iter().map(|language| json!({
                    "code": language.code,
                    "name": language.name,
                    "conversations": language.conversations,
                    "posts": language.posts,
                    "analysis": language.analysis,
                    "analysed": language.analysed,
                    "by_meaning": language.by_meaning,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "addr": client.addr,
        "serving": all,
        "version": status.version,
        "engine": if semantic.enabled { "semantic" } else { "lexical-only" },
        "semantic": {
            "enabled": semantic.enabled,
            "model_id": semantic.model_id,
            "lexical_only_reason": semantic.lexical_only_reason,
        },
        "workspaces": workspaces,
        "follows_change_log": status.follows_change_log,
        "services": statuses,
    });
    print(client, &value, |value| {
        println!(
            "{} at {} (trellis {})",
            if all { "SERVING" } else { "NOT SERVING" },
            client.addr,
            status.version
        );
        if semantic.enabled {
            println!(
                "  engine: lexical and semantic scores fused ({})",
                semantic.model_id
            );
        } else {
            println!("  engine: lexical-only ({})", semantic.lexical_only_reason);
        }
        for workspace in &status.workspaces {
            if semantic.enabled {
                println!(
                    "  workspace {}: {} conversations, {} embedded, {} waiting; assets: {} embedded, {} waiting",
                    workspace.workspace,
                    workspace.conversations,
                    workspace.embedded_conversations,
                    workspace.pending_embeddings,
                    workspace.embedded_assets,
                    workspace.pending_asset_embeddings
                );
            } else {
                println!(
                    "  workspace {}: {} conversations",
                    workspace.workspace, workspace.conversations
                );
            }
            for language in &workspace.languages {
                println!(
                    "    {} ({}): {} conversations, {} posts; {}{}",
                    language.name,
                    language.code,
                    language.conversations,
                    language.posts,
                    language.analysis,
                    match (language.analysed, language.by_meaning) {
                        (false, _) => ", so its words are not indexed",
                        (true, true) => "; meaning read by the semantic tier",
                        (true, false) if semantic.enabled => {
                            "; found by its words only: the semantic model does not read it"
                        }
                        (true, false) => "",
                    }
                );
            }
            println!(
                "    standing: {} open conversations judged, {} waiting, {} judged before the latest changes ({:.1} MiB)",
                workspace.standing_judged,
                workspace.standing_pending,
                workspace.standing_stale,
                workspace.standing_bytes as f64 / (1024.0 * 1024.0)
            );
            println!(
                "    insights: {} people's made, {} waiting ({:.1} MiB)",
                workspace.insights_ready,
                workspace.insights_pending,
                workspace.insights_bytes as f64 / (1024.0 * 1024.0)
            );
            if !workspace.models_last_outcome.is_empty() {
                println!(
                    "    rankings: {} (trellis model show)",
                    workspace.models_last_outcome
                );
            }
            if status.follows_change_log {
                println!(
                    "    change log: applied {} of {}, {} behind",
                    workspace.applied_change, workspace.change_log_head, workspace.replication_lag
                );
            }
        }
        for service in value["services"].as_array().into_iter().flatten() {
            println!(
                "  {:<32} {}",
                service["service"].as_str().unwrap_or(""),
                if service["serving"] == true {
                    "serving"
                } else {
                    "not serving"
                }
            );
        }
    });
    if !all {
        bail!("some services are not serving");
    }
    Ok(())
}

fn kind_name(kind: i32) -> &'static str {
    match pb::FacetKind::try_from(kind) {
        Ok(pb::FacetKind::Job) => "job",
        Ok(pb::FacetKind::Advantage) => "advantage",
        Ok(pb::FacetKind::Expertise) => "expertise",
        Ok(pb::FacetKind::Message) => "message",
        Ok(pb::FacetKind::Category) => "category",
        _ => "unknown",
    }
}

fn class_name(class: i32) -> &'static str {
    match pb::ConnectionClass::try_from(class) {
        Ok(pb::ConnectionClass::CompetitiveArea) => "competitive area",
        Ok(pb::ConnectionClass::CustomerJob) => "customer job",
        Ok(pb::ConnectionClass::CategoryUsage) => "category usage",
        Ok(pb::ConnectionClass::OffStrategy) => "off-strategy",
        _ => "unknown",
    }
}

fn strategy_json(version: &pb::StrategyVersion) -> Value {
    let strategy = version.strategy.clone().unwrap_or_default();
    json!({
        "version": version.version,
        "created_at": version.created_at.as_ref().map(|t| t.seconds),
        "name": strategy.name,
        "mission": strategy.mission,
        "exclusions": strategy.exclusions,
        "facets": strategy.facets.iter().map(|facet| json!({
            "id": facet.id, "kind": kind_name(facet.kind), "name": facet.name,
            "description": facet.description, "keywords": facet.keywords,
            "examples": facet.examples, "weight": facet.weight.unwrap_or(1.0),
        })).collect::<Vec<_>>(),
    })
}

fn print_strategy(value: &Value) {
    println!(
        "strategy version {}: {}",
        value["version"],
        value["name"].as_str().unwrap_or("")
    );
    println!("{:<28} {:<10} {:>6}  NAME", "FACET", "KIND", "WEIGHT");
    for facet in value["facets"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<10} {:>6.2}  {}",
            facet["id"].as_str().unwrap_or(""),
            facet["kind"].as_str().unwrap_or(""),
            facet["weight"].as_f64().unwrap_or(1.0),
            facet["name"].as_str().unwrap_or("")
        );
    }
}

async fn strategy_put(client: &ClientArgs, file: &PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // The file is parsed here with the same rules as the server, so mistakes are named by
    // their place in the file before anything is sent; label_tags never leave this process.
    let strategy = trellis_core::strategy::parse_strategy_toml(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
    let request = pb::PutStrategyRequest {
        workspace: client.workspace.clone(),
        strategy: Some(trellis_grpc::convert::strategy_to_pb(&strategy)),
    };
    let mut service =
        pb::strategy_service_client::StrategyServiceClient::new(channel(client).await?);
    let response = service
        .put_strategy(request)
        .await
        .map_err(|status| describe(&status))?;
    let version = response.into_inner().strategy_version.unwrap_or_default();
    let value = strategy_json(&version);
    print(client, &value, |value| {
        println!("stored as version {}", value["version"]);
        print_strategy(value);
    });
    Ok(())
}

async fn strategy_get(client: &ClientArgs, version: u32) -> anyhow::Result<()> {
    let mut service =
        pb::strategy_service_client::StrategyServiceClient::new(channel(client).await?);
    let response = service
        .get_strategy(pb::GetStrategyRequest {
            workspace: client.workspace.clone(),
            version,
        })
        .await
        .map_err(|status| describe(&status))?;
    let value = strategy_json(&response.into_inner().strategy_version.unwrap_or_default());
    print(client, &value, print_strategy);
    Ok(())
}

async fn strategy_versions(client: &ClientArgs) -> anyhow::Result<()> {
    let mut service =
        pb::strategy_service_client::StrategyServiceClient::new(channel(client).await?);
    let mut versions = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = service
            .list_strategy_versions(pb::ListStrategyVersionsRequest {
                workspace: client.workspace.clone(),
                page_size: 100,
                page_token: page_token.clone(),
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        versions.extend(response.strategy_versions.iter().map(strategy_json));
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    let value = Value::Array(versions);
    print(client, &value, |value| {
        println!("{:>7}  {:>6}  NAME", "VERSION", "FACETS");
        for version in value.as_array().into_iter().flatten() {
            println!(
                "{:>7}  {:>6}  {}",
                version["version"],
                version["facets"].as_array().map_or(0, Vec::len),
                version["name"].as_str().unwrap_or("")
            );
        }
    });
    Ok(())
}

async fn ingest(client: &ClientArgs, file: &PathBuf) -> anyhow::Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut messages = Vec::new();
    let mut lines_of_messages = Vec::new();
    let mut local_errors = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match crate::jsonl::parse_line(&line, &client.workspace) {
            Ok(message) => {
                messages.push(message);
                lines_of_messages.push(index + 1);
            }
            Err(error) => {
                local_errors.push(json!({"line": index + 1, "field": "", "reason": error}))
            }
        }
    }
    let mut service = pb::ingest_service_client::IngestServiceClient::new(channel(client).await?);
    let response = service
        .ingest(tokio_stream::iter(messages))
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let mut errors = local_errors;
    errors.extend(response.errors.iter().map(|error| {
        json!({
            "line": lines_of_messages.get(error.position as usize).copied().unwrap_or(0),
            "field": error.field,
            "reason": error.reason,
        })
    }));
    let value = json!({
        "received": response.received,
        "inserted": response.inserted,
        "updated": response.updated,
        "unchanged": response.unchanged,
        "errors": errors,
    });
    print(client, &value, |value| {
        println!(
            "sent {}: {} inserted, {} updated, {} unchanged, {} refused",
            value["received"],
            value["inserted"],
            value["updated"],
            value["unchanged"],
            value["errors"].as_array().map_or(0, Vec::len)
        );
        for error in value["errors"].as_array().into_iter().flatten() {
            println!(
                "  line {}: {} {}",
                error["line"],
                error["field"].as_str().unwrap_or(""),
                error["reason"].as_str().unwrap_or("")
            );
        }
    });
    Ok(())
}

pub(crate) fn evidence_json(evidence: &pb::Evidence) -> Value {
    json!({
        "terms": evidence.terms.iter().map(|term| term.term.clone()).collect::<Vec<_>>(),
        "phrases": evidence.phrases,
        "sentence": evidence.sentence,
        "location": evidence.location,
    })
}

fn facets_json(facets: &[pb::FacetScore]) -> Value {
    Value::Array(
        facets
            .iter()
            .map(|facet| {
                json!({
                    "facet_id": facet.facet_id,
                    "kind": kind_name(facet.kind),
                    "relevance": facet.relevance,
                    "evidence": facet.evidence.as_ref().map(evidence_json),
                })
            })
            .collect(),
    )
}

async fn score(
    client: &ClientArgs,
    text: Option<String>,
    title: String,
    conversation: Option<String>,
) -> anyhow::Result<()> {
    let mut request = pb::ScoreConversationsRequest {
        workspace: client.workspace.clone(),
        ..Default::default()
    };
    match (text, conversation) {
        (Some(text), None) => request.texts.push(pb::TextInput { title, body: text }),
        (None, Some(conversation)) => {
            let key = trellis_core::domain::RecordKey::parse(&conversation, "--conversation")
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            request
                .conversations
                .push(trellis_grpc::convert::record_ref(&key));
        }
        _ => bail!("give --text TEXT or --conversation SOURCE:ID"),
    }
    let mut service = pb::insight_service_client::InsightServiceClient::new(channel(client).await?);
    let response = service
        .score_conversations(request)
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let scores: Vec<Value> = response
        .scores
        .iter()
        .map(|score| {
            json!({
                "conversation": score.conversation.as_ref().map(|r| format!("{}:{}", r.source, r.external_id)),
                "relevance": score.relevance,
                "class": class_name(score.class),
                "excluded_topics": score.excluded_topics,
                "strategy_version": score.strategy_version,
                "facets": facets_json(&score.facets),
            })
        })
        .collect();
    let value = Value::Array(scores);
    print(client, &value, |value| {
        for score in value.as_array().into_iter().flatten() {
            println!(
                "relevance {:.3}, {}",
                score["relevance"].as_f64().unwrap_or(0.0),
                score["class"].as_str().unwrap_or("")
            );
            print_facets(&score["facets"]);
        }
    });
    Ok(())
}

fn print_facets(facets: &Value) {
    let mut facets: Vec<&Value> = facets.as_array().into_iter().flatten().collect();
    facets.sort_by(|a, b| {
        b["relevance"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["relevance"].as_f64().unwrap_or(0.0))
    });
    for facet in facets {
        println!(
            "  {:<28} {:<10} {:.3}",
            facet["facet_id"].as_str().unwrap_or(""),
            facet["kind"].as_str().unwrap_or(""),
            facet["relevance"].as_f64().unwrap_or(0.0)
        );
        if let Some(evidence) = facet["evidence"].as_object() {
            let terms: Vec<&str> = evidence["terms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !terms.is_empty() {
                println!("      matched: {}", terms.join(", "));
            }
            let phrases: Vec<&str> = evidence["phrases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !phrases.is_empty() {
                println!("      phrases: {}", phrases.join(", "));
            }
            if let Some(sentence) = evidence["sentence"].as_str().filter(|s| !s.is_empty()) {
                println!(
                    "      \"{sentence}\" ({})",
                    evidence["location"].as_str().unwrap_or("")
                );
            }
        }
    }
}

async fn top(client: &ClientArgs, limit: i32, facet: String) -> anyhow::Result<()> {
    let mut service = pb::insight_service_client::InsightServiceClient::new(channel(client).await?);
    let response = service
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            workspace: client.workspace.clone(),
            limit,
            facet_id: facet,
            ..Default::default()
        })
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let items: Vec<Value> = response
        .conversations
        .iter()
        .map(|item| {
            json!({
                "conversation": item.conversation.as_ref().map(|r| format!("{}:{}", r.source, r.external_id)),
                "title": item.title,
                "url": item.url,
                "priority": item.priority,
                "relevance": item.relevance,
                "class": class_name(item.class),
                "reasons": item.reasons,
                "facets": facets_json(&item.facets.iter().filter(|f| f.evidence.is_some()).cloned().collect::<Vec<_>>()),
            })
        })
        .collect();
    let value = json!({"strategy_version": response.strategy_version, "conversations": items});
    print(client, &value, |value| {
        println!(
            "conversations to nourish now (strategy version {}):",
            value["strategy_version"]
        );
        for (rank, item) in value["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            println!(
                "{:>2}. [{:.3}] {} — {}",
                rank + 1,
                item["priority"].as_f64().unwrap_or(0.0),
                item["conversation"].as_str().unwrap_or(""),
                item["title"].as_str().unwrap_or("")
            );
            println!(
                "      {} (relevance {:.3})",
                item["class"].as_str().unwrap_or(""),
                item["relevance"].as_f64().unwrap_or(0.0)
            );
            let reasons: Vec<&str> = item["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("      why: {}", reasons.join("; "));
            for facet in item["facets"].as_array().into_iter().flatten() {
                if let Some(sentence) = facet["evidence"]["sentence"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                {
                    println!(
                        "      {}: \"{}\"",
                        facet["facet_id"].as_str().unwrap_or(""),
                        sentence
                    );
                }
            }
        }
    });
    Ok(())
}

async fn audit(client: &ClientArgs, mission: String) -> anyhow::Result<()> {
    let mut service = pb::insight_service_client::InsightServiceClient::new(channel(client).await?);
    let response = service
        .audit_community_design(pb::AuditCommunityDesignRequest {
            workspace: client.workspace.clone(),
            mission,
        })
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let value = json!({
        "alignment": response.alignment,
        "strategy_version": response.strategy_version,
        "facets": response.facets.iter().map(|facet| json!({
            "facet_id": facet.facet_id, "name": facet.facet_name, "kind": kind_name(facet.kind),
            "coverage": facet.coverage, "served": facet.served,
            "matched_terms": facet.matched_terms, "suggestion": facet.suggestion,
        })).collect::<Vec<_>>(),
        "findings": response.findings,
    });
    print(client, &value, |value| {
        println!(
            "alignment {:.0}% (strategy version {})",
            value["alignment"].as_f64().unwrap_or(0.0) * 100.0,
            value["strategy_version"]
        );
        for facet in value["facets"].as_array().into_iter().flatten() {
            println!(
                "  {:<28} {:<10} {:>5.2} {}",
                facet["facet_id"].as_str().unwrap_or(""),
                facet["kind"].as_str().unwrap_or(""),
                facet["coverage"].as_f64().unwrap_or(0.0),
                if facet["served"] == true {
                    "served"
                } else {
                    "LEFT OUT"
                }
            );
        }
        for finding in value["findings"].as_array().into_iter().flatten() {
            println!("- {}", finding.as_str().unwrap_or(""));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command that runs a server in this process keeps ignoring SIGPIPE (see `main`): with
    /// the default action, a client hanging up on `eval`'s server ended the whole evaluation
    /// after its first dump.
    #[test]
    fn commands_that_run_a_server_are_services() {
        for (args, service) in [
            (&["trellis", "serve"][..], true),
            (&["trellis", "eval", "--dump", "a,b"][..], true),
            (&["trellis", "health"][..], false),
            (&["trellis", "feedback", "list"][..], false),
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert_eq!(cli.is_service(), service, "{args:?}");
        }
    }
}
