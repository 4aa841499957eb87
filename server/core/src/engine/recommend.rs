//! Recommendations that join people and conversations: who should be brought into a
//! conversation, and which conversations a person should join. Both sides are the same
//! question asked in two directions, answered from the corpus index (what conversations are
//! about) and the people model (who wrote what, and when).

use std::collections::HashSet;
use std::sync::Arc;

use super::index::{Slot, TermBag, TermId};
use super::learn::{RankingKind, RankingModel};
use super::model::{Query, QueryTerm, score_all};
use super::people::{ConversationMatch, ParticipantMatch};
use super::{EngagementSettings, Engine, overall_relevance};
use crate::domain::{Millis, RecordKey};

/// A conversation suggested to a person, with the parts of the score.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscussionSuggestion {
    pub conversation: RecordKey,
    /// What it is ranked by (the discussion model's score).
    pub score: f32,
    /// The chance that the person takes part, when the discussion model is calibrated on the
    /// community's history; it orders suggestions as `score` does.
    pub probability: Option<f32>,
    /// How well it suits the person's interests, in [0, 1] (see `ConversationMatch`).
    pub personal: f32,
    /// Strategic relevance, in [0, 1); 0 without a strategy.
    pub strategic: f32,
    /// The facet it serves best, when it connects to one.
    pub facet_id: Option<String>,
    /// Stems of the person's interests that it matched.
    pub matched_terms: Vec<String>,
    pub open: bool,
    pub unanswered: bool,
}

/// The features a conversation is judged by when it could be suggested to a person, in the
/// order of the discussion model's weights: where the person stands among everyone who could be
/// brought into it (the participant model's score: with a learned model, the probability that
/// they take part), how well it suits their interests by words (in [0, 1], see
/// `ConversationMatch::personal`) and by meaning (the cosine of its vector with the mean of the
/// vectors of the conversations they took part in), its strategic relevance, how live it is,
/// whether it is still unanswered, and the standing times the strategic relevance and times the
/// liveness (strategy and life matter more where the person would be welcome).
pub const DISCUSSION_FEATURES: [&str; DISCUSSION_FEATURE_COUNT] = [
    "standing",
    "personal",
    "semantic",
    "strategic",
    "live",
    "unanswered",
    "standing_strategic",
    "standing_live",
];
pub const DISCUSSION_FEATURE_COUNT: usize = 8;

/// The default discussion model: where the person stands decides, their fit by words breaks
/// near-ties among conversations where they stand nowhere yet, strategy and a live thread lift
/// the standing (by up to a tenth and a twentieth).
pub fn default_discussion_model() -> &'static RankingModel {
    static DEFAULT: std::sync::LazyLock<RankingModel> = std::sync::LazyLock::new(|| {
        RankingModel::fixed(
            RankingKind::Discussions,
            &DISCUSSION_FEATURES,
            &[0.85, 0.0085, 0.0, 0.0, 0.0, 0.0, 0.1, 0.05],
            "no model learned yet: where the person stands decides, their fit, strategy and a live thread lift",
        )
    });
    &DEFAULT
}

/// One conversation as the discussion model reads it for one person.
struct DiscussionRow {
    found: ConversationMatch,
    features: [f32; DISCUSSION_FEATURE_COUNT],
    strategic: f32,
    facet_id: Option<String>,
    open: bool,
    unanswered: bool,
}

/// A person's profile as a query: the terms as (stem, weight), those the conversations use as
/// (position in `profile`, term id, weight), and those as a query by term id.
struct ResolvedProfile {
    profile: Vec<(String, f32)>,
    resolved: Vec<(usize, TermId, f32)>,
    query: Vec<(TermId, f32)>,
}

fn bag_query(bag: &TermBag) -> Query {
    let mut terms: Vec<QueryTerm> = bag
        .counts
        .iter()
        .map(|(term, count)| QueryTerm {
            term: term.clone(),
            weight: (1.0 + count).ln(),
        })
        .collect();
    terms.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.term.cmp(&b.term))
    });
    Query { terms }
}

