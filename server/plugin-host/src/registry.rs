//! The connectors loaded from the configured folders. Only files in those folders with the
//! platform's shared-library suffix are opened; a library that fails the handshake, its spec or
//! its schema is refused with a log line naming it and the reason, and is listed in
//! [`PluginRegistry::refused`].
//!
//! Reading a spec means running the plugin's code. By default ([`PluginRegistry::load_probed`])
//! each library is first loaded in a `trellis-plugin-runner` child that reads its spec (the same
//! runner and frames as isolated sources, bounded by the call timeout), so a plugin that aborts,
//! segfaults or hangs while it loads or in `spec` is refused and the server starts without it;
//! only a library whose probe succeeded is then loaded into this process (for in-process
//! sources). [`PluginRegistry::load`] reads specs in this process, as before probing existed.
//! Libraries are never unloaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use trellis_plugin_sdk::ConfigSchema;
use trellis_plugin_sdk::host::{Instance, Plugin};
use trellis_plugin_sdk::pb::connector::SpecResponse;

use crate::isolation::{IsolatedInstance, IsolationSettings};

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

/// A library that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedPlugin {
    pub library: PathBuf,
    pub reason: String,
}

/// Every usable connector, by name, and the libraries refused.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    connectors: BTreeMap<String, Arc<LoadedConnector>>,
    refused: Vec<RefusedPlugin>,
}

/// Libraries probed at the same time: each probe is a child process that mostly waits on the
/// dynamic loader, so a few run side by side without crowding the machine.
const PROBES_AT_ONCE: usize = 4;

fn is_library(path: &Path) -> bool {
    let suffix = std::env::consts::DLL_SUFFIX;
    path.is_file()
        && path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(suffix))
}

/// The libraries in `dirs` (not recursively), each folder's sorted by name; an unreadable folder
/// is logged and skipped.
fn libraries(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut libraries = Vec::new();
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
        libraries.extend(paths);
    }
    libraries
}

impl PluginRegistry {
    /// Loads every library in `dirs` (not recursively) and reads its spec in this process: a
    /// plugin that crashes there takes this process with it. Other problems are logged, never
    /// fatal.
    pub fn load(dirs: &[PathBuf]) -> Self {
        let mut registry = Self::default();
        for path in libraries(dirs) {
            let spec = Plugin::load(&path)
                .map_err(|error| format!("plugin refused: {error}"))
                .and_then(|plugin| {
                    let spec = plugin
                        .instance()
                        .and_then(|instance| instance.spec())
                        .map_err(|error| format!("plugin refused: its spec failed: {error}"))?;
                    Ok((plugin, spec))
                });
            match spec {
                Ok((plugin, spec)) => registry.add(&path, plugin, spec),
                Err(reason) => registry.refuse(&path, reason),
            }
        }
        registry
    }

    /// Loads every library in `dirs` (not recursively), first reading its spec in a runner child
    /// started with `isolation` (bounded by its call timeout): a library whose probe fails —
    /// it crashed, exited, hung or answered garbage while loading or in `spec` — is refused with
    /// an error naming it and the cause, and the others load. A library that passed is then
    /// loaded into this process, for sources that run in process. Never fatal.
    pub fn load_probed(dirs: &[PathBuf], isolation: &IsolationSettings) -> Self {
        let paths = libraries(dirs);
        let started = Instant::now();
        let mut probes = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(PROBES_AT_ONCE) {
            std::thread::scope(|scope| {
                let running: Vec<_> = chunk
                    .iter()
                    .map(|path| scope.spawn(move || IsolatedInstance::probe_spec(path, isolation)))
                    .collect();
                for probe in running {
                    probes.push(probe.join().unwrap_or_else(|_| {
                        Err(trellis_plugin_sdk::host::HostError::Protocol(
                            "the probe thread panicked".to_owned(),
                        ))
                    }));
                }
            });
        }
        let mut registry = Self::default();
        for (path, probe) in paths.iter().zip(probes) {
            let spec = match probe {
                Ok(spec) => spec,
                Err(error) => {
                    registry.refuse(
                        path,
                        format!(
                            "plugin refused: reading its spec in a plugin process failed: {error}"
                        ),
                    );
                    continue;
                }
            };
            match Plugin::load(path) {
                Ok(plugin) => registry.add(path, plugin, spec),
                Err(error) => registry.refuse(path, format!("plugin refused: {error}")),
            }
        }
        tracing::debug!(
            libraries = paths.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "plugin specs probed"
        );
        registry
    }

    fn refuse(&mut self, path: &Path, reason: String) {
        tracing::error!(plugin = %path.display(), "{reason}");
        self.refused.push(RefusedPlugin {
            library: path.to_owned(),
            reason,
        });
    }

    fn add(&mut self, path: &Path, plugin: Arc<Plugin>, spec: SpecResponse) {
        let schema = match ConfigSchema::from_json(&spec.config_schema_json) {
            Ok(schema) => schema,
            Err(problem) => {
                self.refuse(
                    path,
                    format!("plugin refused: its config schema is unusable: {problem}"),
                );
                return;
            }
        };
        if let Some(existing) = self.connectors.get(&spec.name) {
            let reason = format!(
                "plugin refused: {} already provides connector {:?}",
                existing.plugin.path().display(),
                spec.name
            );
            self.refuse(path, reason);
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

    /// The libraries that were not loaded, in the order they were tried.
    pub fn refused(&self) -> &[RefusedPlugin] {
        &self.refused
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
