//! Archive mode: an account's ActivityPub archive (`outbox.json`, an OrderedCollection of
//! activities, and `actor.json`) becomes conversations, posts and the account as a person.
//!
//! Every thread (the status's `conversation` URI) becomes one conversation, opened by the
//! first of the account's statuses in it; the account's later statuses in the thread become its
//! posts, with the status they answer as parent when the archive holds it. Boosts (`Announce`)
//! are other people's statuses and are skipped. The account is a person outside the community
//! (`member` false). `orderedItems` is parsed as a stream on a thread of its own and handed over
//! one activity at a time, so an archive never has to fit in memory.
//!
//! State names the last activity read by its id, not by its place in the outbox: a user who
//! exports the account again later gets an archive whose oldest activities may be pruned and
//! whose newest are new, so a count of activities would point past statuses never read. A
//! resumed read replays the outbox without emitting up to that activity (so threads opened
//! earlier are known again) and goes on after it. When the archive no longer holds it (it was
//! pruned too, or deleted), and for a state of the versions that kept only a count, the whole
//! outbox is read again: that repeats records, never loses one, and upserts keyed by external
//! id make the repeat harmless.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use trellis_plugin_sdk::prelude::*;

use crate::{PLATFORM, plain_text, title_of};

/// The state slot of the archive.
pub const STATE_SLOT: &str = "outbox";

/// Activities parsed ahead of the reader, at most.
const LOOKAHEAD: usize = 256;

/// Where the next read starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    /// Activities of the outbox already read. The versions before [`Position::after`] resumed
    /// at this count; it is still written, for people and for those versions, but a read
    /// resumes after `after` alone.
    pub activities: usize,
    /// Whether the account's person record was emitted.
    #[serde(default)]
    pub account: bool,
    /// The last activity read. `None` only in a state written before it existed: such a state
    /// cannot tell whether the archive changed since, so the read starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<After>,
}

/// The last activity read, by id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct After {
    /// The id of the last activity read that has one (its own `id`, else its object's);
    /// `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Activities without any id read after it (ActivityPub gives every activity an id, so
    /// this stays 0 on real archives).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub then: usize,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

#[derive(Debug, Deserialize)]
struct Activity {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: serde_json::Value,
}

impl Activity {
    /// What names the activity in the state: its id, else its object's (a note's id, or the
    /// address a boost points at).
    fn key(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or_else(|| self.object.get("id").and_then(serde_json::Value::as_str))
            .or_else(|| self.object.as_str())
            .filter(|key| !key.is_empty())
    }
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

/// The identity of an account: `user@instance` names one account on the whole fediverse, and
/// an instance does not give a taken user name to another account (not even once the account
/// is deleted), so it is unique; a bare user name (an actor id without a host) is not.
pub fn account_identity(handle: String, profile_url: String) -> pb::Identity {
    if handle.contains('@') {
        records::unique_identity(PLATFORM, handle, profile_url)
    } else {
        records::identity(PLATFORM, handle, profile_url)
    }
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
    /// The activities of `orderedItems`, in order, from the parsing thread.
    activities: Receiver<Result<serde_json::Value, String>>,
    outbox: PathBuf,
    actor: Actor,
    position: Position,
    /// Whether the outbox has no activity left.
    ended: bool,
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
            let Some(activity) = self.next_activity()? else {
                batch.checkpoint(STATE_SLOT, &self.position)?;
                batch.finish();
                return Ok(batch);
            };
            if let Some(record) = self.record_of(index, &activity)? {
                batch.push(record);
            }
            self.consumed(&activity);
        }
        batch.checkpoint(STATE_SLOT, &self.position)?;
        Ok(batch)
    }
}

impl OutboxReader {
    /// A read of the outbox in `outbox` from its start.
    fn new(
        outbox: PathBuf,
        actor: Actor,
        batch_size: usize,
        cancel: CancelToken,
    ) -> Result<Self, ConnectorError> {
        Ok(OutboxReader {
            activities: stream_activities(&outbox)?,
            outbox,
            actor,
            position: Position {
                after: Some(After::default()),
                ..Position::default()
            },
            ended: false,
            threads: BTreeMap::new(),
            statuses: BTreeSet::new(),
            batch_size,
            cancel,
        })
    }

    /// Moves the position past `activity`, the one just read.
    fn consumed(&mut self, activity: &Activity) {
        self.position.activities += 1;
        let after = self.position.after.get_or_insert_with(After::default);
        match activity.key() {
            Some(key) => {
                after.id = Some(key.to_owned());
                after.then = 0;
            }
            None => after.then += 1,
        }
    }

    /// Replays the outbox without emitting up to and including the activity `after` names, so
    /// that the threads opened before it are known; `false` when the outbox does not hold it.
    fn replay_through(&mut self, after: &After) -> Result<bool, ConnectorError> {
        if let Some(id) = after.id.as_deref() {
            loop {
                self.cancel.check()?;
                let index = self.position.activities;
                let Some(activity) = self.next_activity()? else {
                    return Ok(false);
                };
                let _ = self.record_of(index, &activity)?;
                self.consumed(&activity);
                if activity.key() == Some(id) {
                    break;
                }
            }
        }
        for _ in 0..after.then {
            let index = self.position.activities;
            let Some(activity) = self.next_activity()? else {
                break;
            };
            let _ = self.record_of(index, &activity)?;
            self.consumed(&activity);
        }
        Ok(true)
    }