impl Engine {
    /// Whether the conversations of the community use a term at all.
    fn in_conversations(&self, term: &str) -> bool {
        self.index
            .term_id(term)
            .is_some_and(|id| self.index.df(id) > 0)
    }

    /// A person's interests as a weighted query over conversations.
    pub fn profile_query(&self, person: &RecordKey) -> Vec<(String, f32)> {
        self.people
            .profile_as_query(person, &|term| self.in_conversations(term))
    }

    /// A person's strongest interests as (stem, weight in [0, 1]), strongest first.
    pub fn interests(&self, person: &RecordKey, limit: usize) -> Vec<(String, f32)> {
        self.people
            .interests(person, limit, &|term| self.in_conversations(term))
    }

    /// "Now" for people and engagement: the given time, or the corpus's newest activity.
    pub fn people_clock(&self, as_of: Option<Millis>) -> Millis {
        as_of
            .or_else(|| self.people.clock())
            .or_else(|| self.latest_activity())
            .unwrap_or(0)
    }

    /// The indexed conversations most like a text, best first, without `exclude`.
    ///
    /// Lexically, by BM25 of the text's words. With the semantic tier on and a `vector` for the
    /// text, the conversations nearest by meaning join in and the two are fused (see
    /// [`super::semantic::fuse`]); similarities are then in [0, 1].
    pub fn similar_conversations(
        &self,
        bag: &TermBag,
        vector: Option<&[f32]>,
        exclude: Option<&RecordKey>,
        limit: usize,
    ) -> Vec<(RecordKey, f32)> {
        let query: Vec<(TermId, f32)> = bag_query(bag)
            .terms
            .iter()
            .filter_map(|term| Some((self.index.term_id(&term.term)?, term.weight)))
            .collect();
        let excluded = exclude.and_then(|key| self.index.slot(key));
        let mut scored = self.index.score_terms(&query);
        scored.retain(|(slot, _)| Some(*slot) != excluded);
        let settings = self.semantic_settings;
        let nearest = match vector {
            Some(vector) if settings.weight > 0.0 => {
                self.semantic
                    .nearest(vector, exclude, settings.candidates.max(limit))
            }
            _ => Vec::new(),
        };
        if nearest.is_empty() {
            return self.best_slots(scored, limit);
        }
        let lexical = self.best_slots(scored, settings.candidates.max(limit));
        super::semantic::fuse(&lexical, &nearest, settings.weight, limit)
    }

    /// The `limit` best of scored documents, best first (ties by key), with their keys. Only
    /// the kept ones are sorted and their keys cloned: a query can touch most of the corpus.
    fn best_slots(&self, scored: Vec<(Slot, f32)>, limit: usize) -> Vec<(RecordKey, f32)> {
        self.best_slots_where(scored, limit, |_| true)
    }

