//! The template connector: the smallest complete example of a Trellis connector, written to be
//! copied. It reads records from a JSON Lines file — one record per line, tagged by `type`, the
//! format of `trellis ingest` — and reads incrementally: its state is the byte offset after the
//! last line it emitted, so a file that grows is read from where the last sync stopped.
//!
//! What to copy from it:
//! - the config is a serde struct, and its JSON Schema in [`Connector::spec`] says the same
//!   thing; the SDK validates every config against the schema before `check` or `read` sees it;
//! - `check` proves the config works (here: the file opens) and fails with a config error that
//!   names the field;
//! - the reader does bounded work per batch, ends every batch with a checkpoint that covers
//!   exactly the records before it, and checks the cancel token wherever it may wait;
//! - a line that is not complete yet (no newline: a writer is still appending) is left for the
//!   next sync rather than half-read.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::prelude::*;

/// The connector. It holds nothing: everything of a read lives in its [`JsonLinesReader`].
#[derive(Debug, Default)]
pub struct JsonLinesConnector;

trellis_plugin_sdk::export_connector!(JsonLinesConnector);

/// The config, as the JSON Schema of the spec describes it.
#[derive(Debug, Deserialize)]
pub struct Config {
    /// The JSON Lines file.
    pub path: PathBuf,
    /// Records per batch, and so between checkpoints.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A pause after each batch, for demonstrations and for tests that need a slow sync.
    #[serde(default)]
    pub throttle_ms: u64,
}

fn default_batch_size() -> usize {
    100
}

/// The state of the one cursor this connector keeps: where the next line starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    /// Bytes from the start of the file.
    pub offset: u64,
    /// Lines before `offset`, for messages.
    pub line: u64,
}

/// The state slot of the file: all four streams share one cursor.
pub const STATE_SLOT: &str = "file";

/// One line of the file. `source` is accepted and ignored: the host decides the source.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Person {
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        bio: String,
        #[serde(default)]
        member: bool,
        #[serde(default)]
        handle: String,
        #[serde(default)]
        profile_url: String,
        created_at: Option<String>,
    },
    Conversation {
        id: String,
        platform: Option<String>,
        #[serde(default)]
        url: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        body: String,
        #[serde(default)]
        tags: Vec<String>,
        author: Option<String>,
        #[serde(default = "yes")]
        open: bool,
        created_at: Option<String>,
        last_activity_at: Option<String>,
    },
    Post {
        id: String,
        conversation: String,
        author: Option<String>,
        parent: Option<String>,
        #[serde(default)]
        text: String,
        created_at: Option<String>,
        #[serde(default)]
        reactions: u32,
    },
    Asset {
        id: String,
        #[serde(default)]
        url: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        text: String,
        kind: Option<String>,
        #[serde(default)]
        own: bool,
        #[serde(default)]
        tags: Vec<String>,
        created_at: Option<String>,
    },
}

fn yes() -> bool {
    true
}

impl Connector for JsonLinesConnector {
    type Config = Config;
    type Reader = JsonLinesReader;

    fn spec(&self) -> Spec {
        Spec {
            name: "jsonl".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::PrivateNetwork,
            description: "records from a JSON Lines file in the format of `trellis ingest`, read incrementally".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["path"],
                "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "x-path": true, "description": "the JSON Lines file to read"},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                    "throttle_ms": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 0}
                }
            }),
            streams: vec![
                stream("people", RecordKind::Person, "line"),
                stream("conversations", RecordKind::Conversation, "line"),
                stream("posts", RecordKind::Post, "line"),
                stream("assets", RecordKind::Asset, "line"),
            ],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        let file = open(config)?;
        let size = file
            .metadata()
            .map_err(|error| {
                ConnectorError::config(
                    "path",
                    format!("cannot read {}: {error}", config.path.display()),
                )
            })?
            .len();
        Ok(format!(
            "{} is readable ({size} bytes)",
            config.path.display()
        ))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<JsonLinesReader, ConnectorError> {
        let position: Position = state.get(STATE_SLOT)?.unwrap_or_default();
        let mut file = BufReader::new(open(&config)?);
        file.seek(SeekFrom::Start(position.offset))?;
        Ok(JsonLinesReader {
            file,
            position,
            batch_size: config.batch_size,
            throttle: Duration::from_millis(config.throttle_ms),
            path: config.path,
            cancel,
        })
    }
}

