//! The Slack connector passes the conformance kit on its fixture export and on the real one,
//! as a folder and as a zip.

use std::path::PathBuf;

use trellis_conformance::{Options, Outcome, built_library, run};

#[test]
fn the_slack_connector_passes_the_kit_on_its_fixture() {
    let export = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export");
    let config = serde_json::json!({"path": export, "batch_size": 1}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_slack"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(
        report
            .results
            .iter()
            .all(|result| !matches!(result.outcome, Outcome::Skipped(_))),
        "{report}"
    );
}

#[test]
fn the_slack_connector_passes_the_kit_on_the_real_export() {
    let root = std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let export = root.join("slack/houstondatavis");
    if !export.join("users.json").is_file() {
        eprintln!(
            "skipped: no Slack export at {} (set TRELLIS_SHARED_DATA)",
            export.display()
        );
        return;
    }
    let config = serde_json::json!({"path": export, "batch_size": 25}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_slack"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn the_slack_connector_passes_the_kit_on_threads_with_deleted_openers() {
    let export = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tombstone");
    let config = serde_json::json!({"path": export, "batch_size": 1}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_slack"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}
