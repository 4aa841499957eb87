//! Syndication feeds: RSS 0.9x/1.0/2.0, Atom and JSON Feed, parsed whole by `feed-rs` (a feed
//! is one document of bounded size), mapped to conversations and people, and emitted oldest
//! first after the saved cursor.

use std::io::Read;

use feed_rs::model::{Entry, Feed, Person, Text};
use trellis_plugin_sdk::prelude::*;

use crate::text::{MAX_TEXT, MAX_TITLE, email_sha256, external_id, html_to_text, truncate};
use crate::{EntryCursor, PLATFORM, SlotState};

/// Tags kept per conversation (the core's limit).
const MAX_TAGS: usize = 64;

/// Parses a feed; `field` and `location` name it in errors.
pub fn parse(reader: impl Read, field: &str, location: &str) -> Result<Feed, ConnectorError> {
    let bytes = crate::fetch::read_all(reader, field)?;
    let parser = feed_rs::parser::Builder::new()
        .base_uri(location.starts_with("http").then_some(location))
        .id_generator(stable_id)
        .build();
    parser.parse(bytes.as_slice()).map_err(|error| {
        ConnectorError::config(
            field,
            format!(
                "{location} is not a feed that can be read ({}); point it at an RSS, Atom or JSON Feed document, or remove it",
                problem(&error)
            ),
        )
    })
}

/// What is wrong with a document that does not parse, quoting nothing of it: a server that is
/// not a feed (an internal service a source was pointed at) must not have its answer read back
/// through error messages.
fn problem(error: &feed_rs::parser::ParseFeedError) -> String {
    use feed_rs::parser::{ParseErrorKind, ParseFeedError};
    match error {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            "no RSS, Atom or JSON Feed root element".to_owned()
        }
        ParseFeedError::ParseError(ParseErrorKind::UnknownMimeType(_)) => {
            "content of a type feeds do not carry".to_owned()
        }
        ParseFeedError::ParseError(ParseErrorKind::MissingContent(element)) => {
            format!("a {element} element without its content")
        }
        ParseFeedError::IoError(error) => format!("reading it failed: {}", error.kind()),
        ParseFeedError::JsonSerde(error) => trellis_plugin_sdk::http::describe_json_error(error),
        ParseFeedError::JsonUnsupportedVersion(_) => {
            "a JSON Feed of a version that is not supported".to_owned()
        }
        ParseFeedError::XmlReader(_) => "it is not well-formed XML".to_owned(),
    }
}

/// Ids for entries that have none, stable across reads (feed-rs falls back to a random UUID,
/// which would make every read look new).
fn stable_id(links: &[feed_rs::model::Link], title: &Option<Text>, _uri: Option<&str>) -> String {
    match (links.first(), title) {
        (Some(link), title) => feed_rs::parser::generate_id_from_link_and_title(link, title),
        (None, Some(title)) => format!("title:{}", crate::text::sha256_hex(&title.content)),
        (None, None) => String::new(),
    }
}

/// One entry ready to emit: its position and its records (the author's people first).
#[derive(Debug)]
struct Prepared {
    cursor: EntryCursor,
    records: Vec<Record>,
}

