//! WordPress WXR exports, parsed as a stream of quick-xml events so an export of any size is
//! read in bounded memory. The unit of progress is a top-level `<wp:author>` or `<item>`: the
//! state counts the units consumed, and a resume skips exactly that many.
//!
//! Mapping: authors become people (members: they hold accounts on the site); posts, pages and
//! other content types become conversations (open while comments are open); attachments become
//! assets; navigation menu items, revisions and other site machinery are skipped. Approved and
//! pending comments become posts with their parent comment; spam and trash are skipped.

use std::collections::HashMap;
use std::io::BufRead;

use quick_xml::events::Event;
use trellis_plugin_sdk::prelude::*;

use crate::text::{MAX_TEXT, MAX_TITLE, email_sha256, html_to_text, truncate};
use crate::{PLATFORM, SlotState};

/// Post types that are site machinery, not content.
const SKIPPED_TYPES: &[&str] = &[
    "nav_menu_item",
    "revision",
    "custom_css",
    "customize_changeset",
    "oembed_cache",
    "user_request",
    "wp_block",
    "wp_template",
    "wp_template_part",
    "wp_global_styles",
    "wp_navigation",
    "wp_font_family",
    "wp_font_face",
];

/// A `<wp:author>`.
#[derive(Debug, Default)]
pub struct Author {
    pub id: String,
    pub login: String,
    pub email: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
}

/// A `<wp:comment>`.
#[derive(Debug, Default)]
pub struct Comment {
    pub id: String,
    pub author: String,
    pub author_email: String,
    pub author_url: String,
    pub date_gmt: String,
    pub content: String,
    pub approved: String,
    pub parent: String,
    pub user_id: String,
}

/// An `<item>`.
#[derive(Debug, Default)]
pub struct Item {
    pub title: String,
    pub link: String,
    pub pub_date: String,
    pub creator: String,
    pub guid: String,
    pub description: String,
    pub content: String,
    pub excerpt: String,
    pub post_id: String,
    pub post_date_gmt: String,
    pub post_modified_gmt: String,
    pub comment_status: String,
    pub status: String,
    pub post_type: String,
    pub attachment_url: String,
    pub categories: Vec<String>,
    pub comments: Vec<Comment>,
}

/// One unit of the export.
#[derive(Debug)]
pub enum Unit {
    Author(Author),
    Item(Box<Item>),
}

/// A pull parser of units over any buffered reader.
pub struct Units<R: BufRead> {
    reader: quick_xml::Reader<R>,
    buffer: Vec<u8>,
    field: String,
}

/// What is wrong with the XML, quoting nothing of it (quick-xml's texts quote element names
/// and entities, and an export may come from a server that is no WordPress).
fn xml_problem(error: &quick_xml::Error) -> String {
    match error {
        // Fixed texts: "tag not closed: `>` not found before end of input" and the like.
        quick_xml::Error::Syntax(syntax) => syntax.to_string(),
        quick_xml::Error::Io(error) => format!("reading it failed: {}", error.kind()),
        quick_xml::Error::IllFormed(_) => "an element is not closed as it was opened".to_owned(),
        quick_xml::Error::InvalidAttr(_) => "an attribute is not well-formed".to_owned(),
        quick_xml::Error::Encoding(_) => "text that is not in its declared encoding".to_owned(),
        quick_xml::Error::Escape(_) => {
            "an entity or character reference that is not valid".to_owned()
        }
        quick_xml::Error::Namespace(_) => "a namespace prefix that is not declared".to_owned(),
    }
}

impl<R: BufRead> Units<R> {
    pub fn new(reader: R, field: &str) -> Self {
        let mut reader = quick_xml::Reader::from_reader(reader);
        reader.config_mut().trim_text(false);
        Self {
            reader,
            buffer: Vec::with_capacity(64 * 1024),
            field: field.to_owned(),
        }
    }

    fn error(&self, error: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::config(
            &self.field,
            format!(
                "the WordPress export is not well-formed XML near byte {} ({error}); export it again",
                self.reader.buffer_position()
            ),
        )
    }

