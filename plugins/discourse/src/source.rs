//! Where the forum's JSON comes from: the Discourse API over HTTP (with its errors mapped to
//! the SDK's kinds: 429 to rate-limited with the `Retry-After` delay, 401/403 to a config
//! error on the API key, 5xx and network failures to transient), or a folder of saved API
//! responses.
//!
//! A saved folder is read whole: every topic in it is read whether or not a saved topic list
//! mentions it (a list only gives a topic's `bumped_at` when it has one), so `check` never
//! counts a topic that a sync then skips. Files are known by name when it says what they are
//! (`t/{id}.json`, `*-post-{id}-DATE.json` topics and `*-topics-DATE.json` lists, as a capture
//! of a forum names them) and otherwise by their content, so the names of Discourse's own API
//! fixtures and docs (`topic.json`, `latest.json`, `posts_latest.json`, `user.json`) work too:
//! a topic (`/t/{id}.json`), a topic list (`/latest.json`, or a bare array of topics), latest
//! posts (`/posts.json`: the posts of topics that have no file of their own, as partial topics)
//! or a user (`/u/{username}.json`: a person with a profile).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use trellis_plugin_sdk::http;
use trellis_plugin_sdk::prelude::*;

use crate::{Config, retry_after};

/// Post ids asked for in one `/t/{id}/posts.json` request.
const POSTS_PER_REQUEST: usize = 20;

/// A value that the API may send as `null`: its default then.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A topic as a topic list shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct TopicSummary {
    pub id: u64,
    #[serde(default)]
    pub highest_post_number: Option<u64>,
    #[serde(default)]
    pub bumped_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub pinned: bool,
    #[serde(skip)]
    pub bumped_at_ms: i64,
}

#[derive(Debug, Deserialize)]
struct TopicListPage {
    topic_list: TopicList,
}

#[derive(Debug, Deserialize)]
struct TopicList {
    #[serde(default)]
    topics: Vec<TopicSummary>,
    #[serde(default)]
    more_topics_url: Option<String>,
}

/// A topic with its post stream (`/t/{id}.json`).
#[derive(Debug, Deserialize)]
pub struct Topic {
    pub id: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub title: String,
    #[serde(default, deserialize_with = "nullable")]
    pub slug: String,
    pub created_at: String,
    #[serde(default)]
    pub last_posted_at: Option<String>,
    #[serde(default)]
    pub bumped_at: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub closed: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub archived: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    pub post_stream: PostStream,
    /// Every post of the topic, in post-number order, once the stream is complete.
    #[serde(skip)]
    pub posts: Vec<Post>,
}

#[derive(Debug, Deserialize)]
pub struct PostStream {
    #[serde(default, deserialize_with = "nullable")]
    pub posts: Vec<Post>,
    #[serde(default, deserialize_with = "nullable")]
    pub stream: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct PostsPage {
    post_stream: PostStream,
}

/// The topic a post of a latest-posts list (`/posts.json`) belongs to.
#[derive(Debug, Clone, Deserialize)]
struct PostTopic {
    topic_id: u64,
    #[serde(default, deserialize_with = "nullable")]
    topic_title: String,
    #[serde(default, deserialize_with = "nullable")]
    topic_slug: String,
}

/// A topic known only from latest-posts lists.
#[derive(Debug, Clone)]
struct PartialTopic {
    topic: PostTopic,
    posts: Vec<Post>,
}

/// What the top of a topic file says, for a topic that no list mentions.
#[derive(Debug, Deserialize)]
struct TopicHead {
    id: u64,
    #[serde(default)]
    highest_post_number: Option<u64>,
    #[serde(default)]
    bumped_at: Option<String>,
    #[serde(default)]
    last_posted_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// A user's profile (`/u/{username}.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct UserProfile {
    pub username: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub bio_cooked: String,
    #[serde(default, deserialize_with = "nullable")]
    pub bio_raw: String,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A post of a post stream.
#[derive(Debug, Clone, Deserialize)]
pub struct Post {
    pub id: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub username: String,
    pub created_at: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cooked: String,
    pub post_number: u64,
    #[serde(default)]
    pub reply_to_post_number: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub actions_summary: Vec<ActionSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActionSummary {
    pub id: u32,
    #[serde(default)]
    pub count: u32,
}

impl Post {
    /// Likes (post action 2).
    pub fn likes(&self) -> u32 {
        self.actions_summary
            .iter()
            .filter(|action| action.id == 2)
            .map(|action| action.count)
            .sum()
    }
}

/// The forum's API, live or saved.
#[derive(Debug)]
pub enum Api {
    Http(Http),
    Saved(Saved),
}

#[derive(Debug)]
pub struct Http {
    base_url: String,
    agent: http::ureq::Agent,
    api_key: Option<String>,
    api_username: Option<String>,
}

/// A folder of saved responses: topic lists, topics, latest posts and users (see the module).
#[derive(Debug)]
pub struct Saved {
    dir: PathBuf,
    lists: Vec<PathBuf>,
    /// Topics with a file of their own.
    topics: BTreeMap<u64, PathBuf>,
    /// Topics without a file of their own, from latest-posts lists.
    partial: BTreeMap<u64, PartialTopic>,
    users: Vec<UserProfile>,
    /// `.json` files that are none of these.
    unknown: Vec<PathBuf>,
}

impl Api {
    pub fn new(config: &Config) -> Result<Self, ConnectorError> {
        if let Some(dir) = &config.saved_dir {
            return Ok(Api::Saved(Saved::open(dir)?));
        }
        let Some(base_url) = config.base_url.as_deref() else {
            return Err(ConnectorError::config(
                "base_url",
                "give base_url (the forum's address, e.g. https://forum.example.org) to read the live API, or saved_dir (a folder of saved API responses)",
            ));
        };
        let agent = http::agent(|agent| {
            agent
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(config.timeout_secs)))
                .user_agent(concat!(
                    "trellis-connector-discourse/",
                    env!("CARGO_PKG_VERSION")
                ))
        });
        Ok(Api::Http(Http {
            base_url: base_url.trim_end_matches('/').to_owned(),
            agent,
            api_key: config.api_key.clone(),
            api_username: config.api_username.clone(),
        }))
    }

