//! Prospects: people whose interests meet the strategy, ranked for bringing them in.
//!
//! Three things make a good prospect, and each is its own ranked list:
//! - *convergence*: how strongly their profile (bio and writing, decayed with age) speaks to
//!   the strategy, calibrated per facet over the community (see [`Engine::convergence`]);
//! - *activity*: their contributions decayed with age, because people who were active lately
//!   are the ones who will answer an invitation;
//! - *reach*: how many conversations they took part in, because an invitation is worth more
//!   to someone others already read.
//!
//! The lists are fused by reciprocal rank, as the participant ranking fuses its evidence: the
//! scales of the three have nothing in common, and no weight between them would hold from one
//! community to the next. Only people whose convergence reaches [`super::WEAK`] (the level
//! below which nothing connects to the strategy) are ranked at all: a person with no
//! interest in the strategy is not a prospect, however busy.

use std::collections::HashMap;

use super::Engine;
use super::assets::AssetContext;
use super::model::{Query, QueryTerm};
use crate::domain::{Millis, RecordKey};

/// A person worth bringing in, with the parts of their score.
#[derive(Debug, Clone, PartialEq)]
pub struct ProspectMatch {
    pub person: RecordKey,
    pub member: bool,
    /// A person record was ingested for them (not only posts naming them as author).
    pub known: bool,
    /// In [0, 1]; 1 for the best prospect of the answer.
    pub score: f32,
    /// Convergence with the strategy (its best facet) or the facet asked about, in [0, 1).
    pub convergence: f32,
    /// The facet they converge with most.
    pub facet_id: String,
    /// Stems of that facet's query found in their profile, strongest first.
    pub matched_terms: Vec<String>,
    /// Decayed contributions as of the query time.
    pub activity: f32,
    /// Conversations they took part in.
    pub reach: u32,
    pub contributions: u32,
    pub last_active: Option<Millis>,
}

/// Who may be a prospect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProspectPool {
    /// People outside the community only.
    Outsiders,
    /// Everyone, members too.
    Everyone,
}

/// What a prospect is invited with: the open conversation that suits them best and serves the
/// strategy, and the asset for their strongest facet.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationChoice {
    pub conversation: Option<RecordKey>,
    pub asset: Option<RecordKey>,
}

/// Open conversations judged for one prospect's invitation.
const INVITATION_POOL: usize = 20;

impl Engine {
    /// Prospects, best first, at most `limit`. `facet` narrows convergence to one facet of the
    /// strategy (it must exist; the caller checks). Empty without a strategy.
    pub fn find_prospects(
        &self,
        facet: Option<&str>,
        pool: ProspectPool,
        as_of: Option<Millis>,
        limit: usize,
    ) -> Vec<ProspectMatch> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let now = self.people_clock(as_of);
        let forgotten = self.forgotten();
        let best = self.best_convergence(facet, now);

        struct Candidate {
            key: RecordKey,
            member: bool,
            known: bool,
            convergence: f32,
            facet: usize,
            activity: f32,
            reach: u32,
            contributions: u32,
            last_active: Option<Millis>,
        }
        let mut candidates: Vec<Candidate> = best
            .into_iter()
            .filter(|(key, (convergence, _))| {
                *convergence >= super::WEAK
                    && !forgotten.contains(key)
                    && self.people.canonical(key) == Some(key)
            })
            .filter_map(|(key, (convergence, facet))| {
                let summary = self.people.summary(&key, now)?;
                if pool == ProspectPool::Outsiders && summary.member {
                    return None;
                }
                Some(Candidate {
                    key,
                    member: summary.member,
                    known: summary.known,
                    convergence,
                    facet,
                    activity: summary.recent_activity,
                    reach: summary.conversations as u32,
                    contributions: summary.contributions,
                    last_active: summary.last_active,
                })
            })
            .collect();
        if candidates.is_empty() || limit == 0 {
            return Vec::new();
        }

