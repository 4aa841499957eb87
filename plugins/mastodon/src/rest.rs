//! REST mode: timelines of an instance read over HTTP with a blocking client.
//!
//! Each configured timeline (an account's statuses, a hashtag, the public timeline) is a state
//! slot of its own (`account:<id or acct>`, `tag:<tag>`, `public`, `public:local`,
//! `public:remote`). A first read backfills: the newest page, then older pages through the
//! `rel="next"` link of each answer, checkpointing after every page the newest status id
//! stored (`newest`, the `min_id` cursor) and where the backfill goes on (`older_than`). Once
//! backfilled, reads ask for `min_id=<newest>` page by page until an empty page, so statuses
//! posted meanwhile are read too and a read from the final state asks once and finds nothing.
//!
//! Mapping: a status that answers none opens a conversation (keyed by its `uri`); a reply
//! becomes a post in the thread of its root when the root is known (seen earlier in this
//! timeline: the slot keeps the last [`THREAD_MEMORY`] statuses and their roots), else it opens
//! a conversation of its own whose title starts with `Re: `. Boosts are other people's
//! statuses and are skipped. Each page emits its authors as people before their statuses.
//!
//! Errors: 429 is rate-limited with the `Retry-After` delay, 5xx and network failures are
//! transient, 401/403/404 (and 400/422) on a configured timeline are config errors naming its
//! field.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use trellis_plugin_sdk::http;
use trellis_plugin_sdk::prelude::*;

use crate::{Config, plain_text, title_of};

/// Statuses a timeline's state remembers to place later replies in their threads.
pub const THREAD_MEMORY: usize = 500;

/// The state of one timeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimelineState {
    /// The newest status id stored: the `min_id` of the next request for new statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// While backfilling: the `max_id` of the next older page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
    /// Recent statuses by id: their key and the key of their thread's root.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads: BTreeMap<String, Placed>,
}

/// Where a status went: its own key and its thread's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Placed {
    pub key: String,
    pub thread: String,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    spoiler_text: Option<String>,
    #[serde(default)]
    reblog: Option<serde_json::Value>,
    account: Account,
    #[serde(default)]
    tags: Vec<StatusTag>,
    #[serde(default)]
    reblogs_count: u32,
    #[serde(default)]
    favourites_count: u32,
}

#[derive(Debug, Deserialize)]
struct StatusTag {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Account {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    acct: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Instance {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    version: String,
}

/// An answer of the API: its body and the `max_id` of its `rel="next"` link.
struct Page<T> {
    body: T,
    next_max_id: Option<String>,
}

/// The instance's API.
#[derive(Debug)]
pub struct Client {
    base_url: String,
    /// `host[:port]` of the instance, which qualifies local handles.
    host: String,
    agent: http::ureq::Agent,
    access_token: Option<String>,
}

impl Client {
    pub fn new(config: &Config) -> Result<Self, ConnectorError> {
        let base_url = config
            .base_url
            .as_deref()
            .unwrap_or_default()
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let host = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
            .filter(|host| !host.is_empty())
            .ok_or_else(|| {
                ConnectorError::config(
                    "base_url",
                    format!(
                        "{base_url:?} is not an http(s) address; give the instance, e.g. https://mastodon.social"
                    ),
                )
            })?;
        let agent = http::agent(|agent| {
            agent
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(config.timeout_secs)))
                .user_agent(concat!(
                    "trellis-connector-mastodon/",
                    env!("CARGO_PKG_VERSION")
                ))
        });
        Ok(Self {
            base_url,
            host,
            agent,
            access_token: config.access_token.clone(),
        })
    }

