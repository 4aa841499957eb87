//! Action plans through the service: per platform, the next concrete things to do for the
//! strategy, each with the facet it serves, why now, and a draft that fits the platform.
//!
//! The engine says where each facet needs work ([`Engine::facet_needs`]) and in which order
//! candidates are worth doing ([`order_actions`]); the candidates come from the rankings the
//! service already has (strategic conversations, prospects, supporting assets). This module
//! fetches the stored records the drafts quote — titles, links, passages, tags — and words
//! them within the platform's limits ([`crate::drafts`]). Nothing in a draft is invented: it is
//! the facet's name, the words that matched it, and stored titles and links.

use std::collections::{HashMap, HashSet};

use super::people::days_ago;
use super::{Trellis, conversation_parts, no_strategy, opening_posts};
use crate::domain::{Asset, Conversation, Millis, PlatformKind, RecordKey, WorkspaceId};
use crate::drafts::{fit_tags, is_link, shorten, with_link};
use crate::engine::plan::{ActionKind, FacetNeed, order_actions};
use crate::engine::{CONNECTED, Engine, WEAK};
use crate::error::CoreResult;
use crate::strategy::Strategy;

/// Strategic conversations considered for joining and pointing to.
const THREAD_POOL: usize = 50;
/// Threads whose supporting asset is looked up for a reply.
const JOIN_POOL: usize = 10;
/// Prospects considered for invitations.
const PROSPECT_POOL: usize = 10;
/// Supporting assets considered per facet.
const ASSETS_PER_FACET: usize = 3;
/// Matched words a draft names.
const DRAFT_WORDS: usize = 3;
/// A discussion started from nothing is a weaker bet than a live thread, a willing prospect or
/// a proven asset: at most this strength, where the facet is thinnest.
const START_STRENGTH: f32 = 0.6;
/// Longest headline quoted for a conversation without a title (its opening words).
const HEADLINE_CHARS: usize = 120;

/// One next action.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    pub kind: ActionKind,
    pub platform: PlatformKind,
    pub facet_id: String,
    /// Ready to post: within the platform's limits, links whole.
    pub draft_text: String,
    /// The conversation it joins, points to or invites to.
    pub conversation: Option<RecordKey>,
    /// The asset it shares or points to.
    pub asset: Option<RecordKey>,
    /// The person to invite.
    pub person: Option<RecordKey>,
    /// Tags for the item, within the platform's count and length.
    pub tags: Vec<String>,
    pub why_now: String,
    /// What the action is worth: the facet's need on the platform times the target's strength.
    pub score: f32,
}

/// Which kinds of action make sense on a kind of platform.
fn allows(platform: PlatformKind, kind: ActionKind) -> bool {
    match kind {
        ActionKind::ShortPost => {
            !matches!(platform, PlatformKind::QaForum | PlatformKind::Bookmarking)
        }
        ActionKind::StartDiscussion | ActionKind::JoinDiscussion | ActionKind::InvitePerson => {
            platform != PlatformKind::Bookmarking
        }
        ActionKind::ShareAsset => platform != PlatformKind::QaForum,
    }
}

/// A platform in prose.
fn platform_words(platform: PlatformKind) -> &'static str {
    match platform {
        PlatformKind::Blog => "the blog",
        PlatformKind::PrivateNetwork => "the private network",
        PlatformKind::PublicNetwork => "the public network",
        PlatformKind::Bookmarking => "bookmarking sites",
        PlatformKind::QaForum => "the Q&A forum",
        PlatformKind::Chat => "chat",
    }
}

/// A strategic conversation with what the drafts quote of it.
struct Thread {
    key: RecordKey,
    conversation: Conversation,
    platform: Option<PlatformKind>,
    facet_id: String,
    priority: f32,
    relevance: f32,
    open: bool,
    unanswered: bool,
    last_activity: Option<Millis>,
    /// Words of the thread that matched its facet, as written, strongest first.
    words: Vec<String>,
}

/// A supporting asset of a facet with what the drafts quote of it.
struct FacetAsset {
    asset: Asset,
    facet_id: String,
    score: f32,
    passage: String,
    words: Vec<String>,
}

/// A candidate before ordering.
struct Candidate {
    action: PlannedAction,
    /// What makes it the same action as another: the kind, the platform and the target.
    identity: (PlatformKind, ActionKind, String),
}

