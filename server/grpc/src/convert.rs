//! Conversion between the protobuf API and the domain. Parsing happens here, at the edge: an
//! invalid value never reaches a domain type, and every refusal names the field and the fix.

use prost_types::Timestamp;
use tonic::Status;
use trellis_core::Violation;
use trellis_core::domain::{
    Asset, AssetKind, Conversation, Identity, Merge, Millis, Person, PlatformKind, Post, Record,
    RecordKey, WorkspaceId,
};
use trellis_core::engine::{ConnectionClass, Evidence, FacetScore};
use trellis_core::strategy::{Facet, FacetKind, Strategy, StrategyVersion};

use crate::error::{bad_field, invalid_argument};
use crate::pb;

/// The workspace of a request; empty means the default one.
pub fn workspace(value: &str) -> Result<WorkspaceId, Status> {
    let workspace = if value.is_empty() {
        WorkspaceId::default_workspace()
    } else {
        WorkspaceId::parse(value).map_err(|violation| invalid_argument(&[violation]))?
    };
    // Every handler reads its workspace here, so this is where the caller's key is held to it.
    crate::auth::check_workspace(&workspace)?;
    Ok(workspace)
}

pub fn timestamp(millis: Millis) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: i32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// A request's time field, checked: out of range is INVALID_ARGUMENT naming the field.
pub fn time_field(field: &str, timestamp: Option<&Timestamp>) -> Result<Option<Millis>, Status> {
    time_of(field, timestamp).map_err(|violation| invalid_argument(&[violation]))
}

pub fn record_ref(key: &RecordKey) -> pb::RecordRef {
    pb::RecordRef {
        source: key.source.clone(),
        external_id: key.external_id.clone(),
    }
}

/// A required record reference.
pub fn record_key(value: Option<&pb::RecordRef>, field: &str) -> Result<RecordKey, Status> {
    let Some(value) = value else {
        return Err(bad_field(
            field,
            "is missing; give the record's source and external_id",
        ));
    };
    if value.source.is_empty() || value.external_id.is_empty() {
        return Err(bad_field(
            field,
            "needs both source and external_id, e.g. {source: \"forum\", external_id: \"1234\"}",
        ));
    }
    Ok(RecordKey::new(
        value.source.clone(),
        value.external_id.clone(),
    ))
}

pub fn facet_kind(kind: FacetKind) -> pb::FacetKind {
    match kind {
        FacetKind::Job => pb::FacetKind::Job,
        FacetKind::Advantage => pb::FacetKind::Advantage,
        FacetKind::Expertise => pb::FacetKind::Expertise,
        FacetKind::Message => pb::FacetKind::Message,
        FacetKind::Category => pb::FacetKind::Category,
    }
}

fn parse_facet_kind(value: i32) -> Option<FacetKind> {
    match pb::FacetKind::try_from(value).ok()? {
        pb::FacetKind::Unspecified => None,
        pb::FacetKind::Job => Some(FacetKind::Job),
        pb::FacetKind::Advantage => Some(FacetKind::Advantage),
        pb::FacetKind::Expertise => Some(FacetKind::Expertise),
        pb::FacetKind::Message => Some(FacetKind::Message),
        pb::FacetKind::Category => Some(FacetKind::Category),
    }
}

/// Parses a strategy; the domain's own validation then checks the rest, so that every
/// violation comes back in one answer.
pub fn strategy_from_pb(value: Option<pb::Strategy>) -> Result<Strategy, Status> {
    let Some(value) = value else {
        return Err(bad_field(
            "strategy",
            "is missing; send the strategy to store",
        ));
    };
    let mut violations = Vec::new();
    let facets = value
        .facets
        .into_iter()
        .enumerate()
        .map(|(index, facet)| {
            let kind = parse_facet_kind(facet.kind).unwrap_or_else(|| {
                violations.push(Violation::new(
                    format!("strategy.facets[{index}].kind"),
                    "is unset or unknown; use one of job, advantage, expertise, message, category",
                ));
                FacetKind::Category
            });
            Facet {
                id: facet.id,
                kind,
                name: facet.name,
                description: facet.description,
                examples: facet.examples,
                keywords: facet.keywords,
                weight: facet.weight.unwrap_or(1.0),
            }
        })
        .collect();
    let strategy = Strategy {
        name: value.name,
        mission: value.mission,
        facets,
        exclusions: value.exclusions,
    };
    if let Err(trellis_core::CoreError::Invalid(more)) = strategy.validate() {
        violations.extend(more.into_iter().map(|violation| Violation {
            field: format!("strategy.{}", violation.field),
            description: violation.description,
        }));
    }
    if violations.is_empty() {
        Ok(strategy)
    } else {
        Err(invalid_argument(&violations))
    }
}