        // Reciprocal-rank fusion of the three lists; ties share the rank of their first.
        let fusion_k = self.people.settings().fusion_k;
        let mut fused = vec![0.0f32; candidates.len()];
        let lists: [&dyn Fn(&Candidate) -> f32; 3] = [
            &|candidate| candidate.convergence,
            &|candidate| candidate.activity,
            &|candidate| candidate.reach as f32,
        ];
        for value in lists {
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            order.sort_by(|a, b| value(&candidates[*b]).total_cmp(&value(&candidates[*a])));
            let mut rank = 0;
            for (position, index) in order.iter().enumerate() {
                let current = value(&candidates[*index]);
                if position > 0 && current < value(&candidates[order[position - 1]]) {
                    rank = position;
                }
                if current > 0.0 {
                    fused[*index] += 1.0 / (fusion_k + rank as f32 + 1.0);
                }
            }
        }
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|a, b| {
            fused[*b]
                .total_cmp(&fused[*a])
                .then_with(|| candidates[*a].key.cmp(&candidates[*b].key))
        });
        order.truncate(limit);
        let top = order.first().map_or(1.0, |index| fused[*index].max(1e-9));
        let mut ranked: Vec<Option<Candidate>> = candidates.drain(..).map(Some).collect();
        order
            .into_iter()
            .filter_map(|index| {
                let candidate = ranked[index].take()?;
                let facet_model = &model.facets[candidate.facet];
                let query = term_pairs(&facet_model.query);
                Some(ProspectMatch {
                    matched_terms: self.people.matched_query_terms(&candidate.key, &query, 5),
                    person: candidate.key,
                    member: candidate.member,
                    known: candidate.known,
                    score: fused[index] / top,
                    convergence: candidate.convergence,
                    facet_id: facet_model.id.clone(),
                    activity: candidate.activity,
                    reach: candidate.reach,
                    contributions: candidate.contributions,
                    last_active: candidate.last_active,
                })
            })
            .collect()
    }

    /// Per person with a profile, their convergence with the facet they meet best (or with
    /// `facet` alone) and that facet's index in the model, as of `now`.
    pub(super) fn best_convergence(
        &self,
        facet: Option<&str>,
        now: Millis,
    ) -> HashMap<RecordKey, (f32, usize)> {
        let mut best: HashMap<RecordKey, (f32, usize)> = HashMap::new();
        let Some(model) = self.model.as_ref() else {
            return best;
        };
        let scales = self.people_calibration(now);
        for (index, facet_model) in model.facets.iter().enumerate() {
            if facet.is_some_and(|wanted| wanted != facet_model.id) {
                continue;
            }
            let query = term_pairs(&facet_model.query);
            let scale = scales.get(index).copied().unwrap_or(1.0).max(1e-3);
            for (person, raw) in self.people.profile_scores_for(&query, now) {
                let convergence = raw / (raw + scale);
                let entry = best.entry(person).or_insert((0.0, index));
                if convergence > entry.0 {
                    *entry = (convergence, index);
                }
            }
        }
        best
    }

    /// What to invite a prospect with: of the open conversations that suit their interests and
    /// that they are not in, the one that best joins their fit with the strategy's `facet`;
    /// and the asset that speaks best to that facet in their own words.
    pub fn invitation_for(
        &self,
        prospect: &ProspectMatch,
        own_assets_first: bool,
    ) -> InvitationChoice {
        let conversation = self
            .conversations_for(&prospect.person, true, INVITATION_POOL)
            .into_iter()
            .map(|found| {
                let strategic = self
                    .score_conversation(&found.conversation)
                    .and_then(|score| {
                        score
                            .facets
                            .iter()
                            .find(|facet| facet.facet_id == prospect.facet_id)
                            .map(|facet| facet.relevance)
                    })
                    .unwrap_or(0.0);
                (found.personal * (0.5 + strategic), found.conversation)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
            .map(|(_, key)| key);
        let asset = self
            .facet_asset_context(&prospect.facet_id)
            .and_then(|context| {
                // The facet's query, leaning towards the words of it they use themselves.
                let mut terms = context.query.terms.clone();
                for term in &mut terms {
                    if prospect.matched_terms.contains(&term.term) {
                        term.weight *= 2.0;
                    }
                }
                let context = AssetContext {
                    query: Query { terms },
                    ..context
                };
                let mut ranked = self.rank_assets(&context, own_assets_first, 1);
                if ranked.is_empty() && own_assets_first {
                    ranked = self.rank_assets(&context, false, 1);
                }
                ranked.into_iter().next().map(|hit| hit.key)
            });
        InvitationChoice {
            conversation,
            asset,
        }
    }
}

fn term_pairs(query: &Query) -> Vec<(String, f32)> {
    query
        .terms
        .iter()
        .map(|QueryTerm { term, weight }| (term.clone(), *weight))
        .collect()
}
