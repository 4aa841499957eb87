//! Which conversations to nourish now: strategic relevance combined with engagement potential.
//! A relevant thread that is closed and cold is worth less today than a relevant one that is
//! open, fresh, and still waiting for an answer.

use std::collections::HashMap;

use super::model::score_all;
use super::{ConnectionClass, Engine, FacetScore, classify, overall_relevance};
use crate::domain::{Millis, RecordKey};

const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngagementSettings {
    /// Age, in days, at which recency counts half.
    pub recency_half_life_days: f64,
    /// The window, in days, in which posts count as recent activity.
    pub activity_window_days: f64,
    /// Share of the final priority that engagement decides (the rest is relevance).
    pub engagement_share: f32,
}

impl Default for EngagementSettings {
    fn default() -> Self {
        Self {
            recency_half_life_days: 14.0,
            activity_window_days: 7.0,
            engagement_share: 0.4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Engagement {
    pub open: bool,
    pub unanswered: bool,
    /// 1.0 for activity right now, halving every half-life.
    pub recency: f32,
    /// Posts in the activity window, saturating towards 1.0.
    pub activity: f32,
    pub posts: u32,
    pub participants: u32,
    pub days_since_activity: Option<f64>,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StrategicConversation {
    pub key: RecordKey,
    pub priority: f32,
    pub relevance: f32,
    pub class: ConnectionClass,
    pub facets: Vec<FacetScore>,
    pub engagement: Engagement,
    pub reasons: Vec<String>,
}

impl Engine {
    /// The newest activity time in the corpus: "now" for a corpus that stopped growing.
    pub fn latest_activity(&self) -> Option<Millis> {
        self.activity
            .values()
            .filter_map(|activity| activity.last_activity_at)
            .max()
    }

    /// Engagement of one conversation as of `now`.
    pub fn engagement(
        &self,
        key: &RecordKey,
        now: Millis,
        settings: &EngagementSettings,
    ) -> Option<Engagement> {
        let activity = self.activity.get(key)?;
        let days_since = activity
            .last_activity_at
            .map(|last| ((now - last) as f64 / DAY_MS).max(0.0));
        let recency = days_since.map_or(0.0, |days| {
            0.5f64.powf(days / settings.recency_half_life_days.max(1e-3)) as f32
        });
        let window_start = now - (settings.activity_window_days * DAY_MS) as Millis;
        let recent_posts = activity
            .post_times
            .iter()
            .filter(|time| **time >= window_start && **time <= now)
            .count() as f32;
        let activity_level = 1.0 - (-recent_posts / 5.0).exp();
        let unanswered = activity.replies_by_others == 0;
        let open_part = if activity.open { 1.0 } else { 0.0 };
        let unanswered_part = if unanswered && activity.open {
            1.0
        } else {
            0.0
        };
        let score = 0.3 * open_part + 0.3 * recency + 0.2 * unanswered_part + 0.2 * activity_level;
        Some(Engagement {
            open: activity.open,
            unanswered,
            recency,
            activity: activity_level,
            posts: activity.posts,
            participants: activity.participants.len() as u32,
            days_since_activity: days_since,
            score,
        })
    }

    /// The conversations to nourish now, best first. `now` defaults to the corpus's latest
    /// activity, so an archive is judged as of its own last day.
    pub fn strategic_conversations(
        &self,
        now: Option<Millis>,
        settings: &EngagementSettings,
        min_relevance: f32,
        facet_filter: Option<&str>,
        limit: usize,
    ) -> Vec<StrategicConversation> {
        let Some(model) = self.model.as_ref() else {
            return Vec::new();
        };
        let now = now.or_else(|| self.latest_activity()).unwrap_or(0);
        let mut raw: HashMap<u32, Vec<f32>> = HashMap::new();
        for (facet_index, facet) in model.facets.iter().enumerate() {
            for (slot, score) in score_all(&facet.query, &self.index) {
                raw.entry(slot)
                    .or_insert_with(|| vec![0.0; model.facets.len()])[facet_index] = score;
            }
        }
        let mut results: Vec<StrategicConversation> = raw
            .into_iter()
            .filter_map(|(slot, raw_scores)| {
                let key = self.index.key(slot)?.clone();
                let facets: Vec<FacetScore> = model
                    .facets
                    .iter()
                    .enumerate()
                    .map(|(index, facet)| FacetScore {
                        facet_id: facet.id.clone(),
                        kind: facet.kind,
                        relevance: model.relevance(index, raw_scores[index]),
                        raw: raw_scores[index],
                    })
                    .collect();
                if let Some(filter) = facet_filter {
                    let facet = facets.iter().find(|facet| facet.facet_id == filter)?;
                    if facet.relevance < min_relevance {
                        return None;
                    }
                }
                let relevance = overall_relevance(model, &facets);
                if relevance < min_relevance {
                    return None;
                }
                let class = classify(model, &facets, relevance, &[]);
                let engagement = self.engagement(&key, now, settings)?;
                let share = settings.engagement_share.clamp(0.0, 1.0);
                let priority = relevance * ((1.0 - share) + share * engagement.score);
                let reasons = reasons(model, &facets, relevance, &engagement);
                Some(StrategicConversation {
                    key,
                    priority,
                    relevance,
                    class,
                    facets,
                    engagement,
                    reasons,
                })
            })
            .collect();
        results.sort_by(|a, b| {
            b.priority
                .total_cmp(&a.priority)
                .then_with(|| a.key.cmp(&b.key))
        });
        results.truncate(limit);
        results
    }
}

fn reasons(
    model: &super::model::StrategyModel,
    facets: &[FacetScore],
    relevance: f32,
    engagement: &Engagement,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut connected: Vec<(&FacetScore, &str)> = facets
        .iter()
        .zip(&model.facets)
        .filter(|(score, _)| score.relevance >= super::CONNECTED)
        .map(|(score, facet)| (score, facet.name.as_str()))
        .collect();
    connected.sort_by(|a, b| b.0.relevance.total_cmp(&a.0.relevance));
    match connected.as_slice() {
        [] => reasons.push(format!(
            "loosely connected to the strategy (relevance {relevance:.2})"
        )),
        [(score, name)] => reasons.push(format!(
            "connects to \"{name}\" ({}, relevance {:.2})",
            score.kind_label(),
            score.relevance
        )),
        many => reasons.push(format!(
            "connects to {} facets: {}",
            many.len(),
            many.iter()
                .map(|(score, name)| format!("\"{name}\" ({:.2})", score.relevance))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    if engagement.open {
        reasons.push("still open".to_owned());
    } else {
        reasons.push("closed: worth linking to, not joining".to_owned());
    }
    if engagement.unanswered && engagement.open {
        reasons.push("nobody but its author has replied yet".to_owned());
    }
    if let Some(days) = engagement.days_since_activity {
        if days < 1.0 {
            reasons.push("active today".to_owned());
        } else {
            reasons.push(format!("last active {days:.0} days ago"));
        }
    }
    if engagement.activity >= 0.3 {
        reasons.push(format!(
            "busy: {} posts from {} people",
            engagement.posts, engagement.participants
        ));
    }
    reasons
}

impl FacetScore {
    fn kind_label(&self) -> &'static str {
        self.kind.as_str()
    }
}
