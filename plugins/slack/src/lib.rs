//! The Slack connector: a workspace export (the folder Slack's export produces, or its zip)
//! read as people, conversations, posts and assets.
//!
//! Mapping:
//! - `users.json`: every user is a person (handle, display and real name, title as bio, hashed
//!   e-mail); users of the workspace are members, except deleted users and bots.
//! - a top-level message with replies (`thread_ts == ts` and replies) opens a *thread
//!   conversation*; it and its replies are its posts. An opener that is not talk still opens the
//!   conversation but is no post: a deleted one (Slack keeps a `tombstone` in its place while
//!   replies remain) gives a conversation titled so that a reader knows the first message was
//!   deleted, a channel event (a join) its own text. A reply whose opener the export does not
//!   hold at all is talk of its channel-day, so no post names a conversation that is never
//!   emitted. The opener of a reply on a later day is looked up in the day files around its
//!   `ts` (day files are cut in the workspace's time zone), so a resumed read finds it too.
//! - the other messages of a channel are grouped by *channel-day*: one conversation per channel
//!   and day file, whose posts are that day's messages and whose body is the day's first
//!   message. Why channel-day and not one conversation per message: unthreaded chat is a run of
//!   short lines that answer each other; a single line is too short to be matched to the
//!   strategy with evidence, and recommending "join this one-line message" is useless. A day of a
//!   channel is the unit people read back and the unit the export is cut into, so it is also a
//!   unit the state can resume at exactly. The conversation is open while the channel is not
//!   archived (anyone can still post there).
//! - shared files and link previews become assets (never the private download URLs, which carry
//!   tokens); join/leave/topic and other channel events are skipped.
//! - Slack markup becomes plain text: `<@U123>` the person's @handle, `<#C1|name>` #name,
//!   `<url|label>` the label (the URL alone when there is none), `<!here>` @here, `:emoji:` the
//!   emoji (custom emoji, which have no Unicode form, are dropped), `&amp;` and friends decoded.
//!
//! State: the slot `users` (the digest of users.json and how many users were emitted) and one
//! slot per channel, `channel:<id>`: the last day file and the last message `ts` emitted in it,
//! and whether that day file was finished. A checkpoint follows every batch, so a resume skips
//! exactly the messages before it; a newer export that adds messages to the last day re-emits
//! that day's conversation (an upsert with a later last activity) and the new messages only.

mod export;
mod markup;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use trellis_plugin_sdk::prelude::*;

use export::Export;
pub use markup::to_plain_text;

/// The connector; every read lives in its [`SlackReader`].
#[derive(Debug, Default)]
pub struct SlackConnector;

trellis_plugin_sdk::export_connector!(SlackConnector);

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The export: a folder or a .zip file.
    pub path: PathBuf,
    /// The workspace's address (e.g. `https://example.slack.com`), for profile and message URLs.
    #[serde(default)]
    pub workspace_url: Option<String>,
    /// Messages per batch, and so between checkpoints.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    200
}

/// The name identities carry.
pub const PLATFORM: &str = "slack";

/// The state slot of the users.
pub const USERS_SLOT: &str = "users";

/// The state slot of a channel.
pub fn channel_slot(channel_id: &str) -> String {
    format!("channel:{channel_id}")
}

/// The state of the users.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsersState {
    /// sha256 of users.json: a changed file is emitted again.
    pub digest: String,
    /// Users emitted from it.
    pub position: usize,
}

/// The state of one channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelState {
    /// The last day file (`YYYY-MM-DD`) emitted from.
    pub day: String,
    /// The `ts` of the last message emitted from it.
    pub ts: String,
    /// Whether that day file was read to its end.
    pub complete: bool,
}

