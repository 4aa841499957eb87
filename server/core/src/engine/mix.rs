//! The platform mix: which platforms carry the strategic conversations, whom they reach, and
//! how to split the effort across them.
//!
//! For each platform the workspace has conversations on, over the conversations active in the
//! window asked about:
//! - the *strategic conversations* (overall relevance at least [`super::CONNECTED`]) and their
//!   share, per facet by the facet each serves best;
//! - their mean *engagement* (open, recent, awaiting answers: [`Engine::engagement`]);
//! - the *convergent people reached*: those who took part in them whose interests meet the
//!   strategy ([`super::WEAK`] or more), members and prospects counted apart;
//! - the *supporting assets* that live there (assets that support a facet, by the platform of
//!   their source, else by their kind);
//! - the *trend*: strategic conversations started in the latest period against the one before.
//!
//! The recommended effort is a weighted mean of each platform's share of four things, as a
//! strategist would weigh them: where the strategic conversation is (0.4), whom it reaches
//! (0.3), where it is alive (0.15) and where it is growing (0.15). The weights are product
//! defaults, the same for every community; the answer says in plain sentences what drives the
//! split and what would change it.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{CONNECTED, EngagementSettings, Engine, WEAK};
use crate::domain::{AssetKind, Millis, PlatformKind, RecordKey};

const DAY_MS: i64 = 86_400_000;
/// The trend compares the latest period with the one before; without a window asked for, a
/// period is this many days.
const DEFAULT_PERIOD_DAYS: i64 = 30;
/// The weights of the effort split: conversation, reach, engagement, growth.
const EFFORT_WEIGHTS: [f32; 4] = [0.4, 0.3, 0.15, 0.15];
/// Assets ranked per facet when counting the supporting assets of each platform; an asset
/// counts when its calibrated score reaches [`WEAK`].
const ASSETS_PER_FACET: usize = 200;

/// One platform's part in the strategic conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformStats {
    pub platform: PlatformKind,
    pub strategic_conversations: u32,
    /// Share of all strategic conversations, in [0, 1].
    pub share: f32,
    /// (facet id, strategic conversations serving it best, share of the platform's), most first.
    pub facets: Vec<(String, u32, f32)>,
    /// Mean engagement of its strategic conversations, in [0, 1].
    pub engagement: f32,
    pub members_reached: u32,
    pub prospects_reached: u32,
    pub supporting_assets: u32,
    /// Strategic conversations started in the latest period and in the one before.
    pub recent: u32,
    pub previous: u32,
    /// (recent - previous) / max(previous, 1): 0.5 is up by half, -1 is gone.
    pub trend: f32,
    /// In [0, 1]; the platforms' efforts add up to 1 when any platform carries strategy.
    pub recommended_effort: f32,
    pub reasons: Vec<String>,
}

/// Strategic conversations started in one period, per facet in the strategy's order.
#[derive(Debug, Clone, PartialEq)]
pub struct CoveragePeriod {
    pub start: Millis,
    pub end: Millis,
    pub per_facet: Vec<(String, u32)>,
}

/// The whole answer: per platform, most effort first; findings and sensitivities in words;
/// facet coverage over the last [`COVERAGE_PERIODS`] periods, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlatformMix {
    pub platforms: Vec<PlatformStats>,
    pub findings: Vec<String>,
    pub sensitivities: Vec<String>,
    pub coverage: Vec<CoveragePeriod>,
    /// The length of a trend period, in days.
    pub period_days: i64,
}

/// Periods of facet coverage reported, the latest last.
pub const COVERAGE_PERIODS: i64 = 6;

