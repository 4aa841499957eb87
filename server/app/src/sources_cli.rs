//! `trellis connectors` and `trellis sources`: the connector plugins a server loaded, and the
//! sources configured from them, with a sync's progress printed as it arrives.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use trellis_grpc::pb;
use trellis_grpc::pb::source_service_client::SourceServiceClient;

use crate::cli::{ClientArgs, channel, describe};

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// The connectors the server loaded from its plugin folders.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Configure a source; its config is validated against the connector's schema.
    #[command(visible_alias = "add")]
    Create {
        /// 1 to 64 characters of a-z, 0-9, '-' or '_'; records from it are keyed by it.
        id: String,
        /// The connector's name (see `trellis connectors list`).
        #[arg(long)]
        connector: String,
        /// The connector's config: a JSON object, or @FILE to read it from a file.
        #[arg(long, default_value = "{}")]
        config: String,
        /// A name for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Seconds between scheduled syncs; 0 for manual only.
        #[arg(long, default_value_t = 0)]
        interval: u32,
        /// Run the connector in a child process of its own, so that a crash, hang or leak of
        /// the plugin fails this source's syncs and nothing else.
        #[arg(long)]
        isolated: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The configured sources.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Ask the connector whether a source's config works.
    Check {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Sync a source now, printing progress after every checkpoint.
    Sync {
        id: String,
        /// Ignore the saved state and read everything again.
        #[arg(long)]
        full_refresh: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a source and its sync state (its records stay).
    #[command(visible_alias = "remove")]
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

async fn client(
    args: &ClientArgs,
) -> anyhow::Result<SourceServiceClient<crate::cli::ClientChannel>> {
    Ok(SourceServiceClient::new(channel(args).await?))
}

fn config_text(config: &str) -> anyhow::Result<String> {
    let text = match config.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(PathBuf::from(path))
            .with_context(|| format!("cannot read the config file {path}"))?,
        None => config.to_owned(),
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .with_context(|| "--config is not JSON; give a JSON object or @FILE".to_owned())?;
    Ok(text)
}

fn status_name(status: i32) -> &'static str {
    match pb::SyncStatus::try_from(status) {
        Ok(pb::SyncStatus::Idle) => "idle",
        Ok(pb::SyncStatus::Running) => "running",
        Ok(pb::SyncStatus::Succeeded) => "succeeded",
        Ok(pb::SyncStatus::Failed) => "failed",
        _ => "unknown",
    }
}

fn source_json(source: &pb::Source) -> serde_json::Value {
    json!({
        "id": source.id,
        "connector": source.connector,
        "display_name": source.display_name,
        "config": serde_json::from_str::<serde_json::Value>(&source.config_json).unwrap_or_default(),
        "sync_interval_seconds": source.sync_interval_seconds,
        "isolated": source.isolated,
        "status": status_name(source.status),
        "last_sync_at": source.last_sync_at.as_ref().map(|at| at.seconds),
        "last_error": source.last_error,
        "records_synced": source.records_synced,
    })
}

pub async fn connectors(command: ConnectorsCommand) -> anyhow::Result<()> {
    let ConnectorsCommand::List { client: args } = command;
    let connectors = client(&args)
        .await?
        .list_connectors(pb::ListConnectorsRequest {
            workspace: args.workspace.clone(),
        })
        .await
        .map_err(|status| describe(&status))?
        .into_inner()
        .connectors;
    if args.json {
        let list: Vec<_> = connectors
            .iter()
            .map(|connector| {
                json!({
                    "name": connector.name,
                    "version": connector.version,
                    "platform": pb::PlatformKind::try_from(connector.platform).map_or("unknown", |kind| kind.as_str_name()),
                    "streams": connector.streams,
                    "abi": format!("{}.{}", connector.abi_major, connector.abi_minor),
                    "config_schema": serde_json::from_str::<serde_json::Value>(&connector.config_schema_json).unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if connectors.is_empty() {
        println!("no connectors loaded; put plugin libraries in a folder of plugins.dirs");
    }
    for connector in connectors {
        let platform = pb::PlatformKind::try_from(connector.platform)
            .map_or("unknown", |kind| kind.as_str_name())
            .trim_start_matches("PLATFORM_KIND_")
            .to_lowercase();
        println!(
            "{:<16} {:<10} {:<16} abi {}.{}  streams: {}",
            connector.name,
            connector.version,
            platform,
            connector.abi_major,
            connector.abi_minor,
            connector.streams.join(", ")
        );
    }
    Ok(())
}

pub async fn sources(command: SourcesCommand) -> anyhow::Result<()> {
    match command {
        SourcesCommand::Create {
            id,
            connector,
            config,
            name,
            interval,
            isolated,
            client: args,
        } => {
            let source = pb::Source {
                id,
                connector,
                display_name: name,
                config_json: config_text(&config)?,
                sync_interval_seconds: interval,
                isolated,
                ..pb::Source::default()
            };
            let created = client(&args)
                .await?
                .create_source(pb::CreateSourceRequest {
                    workspace: args.workspace.clone(),
                    source: Some(source),
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner()
                .source
                .unwrap_or_default();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&source_json(&created))?);
            } else {
                println!("source {} created ({})", created.id, created.connector);
            }
        }
        SourcesCommand::List { client: args } => {
            let mut service = client(&args).await?;
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = service
                    .list_sources(pb::ListSourcesRequest {
                        workspace: args.workspace.clone(),
                        page_size: 500,
                        page_token: page_token.clone(),
                    })
                    .await
                    .map_err(|status| describe(&status))?
                    .into_inner();
                all.extend(page.sources);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if args.json {
                let list: Vec<_> = all.iter().map(source_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                if all.is_empty() {
                    println!("no sources; create one with `trellis sources create`");
                }
                for source in all {
                    println!(
                        "{:<20} {:<14} {:<10} {:>8} records  every {}s  {}",
                        source.id,
                        source.connector,
                        status_name(source.status),
                        source.records_synced,
                        source.sync_interval_seconds,
                        source.last_error
                    );
                }
            }
        }
        SourcesCommand::Check { id, client: args } => {
            let answer = client(&args)
                .await?
                .check_source(pb::CheckSourceRequest {
                    workspace: args.workspace.clone(),
                    id: id.clone(),
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            if args.json {
                println!("{}", json!({"ok": answer.ok, "message": answer.message}));
            } else {
                println!(
                    "{}: {}",
                    if answer.ok { "ok" } else { "failed" },
                    answer.message
                );
            }
            if !answer.ok {
                anyhow::bail!("source {id} does not pass its check");
            }
        }
        SourcesCommand::Sync {
            id,
            full_refresh,
            client: args,
        } => {
            let mut stream = client(&args)
                .await?
                .sync_source(pb::SyncSourceRequest {
                    workspace: args.workspace.clone(),
                    id: id.clone(),
                    full_refresh,
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let mut last = pb::SyncSourceResponse::default();
            while let Some(progress) = stream.message().await.map_err(|status| describe(&status))? {
                if args.json {
                    println!(
                        "{}",
                        json!({
                            "status": status_name(progress.status),
                            "records_read": progress.records_read,
                            "records_stored": progress.records_stored,
                            "checkpoints_committed": progress.checkpoints_committed,
                            "stream": progress.stream,
                            "message": progress.message,
                        })
                    );
                } else {
                    eprintln!(
                        "{:<10} read {:>8}  stored {:>8}  checkpoints {:>6}  {}",
                        status_name(progress.status),
                        progress.records_read,
                        progress.records_stored,
                        progress.checkpoints_committed,
                        progress.stream
                    );
                }
                last = progress;
            }
            if last.status == pb::SyncStatus::Failed as i32 {
                anyhow::bail!("sync of {id} failed: {}", last.message);
            }
            if !args.json {
                println!(
                    "synced {id}: {} records read, {} stored, {} checkpoints{}",
                    last.records_read,
                    last.records_stored,
                    last.checkpoints_committed,
                    if last.message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", last.message)
                    }
                );
            }
        }
        SourcesCommand::Delete { id, client: args } => {
            client(&args)
                .await?
                .delete_source(pb::DeleteSourceRequest {
                    workspace: args.workspace.clone(),
                    id: id.clone(),
                    delete_records: false,
                })
                .await
                .map_err(|status| describe(&status))?;
            if args.json {
                println!("{}", json!({"deleted": id}));
            } else {
                println!("source {id} deleted");
            }
        }
    }
    Ok(())
}
