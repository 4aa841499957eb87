//! The blog connector: syndication feeds (RSS 0.9x/1.0/2.0, Atom, JSON Feed, parsed by
//! `feed-rs`) and WordPress WXR exports (parsed as a stream with quick-xml), read from files or
//! HTTP URLs.
//!
//! Mapping: a feed entry or a WordPress post/page becomes a conversation (platform blog, with its
//! url, title, plain-text body and tags from its categories); its author becomes a person; a WXR
//! comment becomes a post of its entry's conversation (with its parent comment); a WXR
//! attachment becomes an asset. E-mail addresses never leave the connector: only their sha256.
//!
//! State is one slot per configured location (`feed:<location>`), so feeds are independent:
//! - a feed keeps the newest (date, id) it emitted and its HTTP validators (ETag and
//!   Last-Modified). Entries are emitted oldest first, so every checkpoint is a cursor no later
//!   entry shares; the validators are only saved with the checkpoint that ends the feed, so a
//!   resume from the middle refetches the whole body and an unchanged feed costs a 304;
//! - a WXR export keeps the fingerprint of the file (size and modification time) and how many
//!   of its authors and items were consumed, so a resume skips exactly those; a new export is read
//!   from the start, keeping only what changed after the newest date the last export held.
//!
//! The person record of an author is emitted before each of their entries rather than once per
//! read: records are upserts, and emitting it per entry keeps every resume producing exactly
//! the records a full read produced after the same checkpoint.

mod feed;
mod fetch;
mod text;
mod wxr;

use std::collections::VecDeque;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

pub use fetch::Location;

/// The connector; every read lives in its [`BlogReader`].
#[derive(Debug, Default)]
pub struct BlogConnector;

trellis_plugin_sdk::export_connector!(BlogConnector);

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Feed or WXR locations: file paths or http(s) URLs.
    pub feeds: Vec<String>,
    /// Entries per batch, and so between checkpoints.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Seconds an HTTP request may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_batch_size() -> usize {
    100
}

fn default_timeout() -> u64 {
    30
}

/// The name identities carry.
pub const PLATFORM: &str = "blog";

/// The state slot of one location.
pub fn slot_of(location: &str) -> String {
    format!("feed:{location}")
}

/// The state of one location. Feed fields and WXR fields are both optional, so a location keeps
/// one shape of state whatever it turns out to hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlotState {
    /// Feeds: the newest entry emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<EntryCursor>,
    /// Feeds over HTTP: the validators of the body the last complete read saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// WXR: which export file the position belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// WXR: authors and items consumed in that file.
    #[serde(default)]
    pub position: u64,
    /// WXR: the newest date of the export before this one; items and comments not newer are
    /// already stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_millis: Option<i64>,
    /// WXR: whether the export of `fingerprint` was read to its end.
    #[serde(default)]
    pub complete: bool,
    /// WXR: the newest date seen in this export so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_millis: Option<i64>,
}

/// A position in a feed's entries ordered by (date, id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryCursor {
    /// Milliseconds since the epoch; `i64::MIN` for an entry without a date.
    pub at: i64,
    pub id: String,
}

impl Connector for BlogConnector {
    type Config = Config;
    type Reader = BlogReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "blog".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::Blog,
            description: "RSS, Atom and JSON Feed feeds and WordPress WXR exports, from files or HTTP URLs, read incrementally with conditional requests".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["feeds"],
                "additionalProperties": false,
                "properties": {
                    "feeds": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1, "x-path": "or-url"},
                        "description": "feed or WordPress export locations: file paths or http(s) URLs"
                    },
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 600, "default": 30}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "entry"),
                stream("conversations", RecordKind::Conversation, "entry"),
                stream("posts", RecordKind::Post, "entry"),
                stream("assets", RecordKind::Asset, "entry"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let mut lines = Vec::new();
        for (index, raw) in config.feeds.iter().enumerate() {
            let field = format!("feeds[{index}]");
            let location = Location::parse(raw, &field)?;
            let mut body = location.open(&field, config.timeout_secs, &SlotState::default())?;
            let Some(document) = body.take() else {
                continue;
            };
            let detail = if document.is_wxr {
                let summary = wxr::count(document.reader, &field)?;
                format!("{raw}: a WordPress export, {summary}")
            } else {
                let parsed = feed::parse(document.reader, &field, raw)?;
                format!("{raw}: a feed of {} entries", parsed.entries.len())
            };
            lines.push(detail);
        }
        Ok(lines.join("; "))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<BlogReader, ConnectorError> {
        let mut locations = VecDeque::new();
        for (index, raw) in config.feeds.iter().enumerate() {
            let field = format!("feeds[{index}]");
            let location = Location::parse(raw, &field)?;
            let saved: SlotState = state.get(&slot_of(raw))?.unwrap_or_default();
            locations.push_back((field, raw.clone(), location, saved));
        }
        Ok(BlogReader {
            locations,
            current: None,
            batch_size: config.batch_size,
            timeout_secs: config.timeout_secs,
            cancel,
        })
    }
}

/// What is being read now.
enum Current {
    Feed(Box<feed::FeedRead>),
    Wxr(Box<wxr::WxrRead>),
}

impl std::fmt::Debug for Current {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Current::Feed(read) => write!(formatter, "Feed({})", read.slot),
            Current::Wxr(read) => write!(formatter, "Wxr({})", read.slot),
        }
    }
}

/// An open read: the locations still to read, one at a time.
#[derive(Debug)]
pub struct BlogReader {
    locations: VecDeque<(String, String, Location, SlotState)>,
    current: Option<Current>,
    batch_size: usize,
    timeout_secs: u64,
    cancel: CancelToken,
}

impl Reader for BlogReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        let mut batch = Batch::new();
        loop {
            self.cancel.check()?;
            match self.current.as_mut() {
                Some(Current::Feed(read)) => {
                    if read.fill(&mut batch, self.batch_size)? {
                        self.current = None;
                    }
                    return Ok(batch);
                }
                Some(Current::Wxr(read)) => {
                    if read.fill(&mut batch, self.batch_size, &self.cancel)? {
                        self.current = None;
                    }
                    return Ok(batch);
                }
                None => {}
            }
            let Some((field, raw, location, saved)) = self.locations.pop_front() else {
                batch.finish();
                return Ok(batch);
            };
            let slot = slot_of(&raw);
            let mut opened = location.open(&field, self.timeout_secs, &saved)?;
            let Some(document) = opened.take() else {
                // 304 Not Modified: nothing new, the state stands.
                batch.checkpoint(&slot, &saved)?;
                return Ok(batch);
            };
            if document.is_wxr {
                let fingerprint = document.fingerprint.clone();
                self.current = Some(Current::Wxr(Box::new(wxr::WxrRead::open(
                    document.reader,
                    field,
                    slot,
                    fingerprint,
                    saved,
                )?)));
            } else {
                let parsed = feed::parse(document.reader, &field, &raw)?;
                self.current = Some(Current::Feed(Box::new(feed::FeedRead::new(
                    parsed,
                    slot,
                    saved,
                    document.etag,
                    document.last_modified,
                ))));
            }
        }
    }
}

/// The `PathBuf` of a file location, for messages.
pub(crate) fn display_path(path: &std::path::Path) -> String {
    PathBuf::from(path).display().to_string()
}