/// How a platform is named in a sentence.
pub fn platform_label(platform: PlatformKind) -> &'static str {
    match platform {
        PlatformKind::Blog => "the blog",
        PlatformKind::PrivateNetwork => "private networks",
        PlatformKind::PublicNetwork => "public networks",
        PlatformKind::Bookmarking => "bookmarking sites",
        PlatformKind::QaForum => "the Q&A forum",
        PlatformKind::Chat => "chat",
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn percent(value: f32) -> String {
    format!("{:.0}%", value * 100.0)
}

fn plural(count: u32, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// The raw inputs of the split, per platform.
#[derive(Debug, Clone, Copy, Default)]
struct Inputs {
    strategic: f32,
    reach: f32,
    engagement: f32,
    growth: f32,
}

/// Each platform's effort: the weighted mean of its shares of the four inputs.
fn efforts(inputs: &[Inputs]) -> Vec<f32> {
    let total = |pick: fn(&Inputs) -> f32| inputs.iter().map(pick).sum::<f32>();
    let totals = [
        total(|i| i.strategic),
        total(|i| i.reach),
        total(|i| i.engagement),
        total(|i| i.growth),
    ];
    let raw: Vec<f32> = inputs
        .iter()
        .map(|input| {
            [input.strategic, input.reach, input.engagement, input.growth]
                .iter()
                .zip(totals)
                .zip(EFFORT_WEIGHTS)
                .map(|((value, total), weight)| {
                    if total > 0.0 {
                        weight * value / total
                    } else {
                        0.0
                    }
                })
                .sum()
        })
        .collect();
    let sum: f32 = raw.iter().sum();
    raw.into_iter()
        .map(|value| if sum > 0.0 { value / sum } else { 0.0 })
        .collect()
}

impl Engine {
    /// The platform mix over conversations active at or after `since` (all of them when
    /// unset), as of the corpus's latest activity. Empty without a strategy.
    pub fn platform_mix(&self, since: Option<Millis>) -> PlatformMix {
        let Some(model) = self.model.as_ref() else {
            return PlatformMix::default();
        };
        let now = self.latest_activity().unwrap_or(0);
        let period = match since {
            Some(since) if since < now => ((now - since) / 2).max(DAY_MS),
            _ => DEFAULT_PERIOD_DAYS * DAY_MS,
        };
        let in_window = |key: &RecordKey| {
            since.is_none_or(|since| {
                self.activity
                    .get(key)
                    .and_then(|activity| activity.last_activity_at.or(activity.created_at))
                    .is_some_and(|time| time >= since)
            })
        };

        // Platforms with any conversation in the window, and the source -> platform map the
        // assets are placed by.
        let mut platforms: BTreeSet<PlatformKind> = BTreeSet::new();
        let mut by_source: HashMap<&str, HashMap<PlatformKind, u32>> = HashMap::new();
        for (key, activity) in &self.activity {
            let Some(platform) = activity.platform else {
                continue;
            };
            *by_source
                .entry(key.source.as_str())
                .or_default()
                .entry(platform)
                .or_default() += 1;
            if in_window(key) {
                platforms.insert(platform);
            }
        }
        // Supporting assets, placed on the platform of their source (else by their kind); a
        // platform where they live is part of the mix even before anyone talks there.
        let mut supporting: BTreeSet<RecordKey> = BTreeSet::new();
        for facet in &model.facets {
            if let Some(context) = self.facet_asset_context(&facet.id) {
                supporting.extend(
                    self.rank_assets(&context, false, ASSETS_PER_FACET)
                        .into_iter()
                        .filter(|hit| hit.score >= WEAK)
                        .map(|hit| hit.key),
                );
            }
        }
        let placed: Vec<PlatformKind> = supporting
            .iter()
            .filter_map(|key| {
                by_source
                    .get(key.source.as_str())
                    .and_then(|counts| {
                        counts
                            .iter()
                            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                            .map(|(platform, _)| *platform)
                    })
                    .or_else(|| {
                        self.assets().kind(key).map(|kind| match kind {
                            AssetKind::Bookmark => PlatformKind::Bookmarking,
                            AssetKind::Thread => PlatformKind::QaForum,
                            AssetKind::Article | AssetKind::Doc | AssetKind::Video => {
                                PlatformKind::Blog
                            }
                        })
                    })
            })
            .collect();
        platforms.extend(placed.iter().copied());
        let order: Vec<PlatformKind> = platforms.into_iter().collect();
        let index_of: HashMap<PlatformKind, usize> = order
            .iter()
            .enumerate()
            .map(|(index, platform)| (*platform, index))
            .collect();

        let mut assets = vec![0u32; order.len()];
        for platform in &placed {
            assets[index_of[platform]] += 1;
        }

        let facet_count = model.facets.len();
        let mut strategic = vec![0u32; order.len()];
        let mut per_facet = vec![vec![0u32; facet_count]; order.len()];
        let mut engagement_sum = vec![0.0f32; order.len()];
        let mut recent = vec![0u32; order.len()];
        let mut previous = vec![0u32; order.len()];
        let mut reached: Vec<HashSet<RecordKey>> = vec![HashSet::new(); order.len()];
        let mut unplaced = 0u32;
        let conversations = self.strategic_conversations(
            Some(now),
            &EngagementSettings::default(),
            CONNECTED,
            None,
            usize::MAX,
        );
        let mut total_per_facet = vec![0u32; facet_count];
        let first_start = now - COVERAGE_PERIODS * period;
        let mut coverage: Vec<CoveragePeriod> = (0..COVERAGE_PERIODS)
            .map(|index| CoveragePeriod {
                start: first_start + index * period,
                end: first_start + (index + 1) * period,
                per_facet: model
                    .facets
                    .iter()
                    .map(|facet| (facet.id.clone(), 0))
                    .collect(),
            })
            .collect();
        for conversation in &conversations {
            let best_facet = conversation
                .facets
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.relevance.total_cmp(&b.1.relevance))
                .map(|(facet, _)| facet);
            let created = self
                .activity
                .get(&conversation.key)
                .and_then(|activity| activity.created_at);
            // Periods are (start, end]: the latest one ends with the newest activity.
            if let (Some(facet), Some(created)) = (best_facet, created)
                && created > first_start
                && created <= now
            {
                let index = ((created - first_start - 1) / period) as usize;
                if let Some(period) = coverage.get_mut(index) {
                    period.per_facet[facet].1 += 1;
                }
            }
            if !in_window(&conversation.key) {
                continue;
            }
            let activity = self.activity.get(&conversation.key);
            let Some(index) = activity
                .and_then(|activity| activity.platform)
                .and_then(|platform| index_of.get(&platform).copied())
            else {
                unplaced += 1;
                continue;
            };
            strategic[index] += 1;
            if let Some((facet, _)) = conversation
                .facets
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.relevance.total_cmp(&b.1.relevance))
            {
                per_facet[index][facet] += 1;
                total_per_facet[facet] += 1;
            }
            engagement_sum[index] += conversation.engagement.score;
            if let Some(created) = activity.and_then(|activity| activity.created_at) {
                if created > now - period {
                    recent[index] += 1;
                } else if created > now - 2 * period {
                    previous[index] += 1;
                }
            }
            for (person, _) in self.people.participants_of(&conversation.key) {
                if let Some(canonical) = self.people.canonical(&person) {
                    reached[index].insert(canonical.clone());
                }
            }
        }

        // Who of the people reached converges with the strategy, members and prospects apart.
        let convergence = self.best_convergence(None, now);
        let forgotten = self.forgotten();
        let mut members = vec![0u32; order.len()];
        let mut prospects = vec![0u32; order.len()];
        let mut prospects_anywhere: HashSet<&RecordKey> = HashSet::new();
        for (index, people) in reached.iter().enumerate() {
            for person in people {
                let converges = convergence
                    .get(person)
                    .is_some_and(|(value, _)| *value >= WEAK);
                if !converges || forgotten.contains(person) {
                    continue;
                }
                let member = self
                    .people
                    .summary(person, now)
                    .is_some_and(|summary| summary.member);
                if member {
                    members[index] += 1;
                } else {
                    prospects[index] += 1;
                    prospects_anywhere.insert(person);
                }
            }
        }

        let inputs: Vec<Inputs> = (0..order.len())
            .map(|index| Inputs {
                strategic: strategic[index] as f32,
                reach: (members[index] + prospects[index]) as f32,
                engagement: engagement_sum[index],
                growth: recent[index] as f32,
            })
            .collect();
        let effort = efforts(&inputs);
        let total_strategic: u32 = strategic.iter().sum();
        let period_days = period / DAY_MS;

        let mut stats: Vec<PlatformStats> = order
            .iter()
            .enumerate()
            .map(|(index, platform)| {
                let count = strategic[index];
                let mut facets: Vec<(String, u32, f32)> = model
                    .facets
                    .iter()
                    .zip(&per_facet[index])
                    .filter(|(_, n)| **n > 0)
                    .map(|(facet, n)| (facet.id.clone(), *n, *n as f32 / count.max(1) as f32))
                    .collect();
                facets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let engagement = if count == 0 {
                    0.0
                } else {
                    engagement_sum[index] / count as f32
                };
                let trend =
                    (recent[index] as f32 - previous[index] as f32) / previous[index].max(1) as f32;
                let mut stats = PlatformStats {
                    platform: *platform,
                    strategic_conversations: count,
                    share: if total_strategic == 0 {
                        0.0
                    } else {
                        count as f32 / total_strategic as f32
                    },
                    facets,
                    engagement,
                    members_reached: members[index],
                    prospects_reached: prospects[index],
                    supporting_assets: assets[index],
                    recent: recent[index],
                    previous: previous[index],
                    trend,
                    recommended_effort: effort[index],
                    reasons: Vec::new(),
                };
                stats.reasons = platform_reasons(&stats, model, total_strategic, period_days);
                stats
            })
            .collect();
        stats.sort_by(|a, b| {
            b.recommended_effort
                .total_cmp(&a.recommended_effort)
                .then_with(|| a.platform.cmp(&b.platform))
        });

        let findings = findings(
            &stats,
            model,
            &total_per_facet,
            total_strategic,
            prospects_anywhere.len() as u32,
            unplaced,
        );
        let sensitivities = sensitivities(&stats, &order, &inputs);
        PlatformMix {
            platforms: stats,
            findings,
            sensitivities,
            coverage,
            period_days,
        }
    }
}

