//! Sources and syncs. A sync pulls batches from the plugin and stores records through
//! [`Trellis::ingest`], and commits a checkpoint only once every record before it is stored. A
//! crash between the two re-reads those records on the next sync; upserts are idempotent by
//! (source, external id), so nothing is lost and nothing is duplicated.
//!
//! A sync holds its source's lease in the database for its whole length, renewed by a
//! heartbeat and before every checkpoint, so replicas on one database never sync one source at
//! once. When a replica dies mid-sync its lease runs out, and the scheduler of another replica
//! takes the source over, reading on from the last committed checkpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use trellis_core::domain::{Millis, Record, WorkspaceId};
use trellis_core::limits;
use trellis_core::service::Trellis;
use trellis_core::sources::{Source, SourceStore, SyncStatus, check_source_id};
use trellis_core::{CoreError, Violation};
use trellis_plugin_sdk::egress::{EgressPolicy, HostSettings};
use trellis_plugin_sdk::host::HostError;
use trellis_plugin_sdk::host::convert::record_to_core;
use trellis_plugin_sdk::pb::connector::batch_item::Item;
use trellis_plugin_sdk::{ErrorKind, State};

use crate::instance::{Canceller, ConnectorInstance};
use crate::isolation::IsolationSettings;
use crate::registry::{LoadedConnector, PluginRegistry};
use crate::roots::{Existence, FileRoots};
use crate::secrets::{SecretError, SecretKeys};

fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            Millis::try_from(elapsed.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// Where a sync stands; sent after every committed checkpoint and at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncProgress {
    pub status: SyncStatus,
    pub records_read: u64,
    pub records_stored: u64,
    pub records_refused: u64,
    pub checkpoints_committed: u64,
    /// The stream of the last record or checkpoint.
    pub stream: String,
    pub message: String,
}

type RunningKey = (WorkspaceId, String);

#[derive(Default)]
struct Running {
    cancelled: Arc<AtomicBool>,
    canceller: Option<Canceller>,
}

/// The sources of every workspace, and the syncs running for them.
pub struct Sources {
    trellis: Arc<Trellis>,
    store: Arc<dyn SourceStore>,
    registry: Arc<PluginRegistry>,
    running: Arc<Mutex<HashMap<RunningKey, Running>>>,
    retry: RetryPolicy,
    lease: LeasePolicy,
    isolation: IsolationSettings,
    keys: Arc<SecretKeys>,
    /// Where connectors may read files; unset, paths are not checked (embedding, tests). The
    /// server always sets it.
    roots: Option<Arc<FileRoots>>,
    /// What every config a plugin gets carries for it: the operator's egress policy. By
    /// default no loopback, private or link-local address.
    host_settings: HostSettings,
}

/// A secret field of a source's connector, and whether the source has it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretStatus {
    pub field: String,
    pub set: bool,
}

/// What [`Sources::seal_stored_secrets`] did at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Sources whose config held secrets in clear, now sealed.
    pub moved: usize,
    /// Sources whose secrets a previous key sealed, now sealed with the current one.
    pub resealed: usize,
}

fn secret_error(error: SecretError) -> CoreError {
    CoreError::FailedPrecondition(error.to_string())
}

/// Who this process is when it holds a sync lease, and for how long a lease runs between
/// renewals. A sync renews its lease every third of `ttl`; a replica that dies leaves it to run
/// out, after which another replica may take the source over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePolicy {
    pub holder: String,
    pub ttl: Duration,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        Self {
            holder: default_holder(),
            ttl: Duration::from_secs(30),
        }
    }
}

/// A name for this process that no other process (here or on another machine) shares:
/// host name, process id and start time.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{host}:{}:{started:x}", std::process::id())
}

/// How a sync meets a transient or rate-limited plugin error: it waits, then reads again from
/// the last committed checkpoint, up to `attempts` reads in all. Waits grow exponentially from
/// `min_delay` to `max_delay` with jitter; a rate limit's retry-after is honoured when longer,
/// unless it exceeds `max_delay`, in which case the sync ends and says when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    fn delays(&self) -> backon::ExponentialBackoff {
        use backon::BackoffBuilder as _;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("connectors", &self.registry.names())
            .finish_non_exhaustive()
    }
}

/// Takes the fields `connector`'s schema marks as secrets out of `config`: name to value.
fn take_secrets(
    connector: &LoadedConnector,
    config: &mut serde_json::Value,
) -> BTreeMap<String, serde_json::Value> {
    connector
        .schema
        .secrets()
        .iter()
        .filter_map(|secret| Some((secret.name(), secret.take(config)?)))
        .collect()
}

/// Puts `secrets` (name to value) back into `config` where `connector`'s schema has them.
fn put_secrets(
    connector: &LoadedConnector,
    config: &mut serde_json::Value,
    secrets: &BTreeMap<String, serde_json::Value>,
) {
    for secret in connector.schema.secrets() {
        if let Some(value) = secrets.get(&secret.name()) {
            secret.put(config, value.clone());
        }
    }
}

