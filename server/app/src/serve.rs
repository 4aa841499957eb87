//! `trellis serve`: wires storage, the core service and the gRPC API together, serves until
//! SIGINT/SIGTERM, lets in-flight calls finish, and flushes storage before exiting.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use trellis_core::domain::WorkspaceId;
use trellis_core::keys::KeyStore;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::SourceStore;
use trellis_core::store::Store;
use trellis_core::strategy::parse_strategy_toml;
use trellis_grpc::auth::{AuthLayer, AuthSettings};
use trellis_grpc::pb;
use trellis_grpc::{Api, ApiSettings, SourceApi};
use trellis_plugin_host::{
    FileRoots, IsolationSettings, KeySettings, LeasePolicy, PluginRegistry, RetryPolicy,
    SchedulerHandle, SecretKeys, Sources, default_holder, secrets,
};

use crate::config::{Config, PluginsConfig};

/// What one HTTP/2 stream may send ahead of its handler (the protocol's flow control).
const HTTP2_STREAM_WINDOW: u32 = 1 << 20;

/// What all streams of a connection may send ahead of their handlers. HTTP/2 (the `h2` crate)
/// also budgets the bookkeeping of small DATA frames at half of this window and ends the whole
/// connection (`GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"`) past it. gRPC clients send each
/// small message in a frame of its own (a bulk match's contacts are 20 to 40 bytes), and a socket
/// read can bring thousands at once; at the 1 MiB default the budget ran out within a fifth of a
/// second of a fast `MatchPeople` stream. At 32 MiB, one stream's whole window of the smallest
/// frames stays within the budget even when its handler stops reading, and a flood of empty or
/// tiny frames is still refused.
const HTTP2_CONNECTION_WINDOW: u32 = 32 << 20;
/// A server running in this process.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub trellis: Arc<Trellis>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), tonic::transport::Error>>,
    sources: Arc<Sources>,
    scheduler: Option<SchedulerHandle>,
    /// Set to stop the background embedding thread, while the semantic tier is on.
    embedding_worker: Option<Arc<AtomicBool>>,
    /// Set to stop the thread that follows the change log, on a store replicas share.
    follower: Option<Arc<AtomicBool>>,
    /// Set to stop the thread that keeps the standing index ahead of requests.
    standing_worker: Option<Arc<AtomicBool>>,
    /// Set to stop the thread that keeps each person's insight ahead of CRM syncs.
    insight_worker: Option<Arc<AtomicBool>>,
    /// Set to stop the thread that fits each workspace's ranking models.
    learning_worker: Option<Arc<AtomicBool>>,
}

impl Running {
    /// Stops accepting calls, lets in-flight ones finish within `grace`, then flushes storage.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(worker) = self.embedding_worker.take() {
            worker.store(true, Ordering::Relaxed);
        }
        if let Some(follower) = self.follower.take() {
            follower.store(true, Ordering::Relaxed);
        }
        if let Some(worker) = self.standing_worker.take() {
            worker.store(true, Ordering::Relaxed);
        }
        if let Some(worker) = self.insight_worker.take() {
            worker.store(true, Ordering::Relaxed);
        }
        if let Some(worker) = self.learning_worker.take() {
            worker.store(true, Ordering::Relaxed);
        }
        // Running syncs stop at their next batch; what they stored is covered by the
        // checkpoints they committed, or read again by the next sync.
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.stop();
            self.sources.cancel_all();
            let _ = tokio::task::spawn_blocking(move || drop(scheduler)).await;
        }
        match tokio::time::timeout(grace, &mut self.handle).await {
            Ok(joined) => joined
                .context("the server task failed")?
                .context("the server failed")?,
            Err(_) => {
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "in-flight calls did not finish in time; stopping anyway"
                );
                self.handle.abort();
            }
        }
        let trellis = Arc::clone(&self.trellis);
        tokio::task::spawn_blocking(move || trellis.flush())
            .await
            .context("flush task failed")?
            .context("flushing storage failed")?;
        Ok(())
    }
}