    /// The `limit` best of scored documents that `keep` accepts, best first (ties by key).
    /// `keep` is asked in rank order and only until `limit` are found: the best are taken
    /// in growing chunks, so a filter that costs a lookup runs on a few hundred documents, not
    /// on every document the query touched.
    fn best_slots_where(
        &self,
        mut scored: Vec<(Slot, f32)>,
        limit: usize,
        keep: impl Fn(Slot) -> bool,
    ) -> Vec<(RecordKey, f32)> {
        scored.retain(|(slot, _)| self.index.key(*slot).is_some());
        let order = |a: &(Slot, f32), b: &(Slot, f32)| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.index.key(a.0).cmp(&self.index.key(b.0)))
        };
        let mut kept: Vec<(Slot, f32)> = Vec::with_capacity(limit.min(scored.len()));
        let mut chunk = limit.saturating_mul(2).max(64);
        while kept.len() < limit && !scored.is_empty() {
            let take = chunk.min(scored.len());
            if take < scored.len() {
                scored.select_nth_unstable_by(take - 1, order);
            }
            let mut best: Vec<(Slot, f32)> = scored.drain(..take).collect();
            best.sort_by(order);
            kept.extend(
                best.into_iter()
                    .filter(|(slot, _)| keep(*slot))
                    .take(limit - kept.len()),
            );
            chunk = chunk.saturating_mul(2);
        }
        kept.into_iter()
            .filter_map(|(slot, score)| Some((self.index.key(slot)?.clone(), score)))
            .collect()
    }

    /// Who should be brought into a conversation about `bag`. People already in `conversation`
    /// and its author are left out.
    ///
    /// `vector` is the text's embedding when the service has one; for a stored conversation its
    /// own vector is used when none is given.
    pub fn suggest_participants(
        &self,
        bag: &TermBag,
        vector: Option<&[f32]>,
        conversation: Option<&RecordKey>,
        as_of: Option<Millis>,
        limit: usize,
    ) -> Vec<ParticipantMatch> {
        let now = self.people_clock(as_of);
        let vector = vector.or_else(|| conversation.and_then(|key| self.semantic.vector(key)));
        let similar = self.similar_conversations(
            bag,
            vector,
            conversation,
            self.people.settings().similar_conversations,
        );
        let exclude = conversation
            .map(|conversation| {
                let mut exclude = self.already_in(conversation);
                exclude.extend(self.dismissed_participants(conversation));
                exclude
            })
            .unwrap_or_default();
        self.people
            .suggest_participants(bag, &similar, &exclude, now, limit)
    }

    /// Everyone who could be brought into a conversation about `bag` as of `as_of`, each with
    /// the features the participant model reads (see [`super::people::PARTICIPANT_FEATURES`]):
    /// what a model is fitted on. `author` is left out, as a conversation's author is.
    pub fn participant_candidates(
        &self,
        bag: &TermBag,
        vector: Option<&[f32]>,
        author: Option<&RecordKey>,
        as_of: Millis,
        limit: usize,
    ) -> Vec<(RecordKey, Vec<f32>)> {
        let similar = self.similar_conversations(
            bag,
            vector,
            None,
            self.people.settings().similar_conversations,
        );
        let exclude: HashSet<RecordKey> = author
            .map(|author| {
                self.people
                    .canonical(author)
                    .cloned()
                    .unwrap_or_else(|| author.clone())
            })
            .into_iter()
            .collect();
        let query = self.people.profile_query_of(bag);
        let pool = self
            .people
            .participant_pool(&query, &similar, &exclude, as_of, limit);
        pool.ids
            .iter()
            .zip(pool.rows)
            .filter_map(|(id, row)| Some((self.people.key_of(*id)?.clone(), row.to_vec())))
            .collect()
    }

    /// The model that ranks people for a conversation.
    pub fn participant_model(&self) -> &super::learn::RankingModel {
        self.people.participant_model()
    }

    /// Installs the model that ranks people for a conversation. Every judgment of where people
    /// stand was made with the model it replaces, so they are all dropped.
    pub fn set_participant_model(&mut self, model: Arc<super::learn::RankingModel>) {
        self.people.set_participant_model(model);
        self.generation += 1;
        if let Ok(mut standing) = self.standing.lock() {
            standing.retain(|_| false);
        }
        if let Ok(mut cache) = self.standing_cache.lock() {
            cache.clear();
        }
    }

    /// The people in a conversation and its author: nobody to bring in.
    pub(super) fn already_in(&self, conversation: &RecordKey) -> HashSet<RecordKey> {
        let mut exclude: HashSet<RecordKey> = self
            .people
            .participants_of(conversation)
            .into_iter()
            .map(|(person, _)| person)
            .collect();
        if let Some(author) = self
            .activity
            .get(conversation)
            .and_then(|activity| activity.author.as_deref())
        {
            let author = RecordKey::new(conversation.source.clone(), author);
            let author = self.people.canonical(&author).cloned().unwrap_or(author);
            exclude.insert(author);
        }
        exclude
    }

    /// Whether `person` could be suggested `conversation`: they are not in it and did not open
    /// it, it was not dismissed for them (`dismissed`, from [`Engine::dismissed_discussions`],
    /// read once per request), and it is open when `open_only`.
    fn may_join(
        &self,
        person: &RecordKey,
        conversation: &RecordKey,
        open_only: bool,
        dismissed: &HashSet<RecordKey>,
    ) -> bool {
        let activity = self.activity.get(conversation);
        if open_only && !activity.is_some_and(|activity| activity.open) {
            return false;
        }
        if self.people.took_part(person, conversation) || dismissed.contains(conversation) {
            return false;
        }
        let authored = activity
            .and_then(|activity| activity.author.as_deref())
            .is_some_and(|author| {
                let author = RecordKey::new(conversation.source.clone(), author);
                self.people.canonical(&author) == self.people.canonical(person)
            });
        !authored
    }

    /// A person's profile as a query over conversations, by term id.
    fn resolved_profile(&self, person: &RecordKey) -> ResolvedProfile {
        let profile = self.profile_query(person);
        let resolved: Vec<(usize, TermId, f32)> = profile
            .iter()
            .enumerate()
            .filter_map(|(position, (term, weight))| {
                Some((position, self.index.term_id(term)?, *weight))
            })
            .collect();
        let query = resolved
            .iter()
            .map(|(_, term, weight)| (*term, *weight))
            .collect();
        ResolvedProfile {
            profile,
            resolved,
            query,
        }
    }

    /// Conversations that suit a person's interests, best first, leaving out those they are
    /// already in or opened. Only open ones when `open_only`.
    pub fn conversations_for(
        &self,
        person: &RecordKey,
        open_only: bool,
        limit: usize,
    ) -> Vec<ConversationMatch> {
        let profile = self.resolved_profile(person);
        let ranked = self.best_for_profile(&profile, person, open_only, limit);
        self.matches(profile, ranked)
    }

    /// The `limit` conversations with the best profile scores that `person` may join, best
    /// first, found by scoring the profile against the whole corpus.
    fn best_for_profile(
        &self,
        profile: &ResolvedProfile,
        person: &RecordKey,
        open_only: bool,
        limit: usize,
    ) -> Vec<(RecordKey, f32)> {
        if profile.query.is_empty() {
            return Vec::new();
        }
        let dismissed = self.dismissed_discussions(person);
        let eligible = |slot: Slot| {
            self.index
                .key(slot)
                .is_some_and(|key| self.may_join(person, key, open_only, &dismissed))
        };
        let budget = self.people.settings().profile_postings;
        let Some(cheaper) = self.terms_within(&profile.query, budget) else {
            let scored = self.index.score_terms(&profile.query);
            return self.best_slots_where(scored, limit, eligible);
        };
        // Candidates from the terms that fit, then their exact scores from every term.
        let found = self.index.score_terms(&cheaper);
        let candidates = self.best_slots_where(found, limit.saturating_mul(2), eligible);
        let slots: Vec<Slot> = candidates
            .iter()
            .map(|(key, _)| self.index.slot(key).unwrap_or(Slot::MAX))
            .collect();
        let exact = self.index.score_slots(&slots, &profile.query);
        let mut scored: Vec<(RecordKey, f32)> = candidates
            .into_iter()
            .map(|(key, _)| key)
            .zip(exact)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }

    /// The terms of `query` a walk of at most `budget` postings takes, best weight per posting
    /// first (and the best one whatever its postings), in the query's order; `None` when the
    /// whole query fits.
    fn terms_within(&self, query: &[(TermId, f32)], budget: usize) -> Option<Vec<(TermId, f32)>> {
        let volume: usize = query
            .iter()
            .map(|(term, _)| self.index.df(*term) as usize)
            .sum();
        if volume <= budget {
            return None;
        }
        let worth = |&(term, weight): &(TermId, f32)| {
            weight * self.index.idf(term) / self.index.df(term).max(1) as f32
        };
        let mut order: Vec<usize> = (0..query.len()).collect();
        order.sort_by(|&a, &b| {
            worth(&query[b])
                .total_cmp(&worth(&query[a]))
                .then(a.cmp(&b))
        });
        let mut taken = vec![false; query.len()];
        let mut walked = 0usize;
        for position in order {
            let postings = self.index.df(query[position].0) as usize;
            if walked == 0 || walked + postings <= budget {
                walked += postings;
                taken[position] = true;
            }
        }
        Some(
            query
                .iter()
                .zip(taken)
                .filter_map(|(term, taken)| taken.then_some(*term))
                .collect(),
        )
    }

    /// Conversations with their profile scores as matches: the personal fit, and the profile's
    /// terms each one uses.
    fn matches(
        &self,
        profile: ResolvedProfile,
        scored: Vec<(RecordKey, f32)>,
    ) -> Vec<ConversationMatch> {
        let ResolvedProfile {
            profile, resolved, ..
        } = profile;
        // The terms a conversation shares with the profile are told strongest first: in that
        // order once, so that each conversation stops at its fifth.
        let mut by_weight = resolved;
        by_weight.sort_by(|a, b| {
            b.2.total_cmp(&a.2)
                .then_with(|| profile[a.0].0.cmp(&profile[b.0].0))
        });
        // The score of a conversation that used every term of the profile as often as BM25
        // counts: the fit is told against it, not against the best of these conversations,
        // so that it means the same whatever else was considered.
        let best = by_weight
            .iter()
            .map(|(_, term, weight)| weight * self.index.idf(*term) * (super::index::K1 + 1.0))
            .sum::<f32>()
            .max(1e-9);
        scored
            .into_iter()
            .map(|(conversation, score)| {
                let matched_terms = self
                    .index
                    .slot(&conversation)
                    .map(|slot| {
                        by_weight
                            .iter()
                            .filter(|(_, term, _)| self.index.tf(slot, *term) > 0.0)
                            .take(5)
                            .map(|(position, _, _)| profile[*position].0.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                ConversationMatch {
                    conversation,
                    personal: score / best,
                    matched_terms,
                }
            })
            .collect()
    }

    /// The conversations a person's suggestions are chosen from, with their personal fit.
    ///
    /// Where a person stands decides their suggestions, so the conversations where the standing
    /// index places them best come first: when it places them in at least `limit` they are the
    /// pool, and their profile is scored against those conversations alone, not the whole
    /// corpus. Otherwise (and about another moment, which the index does not hold) the pool is
    /// the `pool` conversations that suit their profile best, with the few where they are
    /// placed added.
    fn discussion_pool(
        &self,
        person: &RecordKey,
        as_of: Option<Millis>,
        pool: usize,
        limit: usize,
    ) -> Vec<ConversationMatch> {
        let placed = if as_of.is_none() {
            let dismissed = self.dismissed_discussions(person);
            self.best_placed(person, pool, |conversation| {
                self.may_join(person, conversation, true, &dismissed)
            })
        } else {
            Vec::new()
        };
        let profile = self.resolved_profile(person);
        // Profile scores of a few conversations, read from their documents.
        let score_of = |conversations: Vec<RecordKey>| -> Vec<(RecordKey, f32)> {
            let slots: Vec<Slot> = conversations
                .iter()
                .map(|conversation| self.index.slot(conversation).unwrap_or(Slot::MAX))
                .collect();
            let scores = self.index.score_slots(&slots, &profile.query);
            conversations.into_iter().zip(scores).collect()
        };
        if placed.len() >= limit.max(1) {
            let scored = score_of(placed.into_iter().map(|(key, _)| key).collect());
            return self.matches(profile, scored);
        }
        let mut scored = self.best_for_profile(&profile, person, true, pool);
        let known: HashSet<RecordKey> = scored.iter().map(|(key, _)| key.clone()).collect();
        let extra: Vec<RecordKey> = placed
            .into_iter()
            .map(|(key, _)| key)
            .filter(|conversation| !known.contains(conversation))
            .collect();
        scored.extend(score_of(extra));
        self.matches(profile, scored)
    }

    /// What the discussion model reads of each of `found` for `person` (see
    /// [`DISCUSSION_FEATURES`]), with what a suggestion shows beside it.
    fn discussion_rows(
        &self,
        person: &RecordKey,
        found: Vec<ConversationMatch>,
        as_of: Option<Millis>,
        now: Millis,
    ) -> Vec<DiscussionRow> {
        let conversations: Vec<RecordKey> = found
            .iter()
            .map(|found| found.conversation.clone())
            .collect();
        let standings = self.standings_of(person, &conversations, as_of);
        let person_vector = self.person_vector(person);
        found
            .into_iter()
            .zip(standings)
            .map(|(found, standing)| {
                let (strategic, facet_id) = match (
                    self.model.as_ref(),
                    self.score_conversation(&found.conversation),
                ) {
                    (Some(model), Some(score)) => {
                        let best = score
                            .facets
                            .iter()
                            .max_by(|a, b| a.relevance.total_cmp(&b.relevance))
                            .filter(|facet| facet.relevance >= super::CONNECTED)
                            .map(|facet| facet.facet_id.clone());
                        (overall_relevance(model, &score.facets), best)
                    }
                    _ => (0.0, None),
                };
                let engagement =
                    self.engagement(&found.conversation, now, &EngagementSettings::default());
                let (open, unanswered, live) = engagement
                    .as_ref()
                    .map_or((false, false, 0.0), |engagement| {
                        (engagement.open, engagement.unanswered, engagement.score)
                    });
                let semantic = person_vector
                    .as_deref()
                    .zip(self.semantic.vector(&found.conversation))
                    .map_or(0.0, |(person, conversation)| {
                        crate::semantic::dot(person, conversation)
                    });
                DiscussionRow {
                    features: [
                        standing,
                        found.personal,
                        semantic,
                        strategic,
                        live,
                        f32::from(u8::from(unanswered)),
                        standing * strategic,
                        standing * live,
                    ],
                    found,
                    strategic,
                    facet_id,
                    open,
                    unanswered,
                }
            })
            .collect()
    }

    /// `person`'s feature rows for each of `conversations` as of `as_of`, in their order, as
    /// the discussion model reads them: what a model is fitted on.
    pub fn discussion_candidates(
        &self,
        person: &RecordKey,
        conversations: &[RecordKey],
        as_of: Millis,
    ) -> Vec<Vec<f32>> {
        let profile = self.resolved_profile(person);
        let slots: Vec<Slot> = conversations
            .iter()
            .map(|conversation| self.index.slot(conversation).unwrap_or(Slot::MAX))
            .collect();
        let scores = self.index.score_slots(&slots, &profile.query);
        let scored: Vec<(RecordKey, f32)> = conversations.iter().cloned().zip(scores).collect();
        let found = self.matches(profile, scored);
        self.discussion_rows(person, found, Some(as_of), as_of)
            .into_iter()
            .map(|row| row.features.to_vec())
            .collect()
    }

    /// A person's interests by meaning: the normalised mean of the vectors of the conversations
    /// they took part in; `None` when none has a vector.
    fn person_vector(&self, person: &RecordKey) -> Option<Vec<f32>> {
        let (_, dimension) = self.semantic.model()?;
        let mut sum = vec![0.0f32; dimension];
        let mut any = false;
        for conversation in self.people.conversations_of(person) {
            if let Some(vector) = self.semantic.vector(&conversation) {
                for (total, value) in sum.iter_mut().zip(vector) {
                    *total += value;
                }
                any = true;
            }
        }
        if !any {
            return None;
        }
        crate::semantic::normalize(&mut sum);
        Some(sum)
    }

    /// The model that ranks discussions for a person.
    pub fn discussion_model(&self) -> &RankingModel {
        self.discussion_model
            .as_deref()
            .unwrap_or_else(|| default_discussion_model())
    }

    /// Installs the model that ranks discussions for a person.
    pub fn set_discussion_model(&mut self, model: Arc<RankingModel>) {
        debug_assert_eq!(model.features, DISCUSSION_FEATURES);
        self.discussion_model = Some(model);
        self.generation += 1;
    }

    /// Discussions a person should join: open, not yet joined, where their interests fit and
    /// where they would be among the best people to bring in, ranked by the discussion model
    /// (see [`DISCUSSION_FEATURES`]).
    pub fn suggest_discussions(
        &self,
        person: &RecordKey,
        as_of: Option<Millis>,
        limit: usize,
    ) -> Vec<DiscussionSuggestion> {
        let now = self.people_clock(as_of);
        let pool = self.discussion_pool(
            person,
            as_of,
            self.people.settings().discussion_pool.max(limit),
            limit,
        );
        let model = self.discussion_model();
        let mut suggestions: Vec<DiscussionSuggestion> = self
            .discussion_rows(person, pool, as_of, now)
            .into_iter()
            .map(|row| DiscussionSuggestion {
                score: model.score(&row.features),
                probability: model.probability(&row.features),
                conversation: row.found.conversation,
                personal: row.found.personal,
                strategic: row.strategic,
                facet_id: row.facet_id,
                matched_terms: row.found.matched_terms,
                open: row.open,
                unanswered: row.unanswered,
            })
            .collect();
        suggestions.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.conversation.cmp(&b.conversation))
        });
        suggestions.truncate(limit);
        suggestions
    }
}