/// Removes a sync from the running set when it ends, however it ends.
struct RunningGuard<'a> {
    sources: &'a Sources,
    key: RunningKey,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.sources.running().remove(&self.key);
    }
}

/// Renews a sync's lease every third of its time to live, on a thread of its own, so that a
/// plugin that takes long between checkpoints keeps its source. If the lease is lost (this
/// process stalled past its end and another replica took the source), it cancels the sync.
/// Dropping it stops the heartbeat and gives the lease up.
struct LeaseKeeper<'a> {
    sources: &'a Sources,
    workspace: WorkspaceId,
    id: String,
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl<'a> LeaseKeeper<'a> {
    fn start(
        sources: &'a Sources,
        workspace: &WorkspaceId,
        id: &str,
        cancelled: &Arc<AtomicBool>,
    ) -> Self {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let lost = Arc::new(Mutex::new(None));
        let thread = {
            let store = Arc::clone(&sources.store);
            let policy = sources.lease.clone();
            let (workspace, id) = (workspace.clone(), id.to_owned());
            let (stop, lost, cancelled) =
                (Arc::clone(&stop), Arc::clone(&lost), Arc::clone(cancelled));
            let key = (workspace.clone(), id.clone());
            let running = Arc::clone(&sources.running);
            std::thread::Builder::new()
                .name("trellis-sync-lease".to_owned())
                .spawn(move || {
                    let (stopped, wake) = &*stop;
                    let mut stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                    loop {
                        stopped = wake
                            .wait_timeout(stopped, policy.ttl / 3)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                        if *stopped {
                            return;
                        }
                        match store.take_lease(&workspace, &id, &policy.holder, policy.ttl) {
                            Ok(None) => {}
                            Ok(Some(holder)) => {
                                *lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(holder);
                                cancelled.store(true, Ordering::SeqCst);
                                let running =
                                    running.lock().unwrap_or_else(PoisonError::into_inner);
                                if let Some(canceller) =
                                    running.get(&key).and_then(|sync| sync.canceller.as_ref())
                                {
                                    canceller.cancel();
                                }
                                return;
                            }
                            // The database may be back before the lease runs out; the
                            // checkpoint's own renewal decides.
                            Err(error) => tracing::warn!(%error, "renewing a sync lease failed"),
                        }
                    }
                })
                .ok()
        };
        Self {
            sources,
            workspace: workspace.clone(),
            id: id.to_owned(),
            stop,
            lost,
            thread,
        }
    }

    /// The replica that took the source over, if the lease was lost.
    fn lost(&self) -> Option<String> {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for LeaseKeeper<'_> {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if self.lost().is_none()
            && let Err(error) = self.sources.store.release_lease(
                &self.workspace,
                &self.id,
                &self.sources.lease.holder,
            )
        {
            tracing::warn!(%error, "giving up a sync lease failed; it runs out by itself");
        }
    }
}

impl Sources {
    pub fn new(
        trellis: Arc<Trellis>,
        store: Arc<dyn SourceStore>,
        registry: Arc<PluginRegistry>,
    ) -> Self {
        Self {
            trellis,
            store,
            registry,
            running: Arc::new(Mutex::new(HashMap::new())),
            retry: RetryPolicy::default(),
            lease: LeasePolicy::default(),
            isolation: IsolationSettings::default(),
            keys: Arc::new(SecretKeys::default()),
            roots: None,
            host_settings: HostSettings::default(),
        }
    }

    /// The same, letting connectors reach the network as `egress` says (every plugin gets it
    /// with its config; the SDK's HTTP agent holds every connection to it).
    pub fn with_egress(mut self, egress: EgressPolicy) -> Self {
        self.host_settings.egress = egress;
        self
    }

    /// The same, letting connectors read files only below `roots`: a source whose config names
    /// a path elsewhere is refused, and plugins get the paths resolved.
    pub fn with_file_roots(mut self, roots: Arc<FileRoots>) -> Self {
        self.roots = Some(roots);
        self
    }

    /// The same, sealing and opening connector secrets with `keys`.
    pub fn with_secret_keys(mut self, keys: Arc<SecretKeys>) -> Self {
        self.keys = keys;
        self
    }

    /// The same, holding sync leases as `lease` says.
    pub fn with_lease(mut self, lease: LeasePolicy) -> Self {
        self.lease = lease;
        self
    }

    /// The name this process holds sync leases under.
    pub fn lease_holder(&self) -> &str {
        &self.lease.holder
    }

    /// The same, retrying transient and rate-limited plugin errors by `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same, running the plugins of isolated sources as `isolation` says.
    pub fn with_isolation(mut self, isolation: IsolationSettings) -> Self {
        self.isolation = isolation;
        self
    }

