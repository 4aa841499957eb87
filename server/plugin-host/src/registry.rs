//! The connectors loaded from the configured folders. Only files in those folders with the
//! platform's shared-library suffix are opened; a library that fails the handshake is refused
//! with a log line naming it and the reason, and stays loaded but unused (libraries are never
//! unloaded).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trellis_plugin_sdk::ConfigSchema;
use trellis_plugin_sdk::host::{Instance, Plugin};
use trellis_plugin_sdk::pb::connector::SpecResponse;

/// A plugin that passed the handshake, with its spec and compiled config schema.
#[derive(Debug)]
pub struct LoadedConnector {
    pub plugin: Arc<Plugin>,
    pub spec: SpecResponse,
    pub schema: ConfigSchema,
}

impl LoadedConnector {
    pub fn instance(&self) -> Result<Instance, trellis_plugin_sdk::host::HostError> {
        self.plugin.instance()
    }
}

/// Every usable connector, by name.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    connectors: BTreeMap<String, Arc<LoadedConnector>>,
}

fn is_library(path: &Path) -> bool {
    let suffix = std::env::consts::DLL_SUFFIX;
    path.is_file()
        && path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(suffix))
}

impl PluginRegistry {
    /// Loads every library in `dirs` (not recursively). Problems are logged, never fatal: a
    /// broken plugin must not keep the service from starting.
    pub fn load(dirs: &[PathBuf]) -> Self {
        let mut registry = Self::default();
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot read a plugin folder; skipping it");
                    continue;
                }
            };
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| is_library(path))
                .collect();
            paths.sort();
            for path in paths {
                registry.load_one(&path);
            }
        }
        registry
    }

    fn load_one(&mut self, path: &Path) {
        let plugin = match Plugin::load(path) {
            Ok(plugin) => plugin,
            Err(error) => {
                tracing::error!(plugin = %path.display(), %error, "plugin refused");
                return;
            }
        };
        let spec = match plugin.instance().and_then(|instance| instance.spec()) {
            Ok(spec) => spec,
            Err(error) => {
                tracing::error!(plugin = %path.display(), %error, "plugin refused: its spec failed");
                return;
            }
        };
        let schema = match ConfigSchema::from_json(&spec.config_schema_json) {
            Ok(schema) => schema,
            Err(problem) => {
                tracing::error!(plugin = %path.display(), %problem, "plugin refused: its config schema is unusable");
                return;
            }
        };
        if let Some(existing) = self.connectors.get(&spec.name) {
            tracing::error!(
                plugin = %path.display(),
                connector = %spec.name,
                already = %existing.plugin.path().display(),
                "plugin refused: another library already provides this connector"
            );
            return;
        }
        let (major, minor) = plugin.abi_version();
        tracing::info!(
            plugin = %path.display(),
            connector = %spec.name,
            version = %spec.version,
            abi = %format!("{major}.{minor}"),
            "plugin loaded"
        );
        self.connectors.insert(
            spec.name.clone(),
            Arc::new(LoadedConnector {
                plugin,
                spec,
                schema,
            }),
        );
    }

    pub fn get(&self, name: &str) -> Option<&Arc<LoadedConnector>> {
        self.connectors.get(name)
    }

    pub fn connectors(&self) -> impl Iterator<Item = &Arc<LoadedConnector>> {
        self.connectors.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.connectors.keys().map(String::as_str).collect()
    }
}
