//! The bookmarks connector passes the conformance kit on its fixtures and on the real exports.

use std::path::PathBuf;

use trellis_conformance::{Options, built_library, run};

pub fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    if root.join("bookmarks").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "skipped: no shared data at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        None
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn the_connector_passes_the_kit_on_its_fixtures() {
    let config = serde_json::json!({
        "owner": "ada",
        "batch_size": 1,
        "files": [{"path": fixtures().join("browser.html")}, {"path": fixtures().join("pocket.csv"), "format": "pocket"}],
    })
    .to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_bookmarks"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn the_connector_passes_the_kit_on_the_real_exports() {
    let Some(data) = shared_data() else { return };
    let mut files = Vec::new();
    for folder in ["bookmarks/netscape", "bookmarks/services"] {
        for entry in std::fs::read_dir(data.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Not among the formats of this connector: Chrome's and Firefox's JSON, and an
            // empty file.
            if ["chrome-bookmarks", "firefox-bookmarks.json", "empty.htm"].contains(&name.as_str())
            {
                continue;
            }
            files.push(serde_json::json!({"path": path}));
        }
    }
    let config = serde_json::json!({"owner": "ada", "batch_size": 7, "files": files}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_bookmarks"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}