/// A feed being emitted.
#[derive(Debug)]
pub struct FeedRead {
    pub slot: String,
    entries: std::vec::IntoIter<Prepared>,
    state: SlotState,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl FeedRead {
    pub fn new(
        feed: Feed,
        slot: String,
        saved: SlotState,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Self {
        let feed_authors = feed.authors.clone();
        let mut prepared: Vec<Prepared> = feed
            .entries
            .into_iter()
            .map(|entry| prepare(entry, &feed_authors))
            .filter(|entry| {
                saved
                    .newest
                    .as_ref()
                    .is_none_or(|newest| entry.cursor > *newest)
            })
            .collect();
        prepared.sort_by(|left, right| left.cursor.cmp(&right.cursor));
        // A broken feed may repeat an entry: keep one of each.
        prepared.dedup_by(|later, earlier| later.cursor == earlier.cursor);
        Self {
            slot,
            entries: prepared.into_iter(),
            state: saved,
            etag,
            last_modified,
        }
    }

    /// Adds up to `batch_size` entries and a checkpoint; true when the feed is done.
    pub fn fill(&mut self, batch: &mut Batch, batch_size: usize) -> Result<bool, ConnectorError> {
        let mut taken = 0;
        while taken < batch_size {
            let Some(entry) = self.entries.next() else {
                // The end: the validators of this body are now safe to keep.
                self.state.etag = self.etag.take();
                self.state.last_modified = self.last_modified.take();
                batch.checkpoint(&self.slot, &self.state)?;
                return Ok(true);
            };
            for record in entry.records {
                batch.push(record);
            }
            self.state.newest = Some(entry.cursor);
            taken += 1;
        }
        if self.entries.len() == 0 {
            self.state.etag = self.etag.take();
            self.state.last_modified = self.last_modified.take();
            batch.checkpoint(&self.slot, &self.state)?;
            return Ok(true);
        }
        batch.checkpoint(&self.slot, &self.state)?;
        Ok(false)
    }
}

fn plain(text: &Text) -> String {
    if text.content_type.to_string().contains("html") {
        html_to_text(&text.content)
    } else {
        html_to_text(&text.content).trim().to_owned()
    }
}

/// The person id of a feed author.
pub fn person_id(author: &Person) -> String {
    match author.uri.as_deref().filter(|uri| !uri.trim().is_empty()) {
        Some(uri) => external_id("author", uri.trim()),
        None => external_id(
            "author",
            &format!("name:{}", author.name.trim().to_lowercase()),
        ),
    }
}

fn person_record(author: &Person) -> pb::Person {
    let name = author.name.trim().to_owned();
    let uri = author.uri.clone().unwrap_or_default();
    pb::Person {
        display_name: name.clone(),
        identities: vec![pb::Identity {
            email_sha256: email_sha256(author.email.as_deref().unwrap_or("")),
            ..records::identity(PLATFORM, name, uri)
        }],
        ..records::person(person_id(author))
    }
}

fn timestamp(entry: &Entry) -> (Option<records::Timestamp>, Option<records::Timestamp>) {
    let created = entry
        .published
        .or(entry.updated)
        .map(|date| records::Timestamp {
            seconds: date.timestamp(),
            nanos: i32::try_from(date.timestamp_subsec_nanos()).unwrap_or(0),
        });
    let updated = entry
        .updated
        .or(entry.published)
        .map(|date| records::Timestamp {
            seconds: date.timestamp(),
            nanos: i32::try_from(date.timestamp_subsec_nanos()).unwrap_or(0),
        });
    (created, updated)
}

fn prepare(entry: Entry, feed_authors: &[Person]) -> Prepared {
    let (created_at, last_activity_at) = timestamp(&entry);
    let at = created_at
        .as_ref()
        .map(records::millis_of)
        .unwrap_or(i64::MIN);
    let mut raw_id = entry.id.trim().to_owned();
    let title = entry.title.as_ref().map(plain).unwrap_or_default();
    let body = entry
        .content
        .as_ref()
        .and_then(|content| content.body.as_deref())
        .map(html_to_text)
        .filter(|body| !body.is_empty())
        .or_else(|| entry.summary.as_ref().map(plain))
        .unwrap_or_default();
    let url = entry
        .links
        .iter()
        .find(|link| link.rel.as_deref().is_none_or(|rel| rel == "alternate"))
        .or(entry.links.first())
        .map(|link| link.href.clone())
        .unwrap_or_default();
    if raw_id.is_empty() {
        raw_id = format!(
            "content:{}",
            crate::text::sha256_hex(&format!("{url}\n{title}\n{body}"))
        );
    }
    let mut tags: Vec<String> = Vec::new();
    for category in &entry.categories {
        let tag = category
            .label
            .as_deref()
            .unwrap_or(&category.term)
            .trim()
            .to_owned();
        if !tag.is_empty() && !tags.contains(&tag) && tags.len() < MAX_TAGS {
            tags.push(tag);
        }
    }
    let authors = if entry.authors.is_empty() {
        feed_authors
    } else {
        &entry.authors[..]
    };
    let authors: Vec<&Person> = authors
        .iter()
        .filter(|author| !author.name.trim().is_empty() || author.uri.is_some())
        .collect();
    let mut records: Vec<Record> = authors
        .iter()
        .map(|author| person_record(author).into())
        .collect();
    let title = if title.is_empty() && body.is_empty() {
        if url.is_empty() {
            raw_id.clone()
        } else {
            url.clone()
        }
    } else {
        title
    };
    records.push(
        pb::Conversation {
            url,
            title: truncate(title, MAX_TITLE),
            body: truncate(body, MAX_TEXT),
            tags,
            author: authors
                .first()
                .map(|author| person_id(author))
                .unwrap_or_default(),
            open: true,
            created_at,
            last_activity_at,
            ..records::conversation(external_id("entry", &raw_id), pb::PlatformKind::Blog)
        }
        .into(),
    );
    Prepared {
        cursor: EntryCursor { at, id: raw_id },
        records,
    }
}