impl Connector for SlackConnector {
    type Config = Config;
    type Reader = SlackReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "slack".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::Chat,
            description: "a Slack workspace export (folder or zip): users, channels, threads and messages, read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["path"],
                "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "x-path": true, "description": "the export folder or its .zip file"},
                    "workspace_url": {"type": "string", "pattern": "^https?://", "description": "the workspace's address, e.g. https://example.slack.com"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "user"),
                stream("conversations", RecordKind::Conversation, "ts"),
                stream("posts", RecordKind::Post, "ts"),
                stream("assets", RecordKind::Asset, "ts"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let mut export = Export::open(&config.path)?;
        let users = parse_users(&export.read("users.json")?)?;
        let channels = parse_channels(&export.read("channels.json")?)?;
        let mut days = 0;
        for channel in &channels {
            days += export.day_files(&channel.name).len();
        }
        Ok(format!(
            "{}: {} users, {} channels, {days} day files",
            config.path.display(),
            users.len(),
            channels.len()
        ))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<SlackReader, ConnectorError> {
        let mut export = Export::open(&config.path)?;
        let users_bytes = export.read("users.json")?;
        let digest = hex(&Sha256::digest(&users_bytes));
        let users = parse_users(&users_bytes)?;
        let channels = parse_channels(&export.read("channels.json")?)?;
        let saved_users: UsersState = state.get(USERS_SLOT)?.unwrap_or_default();
        let users_position = if saved_users.digest == digest {
            saved_users.position
        } else {
            0
        };
        let handles = users
            .iter()
            .map(|user| (user.id.clone(), user.name.clone()))
            .collect();
        let channel_names = channels
            .iter()
            .map(|channel| (channel.id.clone(), channel.name.clone()))
            .collect();
        let mut pending = VecDeque::new();
        for channel in channels {
            let saved: ChannelState = state.get(&channel_slot(&channel.id))?.unwrap_or_default();
            pending.push_back((channel, saved));
        }
        Ok(SlackReader {
            export,
            workspace_url: config
                .workspace_url
                .map(|url| url.trim_end_matches('/').to_owned()),
            batch_size: config.batch_size,
            cancel,
            users,
            users_state: UsersState {
                digest,
                position: users_position,
            },
            names: markup::Names {
                users: handles,
                channels: channel_names,
            },
            pending,
            current: None,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A user of users.json, as far as the connector reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub profile: Profile,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A channel of channels.json.
#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub topic: Option<Titled>,
    #[serde(default)]
    pub purpose: Option<Titled>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Titled {
    #[serde(default)]
    pub value: String,
}

fn parse_users(bytes: &[u8]) -> Result<Vec<User>, ConnectorError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ConnectorError::config(
            "path",
            format!(
                "users.json of the export does not parse ({error}); give an unmodified Slack export"
            ),
        )
    })
}

fn parse_channels(bytes: &[u8]) -> Result<Vec<Channel>, ConnectorError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ConnectorError::config(
            "path",
            format!("channels.json of the export does not parse ({error}); give an unmodified Slack export"),
        )
    })
}

/// A message of a day file.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub text: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub reply_count: Option<u32>,
    #[serde(default)]
    pub replies: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub latest_reply: Option<String>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub file: Option<File>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub comment: Option<FileComment>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reaction {
    #[serde(default)]
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct File {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub permalink: Option<String>,
    #[serde(default)]
    pub mimetype: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub title_link: Option<String>,
    #[serde(default)]
    pub from_url: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileComment {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub comment: String,
}

/// Subtypes that are people talking; the others are channel events (joins, topics, pins).
const KEPT_SUBTYPES: &[&str] = &[
    "file_share",
    "file_comment",
    "bot_message",
    "thread_broadcast",
    "me_message",
    "reply_broadcast",
];

impl Message {
    fn is_talk(&self) -> bool {
        self.subtype
            .as_deref()
            .is_none_or(|subtype| KEPT_SUBTYPES.contains(&subtype))
    }

    fn is_tombstone(&self) -> bool {
        self.subtype.as_deref() == Some("tombstone")
    }

    fn opens_thread(&self) -> bool {
        self.thread_ts.as_deref() == Some(self.ts.as_str())
            && (self.reply_count.unwrap_or(0) > 0
                || self.replies.as_ref().is_some_and(|r| !r.is_empty()))
    }

    fn is_reply(&self) -> bool {
        self.thread_ts
            .as_deref()
            .is_some_and(|thread| thread != self.ts)
    }

    fn author(&self) -> String {
        if self.subtype.as_deref() == Some("file_comment")
            && let Some(user) = self.comment.as_ref().and_then(|c| c.user.clone())
        {
            return user;
        }
        match (&self.user, &self.bot_id) {
            (Some(user), _) if !user.is_empty() => user.clone(),
            (_, Some(bot)) => format!("bot:{bot}"),
            _ => String::new(),
        }
    }
}

/// `ts` ("1433558319.000002") as a timestamp and a sortable key.
pub fn parse_ts(ts: &str) -> Option<(i64, u32)> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, "0"));
    let seconds: i64 = seconds.parse().ok()?;
    let mut micros = fraction.to_owned();
    micros.truncate(6);
    while micros.len() < 6 {
        micros.push('0');
    }
    Some((seconds, micros.parse().ok()?))
}

