//! What became of the engine's suggestions: shown, accepted, dismissed, done.
//!
//! A team or an app records feedback on any suggestion the API makes. It is kept as it came
//! (every record, with who said it and when) and read three ways:
//! - **as a signal**: a person who accepted or did a suggestion to join a conversation (or to be
//!   brought into one) has shown interest in it, so it enters their profile and their activity
//!   as a taking part of its own kind ([`crate::engine::people::Role::Accepted`]); a dismissed
//!   suggestion is not made again;
//! - **as training data**: the history the rankings learn from (`service::learn`) replays
//!   feedback at its time, so accepted and done suggestions label their person positive for the
//!   conversation and dismissed ones negative;
//! - **as a record** for the team: `ListFeedback` and `trellis feedback list`.
//!
//! A suggestion is named by its kind and its parts (a person and a conversation, a conversation
//! and an asset, ...); its latest feedback by time is what it stands at. Recording the same
//! feedback id again replaces that record, so a client retrying a call changes nothing.

use serde::{Deserialize, Serialize};

use crate::domain::{Millis, RecordKey};
use crate::error::{CoreError, CoreResult, Violation};

/// Feedback records one call may carry at most.
pub const MAX_FEEDBACK_PER_CALL: usize = 1_000;
/// Longest feedback id, actor and action name, in bytes.
pub const MAX_FEEDBACK_ID_BYTES: usize = 200;
/// Longest source or external id of a record feedback names, in bytes (as records' own).
pub const MAX_FEEDBACK_KEY_BYTES: usize = 256;
/// Longest note, in bytes.
pub const MAX_FEEDBACK_NOTE_BYTES: usize = 2_000;

/// What was suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// A conversation suggested to a person (`SuggestDiscussions`).
    Discussion,
    /// A person suggested for a conversation (`SuggestParticipants`).
    Participant,
    /// An asset suggested for a conversation (`FindSupportingAssets`).
    Asset,
    /// A person outside the community (`FindProspects`).
    Prospect,
    /// A planned action (`PlanActions`).
    Action,
}

impl SuggestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::Discussion => "discussion",
            SuggestionKind::Participant => "participant",
            SuggestionKind::Asset => "asset",
            SuggestionKind::Prospect => "prospect",
            SuggestionKind::Action => "action",
        }
    }
}

/// What became of a suggestion, in the order that settles feedback recorded at the same time
/// (the last wins: see `engine::feedback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was shown to someone; nothing more is known yet.
    Shown,
    /// Someone took it up (chose to join, to invite, to use the asset...).
    Accepted,
    /// Someone turned it down: it is not suggested again.
    Dismissed,
    /// It happened: the person took part, the asset was posted, the action published.
    Done,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Shown,
        Outcome::Accepted,
        Outcome::Dismissed,
        Outcome::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Shown => "shown",
            Outcome::Accepted => "accepted",
            Outcome::Dismissed => "dismissed",
            Outcome::Done => "done",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
    }

    /// Whether it says the suggestion was taken up.
    pub fn is_positive(self) -> bool {
        matches!(self, Outcome::Accepted | Outcome::Done)
    }
}

/// One piece of feedback on one suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Unique in its workspace.
    pub id: String,
    pub kind: SuggestionKind,
    pub outcome: Outcome,
    /// The person the suggestion was for (discussion), about (participant, prospect) or the
    /// action reaches.
    pub person: Option<RecordKey>,
    /// The conversation suggested (discussion) or suggested for (participant, asset, action).
    pub conversation: Option<RecordKey>,
    pub asset: Option<RecordKey>,
    /// The action as the client names it (its kind and target, or its own id).
    pub action: Option<String>,
    /// When it happened.
    pub at: Millis,
    /// When the service recorded it.
    pub recorded_at: Millis,
    /// Who said so: a team member, an app.
    pub actor: String,
    pub note: String,
}

/// The parts that name a suggestion: feedback on the same suggestion shares them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SuggestionKey {
    pub kind: SuggestionKind,
    pub person: Option<RecordKey>,
    pub conversation: Option<RecordKey>,
    pub asset: Option<RecordKey>,
    pub action: Option<String>,
}

impl Feedback {
    pub fn suggestion(&self) -> SuggestionKey {
        SuggestionKey {
            kind: self.kind,
            person: self.person.clone(),
            conversation: self.conversation.clone(),
            asset: self.asset.clone(),
            action: self.action.clone(),
        }
    }

