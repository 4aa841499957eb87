//! The StackExchange connector: a site's data dump (`Users.xml`, `Posts.xml`, `Comments.xml`)
//! as people, conversations and posts.
//!
//! Mapping:
//! - a user is a person (display name, `AboutMe` as plain text bio, member of the community),
//!   with a `stackexchange` identity (handle: the display name, which is what `@mentions` use;
//!   profile URL: the site's `/users/<id>` page when `site_url` is given), when `WebsiteUrl`
//!   is a profile on a known platform (GitHub, GitLab, Twitter/X, LinkedIn, Medium, a fediverse
//!   `/@name` page), a second identity on that platform (a home page is not an identity), and
//!   the network account (`AccountId`) as a `stackexchange` identity whose profile URL is its
//!   `https://stackexchange.com/users/<AccountId>` page. Display names are not unique (many
//!   users of a site are called Joe), so no handle is marked unique: the profile URLs (one site
//!   user, one network account) are what identity resolution merges on, and the network account
//!   joins the same person's users on several sites;
//! - a question (`PostTypeId` 1) is a `qa_forum` conversation (title, body as plain text, tags
//!   from the `<a><b>` or `|a|b|` forms, open unless it has a `ClosedDate`, created and last
//!   activity dates);
//! - an answer (`PostTypeId` 2) is a post of its question, whose parent is the question; a
//!   comment is a post (id `c<Id>`) of the question it belongs to, whose parent is the question
//!   or answer it was written on; rows of other post types (tag wikis, excerpts, nominations) and
//!   the comments on them are skipped;
//! - `PostLinks.xml` is skipped: a link relates two threads that are already conversations, and
//!   it carries no content of its own to make an asset of.
//!
//! Ids are the dump's own (users and posts), so other tools that read the dump agree with the
//! records. Files are streamed row by row (see [`dump`]); what the reader keeps in memory is one
//! row, the current batch, and, for comments, the question of every question and answer (eight
//! bytes per post).
//!
//! State: four streams (`users`, `questions`, `answers`, `comments`) and one cursor per file
//! (slots `users`, `posts` shared by questions and answers, `comments`), holding the highest
//! `Id` consumed in the file and the highest `CreationDate` seen. Dumps are written in
//! `Id` order, so a resume skips exactly the rows at or below the cursor; a file out of `Id`
//! order is refused rather than resumed wrongly. A newer dump of the same site resumes after the
//! old cursors and brings the rows added since (edits of old rows need a full refresh).

pub mod dump;
mod mapping;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

use crate::dump::{Row, RowReader};
pub use crate::mapping::{parse_tags, plain_text, website_identity};

/// The connector. Everything of a read lives in its [`DumpReader`].
#[derive(Debug, Default)]
pub struct StackExchangeConnector;

trellis_plugin_sdk::export_connector!(StackExchangeConnector);

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Deserialize)]
pub struct Config {
    /// The folder of an unpacked dump.
    pub path: PathBuf,
    /// The site's address, e.g. `https://conlang.stackexchange.com`, for links.
    #[serde(default)]
    pub site_url: Option<String>,
    /// Records per batch, and so between checkpoints.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Whether to read `Comments.xml`.
    #[serde(default = "yes")]
    pub comments: bool,
}

fn default_batch_size() -> usize {
    200
}

fn yes() -> bool {
    true
}

/// The stream of people (`Users.xml`).
pub const USERS: &str = "users";
/// The stream of questions (`Posts.xml`, `PostTypeId` 1).
pub const QUESTIONS: &str = "questions";
/// The stream of answers (`Posts.xml`, `PostTypeId` 2).
pub const ANSWERS: &str = "answers";
/// The stream of comments (`Comments.xml`).
pub const COMMENTS: &str = "comments";

/// The state slot of `Posts.xml`, shared by the questions and answers streams: one checkpoint
/// must cover both, since every checkpoint alone must be a point to resume from.
pub const POSTS_SLOT: &str = "posts";

/// The cursor of one file: the highest `Id` consumed in its file (rows skipped included) and
/// the highest `CreationDate` seen, as written in the dump.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    pub id: Option<i64>,
    #[serde(default)]
    pub created: Option<String>,
}

impl Cursor {
    /// Whether the row `id` comes after the cursor.
    fn is_new(&self, id: i64) -> bool {
        self.id.is_none_or(|last| id > last)
    }

    fn advance(&mut self, id: i64, created: Option<&str>) {
        if self.is_new(id) {
            self.id = Some(id);
        }
        if let Some(created) = created
            && self.created.as_deref().is_none_or(|seen| created > seen)
        {
            self.created = Some(created.to_owned());
        }
    }
}