fn open(config: &Config) -> Result<File, ConnectorError> {
    File::open(&config.path).map_err(|error| {
        ConnectorError::config(
            "path",
            format!(
                "cannot open {} ({error}); give the path of a readable JSON Lines file",
                config.path.display()
            ),
        )
    })
}

/// An open read of the file.
#[derive(Debug)]
pub struct JsonLinesReader {
    file: BufReader<File>,
    position: Position,
    batch_size: usize,
    throttle: Duration,
    path: PathBuf,
    cancel: CancelToken,
}

impl Reader for JsonLinesReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.pause()?;
        let mut batch = Batch::new();
        let mut text = String::new();
        while batch.record_count() < self.batch_size {
            text.clear();
            let read = self.read_line(&mut text)?;
            if read == 0 || !text.ends_with('\n') {
                // The end, or a line still being written: leave it for the next sync.
                batch.finish();
                break;
            }
            let line_number = self.position.line + 1;
            self.position.offset += read as u64;
            self.position.line = line_number;
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let line: Line = serde_json::from_str(trimmed).map_err(|error| {
                ConnectorError::system(format!(
                    "{}:{line_number}: not a record line ({error})",
                    self.path.display()
                ))
            })?;
            batch.push(record_of(
                line,
                &format!("{}:{line_number}", self.path.display()),
            )?);
        }
        // The checkpoint covers every line consumed so far, records and skipped lines alike.
        batch.checkpoint(STATE_SLOT, &self.position)?;
        Ok(batch)
    }
}

impl JsonLinesReader {
    /// Reads the next line into `text` and returns its length in bytes. A whole line that is not
    /// UTF-8 is a config error naming the line and the offset of its first bad byte: the file
    /// will not change by itself, so retrying cannot help. A last line without its newline may
    /// end inside a character that a writer is still appending: it is left, as any unfinished
    /// line, for the next sync.
    fn read_line(&mut self, text: &mut String) -> Result<usize, ConnectorError> {
        let mut bytes = Vec::new();
        let read = self.file.read_until(b'\n', &mut bytes)?;
        if !bytes.ends_with(b"\n") {
            text.clear();
            return Ok(read);
        }
        match String::from_utf8(bytes) {
            Ok(line) => {
                *text = line;
                Ok(read)
            }
            Err(error) => {
                let offset = self.position.offset + error.utf8_error().valid_up_to() as u64;
                Err(ConnectorError::config(
                    "path",
                    format!(
                        "{}:{}: byte {offset} is not UTF-8; re-export the file as UTF-8",
                        self.path.display(),
                        self.position.line + 1
                    ),
                ))
            }
        }
    }

    /// Waits out the throttle in short steps so that a cancel is seen quickly.
    fn pause(&self) -> Result<(), ConnectorError> {
        let until = Instant::now() + self.throttle;
        loop {
            self.cancel.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(10)));
        }
    }
}

fn timestamp(
    value: Option<String>,
    at: &str,
) -> Result<Option<records::Timestamp>, ConnectorError> {
    value
        .map(|value| records::parse_rfc3339(&value, at))
        .transpose()
}

fn platform(value: Option<String>, at: &str) -> Result<pb::PlatformKind, ConnectorError> {
    let Some(value) = value else {
        return Ok(pb::PlatformKind::PrivateNetwork);
    };
    pb::PlatformKind::from_str_name(&format!("PLATFORM_KIND_{}", value.to_ascii_uppercase()))
        .ok_or_else(|| {
            ConnectorError::system(format!(
                "{at}: platform {value:?} is not one of blog, private_network, public_network, bookmarking, qa_forum, chat"
            ))
        })
}

