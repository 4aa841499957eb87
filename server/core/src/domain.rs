//! The entities Trellis reasons about. Every entity lives in a workspace; records that arrive
//! from a platform are keyed by the source they came from and their id on that platform, which
//! is what makes ingest idempotent.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::{CoreError, Violation};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The latest instant a time may name: 9999-12-31T23:59:59.999Z (the end of protobuf's
/// `Timestamp` range). The earliest is the Unix epoch: nothing a community wrote is older.
pub const LATEST_MILLIS: Millis = 253_402_300_799_999;

/// Milliseconds since the epoch of a protobuf-style time (`seconds`, `nanos`), or a violation
/// of `field` when it lies outside 1970-01-01 to 9999-12-31 or its nanos are not 0 to
/// 999,999,999. Never wraps: a time far out of range is refused, not turned into another one.
pub fn checked_millis(field: &str, seconds: i64, nanos: i32) -> Result<Millis, Violation> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(Violation::new(
            field,
            format!("has nanos {nanos}; give 0 to 999,999,999"),
        ));
    }
    let millis = seconds
        .checked_mul(1000)
        .and_then(|millis| millis.checked_add(Millis::from(nanos / 1_000_000)))
        .filter(|millis| (0..=LATEST_MILLIS).contains(millis));
    millis.ok_or_else(|| {
        Violation::new(
            field,
            format!(
                "is {seconds} seconds from the Unix epoch, outside 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z; give a time in that range"
            ),
        )
    })
}

/// The workspace every entity belongs to. One default workspace exists from the first start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(value: &str) -> Result<Self, Violation> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(Violation::new(
                "workspace",
                "must be 1 to 64 characters of a-z, A-Z, 0-9, '-' or '_'; leave it empty for the default workspace",
            ))
        }
    }

    pub fn default_workspace() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of platform conversations happen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    Blog,
    PrivateNetwork,
    PublicNetwork,
    Bookmarking,
    QaForum,
    Chat,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 6] = [
        PlatformKind::Blog,
        PlatformKind::PrivateNetwork,
        PlatformKind::PublicNetwork,
        PlatformKind::Bookmarking,
        PlatformKind::QaForum,
        PlatformKind::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Blog => "blog",
            PlatformKind::PrivateNetwork => "private_network",
            PlatformKind::PublicNetwork => "public_network",
            PlatformKind::Bookmarking => "bookmarking",
            PlatformKind::QaForum => "qa_forum",
            PlatformKind::Chat => "chat",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

/// Where a record came from and its id there: the identity of every ingested record.
///
/// Rendered as `source:external_id`; a source id never contains `:`, so the first colon splits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct RecordKey {
    pub source: String,
    pub external_id: String,
}

impl RecordKey {
    pub fn new(source: impl Into<String>, external_id: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            external_id: external_id.into(),
        }
    }

    /// Parses `source:external_id`, naming `field` in the error.
    pub fn parse(value: &str, field: &str) -> Result<Self, CoreError> {
        match value.split_once(':') {
            Some((source, external_id)) if !source.is_empty() && !external_id.is_empty() => {
                Ok(Self::new(source, external_id))
            }
            _ => Err(CoreError::invalid(
                field,
                format!(
                    "{value:?} is not a record id; write it as SOURCE:EXTERNAL_ID, e.g. forum:1234"
                ),
            )),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.external_id)
    }
}