pub fn strategy_to_pb(strategy: &Strategy) -> pb::Strategy {
    pb::Strategy {
        name: strategy.name.clone(),
        mission: strategy.mission.clone(),
        facets: strategy
            .facets
            .iter()
            .map(|facet| pb::Facet {
                id: facet.id.clone(),
                kind: facet_kind(facet.kind).into(),
                name: facet.name.clone(),
                description: facet.description.clone(),
                examples: facet.examples.clone(),
                keywords: facet.keywords.clone(),
                weight: Some(facet.weight),
            })
            .collect(),
        exclusions: strategy.exclusions.clone(),
    }
}

pub fn strategy_version_to_pb(version: &StrategyVersion) -> pb::StrategyVersion {
    pb::StrategyVersion {
        version: version.version,
        created_at: Some(timestamp(version.created_at)),
        strategy: Some(strategy_to_pb(&version.strategy)),
    }
}

pub fn platform(kind: Option<PlatformKind>) -> pb::PlatformKind {
    match kind {
        None => pb::PlatformKind::Unspecified,
        Some(PlatformKind::Blog) => pb::PlatformKind::Blog,
        Some(PlatformKind::PrivateNetwork) => pb::PlatformKind::PrivateNetwork,
        Some(PlatformKind::PublicNetwork) => pb::PlatformKind::PublicNetwork,
        Some(PlatformKind::Bookmarking) => pb::PlatformKind::Bookmarking,
        Some(PlatformKind::QaForum) => pb::PlatformKind::QaForum,
        Some(PlatformKind::Chat) => pb::PlatformKind::Chat,
    }
}

pub fn parse_platform(value: i32) -> Result<Option<PlatformKind>, Violation> {
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

/// A platform kind's name as the CLI and the reports write it (`qa_forum`, …); `unspecified`
/// for 0 or a value this build does not know.
pub fn platform_name(value: i32) -> &'static str {
    match parse_platform(value) {
        Ok(Some(kind)) => kind.as_str(),
        Ok(None) | Err(_) => "unspecified",
    }
}