fn timestamp_of(ts: &str) -> Option<records::Timestamp> {
    parse_ts(ts).map(|(seconds, micros)| records::Timestamp {
        seconds,
        nanos: i32::try_from(micros * 1000).unwrap_or(0),
    })
}

fn ts_key(ts: &str) -> (i64, u32) {
    parse_ts(ts).unwrap_or((i64::MIN, 0))
}

/// How a thread opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opener {
    /// Talk: the opener is the first post of its thread.
    Talk,
    /// A tombstone or a channel event: the thread's conversation, but no post.
    Silent,
}

/// What a message becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It opens a thread: the thread's conversation, and a post when it is talk.
    Opens(Opener),
    /// A reply in a thread whose opener the export holds.
    Replies(Opener),
    /// A post of its channel-day: unthreaded talk, and replies whose opener is not in the export.
    Day,
}

/// The channel being read: its day files and the day in hand.
#[derive(Debug)]
struct ChannelRead {
    channel: Channel,
    state: ChannelState,
    days: VecDeque<String>,
    /// Every day file of the channel, oldest first, for looking up the openers of threads.
    all_days: Vec<String>,
    /// Day files whose thread openers are in `openers`.
    scanned: HashSet<String>,
    /// Thread `ts` -> how it opens, for the threads of the scanned days.
    openers: HashMap<String, Opener>,
    /// The day in hand: its messages after the cursor, oldest first, with what each becomes.
    messages: VecDeque<(Message, Role)>,
    day: String,
}

impl ChannelRead {
    fn scan(&mut self, day: &str, messages: &[Message]) {
        if !self.scanned.insert(day.to_owned()) {
            return;
        }
        for message in messages.iter().filter(|m| m.opens_thread()) {
            let opener = if message.is_talk() {
                Opener::Talk
            } else {
                Opener::Silent
            };
            self.openers.insert(message.ts.clone(), opener);
        }
    }

    /// How thread `thread_ts` opens, `None` when the export does not hold its opener. The
    /// opener is older than its replies, so it is in the day `before` (inclusive) or earlier,
    /// and in the file of its UTC date or of a day next to it.
    fn opener_of(
        &mut self,
        export: &mut Export,
        thread_ts: &str,
        before: &str,
    ) -> Result<Option<Opener>, ConnectorError> {
        if let Some(opener) = self.openers.get(thread_ts) {
            return Ok(Some(*opener));
        }
        let Some(utc_day) = parse_ts(thread_ts).and_then(|(seconds, _)| julian_day_of(seconds))
        else {
            return Ok(None);
        };
        let candidates: Vec<String> = self
            .all_days
            .iter()
            .filter(|day| day.as_str() <= before && !self.scanned.contains(day.as_str()))
            .filter(|day| julian_day(day).is_some_and(|number| (number - utc_day).abs() <= 1))
            .cloned()
            .collect();
        for day in candidates {
            let messages = read_day(export, &self.channel, &day)?;
            self.scan(&day, &messages);
        }
        Ok(self.openers.get(thread_ts).copied())
    }

    /// What `message` of `day` becomes; `None` for channel events.
    fn role_of(
        &mut self,
        export: &mut Export,
        day: &str,
        message: &Message,
    ) -> Result<Option<Role>, ConnectorError> {
        if message.opens_thread() {
            let opener = if message.is_talk() {
                Opener::Talk
            } else {
                Opener::Silent
            };
            return Ok(Some(Role::Opens(opener)));
        }
        if !message.is_talk() {
            return Ok(None);
        }
        let Some(thread) = message.thread_ts.as_deref().filter(|_| message.is_reply()) else {
            return Ok(Some(Role::Day));
        };
        Ok(Some(match self.opener_of(export, thread, day)? {
            Some(opener) => Role::Replies(opener),
            None => Role::Day,
        }))
    }
}

/// The Julian day number of a day file's name (`YYYY-MM-DD`).
fn julian_day(day: &str) -> Option<i32> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format)
        .ok()
        .map(time::Date::to_julian_day)
}

/// The Julian day number of a time, in UTC.
fn julian_day_of(seconds: i64) -> Option<i32> {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(|at| at.date().to_julian_day())
}

