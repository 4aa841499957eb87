//! The insight index: for each person, where their interests meet the strategy (each facet's
//! convergence with the quoted evidence of their own writing) and their most distinctive
//! interests, made ahead of time.
//!
//! A CRM syncing its contacts asks this of tens of thousands of people in a row
//! (`MatchPeople`). Made on request, each answer reads the person's writing from the store,
//! splits it into sentences and weighs every sentence against every facet they converge with:
//! about a millisecond of a core per person, so a sync of 100,000 contacts would keep both cores
//! of a small server busy for a minute. The answer moves slowly, though: it changes when the
//! person writes, when their bio or merges change, when the strategy changes, and a little as the
//! rest of the community moves the words' weights. So insights are kept here, made by a
//! background worker (`Trellis::refresh_insights`) and by requests that found none, and used
//! while the person and the strategy are as they were and the community's weights are those
//! they were made with, or at most the engine's `standing_max_age` older (the same allowance
//! the standing index and the people's calibration have).
//!
//! Questions about another moment (`as_of`) are answered on request, never from here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Engine;
use super::explain::Evidence;
use super::model::StrategyModel;
use super::people::PersonId;
use super::recommend::FacetConvergence;
use crate::domain::RecordKey;

/// What is derived from a person's writing against the strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightParts {
    /// Each facet's convergence, with evidence for the facets they are connected to.
    pub convergence: Vec<(FacetConvergence, Vec<Evidence>)>,
    /// (word, weight in [0, 1]), strongest first.
    pub interests: Vec<(String, f32)>,
}

impl InsightParts {
    /// Bytes it holds, roughly, for the memory report.
    fn bytes(&self) -> usize {
        let evidence = |evidence: &Evidence| {
            std::mem::size_of::<Evidence>()
                + evidence.sentence.len()
                + evidence.location.len()
                + evidence.facet_id.len()
                + evidence.terms.len() * std::mem::size_of::<super::MatchedTerm>()
                + evidence
                    .terms
                    .iter()
                    .map(|term| term.term.len())
                    .sum::<usize>()
                + evidence
                    .phrases
                    .iter()
                    .map(|phrase| phrase.len() + std::mem::size_of::<String>())
                    .sum::<usize>()
        };
        let convergence: usize = self
            .convergence
            .iter()
            .map(|(converged, evidence_list)| {
                std::mem::size_of::<(FacetConvergence, Vec<Evidence>)>()
                    + converged.facet_id.len()
                    + converged
                        .matched_terms
                        .iter()
                        .map(|term| term.len() + std::mem::size_of::<String>())
                        .sum::<usize>()
                    + evidence_list.iter().map(evidence).sum::<usize>()
            })
            .sum();
        let interests: usize = self
            .interests
            .iter()
            .map(|(word, _)| word.len() + std::mem::size_of::<(String, f32)>())
            .sum();
        std::mem::size_of::<Self>() + convergence + interests
    }
}

/// An insight and what it was made from.
#[derive(Debug, Clone)]
struct Kept {
    /// The person's revision (`People::revision`) it was made at.
    revision: u64,
    /// The engine generation it was made at, and when.
    generation: u64,
    made_at: Instant,
    parts: Arc<InsightParts>,
    bytes: usize,
}

impl Kept {
    fn usable(&self, stamp: Stamp, max_age: Duration) -> bool {
        self.revision == stamp.revision
            && (self.generation == stamp.generation || self.made_at.elapsed() <= max_age)
    }

    /// Whether the worker should make it again: no longer usable, or half its allowed age
    /// old while the community moved on (so requests seldom find it unusable).
    fn due(&self, stamp: Stamp, max_age: Duration) -> bool {
        !self.usable(stamp, max_age)
            || (self.generation != stamp.generation && self.made_at.elapsed() > max_age / 2)
    }
}

/// What an insight of one person would be made from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    revision: u64,
    generation: u64,
}

/// The kept insights of the present, by person id.
#[derive(Debug, Default)]
pub(super) struct InsightIndex {
    /// The compiled strategy model every kept insight was made with: held, so that a new
    /// model is never taken for it (at its address), and the index emptied when it changes.
    model: Option<Arc<StrategyModel>>,
    kept: HashMap<PersonId, Kept>,
    bytes: usize,
    /// Where the worker's walk over everyone goes on from.
    cursor: usize,
    /// The engine generation the last complete walk found nothing to do at, and when: until
    /// it moves (or the model changes), or half the allowed age passes, walking again finds
    /// nothing.
    quiet: Option<(u64, Instant)>,
    /// The count of record changes the worker last saw, and since when: making insights while
    /// records pour in would be redone as soon as they stop.
    seen: Option<(u64, Instant)>,
}

/// Where the insight index stands: people with a usable insight, and those without.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsightProgress {
    /// Insights made in this refresh.
    pub made: usize,
    /// People with an insight a request may use.
    pub ready: usize,
    /// People the worker has still to make one for (0 while records are arriving: nothing is
    /// made until they settle).
    pub pending: usize,
    /// Memory the kept insights hold, in bytes (roughly).
    pub bytes: usize,
}