    /// The id made for feedback recorded without one: the same suggestion, outcome and time
    /// make the same id, so a retried call records nothing twice.
    pub fn derived_id(&self) -> String {
        let mut text = format!(
            "{}|{}|{}",
            self.kind.as_str(),
            self.outcome.as_str(),
            self.at
        );
        for part in [&self.person, &self.conversation, &self.asset]
            .into_iter()
            .flatten()
        {
            text.push('|');
            text.push_str(&part.source);
            text.push(':');
            text.push_str(&part.external_id);
        }
        if let Some(action) = &self.action {
            text.push('|');
            text.push_str(action);
        }
        let digest = crate::engine::semantic::text_hash(&text);
        format!("fb-{digest:016x}")
    }

    /// Checks that it names what its kind needs and nothing it cannot use; `field` is its path
    /// in the request (`feedback[3]`). Fills in the id when it is empty.
    pub fn validate(&mut self, field: &str) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut need = |present: bool, name: &str, what: &str| {
            if !present {
                violations.push(Violation::new(
                    format!("{field}.{name}"),
                    format!(
                        "is missing; a {} suggestion names {what}",
                        self.kind.as_str()
                    ),
                ));
            }
        };
        match self.kind {
            SuggestionKind::Discussion => {
                need(
                    self.person.is_some(),
                    "person",
                    "the person it was for and the conversation",
                );
                need(
                    self.conversation.is_some(),
                    "conversation",
                    "the person it was for and the conversation",
                );
            }
            SuggestionKind::Participant => {
                need(
                    self.conversation.is_some(),
                    "conversation",
                    "the conversation and the person suggested for it",
                );
                need(
                    self.person.is_some(),
                    "person",
                    "the conversation and the person suggested for it",
                );
            }
            SuggestionKind::Asset => {
                need(
                    self.conversation.is_some(),
                    "conversation",
                    "the conversation and the asset suggested for it",
                );
                need(
                    self.asset.is_some(),
                    "asset",
                    "the conversation and the asset suggested for it",
                );
            }
            SuggestionKind::Prospect => {
                need(self.person.is_some(), "person", "the prospect");
            }
            SuggestionKind::Action => {
                need(
                    self.action.is_some(),
                    "action",
                    "the action (its kind and target, or the client's own id for it)",
                );
            }
        }
        if self.kind != SuggestionKind::Asset && self.asset.is_some() {
            violations.push(Violation::new(
                format!("{field}.asset"),
                format!(
                    "is set, but a {} suggestion has no asset; leave it out or set kind to asset",
                    self.kind.as_str()
                ),
            ));
        }
        if self.kind != SuggestionKind::Action && self.action.is_some() {
            violations.push(Violation::new(
                format!("{field}.action"),
                format!(
                    "is set, but a {} suggestion is not an action; leave it out or set kind to action",
                    self.kind.as_str()
                ),
            ));
        }
        for (name, value, limit) in [
            ("id", &self.id, MAX_FEEDBACK_ID_BYTES),
            ("actor", &self.actor, MAX_FEEDBACK_ID_BYTES),
            ("note", &self.note, MAX_FEEDBACK_NOTE_BYTES),
        ] {
            if value.len() > limit {
                violations.push(Violation::new(
                    format!("{field}.{name}"),
                    format!("is {} bytes; at most {limit} are kept", value.len()),
                ));
            }
        }
        if self
            .action
            .as_ref()
            .is_some_and(|action| action.trim().is_empty() || action.len() > MAX_FEEDBACK_ID_BYTES)
        {
            violations.push(Violation::new(
                format!("{field}.action"),
                format!("must be 1 to {MAX_FEEDBACK_ID_BYTES} bytes, not blank"),
            ));
        }
        for (name, key) in [
            ("person", &self.person),
            ("conversation", &self.conversation),
            ("asset", &self.asset),
        ] {
            let Some(key) = key else { continue };
            for (part, value) in [("source", &key.source), ("external_id", &key.external_id)] {
                if value.len() > MAX_FEEDBACK_KEY_BYTES || value.chars().any(char::is_control) {
                    violations.push(Violation::new(
                        format!("{field}.{name}.{part}"),
                        format!(
                            "must be at most {MAX_FEEDBACK_KEY_BYTES} bytes of printable text, as record ids are"
                        ),
                    ));
                }
            }
        }
        if self.actor.contains('\0') || self.note.contains('\0') {
            violations.push(Violation::new(
                format!(
                    "{field}.{}",
                    if self.actor.contains('\0') {
                        "actor"
                    } else {
                        "note"
                    }
                ),
                "contains the character U+0000; remove it",
            ));
        }
        if self.id.chars().any(char::is_control) {
            violations.push(Violation::new(
                format!("{field}.id"),
                "holds control characters; use printable text",
            ));
        }
        if violations.is_empty() && self.id.trim().is_empty() {
            self.id = self.derived_id();
        }
        violations
    }
}

