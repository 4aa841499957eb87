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
    /// One source: its config (secrets shown as set or unset), schedule and last sync.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set a secret field of a source's config (e.g. api_key) without resending the rest. The
    /// value is read from standard input (its line end dropped), never from the command line,
    /// where other users of the machine could see it.
    SetSecret {
        id: String,
        /// The secret field, as the connector's schema names it (nested: auth.token).
        field: String,
        /// Read the value from this environment variable instead of standard input.
        #[arg(long)]
        from_env: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Unset a secret field of a source's config.
    ClearSecret {
        id: String,
        field: String,
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

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random key (32 bytes, base64) for secrets.key_file or TRELLIS_SECRETS_KEY.
    NewKey {
        /// Write it to this file instead, readable by its owner only; refuses to overwrite.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `trellis secrets`: needs no server.
pub fn secrets(command: SecretsCommand) -> anyhow::Result<()> {
    let SecretsCommand::NewKey { out } = command;
    match out {
        None => println!("{}", trellis_plugin_host::secrets::new_key()),
        Some(path) => {
            let written = trellis_plugin_host::secrets::create_key_file(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !written {
                anyhow::bail!(
                    "{} exists; a key file is never overwritten (rotating? write the new key to another file, and list the old one in secrets.previous_key_files)",
                    path.display()
                );
            }
            println!("wrote a new key to {}", path.display());
        }
    }
    Ok(())
}

/// "api_key set, auth.token unset".
fn secrets_text(source: &pb::Source) -> String {
    source
        .secrets
        .iter()
        .map(|secret| {
            format!(
                "{} {}",
                secret.field,
                if secret.set { "set" } else { "unset" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn interval_text(seconds: u32) -> String {
    match seconds {
        0 => "manual".to_owned(),
        seconds if seconds % 3600 == 0 => format!("every {}h", seconds / 3600),
        seconds if seconds % 60 == 0 => format!("every {}m", seconds / 60),
        seconds => format!("every {seconds}s"),
    }
}

/// The fields of a config schema, one per line: name, type, required, secret, description.
fn schema_fields(schema_json: &str) -> Vec<String> {
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema_json) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let kind = property["type"].as_str().unwrap_or("any");
            let mut marks = Vec::new();
            if required.contains(&name.as_str()) {
                marks.push("required".to_owned());
            }
            if property["writeOnly"].as_bool() == Some(true)
                || property["x-secret"].as_bool() == Some(true)
            {
                marks.push("secret".to_owned());
            }
            if let Some(default) = property.get("default") {
                marks.push(format!("default {default}"));
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join(", "))
            };
            let description = property["description"].as_str().unwrap_or("");
            format!("{name}: {kind}{marks}  {description}")
                .trim_end()
                .to_owned()
        })
        .collect()
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
        "secrets": source.secrets.iter().map(|secret| (secret.field.clone(), json!(if secret.set { "set" } else { "unset" }))).collect::<serde_json::Map<_, _>>(),
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
        for field in schema_fields(&connector.config_schema_json) {
            println!("    {field}");
        }
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
                    let secrets = secrets_text(&source);
                    println!(
                        "{:<20} {:<14} {:<10} {:>8} records  {:<10}{}  {}",
                        source.id,
                        source.connector,
                        status_name(source.status),
                        source.records_synced,
                        interval_text(source.sync_interval_seconds),
                        if secrets.is_empty() {
                            String::new()
                        } else {
                            format!("  secrets: {secrets}")
                        },
                        source.last_error
                    );
                }
            }
        }
        SourcesCommand::Show { id, client: args } => {
            let source = client(&args)
                .await?
                .get_source(pb::GetSourceRequest {
                    workspace: args.workspace.clone(),
                    id,
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner()
                .source
                .unwrap_or_default();
            print_source(&args, &source)?;
        }
        SourcesCommand::SetSecret {
            id,
            field,
            from_env,
            client: args,
        } => {
            let value = match from_env {
                Some(name) => std::env::var(&name).with_context(|| {
                    format!("--from-env {name}: the environment variable is not set")
                })?,
                None => {
                    use std::io::IsTerminal as _;
                    if std::io::stdin().is_terminal() {
                        eprintln!("value of {field} (then Enter):");
                    }
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the secret from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            if value.is_empty() {
                anyhow::bail!(
                    "the value of {field} is empty; give it on standard input, or use `trellis sources clear-secret` to unset it"
                );
            }
            let source = client(&args)
                .await?
                .set_source_secrets(pb::SetSourceSecretsRequest {
                    workspace: args.workspace.clone(),
                    id,
                    set: [(field, value)].into_iter().collect(),
                    clear: Vec::new(),
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner()
                .source
                .unwrap_or_default();
            print_source(&args, &source)?;
        }
        SourcesCommand::ClearSecret {
            id,
            field,
            client: args,
        } => {
            let source = client(&args)
                .await?
                .set_source_secrets(pb::SetSourceSecretsRequest {
                    workspace: args.workspace.clone(),
                    id,
                    set: Default::default(),
                    clear: vec![field],
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner()
                .source
                .unwrap_or_default();
            print_source(&args, &source)?;
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

fn print_source(args: &ClientArgs, source: &pb::Source) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(&source_json(source))?);
        return Ok(());
    }
    println!(
        "{} ({}), {}",
        source.id, source.connector, source.display_name
    );
    println!("  config:  {}", source.config_json);
    let secrets = secrets_text(source);
    if !secrets.is_empty() {
        println!("  secrets: {secrets}");
    }
    println!(
        "  sync:    {}, {}, {} records{}",
        interval_text(source.sync_interval_seconds),
        status_name(source.status),
        source.records_synced,
        if source.isolated { ", isolated" } else { "" }
    );
    if !source.last_error.is_empty() {
        println!("  last error: {}", source.last_error);
    }
    Ok(())
}
