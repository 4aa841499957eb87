//! The template passes the conformance kit: on the example community, on a generated file with
//! many checkpoints, and with a config the kit must see refused.

use std::io::Write;
use std::path::PathBuf;

use trellis_conformance::{Options, Outcome, built_library, run};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/community.jsonl")
}

#[test]
fn the_template_passes_the_kit_on_the_example_community() {
    let config = serde_json::json!({"path": examples(), "batch_size": 3}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_template"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(
        report
            .results
            .iter()
            .all(|result| !matches!(result.outcome, Outcome::Skipped(_))),
        "nothing may be skipped for a Rust plugin built with the hooks: {report}"
    );
}

#[test]
fn the_template_passes_the_kit_on_a_generated_file_with_many_checkpoints() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for n in 0..500 {
        writeln!(
            file,
            r#"{{"type":"conversation","id":"c{n}","title":"thread {n}","body":"text of thread {n}"}}"#
        )
        .unwrap();
        writeln!(
            file,
            r#"{{"type":"post","id":"p{n}","conversation":"c{n}","text":"reply {n}","author":"u{}"}}"#,
            n % 7
        )
        .unwrap();
    }
    // A line still being written: it must be left for the next sync, not half-read.
    write!(file, r#"{{"type":"post","id":"partial""#).unwrap();
    file.flush().unwrap();
    let config = serde_json::json!({"path": file.path(), "batch_size": 9}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_template"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
    let Some(Outcome::Passed(read)) = report.outcome("full read") else {
        panic!("{report}");
    };
    assert!(
        read.starts_with("1000 valid records, 112 checkpoints"),
        "{read}"
    );
}

#[test]
fn a_config_the_plugin_accepts_as_bad_fails_the_kit() {
    let config = serde_json::json!({"path": examples()}).to_string();
    let mut options = Options::new(built_library("trellis_connector_template"), config.clone());
    // The kit is told that the good config is bad: the check must fail, and the report with it.
    options.bad_config_json = Some(config);
    let report = run(&options);
    assert!(!report.passed());
    assert!(
        matches!(report.outcome("check bad config"), Some(Outcome::Failed(_))),
        "{report}"
    );
}

#[test]
fn a_missing_file_is_a_config_error_naming_the_path() {
    let config = serde_json::json!({"path": "/nonexistent/records.jsonl"}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_template"),
        config,
    ));
    let Some(Outcome::Failed(detail)) = report.outcome("check") else {
        panic!("{report}");
    };
    assert!(
        detail.contains("config error: path: cannot open"),
        "{detail}"
    );
}