/// Validates a call's feedback, filling in missing ids; every problem is named.
pub fn validate_all(feedback: &mut [Feedback]) -> CoreResult<()> {
    if feedback.is_empty() {
        return Err(CoreError::invalid(
            "feedback",
            "is empty; give at least one piece of feedback",
        ));
    }
    if feedback.len() > MAX_FEEDBACK_PER_CALL {
        return Err(CoreError::invalid(
            "feedback",
            format!(
                "holds {} records; send at most {MAX_FEEDBACK_PER_CALL} per call",
                feedback.len()
            ),
        ));
    }
    let mut violations = Vec::new();
    for (index, item) in feedback.iter_mut().enumerate() {
        violations.extend(item.validate(&format!("feedback[{index}]")));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Invalid(violations))
    }
}

/// Feedback counts of a workspace, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackCounts {
    pub shown: u64,
    pub accepted: u64,
    pub dismissed: u64,
    pub done: u64,
}

impl FeedbackCounts {
    /// Adds `count` feedback of an outcome by its stored name; an unknown name counts nowhere.
    pub fn add_stored(&mut self, outcome: &str, count: u64) {
        match Outcome::parse(outcome) {
            Some(Outcome::Shown) => self.shown += count,
            Some(Outcome::Accepted) => self.accepted += count,
            Some(Outcome::Dismissed) => self.dismissed += count,
            Some(Outcome::Done) => self.done += count,
            None => {}
        }
    }

    pub fn total(&self) -> u64 {
        self.shown + self.accepted + self.dismissed + self.done
    }

    /// Feedback that says what became of a suggestion (all but shown): what learning counts.
    pub fn outcomes(&self) -> u64 {
        self.accepted + self.dismissed + self.done
    }
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackFilter {
    pub kind: Option<SuggestionKind>,
    pub person: Option<RecordKey>,
    pub conversation: Option<RecordKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discussion() -> Feedback {
        Feedback {
            id: String::new(),
            kind: SuggestionKind::Discussion,
            outcome: Outcome::Accepted,
            person: Some(RecordKey::new("forum", "u1")),
            conversation: Some(RecordKey::new("forum", "t9")),
            asset: None,
            action: None,
            at: 1_700_000_000_000,
            recorded_at: 1_700_000_000_500,
            actor: "crm".into(),
            note: String::new(),
        }
    }

    #[test]
    fn a_missing_id_is_derived_from_the_suggestion_and_the_same_feedback_gets_the_same_id() {
        let mut first = discussion();
        let mut again = discussion();
        assert!(first.validate("feedback[0]").is_empty());
        assert!(again.validate("feedback[0]").is_empty());
        assert!(first.id.starts_with("fb-"));
        assert_eq!(first.id, again.id);
        let mut dismissed = discussion();
        dismissed.outcome = Outcome::Dismissed;
        dismissed.validate("feedback[0]");
        assert_ne!(first.id, dismissed.id);
    }

    #[test]
    fn each_kind_names_the_parts_it_needs_and_refuses_parts_it_cannot_use() {
        let mut missing = discussion();
        missing.conversation = None;
        let violations = missing.validate("feedback[2]");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "feedback[2].conversation");
        assert!(violations[0].description.contains("discussion"));

        let mut asset = discussion();
        asset.kind = SuggestionKind::Asset;
        let violations = asset.validate("feedback[0]");
        assert_eq!(violations[0].field, "feedback[0].asset");

        let mut stray = discussion();
        stray.action = Some("reply".into());
        let fields: Vec<String> = stray
            .validate("feedback[0]")
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(fields, vec!["feedback[0].action"]);

        let mut long = discussion();
        long.note = "x".repeat(MAX_FEEDBACK_NOTE_BYTES + 1);
        assert_eq!(long.validate("f").len(), 1);

        let mut hostile = discussion();
        hostile.person = Some(RecordKey::new("forum", "u\u{0}1"));
        hostile.conversation = Some(RecordKey::new("forum", "t".repeat(300)));
        hostile.actor = "bot\u{0}".into();
        let fields: Vec<String> = hostile
            .validate("feedback[1]")
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(
            fields,
            [
                "feedback[1].person.external_id",
                "feedback[1].conversation.external_id",
                "feedback[1].actor"
            ]
        );
    }

    #[test]
    fn a_call_holds_between_one_and_the_limit() {
        assert!(validate_all(&mut []).is_err());
        let mut many = vec![discussion(); MAX_FEEDBACK_PER_CALL + 1];
        let error = validate_all(&mut many).unwrap_err().to_string();
        assert!(error.contains("at most 1000"), "{error}");
        let mut one = vec![discussion()];
        validate_all(&mut one).unwrap();
    }
}