    /// Marks syncs that were running when the process stopped (a crash, a kill) as failed. Their
    /// committed checkpoints stand; the next sync resumes from the last one.
    ///
    /// With `exclusive` this process is the only one on its store (SQLite), so every sync marked
    /// running was this store's last process's, dead now. Otherwise (replicas on one database)
    /// a sync whose lease is still live belongs to another replica and is left alone; if that
    /// replica died, the scheduler takes the source over once the lease runs out.
    pub fn recover(&self, exclusive: bool) -> Result<(), CoreError> {
        for (workspace, source) in self.store.all_sources()? {
            if exclusive {
                self.store.break_lease(&workspace, &source.id)?;
            }
            if source.status == SyncStatus::Running
                && (exclusive || !self.store.lease_is_live(&workspace, &source.id)?)
            {
                tracing::warn!(workspace = %workspace, source = %source.id, "a sync was interrupted; the next one resumes from its last checkpoint");
                self.store.set_sync_status(
                    &workspace,
                    &source.id,
                    SyncStatus::Failed,
                    "the server stopped during this sync; the next sync resumes from its last checkpoint",
                    None,
                )?;
            }
        }
        Ok(())
    }

    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<RunningKey, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes or renews this process's lease on a source; names the holder when another has it.
    fn take_lease(&self, workspace: &WorkspaceId, id: &str) -> Result<Option<String>, CoreError> {
        self.store
            .take_lease(workspace, id, &self.lease.holder, self.lease.ttl)
    }

    fn connector(&self, name: &str) -> Result<&Arc<LoadedConnector>, Violation> {
        self.registry.get(name).ok_or_else(|| {
            let loaded = self.registry.names();
            Violation::new(
                "source.connector",
                if loaded.is_empty() {
                    format!("{name:?} is not a loaded connector, and none is loaded; put plugins in a folder of plugins.dirs")
                } else {
                    format!("{name:?} is not a loaded connector; use one of {}", loaded.join(", "))
                },
            )
        })
    }

    /// An instance of `connector` for `source`: in a child process when the source is isolated.
    fn instance(
        &self,
        source: &Source,
        connector: &LoadedConnector,
    ) -> Result<ConnectorInstance, HostError> {
        ConnectorInstance::open(
            connector,
            source
                .isolated
                .then_some((&self.isolation, source.id.as_str())),
        )
    }

    /// Checks a source's configuration against its connector's schema and fills defaults; takes
    /// the secret fields out of its config and seals them, together with the secrets of
    /// `existing` (the stored source, on update) that the new config does not give again.
    fn validated(
        &self,
        workspace: &WorkspaceId,
        mut source: Source,
        existing: Option<&Source>,
    ) -> Result<Source, CoreError> {
        let mut violations = Vec::new();
        if let Err(violation) = check_source_id(&source.id) {
            violations.push(violation);
        }
        if !source.display_name.is_empty() {
            limits::check_name(
                &mut violations,
                "source.display_name",
                &source.display_name,
                "name the source for people, or leave it out to use its id",
            );
        }
        if source.config_json.len() > limits::SOURCE_CONFIG_BYTES {
            violations.push(Violation::new(
                "source.config_json",
                format!(
                    "is {} bytes; the limit is {} bytes: a config names where to read, never the data itself",
                    source.config_json.len(),
                    limits::SOURCE_CONFIG_BYTES
                ),
            ));
            return Err(CoreError::Invalid(violations));
        }
        let mut secrets = BTreeMap::new();
        match self.connector(&source.connector) {
            Ok(connector) => {
                if source.config_json.trim().is_empty() {
                    source.config_json = "{}".to_owned();
                }
                match serde_json::from_str::<serde_json::Value>(&source.config_json) {
                    Ok(mut config) => {
                        let given = take_secrets(connector, &mut config);
                        if let Some(existing) = existing {
                            let kept = self.secrets_to_keep(workspace, existing);
                            for secret in connector.schema.secrets() {
                                if let Some(value) = kept.get(&secret.name()) {
                                    secrets.insert(secret.name(), value.clone());
                                }
                            }
                        }
                        secrets.extend(given);
                        let mut full = config.clone();
                        put_secrets(connector, &mut full, &secrets);
                        if let Err(error) = connector.schema.validate(&full) {
                            violations.push(Violation::new("source.config_json", error.message));
                        } else if let Err(refused) =
                            self.confine_paths(workspace, connector, &mut full, Existence::Required)
                        {
                            violations.extend(refused);
                        }
                        source.config_json = config.to_string();
                    }
                    Err(error) => violations.push(Violation::new(
                        "source.config_json",
                        format!(
                            "is not JSON ({error}); give the connector's config as a JSON object"
                        ),
                    )),
                }
            }
            Err(violation) => violations.push(violation),
        }
        if source.isolated && !self.isolation.runner.is_file() {
            violations.push(Violation::new(
                "source.isolated",
                format!(
                    "isolation mode needs the plugin runner, and {} does not exist; install trellis-plugin-runner next to the trellis binary or set plugins.runner, or set isolated to false",
                    self.isolation.runner.display()
                ),
            ));
        }
        if !violations.is_empty() {
            return Err(CoreError::Invalid(violations));
        }
        if source.display_name.is_empty() {
            source.display_name.clone_from(&source.id);
        }
        source.sealed_secrets = self
            .keys
            .seal(workspace, &source.id, &secrets)
            .map_err(secret_error)?;
        source.secret_names = secrets.into_keys().collect();
        Ok(source)
    }