/// The messages of a day file of `channel`, oldest first.
fn read_day(
    export: &mut Export,
    channel: &Channel,
    day: &str,
) -> Result<Vec<Message>, ConnectorError> {
    let name = format!("{}/{day}.json", channel.name);
    let bytes = export.read(&name)?;
    let mut messages: Vec<Message> = serde_json::from_slice(&bytes).map_err(|error| {
        ConnectorError::config(
            "path",
            format!(
                "{name} of the export does not parse ({error}); give an unmodified Slack export"
            ),
        )
    })?;
    messages.sort_by_key(|message| ts_key(&message.ts));
    Ok(messages)
}

/// An open read: users first, then channel after channel, day after day.
#[derive(Debug)]
pub struct SlackReader {
    export: Export,
    workspace_url: Option<String>,
    batch_size: usize,
    cancel: CancelToken,
    users: Vec<User>,
    users_state: UsersState,
    names: markup::Names,
    pending: VecDeque<(Channel, ChannelState)>,
    current: Option<ChannelRead>,
}

impl Reader for SlackReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        let mut batch = Batch::new();
        if self.users_state.position < self.users.len() {
            let end = (self.users_state.position + self.batch_size).min(self.users.len());
            for user in &self.users[self.users_state.position..end] {
                batch.push(self.person(user));
            }
            self.users_state.position = end;
            batch.checkpoint(USERS_SLOT, &self.users_state)?;
            return Ok(batch);
        }
        let mut emitted = 0;
        loop {
            self.cancel.check()?;
            if self.current.is_none() {
                let Some((channel, saved)) = self.pending.pop_front() else {
                    batch.checkpoint(USERS_SLOT, &self.users_state)?;
                    batch.finish();
                    return Ok(batch);
                };
                let all_days = self.export.day_files(&channel.name);
                let days: VecDeque<String> = all_days
                    .iter()
                    .filter(|day| saved.day.is_empty() || **day >= saved.day)
                    .cloned()
                    .collect();
                self.current = Some(ChannelRead {
                    channel,
                    state: saved,
                    days,
                    all_days,
                    scanned: HashSet::new(),
                    openers: HashMap::new(),
                    messages: VecDeque::new(),
                    day: String::new(),
                });
            }
            let read = self.current.as_mut().expect("set above");
            if read.messages.is_empty() {
                if !read.day.is_empty() {
                    // The day in hand is done.
                    read.state.complete = true;
                    read.day.clear();
                    batch.checkpoint(&channel_slot(&read.channel.id), &read.state)?;
                    if emitted >= self.batch_size {
                        return Ok(batch);
                    }
                }
                let Some(day) = read.days.pop_front() else {
                    let slot = channel_slot(&read.channel.id);
                    batch.checkpoint(&slot, &read.state)?;
                    self.current = None;
                    continue;
                };
                let messages = read_day(&mut self.export, &read.channel, &day)?;
                read.scan(&day, &messages);
                let mut kept: Vec<(Message, Role)> = Vec::with_capacity(messages.len());
                for message in messages {
                    if let Some(role) = read.role_of(&mut self.export, &day, &message)? {
                        kept.push((message, role));
                    }
                }
                let resuming_day = day == read.state.day;
                let after = resuming_day.then(|| ts_key(&read.state.ts));
                let day_talk: Vec<&Message> = kept
                    .iter()
                    .filter(|(_, role)| *role == Role::Day)
                    .map(|(message, _)| message)
                    .collect();
                let fresh: VecDeque<(Message, Role)> = kept
                    .iter()
                    .filter(|(m, _)| after.is_none_or(|after| ts_key(&m.ts) > after))
                    .cloned()
                    .collect();
                // The channel-day conversation is emitted with its first new message: on a new
                // day, or on a finished day that a newer export extended.
                let emit_day = fresh.iter().any(|(_, role)| *role == Role::Day)
                    && (!resuming_day || read.state.complete);
                if emit_day {
                    let conversation = day_conversation(
                        &read.channel,
                        &day,
                        &day_talk,
                        &self.names,
                        self.workspace_url.as_deref(),
                    );
                    batch.push(conversation);
                }
                if !resuming_day {
                    read.state.ts.clear();
                }
                read.state.day = day.clone();
                read.state.complete = false;
                read.day = day;
                read.messages = fresh;
                if read.messages.is_empty() {
                    // A day of channel events only: done at once.
                    read.state.complete = true;
                    read.day.clear();
                    batch.checkpoint(&channel_slot(&read.channel.id), &read.state)?;
                }
                continue;
            }
            while emitted < self.batch_size {
                let Some((message, role)) = read.messages.pop_front() else {
                    break;
                };
                let day = read.day.clone();
                emit_message(
                    &mut batch,
                    &read.channel,
                    &day,
                    &message,
                    role,
                    &self.names,
                    self.workspace_url.as_deref(),
                );
                read.state.ts = message.ts.clone();
                emitted += 1;
            }
            if emitted >= self.batch_size {
                if read.messages.is_empty() {
                    read.state.complete = true;
                    read.day.clear();
                }
                batch.checkpoint(&channel_slot(&read.channel.id), &read.state)?;
                return Ok(batch);
            }
        }
    }
}

