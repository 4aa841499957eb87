//! Reading a StackExchange data dump (`Posts.xml`, `Comments.xml`, `Users.xml`, `PostLinks.xml`).
//!
//! Each file is one element per `<row .../>`, with everything in attributes; the files of a large
//! site run to gigabytes, so they are streamed row by row with `quick-xml` and never held as a DOM.
//! Attribute values are XML-unescaped (and normalised as the XML specification says, the way any
//! conforming parser reads them); post bodies and `AboutMe` stay HTML here: what is stripped and
//! when is the protocol's business, not the reader's.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::EvalError;

/// A dump timestamp (`CreationDate`), in the dump's own time zone (UTC, without a suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub PrimitiveDateTime);

const PARSE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");
const DISPLAY_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");

impl Timestamp {
    /// Parses `2018-07-13T03:55:48.787` (fractional seconds optional).
    pub fn parse(text: &str) -> Option<Timestamp> {
        PrimitiveDateTime::parse(text, PARSE_FORMAT)
            .ok()
            .map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(DISPLAY_FORMAT) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// `PostTypeId`: only questions (threads) and answers matter to the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostType {
    Question,
    Answer,
    /// Tag wikis, excerpts, moderator nominations and the like.
    Other(i64),
}

/// One row of `Posts.xml`.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub post_type: PostType,
    /// The question an answer belongs to.
    pub parent_id: Option<i64>,
    pub accepted_answer_id: Option<i64>,
    pub creation_date: Timestamp,
    /// As in the dump: may be absent or -1 (Community, which the protocol treats as anonymous).
    pub owner_user_id: Option<i64>,
    pub title: Option<String>,
    /// HTML, as in the dump.
    pub body: String,
    pub tags: Vec<String>,
}

/// One row of `Comments.xml`.
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub creation_date: Timestamp,
    pub user_id: Option<i64>,
    /// Plain text (comments are not HTML).
    pub text: String,
}

/// One row of `Users.xml` (only what the protocol uses).
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    /// HTML, as in the dump.
    pub about_me: Option<String>,
}

/// One row of `PostLinks.xml`.
#[derive(Debug, Clone)]
pub struct PostLink {
    pub post_id: i64,
    pub related_post_id: i64,
    pub link_type_id: i64,
}

/// A parsed StackExchange dump.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub posts: Vec<Post>,
    pub comments: Vec<Comment>,
    pub users: Vec<User>,
    pub post_links: Vec<PostLink>,
}

impl Dump {
    /// Loads a dump folder. `Posts.xml` and `Comments.xml` are required; `Users.xml` and
    /// `PostLinks.xml` may be absent (then there are no `AboutMe` texts, or no Task D).
    pub fn load(dir: &Path) -> Result<Dump, EvalError> {
        let mut dump = Dump::default();
        read_rows(&dir.join("Posts.xml"), true, |row| {
            dump.posts.push(parse_post(row)?);
            Ok(())
        })?;
        read_rows(&dir.join("Comments.xml"), true, |row| {
            dump.comments.push(Comment {
                id: row.required_int("Id")?,
                post_id: row.required_int("PostId")?,
                creation_date: row.required_time("CreationDate")?,
                user_id: row.optional_int("UserId")?,
                text: row.get("Text").unwrap_or_default().to_owned(),
            });
            Ok(())
        })?;
        read_rows(&dir.join("Users.xml"), false, |row| {
            dump.users.push(User {
                id: row.required_int("Id")?,
                about_me: row.get("AboutMe").map(str::to_owned),
            });
            Ok(())
        })?;
        read_rows(&dir.join("PostLinks.xml"), false, |row| {
            dump.post_links.push(PostLink {
                post_id: row.required_int("PostId")?,
                related_post_id: row.required_int("RelatedPostId")?,
                link_type_id: row.optional_int("LinkTypeId")?.unwrap_or(0),
            });
            Ok(())
        })?;
        Ok(dump)
    }
}

fn parse_post(row: &Row<'_>) -> Result<Post, EvalError> {
    let post_type = match row.required_int("PostTypeId")? {
        1 => PostType::Question,
        2 => PostType::Answer,
        other => PostType::Other(other),
    };
    Ok(Post {
        id: row.required_int("Id")?,
        post_type,
        parent_id: row.optional_int("ParentId")?,
        accepted_answer_id: row.optional_int("AcceptedAnswerId")?,
        creation_date: row.required_time("CreationDate")?,
        owner_user_id: row.optional_int("OwnerUserId")?,
        title: row.get("Title").map(str::to_owned),
        body: row.get("Body").unwrap_or_default().to_owned(),
        tags: parse_tags(row.get("Tags").unwrap_or_default()),
    })
}

