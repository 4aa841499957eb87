//! The Mastodon connector: an account's ActivityPub archive (`outbox.json`, an
//! OrderedCollection of activities, and `actor.json`) becomes conversations, posts and the
//! account as a person.
//!
//! It owns the mapping: every thread (the status's `conversation` URI) becomes one
//! conversation, opened by the first of the account's statuses in it; the account's later
//! statuses in the thread become its posts, with the status they answer as parent when the
//! archive holds it. Boosts (`Announce`) are other people's statuses and are skipped. The
//! account is a person outside the community (`member` false). State is the position in the
//! outbox after the last activity read; resuming replays the activities before it without
//! emitting them, so threads opened earlier are known again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

/// The connector; everything of a read lives in its [`OutboxReader`].
#[derive(Debug, Default)]
pub struct MastodonConnector;

trellis_plugin_sdk::export_connector!(MastodonConnector);

/// The name of the platform in identities.
pub const PLATFORM: &str = "mastodon";

/// The state slot of the archive.
pub const STATE_SLOT: &str = "outbox";

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The folder of the archive: `outbox.json` and `actor.json`.
    pub archive_dir: PathBuf,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    200
}

/// Where the next read starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    /// Activities of the outbox already read.
    pub activities: usize,
    /// Whether the account's person record was emitted.
    #[serde(default)]
    pub account: bool,
}

#[derive(Debug, Deserialize)]
struct Activity {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Note {
    id: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "inReplyTo", default)]
    in_reply_to: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(rename = "attributedTo", default)]
    attributed_to: Option<String>,
    #[serde(default)]
    tag: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
}

/// The account of the archive (`actor.json`).
#[derive(Debug, Deserialize)]
pub struct Actor {
    pub id: String,
    #[serde(rename = "preferredUsername", default)]
    pub preferred_username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub published: Option<String>,
}

impl Connector for MastodonConnector {
    type Config = Config;
    type Reader = OutboxReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "mastodon".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::PublicNetwork,
            description: "a Mastodon account's ActivityPub archive (outbox.json and actor.json): its threads, replies and the account, read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["archive_dir"],
                "additionalProperties": false,
                "properties": {
                    "archive_dir": {"type": "string", "minLength": 1, "description": "the folder holding outbox.json and actor.json"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "activities"),
                stream("conversations", RecordKind::Conversation, "activities"),
                stream("posts", RecordKind::Post, "activities"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let actor = read_actor(&config.archive_dir)?;
        let outbox = config.archive_dir.join("outbox.json");
        let size = std::fs::metadata(&outbox)
            .map_err(|error| {
                ConnectorError::config(
                    "archive_dir",
                    format!(
                        "cannot read {} ({error}); give the folder of a Mastodon archive",
                        outbox.display()
                    ),
                )
            })?
            .len();
        Ok(format!(
            "the archive of {} has an outbox of {size} bytes",
            handle(&actor)
        ))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<OutboxReader, ConnectorError> {
        let position: Position = state.get(STATE_SLOT)?.unwrap_or_default();
        let actor = read_actor(&config.archive_dir)?;
        let path = config.archive_dir.join("outbox.json");
        let file = File::open(&path).map_err(|error| {
            ConnectorError::config(
                "archive_dir",
                format!(
                    "cannot open {} ({error}); give the folder of a Mastodon archive",
                    path.display()
                ),
            )
        })?;
        // Real archives repeat keys (the last one counts), which a typed struct refuses.
        let mut outbox: serde_json::Map<String, serde_json::Value> =
            serde_json::from_reader(BufReader::new(file)).map_err(|error| {
                ConnectorError::system(format!(
                    "{}: not an ActivityPub OrderedCollection ({error})",
                    path.display()
                ))
            })?;
        let ordered_items: Vec<Activity> = serde_json::from_value(
            outbox.remove("orderedItems").unwrap_or_default(),
        )
        .map_err(|error| {
            ConnectorError::system(format!(
                "{}: orderedItems is not a list of activities ({error})",
                path.display()
            ))
        })?;
        let mut reader = OutboxReader {
            activities: ordered_items,
            actor,
            position,
            threads: BTreeMap::new(),
            statuses: BTreeSet::new(),
            batch_size: config.batch_size,
            cancel,
        };
        // Replay what was read before, so threads opened then are known now.
        for index in 0..position.activities.min(reader.activities.len()) {
            let _ = reader.record_at(index)?;
        }
        Ok(reader)
    }
}

fn read_actor(dir: &Path) -> Result<Actor, ConnectorError> {
    let path = dir.join("actor.json");
    let file = File::open(&path).map_err(|error| {
        ConnectorError::config(
            "archive_dir",
            format!(
                "cannot open {} ({error}); give the folder of a Mastodon archive (outbox.json and actor.json)",
                path.display()
            ),
        )
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|error| {
        ConnectorError::system(format!(
            "{}: not an ActivityPub actor ({error})",
            path.display()
        ))
    })
}

/// `user@host` of an actor.
pub fn handle(actor: &Actor) -> String {
    let host = actor
        .id
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if host.is_empty() {
        actor.preferred_username.clone()
    } else {
        format!("{}@{host}", actor.preferred_username)
    }
}

/// An open read of an archive.
#[derive(Debug)]
pub struct OutboxReader {
    activities: Vec<Activity>,
    actor: Actor,
    position: Position,
    /// Thread (conversation URI) -> the status that opened it.
    threads: BTreeMap<String, String>,
    /// Statuses of the archive read so far.
    statuses: BTreeSet<String>,
    batch_size: usize,
    cancel: CancelToken,
}

impl Reader for OutboxReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.cancel.check()?;
        let mut batch = Batch::new();
        if !self.position.account {
            batch.push(self.person()?);
            self.position.account = true;
        }
        while batch.record_count() < self.batch_size {
            let index = self.position.activities;
            if index >= self.activities.len() {
                batch.checkpoint(STATE_SLOT, &self.position)?;
                batch.finish();
                return Ok(batch);
            }
            if let Some(record) = self.record_at(index)? {
                batch.push(record);
            }
            self.position.activities = index + 1;
        }
        batch.checkpoint(STATE_SLOT, &self.position)?;
        Ok(batch)
    }
}

impl OutboxReader {
    fn person(&self) -> Result<pb::Person, ConnectorError> {
        Ok(pb::Person {
            display_name: if self.actor.name.trim().is_empty() {
                self.actor.preferred_username.clone()
            } else {
                self.actor.name.clone()
            },
            bio: plain_text(&self.actor.summary),
            member: false,
            identities: vec![records::identity(
                PLATFORM,
                handle(&self.actor),
                self.actor.url.clone(),
            )],
            created_at: self
                .actor
                .published
                .as_deref()
                .map(|value| records::parse_rfc3339(value, "actor.json: published"))
                .transpose()?,
            ..records::person(self.actor.id.clone())
        })
    }