impl SlackReader {
    fn person(&self, user: &User) -> pb::Person {
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let display_name = nonempty(&user.profile.display_name)
            .or_else(|| nonempty(&user.profile.real_name))
            .or_else(|| nonempty(&user.real_name))
            .unwrap_or_else(|| user.name.clone());
        let profile_url = self
            .workspace_url
            .as_ref()
            .map(|url| format!("{url}/team/{}", user.id))
            .unwrap_or_default();
        let email_sha256 = user
            .profile
            .email
            .as_deref()
            .map(|email| email.trim().to_lowercase())
            .filter(|email| !email.is_empty())
            .map(|email| hex(&Sha256::digest(email.as_bytes())))
            .unwrap_or_default();
        pb::Person {
            display_name,
            bio: user.profile.title.clone().unwrap_or_default(),
            member: !user.deleted && !user.is_bot,
            // The user name is unique only inside one Slack workspace, and a freed name is
            // taken again, so it is no unique handle of "slack"; the profile URL (workspace and
            // user id) and the e-mail hash are what identify the person.
            identities: vec![pb::Identity {
                email_sha256,
                ..records::identity(PLATFORM, user.name.clone(), profile_url)
            }],
            ..records::person(user.id.clone())
        }
    }
}

/// Title and body limits of the core.
const MAX_TITLE: usize = 1024;
const MAX_TEXT: usize = 1024 * 1024;
/// Words of a message used as the title of its thread.
const TITLE_WORDS: usize = 16;

fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn title_of(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut title = words[..words.len().min(TITLE_WORDS)].join(" ");
    if words.len() > TITLE_WORDS {
        title.push('…');
    }
    title
}

fn message_text(message: &Message, names: &markup::Names) -> String {
    let raw = match (&message.subtype, &message.comment) {
        (Some(subtype), Some(comment)) if subtype == "file_comment" => comment.comment.as_str(),
        _ => message.text.as_str(),
    };
    to_plain_text(raw, names)
}

fn message_url(base: Option<&str>, channel: &Channel, ts: &str) -> String {
    base.map(|url| format!("{url}/archives/{}/p{}", channel.id, ts.replace('.', "")))
        .unwrap_or_default()
}

fn day_id(channel: &Channel, day: &str) -> String {
    format!("{}:{day}", channel.id)
}

fn thread_id(channel: &Channel, thread_ts: &str) -> String {
    format!("{}:thread:{thread_ts}", channel.id)
}

fn post_id(channel: &Channel, ts: &str) -> String {
    format!("{}:{ts}", channel.id)
}