/// A record's time, checked: out-of-range times are refused naming the field.
fn time_of(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<Millis>, Violation> {
    timestamp
        .map(|timestamp| {
            trellis_core::domain::checked_millis(field, timestamp.seconds, timestamp.nanos)
        })
        .transpose()
}

fn optional_text(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn key_of(value: Option<pb::RecordRef>) -> Result<RecordKey, Violation> {
    let value = value.ok_or_else(|| {
        Violation::new(
            "ref",
            "is missing; give the record's source and external_id",
        )
    })?;
    Ok(RecordKey::new(value.source, value.external_id))
}

/// The record of one ingest message. Field-level checks (sizes, empties) are the domain's.
pub fn record_from_pb(request: pb::IngestRequest) -> Result<Record, Violation> {
    use pb::ingest_request::Record as R;
    let Some(record) = request.record else {
        return Err(Violation::new(
            "record",
            "is empty; set one of person, conversation, post or asset",
        ));
    };
    Ok(match record {
        R::Person(person) => Record::Person(Person {
            key: key_of(person.r#ref)?,
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
        R::Conversation(conversation) => Record::Conversation(Conversation {
            key: key_of(conversation.r#ref)?,
            platform: parse_platform(conversation.platform)?,
            url: conversation.url,
            title: conversation.title,
            body: conversation.body,
            tags: conversation.tags,
            author: optional_text(conversation.author),
            open: conversation.open,
            created_at: time_of("created_at", conversation.created_at.as_ref())?,
            last_activity_at: time_of("last_activity_at", conversation.last_activity_at.as_ref())?,
        }),
        R::Post(post) => Record::Post(Post {
            key: key_of(post.r#ref)?,
            conversation: post.conversation,
            author: optional_text(post.author),
            parent: optional_text(post.parent),
            created_at: time_of("created_at", post.created_at.as_ref())?,
            text: post.text,
            reactions: post.reactions,
        }),
        R::Asset(asset) => Record::Asset(Asset {
            key: key_of(asset.r#ref)?,
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

pub fn conversation_to_pb(conversation: &Conversation) -> pb::Conversation {
    pb::Conversation {
        r#ref: Some(record_ref(&conversation.key)),
        platform: platform(conversation.platform).into(),
        url: conversation.url.clone(),
        title: conversation.title.clone(),
        body: conversation.body.clone(),
        tags: conversation.tags.clone(),
        author: conversation.author.clone().unwrap_or_default(),
        open: conversation.open,
        created_at: conversation.created_at.map(timestamp),
        last_activity_at: conversation.last_activity_at.map(timestamp),
    }
}

pub fn post_to_pb(post: &Post) -> pb::Post {
    pb::Post {
        r#ref: Some(record_ref(&post.key)),
        conversation: post.conversation.clone(),
        author: post.author.clone().unwrap_or_default(),
        parent: post.parent.clone().unwrap_or_default(),
        created_at: post.created_at.map(timestamp),
        text: post.text.clone(),
        reactions: post.reactions,
    }
}

pub fn evidence_to_pb(evidence: &Evidence) -> pb::Evidence {
    pb::Evidence {
        facet_id: evidence.facet_id.clone(),
        terms: evidence
            .terms
            .iter()
            .map(|term| pb::MatchedTerm {
                term: term.term.clone(),
                weight: term.weight,
                from_strategy: term.from_strategy,
            })
            .collect(),
        phrases: evidence.phrases.clone(),
        sentence: evidence.sentence.clone(),
        location: evidence.location.clone(),
    }
}

/// Facet scores with their evidence attached where there is some.
pub fn facet_scores_to_pb(facets: &[FacetScore], evidence: &[Evidence]) -> Vec<pb::FacetScore> {
    facets
        .iter()
        .map(|facet| pb::FacetScore {
            facet_id: facet.facet_id.clone(),
            kind: facet_kind(facet.kind).into(),
            relevance: facet.relevance,
            evidence: evidence
                .iter()
                .find(|evidence| evidence.facet_id == facet.facet_id)
                .map(evidence_to_pb),
        })
        .collect()
}

pub fn connection_class(class: ConnectionClass) -> pb::ConnectionClass {
    match class {
        ConnectionClass::CompetitiveArea => pb::ConnectionClass::CompetitiveArea,
        ConnectionClass::CustomerJob => pb::ConnectionClass::CustomerJob,
        ConnectionClass::CategoryUsage => pb::ConnectionClass::CategoryUsage,
        ConnectionClass::OffStrategy => pb::ConnectionClass::OffStrategy,
    }
}

/// Scores travel rounded to three decimals: more digits would promise a precision the
/// engine does not have, and rounding keeps snapshots stable across platforms.
pub fn round3(value: f32) -> f32 {
    (value * 1000.0).round() / 1000.0
}

/// The stored person record, or only its key and membership when none was ingested (people
/// known from their posts alone).
pub fn person_or_ref(person: Option<&Person>, key: &RecordKey, member: bool) -> pb::Person {
    match person {
        Some(person) => person_to_pb(person),
        None => pb::Person {
            r#ref: Some(record_ref(key)),
            member,
            ..Default::default()
        },
    }
}

pub fn person_to_pb(person: &Person) -> pb::Person {
    pb::Person {
        r#ref: Some(record_ref(&person.key)),
        display_name: person.display_name.clone(),
        bio: person.bio.clone(),
        member: person.member,
        identities: person
            .identities
            .iter()
            .map(|identity| pb::Identity {
                platform: identity.platform.clone(),
                handle: identity.handle.clone(),
                profile_url: identity.profile_url.clone(),
                email_sha256: identity.email_sha256.clone(),
                handle_unique: identity.handle_unique,
            })
            .collect(),
        crm_ids: person.crm_ids.clone(),
        created_at: person.created_at.map(timestamp),
    }
}

/// A merge as the audit trail shows it.
pub fn merge_to_pb(merge: &Merge) -> pb::MergeRecord {
    pb::MergeRecord {
        merge_id: merge.id.clone(),
        target: Some(record_ref(&merge.target)),
        others: merge.others.iter().map(record_ref).collect(),
        confidence: round3(merge.confidence),
        reasons: merge.reasons.clone(),
        automatic: merge.automatic,
        created_at: Some(timestamp(merge.created_at)),
        undone_at: merge.undone_at.map(timestamp),
    }
}

pub fn suggested_discussion_to_pb(
    discussion: &trellis_core::service::SuggestedDiscussion,
) -> pb::SuggestedDiscussion {
    pb::SuggestedDiscussion {
        conversation: Some(record_ref(&discussion.conversation)),
        title: discussion.title.clone(),
        url: discussion.url.clone(),
        score: round3(discussion.score),
        reasons: discussion.reasons.clone(),
        evidence: discussion.evidence.iter().map(evidence_to_pb).collect(),
        score_scale: if discussion.calibrated {
            pb::ScoreScale::Probability
        } else {
            pb::ScoreScale::Relative
        } as i32,
    }
}

pub fn asset_to_pb(asset: &Asset) -> pb::Asset {
    pb::Asset {
        r#ref: Some(record_ref(&asset.key)),
        url: asset.url.clone(),
        title: asset.title.clone(),
        text: asset.text.clone(),
        kind: match asset.kind {
            AssetKind::Article => pb::AssetKind::Article,
            AssetKind::Bookmark => pb::AssetKind::Bookmark,
            AssetKind::Doc => pb::AssetKind::Doc,
            AssetKind::Video => pb::AssetKind::Video,
            AssetKind::Thread => pb::AssetKind::Thread,
        }
        .into(),
        own: asset.own,
        bookmark_count: asset.bookmark_count,
        share_count: asset.share_count,
        tags: asset.tags.clone(),
        created_at: asset.created_at.map(timestamp),
    }
}

/// A ranking model as the status shows it: its features by weight, and how it was fitted.
pub fn ranking_model_to_pb(model: &trellis_core::engine::learn::RankingModel) -> pb::RankingModel {
    use trellis_core::engine::learn::ModelOrigin;
    let (default_reason, training) = match &model.origin {
        ModelOrigin::Default { reason } => (reason.clone(), None),
        ModelOrigin::Learned(training) => (
            String::new(),
            Some(pb::ModelTraining {
                fitted_at: Some(timestamp(training.fitted_at)),
                queries: training.queries as u64,
                examples: training.examples as u64,
                positives: training.positives as u64,
                splits: training.splits as u32,
                regularisation: training.regularisation,
                metric: training.metric.to_owned(),
                validated: training.validated,
                replaced: training.replaced,
                validation_queries: training.validation_queries as u64,
                gain_in_standard_errors: if training.gain_in_standard_errors.is_finite() {
                    training.gain_in_standard_errors
                } else {
                    f64::MAX
                },
            }),
        ),
    };
    pb::RankingModel {
        kind: model.kind.as_str().to_owned(),
        version: model.version,
        learned: model.is_learned(),
        default_reason,
        features: model
            .summary()
            .into_iter()
            .map(|(name, weight)| pb::FeatureWeight {
                name: name.to_owned(),
                weight,
            })
            .collect(),
        training,
    }
}