    /// The next author or item, or `None` at the end of the export.
    pub fn next_unit(&mut self) -> Result<Option<Unit>, ConnectorError> {
        // Elements open inside the current unit, and the text of the innermost one.
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut unit: Option<Unit> = None;
        let mut comment: Option<Comment> = None;
        loop {
            self.buffer.clear();
            let event = match self.reader.read_event_into(&mut self.buffer) {
                Ok(event) => event,
                Err(error) => return Err(self.error(xml_problem(&error))),
            };
            match event {
                Event::Start(start) => {
                    let name = start.name().as_ref().to_owned();
                    if unit.is_none() {
                        match name.as_str() {
                            "wp:author" => unit = Some(Unit::Author(Author::default())),
                            "item" => unit = Some(Unit::Item(Box::default())),
                            _ => continue,
                        }
                        path.clear();
                        continue;
                    }
                    if name == "wp:comment" && path.is_empty() {
                        comment = Some(Comment::default());
                    }
                    path.push(name);
                    text.clear();
                }
                Event::End(end) => {
                    let name = end.name().as_ref().to_owned();
                    let Some(current) = unit.as_mut() else {
                        continue;
                    };
                    if path.is_empty() {
                        // The unit's own end tag.
                        return Ok(unit);
                    }
                    path.pop();
                    let value = std::mem::take(&mut text);
                    match current {
                        Unit::Author(author) => set_author(author, &name, value),
                        Unit::Item(item) => {
                            if name == "wp:comment" && path.is_empty() {
                                if let Some(done) = comment.take() {
                                    item.comments.push(done);
                                }
                            } else if let Some(open) = comment.as_mut() {
                                set_comment(open, &name, value);
                            } else if path.is_empty() {
                                set_item(item, &name, value);
                            }
                        }
                    }
                }
                Event::Text(content) if unit.is_some() => {
                    text.push_str(&content.xml10_content());
                }
                Event::CData(content) if unit.is_some() => {
                    text.push_str(&content.xml10_content());
                }
                Event::GeneralRef(reference) if unit.is_some() => {
                    if let Ok(Some(character)) = reference.resolve_char_ref() {
                        text.push(character);
                    } else {
                        let name = reference.xml10_content();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(resolved) => text.push_str(resolved),
                            None => {
                                text.push('&');
                                text.push_str(&name);
                                text.push(';');
                            }
                        }
                    }
                }
                Event::Eof => {
                    if unit.is_some() {
                        return Err(self.error("the file ends inside an item or author"));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }
}

fn set_author(author: &mut Author, name: &str, value: String) {
    match name {
        "wp:author_id" => author.id = value.trim().to_owned(),
        "wp:author_login" => author.login = value.trim().to_owned(),
        "wp:author_email" => author.email = value,
        "wp:author_display_name" => author.display_name = value.trim().to_owned(),
        "wp:author_first_name" => author.first_name = value.trim().to_owned(),
        "wp:author_last_name" => author.last_name = value.trim().to_owned(),
        _ => {}
    }
}

fn set_comment(comment: &mut Comment, name: &str, value: String) {
    match name {
        "wp:comment_id" => comment.id = value.trim().to_owned(),
        "wp:comment_author" => comment.author = value.trim().to_owned(),
        "wp:comment_author_email" => comment.author_email = value,
        "wp:comment_author_url" => comment.author_url = value.trim().to_owned(),
        "wp:comment_date_gmt" => comment.date_gmt = value.trim().to_owned(),
        "wp:comment_content" => comment.content = value,
        "wp:comment_approved" => comment.approved = value.trim().to_owned(),
        "wp:comment_parent" => comment.parent = value.trim().to_owned(),
        "wp:comment_user_id" => comment.user_id = value.trim().to_owned(),
        _ => {}
    }
}

fn set_item(item: &mut Item, name: &str, value: String) {
    match name {
        "title" => item.title = value.trim().to_owned(),
        "link" => item.link = value.trim().to_owned(),
        "pubDate" => item.pub_date = value.trim().to_owned(),
        "dc:creator" => item.creator = value.trim().to_owned(),
        "guid" => item.guid = value.trim().to_owned(),
        "description" => item.description = value,
        "content:encoded" => item.content = value,
        "excerpt:encoded" => item.excerpt = value,
        "wp:post_id" => item.post_id = value.trim().to_owned(),
        "wp:post_date_gmt" => item.post_date_gmt = value.trim().to_owned(),
        "wp:post_modified_gmt" => item.post_modified_gmt = value.trim().to_owned(),
        "wp:comment_status" => item.comment_status = value.trim().to_owned(),
        "wp:status" => item.status = value.trim().to_owned(),
        "wp:post_type" => item.post_type = value.trim().to_owned(),
        "wp:attachment_url" => item.attachment_url = value.trim().to_owned(),
        "category" => {
            let tag = value.trim().to_owned();
            if !tag.is_empty() && !item.categories.contains(&tag) && item.categories.len() < 64 {
                item.categories.push(tag);
            }
        }
        _ => {}
    }
}

/// A WordPress date such as `2010-01-08 08:16:20` (UTC for the `_gmt` fields); `None` for
/// empty dates and the `0000-00-00 00:00:00` of drafts.
pub fn parse_wp_date(value: &str) -> Option<records::Timestamp> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let parsed = time::PrimitiveDateTime::parse(value.trim(), &format).ok()?;
    Some(records::Timestamp {
        seconds: parsed.assume_utc().unix_timestamp(),
        nanos: 0,
    })
}

fn parse_rfc2822(value: &str) -> Option<records::Timestamp> {
    let parsed =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822)
            .ok()?;
    Some(records::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: 0,
    })
}