/// One identity of a person on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    pub platform: String,
    pub handle: String,
    pub profile_url: String,
    /// Lowercase hex SHA-256 of the lowercased, trimmed e-mail address; never the address itself.
    pub email_sha256: String,
    /// The platform gives `handle` to this one account and to no other, ever (a Mastodon
    /// `user@instance`); a display name, or a user name that is only unique inside one forum or
    /// chat workspace, is not. Only such a handle, shared on the same platform, is evidence
    /// enough to merge people automatically. Records stored before it existed read as `false`.
    #[serde(default)]
    pub handle_unique: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Person {
    pub key: RecordKey,
    pub display_name: String,
    pub bio: String,
    pub member: bool,
    pub identities: Vec<Identity>,
    pub crm_ids: Vec<String>,
    pub created_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Conversation {
    pub key: RecordKey,
    pub platform: Option<PlatformKind>,
    pub url: String,
    pub title: String,
    /// The opening text of the thread (question, blog post, first message).
    pub body: String,
    pub tags: Vec<String>,
    /// The external id, within the same source, of the person who opened it.
    pub author: Option<String>,
    pub open: bool,
    pub created_at: Option<Millis>,
    pub last_activity_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Post {
    pub key: RecordKey,
    /// The external id, within the same source, of the conversation it belongs to.
    pub conversation: String,
    pub author: Option<String>,
    /// The external id of the post it answers, if any.
    pub parent: Option<String>,
    pub created_at: Option<Millis>,
    pub text: String,
    pub reactions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    #[default]
    Article,
    Bookmark,
    Doc,
    Video,
    Thread,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Article => "article",
            AssetKind::Bookmark => "bookmark",
            AssetKind::Doc => "doc",
            AssetKind::Video => "video",
            AssetKind::Thread => "thread",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Asset {
    pub key: RecordKey,
    pub url: String,
    pub title: String,
    pub text: String,
    pub kind: AssetKind,
    /// Whether the organisation itself published it.
    pub own: bool,
    pub bookmark_count: u32,
    pub share_count: u32,
    pub tags: Vec<String>,
    pub created_at: Option<Millis>,
}

/// One record of an ingest stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Person(Person),
    Conversation(Conversation),
    Post(Post),
    Asset(Asset),
}

impl Record {
    pub fn key(&self) -> &RecordKey {
        match self {
            Record::Person(person) => &person.key,
            Record::Conversation(conversation) => &conversation.key,
            Record::Post(post) => &post.key,
            Record::Asset(asset) => &asset.key,
        }
    }
}

/// Upper bounds on every field of an ingested record. A record over a bound is refused with the
/// field named; nothing is truncated silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    pub id_bytes: usize,
    pub short_text_bytes: usize,
    pub url_bytes: usize,
    pub long_text_bytes: usize,
    pub list_items: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        Self {
            id_bytes: 256,
            short_text_bytes: 1024,
            url_bytes: 2048,
            long_text_bytes: 1 << 20,
            list_items: 64,
        }
    }
}

struct Checker<'a> {
    limits: &'a FieldLimits,
    violations: Vec<Violation>,
}

impl Checker<'_> {
    fn bounded(&mut self, field: &str, value: &str, max: usize) {
        if value.len() > max {
            self.violations.push(Violation::new(
                field,
                format!(
                    "is {} bytes; shorten it to at most {max} bytes",
                    value.len()
                ),
            ));
        }
    }

    fn key(&mut self, key: &RecordKey) {
        if key.source.is_empty() {
            self.violations.push(Violation::new(
                "source",
                "is empty; name the source the record came from, e.g. forum",
            ));
        } else if key.source.contains(':') {
            self.violations.push(Violation::new(
                "source",
                "must not contain ':'; choose another source id",
            ));
        }
        self.bounded("source", &key.source, self.limits.id_bytes);
        if key.external_id.trim().is_empty() {
            self.violations.push(Violation::new(
                "external_id",
                "is empty; give the record's id on its platform",
            ));
        }
        self.bounded("external_id", &key.external_id, self.limits.id_bytes);
    }

    fn list(&mut self, field: &str, values: &[String], item_max: usize) {
        if values.len() > self.limits.list_items {
            self.violations.push(Violation::new(
                field,
                format!(
                    "has {} items; keep at most {}",
                    values.len(),
                    self.limits.list_items
                ),
            ));
        }
        for (index, value) in values.iter().enumerate() {
            self.bounded(&format!("{field}[{index}]"), value, item_max);
        }
    }

    fn optional_id(&mut self, field: &str, value: &Option<String>) {
        if let Some(value) = value {
            if value.trim().is_empty() {
                self.violations.push(Violation::new(
                    field,
                    "is empty; leave it out or give the external id it refers to",
                ));
            }
            self.bounded(field, value, self.limits.id_bytes);
        }
    }
}

