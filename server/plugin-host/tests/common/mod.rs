//! What the isolation and probe tests share: a plugin folder of connector libraries built by
//! cargo, and the settings of the runner cargo built with this crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use trellis_conformance::built_library;
use trellis_plugin_host::IsolationSettings;

/// A folder `plugins` under `dir` holding the broken connector and two real ones (template,
/// stackexchange), all dev-dependencies of this crate.
pub fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for crate_name in [
        "trellis_connector_broken",
        "trellis_connector_template",
        "trellis_connector_stackexchange",
    ] {
        let library = built_library(crate_name);
        std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    }
    plugins
}

/// Isolation with the `trellis-plugin-runner` built with this crate.
pub fn isolation(call_timeout: Duration, memory_mb: u64) -> IsolationSettings {
    IsolationSettings {
        runner: PathBuf::from(env!("CARGO_BIN_EXE_trellis-plugin-runner")),
        call_timeout,
        memory_mb,
    }
}
