//! `trellis keys create|list|revoke`: API key management, straight on the database.
//!
//! These commands open the server's storage (the SQLite file of `--db` or `storage.path`, or the
//! PostgreSQL database of `storage.url`) rather than calling a server: whoever may read that
//! storage holds every key's power anyway, the first admin key needs no key to exist before it,
//! and a server on the same storage reads keys on every call, so a revocation counts from its
//! next call on.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use trellis_core::domain::WorkspaceId;
use trellis_core::keys::{self, ApiKey, KeyStore, Role};

use crate::config::{Config, Overrides};

#[derive(Debug, Args, Clone)]
pub struct DatabaseArgs {
    /// The SQLite database of the server (overrides storage.path).
    #[arg(long)]
    db: Option<PathBuf>,
    /// A TOML config file whose storage.path to use.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for one workspace and role; the key is printed once and never stored.
    Create {
        /// The workspace the key reaches; `default` for the default one.
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
        /// `read`, `write` (read + ingest, strategies, sources, merges) or `admin` (write +
        /// deleting sources, forgetting people).
        #[arg(long)]
        role: String,
        /// A label saying who or what uses the key.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List keys (never their secrets), revoked ones too.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a key by its id; a running server refuses it from its next call on.
    Revoke {
        /// The key's id (the part after `trk_`, as `keys list` shows it).
        id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// The key store of the configured storage engine: the SQLite file (`--db`, else
/// `storage.path`), or the PostgreSQL database of `storage.url` when `storage.engine` says so.
fn open(database: &DatabaseArgs) -> anyhow::Result<std::sync::Arc<dyn KeyStore>> {
    let overrides = Overrides {
        storage_path: database.db.clone(),
        ..Overrides::default()
    };
    let config = Config::load(database.config.as_deref(), std::env::vars(), &overrides)
        .map_err(anyhow::Error::msg)?;
    let (_, _, keys) = crate::serve::open_storage(&config).with_context(|| {
        if config.storage.engine == "postgres" {
            "cannot open the PostgreSQL database of storage.url".to_owned()
        } else {
            format!(
                "cannot open the database at {}; pass the server's with --db",
                config.storage.path.display()
            )
        }
    })?;
    Ok(keys)
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "workspace": key.workspace.as_str(),
        "role": key.role.as_str(),
        "name": key.name,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    })
}

pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            workspace,
            role,
            name,
            database,
        } => {
            let workspace = WorkspaceId::parse(&workspace)
                .map_err(|violation| anyhow::anyhow!("--workspace {violation}"))?;
            let Some(role) = Role::parse(&role) else {
                bail!("--role {role:?} is not a role; use read, write or admin");
            };
            let store = open(&database)?;
            let (stored, presented) =
                keys::generate(workspace, role, &name, crate::serve::now_millis());
            store.put_key(&stored)?;
            if database.json {
                let mut value = key_json(&stored);
                value["key"] = Value::String(presented);
                println!("{value}");
            } else {
                println!("{presented}");
                eprintln!(
                    "key {} ({} in workspace {}) created; it is shown only now: keep it in a secret store and send it as `authorization: Bearer <key>`",
                    stored.id, stored.role, stored.workspace
                );
            }
        }
        KeysCommand::List { database } => {
            let listed = open(&database)?.keys()?;
            if database.json {
                let values: Vec<Value> = listed.iter().map(key_json).collect();
                println!("{}", Value::Array(values));
            } else if listed.is_empty() {
                println!(
                    "no keys; create one with `trellis keys create --workspace W --role admin`"
                );
            } else {
                for key in &listed {
                    println!(
                        "{:<16} {:<24} {:<5} {:<8} {}",
                        key.id,
                        key.workspace,
                        key.role,
                        if key.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        key.name
                    );
                }
            }
        }
        KeysCommand::Revoke { id, database } => {
            let id = id.strip_prefix("trk_").map_or(id.as_str(), |rest| {
                rest.split_once('_').map_or(rest, |(id, _)| id)
            });
            let store = open(&database)?;
            if !store.revoke_key(id, crate::serve::now_millis())? {
                match store.key(id)? {
                    Some(_) => bail!("key {id} was revoked already"),
                    None => bail!("there is no key {id}; see `trellis keys list`"),
                }
            }
            if database.json {
                let Some(revoked) = store.key(id)? else {
                    bail!("key {id} was revoked but cannot be read back; see `trellis keys list`");
                };
                let mut value = key_json(&revoked);
                value["revoked"] = Value::Bool(true);
                println!("{value}");
            } else {
                println!("key {id} revoked");
            }
        }
    }
    Ok(())
}