impl Connector for StackExchangeConnector {
    type Config = Config;
    type Reader = DumpReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "stackexchange".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::QaForum,
            description: "a StackExchange site's data dump (Users.xml, Posts.xml, Comments.xml), streamed and read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["path"],
                "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "x-path": true, "description": "the folder of an unpacked dump: Posts.xml, and Users.xml and Comments.xml when present"},
                    "site_url": {"type": "string", "pattern": "^https?://[^/]+/?$", "description": "the site's address, e.g. https://conlang.stackexchange.com, for the links of questions and profiles"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200},
                    "comments": {"type": "boolean", "default": true, "description": "read Comments.xml"}
                }
            }),
            streams: vec![
                stream(USERS, RecordKind::Person, "Id"),
                stream(QUESTIONS, RecordKind::Conversation, "Id"),
                stream(ANSWERS, RecordKind::Post, "Id"),
                stream(COMMENTS, RecordKind::Post, "Id"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        if !config.path.is_dir() {
            return Err(ConnectorError::config(
                "path",
                format!(
                    "{} is not a folder; give the folder of an unpacked StackExchange dump",
                    config.path.display()
                ),
            ));
        }
        let posts = config.path.join("Posts.xml");
        let mut rows = RowReader::open(&posts, "path")?;
        match rows.next_row()? {
            Some(row) if row.get("Id").is_some() && row.get("PostTypeId").is_some() => {}
            Some(_) => {
                return Err(ConnectorError::config(
                    "path",
                    format!(
                        "{} has rows without Id and PostTypeId; it is not the Posts.xml of a StackExchange dump",
                        posts.display()
                    ),
                ));
            }
            None => {}
        }
        let present: Vec<&str> = ["Users.xml", "Posts.xml", "Comments.xml"]
            .into_iter()
            .filter(|name| config.path.join(name).is_file())
            .collect();
        Ok(format!(
            "{} holds {}",
            config.path.display(),
            present.join(", ")
        ))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<DumpReader, ConnectorError> {
        let site_url = config
            .site_url
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        Ok(DumpReader {
            users: state.get(USERS)?.unwrap_or_default(),
            posts: state.get(POSTS_SLOT)?.unwrap_or_default(),
            comments: state.get(COMMENTS)?.unwrap_or_default(),
            folder: config.path,
            site_url,
            batch_size: config.batch_size,
            read_comments: config.comments,
            cancel,
            phase: Phase::Users,
            rows: None,
            previous_id: None,
            threads: Vec::new(),
            skipped: 0,
        })
    }
}

/// The file a read is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Users,
    Posts,
    Comments,
    Done,
}

/// An open read of a dump: users, then posts, then comments.
#[derive(Debug)]
pub struct DumpReader {
    folder: PathBuf,
    site_url: Option<String>,
    batch_size: usize,
    read_comments: bool,
    cancel: CancelToken,
    phase: Phase,
    rows: Option<RowReader>,
    /// The `Id` of the previous row of the current file, to refuse a file out of order.
    previous_id: Option<i64>,
    users: Cursor,
    /// Questions and answers come from one file and share its cursor.
    posts: Cursor,
    comments: Cursor,
    /// (post id, question id) of every question and answer, in id order, for comments.
    threads: Vec<(u32, u32)>,
    /// Rows skipped as not mapped (other post types, comments on them).
    skipped: u64,
}

impl Reader for DumpReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        let mut batch = Batch::new();
        let mut rows_seen = 0u32;
        while batch.record_count() < self.batch_size {
            rows_seen += 1;
            if rows_seen.is_multiple_of(256) {
                self.cancel.check()?;
            }
            if self.phase == Phase::Done {
                batch.finish();
                return Ok(batch);
            }
            let Some(row) = self.next_row()? else {
                self.end_phase(&mut batch)?;
                continue;
            };
            match self.phase {
                Phase::Users => self.user(row, &mut batch)?,
                Phase::Posts => self.post(row, &mut batch)?,
                Phase::Comments => self.comment(row, &mut batch)?,
                Phase::Done => {}
            }
        }
        self.checkpoint_phase(&mut batch)?;
        Ok(batch)
    }
}

impl DumpReader {
    fn file_of(&self, phase: Phase) -> Option<(&'static str, bool)> {
        match phase {
            Phase::Users => Some(("Users.xml", false)),
            Phase::Posts => Some(("Posts.xml", true)),
            Phase::Comments => Some(("Comments.xml", false)),
            Phase::Done => None,
        }
    }

    /// The next row of the current file, opening it first; `None` at its end (or when an
    /// optional file is missing).
    fn next_row(&mut self) -> Result<Option<Row>, ConnectorError> {
        if self.rows.is_none() {
            let Some((name, required)) = self.file_of(self.phase) else {
                return Ok(None);
            };
            let path = self.folder.join(name);
            if !required && !path.exists() {
                return Ok(None);
            }
            self.rows = Some(RowReader::open(&path, "path")?);
            self.previous_id = None;
        }
        let rows = self.rows.as_mut().expect("opened above");
        rows.next_row()
    }