/// Where one person's interests meet one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetConvergence {
    pub facet_id: String,
    /// In [0, 1): 0.5 is the level of the most convergent people of the community.
    pub convergence: f32,
    /// Stems of the facet's query found in their profile, strongest first.
    pub matched_terms: Vec<String>,
}

/// How much of the strategic conversation a facet carries.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetShare {
    pub facet_id: String,
    /// Conversations whose strongest connection is this facet.
    pub conversations: u32,
    /// Their share of all connected conversations.
    pub share: f32,
    /// The share the facet's weight would give it among the facets.
    pub fair_share: f32,
}

impl Engine {
    /// Evidence of a weighted-term query in some texts: the matched words and the best sentence.
    pub fn explain_terms(
        &self,
        label: &str,
        terms: &[(String, f32)],
        parts: &[super::AnalyzedPart<'_>],
    ) -> super::Evidence {
        self.terms_explainer(label, terms).explain(parts)
    }

    /// A weighted-term query (a profile, a question's terms) made ready to explain many texts.
    pub fn terms_explainer<'q>(
        &self,
        label: &'q str,
        terms: &'q [(String, f32)],
    ) -> super::Explainer<'q> {
        let terms = terms.iter().map(|(term, weight)| (term.as_str(), *weight));
        super::Explainer::new(&self.index, label, terms, None)
            .with_common_words(self.common_words())
    }

    /// The terms of a text as a weighted query.
    pub fn text_terms(&self, title: &str, body: &str) -> Vec<(String, f32)> {
        bag_query(&self.text_bag(title, body))
            .terms
            .into_iter()
            .map(|term| (term.term, term.weight))
            .collect()
    }

    /// Per facet, the raw profile score at which convergence reads 0.5: the 95th percentile
    /// over people with a profile, as conversations are calibrated over the corpus.
    /// Computed again when people arrive, but not more often than `standing_max_age` allows.
    pub(super) fn people_calibration(&self, now: Millis) -> Vec<f32> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let people = self.people.profiles().len();
        let key = (model.version, model.corpus_size, people);
        if let Ok(cache) = self.people_calibration.lock()
            && let Some((cached_key, computed_at, scales)) = cache.as_ref()
            && cached_key.0 == key.0
            && cached_key.1 == key.1
            && (cached_key.2 == key.2 || computed_at.elapsed() <= self.standing_max_age)
        {
            return scales.clone();
        }
        let scales: Vec<f32> = model
            .facets
            .iter()
            .map(|facet| {
                let query: Vec<(String, f32)> = facet
                    .query
                    .terms
                    .iter()
                    .map(|term| (term.term.clone(), term.weight))
                    .collect();
                let mut scores: Vec<f32> = self
                    .people
                    .profile_scores_for(&query, now)
                    .into_iter()
                    .map(|(_, score)| score)
                    .collect();
                if people < 20 {
                    let self_score: f32 = query.iter().map(|(_, weight)| weight).sum();
                    return (self_score * 0.5).max(1.0);
                }
                scores.resize(people.max(scores.len()), 0.0);
                scores.sort_by(f32::total_cmp);
                let rank = ((scores.len() as f32) * 0.95) as usize;
                scores
                    .get(rank.min(scores.len() - 1))
                    .copied()
                    .unwrap_or(1.0)
                    .max(1e-3)
            })
            .collect();
        if let Ok(mut cache) = self.people_calibration.lock() {
            *cache = Some((key, std::time::Instant::now(), scales.clone()));
        }
        scales
    }

    /// Where a person's interests meet each facet of the strategy, in the strategy's order.
    pub fn convergence(&self, person: &RecordKey, as_of: Option<Millis>) -> Vec<FacetConvergence> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let now = self.people_clock(as_of);
        let scales = self.people_calibration(now);
        model
            .facets
            .iter()
            .enumerate()
            .map(|(index, facet)| {
                let query: Vec<(String, f32)> = facet
                    .query
                    .terms
                    .iter()
                    .map(|term| (term.term.clone(), term.weight))
                    .collect();
                let raw = self.people.profile_score(person, &query, now);
                let scale = scales.get(index).copied().unwrap_or(1.0).max(1e-3);
                FacetConvergence {
                    facet_id: facet.id.clone(),
                    convergence: raw / (raw + scale),
                    matched_terms: self.people.matched_query_terms(person, &query, 5),
                }
            })
            .collect()
    }

    /// How the connected conversations spread over the facets.
    /// Computed over the whole corpus once per generation (every person's suggestions ask),
    /// and, once the corpus moves on, used for as long as `standing_max_age` allows.
    pub fn facet_shares(&self) -> Vec<FacetShare> {
        let key = (
            self.generation,
            self.model
                .as_ref()
                .map_or(0, |model| Arc::as_ptr(model) as usize),
        );
        if let Ok(cache) = self.facet_shares_cache.lock()
            && let Some((cached_key, computed_at, shares)) = cache.as_ref()
            && cached_key.1 == key.1
            && (cached_key.0 == key.0 || computed_at.elapsed() <= self.standing_max_age)
        {
            return shares.clone();
        }
        let shares = self.compute_facet_shares();
        if let Ok(mut cache) = self.facet_shares_cache.lock() {
            *cache = Some((key, std::time::Instant::now(), shares.clone()));
        }
        shares
    }

    fn compute_facet_shares(&self) -> Vec<FacetShare> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let mut primary = vec![0u32; model.facets.len()];
        let mut raw_scores: Vec<Vec<f32>> = Vec::with_capacity(model.facets.len());
        for facet in &model.facets {
            let mut scores = vec![0.0f32; self.index.slot_count()];
            for (slot, score) in score_all(&facet.query, &self.index) {
                scores[slot as usize] = score;
            }
            raw_scores.push(scores);
        }
        for slot in 0..self.index.slot_count() {
            let best = raw_scores
                .iter()
                .enumerate()
                .map(|(facet, scores)| (facet, model.relevance(facet, scores[slot])))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((facet, relevance)) = best
                && relevance >= super::CONNECTED
            {
                primary[facet] += 1;
            }
        }
        let connected: u32 = primary.iter().sum();
        let total_weight: f32 = model
            .facets
            .iter()
            .map(|facet| facet.weight)
            .sum::<f32>()
            .max(1e-6);
        model
            .facets
            .iter()
            .zip(primary)
            .map(|(facet, conversations)| FacetShare {
                facet_id: facet.id.clone(),
                conversations,
                share: if connected == 0 {
                    0.0
                } else {
                    conversations as f32 / connected as f32
                },
                fair_share: facet.weight / total_weight,
            })
            .collect()
    }
}
