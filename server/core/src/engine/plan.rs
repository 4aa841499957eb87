//! Action planning: where each facet of the strategy needs work, platform by platform, and the
//! order in which candidate actions are worth doing.
//!
//! A facet *needs* work on a platform in proportion to its weight in the strategy and to how
//! thin its conversation is there: the share of the platform's strategic conversations whose
//! strongest connection is that facet, against the share its weight asks for (the same measure
//! as [`Engine::facet_shares`], counted per platform). An action's worth is that need times the
//! strength of its target (a conversation's priority, a prospect's score, an asset's score, or
//! the thinness itself for a discussion to start).
//!
//! Ordering is greedy with diminishing returns: each further action on the same platform, or of
//! the same kind there, counts a little less, so that a plan spreads over platforms and kinds
//! instead of listing ten shares of the same collection. The engine words nothing; the service
//! fetches the records and writes the drafts.

use std::collections::HashMap;

use super::model::score_all;
use super::{CONNECTED, Engine};
use crate::domain::{PlatformKind, RecordKey};

/// How much a facet needs work on one platform.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetNeed {
    pub facet_id: String,
    /// Strategic conversations on the platform whose strongest connection is this facet.
    pub conversations: u32,
    /// Their share of the platform's strategic conversations, in [0, 1].
    pub share: f32,
    /// The share the facet's weight asks for, in (0, 1].
    pub fair_share: f32,
    /// How far the share falls short of the fair share, in [0, 1]: 1 when the platform has no
    /// conversation on the facet, 0 when it has its fair share or more.
    pub thinness: f32,
    /// The facet's weight against the heaviest facet's, in (0, 1].
    pub weight: f32,
    /// Weight times (1 + thinness) / 2, in (0, 1]: a facet never stops mattering, and a thin
    /// one matters twice as much.
    pub need: f32,
}

/// The kinds of action a plan holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ShortPost,
    StartDiscussion,
    InvitePerson,
    ShareAsset,
    JoinDiscussion,
}

/// Each further action already chosen on the same platform multiplies an action's worth by
/// this, and each one of the same kind there by it once more.
const REPEAT_DISCOUNT: f32 = 0.85;

impl Engine {
    /// The platform a stored conversation is on, when it said.
    pub fn conversation_platform(&self, key: &RecordKey) -> Option<PlatformKind> {
        self.activity
            .get(key)
            .and_then(|activity| activity.platform)
    }

    /// The platforms conversations are on, with their number, in [`PlatformKind::ALL`] order.
    pub fn conversation_platforms(&self) -> Vec<(PlatformKind, usize)> {
        let mut counts: HashMap<PlatformKind, usize> = HashMap::new();
        for activity in self.activity.values() {
            if let Some(platform) = activity.platform {
                *counts.entry(platform).or_default() += 1;
            }
        }
        PlatformKind::ALL
            .into_iter()
            .filter_map(|platform| Some((platform, counts.get(&platform).copied()?)))
            .collect()
    }

    /// For each platform asked about, every facet's need, in the strategy's order. Empty
    /// without a strategy.
    pub fn facet_needs(&self, platforms: &[PlatformKind]) -> Vec<(PlatformKind, Vec<FacetNeed>)> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let facet_count = model.facets.len();
        let mut relevance = vec![vec![0.0f32; facet_count]; self.index.slot_count()];
        for (facet_index, facet) in model.facets.iter().enumerate() {
            for (slot, raw) in score_all(&facet.query, &self.index) {
                if let Some(row) = relevance.get_mut(slot as usize) {
                    row[facet_index] = model.relevance(facet_index, raw);
                }
            }
        }
        // Per platform, the conversations whose strongest connection is each facet.
        let mut primary: HashMap<PlatformKind, Vec<u32>> = HashMap::new();
        for (slot, row) in relevance.iter().enumerate() {
            let Some(platform) = self
                .index
                .key(slot as u32)
                .and_then(|key| self.conversation_platform(key))
            else {
                continue;
            };
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(&a.0)));
            if let Some((facet, relevance)) = best
                && *relevance >= CONNECTED
            {
                primary
                    .entry(platform)
                    .or_insert_with(|| vec![0; facet_count])[facet] += 1;
            }
        }
        let total_weight: f32 = model
            .facets
            .iter()
            .map(|facet| facet.weight)
            .sum::<f32>()
            .max(1e-6);
        let max_weight = model
            .facets
            .iter()
            .map(|facet| facet.weight)
            .fold(0.0f32, f32::max)
            .max(1e-6);
        platforms
            .iter()
            .map(|platform| {
                let counts = primary
                    .get(platform)
                    .cloned()
                    .unwrap_or_else(|| vec![0; facet_count]);
                let connected: u32 = counts.iter().sum();
                let needs = model
                    .facets
                    .iter()
                    .zip(counts)
                    .map(|(facet, conversations)| {
                        let share = if connected == 0 {
                            0.0
                        } else {
                            conversations as f32 / connected as f32
                        };
                        let fair_share = (facet.weight / total_weight).max(1e-6);
                        let thinness = ((fair_share - share) / fair_share).clamp(0.0, 1.0);
                        let weight = (facet.weight / max_weight).clamp(0.0, 1.0);
                        FacetNeed {
                            facet_id: facet.id.clone(),
                            conversations,
                            share,
                            fair_share,
                            thinness,
                            weight,
                            need: weight * (1.0 + thinness) / 2.0,
                        }
                    })
                    .collect();
                (*platform, needs)
            })
            .collect()
    }
}