    /// GETs `path` (with its query) and parses the JSON body; HTTP failures become the SDK's
    /// kinds, with `field` named on a config error.
    fn get<T: DeserializeOwned>(&self, path: &str, field: &str) -> Result<Page<T>, ConnectorError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.get(&url).header("Accept", "application/json");
        if let Some(token) = &self.access_token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request
            .call()
            .map_err(|error| http::request_error("base_url", &url, &error))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match status {
            200..=299 => {}
            429 => {
                let wait = retry_after(&header("retry-after"), &header("x-ratelimit-reset"));
                return Err(ConnectorError::rate_limited(
                    wait,
                    format!("{url} answered 429 too many requests"),
                ));
            }
            401 | 403 => {
                let field = if self.access_token.is_some() && field == "base_url" {
                    "access_token"
                } else {
                    field
                };
                return Err(ConnectorError::config(
                    field,
                    format!(
                        "{url} answered {status}; give an access_token the instance accepts for it, or remove it from {field}"
                    ),
                ));
            }
            400 | 404 | 410 | 422 => {
                return Err(ConnectorError::config(
                    field,
                    format!("{url} answered {status}: the instance does not know it; fix {field}"),
                ));
            }
            500..=599 => {
                return Err(ConnectorError::transient(format!(
                    "{url} answered {status}; the instance is failing, try again later"
                )));
            }
            _ => return Err(ConnectorError::system(format!("{url} answered {status}"))),
        }
        let next_max_id = next_max_id(&header("link"));
        let reader = BufReader::new(response.into_body().into_reader());
        // Said without quoting the answer: the server may be something other than Mastodon.
        let body = serde_json::from_reader(reader).map_err(|error| {
            ConnectorError::transient(format!(
                "{url}: not a Mastodon API answer ({})",
                http::describe_json_error(&error)
            ))
        })?;
        Ok(Page { body, next_max_id })
    }

    /// The instance: `/api/v2/instance`, or `/api/v1/instance` on servers before 4.0.
    fn instance(&self) -> Result<Instance, ConnectorError> {
        match self.get::<Instance>("/api/v2/instance", "base_url") {
            Ok(page) => Ok(page.body),
            Err(error) if error.kind == ErrorKind::Config => self
                .get::<Instance>("/api/v1/instance", "base_url")
                .map(|page| page.body),
            Err(error) => Err(error),
        }
    }

    /// The account id of `account`: itself when it is one, else its `acct` looked up.
    fn account_id(&self, account: &str) -> Result<String, ConnectorError> {
        let account = account.trim().trim_start_matches('@');
        if !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()) {
            let found: Page<Account> =
                self.get(&format!("/api/v1/accounts/{account}"), "accounts")?;
            return Ok(found.body.id);
        }
        let found: Page<Account> = self.get(
            &format!("/api/v1/accounts/lookup?acct={}", encode(account)),
            "accounts",
        )?;
        Ok(found.body.id)
    }
}

/// The delay a 429 asks for: `Retry-After` in seconds or as an HTTP date, else Mastodon's
/// `X-RateLimit-Reset`, else a minute.
pub fn retry_after(retry_after: &str, ratelimit_reset: &str) -> Duration {
    let until = |at: time::OffsetDateTime| {
        let wait = at - time::OffsetDateTime::now_utc();
        Duration::from_secs(u64::try_from(wait.whole_seconds()).unwrap_or(0))
    };
    let value = retry_after.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    if let Ok(at) =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
    {
        return until(at);
    }
    time::OffsetDateTime::parse(
        ratelimit_reset.trim(),
        &time::format_description::well_known::Rfc3339,
    )
    .map_or(Duration::from_secs(60), until)
}

/// The `max_id` of the `rel="next"` link of a `Link` header.
pub fn next_max_id(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|param| {
            param
                .trim()
                .strip_prefix("rel=")
                .is_some_and(|rel| rel.trim_matches('"').split(' ').any(|r| r == "next"))
        });
        if !is_next {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let (_, query) = target.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("max_id="))
            .map(str::to_owned)
    })
}