/// The configured storage engine, as both contracts.
/// The configured storage engine, as the three stores the server uses: records, sources and
/// their sync state, and API keys.
#[allow(clippy::type_complexity)]
pub(crate) fn open_storage(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn SourceStore>, Arc<dyn KeyStore>)> {
    if config.storage.engine == "postgres" {
        let storage = &config.storage;
        let options = trellis_store::PostgresOptions {
            url: storage.url.clone(),
            pool_size: storage.pool_size,
            schema: (!storage.schema.is_empty()).then(|| storage.schema.clone()),
        };
        let store = Arc::new(
            trellis_store::PostgresStore::open(&options)
                .context("cannot open the PostgreSQL database of storage.url")?,
        );
        return Ok((
            Arc::clone(&store) as Arc<dyn Store>,
            Arc::clone(&store) as Arc<dyn SourceStore>,
            store,
        ));
    }
    let sqlite = open_sqlite(config)?;
    Ok((
        Arc::clone(&sqlite) as Arc<dyn Store>,
        Arc::clone(&sqlite) as Arc<dyn SourceStore>,
        sqlite,
    ))
}

/// How isolated sources run their plugins: the configured runner, or the one next to this
/// executable (said in the log when it is missing, since isolated sources then cannot be created).
fn isolation_settings(plugins: &PluginsConfig) -> IsolationSettings {
    let defaults = IsolationSettings::default();
    let settings = IsolationSettings {
        runner: plugins.runner.clone().unwrap_or(defaults.runner),
        call_timeout: Duration::from_secs(plugins.isolated_call_timeout_seconds),
        memory_mb: plugins.isolated_memory_mb,
    };
    if !settings.runner.is_file() {
        tracing::warn!(runner = %settings.runner.display(), "the plugin runner is missing; sources with isolated set cannot run until it is installed next to trellis or plugins.runner names it");
    }
    settings
}

fn open_sqlite(config: &Config) -> anyhow::Result<Arc<trellis_store::SqliteStore>> {
    let store = trellis_store::SqliteStore::open(&config.storage.path).with_context(|| {
        format!(
            "cannot open the database at {}",
            config.storage.path.display()
        )
    })?;
    Ok(Arc::new(store))
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_millis() as i64)
}

/// The configured sentence embedder, or why there is none. `required` turns a missing or
/// damaged model into a start-up error; `auto` into lexical-only with the reason.
fn load_embedder(
    config: &Config,
) -> anyhow::Result<Result<Arc<dyn trellis_core::semantic::SentenceEmbedder>, String>> {
    let semantic = &config.semantic;
    if semantic.mode == "off" {
        return Ok(Err("semantic.mode is \"off\"; set it to \"auto\" and run scripts/fetch-model.sh to fuse sentence embeddings".to_owned()));
    }
    let options = trellis_semantic::Options {
        threads: semantic.threads,
        max_tokens: Some(semantic.max_tokens),
        ..trellis_semantic::Options::default()
    };
    match trellis_semantic::MiniLm::load_with(&semantic.model_dir, options) {
        Ok(model) => Ok(Ok(Arc::new(model))),
        Err(error) if semantic.mode == "required" => Err(anyhow::anyhow!(
            "semantic.mode is \"required\" but the model cannot be loaded: {error}"
        )),
        Err(error) => Ok(Err(error.to_string())),
    }
}

/// Runs `step` over and over in a thread named `name` until the returned flag is set; each
/// step does a bounded piece of work and rests as it sees fit. `unavailable` says, in the log,
/// what goes missing when the thread cannot start.
fn start_worker(
    name: &str,
    unavailable: &'static str,
    mut step: impl FnMut() + Send + 'static,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                step();
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, thread = name, "cannot start a background thread; {unavailable}");
    }
    stop
}