/// The first item with the greatest `key`: among equals, the one listed first (the platform
/// with more effort).
fn first_max<T>(items: impl Iterator<Item = T>, key: impl Fn(&T) -> u32) -> Option<T> {
    let mut best: Option<(u32, T)> = None;
    for item in items {
        let value = key(&item);
        if best.as_ref().is_none_or(|(top, _)| value > *top) {
            best = Some((value, item));
        }
    }
    best.map(|(_, item)| item)
}

fn facet_name(model: &super::model::StrategyModel, id: &str) -> String {
    model
        .facets
        .iter()
        .find(|facet| facet.id == id)
        .map_or(id.to_owned(), |facet| facet.name.clone())
}

fn platform_reasons(
    stats: &PlatformStats,
    model: &super::model::StrategyModel,
    total_strategic: u32,
    period_days: i64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if stats.strategic_conversations == 0 {
        reasons.push("carries no strategic conversation yet".to_owned());
    } else {
        let mut sentence = format!(
            "carries {} of the {total_strategic} strategic conversations ({})",
            stats.strategic_conversations,
            percent(stats.share)
        );
        if let Some((facet, _, share)) = stats.facets.first() {
            sentence.push_str(&format!(
                ", {} of them about \"{}\"",
                percent(*share),
                facet_name(model, facet)
            ));
        }
        reasons.push(sentence);
    }
    let reached = stats.members_reached + stats.prospects_reached;
    if reached > 0 {
        reasons.push(format!(
            "reaches {} whose interests meet the strategy: {} and {}",
            plural(reached, "person", "people"),
            plural(stats.members_reached, "member", "members"),
            plural(stats.prospects_reached, "prospect", "prospects")
        ));
    }
    if stats.strategic_conversations > 0 {
        reasons.push(format!(
            "engagement {:.2} per strategic conversation (open, recent, awaiting answers)",
            stats.engagement
        ));
    }
    let direction = match stats.recent.cmp(&stats.previous) {
        std::cmp::Ordering::Greater => "growing",
        std::cmp::Ordering::Less => "shrinking",
        std::cmp::Ordering::Equal => "steady",
    };
    reasons.push(format!(
        "{direction}: {} started in the last {period_days} days against {} in the {period_days} before",
        plural(stats.recent, "strategic conversation", "strategic conversations"),
        stats.previous
    ));
    reasons.push(match stats.supporting_assets {
        0 => "no supporting asset lives here yet".to_owned(),
        count => format!(
            "{} to share here",
            plural(count, "supporting asset", "supporting assets")
        ),
    });
    reasons
}

