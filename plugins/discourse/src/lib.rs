//! The Discourse connector: a forum's topics become conversations, their replies posts, and
//! the people who wrote them people, read over the Discourse JSON API (`/latest.json` pages,
//! `/t/{id}.json` post streams, `/t/{id}/posts.json` for posts past the first chunk) or from a
//! folder of saved API responses (`base_url` then only makes links, and may be left out).
//!
//! It owns the mapping from Discourse to Trellis records and the incremental state of a forum:
//! per topic the highest post number already read, the people already emitted, and the latest
//! `bumped_at` of the topic list, so a later sync asks only for topics bumped since and reads
//! only their new posts. A checkpoint follows every topic, so a resumed read never repeats or
//! skips a post.

mod source;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

pub use source::{Api, TopicSummary, UserProfile};

/// The connector; everything of a read lives in its [`ForumReader`].
#[derive(Debug, Default)]
pub struct DiscourseConnector;

trellis_plugin_sdk::export_connector!(DiscourseConnector);

/// The name of the platform in identities.
pub const PLATFORM: &str = "discourse";

/// The state slot of the forum: people, conversations and posts share it.
pub const STATE_SLOT: &str = "forum";

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The forum's address, e.g. `https://forum.example.org`; links are made from it. Required
    /// unless `saved_dir` is set (saved records then have no links).
    #[serde(default)]
    pub base_url: Option<String>,
    /// An API key, sent as `Api-Key` (private forums).
    #[serde(default)]
    pub api_key: Option<String>,
    /// The user the API key acts as, sent as `Api-Username`.
    #[serde(default)]
    pub api_username: Option<String>,
    /// Read saved API responses from this folder instead of the network.
    #[serde(default)]
    pub saved_dir: Option<PathBuf>,
    /// Records per batch (a batch always ends after a whole topic).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// At most this many pages of `/latest.json` per read.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Seconds before an HTTP request gives up.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_batch_size() -> usize {
    200
}

fn default_max_pages() -> u32 {
    1000
}

fn default_timeout() -> u64 {
    30
}

/// The incremental state of a forum.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ForumState {
    /// The latest `bumped_at` (ms since the epoch) of a topic list fully read.
    #[serde(default)]
    pub bumped_at_ms: Option<i64>,
    /// Per topic id, the highest post number read.
    #[serde(default)]
    pub topics: BTreeMap<u64, u64>,
    /// Usernames already emitted as people.
    #[serde(default)]
    pub people: BTreeSet<String>,
}

impl Connector for DiscourseConnector {
    type Config = Config;
    type Reader = ForumReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "discourse".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::PrivateNetwork,
            description: "a Discourse forum's topics, replies and people over its JSON API (or saved API responses), read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "description": "give base_url to read a forum's live API, or saved_dir to read saved API responses (base_url is then optional and only makes links)",
                "if": {"not": {"required": ["saved_dir"]}},
                "then": {"required": ["base_url"]},
                "additionalProperties": false,
                "properties": {
                    "base_url": {"type": "string", "pattern": "^https?://[^/]+", "description": "the forum's address, e.g. https://forum.example.org; required unless saved_dir is set, where it only makes links"},
                    "api_key": {"type": "string", "minLength": 1, "writeOnly": true, "description": "an API key, sent as Api-Key (a secret: sealed at rest, never shown)"},
                    "api_username": {"type": "string", "minLength": 1, "description": "the user the API key acts as, sent as Api-Username"},
                    "saved_dir": {"type": "string", "minLength": 1, "x-path": true, "description": "read saved API responses from this folder instead of the network (topics, topic lists, latest posts, users: as a capture names them, or latest.json, topic.json, posts_latest.json, user.json); base_url is then optional"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200},
                    "max_pages": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1000},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 600, "default": 30}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "post_number"),
                stream("conversations", RecordKind::Conversation, "bumped_at"),
                stream("posts", RecordKind::Post, "post_number"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let api = Api::new(config)?;
        api.check()
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<ForumReader, ConnectorError> {
        let state: ForumState = state.get(STATE_SLOT)?.unwrap_or_default();
        Ok(ForumReader {
            api: Api::new(&config)?,
            base_url: config
                .base_url
                .map(|url| url.trim_end_matches('/').to_owned()),
            batch_size: config.batch_size,
            max_pages: config.max_pages,
            state,
            users: VecDeque::new(),
            pending: None,
            newest_bumped_ms: None,
            cancel,
        })
    }
}

