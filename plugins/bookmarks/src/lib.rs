//! The bookmarks connector: a person's saved links, from browser and service exports, as
//! assets of kind bookmark.
//!
//! Formats (given per file, or detected from the content): Netscape bookmark HTML as written by
//! browsers and services (parsed with html5ever through `scraper`, which tolerates the format's
//! unclosed `<DT>`/`<DD>`/`<p>`, odd whitespace, multiline descriptions and nesting), Pinboard
//! JSON, Delicious JSON, Pocket CSV and Instapaper CSV (with the `csv` crate).
//!
//! Mapping: the owner (config `owner`) is a person with a `bookmarks` identity. Each distinct
//! URL is one asset (url, title, description as text, tags, created_at from the earliest save)
//! whose `bookmark_count` is the number of times it was saved across the files. The Asset
//! message has no field for who saved it, so the saver is recorded as a tag
//! `saved-by:<handle>` next to the person record.
//!
//! State: exports are small and rewritten whole by the services, so every read parses the files
//! and orders the assets by id; the cursor is the number of assets emitted and a fingerprint of
//! the parsed content. The same content resumes after the count; changed content (a new save
//! changes a count) starts over, which the host's idempotent upserts make harmless.

mod formats;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

pub use crate::formats::{Bookmark, Format, detect, parse};

/// The connector.
#[derive(Debug, Default)]
pub struct BookmarksConnector;

trellis_plugin_sdk::export_connector!(BookmarksConnector);

/// One export file.
#[derive(Debug, Clone, Deserialize)]
pub struct FileConfig {
    pub path: PathBuf,
    /// The format; detected from the content when absent.
    #[serde(default)]
    pub format: Option<Format>,
}

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Deserialize)]
pub struct Config {
    /// The handle of the person who saved the bookmarks.
    pub owner: String,
    pub files: Vec<FileConfig>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    200
}

/// The state slot of the people stream.
pub const PEOPLE: &str = "people";
/// The state slot of the assets stream.
pub const ASSETS: &str = "assets";

/// Where a read stands: assets emitted, of content with this fingerprint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    pub emitted: usize,
    pub fingerprint: String,
}