/// The order to do candidate actions in, as indexes into `candidates` (platform, kind, worth),
/// at most `limit`: the worthiest first, each further action on the same platform, and of the
/// same kind there, discounted by [`REPEAT_DISCOUNT`]. Ties go to the earlier candidate.
/// Candidates worth nothing are never chosen.
pub fn order_actions(candidates: &[(PlatformKind, ActionKind, f32)], limit: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut taken = vec![false; candidates.len()];
    let mut per_platform: HashMap<PlatformKind, i32> = HashMap::new();
    let mut per_kind: HashMap<(PlatformKind, ActionKind), i32> = HashMap::new();
    while chosen.len() < limit {
        let mut best: Option<(usize, f32)> = None;
        for (index, (platform, kind, worth)) in candidates.iter().enumerate() {
            if taken[index] || *worth <= 0.0 || !worth.is_finite() {
                continue;
            }
            let repeats = per_platform.get(platform).copied().unwrap_or(0)
                + per_kind.get(&(*platform, *kind)).copied().unwrap_or(0);
            let adjusted = worth * REPEAT_DISCOUNT.powi(repeats);
            if best.is_none_or(|(_, top)| adjusted > top) {
                best = Some((index, adjusted));
            }
        }
        let Some((index, _)) = best else {
            break;
        };
        let (platform, kind, _) = candidates[index];
        taken[index] = true;
        *per_platform.entry(platform).or_default() += 1;
        *per_kind.entry((platform, kind)).or_default() += 1;
        chosen.push(index);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worthiest_come_first_and_the_limit_holds() {
        let candidates = [
            (PlatformKind::Blog, ActionKind::ShortPost, 0.2),
            (PlatformKind::Chat, ActionKind::JoinDiscussion, 0.9),
            (PlatformKind::QaForum, ActionKind::StartDiscussion, 0.5),
        ];
        assert_eq!(order_actions(&candidates, 10), [1, 2, 0]);
        assert_eq!(order_actions(&candidates, 2), [1, 2]);
        assert!(order_actions(&candidates, 0).is_empty());
    }

    #[test]
    fn repeats_on_one_platform_give_way_to_other_platforms_and_kinds() {
        let candidates = [
            (PlatformKind::Bookmarking, ActionKind::ShareAsset, 1.0),
            (PlatformKind::Bookmarking, ActionKind::ShareAsset, 0.95),
            (PlatformKind::Bookmarking, ActionKind::ShareAsset, 0.9),
            (PlatformKind::Chat, ActionKind::ShortPost, 0.8),
            (PlatformKind::Bookmarking, ActionKind::JoinDiscussion, 0.8),
        ];
        // After the first share, the chat post (0.8) beats a second share (0.95 × 0.85² ≈ 0.69);
        // that second share then just beats the other kind on bookmarking (0.8 × 0.85 = 0.68).
        assert_eq!(order_actions(&candidates, 5), [0, 3, 1, 4, 2]);
    }

    #[test]
    fn actions_worth_nothing_are_left_out() {
        let candidates = [
            (PlatformKind::Blog, ActionKind::ShortPost, 0.0),
            (PlatformKind::Blog, ActionKind::ShareAsset, f32::NAN),
            (PlatformKind::Blog, ActionKind::InvitePerson, 0.1),
        ];
        assert_eq!(order_actions(&candidates, 10), [2]);
    }
}