fn findings(
    stats: &[PlatformStats],
    model: &super::model::StrategyModel,
    total_per_facet: &[u32],
    total_strategic: u32,
    prospects_anywhere: u32,
    unplaced: u32,
) -> Vec<String> {
    let mut findings = Vec::new();
    if total_strategic == 0 {
        findings.push(
            "no conversation on any platform connects to the strategy yet: start with the topics PlanActions suggests"
                .to_owned(),
        );
        return findings;
    }
    if let Some(first) = stats.first() {
        findings.push(format!(
            "{} should get the most effort ({}): it carries {} of the {total_strategic} strategic conversations",
            capitalised(platform_label(first.platform)),
            percent(first.recommended_effort),
            first.strategic_conversations
        ));
    }
    if prospects_anywhere > 0
        && let Some(best) = first_max(stats.iter(), |platform| platform.prospects_reached)
            .filter(|best| best.prospects_reached > 0)
    {
        findings.push(format!(
            "prospects are reached most on {}: {} of the {} people outside the community who take part in strategic conversations",
            platform_label(best.platform),
            best.prospects_reached,
            prospects_anywhere
        ));
    }
    for (index, facet) in model.facets.iter().enumerate() {
        let total = total_per_facet.get(index).copied().unwrap_or(0);
        if total == 0 {
            findings.push(format!(
                "\"{}\" has no strategic conversation on any platform: a topic to start",
                facet.name
            ));
            continue;
        }
        let home = first_max(
            stats.iter().filter_map(|platform| {
                platform
                    .facets
                    .iter()
                    .find(|(id, _, _)| *id == facet.id)
                    .map(|(_, count, _)| (platform.platform, *count))
            }),
            |(_, count)| *count,
        );
        if let Some((platform, count)) = home {
            let how_many = if total == 1 {
                "its only strategic conversation".to_owned()
            } else {
                format!("{count} of its {total} strategic conversations")
            };
            findings.push(format!(
                "\"{}\" is discussed most on {} ({how_many})",
                facet.name,
                platform_label(platform)
            ));
        }
    }
    if unplaced > 0 {
        findings.push(format!(
            "{} without a platform left out of the mix",
            plural(
                unplaced,
                "strategic conversation",
                "strategic conversations"
            )
        ));
    }
    findings
}