    pub fn check(&self) -> Result<String, ConnectorError> {
        match self {
            Api::Http(http) => {
                let page: TopicListPage = http.get("/latest.json")?.ok_or_else(|| {
                    ConnectorError::config(
                        "base_url",
                        format!(
                            "{}/latest.json was not found; give the address of a Discourse forum",
                            http.base_url
                        ),
                    )
                })?;
                Ok(format!(
                    "{} answers: {} topics on the first page of /latest.json",
                    http.base_url,
                    page.topic_list.topics.len()
                ))
            }
            Api::Saved(saved) => {
                let mut line = format!(
                    "{} holds {} topic lists, {} topics, {} topics only as latest posts and {} users",
                    saved.dir.display(),
                    saved.lists.len(),
                    saved.topics.len(),
                    saved.partial.len(),
                    saved.users.len()
                );
                if !saved.unknown.is_empty() {
                    let names: Vec<String> = saved
                        .unknown
                        .iter()
                        .map(|path| path.strip_prefix(&saved.dir).unwrap_or(path))
                        .map(|path| path.display().to_string())
                        .collect();
                    line.push_str(&format!(
                        "; not read, as no Discourse API response it knows: {}",
                        names.join(", ")
                    ));
                }
                Ok(line)
            }
        }
    }

    /// The users whose profiles the source holds (saved `/u/{username}.json` responses).
    pub fn users(&self) -> &[UserProfile] {
        match self {
            Api::Http(_) => &[],
            Api::Saved(saved) => &saved.users,
        }
    }