fn day_conversation(
    channel: &Channel,
    day: &str,
    talk: &[&Message],
    names: &markup::Names,
    base: Option<&str>,
) -> pb::Conversation {
    let first = talk.first().expect("a day conversation has a message");
    let last = talk.last().expect("a day conversation has a message");
    let body = message_text(first, names);
    let tags = vec![channel.name.clone()];
    pb::Conversation {
        url: message_url(base, channel, &first.ts),
        title: truncate(format!("#{} on {day}", channel.name), MAX_TITLE),
        body: truncate(body, MAX_TEXT),
        tags,
        author: first.author(),
        open: !channel.is_archived,
        created_at: timestamp_of(&first.ts),
        last_activity_at: timestamp_of(&last.ts),
        ..records::conversation(day_id(channel, day), pb::PlatformKind::Chat)
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one message's context; a struct for a single call adds nothing"
)]
fn emit_message(
    batch: &mut Batch,
    channel: &Channel,
    day: &str,
    message: &Message,
    role: Role,
    names: &markup::Names,
    base: Option<&str>,
) {
    // A deleted opener's text is Slack's placeholder, and its author Slackbot.
    let deleted = message.is_tombstone();
    let text = if deleted {
        String::new()
    } else {
        message_text(message, names)
    };
    let author = if deleted {
        String::new()
    } else {
        message.author()
    };
    if author.starts_with("bot:") {
        // Bots have no entry in users.json: their messages name them.
        batch.push(pb::Person {
            display_name: message.username.clone().unwrap_or_else(|| author.clone()),
            ..records::person(author.clone())
        });
    }
    let (conversation, parent) = match role {
        Role::Opens(opener) => {
            let id = thread_id(channel, &message.ts);
            let title = if deleted {
                format!(
                    "thread in #{} (its first message was deleted)",
                    channel.name
                )
            } else if text.is_empty() {
                format!("thread in #{}", channel.name)
            } else {
                title_of(&text)
            };
            batch.push(pb::Conversation {
                url: message_url(base, channel, &message.ts),
                title: truncate(title, MAX_TITLE),
                body: truncate(text.clone(), MAX_TEXT),
                tags: vec![channel.name.clone()],
                author: author.clone(),
                open: !channel.is_archived,
                created_at: timestamp_of(&message.ts),
                last_activity_at: timestamp_of(
                    message.latest_reply.as_deref().unwrap_or(&message.ts),
                ),
                ..records::conversation(id.clone(), pb::PlatformKind::Chat)
            });
            if opener == Opener::Silent {
                return;
            }
            (id, String::new())
        }
        Role::Replies(opener) => {
            let thread = message.thread_ts.as_deref().unwrap_or(&message.ts);
            let parent = match opener {
                Opener::Talk => post_id(channel, thread),
                Opener::Silent => String::new(),
            };
            (thread_id(channel, thread), parent)
        }
        Role::Day => (day_id(channel, day), String::new()),
    };
    batch.push(pb::Post {
        author,
        parent,
        created_at: timestamp_of(&message.ts),
        text: truncate(text, MAX_TEXT),
        reactions: message.reactions.iter().map(|r| r.count).sum(),
        ..records::post(post_id(channel, &message.ts), conversation)
    });
    for file in message.file.iter().chain(message.files.iter()) {
        let Some(url) = file
            .permalink
            .as_deref()
            .map(|u| u.split('?').next().unwrap_or(u).to_owned())
        else {
            continue;
        };
        let title = file
            .title
            .clone()
            .or_else(|| file.name.clone())
            .unwrap_or_default();
        let kind = match file.mimetype.as_deref() {
            Some(mime) if mime.starts_with("video/") => pb::AssetKind::Video,
            _ => pb::AssetKind::Doc,
        };
        batch.push(pb::Asset {
            title: truncate(title, MAX_TITLE),
            tags: vec![channel.name.clone()],
            created_at: file
                .created
                .map(|seconds| records::Timestamp { seconds, nanos: 0 })
                .or_else(|| timestamp_of(&message.ts)),
            share_count: 1,
            ..records::asset(format!("file:{}", file.id), url, kind)
        });
    }
    for attachment in &message.attachments {
        let Some(url) = attachment
            .title_link
            .clone()
            .or_else(|| attachment.from_url.clone())
            .filter(|u| u.starts_with("http"))
        else {
            continue;
        };
        let title = attachment
            .title
            .clone()
            .or_else(|| attachment.service_name.clone())
            .unwrap_or_else(|| url.clone());
        batch.push(pb::Asset {
            title: truncate(title, MAX_TITLE),
            text: truncate(
                attachment
                    .text
                    .as_deref()
                    .map(|t| to_plain_text(t, names))
                    .unwrap_or_default(),
                MAX_TEXT,
            ),
            tags: vec![channel.name.clone()],
            created_at: timestamp_of(&message.ts),
            share_count: 1,
            ..records::asset(
                format!("link:{}", short_id(&url)),
                url,
                pb::AssetKind::Article,
            )
        });
    }
}

/// An id for a URL: the URL itself when short enough, else its hash.
fn short_id(url: &str) -> String {
    if url.len() <= 200 {
        url.to_owned()
    } else {
        format!("sha256:{}", hex(&Sha256::digest(url.as_bytes())))
    }
}

/// Maps of ids to names, for markup.
pub type NameMap = HashMap<String, String>;