/// Embeds pending conversations in the background, one batch at a time, for as long as the
/// server runs; rests while nothing is pending. A failing batch is logged and retried later.
/// Setting the returned flag stops it after its current batch.
fn start_embedding_worker(trellis: Arc<Trellis>) -> Arc<AtomicBool> {
    const BATCH: usize = 32;
    start_worker(
        "trellis-embedder",
        "conversations stay lexical-only",
        move || match trellis.embed_pending(BATCH) {
            Ok(0) => std::thread::sleep(Duration::from_millis(200)),
            Ok(embedded) => tracing::debug!(embedded, "conversations embedded"),
            Err(error) => {
                tracing::warn!(%error, "embedding failed; retrying in 10 s");
                std::thread::sleep(Duration::from_secs(10));
            }
        },
    )
}

/// Keeps the standing index of every workspace ahead of requests, a fifth of a second of
/// judging at a time (each under a read lock, so writes wait at most that long), resting while
/// nothing needs judging. Says when the index is complete after being behind. Setting the
/// returned flag stops it.
fn start_standing_worker(trellis: Arc<Trellis>) -> Arc<AtomicBool> {
    const BUDGET: Duration = Duration::from_millis(200);
    // Judging waits for records to stop arriving for this long (at most half a minute).
    const SETTLE: Duration = Duration::from_secs(1);
    let mut behind_since: Option<(std::time::Instant, usize)> = None;
    start_worker(
        "trellis-standing",
        "requests judge what they need themselves",
        move || match trellis.refresh_standing(BUDGET, SETTLE) {
            Ok(progress) => {
                if progress.pending > 0 {
                    let (_, judged) = behind_since.get_or_insert((std::time::Instant::now(), 0));
                    *judged += progress.judged;
                } else if let Some((since, judged)) = behind_since.take() {
                    tracing::info!(
                        judged = judged + progress.judged,
                        conversations = progress.ready,
                        seconds = since.elapsed().as_secs_f64(),
                        mib = progress.bytes as f64 / (1024.0 * 1024.0),
                        "standing index complete: every open conversation judged"
                    );
                }
                if progress.judged == 0 {
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "judging where people stand failed; trying again in 10 s");
                std::thread::sleep(Duration::from_secs(10));
            }
        },
    )
}