/// Percent-encodes everything but unreserved characters and `@`.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Orders Mastodon ids (decimal strings of growing length).
fn id_order(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// One configured timeline.
#[derive(Debug)]
struct Timeline {
    /// The state slot.
    slot: String,
    /// The config field it comes from.
    field: &'static str,
    /// The path of the endpoint.
    path: String,
    /// Query parameters of the endpoint, before `limit` and the cursors.
    params: Vec<(String, String)>,
    state: TimelineState,
    /// No more pages in this read.
    done: bool,
}

/// The configured timelines, in config order: accounts, hashtags, public.
fn timelines(config: &Config, client: &Client) -> Result<Vec<Timeline>, ConnectorError> {
    let mut out = Vec::new();
    for account in &config.accounts {
        let id = client.account_id(account)?;
        out.push(Timeline {
            slot: format!("account:{}", account.trim().trim_start_matches('@')),
            field: "accounts",
            path: format!("/api/v1/accounts/{}/statuses", encode(&id)),
            params: Vec::new(),
            state: TimelineState::default(),
            done: false,
        });
    }
    for tag in &config.hashtags {
        let tag = tag.trim().trim_start_matches('#');
        if tag.is_empty() {
            return Err(ConnectorError::config(
                "hashtags",
                "a hashtag is empty; give hashtags without # such as \"rust\"",
            ));
        }
        out.push(Timeline {
            slot: format!("tag:{}", tag.to_lowercase()),
            field: "hashtags",
            path: format!("/api/v1/timelines/tag/{}", encode(tag)),
            params: Vec::new(),
            state: TimelineState::default(),
            done: false,
        });
    }
    if let Some(public) = config.public {
        let mut params = Vec::new();
        let mut slot = "public".to_owned();
        if public.local {
            params.push(("local".to_owned(), "true".to_owned()));
            slot.push_str(":local");
        }
        if public.remote {
            params.push(("remote".to_owned(), "true".to_owned()));
            slot.push_str(":remote");
        }
        out.push(Timeline {
            slot,
            field: "public",
            path: "/api/v1/timelines/public".to_owned(),
            params,
            state: TimelineState::default(),
            done: false,
        });
    }
    if out.is_empty() {
        return Err(ConnectorError::config(
            "accounts",
            "give at least one timeline to read: accounts, hashtags or public",
        ));
    }
    Ok(out)
}

/// Checks that the instance answers and every account resolves.
pub fn check(config: &Config) -> Result<String, ConnectorError> {
    let client = Client::new(config)?;
    let instance = client.instance()?;
    let timelines = timelines(config, &client)?;
    let name = instance
        .domain
        .or(instance.uri)
        .unwrap_or_else(|| client.host.clone());
    let count = timelines.len();
    Ok(format!(
        "{name} ({}, Mastodon {}) answers; {count} timeline{} to read",
        instance.title,
        instance.version,
        if count == 1 { "" } else { "s" }
    ))
}

/// Opens a read of the configured timelines after `state`.
pub fn open(
    config: &Config,
    state: &State,
    cancel: CancelToken,
) -> Result<RestReader, ConnectorError> {
    let client = Client::new(config)?;
    let mut timelines = timelines(config, &client)?;
    for timeline in &mut timelines {
        timeline.state = state.get(&timeline.slot)?.unwrap_or_default();
    }
    Ok(RestReader {
        client,
        timelines,
        current: 0,
        page_size: config.page_size.clamp(1, 40),
        cancel,
    })
}

/// An open read of the timelines; one page per batch.
#[derive(Debug)]
pub struct RestReader {
    client: Client,
    timelines: Vec<Timeline>,
    current: usize,
    page_size: u32,
    cancel: CancelToken,
}

impl Reader for RestReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.cancel.check()?;
        let mut batch = Batch::new();
        while self.current < self.timelines.len() && self.timelines[self.current].done {
            self.current += 1;
        }
        let Some(timeline) = self.timelines.get_mut(self.current) else {
            batch.finish();
            return Ok(batch);
        };
        let mut query: Vec<String> = timeline
            .params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        query.push(format!("limit={}", self.page_size));
        let backfill = match (&timeline.state.newest, &timeline.state.older_than) {
            (None, _) => true,
            (Some(_), Some(max_id)) => {
                query.push(format!("max_id={max_id}"));
                true
            }
            (Some(min_id), None) => {
                query.push(format!("min_id={min_id}"));
                false
            }
        };
        let path = format!("{}?{}", timeline.path, query.join("&"));
        let page: Page<Vec<Status>> = self.client.get(&path, timeline.field)?;
        let mut statuses = page.body;
        statuses.sort_by(|a, b| id_order(&a.id).cmp(&id_order(&b.id)));
        if let Some(newest) = statuses.last() {
            let newer = timeline
                .state
                .newest
                .as_deref()
                .is_none_or(|known| id_order(&newest.id) > id_order(known));
            if newer {
                timeline.state.newest = Some(newest.id.clone());
            }
        }
        if backfill {
            timeline.state.older_than = if statuses.is_empty() {
                None
            } else {
                page.next_max_id
            };
        } else if statuses.is_empty() {
            timeline.done = true;
        }
        if timeline.state.newest.is_none() {
            // An empty timeline: nothing to cursor on yet.
            timeline.done = true;
        }
        let host = self.client.host.clone();
        let mut authors = BTreeSet::new();
        for status in statuses.iter().filter(|status| status.reblog.is_none()) {
            if authors.insert(status.account.id.clone()) {
                batch.push(person(&status.account, &host)?);
            }
        }
        for status in statuses.iter().filter(|status| status.reblog.is_none()) {
            batch.push(place(&mut timeline.state, status, &host)?);
        }
        forget_old(&mut timeline.state.threads);
        batch.checkpoint(&timeline.slot, &timeline.state)?;
        Ok(batch)
    }
}