impl Connector for BookmarksConnector {
    type Config = Config;
    type Reader = BookmarksReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "bookmarks".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::Bookmarking,
            description: "bookmark exports (Netscape HTML, Pinboard, Delicious, Pocket, Instapaper) as assets saved by a person".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["owner", "files"],
                "additionalProperties": false,
                "properties": {
                    "owner": {"type": "string", "minLength": 1, "maxLength": 200, "description": "the handle of the person who saved the bookmarks"},
                    "files": {
                        "type": "array", "minItems": 1,
                        "items": {
                            "type": "object", "required": ["path"], "additionalProperties": false,
                            "properties": {
                                "path": {"type": "string", "minLength": 1, "x-path": true},
                                "format": {"enum": ["netscape", "pinboard", "delicious", "pocket", "instapaper"], "description": "detected from the content when absent"}
                            }
                        }
                    },
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200}
                }
            }),
            streams: vec![
                stream(PEOPLE, RecordKind::Person, "owner"),
                stream(ASSETS, RecordKind::Asset, "position"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let mut total = 0;
        for (index, file) in config.files.iter().enumerate() {
            total += load(file, index)?.len();
        }
        Ok(format!(
            "{} files readable, {total} bookmarks",
            config.files.len()
        ))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<BookmarksReader, ConnectorError> {
        let mut saves = Vec::new();
        for (index, file) in config.files.iter().enumerate() {
            cancel.check()?;
            saves.extend(load(file, index)?);
        }
        let assets = aggregate(&config.owner, saves);
        let fingerprint = fingerprint(&assets);
        let cursor: Cursor = state.get(ASSETS)?.unwrap_or_default();
        let start = if cursor.fingerprint == fingerprint {
            cursor.emitted.min(assets.len())
        } else {
            0
        };
        let owner_done = state.get::<String>(PEOPLE)?.as_deref() == Some(config.owner.as_str());
        Ok(BookmarksReader {
            owner: config.owner,
            owner_done,
            assets,
            next: start,
            fingerprint,
            batch_size: config.batch_size,
            cancel,
        })
    }
}

fn load(file: &FileConfig, index: usize) -> Result<Vec<Bookmark>, ConnectorError> {
    let field = format!("files[{index}].path");
    let bytes = std::fs::read(&file.path).map_err(|error| {
        ConnectorError::config(
            &field,
            format!(
                "cannot read {} ({error}); give the path of a bookmark export",
                file.path.display()
            ),
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let format = match file.format {
        Some(format) => format,
        None => detect(&text).ok_or_else(|| {
            ConnectorError::config(
                format!("files[{index}].format"),
                format!(
                    "cannot tell the format of {}; set format to netscape, pinboard, delicious, pocket or instapaper",
                    file.path.display()
                ),
            )
        })?,
    };
    parse(format, &text).map_err(|problem| {
        ConnectorError::config(
            &field,
            format!(
                "{} is not a {} export: {problem}",
                file.path.display(),
                format.name()
            ),
        )
    })
}

/// An external id for a URL: the URL itself when it fits, else a stable hash of it.
fn asset_id(url: &str) -> String {
    if url.len() <= 240 {
        return url.to_owned();
    }
    // FNV-1a, 64 bits: stable across builds, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in url.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}#{hash:016x}", clip(url, 200))
}

/// One asset per URL, in id order, counting the saves.
fn aggregate(owner: &str, saves: Vec<Bookmark>) -> Vec<pb::Asset> {
    let mut by_url: BTreeMap<String, (Bookmark, u32)> = BTreeMap::new();
    for save in saves {
        let id = asset_id(&save.url);
        match by_url.get_mut(&id) {
            Some((kept, count)) => {
                *count += 1;
                kept.merge(save);
            }
            None => {
                by_url.insert(id, (save, 1));
            }
        }
    }
    let saved_by = format!("saved-by:{owner}");
    by_url
        .into_iter()
        .map(|(id, (bookmark, count))| {
            let mut tags = bookmark.tags;
            tags.truncate(63);
            tags.push(saved_by.clone());
            pb::Asset {
                title: clip(&bookmark.title, 1024),
                text: clip(&bookmark.description, 1 << 20),
                tags,
                bookmark_count: count,
                created_at: bookmark
                    .saved_at
                    .map(|seconds| records::Timestamp { seconds, nanos: 0 }),
                ..records::asset(id, bookmark.url, pb::AssetKind::Bookmark)
            }
        })
        .collect()
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn fingerprint(assets: &[pb::Asset]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for asset in assets {
        let line = format!(
            "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{:?}\n",
            asset.url,
            asset.title,
            asset.text,
            asset.tags.join(","),
            asset.bookmark_count,
            asset.created_at.map(|stamp| stamp.seconds)
        );
        for byte in line.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:016x}-{}", hash, assets.len())
}

/// An open read: the owner, then the assets in id order.
#[derive(Debug)]
pub struct BookmarksReader {
    owner: String,
    owner_done: bool,
    assets: Vec<pb::Asset>,
    next: usize,
    fingerprint: String,
    batch_size: usize,
    cancel: CancelToken,
}

impl Reader for BookmarksReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.cancel.check()?;
        let mut batch = Batch::new();
        if !self.owner_done {
            batch.push(pb::Person {
                display_name: self.owner.clone(),
                identities: vec![records::identity("bookmarks", self.owner.clone(), "")],
                ..records::person(self.owner.clone())
            });
            batch.checkpoint(PEOPLE, &self.owner)?;
            self.owner_done = true;
        }
        while batch.record_count() < self.batch_size && self.next < self.assets.len() {
            batch.push(self.assets[self.next].clone());
            self.next += 1;
        }
        batch.checkpoint(
            ASSETS,
            &Cursor {
                emitted: self.next,
                fingerprint: self.fingerprint.clone(),
            },
        )?;
        if self.next >= self.assets.len() {
            batch.finish();
        }
        Ok(batch)
    }
}