    /// The record of activity `index`, updating the threads known; `None` for a boost or an
    /// activity without a note.
    fn record_at(&mut self, index: usize) -> Result<Option<Record>, ConnectorError> {
        let activity = &self.activities[index];
        if activity.kind != "Create" || !activity.object.is_object() {
            return Ok(None);
        }
        let at = format!("outbox.json: activity {}", index + 1);
        let note: Note = serde_json::from_value(activity.object.clone())
            .map_err(|error| ConnectorError::system(format!("{at}: not a note ({error})")))?;
        let thread = note
            .conversation
            .clone()
            .unwrap_or_else(|| note.in_reply_to.clone().unwrap_or_else(|| note.id.clone()));
        let mut text = plain_text(note.content.as_deref().unwrap_or_default());
        if let Some(warning) = note.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            text = format!("{warning}\n\n{text}");
        }
        let created_at = note
            .published
            .as_deref()
            .map(|value| records::parse_rfc3339(value, &format!("{at}: published")))
            .transpose()?;
        let author = note
            .attributed_to
            .clone()
            .unwrap_or_else(|| self.actor.id.clone());
        self.statuses.insert(note.id.clone());
        let record = match self.threads.get(&thread) {
            None => {
                self.threads.insert(thread.clone(), note.id.clone());
                let tags = note
                    .tag
                    .iter()
                    .filter(|tag| tag.kind == "Hashtag")
                    .map(|tag| tag.name.trim_start_matches('#').to_lowercase())
                    .take(64)
                    .collect();
                let url = note.url.clone().unwrap_or_else(|| note.id.clone());
                let title = title_of(&text);
                pb::Conversation {
                    // A status of media alone has no text: its address names it.
                    title: if title.is_empty() { url.clone() } else { title },
                    url,
                    body: text,
                    tags,
                    author,
                    created_at,
                    last_activity_at: created_at,
                    ..records::conversation(thread, pb::PlatformKind::PublicNetwork)
                }
                .into()
            }
            Some(opener) => {
                let parent = note
                    .in_reply_to
                    .as_ref()
                    .filter(|parent| *parent != opener && self.statuses.contains(*parent))
                    .cloned()
                    .unwrap_or_default();
                pb::Post {
                    author,
                    parent,
                    text,
                    created_at,
                    ..records::post(note.id.clone(), thread)
                }
                .into()
            }
        };
        Ok(Some(record))
    }
}

/// The title of a status: its first line, cut at a word near 80 characters.
fn title_of(text: &str) -> String {
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

/// Plain text of a status's HTML.
pub fn plain_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 10_000)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| html.to_owned())
}