/// Keeps each person's insight (where their interests meet the strategy, with evidence) made
/// ahead of `MatchPerson`, `MatchPeople` and `GetPerson`, a fifth of a second at a time
/// per workspace (each under a read lock), resting while nothing needs making. Says when every
/// person has one after being behind. Setting the returned flag stops it.
fn start_insight_worker(trellis: Arc<Trellis>) -> Arc<AtomicBool> {
    const BUDGET: Duration = Duration::from_millis(200);
    // Insights wait for records to stop arriving for this long.
    const SETTLE: Duration = Duration::from_secs(1);
    let mut behind_since: Option<(std::time::Instant, usize)> = None;
    start_worker(
        "trellis-insights",
        "requests make the insights they need themselves",
        move || match trellis.refresh_insights(BUDGET, SETTLE) {
            Ok(progress) if progress.made > 0 => {
                let (_, made) = behind_since.get_or_insert((std::time::Instant::now(), 0));
                *made += progress.made;
            }
            Ok(_) => {
                if let Some((since, made)) = behind_since.take() {
                    tracing::info!(
                        made,
                        seconds = since.elapsed().as_secs_f64(),
                        "insight index complete: every person's insight made"
                    );
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => {
                tracing::warn!(%error, "making people's insights failed; trying again in 10 s");
                std::thread::sleep(Duration::from_secs(10));
            }
        },
    )
}

/// Fits each workspace's ranking models on its own history whenever it is due (never fitted,
/// or grown since; see `Trellis::learning_due`), once its records have stopped arriving for
/// `settle` and its conversations are embedded (or `max_embedding_wait` has passed since it
/// became due). One workspace at a time; rests two seconds between looks. Setting the returned
/// flag stops it after the fit under way.
fn start_learning_worker(
    trellis: Arc<Trellis>,
    settle: Duration,
    max_embedding_wait: Duration,
) -> Arc<AtomicBool> {
    use std::collections::HashMap;
    use std::time::Instant;
    // Per workspace: its record count when last looked at, since when it has not changed, and
    // since when it has been due.
    let mut seen: HashMap<WorkspaceId, (u64, Instant, Option<Instant>)> = HashMap::new();
    start_worker(
        "trellis-learning",
        "the default rankings apply",
        move || {
            let mut look = || -> Result<(), trellis_core::error::CoreError> {
                let pending: HashMap<WorkspaceId, usize> = trellis
                    .semantic_status()?
                    .workspaces
                    .into_iter()
                    .map(|workspace| (workspace.workspace, workspace.pending))
                    .collect();
                for (workspace, _) in trellis.indexed_conversations()? {
                    let counts = trellis.counts(&workspace)?;
                    let records = counts.people + counts.conversations + counts.posts;
                    let now = Instant::now();
                    let entry = seen
                        .entry(workspace.clone())
                        .or_insert((records, now, None));
                    if entry.0 != records {
                        *entry = (records, now, entry.2);
                        continue;
                    }
                    if !trellis.learning_due(&workspace)? {
                        entry.2 = None;
                        continue;
                    }
                    let due_since = *entry.2.get_or_insert(now);
                    let settled = entry.1.elapsed() >= settle;
                    let embedded = pending.get(&workspace).copied().unwrap_or(0) == 0
                        || due_since.elapsed() >= max_embedding_wait;
                    if settled && embedded {
                        let started = Instant::now();
                        let outcome = trellis.learn(&workspace)?;
                        tracing::info!(%workspace, seconds = started.elapsed().as_secs_f64(), %outcome, "workspace rankings fitted");
                        entry.2 = None;
                    }
                }
                Ok(())
            };
            if let Err(error) = look() {
                tracing::warn!(%error, "fitting rankings failed; trying again in a minute");
                std::thread::sleep(Duration::from_secs(60));
            }
            std::thread::sleep(Duration::from_secs(2));
        },
    )
}

/// Starts the thread that keeps this replica's engines up to the change log every `interval`,
/// and prunes changes older than `retention` about once a minute. Setting the returned flag
/// stops it.
fn start_follower(
    trellis: Arc<Trellis>,
    interval: Duration,
    retention: Duration,
) -> Arc<AtomicBool> {
    let mut last_prune = std::time::Instant::now();
    start_worker(
        "trellis-follower",
        "writes of other replicas will not reach this one",
        move || {
            match trellis.follow() {
                Ok(0) => {}
                Ok(applied) => tracing::debug!(applied, "changes of other replicas applied"),
                Err(error) => {
                    tracing::warn!(%error, "following the change log failed; trying again")
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(60) {
                last_prune = std::time::Instant::now();
                match trellis.prune_changes(retention) {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old changes pruned from the change log"),
                    Err(error) => tracing::warn!(%error, "pruning the change log failed"),
                }
            }
            std::thread::sleep(interval);
        },
    )
}

/// What start-up opened on the blocking pool.
type Opened = (Trellis, Config, Arc<dyn SourceStore>, Arc<dyn KeyStore>);

/// Opens storage, rebuilds the engines, puts the configured strategy file if it changed, and
/// starts serving on the configured address.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let config = config.clone();
    let trellis = tokio::task::spawn_blocking(move || -> anyhow::Result<Opened> {
        let (store, source_store, key_store) = open_storage(&config)?;
        let embedder = load_embedder(&config)?;
        let settings = Settings {
            semantic: trellis_core::engine::semantic::SemanticSettings {
                weight: config.semantic.weight,
                ..Default::default()
            },
            standing_max_age: Duration::from_secs(config.standing.max_age_seconds),
            ..Settings::default()
        };
        let trellis = Trellis::open_with(store, settings, embedder).context("cannot load the stored data")?;
        if let Some(file) = &config.strategy.file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the strategy file {}", file.display()))?;
            let strategy = parse_strategy_toml(&text)
                .with_context(|| format!("strategy file {}", file.display()))?;
            let workspace = WorkspaceId::default_workspace();
            let stored = trellis.strategy(&workspace, None).ok();
            if stored.as_ref().is_none_or(|stored| stored.strategy != strategy) {
                let version = trellis.put_strategy(&workspace, strategy, now_millis())?;
                tracing::info!(version = version.version, file = %file.display(), "strategy loaded from file");
            }
        }
        Ok((trellis, config, source_store, key_store))
    })
    .await
    .context("start-up task failed")??;
    let (trellis, config, source_store, key_store) = trellis;
    let trellis = Arc::new(trellis);
    let dirs = config.plugins.dirs.clone();
    let isolation = isolation_settings(&config.plugins);
    let probe = if !config.plugins.probe_isolated {
        None
    } else if isolation.runner.is_file() {
        Some(isolation.clone())
    } else {
        // A packaging mistake must not cost every connector: read the specs here, and say so.
        tracing::warn!(runner = %isolation.runner.display(), "the plugin runner is missing, so plugin specs are read in this process (a plugin that crashes there stops the server); install trellis-plugin-runner next to trellis, set plugins.runner, or set plugins.probe_isolated = false");
        None
    };
    let registry = tokio::task::spawn_blocking(move || match probe {
        Some(isolation) => PluginRegistry::load_probed(&dirs, &isolation),
        None => PluginRegistry::load(&dirs),
    })
    .await
    .context("loading plugins failed")?;
    tracing::info!(connectors = ?registry.names(), "plugins loaded");
    let keys = Arc::new(secret_keys(&config)?);
    let sources = Arc::new(
        Sources::new(Arc::clone(&trellis), source_store, Arc::new(registry))
            .with_retry(RetryPolicy {
                attempts: config.sync.retry_attempts,
                min_delay: Duration::from_millis(config.sync.retry_min_delay_ms),
                max_delay: Duration::from_secs(config.sync.retry_max_delay_seconds),
            })
            .with_lease(LeasePolicy {
                holder: default_holder(),
                ttl: Duration::from_secs(config.sync.lease_seconds),
            })
            .with_isolation(isolation)
            .with_secret_keys(keys)
            .with_file_roots(Arc::new(file_roots(&config)?))
            .with_egress(egress_policy(&config)),
    );
    // Without a change log this process owns its store alone.
    let exclusive = !trellis.follows_changes();
    {
        let sources = Arc::clone(&sources);
        tokio::task::spawn_blocking(move || {
            sources.recover(exclusive)?;
            sources.seal_stored_secrets()
        })
        .await
        .context("recovering sources failed")??;
    }
    for (workspace, conversations) in trellis.indexed_conversations()? {
        tracing::info!(%workspace, conversations, "workspace loaded");
    }
    let status = trellis.semantic_status()?;
    let mut embedding_worker = None;
    match &status.model_id {
        Some(model) => {
            let pending: usize = status.workspaces.iter().map(|w| w.pending).sum();
            tracing::info!(
                semantic = true,
                model = %model,
                pending,
                "engine ready: lexical and semantic scores are fused; conversations without an embedding yet are embedded in the background"
            );
            embedding_worker = Some(start_embedding_worker(Arc::clone(&trellis)));
        }
        None => tracing::warn!(
            semantic = false,
            reason = %status.lexical_only_reason,
            "engine ready: lexical-only"
        ),
    }
    let follower = trellis.follows_changes().then(|| {
        tracing::info!(
            replica = %sources.lease_holder(),
            follow_interval_ms = config.replication.follow_interval_ms,
            "following the change log of the shared database"
        );
        start_follower(
            Arc::clone(&trellis),
            Duration::from_millis(config.replication.follow_interval_ms),
            Duration::from_secs(config.replication.change_retention_hours * 3600),
        )
    });
    let standing_worker = config
        .standing
        .background
        .then(|| start_standing_worker(Arc::clone(&trellis)));
    let insight_worker = config
        .insights
        .background
        .then(|| start_insight_worker(Arc::clone(&trellis)));
    let learning_worker = config.learning.background.then(|| {
        start_learning_worker(
            Arc::clone(&trellis),
            Duration::from_secs(config.learning.settle_seconds),
            Duration::from_secs(config.learning.max_embedding_wait_seconds),
        )
    });
    let mut running = serve_on(Arc::clone(&trellis), sources, key_store, &config).await?;
    running.embedding_worker = embedding_worker;
    running.follower = follower;
    running.standing_worker = standing_worker;
    running.insight_worker = insight_worker;
    running.learning_worker = learning_worker;
    Ok(running)
}

/// The keys that seal connector secrets: the configured ones; else a `secrets.key` beside the
/// SQLite database, made there when the server listens on a loopback address only (a quick
/// start on one machine). A server without a key refuses to store secrets, saying how to set one.
/// What a server listening on `ip` is exposed to, if anything: beyond loopback, no keys (anyone
/// who reaches it can do anything) or keys without TLS (they travel in clear).
fn exposure_warning(ip: std::net::IpAddr, keys: bool, tls: bool) -> Option<&'static str> {
    if ip.is_loopback() {
        None
    } else if !keys {
        Some(
            "serving a non-loopback address without api keys: anyone who reaches it can read and change everything; set [auth] required = true and create keys with `trellis keys create`",
        )
    } else if !tls {
        Some(
            "serving a non-loopback address without TLS: api keys and data travel in clear; set server.tls_cert and server.tls_key, or put a TLS-terminating proxy in front",
        )
    } else {
        None
    }
}

/// Where connectors may read files: `[files]`, or by default on loopback the current folder and
/// the temporary folder, beyond loopback nowhere. Said in the log either way.
fn file_roots(config: &Config) -> anyhow::Result<FileRoots> {
    let roots = match &config.files.roots {
        Some(roots) => roots.clone(),
        None if config.listen_addr().ip().is_loopback() => {
            let mut roots =
                vec![std::env::current_dir().context("cannot read the current folder")?];
            roots.push(std::env::temp_dir());
            roots
        }
        None => Vec::new(),
    };
    let file_roots = FileRoots::new(&roots, &config.files.workspaces, "files.roots")
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    if roots.is_empty() && config.files.workspaces.is_empty() {
        tracing::info!(
            "connectors read no local files: set files.roots to the folders they may read (exports, dumps)"
        );
    } else {
        let listed: Vec<String> = roots
            .iter()
            .map(|root| root.display().to_string())
            .collect();
        tracing::info!(roots = %listed.join(", "), workspaces_with_own_roots = config.files.workspaces.len(), "connectors read local files only below these folders");
    }
    Ok(file_roots)
}

/// The outbound policy every plugin gets, said once in the log.
fn egress_policy(config: &Config) -> trellis_plugin_host::EgressPolicy {
    let policy = config.egress.policy();
    if policy.allow_private {
        tracing::warn!(
            "connectors may reach loopback, private and link-local addresses (egress.allow_private = true): a source's config can point the server at its own network"
        );
    } else if policy.allow.is_empty() {
        tracing::info!(
            "connectors reach public addresses only: set egress.allow to the private hosts or networks they may reach"
        );
    } else {
        tracing::info!(allow = %policy.allow.join(", "), "connectors reach public addresses and these");
    }
    policy
}

fn secret_keys(config: &Config) -> anyhow::Result<SecretKeys> {
    let mut settings = KeySettings {
        key_file: config.secrets.key_file.clone(),
        previous_key_files: config.secrets.previous_key_files.clone(),
    };
    let from_env = std::env::var(secrets::KEY_ENV).is_ok_and(|key| !key.trim().is_empty());
    if settings.key_file.is_none() && !from_env && config.storage.engine == "sqlite" {
        let beside = config
            .storage
            .path
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."))
            .join("secrets.key");
        if beside.is_file() {
            tracing::info!(file = %beside.display(), "connector secrets are sealed with the key beside the database");
            settings.key_file = Some(beside);
        } else if config.listen_addr().ip().is_loopback() {
            if secrets::create_key_file(&beside)
                .with_context(|| format!("cannot write a secrets key to {}", beside.display()))?
            {
                tracing::info!(file = %beside.display(), "made a key to seal connector secrets with, readable by its owner only; back it up with the database (without it the stored secrets cannot be read), or set secrets.key_file");
            }
            settings.key_file = Some(beside);
        }
    }
    let keys = SecretKeys::load(&settings).map_err(|error| anyhow::anyhow!("{error}"))?;
    if !keys.can_seal() {
        tracing::warn!(
            "no key to seal connector secrets with: sources whose config holds a secret are refused; {}",
            secrets::HOW_TO_SET_A_KEY
        );
    }
    Ok(keys)
}

async fn serve_on(
    trellis: Arc<Trellis>,
    sources: Arc<Sources>,
    key_store: Arc<dyn KeyStore>,
    config: &Config,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.listen_addr())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using it?",
                config.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    if config.auth.required {
        tracing::info!("api keys required on every call (auth.required)");
    }
    if let Some(warning) = exposure_warning(
        addr.ip(),
        config.auth.required,
        config.server.tls_cert.is_some(),
    ) {
        tracing::warn!(%addr, "{warning}");
    }
    let api = Api::new(
        Arc::clone(&trellis),
        ApiSettings {
            ingest_batch: config.server.ingest_batch,
            ..ApiSettings::default()
        },
    );
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::strategy_service_server::StrategyServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::ingest_service_server::IngestServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::insight_service_server::InsightServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::people_service_server::PeopleServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::server_service_server::ServerServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::feedback_service_server::FeedbackServiceServer<Api>>()
        .await;
    health_reporter
        .set_serving::<pb::source_service_server::SourceServiceServer<SourceApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the reflection service")?;
    let max = config.server.max_message_bytes;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let auth = AuthLayer::new(
        AuthSettings {
            required: config.auth.required,
            requests_per_second: config.auth.requests_per_second,
            burst: config.auth.burst,
            stream_messages_per_second: config.auth.stream_messages_per_second,
            failed_auth_per_minute: config.auth.failed_auth_per_minute,
        },
        key_store,
    );
    let mut builder = Server::builder()
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW);
    if let (Some(cert), Some(key)) = (&config.server.tls_cert, &config.server.tls_key) {
        let read = |file: &std::path::PathBuf| {
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
        };
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context(
                "server.tls_cert and server.tls_key are not a usable PEM certificate and key",
            )?;
        tracing::info!(cert = %cert.display(), "serving TLS");
    }
    let router = builder
        .layer(auth)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(api.strategy_service().max_decoding_message_size(max))
        .add_service(api.ingest_service().max_decoding_message_size(max))
        .add_service(api.insight_service().max_decoding_message_size(max))
        .add_service(api.people_service().max_decoding_message_size(max))
        .add_service(api.server_service().max_decoding_message_size(max))
        .add_service(api.feedback_service().max_decoding_message_size(max))
        .add_service(
            SourceApi::new(Arc::clone(&sources))
                .service()
                .max_decoding_message_size(max),
        );
    // Replies go out at once: with Nagle's algorithm on, the last frames of a response wait for
    // the client's delayed acknowledgement (40 ms on Linux), which would dwarf most calls.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let handle = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown_rx.await;
    }));
    let scheduler = Some(sources.start_scheduler(Duration::from_secs(1)));
    Ok(Running {
        addr,
        trellis,
        shutdown: Some(shutdown_tx),
        handle,
        sources,
        scheduler,
        embedding_worker: None,
        follower: None,
        standing_worker: None,
        insight_worker: None,
        learning_worker: None,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn termination() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// `trellis serve`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = start(&config).await?;
    // The address goes to stdout, alone on its line, so that scripts and tests that asked for
    // port 0 can find the server.
    println!("trellis listening on {}", running.addr);
    if config.storage.engine == "postgres" {
        let db = trellis_store::PostgresOptions::new(config.storage.url.clone()).redacted_url();
        tracing::info!(addr = %running.addr, %db, "serving");
    } else {
        tracing::info!(addr = %running.addr, db = %config.storage.path.display(), "serving");
    }
    termination().await;
    tracing::info!("shutting down: finishing in-flight calls");
    running
        .stop(Duration::from_secs(config.server.shutdown_grace_seconds))
        .await?;
    tracing::info!("storage flushed; bye");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_at(dir: &std::path::Path, listen: &str) -> Config {
        let mut config = Config::default();
        config.server.listen = listen.to_owned();
        config.storage.path = dir.join("data").join("trellis.db");
        config
    }

    #[test]
    fn a_server_beyond_loopback_warns_without_keys_and_with_keys_but_no_tls() {
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let v6_loopback: std::net::IpAddr = "::1".parse().unwrap();
        let everywhere: std::net::IpAddr = "0.0.0.0".parse().unwrap();
        for ip in [loopback, v6_loopback] {
            for (keys, tls) in [(false, false), (true, false), (true, true)] {
                assert_eq!(exposure_warning(ip, keys, tls), None);
            }
        }
        let without_keys = exposure_warning(everywhere, false, false).unwrap();
        assert!(without_keys.contains("without api keys"), "{without_keys}");
        let in_clear = exposure_warning(everywhere, true, false).unwrap();
        assert!(
            in_clear.contains("travel in clear") && in_clear.contains("server.tls_cert"),
            "{in_clear}"
        );
        assert_eq!(exposure_warning(everywhere, true, true), None);
    }

    #[test]
    fn the_default_file_roots_are_the_current_and_temporary_folders_on_loopback_only() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = trellis_core::domain::WorkspaceId::default_workspace();
        let inside = std::env::temp_dir().join(format!("roots-{}", std::process::id()));
        std::fs::write(&inside, "").unwrap();
        let on_loopback = file_roots(&config_at(dir.path(), "127.0.0.1:0")).unwrap();
        let beyond = file_roots(&config_at(dir.path(), "0.0.0.0:0")).unwrap();
        let path = inside.to_str().unwrap();
        let taken = on_loopback.confine(
            &workspace,
            "path",
            path,
            trellis_plugin_host::Existence::Required,
        );
        let refused = beyond.confine(
            &workspace,
            "path",
            path,
            trellis_plugin_host::Existence::Required,
        );
        std::fs::remove_file(&inside).unwrap();
        assert!(taken.is_ok(), "{taken:?}");
        assert!(
            refused
                .unwrap_err()
                .description
                .contains("reads no local files"),
            "beyond loopback nothing is read without files.roots"
        );
        let mut named = config_at(dir.path(), "0.0.0.0:0");
        named.files.roots = Some(vec![dir.path().join("missing")]);
        let error = file_roots(&named).unwrap_err().to_string();
        assert!(error.contains("files.roots"), "{error}");
    }

    #[test]
    fn a_loopback_server_makes_its_secrets_key_beside_the_database_and_keeps_it() {
        if std::env::var_os(secrets::KEY_ENV).is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let config = config_at(dir.path(), "127.0.0.1:50151");
        let first = secret_keys(&config).unwrap();
        assert!(first.can_seal());
        let file = dir.path().join("data").join("secrets.key");
        assert!(file.is_file());
        let again = secret_keys(&config).unwrap();
        assert_eq!(
            first.current_id(),
            again.current_id(),
            "the same key at every start"
        );
    }

    #[test]
    fn a_server_beyond_loopback_never_makes_a_key_and_cannot_seal_without_one() {
        if std::env::var_os(secrets::KEY_ENV).is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = config_at(dir.path(), "0.0.0.0:50151");
        let keys = secret_keys(&config).unwrap();
        assert!(!keys.can_seal());
        assert!(!dir.path().join("data").join("secrets.key").exists());
        // A configured key file is used wherever the server listens.
        let key_file = dir.path().join("operator.key");
        assert!(secrets::create_key_file(&key_file).unwrap());
        let mut config = config;
        config.secrets.key_file = Some(key_file);
        assert!(secret_keys(&config).unwrap().can_seal());
        // A bad key file is an error naming it, never a server that silently cannot seal.
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not a key").unwrap();
        config.secrets.key_file = Some(bad);
        let error = secret_keys(&config).unwrap_err().to_string();
        assert!(error.contains("bad.key"), "{error}");
    }
}