    /// Checks every local path `config` gives against the file roots of `workspace` and puts
    /// in its resolved form; the violations of those outside them.
    fn confine_paths(
        &self,
        workspace: &WorkspaceId,
        connector: &LoadedConnector,
        config: &mut serde_json::Value,
        existence: Existence,
    ) -> Result<(), Vec<Violation>> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        let mut violations = Vec::new();
        for field in connector.schema.paths() {
            field.visit(config, &mut |name, value| match roots
                .confine(workspace, name, value, existence)
            {
                Ok(resolved) => *value = resolved.display().to_string(),
                Err(violation) => violations.push(violation),
            });
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Opens a source's sealed secrets: field name to value.
    fn open_secrets(
        &self,
        workspace: &WorkspaceId,
        source: &Source,
    ) -> Result<BTreeMap<String, serde_json::Value>, CoreError> {
        self.keys
            .open(workspace, &source.id, &source.sealed_secrets)
            .map_err(|error| {
                CoreError::FailedPrecondition(format!("source {:?}: {error}", source.id))
            })
    }

    /// The stored secrets a change keeps. When they cannot be opened (their key is gone), none:
    /// giving the secrets again is how a source recovers from a lost key, and the connector's
    /// schema still refuses a config that lacks a secret it requires.
    fn secrets_to_keep(
        &self,
        workspace: &WorkspaceId,
        source: &Source,
    ) -> BTreeMap<String, serde_json::Value> {
        self.open_secrets(workspace, source).unwrap_or_else(|error| {
            tracing::warn!(workspace = %workspace, source = %source.id, %error, "the stored secrets cannot be opened; the change replaces them");
            BTreeMap::new()
        })
    }

    /// The config the plugin gets: the stored config with the source's secrets put back, and
    /// the host's settings (the egress policy) under their reserved key, replacing whatever a
    /// stored config may hold there.
    fn plugin_config(
        &self,
        workspace: &WorkspaceId,
        source: &Source,
        connector: &LoadedConnector,
    ) -> Result<String, CoreError> {
        let mut config: serde_json::Value = serde_json::from_str(&source.config_json)
            .map_err(|error| CoreError::Storage(format!("a stored source config: {error}")))?;
        if !source.sealed_secrets.is_empty() {
            let secrets = self.open_secrets(workspace, source)?;
            put_secrets(connector, &mut config, &secrets);
        }
        // Checked again on every use: the roots, or the files, may have changed since. A file
        // that is gone is the connector's to report, as a failed check or sync.
        self.confine_paths(workspace, connector, &mut config, Existence::MayBeGone)
            .map_err(CoreError::Invalid)?;
        self.host_settings.put(&mut config);
        Ok(config.to_string())
    }

    /// The secret fields of a source's connector and whether each is set. When the connector
    /// is not loaded, the fields the source has set.
    pub fn secret_status(&self, source: &Source) -> Vec<SecretStatus> {
        let Some(connector) = self.registry.get(&source.connector) else {
            return source
                .secret_names
                .iter()
                .map(|field| SecretStatus {
                    field: field.clone(),
                    set: true,
                })
                .collect();
        };
        connector
            .schema
            .secrets()
            .iter()
            .map(|secret| {
                let field = secret.name();
                SecretStatus {
                    set: source.secret_names.contains(&field),
                    field,
                }
            })
            .collect()
    }

    /// Sets or clears secrets of a source without resending the rest of its config: `set`
    /// maps secret field names to their new values, `clear` names fields to unset. The config
    /// they make must still satisfy the connector's schema.
    pub fn set_secrets(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        set: BTreeMap<String, String>,
        clear: &[String],
    ) -> Result<Source, CoreError> {
        let source = self.get(workspace, id)?;
        let connector = self
            .connector(&source.connector)
            .map_err(|violation| CoreError::FailedPrecondition(violation.description))?;
        let known: Vec<String> = connector
            .schema
            .secrets()
            .iter()
            .map(|secret| secret.name())
            .collect();
        let mut violations = Vec::new();
        for name in set.keys().chain(clear) {
            if !known.contains(name) {
                violations.push(Violation::new(
                    format!("secrets.{name}"),
                    if known.is_empty() {
                        format!(
                            "is not a secret field: connector {:?} has none",
                            source.connector
                        )
                    } else {
                        format!(
                            "is not a secret field of connector {:?}; its secret fields are {}",
                            source.connector,
                            known.join(", ")
                        )
                    },
                ));
            }
        }
        if set.is_empty() && clear.is_empty() {
            violations.push(Violation::new(
                "secrets",
                "is empty; give at least one secret field to set or to clear",
            ));
        }
        if !violations.is_empty() {
            return Err(CoreError::Invalid(violations));
        }
        let mut secrets = self.secrets_to_keep(workspace, &source);
        for name in clear {
            secrets.remove(name);
        }
        for (name, value) in set {
            secrets.insert(name, serde_json::Value::String(value));
        }
        let mut full: serde_json::Value = serde_json::from_str(&source.config_json)
            .map_err(|error| CoreError::Storage(format!("a stored source config: {error}")))?;
        put_secrets(connector, &mut full, &secrets);
        if let Err(error) = connector.schema.validate(&full) {
            return Err(CoreError::Invalid(vec![Violation::new(
                "secrets",
                error.message,
            )]));
        }
        let sealed = self
            .keys
            .seal(workspace, id, &secrets)
            .map_err(secret_error)?;
        let names: Vec<String> = secrets.into_keys().collect();
        self.store
            .set_source_secrets(workspace, id, None, &sealed, &names)?;
        tracing::info!(workspace = %workspace, source = %id, fields = ?names, "source secrets set");
        self.get(workspace, id)
    }

    /// At start-up: seals the secrets that a store written before secrets were sealed holds in
    /// clear in its configs, and seals again with the current key what a previous key sealed.
    /// Sources of connectors that are not loaded are left as they are (their secret fields are
    /// unknown) and said in the log. Without a key, a store holding secrets in clear is an
    /// error that names the sources and says how to set a key.
    pub fn seal_stored_secrets(&self) -> Result<SealReport, CoreError> {
        let mut report = SealReport::default();
        let mut unsealed = Vec::new();
        for (workspace, source) in self.store.all_sources()? {
            let Some(connector) = self.registry.get(&source.connector) else {
                tracing::warn!(workspace = %workspace, source = %source.id, connector = %source.connector, "the source's connector is not loaded; its secrets are checked when it is");
                continue;
            };
            let Ok(mut config) = serde_json::from_str::<serde_json::Value>(&source.config_json)
            else {
                continue;
            };
            let in_clear = take_secrets(connector, &mut config);
            let stale = self.keys.is_stale(&source.sealed_secrets);
            if in_clear.is_empty() && !stale {
                continue;
            }
            if !self.keys.can_seal() {
                unsealed.push(format!("{}/{}", workspace, source.id));
                continue;
            }
            let mut secrets = match self.open_secrets(&workspace, &source) {
                Ok(secrets) => secrets,
                Err(error) => {
                    // One source's key problem must not keep every other source down: its
                    // checks and syncs fail with this message until the key is given.
                    tracing::error!(workspace = %workspace, source = %source.id, %error, "cannot open the source's secrets");
                    continue;
                }
            };
            secrets.extend(in_clear.clone());
            let sealed = self
                .keys
                .seal(&workspace, &source.id, &secrets)
                .map_err(secret_error)?;
            let names: Vec<String> = secrets.into_keys().collect();
            let config_json = (!in_clear.is_empty()).then(|| config.to_string());
            self.store.set_source_secrets(
                &workspace,
                &source.id,
                config_json.as_deref(),
                &sealed,
                &names,
            )?;
            if in_clear.is_empty() {
                report.resealed += 1;
            } else {
                report.moved += 1;
            }
        }
        if !unsealed.is_empty() {
            return Err(CoreError::FailedPrecondition(format!(
                "the sources {} hold connector secrets in clear and this server has no key to seal them with; {}",
                unsealed.join(", "),
                crate::secrets::HOW_TO_SET_A_KEY
            )));
        }
        if report.moved + report.resealed > 0 {
            tracing::info!(
                moved = report.moved,
                resealed = report.resealed,
                key = self.keys.current_id().unwrap_or_default(),
                "sealed stored connector secrets with the current key"
            );
        }
        Ok(report)
    }

    pub fn create(&self, workspace: &WorkspaceId, source: Source) -> Result<Source, CoreError> {
        let source = Source {
            status: SyncStatus::Idle,
            last_sync_at: None,
            last_error: String::new(),
            records_synced: 0,
            ..self.validated(workspace, source, None)?
        };
        self.store.create_source(workspace, &source)?;
        tracing::info!(workspace = %workspace, source = %source.id, connector = %source.connector, "source created");
        self.get(workspace, &source.id)
    }

    /// Replaces a source's configuration. Secret fields the new config leaves out keep their
    /// stored values (use [`Sources::set_secrets`] to clear one).
    pub fn update(&self, workspace: &WorkspaceId, source: Source) -> Result<Source, CoreError> {
        let existing = self.get(workspace, &source.id)?;
        let source = self.validated(workspace, source, Some(&existing))?;
        self.store.update_source(workspace, &source)?;
        self.get(workspace, &source.id)
    }

    pub fn get(&self, workspace: &WorkspaceId, id: &str) -> Result<Source, CoreError> {
        self.store
            .source(workspace, id)?
            .ok_or_else(|| CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            })
    }

