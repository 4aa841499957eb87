//! Parsing every format: the project's fixtures field by field, and the real exports.

use std::path::PathBuf;

use trellis_connector_bookmarks::{BookmarksConnector, Config, Format, detect, parse};
use trellis_plugin_sdk::pb::connector::{batch_item, record};
use trellis_plugin_sdk::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn shared_data() -> Option<PathBuf> {
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

fn assets(config: serde_json::Value) -> Vec<pb::Asset> {
    let config: Config = serde_json::from_value(config).unwrap();
    let mut reader = BookmarksConnector
        .open_read(config, State::new(), CancelToken::new())
        .unwrap();
    let mut out = Vec::new();
    loop {
        let batch = reader.next_batch().unwrap();
        let last = batch.is_last();
        for item in batch.into_proto().items {
            if let Some(batch_item::Item::Record(record)) = item.item
                && let Some(record::Payload::Asset(asset)) = record.payload
            {
                out.push(asset);
            }
        }
        if last {
            return out;
        }
    }
}

#[test]
fn the_fixtures_map_and_the_same_url_is_counted() {
    let assets = assets(serde_json::json!({
        "owner": "ada",
        "files": [{"path": fixtures().join("browser.html")}, {"path": fixtures().join("pocket.csv")}],
    }));
    assert_eq!(assets.len(), 3, "the place: query is not a bookmark");
    let guide = assets
        .iter()
        .find(|asset| asset.url == "https://example.org/trellis-guide")
        .unwrap();
    assert_eq!(guide.title, "Building a trellis");
    assert_eq!(guide.text, "How to build one\nin a weekend.");
    assert_eq!(guide.bookmark_count, 2);
    assert_eq!(guide.tags, vec!["garden", "diy", "wood", "saved-by:ada"]);
    assert_eq!(guide.kind, pb::AssetKind::Bookmark as i32);
    assert_eq!(
        guide.created_at.unwrap().seconds,
        1_500_000_000,
        "the earliest save"
    );
    let wood = assets
        .iter()
        .find(|asset| asset.url == "https://example.org/wood")
        .unwrap();
    assert_eq!(wood.title, "Cedar, oak or pine?");
    assert_eq!(wood.bookmark_count, 1);
}

#[test]
fn every_real_export_is_detected_and_parsed() {
    let Some(data) = shared_data() else { return };
    let expected = [
        ("services/pinboard_export", Format::Pinboard),
        (
            "services/delicious_export.2021.02.06_21.10.json",
            Format::Delicious,
        ),
        ("services/pocket.csv", Format::Pocket),
        ("services/instapaper-export.csv", Format::Instapaper),
        ("services/shaarli-bookmarks.html", Format::Netscape),
        ("netscape/firefox_nested.htm", Format::Netscape),
        ("netscape/netscape_multiline.htm", Format::Netscape),
    ];
    for (file, format) in expected {
        let text = std::fs::read_to_string(data.join("bookmarks").join(file)).unwrap();
        assert_eq!(detect(&text), Some(format), "{file}");
        let bookmarks = parse(format, &text).unwrap();
        assert!(!bookmarks.is_empty(), "{file}");
        for bookmark in &bookmarks {
            assert!(
                bookmark.url.starts_with("http") || bookmark.url.starts_with("ftp"),
                "{file}: {bookmark:?}"
            );
        }
    }
    let multiline = parse(
        Format::Netscape,
        &std::fs::read_to_string(data.join("bookmarks/netscape/netscape_multiline.htm")).unwrap(),
    )
    .unwrap();
    assert_eq!(multiline.len(), 3);
    assert_eq!(multiline[0].description, "List:\n- item1\n- item2\n- item3");
    assert_eq!(multiline[0].saved_at, Some(1_456_433_741));
    assert_eq!(multiline[0].tags, vec!["multi"]);
    let pinboard = parse(
        Format::Pinboard,
        &std::fs::read_to_string(data.join("bookmarks/services/pinboard_export")).unwrap(),
    )
    .unwrap();
    assert_eq!(pinboard[0].title, "Complexities of an Infinite Scroller");
    assert_eq!(
        pinboard[0].tags,
        vec!["infinite", "dom", "performance", "scroll"]
    );
    let delicious = parse(
        Format::Delicious,
        &std::fs::read_to_string(
            data.join("bookmarks/services/delicious_export.2021.02.06_21.10.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(delicious[0].saved_at, Some(1_358_531_607));
    assert_eq!(
        delicious[0].tags,
        vec!["basket", "javascript", "loader", "localStorage"]
    );
    assert!(detect("").is_none());
}