/// An open read of a forum.
#[derive(Debug)]
pub struct ForumReader {
    api: Api,
    /// The forum's address, for links; none for saved responses read without it.
    base_url: Option<String>,
    batch_size: usize,
    max_pages: u32,
    state: ForumState,
    /// Users with a profile of their own not emitted yet, read before the topics.
    users: VecDeque<UserProfile>,
    /// Topics bumped since the last full read, oldest first; `None` until listed.
    pending: Option<VecDeque<TopicSummary>>,
    newest_bumped_ms: Option<i64>,
    cancel: CancelToken,
}

impl Reader for ForumReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.cancel.check()?;
        if self.pending.is_none() {
            let mut topics =
                self.api
                    .list_topics(self.state.bumped_at_ms, self.max_pages, &self.cancel)?;
            topics.sort_by_key(|topic| (topic.bumped_at_ms, topic.id));
            self.newest_bumped_ms = topics.iter().map(|topic| topic.bumped_at_ms).max();
            self.pending = Some(topics.into());
            self.users = self
                .api
                .users()
                .iter()
                .filter(|user| !self.state.people.contains(&user.username))
                .cloned()
                .collect();
        }
        let mut batch = Batch::new();
        if !self.users.is_empty() {
            while batch.record_count() < self.batch_size
                && let Some(user) = self.users.pop_front()
            {
                if self.state.people.insert(user.username.clone()) {
                    batch.push(self.profile(&user)?);
                }
            }
            batch.checkpoint(STATE_SLOT, &self.state)?;
        }
        while batch.record_count() < self.batch_size {
            self.cancel.check()?;
            let Some(topic) = self.pending.as_mut().and_then(VecDeque::pop_front) else {
                // Every listed topic is read: move the list's watermark and end the read.
                if let Some(newest) = self.newest_bumped_ms {
                    self.state.bumped_at_ms = Some(
                        self.state
                            .bumped_at_ms
                            .map_or(newest, |old| old.max(newest)),
                    );
                }
                batch.checkpoint(STATE_SLOT, &self.state)?;
                batch.finish();
                return Ok(batch);
            };
            let seen = self.state.topics.get(&topic.id).copied().unwrap_or(0);
            if topic
                .highest_post_number
                .is_some_and(|highest| highest <= seen)
            {
                continue;
            }
            let Some(records) = self.read_topic(topic.id, seen)? else {
                continue;
            };
            for record in records {
                batch.push(record);
            }
            batch.checkpoint(STATE_SLOT, &self.state)?;
        }
        Ok(batch)
    }
}

impl ForumReader {
    /// The records of the posts of topic `id` after post number `seen`, updating the state;
    /// `None` when the topic is gone (deleted or made private since it was listed).
    fn read_topic(&mut self, id: u64, seen: u64) -> Result<Option<Vec<Record>>, ConnectorError> {
        let Some(topic) = self.api.topic(id, &self.cancel)? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        let highest = topic
            .posts
            .iter()
            .map(|post| post.post_number)
            .max()
            .unwrap_or(seen);
        if highest <= seen {
            return Ok(Some(records));
        }
        for post in topic.posts.iter().filter(|post| post.post_number > seen) {
            if !post.username.is_empty() && self.state.people.insert(post.username.clone()) {
                records.push(self.person(post).into());
            }
        }
        records.push(self.conversation(&topic)?.into());
        for post in topic
            .posts
            .iter()
            .filter(|post| post.post_number > seen.max(1))
        {
            records.push(post_record(topic.id, post)?.into());
        }
        self.state.topics.insert(id, highest.max(seen));
        Ok(Some(records))
    }