/// Keeps the newest [`THREAD_MEMORY`] statuses.
fn forget_old(threads: &mut BTreeMap<String, Placed>) {
    while threads.len() > THREAD_MEMORY {
        let Some(oldest) = threads
            .keys()
            .min_by(|a, b| id_order(a).cmp(&id_order(b)))
            .cloned()
        else {
            return;
        };
        threads.remove(&oldest);
    }
}

/// The key of an account: its ActivityPub id, else its profile, else instance and id.
fn account_key(account: &Account, host: &str) -> String {
    account
        .uri
        .clone()
        .filter(|uri| !uri.is_empty())
        .or_else(|| account.url.clone().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| format!("{host}/accounts/{}", account.id))
}

fn person(account: &Account, host: &str) -> Result<pb::Person, ConnectorError> {
    let acct = if account.acct.is_empty() {
        &account.username
    } else {
        &account.acct
    };
    let handle = if acct.contains('@') {
        acct.clone()
    } else {
        format!("{acct}@{host}")
    };
    Ok(pb::Person {
        display_name: if account.display_name.trim().is_empty() {
            acct.clone()
        } else {
            account.display_name.clone()
        },
        bio: plain_text(&account.note),
        member: false,
        identities: vec![crate::archive::account_identity(
            handle,
            account.url.clone().unwrap_or_default(),
        )],
        created_at: account
            .created_at
            .as_deref()
            .map(|value| records::parse_rfc3339(value, "account created_at"))
            .transpose()?,
        ..records::person(account_key(account, host))
    })
}

/// The record of a status, placing it in its thread and remembering it.
fn place(state: &mut TimelineState, status: &Status, host: &str) -> Result<Record, ConnectorError> {
    let key = status
        .uri
        .clone()
        .filter(|uri| !uri.is_empty())
        .or_else(|| status.url.clone())
        .unwrap_or_else(|| status.id.clone());
    let mut text = plain_text(status.content.as_deref().unwrap_or_default());
    if let Some(warning) = status
        .spoiler_text
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        text = format!("{warning}\n\n{text}");
    }
    let created_at = status
        .created_at
        .as_deref()
        .map(|value| records::parse_rfc3339(value, &format!("status {}: created_at", status.id)))
        .transpose()?;
    let author = account_key(&status.account, host);
    let parent = status
        .in_reply_to_id
        .as_ref()
        .and_then(|parent| state.threads.get(parent))
        .cloned();
    let record: Record = match parent {
        Some(parent) => {
            state.threads.insert(
                status.id.clone(),
                Placed {
                    key: key.clone(),
                    thread: parent.thread.clone(),
                },
            );
            pb::Post {
                author,
                parent: if parent.key == parent.thread {
                    String::new()
                } else {
                    parent.key
                },
                text,
                created_at,
                reactions: status.reblogs_count.saturating_add(status.favourites_count),
                ..records::post(key, parent.thread)
            }
            .into()
        }
        None => {
            state.threads.insert(
                status.id.clone(),
                Placed {
                    key: key.clone(),
                    thread: key.clone(),
                },
            );
            let url = status.url.clone().unwrap_or_else(|| key.clone());
            let title = title_of(&text);
            let title = if title.is_empty() { url.clone() } else { title };
            pb::Conversation {
                title: if status.in_reply_to_id.is_some() {
                    format!("Re: {title}")
                } else {
                    title
                },
                url,
                body: text,
                tags: status
                    .tags
                    .iter()
                    .map(|tag| tag.name.to_lowercase())
                    .take(64)
                    .collect(),
                author,
                created_at,
                last_activity_at: created_at,
                ..records::conversation(key, pb::PlatformKind::PublicNetwork)
            }
            .into()
        }
    };
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_gives_max_id() {
        let link = "<https://x.example/api/v1/timelines/tag/a?limit=10&max_id=117>; rel=\"next\", <https://x.example/api/v1/timelines/tag/a?limit=10&min_id=200>; rel=\"prev\"";
        assert_eq!(next_max_id(link).as_deref(), Some("117"));
        assert_eq!(
            next_max_id("<https://x.example/?min_id=2>; rel=\"prev\""),
            None
        );
        assert_eq!(next_max_id(""), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("17", ""), Duration::from_secs(17));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", ""),
            Duration::ZERO,
            "a date in the past"
        );
        assert_eq!(retry_after("", ""), Duration::from_secs(60));
    }

    #[test]
    fn ids_order_by_length_then_digits() {
        assert!(id_order("99") < id_order("100"));
        assert!(id_order("117020581413876942") < id_order("117020582018205171"));
    }
}