/// What would change the recommendation: how many more strategic conversations the runner-up
/// needs to take first place, and how much of the leader's effort rests on reach.
fn sensitivities(
    stats: &[PlatformStats],
    order: &[PlatformKind],
    inputs: &[Inputs],
) -> Vec<String> {
    let mut sensitivities = Vec::new();
    let position = |platform: PlatformKind| order.iter().position(|other| *other == platform);
    if let [first, second, ..] = stats
        && let (Some(first_index), Some(second_index)) =
            (position(first.platform), position(second.platform))
    {
        let bound = inputs
            .iter()
            .map(|input| input.strategic as u32)
            .sum::<u32>()
            .max(10)
            * 10;
        let mut trial = inputs.to_vec();
        let mut needed = None;
        for more in 1..=bound {
            trial[second_index].strategic = inputs[second_index].strategic + more as f32;
            let effort = efforts(&trial);
            if effort[second_index] > effort[first_index] {
                needed = Some(more);
                break;
            }
        }
        sensitivities.push(match needed {
            Some(more) => format!(
                "{} would take first place from {} with {more} more strategic conversation{}",
                capitalised(platform_label(second.platform)),
                platform_label(first.platform),
                if more == 1 { "" } else { "s" }
            ),
            None => format!(
                "{} stays first unless {} also reaches more people or grows",
                capitalised(platform_label(first.platform)),
                platform_label(second.platform)
            ),
        });
    }
    if let Some(first) = stats.first()
        && let Some(first_index) = position(first.platform)
        && inputs[first_index].reach > 0.0
    {
        let mut trial = inputs.to_vec();
        trial[first_index].reach = 0.0;
        let without = efforts(&trial)[first_index];
        sensitivities.push(format!(
            "reach carries part of {}'s effort: without the people it reaches it would fall from {} to {}",
            platform_label(first.platform),
            percent(first.recommended_effort),
            percent(without)
        ));
    }
    if stats.len() == 1 {
        sensitivities.push(
            "only one platform has conversations: connect a source on another platform to compare"
                .to_owned(),
        );
    }
    sensitivities
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(strategic: f32, reach: f32, engagement: f32, growth: f32) -> Inputs {
        Inputs {
            strategic,
            reach,
            engagement,
            growth,
        }
    }

    #[test]
    fn efforts_add_up_to_one_and_follow_every_input() {
        let split = efforts(&[input(10.0, 4.0, 5.0, 2.0), input(5.0, 4.0, 2.0, 2.0)]);
        assert!((split.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(split[0] > split[1]);
        let more_reach = efforts(&[input(10.0, 4.0, 5.0, 2.0), input(5.0, 40.0, 2.0, 2.0)]);
        assert!(more_reach[1] > split[1], "reach moves effort");
        let nothing = efforts(&[input(0.0, 0.0, 0.0, 0.0), input(0.0, 0.0, 0.0, 0.0)]);
        assert_eq!(nothing, vec![0.0, 0.0]);
    }

    #[test]
    fn sentences_are_capitalised_and_counted_in_words() {
        assert_eq!(
            capitalised(platform_label(PlatformKind::QaForum)),
            "The Q&A forum"
        );
        assert_eq!(plural(1, "member", "members"), "1 member");
        assert_eq!(plural(3, "member", "members"), "3 members");
        assert_eq!(percent(0.456), "46%");
    }
}
