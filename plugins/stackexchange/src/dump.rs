//! Streaming the `<row .../>` elements of one dump file. A site's `Posts.xml` runs to tens of
//! gigabytes, so a file is never held whole: quick-xml reads it through a buffered reader, one
//! element at a time, and only the attributes of the current row are decoded and kept.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use trellis_plugin_sdk::ConnectorError;
use trellis_plugin_sdk::records::Timestamp;

/// One `<row>`: its attributes, XML-unescaped, and its position in the file for messages.
#[derive(Debug, Default)]
pub struct Row {
    /// 1-based index of the row in its file.
    pub index: u64,
    attributes: Vec<(String, String)>,
}

impl Row {
    /// The value of an attribute, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of an attribute, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// A file of rows, read one row at a time.
#[derive(Debug)]
pub struct RowReader {
    path: PathBuf,
    reader: quick_xml::Reader<BufReader<File>>,
    buffer: Vec<u8>,
    rows: u64,
}

impl RowReader {
    /// Opens `path`; `field` is the config field named when it cannot be opened.
    pub fn open(path: &Path, field: &str) -> Result<Self, ConnectorError> {
        let file = File::open(path).map_err(|error| {
            ConnectorError::config(
                field,
                format!(
                    "cannot open {} ({error}); give the folder of an unpacked StackExchange dump",
                    path.display()
                ),
            )
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 16, file)),
            buffer: Vec::with_capacity(1 << 14),
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::system(format!(
            "{}: {message}; the dump file is damaged, unpack it again",
            self.path.display()
        ))
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>, ConnectorError> {
        loop {
            self.buffer.clear();
            let event = match self.reader.read_event_into(&mut self.buffer) {
                Ok(event) => event,
                Err(error) => {
                    let at = self.reader.error_position();
                    return Err(self.error(format_args!("at byte {at}: {error}")));
                }
            };
            match event {
                Event::Eof => return Ok(None),
                Event::Start(element) | Event::Empty(element)
                    if element.name().as_ref() == "row" =>
                {
                    self.rows += 1;
                    let mut attributes = Vec::with_capacity(16);
                    for attribute in element.attributes() {
                        let attribute = attribute.map_err(|error| {
                            ConnectorError::system(format!(
                                "{}: row {}: {error}; the dump file is damaged, unpack it again",
                                self.path.display(),
                                self.rows
                            ))
                        })?;
                        let value = attribute
                            .normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|error| {
                                ConnectorError::system(format!(
                                    "{}: row {}: {error}; the dump file is damaged, unpack it again",
                                    self.path.display(),
                                    self.rows
                                ))
                            })?;
                        attributes.push((attribute.key.as_ref().to_owned(), value.into_owned()));
                    }
                    return Ok(Some(Row {
                        index: self.rows,
                        attributes,
                    }));
                }
                _ => {}
            }
        }
    }
}

const DUMP_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

/// Parses a dump date such as `2018-07-13T03:55:48.787` (UTC, no suffix, fraction optional).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let parsed = PrimitiveDateTime::parse(text.trim(), DUMP_TIME)
        .ok()?
        .assume_utc();
    Some(Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: i32::try_from(parsed.nanosecond()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_times_parse_with_and_without_fraction() {
        let stamp = parse_time("2018-02-06T20:19:50.957").unwrap();
        assert_eq!(stamp.seconds, 1_517_948_390);
        assert_eq!(stamp.nanos, 957_000_000);
        assert_eq!(parse_time("2018-02-06T20:19:50").unwrap().nanos, 0);
        assert!(parse_time("yesterday").is_none());
    }
}
