//! One typed configuration, layered: built-in defaults, then a TOML file, then
//! `TRELLIS__SECTION__KEY` environment variables, then command-line flags; validated once
//! loaded. The loader takes the environment as an argument so tests can pass their own.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub strategy: StrategyConfig,
    pub plugins: PluginsConfig,
    pub semantic: SemanticConfig,
    pub sync: SyncConfig,
    pub auth: AuthConfig,
    pub replication: ReplicationConfig,
    pub standing: StandingConfig,
    #[serde(default)]
    pub insights: InsightsConfig,
    pub learning: LearningConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub files: FilesConfig,
    #[serde(default)]
    pub egress: EgressConfig,
}

/// Where connectors may connect to. A source's config names URLs, and its connector fetches
/// them from the server: by default no loopback, private, link-local, unique-local or other
/// non-public address (v4 and v6), checked on the addresses a name resolves to and on every
/// redirect, so a write key is not a way into the server's own network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Lets connectors reach every non-public address.
    #[serde(default)]
    pub allow_private: bool,
    /// Host names, addresses and networks connectors may reach although they are not public,
    /// e.g. `["forum.intranet.example", "10.20.0.0/16", "127.0.0.1:8080"]`.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl EgressConfig {
    /// The policy plugins get.
    pub fn policy(&self) -> trellis_plugin_host::EgressPolicy {
        trellis_plugin_host::EgressPolicy {
            allow_private: self.allow_private,
            allow: self.allow.clone(),
        }
    }
}

/// Where connectors may read local files: the paths a source's config gives (a dump folder, an
/// export file) must lie below one of these folders, symbolic links resolved, or the source is
/// refused. Without `roots`, a server on a loopback address lets connectors read below its
/// current folder and the system's temporary folder, and any other server nowhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The folders, for every workspace without roots of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<PathBuf>>,
    /// Workspace name to its own folders, instead of `roots`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub workspaces: std::collections::BTreeMap<String, Vec<PathBuf>>,
}

/// The key that seals connector secrets (API keys, tokens) at rest. The environment variables
/// `TRELLIS_SECRETS_KEY` (the current key, base64) and `TRELLIS_SECRETS_PREVIOUS_KEYS` (comma
/// separated) win over the files. Without a key, a server on a loopback address makes one in
/// `secrets.key` beside its SQLite database; any other server refuses to store a secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// A file holding the current key (`trellis secrets new-key` makes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Files holding keys used before a rotation: secrets they sealed are sealed again with the
    /// current key at start, after which they can be removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_key_files: Vec<PathBuf>,
}

/// How each workspace learns its rankings from its own history (see `trellis model show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningConfig {
    /// Fit in a background thread whenever a workspace has grown since its last fit (by a tenth,
    /// or by 5,000 records); without it, the default rankings apply.
    pub background: bool,
    /// How long records must have stopped arriving in a workspace before it is fitted.
    pub settle_seconds: u64,
    /// How long a fit waits for conversations still to be embedded, at most, before fitting
    /// without their vectors.
    pub max_embedding_wait_seconds: u64,
}

/// Where people stand in each open conversation (who would be best brought into it), judged
/// ahead of `SuggestDiscussions` and `MatchPerson`, which read it for every conversation they
/// weigh for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandingConfig {
    /// Judge in a background thread, so that requests find the judgments made; without it,
    /// requests judge what they need themselves (slow on a large community).
    pub background: bool,
    /// How old a judgment may grow, once the corpus moved on, before a request judges its
    /// conversation again itself; the background thread judges again at half this age, and
    /// at once when the conversation itself changes. 0 judges on request after every change.
    pub max_age_seconds: u64,
}

/// Each person's insight (where their interests meet the strategy, with the evidence of their
/// writing), made ahead of `MatchPerson`, `MatchPeople` and `GetPerson`; it is used while
/// the person and the strategy are as they were, for at most `[standing] max_age_seconds` after
/// the community moved on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsConfig {
    /// Make insights in a background thread, so that a CRM's bulk sync finds them made;
    /// without it, requests make (and keep) the insights they need themselves.
    pub background: bool,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self { background: true }
    }
}