    /// The person who wrote a post. A username is unique on one forum only, while the platform
    /// `discourse` covers every forum, so it is a plain identity; the profile URL (forum and
    /// username) is what identifies the person.
    fn person(&self, post: &source::Post) -> pb::Person {
        pb::Person {
            display_name: if post.name.trim().is_empty() {
                post.username.clone()
            } else {
                post.name.clone()
            },
            member: true,
            identities: vec![records::identity(
                PLATFORM,
                post.username.clone(),
                self.link(&format!("/u/{}", post.username)),
            )],
            ..records::person(post.username.clone())
        }
    }

    /// The person of a saved user profile.
    fn profile(&self, user: &UserProfile) -> Result<pb::Person, ConnectorError> {
        let bio = if user.bio_cooked.trim().is_empty() {
            user.bio_raw.trim().to_owned()
        } else {
            plain_text(&user.bio_cooked)
        };
        Ok(pb::Person {
            display_name: if user.name.trim().is_empty() {
                user.username.clone()
            } else {
                user.name.clone()
            },
            bio,
            member: true,
            identities: vec![records::identity(
                PLATFORM,
                user.username.clone(),
                self.link(&format!("/u/{}", user.username)),
            )],
            created_at: user
                .created_at
                .as_deref()
                .map(|value| {
                    records::parse_rfc3339(value, &format!("user {}: created_at", user.username))
                })
                .transpose()?,
            ..records::person(user.username.clone())
        })
    }

    /// The address of `path` on the forum; empty without a `base_url`.
    fn link(&self, path: &str) -> String {
        self.base_url
            .as_ref()
            .map(|base| format!("{base}{path}"))
            .unwrap_or_default()
    }

    fn conversation(&self, topic: &source::Topic) -> Result<pb::Conversation, ConnectorError> {
        let at = format!("topic {}", topic.id);
        let first = topic.posts.iter().find(|post| post.post_number == 1);
        let body = first
            .map(|post| plain_text(&post.cooked))
            .unwrap_or_default();
        let created_at = records::parse_rfc3339(&topic.created_at, &format!("{at}: created_at"))?;
        let last = topic
            .last_posted_at
            .as_deref()
            .or(topic.bumped_at.as_deref())
            .map(|value| records::parse_rfc3339(value, &format!("{at}: last_posted_at")))
            .transpose()?;
        let title = if topic.title.trim().is_empty() {
            topic.slug.clone()
        } else {
            topic.title.clone()
        };
        Ok(pb::Conversation {
            url: self.link(&format!("/t/{}/{}", topic.slug, topic.id)),
            title,
            body,
            tags: topic.tags.iter().take(64).cloned().collect(),
            author: first.map(|post| post.username.clone()).unwrap_or_default(),
            open: !topic.closed && !topic.archived,
            created_at: Some(created_at),
            last_activity_at: last.or(Some(created_at)),
            ..records::conversation(topic.id.to_string(), pb::PlatformKind::PrivateNetwork)
        })
    }
}

/// The external id of post `number` of topic `topic`.
pub fn post_id(topic: u64, number: u64) -> String {
    format!("{topic}/{number}")
}

fn post_record(topic: u64, post: &source::Post) -> Result<pb::Post, ConnectorError> {
    let at = format!("topic {topic} post {}", post.post_number);
    let parent = match post.reply_to_post_number {
        Some(number) if number > 1 => post_id(topic, number),
        _ => String::new(),
    };
    Ok(pb::Post {
        author: post.username.clone(),
        parent,
        text: plain_text(&post.cooked),
        created_at: Some(records::parse_rfc3339(
            &post.created_at,
            &format!("{at}: created_at"),
        )?),
        reactions: post.likes(),
        ..records::post(post_id(topic, post.post_number), topic.to_string())
    })
}

/// Plain text of Discourse's cooked HTML.
pub fn plain_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 10_000)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| html.to_owned())
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date.
pub fn retry_after(value: Option<&str>) -> Duration {
    let fallback = Duration::from_secs(60);
    let Some(value) = value.map(str::trim) else {
        return fallback;
    };
    if let Ok(seconds) = value.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        .ok()
        .map(|at| {
            let wait = at - time::OffsetDateTime::now_utc();
            Duration::from_secs(u64::try_from(wait.whole_seconds()).unwrap_or(0))
        })
        .unwrap_or(fallback)
}
