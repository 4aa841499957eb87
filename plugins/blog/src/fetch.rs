//! Where a document comes from: a file, or an HTTP URL fetched with a conditional request. It
//! also sniffs whether the document is a WordPress export, from its first bytes, so that the
//! reader can choose the streaming WXR parser before anything else is read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use trellis_plugin_sdk::http;
use trellis_plugin_sdk::prelude::*;

use crate::{SlotState, display_path};

/// A configured location.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Http(String),
}

/// An opened document: a reader positioned at its start, and what is known about it.
pub struct Document {
    pub reader: Box<dyn BufRead + Send>,
    pub is_wxr: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// What identifies this version of the document: size and mtime of a file, the validators
    /// of an HTTP body.
    pub fingerprint: Option<String>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Document")
            .field("is_wxr", &self.is_wxr)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Bytes of a document looked at to tell a WordPress export from a feed.
const SNIFF_BYTES: usize = 8 * 1024;

/// The namespace every WXR export declares on its root element.
const WXR_NAMESPACE: &str = "wordpress.org/export/";

/// The largest HTTP body read (feeds are parsed whole).
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

impl Location {
    /// A location from the config; `field` names it in errors.
    pub fn parse(raw: &str, field: &str) -> Result<Self, ConnectorError> {
        let trimmed = raw.trim();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            return Ok(Location::Http(trimmed.to_owned()));
        }
        if trimmed.contains("://") {
            return Err(ConnectorError::config(
                field,
                format!("{raw:?} is neither a file path nor an http(s) URL; give one of them"),
            ));
        }
        Ok(Location::File(PathBuf::from(trimmed)))
    }

    /// Opens the document, or `None` when the server answered 304 Not Modified to the
    /// validators in `saved`.
    pub fn open(
        &self,
        field: &str,
        timeout_secs: u64,
        saved: &SlotState,
    ) -> Result<Option<Document>, ConnectorError> {
        match self {
            Location::File(path) => open_file(path, field).map(Some),
            Location::Http(url) => open_http(url, field, timeout_secs, saved),
        }
    }
}

fn open_file(path: &std::path::Path, field: &str) -> Result<Document, ConnectorError> {
    let file = File::open(path).map_err(|error| {
        ConnectorError::config(
            field,
            format!(
                "cannot open {} ({error}); give the path of a readable feed or WordPress export",
                display_path(path)
            ),
        )
    })?;
    let metadata = file.metadata()?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_millis())
        .unwrap_or(0);
    let fingerprint = format!("file:{}:{modified}", metadata.len());
    document(
        Box::new(BufReader::with_capacity(64 * 1024, file)),
        None,
        None,
        Some(fingerprint),
    )
}

fn open_http(
    url: &str,
    field: &str,
    timeout_secs: u64,
    saved: &SlotState,
) -> Result<Option<Document>, ConnectorError> {
    let agent = http::agent(|config| {
        config
            .timeout_global(Some(Duration::from_secs(timeout_secs)))
            .http_status_as_error(false)
            .user_agent(concat!(
                "trellis-blog-connector/",
                env!("CARGO_PKG_VERSION")
            ))
    });
    let mut request = agent.get(url).header(
        "Accept",
        "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.8",
    );
    if let Some(etag) = &saved.etag {
        request = request.header("If-None-Match", etag);
    }
    if let Some(last_modified) = &saved.last_modified {
        request = request.header("If-Modified-Since", last_modified);
    }
    let response = request
        .call()
        .map_err(|error| http::request_error(field, url, &error))?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    match status {
        304 => return Ok(None),
        200..=299 => {}
        429 => {
            let retry_after = header("retry-after")
                .and_then(|value| value.trim().parse::<u64>().ok())
                .unwrap_or(60);
            return Err(ConnectorError::rate_limited(
                Duration::from_secs(retry_after),
                format!(
                    "{field}: {url} answered 429 too many requests; retry after {retry_after} s"
                ),
            ));
        }
        500..=599 => {
            return Err(ConnectorError::transient(format!(
                "{field}: {url} answered {status}; retry later"
            )));
        }
        _ => {
            return Err(ConnectorError::config(
                field,
                format!(
                    "{url} answered {status}; give the URL of a feed or WordPress export that can be fetched"
                ),
            ));
        }
    }
    let etag = header("etag");
    let last_modified = header("last-modified");
    let fingerprint = match (&etag, &last_modified) {
        (None, None) => None,
        (etag, modified) => Some(format!(
            "http:{}:{}",
            etag.as_deref().unwrap_or(""),
            modified.as_deref().unwrap_or("")
        )),
    };
    let body = response
        .into_body()
        .into_with_config()
        .limit(MAX_BODY_BYTES)
        .reader();
    document(
        Box::new(BufReader::with_capacity(64 * 1024, body)),
        etag,
        last_modified,
        fingerprint,
    )
    .map(Some)
}

fn document(
    mut reader: Box<dyn BufRead + Send>,
    etag: Option<String>,
    last_modified: Option<String>,
    fingerprint: Option<String>,
) -> Result<Document, ConnectorError> {
    // Peek without consuming: fill the buffer until it holds enough bytes to sniff, or ends.
    let head = {
        let buffer = reader.fill_buf()?;
        String::from_utf8_lossy(&buffer[..buffer.len().min(SNIFF_BYTES)]).into_owned()
    };
    let is_wxr = head.contains(WXR_NAMESPACE) && head.contains("<rss");
    Ok(Document {
        reader,
        is_wxr,
        etag,
        last_modified,
        fingerprint,
    })
}

/// Reads a whole document (feeds are parsed whole by feed-rs).
pub fn read_all(mut reader: impl Read, field: &str) -> Result<Vec<u8>, ConnectorError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|error| {
        ConnectorError::transient(format!("{field}: reading the document failed ({error})"))
    })?;
    Ok(bytes)
}