    pub fn list(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<Source>, CoreError> {
        self.store.sources(workspace, limit, after)
    }

    /// Deletes a source and its state. Its records stay (they are still evidence).
    pub fn delete(&self, workspace: &WorkspaceId, id: &str) -> Result<(), CoreError> {
        if self
            .running()
            .contains_key(&(workspace.clone(), id.to_owned()))
        {
            return Err(CoreError::FailedPrecondition(format!(
                "source {id:?} is syncing; wait for the sync to end, then delete it"
            )));
        }
        if !self.store.delete_source(workspace, id)? {
            return Err(CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            });
        }
        tracing::info!(workspace = %workspace, source = %id, "source deleted");
        Ok(())
    }

    /// Asks the connector whether the source's config works: (ok, message).
    pub fn check(&self, workspace: &WorkspaceId, id: &str) -> Result<(bool, String), CoreError> {
        let source = self.get(workspace, id)?;
        let connector = self
            .connector(&source.connector)
            .map_err(|violation| CoreError::FailedPrecondition(violation.description))?;
        let config = self.plugin_config(workspace, &source, connector)?;
        let outcome = self
            .instance(&source, connector)
            .and_then(|instance| instance.check(&config));
        Ok(match outcome {
            Ok(message) => (true, message),
            Err(error) => (false, error.to_string()),
        })
    }

