//! The Mastodon connector: statuses, their threads and their authors, read either from the
//! REST API of an instance or from an account's ActivityPub archive.
//!
//! It owns the mapping of both sources to people, conversations and posts: a status that
//! opens a thread is a conversation, the statuses answering it are its posts, and accounts are
//! people (outside the community, `member` false) with a `mastodon` identity whose handle,
//! `user@instance`, is marked unique (one account, never reused). Statuses and
//! people are keyed by their ActivityPub ids (`uri`), so both modes name the same status alike.
//! [`rest`] reads timelines over HTTP with `min_id` cursors; [`archive`] streams an
//! `outbox.json`. Which one runs follows from the config: `base_url` or `archive_dir`.

pub mod archive;
pub mod rest;

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

pub use archive::{Actor, OutboxReader, Position, handle};
pub use rest::RestReader;

/// The connector; everything of a read lives in its [`MastodonReader`].
#[derive(Debug, Default)]
pub struct MastodonConnector;

trellis_plugin_sdk::export_connector!(MastodonConnector);

/// The name of the platform in identities.
pub const PLATFORM: &str = "mastodon";

pub use archive::STATE_SLOT;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Archive mode: the folder of the archive, `outbox.json` and `actor.json`.
    #[serde(default)]
    pub archive_dir: Option<PathBuf>,
    /// REST mode: the instance, e.g. `https://mastodon.social`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// A bearer token, for instances that require one for timelines.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Accounts whose statuses to read: ids, or `acct` handles (`user` or `user@host`).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Hashtags whose timelines to read, without `#`.
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// The public timeline, when set.
    #[serde(default)]
    pub public: Option<PublicTimeline>,
    /// Statuses per request (Mastodon serves at most 40).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Archive mode: records per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

/// Which part of the public timeline to read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct PublicTimeline {
    /// Only statuses of the instance's own accounts.
    #[serde(default)]
    pub local: bool,
    /// Only statuses of other instances' accounts.
    #[serde(default)]
    pub remote: bool,
}

fn default_batch_size() -> usize {
    200
}

fn default_page_size() -> u32 {
    40
}

fn default_timeout_secs() -> u64 {
    30
}

/// A read of either mode.
#[derive(Debug)]
pub enum MastodonReader {
    Archive(Box<OutboxReader>),
    Rest(Box<RestReader>),
}

impl Reader for MastodonReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        match self {
            MastodonReader::Archive(reader) => reader.next_batch(),
            MastodonReader::Rest(reader) => reader.next_batch(),
        }
    }
}

/// The mode a config asks for.
enum Mode<'a> {
    Archive(&'a std::path::Path),
    Rest,
}

fn mode(config: &Config) -> Result<Mode<'_>, ConnectorError> {
    match (&config.archive_dir, &config.base_url) {
        (Some(dir), None) => Ok(Mode::Archive(dir)),
        (None, Some(_)) => Ok(Mode::Rest),
        (Some(_), Some(_)) => Err(ConnectorError::config(
            "base_url",
            "give either base_url (the REST API) or archive_dir (an archive), not both",
        )),
        (None, None) => Err(ConnectorError::config(
            "base_url",
            "give base_url (an instance such as https://mastodon.social) or archive_dir (the folder of an archive)",
        )),
    }
}

impl Connector for MastodonConnector {
    type Config = Config;
    type Reader = MastodonReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "mastodon".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::PublicNetwork,
            description: "Mastodon: account, hashtag and public timelines over the REST API (min_id cursors), or an account's ActivityPub archive (outbox.json and actor.json), read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "additionalProperties": false,
                "oneOf": [
                    {"required": ["base_url"]},
                    {"required": ["archive_dir"]}
                ],
                "properties": {
                    "base_url": {"type": "string", "minLength": 1, "description": "REST mode: the instance, e.g. https://mastodon.social"},
                    "access_token": {"type": "string", "minLength": 1, "writeOnly": true, "description": "REST mode: a bearer token, when the instance requires one (a secret: sealed at rest, never shown)"},
                    "accounts": {"type": "array", "items": {"type": "string", "minLength": 1}, "description": "REST mode: account ids or acct handles (user or user@host) whose statuses to read"},
                    "hashtags": {"type": "array", "items": {"type": "string", "minLength": 1}, "description": "REST mode: hashtags (without #) whose timelines to read"},
                    "public": {
                        "type": "object",
                        "additionalProperties": false,
                        "description": "REST mode: read the public timeline, only local or only remote statuses when set",
                        "properties": {"local": {"type": "boolean"}, "remote": {"type": "boolean"}}
                    },
                    "page_size": {"type": "integer", "minimum": 1, "maximum": 40, "default": 40},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 600, "default": 30},
                    "archive_dir": {"type": "string", "minLength": 1, "x-path": true, "description": "archive mode: the folder holding outbox.json and actor.json"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "id"),
                stream("conversations", RecordKind::Conversation, "id"),
                stream("posts", RecordKind::Post, "id"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        match mode(config)? {
            Mode::Archive(dir) => archive::check(dir),
            Mode::Rest => rest::check(config),
        }
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<MastodonReader, ConnectorError> {
        match mode(&config)? {
            Mode::Archive(dir) => Ok(MastodonReader::Archive(Box::new(archive::open(
                dir,
                config.batch_size,
                &state,
                cancel,
            )?))),
            Mode::Rest => Ok(MastodonReader::Rest(Box::new(rest::open(
                &config, &state, cancel,
            )?))),
        }
    }
}

/// The title of a status: its first line, cut at a word near 80 characters.
pub fn title_of(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim();
    if line.chars().count() <= 80 {
        return line.to_owned();
    }
    let cut: String = line.chars().take(80).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// Plain text of a status's HTML: the literal text, links and hashtags without brackets.
pub fn plain_text(html: &str) -> String {
    html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .string_from_read(html.as_bytes(), 10_000)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| html.to_owned())
}