    /// Topics bumped at or after `since` (ms), newest first as the API lists them.
    pub fn list_topics(
        &self,
        since: Option<i64>,
        max_pages: u32,
        cancel: &CancelToken,
    ) -> Result<Vec<TopicSummary>, ConnectorError> {
        let since = since.unwrap_or(i64::MIN);
        let mut topics = Vec::new();
        match self {
            Api::Http(http) => {
                let mut path = "/latest.json?order=activity&page=0".to_owned();
                let mut previous_ids: Option<Vec<u64>> = None;
                for _ in 0..max_pages {
                    cancel.check()?;
                    let Some(page) = http.get::<TopicListPage>(&path)? else {
                        break;
                    };
                    let ids: Vec<u64> = page.topic_list.topics.iter().map(|t| t.id).collect();
                    if previous_ids.as_ref() == Some(&ids) {
                        // A server that ignores `page` sends the same page again and again,
                        // each with a link to the next: there is nothing more to read.
                        break;
                    }
                    previous_ids = Some(ids);
                    let mut older = false;
                    for topic in page.topic_list.topics {
                        let topic = with_millis(topic)?;
                        if topic.bumped_at_ms >= since {
                            topics.push(topic);
                        } else if !topic.pinned {
                            // Pinned topics head the list out of order; any other older one
                            // means the rest was read before.
                            older = true;
                        }
                    }
                    match page.topic_list.more_topics_url {
                        Some(next) if !older => path = json_path(&next),
                        _ => break,
                    }
                }
            }
            Api::Saved(saved) => {
                let mut listed = std::collections::BTreeSet::new();
                for list in &saved.lists {
                    cancel.check()?;
                    for topic in saved.list(list)? {
                        if !saved.holds(topic.id) {
                            continue;
                        }
                        listed.insert(topic.id);
                        let topic = with_millis(topic)?;
                        if topic.bumped_at_ms >= since {
                            topics.push(topic);
                        }
                    }
                }
                // Topics that no list mentions are read all the same, summed up from their
                // own content.
                for (&id, path) in &saved.topics {
                    if listed.contains(&id) {
                        continue;
                    }
                    cancel.check()?;
                    let topic = with_millis(saved.summary_of_file(path)?)?;
                    if topic.bumped_at_ms >= since {
                        topics.push(topic);
                    }
                }
                for (&id, partial) in &saved.partial {
                    if listed.contains(&id) {
                        continue;
                    }
                    let topic = with_millis(partial.summary()?)?;
                    if topic.bumped_at_ms >= since {
                        topics.push(topic);
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        topics.retain(|topic| seen.insert(topic.id));
        Ok(topics)
    }

    /// Topic `id` with every post of its stream; `None` when it is gone.
    pub fn topic(&self, id: u64, cancel: &CancelToken) -> Result<Option<Topic>, ConnectorError> {
        let mut topic: Topic = match self {
            Api::Http(http) => match http.get(&format!("/t/{id}.json"))? {
                Some(topic) => topic,
                None => return Ok(None),
            },
            Api::Saved(saved) => match (saved.topics.get(&id), saved.partial.get(&id)) {
                (Some(path), _) => read_json(path)?,
                (None, Some(partial)) => partial.topic()?,
                (None, None) => return Ok(None),
            },
        };
        let mut posts = std::mem::take(&mut topic.post_stream.posts);
        let have: std::collections::BTreeSet<u64> = posts.iter().map(|post| post.id).collect();
        let missing: Vec<u64> = topic
            .post_stream
            .stream
            .iter()
            .copied()
            .filter(|post| !have.contains(post))
            .collect();
        if let (Api::Http(http), false) = (self, missing.is_empty()) {
            for chunk in missing.chunks(POSTS_PER_REQUEST) {
                cancel.check()?;
                let query: Vec<String> = chunk
                    .iter()
                    .map(|post| format!("post_ids[]={post}"))
                    .collect();
                let path = format!("/t/{id}/posts.json?{}", query.join("&"));
                if let Some(page) = http.get::<PostsPage>(&path)? {
                    posts.extend(page.post_stream.posts);
                }
            }
        }
        posts.sort_by_key(|post| post.post_number);
        posts.dedup_by_key(|post| post.post_number);
        topic.posts = posts;
        Ok(Some(topic))
    }
}

/// `more_topics_url` is `/latest?page=1` (no `.json`): the JSON form of the same page.
fn json_path(more: &str) -> String {
    let (path, query) = more.split_once('?').unwrap_or((more, ""));
    let path = if path.ends_with(".json") {
        path.to_owned()
    } else {
        format!("{path}.json")
    };
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

fn with_millis(mut topic: TopicSummary) -> Result<TopicSummary, ConnectorError> {
    let value = topic
        .bumped_at
        .clone()
        .or_else(|| topic.created_at.clone())
        .unwrap_or_default();
    topic.bumped_at_ms = if value.is_empty() {
        0
    } else {
        records::millis_of(&records::parse_rfc3339(
            &value,
            &format!("topic {}: bumped_at", topic.id),
        )?)
    };
    Ok(topic)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ConnectorError> {
    let file = File::open(path).map_err(|error| {
        ConnectorError::config(
            "saved_dir",
            format!("cannot open {} ({error})", path.display()),
        )
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|error| {
        ConnectorError::system(format!(
            "{}: not a Discourse API response ({error})",
            path.display()
        ))
    })
}

impl Saved {
    fn open(dir: &Path) -> Result<Self, ConnectorError> {
        let entries = std::fs::read_dir(dir).map_err(|error| {
            ConnectorError::config(
                "saved_dir",
                format!(
                    "cannot read the folder {} ({error}); give a folder of saved Discourse API responses",
                    dir.display()
                ),
            )
        })?;
        let mut saved = Saved {
            dir: dir.to_owned(),
            lists: Vec::new(),
            topics: BTreeMap::new(),
            partial: BTreeMap::new(),
            users: Vec::new(),
            unknown: Vec::new(),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry?.path();
            // `t/{id}.json` and `u/{username}.json`, as the API's paths name them.
            let is_api_folder = path
                .file_name()
                .is_some_and(|name| name == "t" || name == "u");
            if path.is_dir() && is_api_folder {
                for inner in std::fs::read_dir(&path)? {
                    paths.push(inner?.path());
                }
            } else {
                paths.push(path);
            }
        }
        paths.sort();
        let mut latest_posts: Vec<(PostTopic, Post)> = Vec::new();
        for path in paths {
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let in_t = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|parent| parent == "t");
            if in_t && let Ok(id) = stem.parse::<u64>() {
                saved.topics.insert(id, path);
                continue;
            }
            let undated = strip_date(stem);
            if undated.ends_with("-topics") {
                saved.lists.push(path);
                continue;
            }
            if let Some((_, id)) = undated.rsplit_once("-post-")
                && let Ok(id) = id.parse::<u64>()
            {
                saved.topics.insert(id, path);
                continue;
            }
            saved.add_by_content(path, &mut latest_posts)?;
        }
        for (topic, post) in latest_posts {
            if saved.topics.contains_key(&topic.topic_id) {
                // The topic's own file has its whole post stream.
                continue;
            }
            let partial = saved
                .partial
                .entry(topic.topic_id)
                .or_insert_with(|| PartialTopic {
                    topic: topic.clone(),
                    posts: Vec::new(),
                });
            if !partial.posts.iter().any(|known| known.id == post.id) {
                partial.posts.push(post);
            }
        }
        if saved.topics.is_empty() && saved.partial.is_empty() {
            return Err(ConnectorError::config(
                "saved_dir",
                format!(
                    "{} holds {} topic lists and 0 topics; it needs saved topic lists with the topics they list, or topics alone: /t/ID.json responses (named t/ID.json, *-post-ID-DATE.json or anything else, such as topic.json) or /posts.json responses (such as posts_latest.json)",
                    dir.display(),
                    saved.lists.len(),
                ),
            ));
        }
        Ok(saved)
    }

    /// Files by what they hold, when their name does not say: a topic, a topic list, latest
    /// posts or a user; anything else is `unknown`.
    fn add_by_content(
        &mut self,
        path: PathBuf,
        latest_posts: &mut Vec<(PostTopic, Post)>,
    ) -> Result<(), ConnectorError> {
        let Ok(value) = read_json::<serde_json::Value>(&path) else {
            self.unknown.push(path);
            return Ok(());
        };
        let not_shaped = |error: serde_json::Error| {
            ConnectorError::system(format!(
                "{}: not a Discourse API response ({error})",
                path.display()
            ))
        };
        match &value {
            serde_json::Value::Object(object) => {
                if object.contains_key("post_stream")
                    && let Some(id) = object.get("id").and_then(serde_json::Value::as_u64)
                {
                    self.topics.insert(id, path);
                } else if object.contains_key("topic_list") {
                    self.lists.push(path);
                } else if let Some(posts) = object.get("latest_posts") {
                    let posts: Vec<serde_json::Value> =
                        serde_json::from_value(posts.clone()).map_err(not_shaped)?;
                    for post in posts {
                        let topic: PostTopic =
                            serde_json::from_value(post.clone()).map_err(not_shaped)?;
                        let post: Post = serde_json::from_value(post).map_err(not_shaped)?;
                        latest_posts.push((topic, post));
                    }
                } else if let Some(user) = object
                    .get("user")
                    .filter(|user| user.get("username").is_some())
                {
                    let user: UserProfile =
                        serde_json::from_value(user.clone()).map_err(not_shaped)?;
                    self.users.push(user);
                } else {
                    self.unknown.push(path);
                }
            }
            serde_json::Value::Array(items)
                if items.iter().all(|item| {
                    item.get("id").is_some_and(serde_json::Value::is_u64)
                        && (item.get("bumped_at").is_some()
                            || item.get("highest_post_number").is_some())
                }) =>
            {
                self.lists.push(path);
            }
            _ => self.unknown.push(path),
        }
        Ok(())
    }

    /// Whether topic `id` can be read.
    fn holds(&self, id: u64) -> bool {
        self.topics.contains_key(&id) || self.partial.contains_key(&id)
    }

    /// The summary of a topic file, as a topic list would give it.
    fn summary_of_file(&self, path: &Path) -> Result<TopicSummary, ConnectorError> {
        let head: TopicHead = read_json(path)?;
        Ok(TopicSummary {
            id: head.id,
            highest_post_number: head.highest_post_number,
            bumped_at: head.bumped_at.or(head.last_posted_at),
            created_at: head.created_at,
            pinned: false,
            bumped_at_ms: 0,
        })
    }

    /// The topics of a saved list: a bare array, or a `/latest.json` page.
    fn list(&self, path: &Path) -> Result<Vec<TopicSummary>, ConnectorError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum List {
            Bare(Vec<TopicSummary>),
            Page(TopicListPage),
        }
        Ok(match read_json::<List>(path)? {
            List::Bare(topics) => topics,
            List::Page(page) => page.topic_list.topics,
        })
    }
}

impl PartialTopic {
    /// The post created last, with the time it was.
    fn latest(&self) -> Result<Option<(i64, &Post)>, ConnectorError> {
        let mut latest: Option<(i64, &Post)> = None;
        for post in &self.posts {
            let at = records::millis_of(&records::parse_rfc3339(
                &post.created_at,
                &format!(
                    "topic {} post {}: created_at",
                    self.topic.topic_id, post.post_number
                ),
            )?);
            if latest.is_none_or(|(known, _)| at > known) {
                latest = Some((at, post));
            }
        }
        Ok(latest)
    }

    fn summary(&self) -> Result<TopicSummary, ConnectorError> {
        Ok(TopicSummary {
            id: self.topic.topic_id,
            highest_post_number: self.posts.iter().map(|post| post.post_number).max(),
            bumped_at: self.latest()?.map(|(_, post)| post.created_at.clone()),
            created_at: None,
            pinned: false,
            bumped_at_ms: 0,
        })
    }

    /// The topic with the posts the lists hold: its first post when they hold it.
    fn topic(&self) -> Result<Topic, ConnectorError> {
        let mut posts = self.posts.clone();
        posts.sort_by_key(|post| post.post_number);
        let last_posted_at = self.latest()?.map(|(_, post)| post.created_at.clone());
        let created_at = posts
            .first()
            .map(|post| post.created_at.clone())
            .unwrap_or_default();
        Ok(Topic {
            id: self.topic.topic_id,
            title: self.topic.topic_title.clone(),
            slug: self.topic.topic_slug.clone(),
            created_at,
            last_posted_at,
            bumped_at: None,
            closed: false,
            archived: false,
            tags: Vec::new(),
            post_stream: PostStream {
                posts,
                stream: Vec::new(),
            },
            posts: Vec::new(),
        })
    }
}

/// `name-2019-10-19` -> `name`.
fn strip_date(stem: &str) -> &str {
    let bytes = stem.as_bytes();
    if bytes.len() > 11 {
        let tail = &stem[stem.len() - 11..];
        let shape = tail.char_indices().all(|(index, c)| match index {
            0 | 5 | 8 => c == '-',
            _ => c.is_ascii_digit(),
        });
        if shape {
            return &stem[..stem.len() - 11];
        }
    }
    stem
}

impl Http {
    /// GETs `path` and parses the JSON body; `None` on 404.
    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ConnectorError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.get(&url).header("Accept", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Api-Key", key);
        }
        if let Some(user) = &self.api_username {
            request = request.header("Api-Username", user);
        }
        let response = request
            .call()
            .map_err(|error| http::request_error("base_url", &url, &error))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {}
            404 => return Ok(None),
            429 => {
                let wait = retry_after(
                    response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok()),
                );
                return Err(ConnectorError::rate_limited(
                    wait,
                    format!("{url} answered 429 too many requests"),
                ));
            }
            401 | 403 => {
                return Err(ConnectorError::config(
                    "api_key",
                    format!(
                        "{url} answered {status}; give an api_key and api_username the forum accepts"
                    ),
                ));
            }
            500..=599 => {
                return Err(ConnectorError::transient(format!(
                    "{url} answered {status}; the forum is failing, try again later"
                )));
            }
            _ => {
                return Err(ConnectorError::system(format!("{url} answered {status}")));
            }
        }
        let reader = BufReader::new(response.into_body().into_reader());
        // Said without quoting the answer: the server may be something other than a forum.
        serde_json::from_reader(reader).map(Some).map_err(|error| {
            ConnectorError::transient(format!(
                "{url}: not a Discourse API response ({})",
                http::describe_json_error(&error)
            ))
        })
    }
}
