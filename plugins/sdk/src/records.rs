//! Builders for the records a connector produces. Each returns a record with its external id
//! set and every other field at its default, to be completed with struct-update syntax:
//!
//! ```
//! use trellis_plugin_sdk::{pb, records};
//! let post = pb::Post {
//!     text: "Try the new importer.".into(),
//!     author: "u7".into(),
//!     ..records::post("p42", "t9")
//! };
//! assert_eq!(post.conversation, "t9");
//! ```
//!
//! The `source` of a record's ref is left empty: the host sets it to the id of the source that
//! runs the connector, so a connector can never write into another source's records.
//! References between records (a post's conversation and author) are external ids in the same
//! source.

pub use prost_types::Timestamp;

use crate::error::ConnectorError;
use crate::pb;

fn reference(external_id: impl Into<String>) -> Option<pb::RecordRef> {
    Some(pb::RecordRef {
        source: String::new(),
        external_id: external_id.into(),
    })
}

/// A person known on the platform as `external_id`.
pub fn person(external_id: impl Into<String>) -> pb::Person {
    pb::Person {
        r#ref: reference(external_id),
        ..Default::default()
    }
}

/// An identity of a person on `platform` (the connector's name, e.g. "stackexchange") whose
/// `handle` other accounts on the platform may share, now or later: a display name, or a user
/// name unique only inside one forum or workspace of the platform. Such a handle never merges
/// people on its own; the profile URL and e-mail hash do. When the platform reserves the handle
/// to one account, use [`unique_identity`].
pub fn identity(
    platform: &str,
    handle: impl Into<String>,
    profile_url: impl Into<String>,
) -> pb::Identity {
    pb::Identity {
        platform: platform.to_owned(),
        handle: handle.into(),
        profile_url: profile_url.into(),
        email_sha256: String::new(),
        handle_unique: false,
    }
}

/// An identity on `platform` whose `handle` names this one account and no other, ever (a
/// Mastodon `user@instance`): Trellis merges people who share it on the platform automatically,
/// so use it only when the platform guarantees that.
pub fn unique_identity(
    platform: &str,
    handle: impl Into<String>,
    profile_url: impl Into<String>,
) -> pb::Identity {
    pb::Identity {
        handle_unique: true,
        ..identity(platform, handle, profile_url)
    }
}

/// A conversation (thread, blog post, question) on a platform of `platform` kind.
pub fn conversation(
    external_id: impl Into<String>,
    platform: pb::PlatformKind,
) -> pb::Conversation {
    pb::Conversation {
        r#ref: reference(external_id),
        platform: platform.into(),
        open: true,
        ..Default::default()
    }
}

/// A post of the conversation `conversation` (its external id).
pub fn post(external_id: impl Into<String>, conversation: impl Into<String>) -> pb::Post {
    pb::Post {
        r#ref: reference(external_id),
        conversation: conversation.into(),
        ..Default::default()
    }
}

/// An asset (article, bookmark, doc, video) at `url`.
pub fn asset(
    external_id: impl Into<String>,
    url: impl Into<String>,
    kind: pb::AssetKind,
) -> pb::Asset {
    pb::Asset {
        r#ref: reference(external_id),
        url: url.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

/// A timestamp from milliseconds since the Unix epoch.
pub fn timestamp_from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: i32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Milliseconds since the Unix epoch of a timestamp (saturating far out of range: the host
/// refuses such a time when the record arrives, naming its field).
pub fn millis_of(timestamp: &Timestamp) -> i64 {
    timestamp
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(timestamp.nanos / 1_000_000))
}

/// Parses an RFC 3339 date-time such as `2024-05-01T12:00:00Z`; `field` names the input in
/// the error.
pub fn parse_rfc3339(value: &str, field: &str) -> Result<Timestamp, ConnectorError> {
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|error| {
            ConnectorError::system(format!(
                "{field}: {value:?} is not an RFC 3339 date-time ({error})"
            ))
        })?;
    Ok(Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: i32::try_from(parsed.nanosecond()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for millis in [0, 1, -1, 1_700_000_000_123, -1_500] {
            assert_eq!(millis_of(&timestamp_from_millis(millis)), millis);
        }
    }

    #[test]
    fn rfc3339_parses() {
        let stamp = parse_rfc3339("2024-05-01T12:00:00.250Z", "created_at").unwrap();
        assert_eq!(millis_of(&stamp), 1_714_564_800_250);
        assert!(parse_rfc3339("yesterday", "created_at").is_err());
    }
}
