//! The blog connector passes the conformance kit on its fixtures and on the real data.

use std::path::PathBuf;

use trellis_conformance::{Options, Outcome, built_library, run};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn the_blog_connector_passes_the_kit_on_its_fixtures() {
    let feeds = [
        fixture("rss2.xml"),
        fixture("atom.xml"),
        fixture("feed.json"),
        fixture("wordpress.xml"),
    ];
    let config = serde_json::json!({"feeds": feeds, "batch_size": 1}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_blog"),
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
fn the_blog_connector_passes_the_kit_on_the_real_data() {
    let root = std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if !root.join("feeds").is_dir() {
        eprintln!(
            "skipped: the shared data is not at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        return;
    }
    let feeds = [
        root.join("feeds/rsparser/DaringFireball.atom"),
        root.join("feeds/rsparser/scriptingNews.rss"),
        root.join("feeds/rsparser/DaringFireball.json"),
        root.join("feeds/feed-rs/rss1/rss_1.0_debian.xml"),
        root.join("wordpress/themeunittestdata.wordpress.xml"),
    ];
    let config = serde_json::json!({"feeds": feeds, "batch_size": 20}).to_string();
    let report = run(&Options::new(
        built_library("trellis_connector_blog"),
        config,
    ));
    println!("{report}");
    assert!(report.passed(), "{report}");
}
