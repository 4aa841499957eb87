//! Plugin records to core records: the one place where what a connector produced becomes a
//! domain record, with the source id set by the host. The rules mirror the gRPC ingest edge, and
//! the core's `Record::validate` then applies the same field rules as every other ingest path.

use trellis_core::Violation;
use trellis_core::domain::{
    Asset, AssetKind, Conversation, Identity, Person, PlatformKind, Post, Record, RecordKey,
};

use crate::pb;
use crate::pb::connector::record::Payload;

/// A record's time, checked: out-of-range times are refused naming the field.
fn time_of(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<trellis_core::domain::Millis>, Violation> {
    timestamp
        .map(|timestamp| {
            trellis_core::domain::checked_millis(field, timestamp.seconds, timestamp.nanos)
        })
        .transpose()
}

fn optional_text(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn key_of(source: &str, value: Option<pb::RecordRef>) -> Result<RecordKey, Violation> {
    let value = value.ok_or_else(|| {
        Violation::new(
            "ref",
            "is missing; build records with trellis_plugin_sdk::records, which set the external id",
        )
    })?;
    if !value.source.is_empty() && value.source != source {
        return Err(Violation::new(
            "ref.source",
            format!(
                "is {:?}; leave it empty, the host sets it to the source id {source:?}",
                value.source
            ),
        ));
    }
    Ok(RecordKey::new(source, value.external_id))
}

pub fn platform_kind(value: i32) -> Result<Option<PlatformKind>, Violation> {
    match pb::PlatformKind::try_from(value) {
        Ok(pb::PlatformKind::Unspecified) => Ok(None),
        Ok(pb::PlatformKind::Blog) => Ok(Some(PlatformKind::Blog)),
        Ok(pb::PlatformKind::PrivateNetwork) => Ok(Some(PlatformKind::PrivateNetwork)),
        Ok(pb::PlatformKind::PublicNetwork) => Ok(Some(PlatformKind::PublicNetwork)),
        Ok(pb::PlatformKind::Bookmarking) => Ok(Some(PlatformKind::Bookmarking)),
        Ok(pb::PlatformKind::QaForum) => Ok(Some(PlatformKind::QaForum)),
        Ok(pb::PlatformKind::Chat) => Ok(Some(PlatformKind::Chat)),
        Err(_) => Err(Violation::new(
            "platform",
            format!("{value} is not a platform kind; use one of the PlatformKind values"),
        )),
    }
}

/// The core record of a plugin record, keyed in `source`. Field-level rules (sizes, empties)
/// are the core's `Record::validate`, which the caller applies.
pub fn record_to_core(source: &str, record: pb::connector::Record) -> Result<Record, Violation> {
    let Some(payload) = record.payload else {
        return Err(Violation::new(
            "payload",
            "is empty; a record carries a person, conversation, post or asset",
        ));
    };
    Ok(match payload {
        Payload::Person(person) => Record::Person(Person {
            key: key_of(source, person.r#ref)?,
            display_name: person.display_name,
            bio: person.bio,
            member: person.member,
            identities: person
                .identities
                .into_iter()
                .map(|identity| Identity {
                    platform: identity.platform,
                    handle: identity.handle,
                    profile_url: identity.profile_url,
                    email_sha256: identity.email_sha256.to_ascii_lowercase(),
                    handle_unique: identity.handle_unique,
                })
                .collect(),
            crm_ids: person.crm_ids,
            created_at: time_of("created_at", person.created_at.as_ref())?,
        }),
        Payload::Conversation(conversation) => Record::Conversation(Conversation {
            key: key_of(source, conversation.r#ref)?,
            platform: platform_kind(conversation.platform)?,
            url: conversation.url,
            title: conversation.title,
            body: conversation.body,
            tags: conversation.tags,
            author: optional_text(conversation.author),
            open: conversation.open,
            created_at: time_of("created_at", conversation.created_at.as_ref())?,
            last_activity_at: time_of("last_activity_at", conversation.last_activity_at.as_ref())?,
        }),
        Payload::Post(post) => Record::Post(Post {
            key: key_of(source, post.r#ref)?,
            conversation: post.conversation,
            author: optional_text(post.author),
            parent: optional_text(post.parent),
            created_at: time_of("created_at", post.created_at.as_ref())?,
            text: post.text,
            reactions: post.reactions,
        }),
        Payload::Asset(asset) => Record::Asset(Asset {
            key: key_of(source, asset.r#ref)?,
            url: asset.url,
            title: asset.title,
            text: asset.text,
            kind: match pb::AssetKind::try_from(asset.kind) {
                Ok(pb::AssetKind::Unspecified | pb::AssetKind::Article) => AssetKind::Article,
                Ok(pb::AssetKind::Bookmark) => AssetKind::Bookmark,
                Ok(pb::AssetKind::Doc) => AssetKind::Doc,
                Ok(pb::AssetKind::Video) => AssetKind::Video,
                Ok(pb::AssetKind::Thread) => AssetKind::Thread,
                Err(_) => {
                    return Err(Violation::new(
                        "kind",
                        format!(
                            "{} is not an asset kind; use one of the AssetKind values",
                            asset.kind
                        ),
                    ));
                }
            },
            own: asset.own,
            bookmark_count: asset.bookmark_count,
            share_count: asset.share_count,
            tags: asset.tags,
            created_at: time_of("created_at", asset.created_at.as_ref())?,
        }),
    })
}

/// The kind of record a payload carries, as streams declare it.
pub fn record_kind(record: &pb::connector::Record) -> pb::connector::RecordKind {
    match record.payload {
        Some(Payload::Person(_)) => pb::connector::RecordKind::Person,
        Some(Payload::Conversation(_)) => pb::connector::RecordKind::Conversation,
        Some(Payload::Post(_)) => pb::connector::RecordKind::Post,
        Some(Payload::Asset(_)) => pb::connector::RecordKind::Asset,
        None => pb::connector::RecordKind::Unspecified,
    }
}