/// Replicas on one PostgreSQL database (`storage.engine = "postgres"`); ignored on SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// How often a replica reads the change log for other replicas' writes: the bound on how
    /// long a write made through one replica takes to be served by the others.
    pub follow_interval_ms: u64,
    /// How long the change log keeps a change; a replica stopped for longer reloads its
    /// workspaces when it comes back instead of replaying.
    pub change_retention_hours: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Every call needs `authorization: Bearer <key>` (see `trellis keys create`).
    pub required: bool,
    /// Calls per second each key may make on average; 0 for no limit.
    pub requests_per_second: u32,
    /// Calls a key may make at once above its average.
    pub burst: u32,
    /// Messages per second each key may stream (records into Ingest, contacts into
    /// MatchPeople); a faster stream is slowed to it. 0 for no limit.
    pub stream_messages_per_second: u32,
    /// Failed authentications per minute from one peer address before its calls are refused
    /// for a while. 0 for no limit.
    pub failed_auth_per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Reads of a source per sync when its connector reports transient errors or rate limits.
    pub retry_attempts: u32,
    /// The first wait before reading again, in milliseconds; it doubles on each retry.
    pub retry_min_delay_ms: u64,
    /// The longest wait, in seconds; a rate limit asking for longer ends the sync instead.
    pub retry_max_delay_seconds: u64,
    /// How long a sync's lease on its source runs between renewals (every third of it). When
    /// a replica dies mid-sync, another takes the source over this long after.
    pub lease_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticConfig {
    /// `auto`: use the model when its files are present, else lexical-only; `off`; `required`.
    pub mode: String,
    /// The folder of the all-MiniLM-L6-v2 files.
    pub model_dir: PathBuf,
    /// Share of conversation similarity that comes from meaning, in [0, 1].
    pub weight: f32,
    /// Word pieces of each conversation that are embedded.
    pub max_tokens: usize,
    /// Threads that embed in the background.
    pub threads: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders whose connector plugins (shared libraries) are loaded at start; nothing else is.
    pub dirs: Vec<PathBuf>,
    /// The child-process runner of isolated sources; unset for `trellis-plugin-runner` next to
    /// the `trellis` binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<PathBuf>,
    /// Seconds one call of an isolated plugin (a check, one batch of a read) may take before its
    /// process is killed and the sync fails.
    pub isolated_call_timeout_seconds: u64,
    /// The address-space ceiling of an isolated plugin's process, in MiB; 0 for none.
    pub isolated_memory_mb: u64,
    /// Read each plugin's spec at start in a runner child (bounded by the call timeout), so that
    /// a plugin that crashes while loading or in `spec` is refused instead of taking the server
    /// down; `false` reads specs in the server process.
    pub probe_isolated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port, printed at start.
    pub listen: String,
    /// Seconds in-flight calls get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Records stored per transaction during a streamed ingest.
    pub ingest_batch: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// A PEM certificate (chain) to serve TLS with; set together with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite` (one file, the default) or `postgres` (a PostgreSQL server).
    pub engine: String,
    /// The SQLite database file; created with its folder on first start.
    pub path: PathBuf,
    /// PostgreSQL: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; required with `engine = "postgres"`.
    pub url: String,
    /// PostgreSQL: most connections open at once.
    pub pool_size: u32,
    /// PostgreSQL: the schema for the tables, created if missing; empty for the default (`public`).
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` for people, `json` for log collectors.
    pub format: String,
    /// A tracing filter; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// A strategy file (TOML) to put into the default workspace at start, if it differs from
    /// the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:50151".into(),
                shutdown_grace_seconds: 10,
                ingest_batch: 500,
                max_message_bytes: 8 * 1024 * 1024,
                tls_cert: None,
                tls_key: None,
            },
            storage: StorageConfig {
                engine: "sqlite".into(),
                path: PathBuf::from("data/trellis.db"),
                url: String::new(),
                pool_size: 8,
                schema: String::new(),
            },
            log: LogConfig {
                format: "pretty".into(),
                filter: "info,h2=warn,tower=warn".into(),
            },
            strategy: StrategyConfig::default(),
            plugins: PluginsConfig {
                dirs: vec![PathBuf::from("data/plugins")],
                runner: None,
                isolated_call_timeout_seconds: 120,
                isolated_memory_mb: 1024,
                probe_isolated: true,
            },
            sync: SyncConfig {
                retry_attempts: 5,
                retry_min_delay_ms: 1000,
                retry_max_delay_seconds: 300,
                lease_seconds: 30,
            },
            semantic: SemanticConfig {
                mode: "auto".into(),
                model_dir: PathBuf::from("models/all-minilm-l6-v2"),
                weight: 0.5,
                max_tokens: 128,
                threads: 1,
            },
            auth: AuthConfig {
                required: false,
                requests_per_second: 100,
                burst: 200,
                stream_messages_per_second: 20_000,
                failed_auth_per_minute: 30,
            },
            replication: ReplicationConfig {
                follow_interval_ms: 500,
                change_retention_hours: 24,
            },
            standing: StandingConfig {
                background: true,
                max_age_seconds: 600,
            },
            insights: InsightsConfig::default(),
            learning: LearningConfig {
                background: true,
                settle_seconds: 5,
                max_embedding_wait_seconds: 600,
            },
            secrets: SecretsConfig::default(),
            files: FilesConfig::default(),
            egress: EgressConfig::default(),
        }
    }
}

/// Flags that override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub storage_path: Option<PathBuf>,
    pub strategy_file: Option<PathBuf>,
    pub log_format: Option<String>,
    /// `semantic.model_dir`, kept as the path given (never read as TOML, as environment values
    /// are).
    pub semantic_model_dir: Option<PathBuf>,
}

const ENV_PREFIX: &str = "TRELLIS__";
/// The model folder's variable, shared with `scripts/fetch-model.sh`.
const MODEL_DIR_ENV: &str = "TRELLIS_MODEL_DIR";

/// `TRELLIS__SERVER__LISTEN=…` becomes `[server] listen = …`. Values that parse as TOML
/// (numbers, booleans) keep their type; anything else is a string.
fn environment_layer(
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<toml::Table, String> {
    let mut root = toml::Table::new();
    for (name, value) in environment {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(format!(
                "{name}: write it as TRELLIS__SECTION__KEY, e.g. TRELLIS__SERVER__LISTEN"
            ));
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut table| table.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut table = &mut root;
        for key in &keys[..keys.len() - 1] {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(inner) = entry else {
                return Err(format!("{name}: {key} is a value, not a section"));
            };
            table = inner;
        }
        table.insert(keys[keys.len() - 1].clone(), parsed);
    }
    Ok(root)
}

impl Config {
    /// Loads defaults, then `file`, then `environment`, then `overrides`, and validates.
    pub fn load(
        file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!(
                    "config file {} does not exist; pass an existing file to --config, or leave it out for the defaults",
                    file.display()
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let environment: Vec<(String, String)> = environment.into_iter().collect();
        figment = figment.merge(Serialized::defaults(environment_layer(
            environment.iter().cloned(),
        )?));
        let mut config: Config = figment
            .extract()
            .map_err(|error| format!("configuration is invalid: {error}"))?;
        // The model folder as scripts/fetch-model.sh and the tests name it, unless the
        // configuration's own variable says otherwise (a flag still wins over both).
        let named = |name: &str| {
            environment
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| value.clone())
        };
        if named("TRELLIS__SEMANTIC__MODEL_DIR").is_none()
            && let Some(dir) = named(MODEL_DIR_ENV)
        {
            config.semantic.model_dir = PathBuf::from(dir);
        }
        if let Some(listen) = &overrides.listen {
            config.server.listen = listen.clone();
        }
        if let Some(path) = &overrides.storage_path {
            config.storage.path = path.clone();
        }
        if let Some(file) = &overrides.strategy_file {
            config.strategy.file = Some(file.clone());
        }
        if let Some(format) = &overrides.log_format {
            config.log.format = format.clone();
        }
        if let Some(dir) = &overrides.semantic_model_dir {
            config.semantic.model_dir = dir.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Every rule, every problem named with its key and its fix.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.listen = {:?} is not an address; write IP:PORT, e.g. 127.0.0.1:50151 (port 0 picks a free port)",
                self.server.listen
            ));
        }
        if self.server.ingest_batch == 0 || self.server.ingest_batch > 100_000 {
            problems.push("server.ingest_batch must be from 1 to 100000".to_owned());
        }
        if self.server.max_message_bytes < 1024 {
            problems.push("server.max_message_bytes must be at least 1024".to_owned());
        }
        if self.storage.path.as_os_str().is_empty() {
            problems.push(
                "storage.path is empty; give the SQLite file to use, e.g. data/trellis.db"
                    .to_owned(),
            );
        }
        match self.storage.engine.as_str() {
            "sqlite" => {}
            "postgres" => {
                if self.storage.url.trim().is_empty() {
                    problems.push(
                        "storage.url is empty; with storage.engine = \"postgres\" give the database, e.g. postgres://trellis:PASSWORD@127.0.0.1:5432/trellis"
                            .to_owned(),
                    );
                }
                if self.storage.pool_size == 0 || self.storage.pool_size > 1000 {
                    problems.push("storage.pool_size must be from 1 to 1000".to_owned());
                }
            }
            other => problems.push(format!(
                "storage.engine = {other:?}; use \"sqlite\" or \"postgres\""
            )),
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            problems.push(format!(
                "log.format = {:?}; use \"pretty\" or \"json\"",
                self.log.format
            ));
        }
        if let Some(file) = &self.strategy.file
            && !file.exists()
        {
            problems.push(format!(
                "strategy.file = {} does not exist; fix the path or leave it out",
                file.display()
            ));
        }
        if !matches!(self.semantic.mode.as_str(), "auto" | "off" | "required") {
            problems.push(format!(
                "semantic.mode = {:?}; use \"auto\", \"off\" or \"required\"",
                self.semantic.mode
            ));
        }
        if !(0.0..=1.0).contains(&self.semantic.weight) {
            problems.push(format!(
                "semantic.weight = {} is outside 0..1; 0 is lexical-only, 1 is meaning only",
                self.semantic.weight
            ));
        }
        if !(8..=512).contains(&self.semantic.max_tokens) {
            problems.push("semantic.max_tokens must be from 8 to 512".to_owned());
        }
        if !(3..=3600).contains(&self.sync.lease_seconds) {
            problems.push(
                "sync.lease_seconds must be from 3 to 3600; 30 suits most deployments".to_owned(),
            );
        }
        if !(10..=60_000).contains(&self.replication.follow_interval_ms) {
            problems.push(
                "replication.follow_interval_ms must be from 10 to 60000, e.g. 500".to_owned(),
            );
        }
        if self.standing.max_age_seconds > 86_400 {
            problems.push(
                "standing.max_age_seconds must be at most 86400 (a day), e.g. 600".to_owned(),
            );
        }
        if self.replication.change_retention_hours == 0 {
            problems
                .push("replication.change_retention_hours must be at least 1, e.g. 24".to_owned());
        }
        if self.sync.retry_attempts == 0 || self.sync.retry_attempts > 100 {
            problems.push("sync.retry_attempts must be from 1 (no retry) to 100".to_owned());
        }
        if self.sync.retry_min_delay_ms == 0
            || self.sync.retry_min_delay_ms > self.sync.retry_max_delay_seconds.saturating_mul(1000)
        {
            problems.push(
                "sync.retry_min_delay_ms must be at least 1 and at most sync.retry_max_delay_seconds".to_owned(),
            );
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) | (None, Some(_)) => problems.push(
                "server.tls_cert and server.tls_key go together; set both to serve TLS, or neither"
                    .to_owned(),
            ),
            (Some(cert), Some(key)) => {
                for (name, file) in [("server.tls_cert", cert), ("server.tls_key", key)] {
                    if !file.exists() {
                        problems.push(format!(
                            "{name} = {} does not exist; fix the path to the PEM file",
                            file.display()
                        ));
                    }
                }
            }
            (None, None) => {}
        }
        if self.auth.requests_per_second > 0 && self.auth.burst == 0 {
            problems.push(
                "auth.burst must be at least 1 while auth.requests_per_second is set".to_owned(),
            );
        }
        if let Some(runner) = &self.plugins.runner
            && !runner.is_file()
        {
            problems.push(format!(
                "plugins.runner = {} is not a file; give the path of trellis-plugin-runner, or leave it out to use the one next to the trellis binary",
                runner.display()
            ));
        }
        if !(1..=86_400).contains(&self.plugins.isolated_call_timeout_seconds) {
            problems
                .push("plugins.isolated_call_timeout_seconds must be from 1 to 86400".to_owned());
        }
        if (1..64).contains(&self.plugins.isolated_memory_mb) {
            problems.push(
                "plugins.isolated_memory_mb must be 0 (no limit) or at least 64; a plugin process needs room for its own code"
                    .to_owned(),
            );
        }
        if self.semantic.threads == 0 || self.semantic.threads > 256 {
            problems.push("semantic.threads must be from 1 to 256".to_owned());
        }
        if let Err(problem) = self.egress.policy().checked() {
            problems.push(format!("egress.allow: {problem}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 50151)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn example_config_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/trellis.toml");
        let config =
            Config::load(Some(&path), Vec::new(), &Overrides::default()).expect("example loads");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_model_folder_of_fetch_model_is_read_below_the_config_variable_and_flags() {
        let load = |environment: &[(&str, &str)], flag: Option<&str>| {
            Config::load(
                None,
                env(environment),
                &Overrides {
                    semantic_model_dir: flag.map(PathBuf::from),
                    ..Overrides::default()
                },
            )
            .expect("loads")
            .semantic
            .model_dir
        };
        assert_eq!(
            load(&[("TRELLIS_MODEL_DIR", "/m")], None),
            PathBuf::from("/m")
        );
        assert_eq!(
            load(
                &[
                    ("TRELLIS_MODEL_DIR", "/m"),
                    ("TRELLIS__SEMANTIC__MODEL_DIR", "/c")
                ],
                None
            ),
            PathBuf::from("/c")
        );
        assert_eq!(
            load(&[("TRELLIS_MODEL_DIR", "/m")], Some("/flag")),
            PathBuf::from("/flag")
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\ningest_batch = 7\n",
        )
        .expect("write");
        let config = Config::load(
            Some(&file),
            env(&[("TRELLIS__SERVER__LISTEN", "127.0.0.1:2"), ("OTHER", "x")]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(config.server.listen, "127.0.0.1:2");
        assert_eq!(config.server.ingest_batch, 7);
        let config = Config::load(
            Some(&file),
            env(&[("TRELLIS__SERVER__LISTEN", "127.0.0.1:2")]),
            &Overrides {
                listen: Some("127.0.0.1:3".into()),
                ..Overrides::default()
            },
        )
        .expect("loads");
        assert_eq!(config.server.listen, "127.0.0.1:3");
    }

    #[test]
    fn bad_values_are_named() {
        let error = Config::load(
            None,
            env(&[
                ("TRELLIS__SERVER__LISTEN", "nowhere"),
                ("TRELLIS__LOG__FORMAT", "xml"),
            ]),
            &Overrides::default(),
        )
        .expect_err("invalid");
        assert!(error.contains("server.listen"), "{error}");
        assert!(error.contains("log.format"), "{error}");
        let error = Config::load(
            None,
            env(&[("TRELLIS__SERVER__PORTS", "1")]),
            &Overrides::default(),
        )
        .expect_err("unknown key");
        assert!(error.contains("ports"), "{error}");
    }

    #[test]
    fn isolation_keys_are_checked() {
        let error = Config::load(
            None,
            env(&[
                ("TRELLIS__PLUGINS__RUNNER", "/nowhere/trellis-plugin-runner"),
                ("TRELLIS__PLUGINS__ISOLATED_CALL_TIMEOUT_SECONDS", "0"),
                ("TRELLIS__PLUGINS__ISOLATED_MEMORY_MB", "10"),
            ]),
            &Overrides::default(),
        )
        .expect_err("invalid");
        assert!(error.contains("plugins.runner = /nowhere"), "{error}");
        assert!(
            error.contains("plugins.isolated_call_timeout_seconds"),
            "{error}"
        );
        assert!(error.contains("plugins.isolated_memory_mb"), "{error}");
        let config = Config::load(
            None,
            env(&[("TRELLIS__PLUGINS__ISOLATED_MEMORY_MB", "0")]),
            &Overrides::default(),
        )
        .expect("no limit is allowed");
        assert_eq!(config.plugins.isolated_memory_mb, 0);
    }

    #[test]
    fn egress_refuses_private_addresses_by_default_and_its_allow_list_is_checked() {
        let config = Config::load(None, Vec::new(), &Overrides::default()).expect("loads");
        assert_eq!(config.egress, EgressConfig::default());
        assert!(!config.egress.allow_private);
        let config = Config::load(
            None,
            env(&[
                ("TRELLIS__EGRESS__ALLOW_PRIVATE", "true"),
                (
                    "TRELLIS__EGRESS__ALLOW",
                    r#"["10.20.0.0/16", "forum.intranet"]"#,
                ),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert!(config.egress.allow_private);
        assert_eq!(config.egress.allow, ["10.20.0.0/16", "forum.intranet"]);
        let error = Config::load(
            None,
            env(&[("TRELLIS__EGRESS__ALLOW", r#"["10.0.0.0/40"]"#)]),
            &Overrides::default(),
        )
        .expect_err("a bad network");
        assert!(error.contains("egress.allow"), "{error}");
        assert!(error.contains("10.0.0.0/40"), "{error}");
    }

    #[test]
    fn postgres_storage_needs_a_url_and_a_known_engine() {
        let error = Config::load(
            None,
            env(&[("TRELLIS__STORAGE__ENGINE", "postgres")]),
            &Overrides::default(),
        )
        .expect_err("no url");
        assert!(error.contains("storage.url is empty"), "{error}");
        let error = Config::load(
            None,
            env(&[
                ("TRELLIS__STORAGE__ENGINE", "postgres"),
                (
                    "TRELLIS__STORAGE__URL",
                    "postgres://trellis@127.0.0.1/trellis",
                ),
                ("TRELLIS__STORAGE__POOL_SIZE", "0"),
            ]),
            &Overrides::default(),
        )
        .expect_err("no pool");
        assert!(error.contains("storage.pool_size"), "{error}");
        let error = Config::load(
            None,
            env(&[("TRELLIS__STORAGE__ENGINE", "mysql")]),
            &Overrides::default(),
        )
        .expect_err("unknown engine");
        assert!(error.contains("storage.engine = \"mysql\""), "{error}");
        let config = Config::load(
            None,
            env(&[
                ("TRELLIS__STORAGE__ENGINE", "postgres"),
                (
                    "TRELLIS__STORAGE__URL",
                    "postgres://trellis@127.0.0.1/trellis",
                ),
                ("TRELLIS__STORAGE__SCHEMA", "tenant_a"),
            ]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(
            (config.storage.pool_size, config.storage.schema.as_str()),
            (8, "tenant_a")
        );
    }
}