/// Counts of an export, for `check`.
pub fn count(reader: impl BufRead, field: &str) -> Result<String, ConnectorError> {
    let mut units = Units::new(reader, field);
    let (mut authors, mut items, mut comments) = (0, 0, 0);
    while let Some(unit) = units.next_unit()? {
        match unit {
            Unit::Author(_) => authors += 1,
            Unit::Item(item) => {
                items += 1;
                comments += item.comments.len();
            }
        }
    }
    Ok(format!(
        "{authors} authors, {items} items, {comments} comments"
    ))
}

/// The person id of a site author.
pub fn author_id(login: &str) -> String {
    crate::text::external_id("wp:author", login)
}

impl<R: BufRead> std::fmt::Debug for Units<R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Units")
            .field("field", &self.field)
            .field("at", &self.reader.buffer_position())
            .finish()
    }
}

impl std::fmt::Debug for WxrRead {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WxrRead")
            .field("slot", &self.slot)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A WXR export being emitted.
pub struct WxrRead {
    pub slot: String,
    units: Units<Box<dyn BufRead + Send>>,
    state: SlotState,
    /// Author ids to logins, to credit comments written by site users.
    logins: HashMap<String, String>,
    /// Units to skip before emitting (already emitted before the checkpoint).
    skip: u64,
}

impl WxrRead {
    pub fn open(
        reader: Box<dyn BufRead + Send>,
        field: String,
        slot: String,
        fingerprint: Option<String>,
        saved: SlotState,
    ) -> Result<Self, ConnectorError> {
        let same_file = fingerprint.is_some() && saved.fingerprint == fingerprint;
        let skip = if same_file { saved.position } else { 0 };
        let state = if same_file {
            SlotState {
                position: 0,
                ..saved
            }
        } else {
            // A new export: read it whole, keeping what is newer than the last complete one.
            let since = if saved.complete {
                saved.newest_millis.or(saved.since_millis)
            } else {
                saved.since_millis
            };
            SlotState {
                fingerprint,
                position: 0,
                since_millis: since,
                newest_millis: since,
                complete: false,
                ..SlotState::default()
            }
        };
        Ok(Self {
            slot,
            units: Units::new(reader, &field),
            skip,
            state,
            logins: HashMap::new(),
        })
    }

