//! The export formats: each parsed into [`Bookmark`]s, and told apart by their content.

use serde::Deserialize;
use serde_json::Value;

/// A format of bookmark export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Netscape,
    Pinboard,
    Delicious,
    Pocket,
    Instapaper,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Netscape => "netscape",
            Format::Pinboard => "pinboard",
            Format::Delicious => "delicious",
            Format::Pocket => "pocket",
            Format::Instapaper => "instapaper",
        }
    }
}

/// One save of a URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookmark {
    pub url: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Seconds since the Unix epoch.
    pub saved_at: Option<i64>,
}

impl Bookmark {
    /// Folds another save of the same URL into this one: the earliest date, every tag, and
    /// the title and description where this one has none.
    pub fn merge(&mut self, other: Bookmark) {
        if self.title.is_empty() {
            self.title = other.title;
        }
        if self.description.is_empty() {
            self.description = other.description;
        }
        for tag in other.tags {
            if !self.tags.contains(&tag) {
                self.tags.push(tag);
            }
        }
        self.saved_at = match (self.saved_at, other.saved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The format of an export, from its content.
pub fn detect(text: &str) -> Option<Format> {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = start
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("<!doctype netscape") || lower.contains("<dl") || lower.contains("<dt") {
        return Some(Format::Netscape);
    }
    if start.starts_with('[') {
        let value: Value = serde_json::from_str(start).ok()?;
        let first = value.as_array()?.first()?;
        if first.get("href").is_some() {
            return Some(Format::Pinboard);
        }
        if first.get("url").is_some() {
            return Some(Format::Delicious);
        }
        return None;
    }
    let header = start.lines().next()?.trim().to_ascii_lowercase();
    if header.starts_with("title,url,time_added") {
        return Some(Format::Pocket);
    }
    if header.starts_with("url,title,selection,folder") {
        return Some(Format::Instapaper);
    }
    None
}

/// Parses an export of `format`; the error says what is wrong.
pub fn parse(format: Format, text: &str) -> Result<Vec<Bookmark>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let bookmarks = match format {
        Format::Netscape => netscape(text),
        Format::Pinboard => pinboard(text)?,
        Format::Delicious => delicious(text)?,
        Format::Pocket => pocket(text)?,
        Format::Instapaper => instapaper(text)?,
    };
    Ok(bookmarks
        .into_iter()
        .filter(|bookmark| is_web_url(&bookmark.url))
        .collect())
}

/// Only links to the web are bookmarks: a browser's `place:` queries and `javascript:`
/// bookmarklets are not.
fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("ftp://")
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tag_list(raw: &str, separators: &[char]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw
        .split(separators)
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
    {
        if !tags.iter().any(|kept| kept == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

fn seconds(raw: &str) -> Option<i64> {
    let value: i64 = raw.trim().parse().ok()?;
    // Some exports write microseconds or milliseconds.
    Some(if value > 100_000_000_000_000 {
        value / 1_000_000
    } else if value > 100_000_000_000 {
        value / 1000
    } else {
        value
    })
}

/// Netscape bookmark HTML: every `<A HREF>` inside a `<DT>`, its `<DD>` as the description,
/// `TAGS` (comma-separated) and `ADD_DATE`.
fn netscape(text: &str) -> Vec<Bookmark> {
    let document = scraper::Html::parse_document(text);
    let links = scraper::Selector::parse("a[href]").expect("a valid selector");
    let mut bookmarks = Vec::new();
    for link in document.select(&links) {
        let url = link
            .value()
            .attr("href")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let attribute = |name: &str| {
            link.value()
                .attrs()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        };
        let tags = attribute("tags")
            .map(|raw| tag_list(raw, &[',']))
            .unwrap_or_default();
        // html5ever closes the <DT> at the <DD>, so the description is the DT's next element
        // sibling when that is a DD; its text stops at the next DT or DL.
        let description = link
            .parent()
            .and_then(scraper::ElementRef::wrap)
            .filter(|parent| parent.value().name() == "dt")
            .and_then(|dt| dt.next_siblings().find_map(scraper::ElementRef::wrap))
            .filter(|next| next.value().name() == "dd")
            .map(|dd| {
                let mut text = String::new();
                for node in dd.children() {
                    if let Some(element) = scraper::ElementRef::wrap(node)
                        && matches!(element.value().name(), "dl" | "dt")
                    {
                        break;
                    }
                    if let Some(piece) = node.value().as_text() {
                        text.push_str(piece);
                    } else if let Some(element) = scraper::ElementRef::wrap(node) {
                        text.extend(element.text());
                    }
                }
                text.lines()
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        bookmarks.push(Bookmark {
            url,
            title: collapse(&link.text().collect::<String>()),
            description,
            tags,
            saved_at: attribute("add_date").and_then(seconds),
        });
    }
    bookmarks
}

fn json_array(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON ({error})"))?;
    match value {
        Value::Array(items) => Ok(items),
        _ => Err("the top level is not an array of bookmarks".to_owned()),
    }
}

fn string(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Pinboard JSON: `href`, `description` (the title), `extended`, `tags` (space-separated),
/// `time` (RFC 3339).
fn pinboard(text: &str) -> Result<Vec<Bookmark>, String> {
    json_array(text)?
        .iter()
        .map(|item| {
            let time = string(item, "time");
            Ok(Bookmark {
                url: string(item, "href"),
                title: string(item, "description"),
                description: string(item, "extended"),
                tags: tag_list(&string(item, "tags"), &[' ']),
                saved_at: time::OffsetDateTime::parse(
                    &time,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
                .map(time::OffsetDateTime::unix_timestamp),
            })
        })
        .collect()
}

/// Delicious JSON: `url`, `title`, `description`, `tags` (a list), `created` (Unix seconds).
fn delicious(text: &str) -> Result<Vec<Bookmark>, String> {
    json_array(text)?
        .iter()
        .map(|item| {
            let tags = match item.get("tags") {
                Some(Value::Array(tags)) => tags
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned)
                    .collect(),
                Some(Value::String(tags)) => tag_list(tags, &[',', ' ']),
                _ => Vec::new(),
            };
            let created = match item.get("created") {
                Some(Value::Number(number)) => number.as_i64(),
                Some(Value::String(text)) => seconds(text),
                _ => None,
            };
            Ok(Bookmark {
                url: string(item, "url"),
                title: string(item, "title"),
                description: string(item, "description"),
                tags,
                saved_at: created,
            })
        })
        .collect()
}

fn csv_rows(text: &str) -> Result<Vec<csv::StringRecord>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .enumerate()
        .map(|(index, row)| row.map_err(|error| format!("row {}: {error}", index + 2)))
        .collect()
}

/// Pocket CSV: `title,url,time_added,tags,status`, tags separated by `|`.
fn pocket(text: &str) -> Result<Vec<Bookmark>, String> {
    Ok(csv_rows(text)?
        .iter()
        .map(|row| Bookmark {
            title: row.get(0).unwrap_or_default().trim().to_owned(),
            url: row.get(1).unwrap_or_default().trim().to_owned(),
            saved_at: row.get(2).and_then(seconds),
            tags: tag_list(row.get(3).unwrap_or_default(), &['|', ',']),
            description: String::new(),
        })
        .collect())
}

/// Instapaper CSV: `URL,Title,Selection,Folder[,Timestamp]`; the folder becomes a tag.
fn instapaper(text: &str) -> Result<Vec<Bookmark>, String> {
    Ok(csv_rows(text)?
        .iter()
        .map(|row| Bookmark {
            url: row.get(0).unwrap_or_default().trim().to_owned(),
            title: row.get(1).unwrap_or_default().trim().to_owned(),
            description: row.get(2).unwrap_or_default().trim().to_owned(),
            tags: tag_list(row.get(3).unwrap_or_default(), &[]),
            saved_at: row.get(4).and_then(seconds),
        })
        .collect())
}