impl Trellis {
    /// The next concrete actions on `platform`, or on every platform the workspace has
    /// conversations on, the most useful first; at most `limit`.
    pub fn plan_actions(
        &self,
        workspace: &WorkspaceId,
        platform: Option<PlatformKind>,
        limit: usize,
    ) -> CoreResult<Vec<PlannedAction>> {
        // Prospects take the engine's lock themselves: asked before this call takes it.
        let prospects = {
            let engine = self.engine(workspace)?;
            let engine = Self::read(&engine)?;
            engine.strategy().ok_or_else(|| no_strategy(workspace))?;
            drop(engine);
            self.find_prospects(workspace, None, false, None, PROSPECT_POOL)?
        };
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (_, strategy) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        let strategy = strategy.clone();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let platforms: Vec<PlatformKind> = match platform {
            Some(platform) => vec![platform],
            None => engine
                .conversation_platforms()
                .into_iter()
                .map(|(platform, _)| platform)
                .collect(),
        };
        let needs: HashMap<(PlatformKind, String), FacetNeed> = engine
            .facet_needs(&platforms)
            .into_iter()
            .flat_map(|(platform, needs)| {
                needs
                    .into_iter()
                    .map(move |need| ((platform, need.facet_id.clone()), need))
            })
            .collect();
        let now = engine.people_clock(None);
        let threads = self.threads(workspace, &engine, &strategy)?;
        let assets = self.facet_assets(workspace, &engine, &strategy)?;
        let writer = Writer {
            strategy: &strategy,
            needs: &needs,
            now,
            top_priority: threads
                .iter()
                .map(|thread| thread.priority)
                .fold(0.0, f32::max),
            top_asset_score: assets.iter().map(|asset| asset.score).fold(0.0, f32::max),
        };

        let mut candidates: Vec<Candidate> = Vec::new();
        for &platform in &platforms {
            // Join: open strategic threads on this platform.
            if allows(platform, ActionKind::JoinDiscussion) {
                for thread in threads
                    .iter()
                    .filter(|thread| thread.open && thread.platform == Some(platform))
                    .take(JOIN_POOL)
                {
                    let asset = self.reply_asset(workspace, &engine, thread)?;
                    let related = threads.iter().find(|other| {
                        other.key != thread.key
                            && other.facet_id == thread.facet_id
                            && !other.conversation.url.is_empty()
                    });
                    candidates.extend(writer.join(platform, thread, asset.as_ref(), related));
                }
            }
            for facet in &strategy.facets {
                let best_thread = threads.iter().find(|thread| {
                    thread.facet_id == facet.id && !thread.conversation.url.is_empty()
                });
                let facet_assets: Vec<&FacetAsset> = assets
                    .iter()
                    .filter(|asset| asset.facet_id == facet.id)
                    .collect();
                if allows(platform, ActionKind::ShortPost) {
                    candidates.extend(writer.short_post(
                        platform,
                        &facet.id,
                        best_thread,
                        facet_assets.first().copied(),
                    ));
                }
                if allows(platform, ActionKind::StartDiscussion) {
                    let any_thread = threads.iter().find(|thread| thread.facet_id == facet.id);
                    candidates.extend(writer.start_discussion(
                        platform,
                        &facet.id,
                        any_thread,
                        best_thread,
                        facet_assets.first().copied(),
                    ));
                }
                if allows(platform, ActionKind::ShareAsset) {
                    for asset in &facet_assets {
                        candidates.extend(writer.share_asset(platform, asset));
                    }
                }
            }
        }
        // Invitations go where the thread they invite to is.
        for prospect in &prospects {
            let Some(conversation) = &prospect.invitation.conversation else {
                continue;
            };
            let Some(platform) = conversation.platform else {
                continue;
            };
            if !platforms.contains(&platform) || !allows(platform, ActionKind::InvitePerson) {
                continue;
            }
            candidates.extend(writer.invite(platform, prospect, conversation));
        }

        // The worthiest of each identical action, then the plan's order.
        candidates.sort_by(|a, b| b.action.score.total_cmp(&a.action.score));
        let mut seen = HashSet::new();
        candidates.retain(|candidate| seen.insert(candidate.identity.clone()));
        let order = order_actions(
            &candidates
                .iter()
                .map(|candidate| {
                    (
                        candidate.action.platform,
                        candidate.action.kind,
                        candidate.action.score,
                    )
                })
                .collect::<Vec<_>>(),
            limit,
        );
        let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|index| slots[index].take().map(|candidate| candidate.action))
            .collect())
    }

    /// The strategic conversations connected to a facet, by priority, with their stored record
    /// and the words that connect them.
    fn threads(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        strategy: &Strategy,
    ) -> CoreResult<Vec<Thread>> {
        let weights: HashMap<&str, f64> = strategy
            .facets
            .iter()
            .map(|facet| (facet.id.as_str(), facet.weight))
            .collect();
        let ranked = engine.strategic_conversations(
            None,
            &self.settings.engagement,
            WEAK,
            None,
            THREAD_POOL,
        );
        let mut threads = Vec::new();
        for item in ranked {
            let Some(serving) = item
                .facets
                .iter()
                .filter(|facet| facet.relevance >= CONNECTED)
                .max_by(|a, b| {
                    let weight_a = weights.get(a.facet_id.as_str()).copied().unwrap_or(1.0);
                    let weight_b = weights.get(b.facet_id.as_str()).copied().unwrap_or(1.0);
                    (f64::from(a.relevance) * weight_a)
                        .total_cmp(&(f64::from(b.relevance) * weight_b))
                })
            else {
                continue;
            };
            let Some(conversation) = self.store.conversation(workspace, &item.key)? else {
                continue;
            };
            let posts = opening_posts(&*self.store, workspace, &item.key)?;
            let parts = engine.analyze(&conversation_parts(&conversation, &posts));
            let words = engine
                .explain(&serving.facet_id, &parts)
                .map(|evidence| evidence_words(&evidence.terms))
                .unwrap_or_default();
            threads.push(Thread {
                platform: conversation.platform,
                facet_id: serving.facet_id.clone(),
                priority: item.priority,
                relevance: serving.relevance,
                open: item.engagement.open,
                unanswered: item.engagement.unanswered,
                last_activity: conversation.last_activity_at.or(conversation.created_at),
                key: item.key,
                conversation,
                words,
            });
        }
        Ok(threads)
    }

    /// The best supporting assets of every facet, with their passage and matched words.
    fn facet_assets(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        strategy: &Strategy,
    ) -> CoreResult<Vec<FacetAsset>> {
        let mut found = Vec::new();
        for facet in &strategy.facets {
            let Some(context) = engine.facet_asset_context(&facet.id) else {
                continue;
            };
            for hit in engine.rank_assets(&context, false, ASSETS_PER_FACET) {
                let Some(asset) = self.store.asset(workspace, &hit.key)? else {
                    continue;
                };
                let explanation = engine.explain_asset(&context, &asset);
                found.push(FacetAsset {
                    words: evidence_words(&explanation.evidence.terms),
                    passage: explanation.passage,
                    facet_id: facet.id.clone(),
                    score: hit.score,
                    asset,
                });
            }
        }
        Ok(found)
    }

    /// The asset that best supports a thread, to point to in a reply; only one with a link.
    fn reply_asset(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        thread: &Thread,
    ) -> CoreResult<Option<Asset>> {
        let posts = self.store.posts_of(workspace, &thread.key)?;
        let replies: Vec<&str> = posts.iter().map(|post| post.text.as_str()).collect();
        let context = engine.conversation_asset_context(&thread.conversation, &replies);
        for hit in engine.rank_assets(&context, false, 3) {
            if let Some(asset) = self.store.asset(workspace, &hit.key)?
                && !asset.url.trim().is_empty()
            {
                return Ok(Some(asset));
            }
        }
        Ok(None)
    }
}

