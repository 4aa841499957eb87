//! Feedback on suggestions as the engine reads it (see `crate::feedback` for what is recorded).
//!
//! Every feedback record is kept by id; a suggestion stands at its latest record by time; at
//! the same time, the outcome furthest along wins (shown, accepted, dismissed, done: what
//! happened beats what was meant, and a dismissal beats an acceptance), then the larger id. From that the engine keeps two things:
//! - **engagements**: a person whose discussion or participant suggestion for a conversation
//!   stands accepted or done has shown interest in it. It enters their profile and activity as a
//!   taking part of its own role ([`Role::Accepted`]), with the conversation's most telling words
//!   as its text, so that what they took up shapes what they are suggested next, and they are
//!   not suggested it again;
//! - **dismissals**: a suggestion that stands dismissed is not made again (the discussion to that
//!   person, the person for that conversation, the asset for that conversation, the prospect).
//!
//! Feedback on a conversation the engine does not hold yet waits for it.

use std::collections::{HashMap, HashSet};

use super::Engine;
use super::index::TermBag;
use super::people::Role;
use crate::domain::{Millis, RecordKey};
use crate::feedback::{Feedback, Outcome, SuggestionKey, SuggestionKind};

/// Words of a conversation an engagement puts in a profile: its most telling ones by tf·idf.
const ENGAGEMENT_TERMS: usize = 64;
/// Their total weight: about what a short reply adds, since taking up a suggestion says less
/// about what someone knows than writing does.
const ENGAGEMENT_WEIGHT: f32 = 40.0;

/// What the engine keeps of a workspace's feedback.
#[derive(Debug, Default)]
pub(crate) struct FeedbackState {
    records: HashMap<String, Feedback>,
    /// The ids recorded for each suggestion.
    by_suggestion: HashMap<SuggestionKey, Vec<String>>,
    /// Suggestions that stand dismissed.
    dismissed: HashSet<SuggestionKey>,
    /// Engagements the engine applied: conversation → people, with the words and time applied.
    engaged: HashMap<RecordKey, HashMap<RecordKey, (TermBag, Millis)>>,
    /// Engagements waiting for their conversation: conversation → people and times.
    pending: HashMap<RecordKey, HashMap<RecordKey, Millis>>,
}

impl FeedbackState {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The latest feedback of a suggestion, by time then id.
    fn standing(&self, key: &SuggestionKey) -> Option<&Feedback> {
        self.by_suggestion
            .get(key)?
            .iter()
            .filter_map(|id| self.records.get(id))
            .max_by(|a, b| (a.at, a.outcome, &a.id).cmp(&(b.at, b.outcome, &b.id)))
    }

    /// Whether a person's (positive) engagement with a conversation stands, and since when.
    fn engagement(&self, person: &RecordKey, conversation: &RecordKey) -> Option<Millis> {
        [SuggestionKind::Discussion, SuggestionKind::Participant]
            .into_iter()
            .filter_map(|kind| {
                self.standing(&SuggestionKey {
                    kind,
                    person: Some(person.clone()),
                    conversation: Some(conversation.clone()),
                    asset: None,
                    action: None,
                })
            })
            .filter(|feedback| feedback.outcome.is_positive())
            .map(|feedback| feedback.at)
            .min()
    }
}

fn item_of(person: &RecordKey) -> String {
    format!("feedback:{}:{}", person.source, person.external_id)
}