    /// The `Id` of a row, checked to follow the previous row's.
    fn row_id(&mut self, row: &Row) -> Result<i64, ConnectorError> {
        let path = self.path();
        let text = row.get("Id").ok_or_else(|| {
            ConnectorError::system(format!(
                "{}: row {} has no Id; the dump file is damaged, unpack it again",
                path.display(),
                row.index
            ))
        })?;
        let id: i64 = text.trim().parse().map_err(|_| {
            ConnectorError::system(format!(
                "{}: row {}: Id {text:?} is not an integer",
                path.display(),
                row.index
            ))
        })?;
        if let Some(previous) = self.previous_id
            && id <= previous
        {
            return Err(ConnectorError::system(format!(
                "{}: row {}: Id {id} does not follow Id {previous}; the connector resumes by Id and needs the file in the dump's Id order",
                path.display(),
                row.index
            )));
        }
        self.previous_id = Some(id);
        Ok(id)
    }

    fn path(&self) -> PathBuf {
        self.rows
            .as_ref()
            .map_or_else(|| self.folder.clone(), |rows| rows.path().to_path_buf())
    }

    fn user(&mut self, row: Row, batch: &mut Batch) -> Result<(), ConnectorError> {
        let id = self.row_id(&row)?;
        if self.users.is_new(id) {
            let person = mapping::person(&row, id, self.site_url.as_deref());
            batch.push(Record::from(person).in_stream(USERS));
        }
        self.users.advance(id, row.get("CreationDate"));
        Ok(())
    }

    fn post(&mut self, row: Row, batch: &mut Batch) -> Result<(), ConnectorError> {
        let id = self.row_id(&row)?;
        let created = row.get("CreationDate");
        match row.text("PostTypeId").trim() {
            "1" => {
                self.remember(id, id, &row)?;
                if self.posts.is_new(id) {
                    let conversation = mapping::question(&row, id, self.site_url.as_deref());
                    batch.push(Record::from(conversation).in_stream(QUESTIONS));
                }
            }
            "2" => match row
                .get("ParentId")
                .and_then(|text| text.trim().parse().ok())
            {
                Some(question) => {
                    self.remember(id, question, &row)?;
                    if self.posts.is_new(id) {
                        let post = mapping::answer(&row, id, question);
                        batch.push(Record::from(post).in_stream(ANSWERS));
                    }
                }
                None => self.skipped += 1,
            },
            _ => self.skipped += 1,
        }
        self.posts.advance(id, created);
        Ok(())
    }

    /// Notes the question of a question or answer, for the comments written on it.
    fn remember(&mut self, post: i64, question: i64, row: &Row) -> Result<(), ConnectorError> {
        if !self.read_comments {
            return Ok(());
        }
        let (Ok(post), Ok(question)) = (u32::try_from(post), u32::try_from(question)) else {
            return Err(ConnectorError::system(format!(
                "{}: row {}: post ids beyond 4294967295 are not supported",
                self.path().display(),
                row.index
            )));
        };
        self.threads.push((post, question));
        Ok(())
    }

    fn comment(&mut self, row: Row, batch: &mut Batch) -> Result<(), ConnectorError> {
        let id = self.row_id(&row)?;
        if self.comments.is_new(id) {
            let question = row
                .get("PostId")
                .and_then(|text| text.trim().parse::<u32>().ok())
                .and_then(|post| {
                    self.threads
                        .binary_search_by_key(&post, |(post, _)| *post)
                        .ok()
                        .map(|index| (post, self.threads[index].1))
                });
            match question {
                Some((post, question)) => {
                    let comment = mapping::comment(&row, id, post, question);
                    batch.push(Record::from(comment).in_stream(COMMENTS));
                }
                None => self.skipped += 1,
            }
        }
        self.comments.advance(id, row.get("CreationDate"));
        Ok(())
    }

    /// The current file ended: checkpoint its streams and move to the next file.
    fn end_phase(&mut self, batch: &mut Batch) -> Result<(), ConnectorError> {
        self.checkpoint_phase(batch)?;
        self.rows = None;
        self.phase = match self.phase {
            Phase::Users => Phase::Posts,
            Phase::Posts if self.read_comments => {
                // Posts.xml is in Id order, so this is a no-op unless the file was not.
                self.threads.sort_unstable();
                Phase::Comments
            }
            Phase::Posts | Phase::Comments | Phase::Done => Phase::Done,
        };
        Ok(())
    }

    fn checkpoint_phase(&self, batch: &mut Batch) -> Result<(), ConnectorError> {
        match self.phase {
            Phase::Users => batch.checkpoint(USERS, &self.users),
            Phase::Posts => batch.checkpoint(POSTS_SLOT, &self.posts),
            Phase::Comments => batch.checkpoint(COMMENTS, &self.comments),
            Phase::Done => Ok(()),
        }
    }

    /// Rows skipped so far as not mapped.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