/// Words of evidence as written, without duplicates, strongest first.
fn evidence_words(terms: &[crate::engine::MatchedTerm]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for term in terms {
        let word = term.term.trim().to_lowercase();
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// "a", "a and b", "a, b and c".
fn word_list(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What a conversation is called: its title, or its opening words when it has none.
fn headline(conversation: &Conversation) -> String {
    let title = conversation.title.trim();
    if !title.is_empty() {
        return title.to_owned();
    }
    let opening = conversation
        .body
        .split_whitespace()
        .filter(|word| !is_link(word))
        .collect::<Vec<_>>()
        .join(" ");
    shorten(&opening, HEADLINE_CHARS)
}

fn percent(value: f32) -> String {
    format!("{:.0}%", value * 100.0)
}

/// Words the actions and their reasons.
struct Writer<'a> {
    strategy: &'a Strategy,
    needs: &'a HashMap<(PlatformKind, String), FacetNeed>,
    now: Millis,
    /// The best thread priority and the best asset score: strengths are read against them, so
    /// the best target of every kind has strength 1, as the best prospect has.
    top_priority: f32,
    top_asset_score: f32,
}

impl Writer<'_> {
    fn facet_name(&self, facet_id: &str) -> String {
        self.strategy
            .facet(facet_id)
            .map_or_else(|| facet_id.to_owned(), |facet| facet.name.clone())
    }

    /// The strategist's own words for a facet, when nothing in the corpus matched it yet.
    fn facet_words(&self, facet_id: &str) -> Vec<String> {
        self.strategy
            .facet(facet_id)
            .map(|facet| {
                facet
                    .keywords
                    .iter()
                    .map(|keyword| keyword.trim().to_lowercase())
                    .filter(|keyword| !keyword.is_empty())
                    .take(DRAFT_WORDS)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn need(&self, platform: PlatformKind, facet_id: &str) -> Option<&FacetNeed> {
        self.needs.get(&(platform, facet_id.to_owned()))
    }

    /// Why the facet needs this now on this platform, in one clause.
    fn coverage(&self, platform: PlatformKind, facet_id: &str) -> String {
        let name = self.facet_name(facet_id);
        let where_ = platform_words(platform);
        match self.need(platform, facet_id) {
            Some(need) if need.conversations == 0 => format!(
                "no strategic conversation on {where_} is mainly about \"{name}\" yet, though its weight asks for {} of them",
                percent(need.fair_share)
            ),
            Some(need) if need.thinness > 0.0 => format!(
                "\"{name}\" carries {} of the strategic conversation on {where_} against the {} its weight asks for",
                percent(need.share),
                percent(need.fair_share)
            ),
            Some(need) => format!(
                "\"{name}\" holds its share of the strategic conversation on {where_} ({} for a fair {})",
                percent(need.share),
                percent(need.fair_share)
            ),
            None => format!("\"{name}\" is part of the strategy"),
        }
    }

    fn freshness(&self, thread: &Thread) -> String {
        let mut parts = Vec::new();
        parts.push(if thread.open { "open" } else { "closed" }.to_owned());
        if thread.open && thread.unanswered {
            parts.push("nobody but its author has replied yet".to_owned());
        }
        if let Some(last) = thread.last_activity {
            parts.push(format!("last active {}", days_ago(self.now, last)));
        }
        parts.join(", ")
    }

    fn words_for(&self, facet_id: &str, words: &[String]) -> Vec<String> {
        if words.is_empty() {
            self.facet_words(facet_id)
        } else {
            words.iter().take(DRAFT_WORDS).cloned().collect()
        }
    }

    fn worth(&self, platform: PlatformKind, facet_id: &str, strength: f32) -> f32 {
        self.need(platform, facet_id).map_or(0.0, |need| need.need) * strength.clamp(0.0, 1.0)
    }

    fn join(
        &self,
        platform: PlatformKind,
        thread: &Thread,
        asset: Option<&Asset>,
        related: Option<&Thread>,
    ) -> Option<Candidate> {
        let limits = platform.limits();
        let words = self.words_for(&thread.facet_id, &thread.words);
        let topic = word_list(&words);
        let draft_text = match (asset, related) {
            (Some(asset), _) => with_link(
                &format!("On {topic}: \"{}\" may help.", asset.title.trim()),
                &asset.url,
                limits.short_post_chars,
            ),
            (None, Some(related)) => with_link(
                &format!(
                    "On {topic}, see also \"{}\"",
                    headline(&related.conversation)
                ),
                &related.conversation.url,
                limits.short_post_chars,
            ),
            (None, None) => shorten(
                &format!("What have you tried so far with {topic}?"),
                limits.short_post_chars,
            ),
        };
        let why_now = format!(
            "\"{}\" on {} is {} and connects to \"{}\" (relevance {:.2}); {}",
            headline(&thread.conversation),
            platform_words(platform),
            self.freshness(thread),
            self.facet_name(&thread.facet_id),
            thread.relevance,
            self.coverage(platform, &thread.facet_id)
        );
        Some(Candidate {
            identity: (platform, ActionKind::JoinDiscussion, thread.key.to_string()),
            action: PlannedAction {
                kind: ActionKind::JoinDiscussion,
                platform,
                facet_id: thread.facet_id.clone(),
                draft_text,
                conversation: Some(thread.key.clone()),
                asset: asset.map(|asset| asset.key.clone()),
                person: None,
                tags: Vec::new(),
                why_now,
                score: self.worth(
                    platform,
                    &thread.facet_id,
                    relative(thread.priority, self.top_priority),
                ),
            },
        })
    }

    fn short_post(
        &self,
        platform: PlatformKind,
        facet_id: &str,
        thread: Option<&Thread>,
        asset: Option<&FacetAsset>,
    ) -> Option<Candidate> {
        let limits = platform.limits();
        let name = self.facet_name(facet_id);
        let (words, title, url, strength, target, conversation, asset_key) = match (thread, asset) {
            (Some(thread), _) => (
                &thread.words,
                headline(&thread.conversation),
                thread.conversation.url.as_str(),
                relative(thread.priority, self.top_priority),
                format!(
                    "\"{}\" on {} is {}",
                    headline(&thread.conversation),
                    thread.platform.map_or("its platform", platform_words),
                    self.freshness(thread)
                ),
                Some(thread.key.clone()),
                None,
            ),
            (None, Some(asset)) if !asset.asset.url.trim().is_empty() => (
                &asset.words,
                asset.asset.title.trim().to_owned(),
                asset.asset.url.as_str(),
                relative(asset.score, self.top_asset_score),
                format!(
                    "no thread with a link speaks to it yet, but \"{}\" does",
                    asset.asset.title.trim()
                ),
                None,
                Some(asset.asset.key.clone()),
            ),
            _ => return None,
        };
        let words = self.words_for(facet_id, words);
        let tags = fit_tags(words.iter().map(String::as_str), &limits);
        let text = if words.is_empty() {
            format!("{name}: \"{title}\"")
        } else {
            format!("{name} — {}: \"{title}\"", word_list(&words))
        };
        let draft_text = with_link(
            &text,
            url,
            limits.short_post_chars.saturating_sub(tag_room(&tags)),
        );
        Some(Candidate {
            identity: (platform, ActionKind::ShortPost, url.to_owned()),
            action: PlannedAction {
                kind: ActionKind::ShortPost,
                platform,
                facet_id: facet_id.to_owned(),
                draft_text,
                conversation,
                asset: asset_key,
                person: None,
                tags,
                why_now: format!("{}; {target}", self.coverage(platform, facet_id)),
                score: self.worth(platform, facet_id, strength),
            },
        })
    }

    fn start_discussion(
        &self,
        platform: PlatformKind,
        facet_id: &str,
        any_thread: Option<&Thread>,
        linked_thread: Option<&Thread>,
        asset: Option<&FacetAsset>,
    ) -> Option<Candidate> {
        let need = self.need(platform, facet_id)?;
        if need.thinness <= 0.0 {
            return None;
        }
        let limits = platform.limits();
        let name = self.facet_name(facet_id);
        let words = self.words_for(
            facet_id,
            any_thread.map_or(&[][..], |thread| thread.words.as_slice()),
        );
        let question = if words.is_empty() {
            format!("What is your experience with {name}?")
        } else {
            format!("What is your experience with {}?", word_list(&words))
        };
        // A related thread elsewhere, or else the facet's best asset, gives the opening a link.
        let related = linked_thread
            .filter(|thread| thread.platform != Some(platform))
            .map(|thread| {
                (
                    headline(&thread.conversation),
                    thread.conversation.url.clone(),
                )
            })
            .or_else(|| {
                asset
                    .filter(|asset| !asset.asset.url.trim().is_empty())
                    .map(|asset| (asset.asset.title.trim().to_owned(), asset.asset.url.clone()))
            });
        let body_text = match &related {
            Some((title, _)) => format!("{question} Related: \"{title}\""),
            None => question,
        };
        let link = related.as_ref().map_or("", |(_, url)| url.as_str());
        let tags = fit_tags(words.iter().map(String::as_str), &limits);
        let budget = limits.short_post_chars.saturating_sub(tag_room(&tags));
        let draft_text = if limits.title_chars > 0 {
            let title_text = match words.as_slice() {
                [] => name.clone(),
                [one] => format!("{name}: {one}"),
                [one, two, ..] => format!("{name}: {one} and {two}"),
            };
            let title = shorten(&title_text, limits.title_chars.min(budget / 2));
            let body = with_link(
                &body_text,
                link,
                budget.saturating_sub(title.chars().count() + 2),
            );
            format!("{title}\n\n{body}")
        } else {
            with_link(&body_text, link, budget)
        };
        Some(Candidate {
            identity: (platform, ActionKind::StartDiscussion, facet_id.to_owned()),
            action: PlannedAction {
                kind: ActionKind::StartDiscussion,
                platform,
                facet_id: facet_id.to_owned(),
                draft_text,
                conversation: None,
                asset: None,
                person: None,
                tags,
                why_now: format!(
                    "{}: a discussion started there fills the gap",
                    self.coverage(platform, facet_id)
                ),
                score: self.worth(platform, facet_id, START_STRENGTH * need.thinness),
            },
        })
    }

    fn share_asset(&self, platform: PlatformKind, asset: &FacetAsset) -> Option<Candidate> {
        if asset.asset.url.trim().is_empty() {
            return None;
        }
        let limits = platform.limits();
        let words = self.words_for(&asset.facet_id, &asset.words);
        let tags = fit_tags(
            asset
                .asset
                .tags
                .iter()
                .map(String::as_str)
                .chain(words.iter().map(String::as_str)),
            &limits,
        );
        let title = asset.asset.title.trim();
        let passage = asset.passage.trim();
        let text = if passage.is_empty() || passage == title {
            format!("\"{title}\"")
        } else {
            format!("\"{title}\": {passage}")
        };
        let draft_text = with_link(
            &text,
            &asset.asset.url,
            limits.short_post_chars.saturating_sub(tag_room(&tags)),
        );
        let mut popularity = Vec::new();
        if asset.asset.own {
            popularity.push("it is the organisation's own".to_owned());
        }
        match asset.asset.bookmark_count {
            0 => {}
            1 => popularity.push("bookmarked once".to_owned()),
            count => popularity.push(format!("bookmarked {count} times")),
        }
        match asset.asset.share_count {
            0 => {}
            1 => popularity.push("shared once".to_owned()),
            count => popularity.push(format!("shared {count} times")),
        }
        let speaks = if words.is_empty() {
            format!("\"{title}\" speaks to it")
        } else {
            format!("\"{title}\" speaks to it with {}", word_list(&words))
        };
        let why_now = if popularity.is_empty() {
            format!("{}; {speaks}", self.coverage(platform, &asset.facet_id))
        } else {
            format!(
                "{}; {speaks} ({})",
                self.coverage(platform, &asset.facet_id),
                popularity.join(", ")
            )
        };
        Some(Candidate {
            identity: (
                platform,
                ActionKind::ShareAsset,
                asset.asset.key.to_string(),
            ),
            action: PlannedAction {
                kind: ActionKind::ShareAsset,
                platform,
                facet_id: asset.facet_id.clone(),
                draft_text,
                conversation: None,
                asset: Some(asset.asset.key.clone()),
                person: None,
                tags,
                why_now,
                score: self.worth(
                    platform,
                    &asset.facet_id,
                    relative(asset.score, self.top_asset_score),
                ),
            },
        })
    }

    fn invite(
        &self,
        platform: PlatformKind,
        prospect: &super::Prospect,
        conversation: &Conversation,
    ) -> Option<Candidate> {
        let limits = platform.limits();
        let draft = prospect.invitation.draft_message.trim();
        // The prospect's draft ends with the thread's link: keep it whole.
        let draft_text = match draft.rsplit_once(' ') {
            Some((text, link)) if is_link(link) => with_link(text, link, limits.short_post_chars),
            _ => shorten(draft, limits.short_post_chars),
        };
        if draft_text.is_empty() {
            return None;
        }
        let reason = prospect
            .reasons
            .first()
            .cloned()
            .unwrap_or_else(|| "their interests meet the strategy".to_owned());
        let activity = match conversation.last_activity_at.or(conversation.created_at) {
            Some(last) => format!(", last active {}", days_ago(self.now, last)),
            None => String::new(),
        };
        let why_now = format!(
            "{reason}; \"{}\" on {} is open{activity}; {}",
            headline(conversation),
            platform_words(platform),
            self.coverage(platform, &prospect.facet_id)
        );
        Some(Candidate {
            identity: (platform, ActionKind::InvitePerson, prospect.key.to_string()),
            action: PlannedAction {
                kind: ActionKind::InvitePerson,
                platform,
                facet_id: prospect.facet_id.clone(),
                draft_text,
                conversation: Some(conversation.key.clone()),
                asset: prospect
                    .invitation
                    .asset
                    .as_ref()
                    .map(|asset| asset.key.clone()),
                person: Some(prospect.key.clone()),
                tags: Vec::new(),
                why_now,
                score: self.worth(platform, &prospect.facet_id, prospect.score),
            },
        })
    }
}

/// `value` against the best of its kind, in [0, 1].
fn relative(value: f32, top: f32) -> f32 {
    if top > 0.0 {
        (value / top).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Characters tags take when written into a post as hashtags: "#tag" and a space each.
fn tag_room(tags: &[String]) -> usize {
    tags.iter().map(|tag| tag.chars().count() + 2).sum()
}