impl Engine {
    fn insight_stamp(&self, person: &RecordKey) -> Option<Stamp> {
        Some(Stamp {
            revision: self.people.revision(person)?,
            generation: self.generation,
        })
    }

    /// Whether `index` was made with the strategy model the engine has now.
    fn same_model(&self, index: &InsightIndex) -> bool {
        match (&index.model, &self.model) {
            (Some(kept), Some(now)) => Arc::ptr_eq(kept, now),
            (None, None) => true,
            _ => false,
        }
    }

    /// The kept insight of `person` (their own key, not one merged into them), if one may be
    /// used now.
    pub fn kept_insight(&self, person: &RecordKey) -> Option<Arc<InsightParts>> {
        let id = self.people.person_id(person)?;
        let stamp = self.insight_stamp(person)?;
        let index = self.insights.read().ok()?;
        if !self.same_model(&index) {
            return None;
        }
        let kept = index.kept.get(&id)?;
        kept.usable(stamp, self.standing_max_age)
            .then(|| Arc::clone(&kept.parts))
    }

    /// Keeps `parts`, made for `person` (their own key) on this engine as it is now.
    pub fn keep_insight(&self, person: &RecordKey, parts: Arc<InsightParts>) {
        let (Some(id), Some(stamp)) = (self.people.person_id(person), self.insight_stamp(person))
        else {
            return;
        };
        let bytes = parts.bytes() + std::mem::size_of::<(PersonId, Kept)>();
        let Ok(mut index) = self.insights.write() else {
            return;
        };
        if !self.same_model(&index) {
            index.model = self.model.clone();
            index.kept.clear();
            index.bytes = 0;
            index.quiet = None;
        }
        let kept = Kept {
            revision: stamp.revision,
            generation: stamp.generation,
            made_at: Instant::now(),
            parts,
            bytes,
        };
        if let Some(old) = index.kept.insert(id, kept) {
            index.bytes -= old.bytes;
        }
        index.bytes += bytes;
    }

    /// Up to `limit` people whose insight the worker should make next, walking everyone from
    /// where the last call stopped; empty when there is nothing to do or records are still
    /// arriving (they have to stop for `settle` first). Cheap when nothing changed: a complete
    /// walk that found nothing is remembered.
    pub fn insights_due(&self, limit: usize, settle: Duration) -> Vec<RecordKey> {
        let Ok(mut index) = self.insights.write() else {
            return Vec::new();
        };
        let changes = self.generation - self.embedding_generations;
        match index.seen {
            Some((seen, since)) if seen == changes => {
                if since.elapsed() < settle {
                    return Vec::new();
                }
            }
            _ => {
                index.seen = Some((changes, Instant::now()));
                if !settle.is_zero() {
                    return Vec::new();
                }
            }
        }
        let same_model = self.same_model(&index);
        if let Some((generation, since)) = index.quiet
            && same_model
            && (generation == self.generation || since.elapsed() <= self.standing_max_age / 2)
        {
            return Vec::new();
        }
        let mut due = Vec::new();
        let start = index.cursor.min(self.people.len());
        // From the cursor to the end, then from the start back to it: one complete walk.
        let mut walked_to_end = true;
        for (id, key) in self.people.canonical_from(start).chain(
            self.people
                .canonical_from(0)
                .take_while(|(id, _)| (*id as usize) < start),
        ) {
            let Some(stamp) = self.insight_stamp(key) else {
                continue;
            };
            let needed = !same_model
                || index
                    .kept
                    .get(&id)
                    .is_none_or(|kept| kept.due(stamp, self.standing_max_age));
            if needed {
                due.push(key.clone());
                if due.len() >= limit {
                    index.cursor = id as usize + 1;
                    walked_to_end = false;
                    break;
                }
            }
        }
        if walked_to_end {
            index.cursor = 0;
            if due.is_empty() {
                index.quiet = Some((self.generation, Instant::now()));
            }
        } else {
            index.quiet = None;
        }
        due
    }

    /// Where the insight index stands (`made` is 0). Walks everyone: for health and tests, not
    /// for every request.
    pub fn insight_progress(&self) -> InsightProgress {
        let Ok(index) = self.insights.read() else {
            return InsightProgress::default();
        };
        let mut progress = InsightProgress {
            bytes: index.bytes,
            ..InsightProgress::default()
        };
        let same_model = self.same_model(&index);
        for (id, key) in self.people.canonical_from(0) {
            let usable = same_model
                && self.insight_stamp(key).is_some_and(|stamp| {
                    index
                        .kept
                        .get(&id)
                        .is_some_and(|kept| kept.usable(stamp, self.standing_max_age))
                });
            if usable {
                progress.ready += 1;
            } else {
                progress.pending += 1;
            }
        }
        progress
    }
}