    fn person(&self) -> Result<pb::Person, ConnectorError> {
        Ok(pb::Person {
            display_name: if self.actor.name.trim().is_empty() {
                self.actor.preferred_username.clone()
            } else {
                self.actor.name.clone()
            },
            bio: plain_text(&self.actor.summary),
            member: false,
            identities: vec![account_identity(
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

    /// The next activity of the outbox, `None` at its end.
    fn next_activity(&mut self) -> Result<Option<Activity>, ConnectorError> {
        if self.ended {
            return Ok(None);
        }
        match self.activities.recv() {
            Ok(Ok(value)) => serde_json::from_value(value).map(Some).map_err(|error| {
                ConnectorError::system(format!(
                    "{}: activity {} is not an activity ({error})",
                    self.outbox.display(),
                    self.position.activities + 1
                ))
            }),
            Ok(Err(message)) => Err(ConnectorError::system(format!(
                "{}: not an ActivityPub OrderedCollection ({message})",
                self.outbox.display()
            ))),
            Err(_) => {
                self.ended = true;
                Ok(None)
            }
        }
    }

    /// The record of activity `index`, updating the threads known; `None` for a boost or an
    /// activity without a note.
    fn record_of(
        &mut self,
        index: usize,
        activity: &Activity,
    ) -> Result<Option<Record>, ConnectorError> {
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

/// Checks that `dir` holds an archive; the line for people.
pub fn check(dir: &Path) -> Result<String, ConnectorError> {
    let actor = read_actor(dir)?;
    let outbox = dir.join("outbox.json");
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

/// Opens a read of the archive in `dir` after `state`.
pub fn open(
    dir: &Path,
    batch_size: usize,
    state: &State,
    cancel: CancelToken,
) -> Result<OutboxReader, ConnectorError> {
    let saved: Position = state.get(STATE_SLOT)?.unwrap_or_default();
    let path = dir.join("outbox.json");
    let mut reader = OutboxReader::new(path.clone(), read_actor(dir)?, batch_size, cancel.clone())?;
    // No state, or one of the versions that counted activities: a read from the start.
    let Some(after) = saved.after else {
        return Ok(reader);
    };
    reader.position.account = saved.account;
    if reader.replay_through(&after)? {
        return Ok(reader);
    }
    // The last activity read is gone from the archive: read all it holds again.
    let mut again = OutboxReader::new(path, read_actor(dir)?, batch_size, cancel)?;
    again.position.account = saved.account;
    Ok(again)
}

/// Parses `orderedItems` of the outbox on a thread of its own, sending each activity as it is
/// read; an error ends the stream with its message. The thread stops when the reader is gone.
///
/// Real archives repeat the key (an empty list first), and the last one counts: a first pass
/// skims the file counting them without keeping anything, the second streams the last.
fn stream_activities(
    path: &Path,
) -> Result<Receiver<Result<serde_json::Value, String>>, ConnectorError> {
    let open = |path: &Path| {
        File::open(path).map_err(|error| {
            ConnectorError::config(
                "archive_dir",
                format!(
                    "cannot open {} ({error}); give the folder of a Mastodon archive",
                    path.display()
                ),
            )
        })
    };
    let (first, second) = (open(path)?, open(path)?);
    let (sender, receiver) = sync_channel(LOOKAHEAD);
    std::thread::Builder::new()
        .name("mastodon-outbox".to_owned())
        .spawn(move || {
            let pass = |file: File, stream: Option<usize>| {
                let mut deserializer = serde_json::Deserializer::from_reader(BufReader::new(file));
                let count = OutboxSeed {
                    sender: &sender,
                    stream,
                }
                .deserialize(&mut deserializer)?;
                deserializer.end()?;
                Ok::<usize, serde_json::Error>(count)
            };
            let outcome = pass(first, None).and_then(|count| match count.checked_sub(1) {
                Some(last) => pass(second, Some(last)),
                None => Ok(0),
            });
            if let Err(error) = outcome
                && !error.to_string().starts_with(READER_GONE)
            {
                let _ = sender.send(Err(error.to_string()));
            }
        })
        .map_err(|error| {
            ConnectorError::system(format!("cannot start the outbox parser ({error})"))
        })?;
    Ok(receiver)
}

/// Why the parser stops early: nobody reads any more.
const READER_GONE: &str = "the reader of the outbox is gone";

type Sender<'a> = &'a SyncSender<Result<serde_json::Value, String>>;

/// The outbox object: counts its `orderedItems` keys and streams the one numbered `stream`
/// (from 0); everything else is skipped unread.
struct OutboxSeed<'a> {
    sender: Sender<'a>,
    stream: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for OutboxSeed<'_> {
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OutboxSeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ActivityPub OrderedCollection object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key != "orderedItems" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if self.stream == Some(count) {
                map.next_value_seed(ItemsSeed {
                    sender: self.sender,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            count += 1;
        }
        Ok(count)
    }
}

/// `orderedItems`: each element is sent on as soon as it is parsed.
struct ItemsSeed<'a> {
    sender: Sender<'a>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of activities")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // A value first: real archives repeat keys (the last one counts), which a typed
        // struct refuses.
        while let Some(activity) = seq.next_element::<serde_json::Value>()? {
            if self.sender.send(Ok(activity)).is_err() {
                return Err(A::Error::custom(READER_GONE));
            }
        }
        Ok(())
    }
}