/// Tags come as `<a><b-c>` (older dumps) or `|a|b-c|` (newer ones).
fn parse_tags(raw: &str) -> Vec<String> {
    raw.split(['<', '>', '|'])
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The attributes of one `<row>`, already unescaped.
struct Row<'a> {
    path: &'a Path,
    index: usize,
    attributes: Vec<(String, Cow<'a, str>)>,
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_ref())
    }

    fn error(&self, attribute: &'static str, message: impl Into<String>) -> EvalError {
        EvalError::BadAttribute {
            path: self.path.to_path_buf(),
            row: self.index,
            attribute,
            message: message.into(),
        }
    }

    fn optional_int(&self, name: &'static str) -> Result<Option<i64>, EvalError> {
        match self.get(name) {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.error(name, format!("`{text}` is not an integer"))),
        }
    }

    fn required_int(&self, name: &'static str) -> Result<i64, EvalError> {
        self.optional_int(name)?
            .ok_or_else(|| self.error(name, "missing"))
    }

    fn required_time(&self, name: &'static str) -> Result<Timestamp, EvalError> {
        let text = self.get(name).ok_or_else(|| self.error(name, "missing"))?;
        Timestamp::parse(text.trim()).ok_or_else(|| {
            self.error(
                name,
                format!("`{text}` is not a timestamp like 2018-07-13T03:55:48.787"),
            )
        })
    }
}

/// Streams the `<row>` elements of one dump file into `on_row`.
fn read_rows(
    path: &Path,
    required: bool,
    mut on_row: impl FnMut(&Row<'_>) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(EvalError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let xml_error = |message: String| EvalError::Xml {
        path: PathBuf::from(path),
        message,
    };
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(file));
    let mut buffer = Vec::new();
    let mut index = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|error| xml_error(format!("at byte {}: {error}", reader.error_position())))?;
        match event {
            Event::Eof => break,
            Event::Start(element) | Event::Empty(element) if element.name().as_ref() == "row" => {
                index += 1;
                let mut attributes = Vec::new();
                for attribute in element.attributes() {
                    let attribute =
                        attribute.map_err(|error| xml_error(format!("row {index}: {error}")))?;
                    let value = attribute
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|error| xml_error(format!("row {index}: {error}")))?;
                    attributes.push((attribute.key.as_ref().to_owned(), value));
                }
                on_row(&Row {
                    path,
                    index,
                    attributes,
                })?;
            }
            _ => {}
        }
        buffer.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_both_formats() {
        assert_eq!(parse_tags("<a><b-c>"), vec!["a", "b-c"]);
        assert_eq!(parse_tags("|a|b-c|"), vec!["a", "b-c"]);
        assert!(parse_tags("").is_empty());
    }

    #[test]
    fn timestamps_parse_and_print_with_milliseconds() {
        let stamp = Timestamp::parse("2018-07-13T03:55:48.787").unwrap();
        assert_eq!(stamp.to_string(), "2018-07-13T03:55:48.787");
        let whole = Timestamp::parse("2018-07-13T03:55:48").unwrap();
        assert!(whole < stamp);
        assert_eq!(whole.to_string(), "2018-07-13T03:55:48.000");
    }

    #[test]
    fn rows_stream_with_entities_decoded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Posts.xml"),
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n  <row Id=\"1\" PostTypeId=\"1\" \
             CreationDate=\"2018-03-12T17:00:45.567\" Body=\"&lt;p&gt;a &amp;amp; b&lt;/p&gt;&#xA;\" \
             OwnerUserId=\"7\" Title=\"T &quot;x&quot;\" Tags=\"&lt;q&gt;&lt;r&gt;\" />\n</posts>\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("Comments.xml"),
            "<comments><row Id=\"3\" PostId=\"1\" Text=\"hi &amp; bye\" CreationDate=\"2018-03-12T17:00:46.000\" /></comments>",
        )
        .unwrap();
        let dump = Dump::load(dir.path()).unwrap();
        assert_eq!(dump.posts.len(), 1);
        let post = &dump.posts[0];
        assert_eq!(post.body, "<p>a &amp; b</p>\n");
        assert_eq!(post.title.as_deref(), Some("T \"x\""));
        assert_eq!(post.tags, vec!["q", "r"]);
        assert_eq!(post.owner_user_id, Some(7));
        assert_eq!(dump.comments[0].text, "hi & bye");
        assert_eq!(dump.comments[0].user_id, None);
        assert!(dump.users.is_empty());
        assert!(dump.post_links.is_empty());
    }
}