impl Engine {
    /// Takes in feedback records (new ones, or ones replacing a record with the same id).
    pub fn apply_feedback(&mut self, feedback: &[Feedback]) {
        let mut touched: HashSet<SuggestionKey> = HashSet::new();
        for item in feedback {
            if let Some(previous) = self.feedback.records.remove(&item.id) {
                let key = previous.suggestion();
                if let Some(ids) = self.feedback.by_suggestion.get_mut(&key) {
                    ids.retain(|id| *id != previous.id);
                    if ids.is_empty() {
                        self.feedback.by_suggestion.remove(&key);
                    }
                }
                touched.insert(key);
            }
            let key = item.suggestion();
            self.feedback
                .by_suggestion
                .entry(key.clone())
                .or_default()
                .push(item.id.clone());
            self.feedback.records.insert(item.id.clone(), item.clone());
            touched.insert(key);
        }
        let mut pairs: HashSet<(RecordKey, RecordKey)> = HashSet::new();
        for key in touched {
            let dismissed = self
                .feedback
                .standing(&key)
                .is_some_and(|feedback| feedback.outcome == Outcome::Dismissed);
            if dismissed {
                self.feedback.dismissed.insert(key.clone());
            } else {
                self.feedback.dismissed.remove(&key);
            }
            if matches!(
                key.kind,
                SuggestionKind::Discussion | SuggestionKind::Participant
            ) && let (Some(person), Some(conversation)) = (key.person, key.conversation)
            {
                pairs.insert((person, conversation));
            }
        }
        for (person, conversation) in pairs {
            let wanted = self.feedback.engagement(&person, &conversation);
            self.set_engagement(&person, &conversation, wanted);
        }
        self.generation += 1;
    }

    /// Makes a person's engagement with a conversation what the feedback says: applied since
    /// `at`, or not at all.
    fn set_engagement(&mut self, person: &RecordKey, conversation: &RecordKey, at: Option<Millis>) {
        if let Some(waiting) = self.feedback.pending.get_mut(conversation) {
            waiting.remove(person);
            if waiting.is_empty() {
                self.feedback.pending.remove(conversation);
            }
        }
        let applied = self
            .feedback
            .engaged
            .get(conversation)
            .and_then(|people| people.get(person))
            .map(|(_, at)| *at);
        if applied == at {
            return;
        }
        let removed = self
            .feedback
            .engaged
            .get_mut(conversation)
            .and_then(|people| people.remove(person));
        if self
            .feedback
            .engaged
            .get(conversation)
            .is_some_and(HashMap::is_empty)
        {
            self.feedback.engaged.remove(conversation);
        }
        if let Some((bag, applied_at)) = removed {
            self.people.record(
                conversation,
                &item_of(person),
                Role::Accepted,
                None,
                Some(applied_at),
                &TermBag::default(),
                Some((conversation, Some(person), &bag, Some(applied_at))),
            );
        }
        let Some(at) = at else {
            return;
        };
        let Some(bag) = self.engagement_bag(conversation) else {
            self.feedback
                .pending
                .entry(conversation.clone())
                .or_default()
                .insert(person.clone(), at);
            return;
        };
        self.people.record(
            conversation,
            &item_of(person),
            Role::Accepted,
            Some(person),
            Some(at),
            &bag,
            None,
        );
        self.feedback
            .engaged
            .entry(conversation.clone())
            .or_default()
            .insert(person.clone(), (bag, at));
    }

    /// Applies the engagements that waited for this conversation.
    pub(super) fn apply_pending_feedback(&mut self, conversation: &RecordKey) {
        let Some(waiting) = self.feedback.pending.remove(conversation) else {
            return;
        };
        for (person, at) in waiting {
            self.set_engagement(&person, conversation, Some(at));
        }
    }

    /// A conversation left the engine (its participation with it): its engagements wait for it
    /// to come back.
    pub(super) fn suspend_feedback(&mut self, conversation: &RecordKey) {
        let Some(people) = self.feedback.engaged.remove(conversation) else {
            return;
        };
        let waiting = self
            .feedback
            .pending
            .entry(conversation.clone())
            .or_default();
        for (person, (_, at)) in people {
            waiting.insert(person, at);
        }
    }

