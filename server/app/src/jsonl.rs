//! The JSON Lines ingest format of `trellis ingest`: one record per line, tagged by `type`.
//! Lines that do not parse are reported with their line number and skipped; the rest go to the
//! server, which reports the records it refuses by position, mapped back to lines here.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trellis_grpc::pb;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    Person {
        source: String,
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        bio: String,
        #[serde(default)]
        member: bool,
        #[serde(default)]
        platform: String,
        #[serde(default)]
        handle: String,
        #[serde(default)]
        profile_url: String,
        #[serde(default)]
        email_sha256: String,
        #[serde(default)]
        crm_ids: Vec<String>,
        created_at: Option<String>,
    },
    Conversation {
        source: String,
        id: String,
        #[serde(default)]
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
        source: String,
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
        source: String,
        id: String,
        #[serde(default)]
        url: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        own: bool,
        #[serde(default)]
        bookmarks: u32,
        #[serde(default)]
        shares: u32,
        #[serde(default)]
        tags: Vec<String>,
        created_at: Option<String>,
    },
}

fn yes() -> bool {
    true
}

pub(crate) fn timestamp(
    value: Option<String>,
    field: &str,
) -> Result<Option<prost_types::Timestamp>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed = OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| {
        format!("{field} = {value:?} is not an RFC 3339 time; write e.g. 2024-05-01T10:00:00Z")
    })?;
    let nanos = parsed.unix_timestamp_nanos();
    Ok(Some(prost_types::Timestamp {
        seconds: (nanos.div_euclid(1_000_000_000)) as i64,
        nanos: (nanos.rem_euclid(1_000_000_000)) as i32,
    }))
}

fn platform(value: Option<String>) -> Result<i32, String> {
    let Some(value) = value else {
        return Ok(pb::PlatformKind::Unspecified.into());
    };
    let kind = match value.as_str() {
        "blog" => pb::PlatformKind::Blog,
        "private_network" => pb::PlatformKind::PrivateNetwork,
        "public_network" => pb::PlatformKind::PublicNetwork,
        "bookmarking" => pb::PlatformKind::Bookmarking,
        "qa_forum" => pb::PlatformKind::QaForum,
        "chat" => pb::PlatformKind::Chat,
        other => {
            return Err(format!(
                "platform = {other:?}; use one of blog, private_network, public_network, bookmarking, qa_forum, chat"
            ));
        }
    };
    Ok(kind.into())
}

fn asset_kind(value: Option<String>) -> Result<i32, String> {
    let kind = match value.as_deref() {
        None | Some("article") => pb::AssetKind::Article,
        Some("bookmark") => pb::AssetKind::Bookmark,
        Some("doc") => pb::AssetKind::Doc,
        Some("video") => pb::AssetKind::Video,
        Some("thread") => pb::AssetKind::Thread,
        Some(other) => {
            return Err(format!(
                "kind = {other:?}; use one of article, bookmark, doc, video, thread"
            ));
        }
    };
    Ok(kind.into())
}

fn reference(source: String, id: String) -> Option<pb::RecordRef> {
    Some(pb::RecordRef {
        source,
        external_id: id,
    })
}

/// Parses one line into an ingest message for `workspace`.
pub fn parse_line(line: &str, workspace: &str) -> Result<pb::IngestRequest, String> {
    use pb::ingest_request::Record;
    let parsed: Line = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let record = match parsed {
        Line::Person {
            source,
            id,
            name,
            bio,
            member,
            platform,
            handle,
            profile_url,
            email_sha256,
            crm_ids,
            created_at,
        } => {
            let has_identity =
                !handle.is_empty() || !profile_url.is_empty() || !email_sha256.is_empty();
            Record::Person(pb::Person {
                identities: if has_identity {
                    vec![pb::Identity {
                        platform: if platform.is_empty() {
                            source.clone()
                        } else {
                            platform
                        },
                        handle,
                        profile_url,
                        email_sha256,
                        // A handle in a file of records is taken as a name, not a unique id.
                        handle_unique: false,
                    }]
                } else {
                    Vec::new()
                },
                r#ref: reference(source, id),
                display_name: name,
                bio,
                member,
                crm_ids,
                created_at: timestamp(created_at, "created_at")?,
            })
        }
        Line::Conversation {
            source,
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
        } => Record::Conversation(pb::Conversation {
            r#ref: reference(source, id),
            platform: platform(kind)?,
            url,
            title,
            body,
            tags,
            author: author.unwrap_or_default(),
            open,
            created_at: timestamp(created_at, "created_at")?,
            last_activity_at: timestamp(last_activity_at, "last_activity_at")?,
        }),
        Line::Post {
            source,
            id,
            conversation,
            author,
            parent,
            text,
            created_at,
            reactions,
        } => Record::Post(pb::Post {
            r#ref: reference(source, id),
            conversation,
            author: author.unwrap_or_default(),
            parent: parent.unwrap_or_default(),
            created_at: timestamp(created_at, "created_at")?,
            text,
            reactions,
        }),
        Line::Asset {
            source,
            id,
            url,
            title,
            text,
            kind,
            own,
            bookmarks,
            shares,
            tags,
            created_at,
        } => Record::Asset(pb::Asset {
            r#ref: reference(source, id),
            url,
            title,
            text,
            kind: asset_kind(kind)?,
            own,
            bookmark_count: bookmarks,
            share_count: shares,
            tags,
            created_at: timestamp(created_at, "created_at")?,
        }),
    };
    Ok(pb::IngestRequest {
        workspace: workspace.to_owned(),
        record: Some(record),
    })
}
