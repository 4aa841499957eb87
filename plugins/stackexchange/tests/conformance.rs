//! The stackexchange connector passes the conformance kit on the project's fixture dump (a
//! checkpoint after every record or two) and on the real dumps of the shared data.

use std::path::PathBuf;

use trellis_conformance::{Options, Outcome, built_library, run};

fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    if root.join("stackexchange").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "skipped: no shared data at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        None
    }
}

#[test]
fn the_connector_passes_the_kit_on_its_fixture_dump() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini");
    let config = serde_json::json!({"path": fixture, "batch_size": 1}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_stackexchange"),
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
    let Some(Outcome::Passed(read)) = report.outcome("full read") else {
        panic!("{report}");
    };
    assert!(read.starts_with("12 valid records"), "{read}");
}

#[test]
fn the_connector_passes_the_kit_on_the_real_dumps() {
    let Some(data) = shared_data() else { return };
    for (site, batch_size, expected) in [
        ("conlang", 25, 272 + 54 + 115),
        ("quantumcomputing", 500, 3461 + 612 + 1060),
    ] {
        let folder = data.join("stackexchange").join(site);
        let config = serde_json::json!({
            "path": folder,
            "site_url": format!("https://{site}.stackexchange.com"),
            "batch_size": batch_size,
        })
        .to_string();
        let mut options = Options::new(built_library("trellis_connector_stackexchange"), config);
        options.max_resumes = 12;
        let report = run(&options);
        println!("{report}");
        assert!(report.passed(), "{site}: {report}");
        let Some(Outcome::Passed(read)) = report.outcome("full read") else {
            panic!("{report}");
        };
        let records: usize = read.split(' ').next().unwrap().parse().unwrap();
        assert!(
            records > expected,
            "{site}: {records} records, more than {expected} people, questions and answers expected"
        );
    }
}
