//! The registry's start-up probe over real `trellis-plugin-runner` children and real shared
//! libraries: a plugin that aborts, segfaults, exits or hangs while it loads or in its `spec` is
//! refused with a reason naming the library and the cause, this process survives, and the
//! healthy plugins in the same folder load. Without a fault the probe reads the same specs as
//! reading them in process.
//!
//! The broken connector takes its start-up fault from an environment variable that the runner
//! children inherit, so this file holds one test: nothing else in this process reads or changes
//! the environment while it runs, and no other test here loads the broken library in process.

mod common;

use std::time::Duration;

use trellis_conformance::built_library;
use trellis_connector_broken::{EXIT_STATUS, LOAD_FAULT, SPEC_FAULT};
use trellis_plugin_host::{IsolationSettings, PluginRegistry};

use common::plugin_dir;

/// Short, so that the hanging plugin is given up on quickly; loading a library in a child takes
/// milliseconds even on a loaded machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn isolation() -> IsolationSettings {
    common::isolation(CALL_TIMEOUT, 512)
}

/// Sets `variable` for this process (and so for the runner children it starts).
#[allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; this binary's only test is the only code running"
)]
fn set_fault(variable: &str, how: Option<&str>) {
    // SAFETY: no other thread of this test binary reads or writes the environment meanwhile
    // (one test, and the probes it starts are joined before it returns).
    unsafe {
        match how {
            Some(how) => std::env::set_var(variable, how),
            None => std::env::remove_var(variable),
        }
    }
}

#[test]
fn a_plugin_that_crashes_while_loading_or_in_spec_is_refused_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let broken = plugins.join(
        built_library("trellis_connector_broken")
            .file_name()
            .unwrap(),
    );
    let broken_name = broken.file_name().unwrap().to_string_lossy().into_owned();

    let exit = format!("exited with status {EXIT_STATUS} during spec");
    let timeout = format!(
        "did not answer spec within {} s (plugins.isolated_call_timeout_seconds); it was stopped",
        CALL_TIMEOUT.as_secs()
    );
    for (variable, how, cause) in [
        (
            SPEC_FAULT,
            "abort",
            "died with signal SIGABRT (it aborted) during spec",
        ),
        (
            SPEC_FAULT,
            "segfault",
            "died with signal SIGSEGV (an invalid memory access) during spec",
        ),
        (SPEC_FAULT, "exit", exit.as_str()),
        (SPEC_FAULT, "hang", timeout.as_str()),
        (
            LOAD_FAULT,
            "abort",
            "died with signal SIGABRT (it aborted) during loading the library",
        ),
    ] {
        set_fault(variable, Some(how));
        let registry = PluginRegistry::load_probed(std::slice::from_ref(&plugins), &isolation());
        set_fault(variable, None);

        assert_eq!(
            registry.names(),
            ["jsonl", "stackexchange"],
            "{variable}={how}: the healthy plugins load"
        );
        let [refused] = registry.refused() else {
            panic!(
                "{variable}={how}: one refusal, not {:?}",
                registry.refused()
            );
        };
        assert_eq!(refused.library, broken, "{variable}={how}");
        let expected = format!("the plugin process of library {broken_name} {cause}");
        assert!(
            refused.reason.contains(&expected),
            "{variable}={how}: {:?} does not contain {expected:?}",
            refused.reason
        );
        assert!(
            refused
                .reason
                .starts_with("plugin refused: reading its spec in a plugin process failed"),
            "{}",
            refused.reason
        );
    }

    // Without a fault every library passes, with the same specs as read in this process.
    let probed = PluginRegistry::load_probed(std::slice::from_ref(&plugins), &isolation());
    assert!(probed.refused().is_empty(), "{:?}", probed.refused());
    assert_eq!(probed.names(), ["broken", "jsonl", "stackexchange"]);
    let in_process = PluginRegistry::load(std::slice::from_ref(&plugins));
    for connector in in_process.connectors() {
        let name = &connector.spec.name;
        let probed = probed.get(name).expect("the same connectors");
        assert_eq!(probed.spec, connector.spec, "{name}");
        // A probed connector is loaded here too, for the sources that run in process.
        let spec = probed.instance().and_then(|instance| instance.spec());
        assert_eq!(
            spec.expect("an in-process instance"),
            connector.spec,
            "{name}"
        );
    }

    // Without a runner to probe with, every library is refused with the fix.
    let settings = IsolationSettings {
        runner: dir.path().join("no-such-runner"),
        ..isolation()
    };
    let registry = PluginRegistry::load_probed(std::slice::from_ref(&plugins), &settings);
    assert!(registry.names().is_empty());
    assert_eq!(registry.refused().len(), 3);
    for refused in registry.refused() {
        assert!(
            refused.reason.contains("cannot start the plugin runner")
                && refused.reason.contains("set plugins.runner"),
            "{}",
            refused.reason
        );
    }
}
