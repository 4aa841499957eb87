//! The words Trellis shows people: what distinguishes a person's writing, which of those words
//! join them to a thread, which of their own conversations is closest to it, and the words a
//! community uses everywhere (which are never named as reasons).

use std::cmp::Ordering;
use std::sync::Arc;

use foldhash::HashMap;

use super::explain::{self, CommonWords, Distinctive};
use super::{AnalyzedPart, Engine};
use crate::domain::RecordKey;
use crate::engine::index::{Slot, TermId, is_pair_term};

/// How many of a community's most frequent words are its common words, at most: by how many
/// conversations use them and, apart, by how often they are written.
const COMMON_WORDS: usize = 100;
/// In a small community, the common words are at most this share of its vocabulary.
const COMMON_SHARE_OF_VOCABULARY: usize = 20;
/// Words of a thread that stand for it when looking for the closest of a person's threads.
const CLOSEST_QUERY_TERMS: usize = 32;
/// A common word is used in at least this many conversations.
const COMMON_MIN_CONVERSATIONS: u32 = 3;

impl Engine {
    /// The community's common words (see [`CommonWords`]), learned from its conversations:
    /// computed again once the corpus changed, but not more often than `standing_max_age`
    /// allows (they move slowly, and a busy ingest changes the corpus between most requests).
    pub fn common_words(&self) -> Arc<CommonWords> {
        if let Ok(cache) = self.common_words.lock()
            && let Some((generation, computed_at, words)) = cache.as_ref()
            && (*generation == self.generation || computed_at.elapsed() <= self.standing_max_age)
        {
            return Arc::clone(words);
        }
        let words = Arc::new(self.compute_common_words());
        if let Ok(mut cache) = self.common_words.lock() {
            *cache = Some((
                self.generation,
                std::time::Instant::now(),
                Arc::clone(&words),
            ));
        }
        words
    }

    fn compute_common_words(&self) -> CommonWords {
        let index = &self.index;
        let mut candidates: Vec<(TermId, u32, f32)> = index
            .term_frequencies()
            .filter(|(id, df, _)| {
                *df >= COMMON_MIN_CONVERSATIONS
                    && index.term_text(*id).is_some_and(|text| !is_pair_term(text))
            })
            .collect();
        let vocabulary = index
            .term_frequencies()
            .filter(|(_, df, _)| *df > 0)
            .count();
        let limit = COMMON_WORDS.min(vocabulary / COMMON_SHARE_OF_VOCABULARY);
        // (term, conversations using it, occurrences)
        type Counted = (TermId, u32, f32);
        let mut most = |order: fn(&Counted, &Counted) -> Ordering| -> Vec<String> {
            if candidates.len() > limit && limit > 0 {
                candidates.select_nth_unstable_by(limit - 1, order);
            }
            candidates
                .iter()
                .take(limit)
                .filter_map(|(id, _, _)| index.term_text(*id).map(str::to_owned))
                .collect()
        };
        let mut stems = most(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| b.2.total_cmp(&a.2))
                .then_with(|| a.0.cmp(&b.0))
        });
        stems.extend(most(|a, b| {
            b.2.total_cmp(&a.2)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| a.0.cmp(&b.0))
        }));
        // The median topicality of the words used widely enough to tell.
        let mut topical: Vec<f64> = index
            .term_frequencies()
            .filter(|(id, df, _)| {
                *df >= explain::TOPICALITY_MIN_CONVERSATIONS
                    && index.term_text(*id).is_some_and(|text| !is_pair_term(text))
            })
            .filter_map(|(id, _, _)| Some(explain::topicality(index, index.term_text(id)?)))
            .collect();
        let floor = if topical.is_empty() {
            0.0
        } else {
            let middle = topical.len() / 2;
            *topical.select_nth_unstable_by(middle, f64::total_cmp).1
        };
        CommonWords::new(stems, floor)
    }

    /// What distinguishes the writing in `parts` (one person's) from the community's, best
    /// first (see [`explain::distinctive`]): to describe them, so someone who wrote little is
    /// described by what they wrote.
    pub fn distinctive_terms(&self, parts: &[AnalyzedPart<'_>], limit: usize) -> Vec<Distinctive> {
        explain::distinctive(&self.index, &self.common_words(), parts, true, limit, true)
    }

    /// The significant distinctive words alone, without phrases: what may join the person to a
    /// text.
    pub fn distinctive_words(&self, parts: &[AnalyzedPart<'_>], limit: usize) -> Vec<Distinctive> {
        explain::distinctive(
            &self.index,
            &self.common_words(),
            parts,
            false,
            limit,
            false,
        )
    }

    /// The words of a text (`parts`) that join it to a person whose distinctive words are
    /// `interests` (stem to score), as the text writes them, best first.
    pub fn joining_words(
        &self,
        interests: &HashMap<String, f32>,
        parts: &[AnalyzedPart<'_>],
        limit: usize,
    ) -> Vec<String> {
        explain::joining_words(&self.index, &self.common_words(), interests, parts, limit)
            .into_iter()
            .map(|(_, surface)| surface)
            .collect()
    }

    /// Of the conversations `person` took part in (other than `target`), the one closest to
    /// `target`: by meaning where both have embeddings, else by the words of `target` against
    /// theirs. `None` when they took part in no other conversation, or none shares anything.
    pub fn closest_conversation_of(
        &self,
        person: &RecordKey,
        target: &RecordKey,
    ) -> Option<RecordKey> {
        let theirs: Vec<RecordKey> = self
            .people
            .conversations_of(person)
            .into_iter()
            .filter(|conversation| conversation != target)
            .collect();
        if theirs.is_empty() {
            return None;
        }
        if let Some(vector) = self.semantic.vector(target) {
            let best = theirs
                .iter()
                .filter_map(|conversation| {
                    let other = self.semantic.vector(conversation)?;
                    Some((crate::semantic::dot(vector, other), conversation))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            if let Some((_, conversation)) = best {
                return Some(conversation.clone());
            }
        }
        let slot = self.index.slot(target)?;
        // The thread's most telling words stand for it ("more like this"): scoring its whole
        // text against each of the person's threads would cost the length of both.
        let mut query: Vec<(TermId, f32)> = self
            .index
            .doc_terms(slot)
            .iter()
            .filter(|(term, _)| {
                self.index
                    .term_text(*term)
                    .is_some_and(|t| !is_pair_term(t))
            })
            .map(|(term, count)| (*term, (1.0 + count).ln()))
            .collect();
        let telling = |(term, weight): &(TermId, f32)| weight * self.index.idf(*term);
        if query.len() > CLOSEST_QUERY_TERMS {
            query.select_nth_unstable_by(CLOSEST_QUERY_TERMS - 1, |a, b| {
                telling(b)
                    .total_cmp(&telling(a))
                    .then_with(|| a.0.cmp(&b.0))
            });
            query.truncate(CLOSEST_QUERY_TERMS);
            query.sort_unstable_by_key(|(term, _)| *term);
        }
        let slots: Vec<Slot> = theirs
            .iter()
            .map(|conversation| self.index.slot(conversation).unwrap_or(Slot::MAX))
            .collect();
        let scores = self.index.score_slots(&slots, &query);
        theirs
            .into_iter()
            .zip(scores)
            .filter(|(_, score)| *score > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(conversation, _)| conversation)
    }
}