    /// The words an engagement with a conversation puts in a profile; `None` while the engine
    /// does not hold the conversation.
    fn engagement_bag(&self, conversation: &RecordKey) -> Option<TermBag> {
        let slot = self.index.slot(conversation)?;
        let mut terms: Vec<(&str, f32, f32)> = self
            .index
            .doc_terms(slot)
            .iter()
            .filter_map(|(term, tf)| {
                let text = self.index.term_text(*term)?;
                (!super::index::is_pair_term(text))
                    .then(|| (text, *tf, *tf * self.index.idf(*term)))
            })
            .collect();
        if terms.is_empty() {
            return None;
        }
        terms.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(b.0)));
        terms.truncate(ENGAGEMENT_TERMS);
        let total: f32 = terms.iter().map(|(_, tf, _)| tf).sum();
        let scale = if total > ENGAGEMENT_WEIGHT {
            ENGAGEMENT_WEIGHT / total
        } else {
            1.0
        };
        Some(TermBag {
            counts: terms
                .into_iter()
                .map(|(text, tf, _)| (text.to_owned(), tf * scale))
                .collect(),
        })
    }

    /// The conversations dismissed for a person (discussion suggestions). People are compared
    /// as merges resolve them, so feedback on one of a merged person's records holds for all of
    /// them.
    pub fn dismissed_discussions(&self, person: &RecordKey) -> HashSet<RecordKey> {
        if self.feedback.dismissed.is_empty() {
            return HashSet::new();
        }
        let person = self.canonical_person(person);
        self.feedback
            .dismissed
            .iter()
            .filter(|key| key.kind == SuggestionKind::Discussion)
            .filter(|key| {
                key.person
                    .as_ref()
                    .is_some_and(|other| self.canonical_person(other) == person)
            })
            .filter_map(|key| key.conversation.clone())
            .collect()
    }

    /// The people dismissed for a conversation (participant suggestions), as the engine
    /// resolves them.
    pub fn dismissed_participants(&self, conversation: &RecordKey) -> HashSet<RecordKey> {
        self.feedback
            .dismissed
            .iter()
            .filter(|key| {
                key.kind == SuggestionKind::Participant
                    && key.conversation.as_ref() == Some(conversation)
            })
            .filter_map(|key| key.person.as_ref())
            .map(|person| self.canonical_person(person))
            .collect()
    }

    /// The assets dismissed for a conversation.
    pub fn dismissed_assets(&self, conversation: &RecordKey) -> HashSet<RecordKey> {
        self.feedback
            .dismissed
            .iter()
            .filter(|key| {
                key.kind == SuggestionKind::Asset && key.conversation.as_ref() == Some(conversation)
            })
            .filter_map(|key| key.asset.clone())
            .collect()
    }

    /// The prospects dismissed, as the engine resolves them.
    pub fn dismissed_prospects(&self) -> HashSet<RecordKey> {
        self.feedback
            .dismissed
            .iter()
            .filter(|key| key.kind == SuggestionKind::Prospect)
            .filter_map(|key| key.person.as_ref())
            .map(|person| self.canonical_person(person))
            .collect()
    }

    /// A person as merges resolve them.
    fn canonical_person(&self, person: &RecordKey) -> RecordKey {
        self.people
            .canonical(person)
            .cloned()
            .unwrap_or_else(|| person.clone())
    }

    /// Feedback records the engine holds.
    pub fn feedback_len(&self) -> usize {
        self.feedback.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Conversation, Post};
    use crate::engine::ModelSettings;

    const DAY: Millis = 86_400_000;

    fn conversation(id: &str, title: &str, at: Millis) -> Conversation {
        Conversation {
            key: RecordKey::new("forum", id),
            title: title.into(),
            body: title.into(),
            created_at: Some(at),
            open: true,
            ..Conversation::default()
        }
    }

    fn feedback(
        id: &str,
        kind: SuggestionKind,
        outcome: Outcome,
        person: &str,
        conversation: &str,
        at: Millis,
    ) -> Feedback {
        Feedback {
            id: id.into(),
            kind,
            outcome,
            person: Some(RecordKey::new("forum", person)),
            conversation: Some(RecordKey::new("forum", conversation)),
            asset: None,
            action: None,
            at,
            recorded_at: at,
            actor: "test".into(),
            note: String::new(),
        }
    }

    fn engine() -> Engine {
        let mut engine = Engine::new(ModelSettings::default());
        let topics = [
            "qubit error correction surface codes",
            "variational quantum eigensolver chemistry",
            "photonic quantum computing hardware",
            "quantum error correction threshold decoders",
        ];
        for (index, topic) in topics.iter().enumerate() {
            let id = format!("t{index}");
            engine.upsert_conversation(&conversation(&id, topic, index as Millis * DAY), None);
            engine.upsert_post(
                &Post {
                    key: RecordKey::new("forum", format!("p{index}")),
                    conversation: id.clone(),
                    author: Some("writer".into()),
                    text: (*topic).to_owned(),
                    created_at: Some(index as Millis * DAY + 1),
                    ..Post::default()
                },
                None,
            );
        }
        engine
    }

    #[test]
    fn an_accepted_discussion_enters_the_profile_and_is_not_suggested_again_until_undone() {
        let mut engine = engine();
        let ada = RecordKey::new("forum", "ada");
        let t0 = RecordKey::new("forum", "t0");
        assert!(engine.people().person_id(&ada).is_none());
        engine.apply_feedback(&[feedback(
            "f1",
            SuggestionKind::Discussion,
            Outcome::Accepted,
            "ada",
            "t0",
            5 * DAY,
        )]);
        assert!(engine.people().took_part(&ada, &t0));
        let interests = engine.people().profiles().slot(&ada);
        assert!(interests.is_some(), "ada has a profile now");
        // The same id saying dismissed replaces the acceptance: the engagement goes, and the
        // dismissal stands.
        engine.apply_feedback(&[feedback(
            "f1",
            SuggestionKind::Discussion,
            Outcome::Dismissed,
            "ada",
            "t0",
            5 * DAY,
        )]);
        assert!(!engine.people().took_part(&ada, &t0));
        assert!(engine.dismissed_discussions(&ada).contains(&t0));
        // A later acceptance of the same suggestion wins over the dismissal.
        engine.apply_feedback(&[feedback(
            "f2",
            SuggestionKind::Discussion,
            Outcome::Done,
            "ada",
            "t0",
            6 * DAY,
        )]);
        assert!(engine.people().took_part(&ada, &t0));
        assert!(!engine.dismissed_discussions(&ada).contains(&t0));
        assert_eq!(engine.feedback_len(), 2);
    }

    #[test]
    fn feedback_on_a_conversation_not_yet_held_waits_for_it() {
        let mut engine = engine();
        let ada = RecordKey::new("forum", "ada");
        let later = RecordKey::new("forum", "t9");
        engine.apply_feedback(&[feedback(
            "f1",
            SuggestionKind::Participant,
            Outcome::Accepted,
            "ada",
            "t9",
            9 * DAY,
        )]);
        assert!(!engine.people().took_part(&ada, &later));
        engine.upsert_conversation(
            &conversation("t9", "quantum error correction decoders", 8 * DAY),
            None,
        );
        assert!(engine.people().took_part(&ada, &later));
    }

    #[test]
    fn shown_feedback_changes_nothing_and_a_dismissed_participant_is_left_out() {
        let mut engine = engine();
        let writer = RecordKey::new("forum", "writer");
        let t1 = RecordKey::new("forum", "t1");
        engine.apply_feedback(&[feedback(
            "s",
            SuggestionKind::Participant,
            Outcome::Shown,
            "writer",
            "t1",
            DAY,
        )]);
        assert!(engine.dismissed_participants(&t1).is_empty());
        engine.apply_feedback(&[feedback(
            "d",
            SuggestionKind::Participant,
            Outcome::Dismissed,
            "writer",
            "t1",
            2 * DAY,
        )]);
        assert!(engine.dismissed_participants(&t1).contains(&writer));
    }
}