fn asset_kind(value: Option<String>, at: &str) -> Result<pb::AssetKind, ConnectorError> {
    let Some(value) = value else {
        return Ok(pb::AssetKind::Article);
    };
    pb::AssetKind::from_str_name(&format!("ASSET_KIND_{}", value.to_ascii_uppercase())).ok_or_else(
        || {
            ConnectorError::system(format!(
                "{at}: asset kind {value:?} is not one of article, bookmark, doc, video, thread"
            ))
        },
    )
}

/// The record of one line; `at` (file:line) names the line in errors.
fn record_of(line: Line, at: &str) -> Result<Record, ConnectorError> {
    Ok(match line {
        Line::Person {
            id,
            name,
            bio,
            member,
            handle,
            profile_url,
            created_at,
        } => {
            let identities = if handle.is_empty() && profile_url.is_empty() {
                Vec::new()
            } else {
                vec![records::identity("jsonl", handle, profile_url)]
            };
            pb::Person {
                display_name: name,
                bio,
                member,
                identities,
                created_at: timestamp(created_at, at)?,
                ..records::person(id)
            }
            .into()
        }
        Line::Conversation {
            id,
            platform: kind,
            url,
            title,
            body,
            tags,
            author,
            open,
            created_at,
            last_activity_at,
        } => pb::Conversation {
            url,
            title,
            body,
            tags,
            author: author.unwrap_or_default(),
            open,
            created_at: timestamp(created_at, at)?,
            last_activity_at: timestamp(last_activity_at, at)?,
            ..records::conversation(id, platform(kind, at)?)
        }
        .into(),
        Line::Post {
            id,
            conversation,
            author,
            parent,
            text,
            created_at,
            reactions,
        } => pb::Post {
            author: author.unwrap_or_default(),
            parent: parent.unwrap_or_default(),
            text,
            created_at: timestamp(created_at, at)?,
            reactions,
            ..records::post(id, conversation)
        }
        .into(),
        Line::Asset {
            id,
            url,
            title,
            text,
            kind,
            own,
            tags,
            created_at,
        } => pb::Asset {
            title,
            text,
            own,
            tags,
            created_at: timestamp(created_at, at)?,
            ..records::asset(id, url, asset_kind(kind, at)?)
        }
        .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_a_config_error_naming_path_line_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.jsonl");
        let good = "{\"type\": \"person\", \"id\": \"p1\", \"name\": \"Ana\"}\n";
        let mut bytes = good.as_bytes().to_vec();
        // "José" in Latin-1, as a spreadsheet exports it: 0xE9 is no UTF-8.
        bytes.extend_from_slice(b"{\"type\": \"person\", \"id\": \"p2\", \"name\": \"Jos\xe9\"}\n");
        std::fs::write(&path, &bytes).unwrap();
        let config: Config = serde_json::from_value(json!({"path": path})).unwrap();
        let mut reader = JsonLinesConnector
            .open_read(config, State::new(), CancelToken::new())
            .unwrap();
        let error = reader.next_batch().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config, "{error}");
        assert_eq!(error.field.as_deref(), Some("path"));
        let offset = good.len() + "{\"type\": \"person\", \"id\": \"p2\", \"name\": \"Jos".len();
        assert!(error.message.contains(":2: "), "{error}");
        assert!(
            error.message.contains(&format!("byte {offset} ")),
            "{error}"
        );
        assert!(
            error.message.contains("re-export the file as UTF-8"),
            "{error}"
        );
    }

    #[test]
    fn an_unfinished_last_line_cut_inside_a_character_waits_for_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.jsonl");
        let good = "{\"type\": \"person\", \"id\": \"p1\", \"name\": \"Ana\"}\n";
        let mut bytes = good.as_bytes().to_vec();
        // The first byte of "é" in UTF-8, its second not written yet.
        bytes.extend_from_slice(b"{\"type\": \"person\", \"id\": \"p2\", \"name\": \"Jos\xc3");
        std::fs::write(&path, &bytes).unwrap();
        let config: Config = serde_json::from_value(json!({"path": path})).unwrap();
        let mut reader = JsonLinesConnector
            .open_read(config, State::new(), CancelToken::new())
            .unwrap();
        let batch = reader.next_batch().unwrap();
        assert!(batch.is_last());
        assert_eq!(batch.record_count(), 1);
    }
}