    /// Adds up to `batch_size` units' records and a checkpoint; true when the export is done.
    pub fn fill(
        &mut self,
        batch: &mut Batch,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<bool, ConnectorError> {
        let mut consumed = 0;
        let mut done = false;
        while consumed < batch_size {
            cancel.check()?;
            let Some(unit) = self.units.next_unit()? else {
                done = true;
                break;
            };
            let index = self.state.position;
            if let Unit::Author(author) = &unit
                && !author.id.is_empty()
            {
                self.logins.insert(author.id.clone(), author.login.clone());
            }
            if index < self.skip {
                // Emitted before the checkpoint we resume from; authors still feed `logins`.
                self.state.position += 1;
                continue;
            }
            self.emit(unit, batch);
            self.state.position += 1;
            consumed += 1;
        }
        if done {
            self.state.complete = true;
        }
        batch.checkpoint(&self.slot, &self.state)?;
        Ok(done)
    }

    fn is_new(&self, millis: Option<i64>) -> bool {
        match (self.state.since_millis, millis) {
            (None, _) => true,
            (Some(since), Some(at)) => at > since,
            (Some(_), None) => false,
        }
    }

    fn saw(&mut self, millis: Option<i64>) {
        if let Some(at) = millis {
            self.state.newest_millis = Some(self.state.newest_millis.map_or(at, |n| n.max(at)));
        }
    }

    fn emit(&mut self, unit: Unit, batch: &mut Batch) {
        match unit {
            Unit::Author(author) => {
                if author.login.is_empty() {
                    return;
                }
                // Authors carry no date: re-emitting them from a new export is an idempotent
                // upsert, and their profile may have changed.
                batch.push(author_record(&author));
            }
            Unit::Item(item) => self.emit_item(*item, batch),
        }
    }

    fn emit_item(&mut self, item: Item, batch: &mut Batch) {
        if SKIPPED_TYPES.contains(&item.post_type.as_str()) || item.post_id.is_empty() {
            return;
        }
        let created_at =
            parse_wp_date(&item.post_date_gmt).or_else(|| parse_rfc2822(&item.pub_date));
        let modified_at = parse_wp_date(&item.post_modified_gmt).or(created_at);
        let created_millis = created_at.as_ref().map(records::millis_of);
        let modified_millis = modified_at.as_ref().map(records::millis_of);
        let author = if item.creator.is_empty() {
            String::new()
        } else {
            author_id(&item.creator)
        };
        if item.post_type == "attachment" {
            let changed = self.is_new(modified_millis.max(created_millis));
            self.saw(modified_millis.max(created_millis));
            if changed {
                let url = if item.attachment_url.is_empty() {
                    item.link.clone()
                } else {
                    item.attachment_url.clone()
                };
                let text = html_to_text(if item.content.trim().is_empty() {
                    &item.excerpt
                } else {
                    &item.content
                });
                batch.push(pb::Asset {
                    title: truncate(item.title.clone(), MAX_TITLE),
                    text: truncate(text, MAX_TEXT),
                    own: true,
                    tags: item.categories.clone(),
                    created_at,
                    ..records::asset(
                        format!("wp:attachment:{}", item.post_id),
                        url,
                        asset_kind(&item.attachment_url),
                    )
                });
            }
            return;
        }
        let conversation_id = format!("wp:post:{}", item.post_id);
        let comments: Vec<&Comment> = item
            .comments
            .iter()
            .filter(|comment| matches!(comment.approved.as_str(), "1" | "0" | "approve" | "hold"))
            .collect();
        let comment_dates: Vec<Option<i64>> = comments
            .iter()
            .map(|comment| {
                parse_wp_date(&comment.date_gmt)
                    .as_ref()
                    .map(records::millis_of)
            })
            .collect();
        let newest_comment = comment_dates.iter().flatten().max().copied();
        let last_activity = [modified_millis, created_millis, newest_comment]
            .into_iter()
            .flatten()
            .max();
        let item_changed = self.is_new(modified_millis.max(created_millis));
        let any_comment_new = comment_dates.iter().any(|date| self.is_new(*date));
        self.saw(last_activity);
        if !item_changed && !any_comment_new {
            return;
        }
        let body_html = if item.content.trim().is_empty() {
            &item.excerpt
        } else {
            &item.content
        };
        let body = html_to_text(body_html);
        let title = if item.title.is_empty() && body.is_empty() {
            if item.link.is_empty() {
                conversation_id.clone()
            } else {
                item.link.clone()
            }
        } else {
            item.title.clone()
        };
        batch.push(pb::Conversation {
            url: item.link.clone(),
            title: truncate(title, MAX_TITLE),
            body: truncate(body, MAX_TEXT),
            tags: item.categories.clone(),
            author,
            open: item.comment_status == "open",
            created_at,
            last_activity_at: last_activity.map(records::timestamp_from_millis),
            ..records::conversation(conversation_id.clone(), pb::PlatformKind::Blog)
        });
        for (comment, date) in comments.into_iter().zip(comment_dates) {
            if !self.is_new(date) || comment.id.is_empty() {
                continue;
            }
            let site_login = self
                .logins
                .get(&comment.user_id)
                .filter(|_| comment.user_id != "0");
            let author = match site_login {
                Some(login) => author_id(login),
                None => {
                    let person = commenter_record(comment);
                    let id = person
                        .r#ref
                        .as_ref()
                        .map(|r| r.external_id.clone())
                        .unwrap_or_default();
                    if !id.is_empty() {
                        batch.push(person);
                    }
                    id
                }
            };
            let parent = if comment.parent.is_empty() || comment.parent == "0" {
                String::new()
            } else {
                format!("wp:comment:{}", comment.parent)
            };
            batch.push(pb::Post {
                author,
                parent,
                created_at: date.map(records::timestamp_from_millis),
                text: truncate(html_to_text(&comment.content), MAX_TEXT),
                ..records::post(
                    format!("wp:comment:{}", comment.id),
                    conversation_id.clone(),
                )
            });
        }
    }
}

fn asset_kind(url: &str) -> pb::AssetKind {
    let lower = url.to_ascii_lowercase();
    if [".mp4", ".mov", ".webm", ".m4v", ".ogv"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        pb::AssetKind::Video
    } else if [
        ".pdf", ".doc", ".docx", ".odt", ".ppt", ".pptx", ".xls", ".xlsx",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
    {
        pb::AssetKind::Doc
    } else {
        pb::AssetKind::Article
    }
}

fn author_record(author: &Author) -> pb::Person {
    let full_name = format!("{} {}", author.first_name, author.last_name)
        .trim()
        .to_owned();
    let display_name = [
        author.display_name.as_str(),
        full_name.as_str(),
        author.login.as_str(),
    ]
    .into_iter()
    .find(|name| !name.is_empty())
    .unwrap_or_default()
    .to_owned();
    pb::Person {
        display_name,
        member: true,
        identities: vec![pb::Identity {
            email_sha256: email_sha256(&author.email),
            ..records::identity(PLATFORM, author.login.clone(), String::new())
        }],
        ..records::person(author_id(&author.login))
    }
}

/// A commenter without a site account, known by their URL, else their e-mail, else their name.
fn commenter_record(comment: &Comment) -> pb::Person {
    let email_hash = email_sha256(&comment.author_email);
    let key = if !comment.author_url.is_empty() {
        format!("url:{}", comment.author_url)
    } else if !email_hash.is_empty() {
        format!("email:{email_hash}")
    } else if !comment.author.is_empty() {
        format!("name:{}", comment.author.to_lowercase())
    } else {
        return records::person("");
    };
    pb::Person {
        display_name: comment.author.clone(),
        identities: vec![pb::Identity {
            email_sha256: email_hash,
            ..records::identity(PLATFORM, comment.author.clone(), comment.author_url.clone())
        }],
        ..records::person(crate::text::external_id("wp:commenter", &key))
    }
}