impl Record {
    /// Checks every field against `limits`; lists every problem, not just the first.
    pub fn validate(&self, limits: &FieldLimits) -> Result<(), Vec<Violation>> {
        let mut check = Checker {
            limits,
            violations: Vec::new(),
        };
        check.key(self.key());
        match self {
            Record::Person(person) => {
                check.bounded(
                    "display_name",
                    &person.display_name,
                    limits.short_text_bytes,
                );
                check.bounded("bio", &person.bio, limits.long_text_bytes);
                check.list("crm_ids", &person.crm_ids, limits.id_bytes);
                if person.identities.len() > limits.list_items {
                    check.violations.push(Violation::new(
                        "identities",
                        format!("has more than {} identities", limits.list_items),
                    ));
                }
                for (index, identity) in person.identities.iter().enumerate() {
                    let field = |name: &str| format!("identities[{index}].{name}");
                    check.bounded(&field("platform"), &identity.platform, limits.id_bytes);
                    check.bounded(&field("handle"), &identity.handle, limits.id_bytes);
                    check.bounded(
                        &field("profile_url"),
                        &identity.profile_url,
                        limits.url_bytes,
                    );
                    let hash = &identity.email_sha256;
                    if !hash.is_empty()
                        && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()))
                    {
                        check.violations.push(Violation::new(
                            field("email_sha256"),
                            "must be the 64 hex digits of the SHA-256 of the lowercased e-mail address; never send the address itself",
                        ));
                    }
                    if identity.handle_unique
                        && (identity.handle.trim().is_empty()
                            || identity.platform.trim().is_empty())
                    {
                        check.violations.push(Violation::new(
                            field("handle_unique"),
                            "is set on an identity without a handle or a platform; a handle is unique only on a named platform, so give both or leave it unset",
                        ));
                    }
                }
            }
            Record::Conversation(conversation) => {
                check.bounded("url", &conversation.url, limits.url_bytes);
                check.bounded("title", &conversation.title, limits.short_text_bytes);
                check.bounded("body", &conversation.body, limits.long_text_bytes);
                check.list("tags", &conversation.tags, limits.short_text_bytes);
                check.optional_id("author", &conversation.author);
                if conversation.title.trim().is_empty() && conversation.body.trim().is_empty() {
                    check.violations.push(Violation::new(
                        "title",
                        "title and body are both empty; give the conversation some text",
                    ));
                }
            }
            Record::Post(post) => {
                if post.conversation.trim().is_empty() {
                    check.violations.push(Violation::new(
                        "conversation",
                        "is empty; give the external id of the conversation the post belongs to",
                    ));
                }
                check.bounded("conversation", &post.conversation, limits.id_bytes);
                check.optional_id("author", &post.author);
                check.optional_id("parent", &post.parent);
                check.bounded("text", &post.text, limits.long_text_bytes);
            }
            Record::Asset(asset) => {
                check.bounded("url", &asset.url, limits.url_bytes);
                check.bounded("title", &asset.title, limits.short_text_bytes);
                check.bounded("text", &asset.text, limits.long_text_bytes);
                check.list("tags", &asset.tags, limits.short_text_bytes);
                if asset.url.trim().is_empty() && asset.title.trim().is_empty() {
                    check.violations.push(Violation::new(
                        "url",
                        "url and title are both empty; an asset needs at least one",
                    ));
                }
            }
        }
        if check.violations.is_empty() {
            Ok(())
        } else {
            Err(check.violations)
        }
    }
}

/// People merged as one: `others` are taken to be `target`. Undone merges stay on record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    pub id: String,
    pub target: RecordKey,
    pub others: Vec<RecordKey>,
    /// How sure the evidence makes the merge, in [0, 1].
    pub confidence: f32,
    pub reasons: Vec<String>,
    /// Made by identity resolution rather than asked for.
    pub automatic: bool,
    pub created_at: Millis,
    pub undone_at: Option<Millis>,
}

/// What forgetting a person removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Posts and conversations whose text was removed.
    pub posts_removed: u64,
    /// Identities (person records and their platform identities) removed.
    pub identities_removed: u64,
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn times_from_1970_to_9999_convert_and_others_are_refused_never_wrapped() {
        assert_eq!(
            checked_millis("at", 1_700_000_000, 5_000_000),
            Ok(1_700_000_000_005)
        );
        assert_eq!(checked_millis("at", 0, 0), Ok(0));
        assert_eq!(
            checked_millis("at", 253_402_300_799, 999_999_999),
            Ok(LATEST_MILLIS)
        );
        for (seconds, nanos) in [
            (i64::MAX, 0),
            (i64::MIN, 0),
            (253_402_300_800, 0),
            (-1, 0),
            (1, -1),
            (1, 1_000_000_000),
        ] {
            let violation = checked_millis("created_at", seconds, nanos).unwrap_err();
            assert_eq!(violation.field, "created_at", "{seconds} {nanos}");
        }
    }
}