    /// Cancels a running sync; false when none runs.
    pub fn cancel(&self, workspace: &WorkspaceId, id: &str) -> bool {
        let running = self.running();
        let Some(sync) = running.get(&(workspace.clone(), id.to_owned())) else {
            return false;
        };
        sync.cancelled.store(true, Ordering::SeqCst);
        if let Some(canceller) = &sync.canceller {
            canceller.cancel();
        }
        true
    }

    /// Cancels every running sync (at shutdown).
    pub fn cancel_all(&self) {
        for sync in self.running().values() {
            sync.cancelled.store(true, Ordering::SeqCst);
            if let Some(canceller) = &sync.canceller {
                canceller.cancel();
            }
        }
    }

    /// Runs a sync to its end, calling `progress` after every committed checkpoint. Plugin
    /// failures end the sync with a `Failed` progress (and are recorded on the source); storage
    /// failures are errors.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, source = %id))]
    pub fn sync(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        full_refresh: bool,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncProgress, CoreError> {
        let source = self.get(workspace, id)?;
        let connector = Arc::clone(
            self.connector(&source.connector)
                .map_err(|violation| CoreError::FailedPrecondition(violation.description))?,
        );
        let key = (workspace.clone(), id.to_owned());
        let cancelled = {
            let mut running = self.running();
            if running.contains_key(&key) {
                return Err(CoreError::FailedPrecondition(format!(
                    "a sync of source {id:?} is already running; wait for it to end"
                )));
            }
            let entry = running.entry(key.clone()).or_default();
            Arc::clone(&entry.cancelled)
        };
        let _guard = RunningGuard {
            sources: self,
            key: key.clone(),
        };
        if let Some(holder) = self.take_lease(workspace, id)? {
            return Err(CoreError::FailedPrecondition(format!(
                "source {id:?} is being synced by the replica {holder}; wait for that sync to end"
            )));
        }
        let lease = LeaseKeeper::start(self, workspace, id, &cancelled);
        self.store
            .set_sync_status(workspace, id, SyncStatus::Running, "", None)?;
        if full_refresh {
            self.store.clear_sync_state(workspace, id)?;
        }
        let mut report = SyncProgress {
            status: SyncStatus::Running,
            ..SyncProgress::default()
        };
        progress(&report);
        // Whether this sync reads from the start: then reading nothing is worth saying.
        let from_the_start = self.store.sync_state(workspace, id)?.is_empty();
        let mut delays = self.retry.delays();
        let mut attempt = 1;
        let outcome = loop {
            // Every attempt starts from the checkpoints committed so far.
            let mut state = State::new();
            for (stream, state_json) in self.store.sync_state(workspace, id)? {
                state.set(&stream, &state_json);
            }
            tracing::info!(connector = %source.connector, resume = !state.is_empty(), attempt, "sync started");
            let outcome = self.pull(
                workspace,
                &source,
                &connector,
                &state,
                &key,
                &cancelled,
                &mut report,
                progress,
            );
            let Err(SyncError::Plugin(error)) = &outcome else {
                break outcome;
            };
            let Some(wait) = self.retry_wait(error, &mut delays) else {
                break outcome;
            };
            if cancelled.load(Ordering::SeqCst) {
                break outcome;
            }
            attempt += 1;
            report.message = format!(
                "{error}; reading again from the last checkpoint in {:.1} s (attempt {attempt} of {})",
                wait.as_secs_f64(),
                self.retry.attempts
            );
            tracing::warn!(%error, wait_ms = wait.as_millis() as u64, attempt, "sync interrupted; retrying");
            progress(&report);
            if !sleep_unless_cancelled(wait, &cancelled) {
                break outcome;
            }
            report.message.clear();
        };
        if let Some(holder) = lease.lost() {
            // The source is another replica's now: its status is that replica's to set.
            tracing::warn!(%holder, "the sync lost its lease and stopped");
            return Err(CoreError::FailedPrecondition(format!(
                "the sync of source {id:?} stopped: its lease ran out and the replica {holder} took the source over"
            )));
        }
        let outcome = match outcome {
            Err(SyncError::LeaseLost(holder)) => {
                tracing::warn!(%holder, "the sync lost its lease and stopped");
                return Err(CoreError::FailedPrecondition(format!(
                    "the sync of source {id:?} stopped: its lease ran out and the replica {holder} took the source over"
                )));
            }
            outcome => outcome,
        };
        let (status, message) = match outcome {
            Ok(()) if report.records_read == 0 && from_the_start => {
                tracing::warn!(connector = %source.connector, "a sync from the start read nothing");
                (
                    SyncStatus::Succeeded,
                    "read nothing from the start: the connector found no records where its config points; if the source has data, check the config (`trellis sources check` says what the connector sees)".to_owned(),
                )
            }
            Ok(()) if report.records_refused == 0 => (SyncStatus::Succeeded, String::new()),
            Ok(()) => (
                SyncStatus::Succeeded,
                format!(
                    "{} records were refused; see the log",
                    report.records_refused
                ),
            ),
            Err(SyncError::Plugin(error)) if attempt > 1 => (
                SyncStatus::Failed,
                format!("{error} (gave up after {attempt} attempts)"),
            ),
            Err(SyncError::Plugin(error)) => (SyncStatus::Failed, error.to_string()),
            Err(SyncError::LeaseLost(_)) => unreachable!("handled above"),
            Err(SyncError::Core(error)) => {
                let _ = self.store.set_sync_status(
                    workspace,
                    id,
                    SyncStatus::Failed,
                    &error.to_string(),
                    Some(now_millis()),
                );
                return Err(error);
            }
        };
        self.store
            .set_sync_status(workspace, id, status, &message, Some(now_millis()))?;
        report.status = status;
        report.message = message;
        tracing::info!(
            status = status.as_str(),
            read = report.records_read,
            stored = report.records_stored,
            refused = report.records_refused,
            checkpoints = report.checkpoints_committed,
            message = %report.message,
            "sync ended"
        );
        progress(&report);
        Ok(report)
    }

    /// How long to wait before reading again after `error`, or `None` when the sync should end:
    /// the error is not transient, the attempts are used up, or the platform asks for a longer
    /// pause than the policy allows.
    fn retry_wait(
        &self,
        error: &HostError,
        delays: &mut backon::ExponentialBackoff,
    ) -> Option<Duration> {
        let connector_error = error.connector_error()?;
        match connector_error.kind {
            ErrorKind::Transient => delays.next(),
            ErrorKind::RateLimited => {
                let backoff = delays.next()?;
                let asked = connector_error.retry_after.unwrap_or_default();
                (asked <= self.retry.max_delay).then(|| backoff.max(asked))
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one internal step of `sync`")]
    fn pull(
        &self,
        workspace: &WorkspaceId,
        source: &Source,
        connector: &LoadedConnector,
        state: &State,
        key: &RunningKey,
        cancelled: &AtomicBool,
        report: &mut SyncProgress,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<(), SyncError> {
        let config = self.plugin_config(workspace, source, connector)?;
        let instance = self.instance(source, connector)?;
        let mut session = instance.read(&config, state)?;
        if let Some(running) = self.running().get_mut(key) {
            running.canceller = Some(session.canceller());
        }
        if cancelled.load(Ordering::SeqCst) {
            session.canceller().cancel();
        }
        let mut pending: Vec<(u64, Record)> = Vec::new();
        let mut since_checkpoint = 0_u64;
        while let Some(batch) = session.next_batch()? {
            for item in batch.items {
                match item.item {
                    Some(Item::Record(record)) => {
                        report.records_read += 1;
                        since_checkpoint += 1;
                        if report.stream != record.stream {
                            report.stream.clone_from(&record.stream);
                        }
                        match record_to_core(&source.id, record) {
                            Ok(record) => pending.push((report.records_read - 1, record)),
                            Err(violation) => {
                                report.records_refused += 1;
                                tracing::warn!(%violation, position = report.records_read - 1, "record refused");
                            }
                        }
                    }
                    Some(Item::Checkpoint(checkpoint)) => {
                        // The rule of the contract: the records before a checkpoint are stored
                        // first, and only then is the checkpoint committed.
                        self.store_pending(workspace, &mut pending, report)?;
                        // Only while this sync still holds the source: a replica that took it
                        // over commits its own checkpoints.
                        if let Some(holder) = self.take_lease(workspace, &source.id)? {
                            return Err(SyncError::LeaseLost(holder));
                        }
                        self.store.commit_checkpoint(
                            workspace,
                            &source.id,
                            &checkpoint.stream,
                            &checkpoint.state_json,
                            since_checkpoint,
                        )?;
                        since_checkpoint = 0;
                        report.checkpoints_committed += 1;
                        report.stream = checkpoint.stream;
                        progress(report);
                    }
                    None => {}
                }
            }
        }
        // Records after the last checkpoint are stored too (upserts are idempotent); the next
        // sync reads them again.
        self.store_pending(workspace, &mut pending, report)?;
        Ok(())
    }

    fn store_pending(
        &self,
        workspace: &WorkspaceId,
        pending: &mut Vec<(u64, Record)>,
        report: &mut SyncProgress,
    ) -> Result<(), CoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let outcome = self.trellis.ingest(workspace, std::mem::take(pending))?;
        report.records_stored += outcome.inserted + outcome.updated + outcome.unchanged;
        let refused: BTreeSet<u64> = outcome
            .errors
            .iter()
            .map(|(position, _)| *position)
            .collect();
        for (position, violation) in outcome.errors.iter().take(10) {
            tracing::warn!(position, %violation, "record refused");
        }
        report.records_refused += refused.len() as u64;
        Ok(())
    }

    /// Starts the scheduler: a thread that, every `tick`, syncs each source whose interval has
    /// passed since its last sync. Syncs run one at a time, off the async runtime.
    pub fn start_scheduler(self: &Arc<Self>, tick: Duration) -> SchedulerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let sources = Arc::clone(self);
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("trellis-sync-scheduler".to_owned())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    sources.run_due(&stopping);
                    let mut slept = Duration::ZERO;
                    while slept < tick && !stopping.load(Ordering::SeqCst) {
                        let step = Duration::from_millis(100).min(tick - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })
            .ok();
        SchedulerHandle { stop, thread }
    }

    fn run_due(&self, stopping: &AtomicBool) {
        let sources = match self.store.all_sources() {
            Ok(sources) => sources,
            Err(error) => {
                tracing::warn!(%error, "the scheduler cannot list sources");
                return;
            }
        };
        let now = now_millis();
        for (workspace, source) in sources {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            if self
                .running()
                .contains_key(&(workspace.clone(), source.id.clone()))
            {
                continue;
            }
            // A sync marked running that no one here runs and whose lease ran out: its replica
            // died. Take it over, on from its last checkpoint, whatever its schedule.
            let orphaned = source.status == SyncStatus::Running
                && !self
                    .store
                    .lease_is_live(&workspace, &source.id)
                    .unwrap_or(true);
            let due = source.sync_interval_seconds > 0
                && source.last_sync_at.is_none_or(|last| {
                    now - last >= i64::from(source.sync_interval_seconds) * 1000
                });
            if !orphaned && !due {
                continue;
            }
            if orphaned {
                tracing::warn!(workspace = %workspace, source = %source.id, "taking over a sync whose replica stopped; reading on from its last checkpoint");
            }
            match self.sync(&workspace, &source.id, false, &mut |_| {}) {
                Ok(_) => {}
                // Another replica got there first.
                Err(CoreError::FailedPrecondition(reason)) => {
                    tracing::debug!(workspace = %workspace, source = %source.id, %reason, "scheduled sync skipped");
                }
                Err(error) => {
                    tracing::warn!(workspace = %workspace, source = %source.id, %error, "scheduled sync failed");
                }
            }
        }
    }
}

/// Sleeps `wait` in short steps; false when a cancel came first.
fn sleep_unless_cancelled(wait: Duration, cancelled: &AtomicBool) -> bool {
    let until = std::time::Instant::now() + wait;
    loop {
        if cancelled.load(Ordering::SeqCst) {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

enum SyncError {
    Plugin(HostError),
    Core(CoreError),
    /// Another replica holds the source's lease now (named).
    LeaseLost(String),
}

impl From<HostError> for SyncError {
    fn from(error: HostError) -> Self {
        SyncError::Plugin(error)
    }
}

impl From<CoreError> for SyncError {
    fn from(error: CoreError) -> Self {
        SyncError::Core(error)
    }
}

/// Stops the scheduler when dropped (after the sync in progress, if any, ends).
#[derive(Debug)]
pub struct SchedulerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SchedulerHandle {
    /// Asks the scheduler to stop without waiting for it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
