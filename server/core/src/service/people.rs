//! The people side of the service: who to bring into a conversation, what a person should
//! join or start, and where their interests meet the strategy. The engine ranks; this module
//! fetches the stored text the evidence quotes and words the reasons.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::{Trellis, conversation_parts, opening_posts};
use crate::domain::{Conversation, Millis, Person, Post, RecordKey, WorkspaceId};
use crate::engine::insights::{InsightParts, InsightProgress};
use crate::engine::people::Role;
use crate::engine::{
    DiscussionSuggestion, Engine, Evidence, Explainer, FacetConvergence, TextPart,
};
use crate::error::{CoreError, CoreResult};

const DAY_MS: f64 = 86_400_000.0;
/// People whose suggestion carries quoted evidence; the rest carry their reasons only.
const EVIDENCE_FOR: usize = 10;
/// How much of a person's writing (their most recent posts, per record) is read to quote their
/// evidence. Quoting analyzes every word read, and a suggestion quotes up to ten people: what
/// they wrote lately is both what shows their interests now and what keeps answers quick.
const WRITING_READ: usize = 50;
/// A person's interests shown.
const INTERESTS_SHOWN: usize = 10;
/// A person's distinctive words considered when naming what joins them to a thread.
const INTERESTS_JOINED: usize = 300;
/// Words named as what joins a person to a thread.
const JOINING_WORDS: usize = 3;
/// Words considered for it, best first.
const JOINING_CANDIDATES: usize = 6;

/// What to find participants for: a stored conversation, or a text not stored yet.
#[derive(Debug, Clone, PartialEq)]
pub enum ParticipantTarget {
    Conversation(RecordKey),
    Text { title: String, body: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantSuggestion {
    pub key: RecordKey,
    /// The stored person record, when one was ingested.
    pub person: Option<Person>,
    pub member: bool,
    pub score: f32,
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SuggestedDiscussion {
    pub conversation: RecordKey,
    pub title: String,
    pub url: String,
    /// The chance that the person takes part when `calibrated`, else the discussion model's
    /// relative score (higher is better, comparable only within one answer).
    pub score: f32,
    pub calibrated: bool,
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicSuggestion {
    pub facet_id: String,
    pub suggested_title: String,
    pub interest: f32,
    pub coverage: f32,
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// Everything known of a person that matters to the strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonInsight {
    pub key: RecordKey,
    pub person: Option<Person>,
    pub member: bool,
    pub convergence: Vec<(FacetConvergence, Vec<Evidence>)>,
    /// (word, weight in [0, 1]), strongest first.
    pub interests: Vec<(String, f32)>,
    pub last_active: Option<Millis>,
    pub contributions: u32,
    /// The records merged into this person, their own first.
    pub records: Vec<RecordKey>,
}

pub(super) fn days_ago(now: Millis, then: Millis) -> String {
    let days = ((now - then) as f64 / DAY_MS).max(0.0).round() as i64;
    match days {
        0 => "today".to_owned(),
        1 => "yesterday".to_owned(),
        days => format!("{days} days ago"),
    }
}

pub(super) fn quote_list(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("\"{word}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names what joins the person to each suggested discussion (in rank order), from each one's
/// candidate words (best first): up to [`JOINING_WORDS`] of them, a word already named for a
/// discussion ranked higher giving way to the next, so that one word the person is known for
/// does not explain every suggestion. No set of words is named for more than a fifth of the
/// suggestions (at least once); a discussion that only such a set would explain is explained by
/// its other reasons.
fn name_what_joins(found: Vec<(SuggestedDiscussion, Vec<String>)>) -> Vec<SuggestedDiscussion> {
    let allowed = (found.len() / 5).max(1);
    let mut named: HashMap<String, usize> = HashMap::new();
    let mut sets: HashMap<Vec<String>, usize> = HashMap::new();
    found
        .into_iter()
        .map(|(mut suggestion, candidates)| {
            // Stable: among words named equally often, the better candidate first.
            let mut ranked: Vec<&String> = candidates.iter().collect();
            ranked.sort_by_key(|word| named.get(*word).copied().unwrap_or(0));
            let choices = (0..ranked.len()).flat_map(|skip| {
                let ranked = &ranked;
                (1..=JOINING_WORDS.min(ranked.len() - skip))
                    .rev()
                    .map(move |take| ranked[skip..skip + take].to_vec())
            });
            let mut chosen: Option<Vec<String>> = None;
            for choice in choices {
                let mut key: Vec<String> = choice.iter().map(|word| (*word).clone()).collect();
                key.sort();
                if sets.get(&key).copied().unwrap_or(0) < allowed {
                    chosen = Some(choice.into_iter().cloned().collect());
                    *sets.entry(key).or_default() += 1;
                    break;
                }
            }
            if let Some(words) = chosen {
                for word in &words {
                    *named.entry(word.clone()).or_default() += 1;
                }
                suggestion.reasons.insert(
                    0,
                    format!(
                        "about what sets their writing apart: {}",
                        quote_list(&words)
                    ),
                );
            }
            suggestion
        })
        .collect()
}

/// A person whose suggestions are being worded, with their distinctive words (stem to G²).
struct Joined<'a> {
    person: &'a RecordKey,
    interests: &'a foldhash::HashMap<String, f32>,
}

/// The distinctive words of a person's analyzed writing, by stem (see
/// `Engine::distinctive_terms`); phrases are left out, as a thread is joined by its words.
fn distinctive_map(
    engine: &Engine,
    writing: &[crate::engine::AnalyzedPart<'_>],
) -> foldhash::HashMap<String, f32> {
    engine
        .distinctive_words(writing, INTERESTS_JOINED)
        .into_iter()
        .map(|term| (term.stem, term.score))
        .collect()
}

/// The texts of what a person wrote, as parts to explain.
pub(super) fn writing_parts<'a>(
    conversations: &'a [Conversation],
    posts: &'a [Post],
) -> Vec<TextPart<'a>> {
    let mut parts = Vec::with_capacity(conversations.len() * 2 + posts.len());
    for conversation in conversations {
        parts.push(TextPart {
            location: &conversation.key.external_id,
            text: &conversation.title,
        });
        parts.push(TextPart {
            location: &conversation.key.external_id,
            text: &conversation.body,
        });
    }
    parts.extend(posts.iter().map(|post| TextPart {
        location: &post.key.external_id,
        text: &post.text,
    }));
    parts
}

impl Trellis {
    /// Keeps every workspace's standing index ahead of `SuggestDiscussions`: judges, for at
    /// most about `budget` per workspace, the open conversations that were never judged, have
    /// changed, or were judged long ago (see `engine::standing`). Each workspace's engine is read
    /// meanwhile, so writes wait for at most one budget; nothing is judged until records have
    /// stopped arriving for `settle` (see `Engine::refresh_standing`). Returns the progress over all
    /// workspaces; `judged == 0` means there was nothing to do, so a worker can rest.
    pub fn refresh_standing(
        &self,
        budget: std::time::Duration,
        settle: std::time::Duration,
    ) -> CoreResult<crate::engine::standing::StandingProgress> {
        let mut progress = crate::engine::standing::StandingProgress::default();
        for (_, engine) in self.loaded_engines()? {
            progress.add(Self::read(&engine)?.refresh_standing(budget, settle));
        }
        Ok(progress)
    }

    /// Where each workspace's standing index is: open conversations judged and waiting.
    pub fn standing_status(
        &self,
    ) -> CoreResult<Vec<(WorkspaceId, crate::engine::standing::StandingProgress)>> {
        self.each_engine(Engine::standing_progress)
    }

    /// `read` of every loaded workspace's engine, by workspace.
    fn each_engine<T>(&self, read: impl Fn(&Engine) -> T) -> CoreResult<Vec<(WorkspaceId, T)>> {
        self.loaded_engines()?
            .into_iter()
            .map(|(workspace, engine)| Ok((workspace, read(&*Self::read(&engine)?))))
            .collect()
    }

    /// What a person wrote under every record merged into them, newest first per record.
    pub(super) fn writing_of_all(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
    ) -> CoreResult<(Vec<Conversation>, Vec<Post>)> {
        let mut conversations = Vec::new();
        let mut posts = Vec::new();
        for record in engine.people().records_of(person) {
            let (more_conversations, more_posts) =
                self.store.writing_of(workspace, &record, WRITING_READ)?;
            conversations.extend(more_conversations);
            posts.extend(more_posts);
        }
        Ok((conversations, posts))
    }

    /// The person a key names: the key itself, or the person it was merged into.
    fn resolve_person(&self, engine: &Engine, key: &RecordKey) -> CoreResult<RecordKey> {
        engine
            .people()
            .canonical(key)
            .cloned()
            .ok_or_else(|| CoreError::NotFound {
                kind: "person",
                id: key.to_string(),
            })
    }

    /// Who should be brought into a conversation: members first, then people outside the
    /// community, each group best first, with reasons and quoted evidence.
    pub fn suggest_participants(
        &self,
        workspace: &WorkspaceId,
        target: &ParticipantTarget,
        as_of: Option<Millis>,
        limit: usize,
    ) -> CoreResult<Vec<ParticipantSuggestion>> {
        // A free text is embedded before any lock is taken; a stored conversation has its vector.
        let vector = match target {
            ParticipantTarget::Text { title, body } => self.embed_text(title, body),
            ParticipantTarget::Conversation(_) => None,
        };
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (title, body, key) = match target {
            ParticipantTarget::Conversation(key) => {
                let conversation = self.store.conversation(workspace, key)?.ok_or_else(|| {
                    CoreError::NotFound {
                        kind: "conversation",
                        id: key.to_string(),
                    }
                })?;
                let posts = self.store.posts_of(workspace, key)?;
                let mut body = conversation.body.clone();
                for post in &posts {
                    body.push('\n');
                    body.push_str(&post.text);
                }
                (conversation.title, body, Some(key))
            }
            ParticipantTarget::Text { title, body } => (title.clone(), body.clone(), None),
        };
        let bag = engine.text_bag(&title, &body);
        let now = engine.people_clock(as_of);
        let mut matches = engine.suggest_participants(&bag, vector.as_deref(), key, as_of, limit);
        // Members first; the sort is stable, so each group keeps its order.
        matches.sort_by_key(|found| !found.member);
        let question_terms = engine.text_terms(&title, &body);
        let question = [
            TextPart {
                location: "title",
                text: &title,
            },
            TextPart {
                location: "body",
                text: &body,
            },
        ];
        let question = engine.analyze(&question);
        let common = engine.common_words();
        let mut titles: HashMap<RecordKey, String> = HashMap::new();
        let mut suggestions = Vec::with_capacity(matches.len());
        for (rank, found) in matches.into_iter().enumerate() {
            let mut reasons = Vec::new();
            if !found.similar.is_empty() {
                let mut examples = Vec::new();
                for (conversation, _, role) in found.similar.iter().take(2) {
                    let title = match titles.get(conversation) {
                        Some(title) => title.clone(),
                        None => {
                            let title = self
                                .store
                                .conversation(workspace, conversation)?
                                .map(|stored| stored.title)
                                .unwrap_or_default();
                            titles.insert(conversation.clone(), title.clone());
                            title
                        }
                    };
                    let how = match role {
                        Role::Opened => "started",
                        Role::Replied => "replied in",
                        Role::Commented => "commented in",
                        Role::Accepted => "took up a suggestion to join",
                    };
                    if title.is_empty() {
                        examples.push(format!("{how} {conversation}"));
                    } else {
                        examples.push(format!("{how} \"{title}\""));
                    }
                }
                reasons.push(format!(
                    "took part in {} of the conversations most like this one: {}",
                    found.similar.len(),
                    examples.join("; ")
                ));
            }
            // The people quoted have their writing read: what joins them to the question is
            // named from what sets their writing apart; the rest by the question's words that
            // weigh most in their profile, the community's common words left out.
            let writing = if rank < EVIDENCE_FOR {
                Some(self.writing_of_all(workspace, &engine, &found.person)?)
            } else {
                None
            };
            let parts = writing
                .as_ref()
                .map(|(conversations, posts)| engine.analyze(&writing_parts(conversations, posts)));
            let words = match &parts {
                Some(parts) => {
                    engine.joining_words(&distinctive_map(&engine, parts), &question, JOINING_WORDS)
                }
                None => found
                    .matched_terms
                    .iter()
                    .filter(|stem| !common.contains(stem))
                    .map(|stem| engine.surface(stem).to_owned())
                    .filter(|word| crate::text::is_displayable_word(word))
                    .take(JOINING_WORDS)
                    .collect(),
            };
            if !words.is_empty() {
                reasons.push(format!("writes about {}", quote_list(&words)));
            }
            if let Some(last) = found.last_active {
                reasons.push(format!(
                    "{} {}, the latest {}",
                    found.contributions,
                    if found.contributions == 1 {
                        "contribution"
                    } else {
                        "contributions"
                    },
                    days_ago(now, last)
                ));
            }
            reasons.push(if found.member {
                "a member of the community".to_owned()
            } else {
                "not a member yet: an invitation would bring them in".to_owned()
            });
            let evidence = match &parts {
                Some(parts) => {
                    let evidence = engine.explain_terms("", &question_terms, parts);
                    if evidence.sentence.is_empty() {
                        Vec::new()
                    } else {
                        vec![evidence]
                    }
                }
                None => Vec::new(),
            };
            suggestions.push(ParticipantSuggestion {
                person: self.store.person(workspace, &found.person)?,
                key: found.person,
                member: found.member,
                score: found.score,
                reasons,
                evidence,
            });
        }
        Ok(suggestions)
    }

    /// Discussions a person should join, and topics they could start.
    pub fn suggest_discussions(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
        as_of: Option<Millis>,
        limit: usize,
    ) -> CoreResult<(Vec<SuggestedDiscussion>, Vec<TopicSuggestion>)> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let person = &self.resolve_person(&engine, person)?;
        let now = engine.people_clock(as_of);
        let engine = &*engine;
        // Both read stored text and analyze it: side by side, a request takes the longer of
        // the two instead of their sum.
        // Their writing is read and analyzed once: it names what joins them to each thread
        // and quotes the evidence of the topics they could start.
        let writing = self.writing_of_all(workspace, engine, person)?;
        let parts = engine.analyze(&writing_parts(&writing.0, &writing.1));
        let parts = &parts[..];
        let (join, start) = rayon::join(
            || self.discussions_to_join(workspace, engine, person, parts, as_of, limit),
            || self.topics_to_start(engine, person, parts, now),
        );
        Ok((join?, start?))
    }

    /// Open conversations a person should join, with their reasons and evidence.
    fn discussions_to_join(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
        writing: &[crate::engine::AnalyzedPart<'_>],
        as_of: Option<Millis>,
        limit: usize,
    ) -> CoreResult<Vec<SuggestedDiscussion>> {
        let found = engine.suggest_discussions(person, as_of, limit);
        let interests = distinctive_map(engine, writing);
        let joined = Joined {
            person,
            interests: &interests,
        };
        let profile = engine.profile_query(person);
        // Queries are made ready once for every thread they explain.
        let personal = engine.terms_explainer("", &profile);
        let mut facets: HashMap<&str, Explainer<'_>> = HashMap::new();
        for facet_id in found.iter().filter_map(|found| found.facet_id.as_deref()) {
            if !facets.contains_key(facet_id)
                && let Some(explainer) = engine.facet_explainer(facet_id)
            {
                facets.insert(facet_id, explainer);
            }
        }
        // Each suggestion's evidence reads its thread from the store and analyzes its text:
        // most of a request's work, done for the suggestions side by side.
        let suggested = found
            .par_iter()
            .map(|found| {
                self.suggested_discussion(workspace, engine, &joined, &personal, &facets, found)
            })
            .collect::<CoreResult<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        Ok(name_what_joins(suggested))
    }

    /// A suggested discussion with its reasons and evidence, and the words that could join the
    /// person to it (best first; see `name_what_joins`); `None` when its thread is no longer
    /// stored.
    fn suggested_discussion(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        joined: &Joined<'_>,
        personal: &Explainer<'_>,
        facets: &HashMap<&str, Explainer<'_>>,
        found: &DiscussionSuggestion,
    ) -> CoreResult<Option<(SuggestedDiscussion, Vec<String>)>> {
        let Some(conversation) = self.store.conversation(workspace, &found.conversation)? else {
            return Ok(None);
        };
        let posts = opening_posts(&*self.store, workspace, &found.conversation)?;
        let parts = engine.analyze(&conversation_parts(&conversation, &posts));
        let mut reasons = Vec::new();
        let words = engine.joining_words(joined.interests, &parts, JOINING_CANDIDATES);
        if let Some(reason) =
            self.closest_of_their_own(workspace, engine, joined.person, &found.conversation)?
        {
            reasons.push(reason);
        }
        let mut evidence = Vec::new();
        if let Some(facet_id) = &found.facet_id {
            let model = engine.model();
            let name = model
                .as_ref()
                .and_then(|model| model.facets.iter().find(|facet| &facet.id == facet_id))
                .map_or(facet_id.as_str(), |facet| facet.name.as_str());
            reasons.push(format!(
                "serves the strategy's \"{name}\" (strategic relevance {:.2})",
                found.strategic
            ));
            evidence.extend(
                facets
                    .get(facet_id.as_str())
                    .map(|explainer| explainer.explain(&parts)),
            );
        }
        if found.open && found.unanswered {
            reasons.push("open and still unanswered".to_owned());
        } else if found.open {
            reasons.push("open".to_owned());
        }
        let personal = personal.explain(&parts);
        if !personal.sentence.is_empty() {
            evidence.insert(0, personal);
        }
        Ok(Some((
            SuggestedDiscussion {
                conversation: found.conversation.clone(),
                title: conversation.title,
                url: conversation.url,
                score: found.probability.unwrap_or(found.score),
                calibrated: found.probability.is_some(),
                reasons,
                evidence,
            },
            words,
        )))
    }

    /// "closest to their own ...": the conversation of `person`'s own that is closest to
    /// `target`, with its title and what they did there; `None` when they have none.
    fn closest_of_their_own(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
        target: &RecordKey,
    ) -> CoreResult<Option<String>> {
        let Some(closest) = engine.closest_conversation_of(person, target) else {
            return Ok(None);
        };
        let Some(conversation) = self.store.conversation(workspace, &closest)? else {
            return Ok(None);
        };
        let title = conversation.title.trim();
        if title.is_empty() {
            return Ok(None);
        }
        let opened = engine.people().records_of(person).iter().any(|record| {
            record.source == conversation.key.source
                && conversation.author.as_deref() == Some(record.external_id.as_str())
        });
        let how = if opened { "started" } else { "took part in" };
        Ok(Some(format!("close to \"{title}\", which they {how}")))
    }

    /// Facets where a person's interest is high and the community's conversation is thin.
    fn topics_to_start(
        &self,
        engine: &Engine,
        person: &RecordKey,
        parts: &[crate::engine::AnalyzedPart<'_>],
        now: Millis,
    ) -> CoreResult<Vec<TopicSuggestion>> {
        let Some(model) = engine.model() else {
            return Ok(Vec::new());
        };
        let convergence = engine.convergence(person, Some(now));
        let shares = engine.facet_shares();
        // "Thin": the facet carries less of the strategic conversation than its weight asks.
        let chosen: Vec<_> = model
            .facets
            .iter()
            .zip(&convergence)
            .zip(&shares)
            .filter(|((_, converged), share)| {
                converged.convergence >= crate::engine::CONNECTED && share.share < share.fair_share
            })
            .collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let mut topics = Vec::new();
        for ((facet, converged), share) in chosen {
            let words: Vec<String> = converged
                .matched_terms
                .iter()
                .filter(|stem| !stem.contains(crate::engine::index::PAIR_JOINER))
                .take(2)
                .map(|stem| engine.surface(stem).to_owned())
                .collect();
            let suggested_title = if words.is_empty() {
                facet.name.clone()
            } else {
                format!("{}: {}", facet.name, crate::text::join_words(&words))
            };
            let evidence: Vec<Evidence> = engine
                .explain(&facet.id, parts)
                .filter(|evidence| !evidence.sentence.is_empty())
                .into_iter()
                .collect();
            topics.push(TopicSuggestion {
                facet_id: facet.id.clone(),
                suggested_title,
                interest: converged.convergence,
                coverage: share.share,
                reasons: vec![
                    format!(
                        "their interest in \"{}\" is high ({:.2})",
                        facet.name, converged.convergence
                    ),
                    format!(
                        "it carries {:.0}% of the strategic conversation against a {:.0}% share of the strategy's weight",
                        share.share * 100.0,
                        share.fair_share * 100.0
                    ),
                ],
                evidence,
            });
        }
        topics.sort_by(|a, b| {
            (b.interest * (1.0 - b.coverage))
                .total_cmp(&(a.interest * (1.0 - a.coverage)))
                .then_with(|| a.facet_id.cmp(&b.facet_id))
        });
        Ok(topics)
    }

    /// Where a person's interests meet the strategy, with the evidence of their own writing.
    /// Of the present (`as_of` `None`), from the insight index when it holds one.
    pub fn person_insight(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
        as_of: Option<Millis>,
    ) -> CoreResult<PersonInsight> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let person = &self.resolve_person(&engine, person)?;
        let parts = match as_of {
            None => self.present_insight(workspace, &engine, person, None)?,
            Some(_) => {
                let writing = self.writing_of_all(workspace, &engine, person)?;
                let analyzed = engine.analyze(&writing_parts(&writing.0, &writing.1));
                Arc::new(Self::insight_parts(&engine, person, &analyzed, as_of))
            }
        };
        self.insight_of(workspace, &engine, person, &parts, as_of)
    }

    /// Makes the insight of every person of every workspace who has none a request may use
    /// (see `engine::insights`), for at most about `budget` per workspace, once records have
    /// stopped arriving there for `settle`; each workspace's engine is read meanwhile, so
    /// writes wait for at most one budget. `made == 0` means there was nothing to do.
    pub fn refresh_insights(
        &self,
        budget: std::time::Duration,
        settle: std::time::Duration,
    ) -> CoreResult<InsightProgress> {
        /// People made side by side at a time, between looks at the clock.
        const BATCH: usize = 64;
        let mut progress = InsightProgress::default();
        for (workspace, engine) in self.loaded_engines()? {
            let engine = Self::read(&engine)?;
            let started = std::time::Instant::now();
            while started.elapsed() < budget {
                let due = engine.insights_due(BATCH, settle);
                if due.is_empty() {
                    break;
                }
                // Made again even when the kept one may still be used: those grown old are due.
                let made: CoreResult<Vec<()>> = due
                    .par_iter()
                    .map(|person| {
                        self.make_insight(&workspace, &engine, person, None)
                            .map(|_| ())
                    })
                    .collect();
                progress.made += made?.len();
            }
        }
        Ok(progress)
    }

    /// Where each workspace's insight index is: people with an insight ready and waiting.
    pub fn insight_status(&self) -> CoreResult<Vec<(WorkspaceId, InsightProgress)>> {
        self.each_engine(Engine::insight_progress)
    }

    /// The insight of the present of `person` (their own key): kept in the index, else made
    /// from their writing (`analyzed` when the caller has read it already) and kept.
    fn present_insight(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
        analyzed: Option<&[crate::engine::AnalyzedPart<'_>]>,
    ) -> CoreResult<Arc<InsightParts>> {
        match engine.kept_insight(person) {
            Some(kept) => Ok(kept),
            None => self.make_insight(workspace, engine, person, analyzed),
        }
    }

    /// Makes the insight of the present of `person` (their own key) from their writing
    /// (`analyzed` when the caller has read it already), and keeps it.
    fn make_insight(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
        analyzed: Option<&[crate::engine::AnalyzedPart<'_>]>,
    ) -> CoreResult<Arc<InsightParts>> {
        let parts = match analyzed {
            Some(analyzed) => Self::insight_parts(engine, person, analyzed, None),
            None => {
                let writing = self.writing_of_all(workspace, engine, person)?;
                let analyzed = engine.analyze(&writing_parts(&writing.0, &writing.1));
                Self::insight_parts(engine, person, &analyzed, None)
            }
        };
        let parts = Arc::new(parts);
        engine.keep_insight(person, Arc::clone(&parts));
        Ok(parts)
    }

    /// What a person's analyzed writing says against the strategy as of `as_of`: each facet's
    /// convergence, with quoted evidence where they are connected, and their distinctive words.
    fn insight_parts(
        engine: &Engine,
        person: &RecordKey,
        analyzed: &[crate::engine::AnalyzedPart<'_>],
        as_of: Option<Millis>,
    ) -> InsightParts {
        let now = engine.people_clock(as_of);
        let connected =
            |converged: &FacetConvergence| converged.convergence >= crate::engine::CONNECTED;
        let convergence = engine
            .convergence(person, Some(now))
            .into_iter()
            .map(|converged| {
                let evidence = if connected(&converged) {
                    engine
                        .explain(&converged.facet_id, analyzed)
                        .filter(|evidence| !evidence.sentence.is_empty())
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                };
                (converged, evidence)
            })
            .collect();
        let distinctive = engine.distinctive_terms(analyzed, INTERESTS_SHOWN);
        let best = distinctive.first().map_or(1.0, |term| term.score.max(1e-6));
        let interests = distinctive
            .into_iter()
            .map(|term| (term.surface, (term.score / best * 1000.0).round() / 1000.0))
            .collect();
        InsightParts {
            convergence,
            interests,
        }
    }

    /// `person_insight` for a person already resolved, on an engine already read, from the
    /// parts derived from their writing.
    fn insight_of(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        person: &RecordKey,
        parts: &InsightParts,
        as_of: Option<Millis>,
    ) -> CoreResult<PersonInsight> {
        let now = engine.people_clock(as_of);
        let summary = engine
            .people()
            .summary(person, now)
            .ok_or_else(|| CoreError::NotFound {
                kind: "person",
                id: person.to_string(),
            })?;
        Ok(PersonInsight {
            key: person.clone(),
            person: self.store.person(workspace, person)?,
            member: summary.member,
            convergence: parts.convergence.clone(),
            interests: parts.interests.clone(),
            last_active: summary.last_active,
            contributions: summary.contributions,
            records: engine.people().records_of(person),
        })
    }
}

/// How a caller names a person: by record, or by what a CRM knows of them.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonLookup {
    Record(RecordKey),
    EmailSha256(String),
    Handle(String),
    ProfileUrl(String),
    CrmId(String),
}

impl PersonLookup {
    /// Checks the key's shape; the error names the field and the fix.
    pub fn validate(&self) -> CoreResult<()> {
        let (field, value) = match self {
            PersonLookup::Record(_) => return Ok(()),
            PersonLookup::EmailSha256(value) => {
                let valid = value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit());
                if !valid {
                    return Err(CoreError::invalid(
                        "lookup.email_sha256",
                        "must be 64 hexadecimal characters: the SHA-256 of the trimmed, lowercased address",
                    ));
                }
                return Ok(());
            }
            PersonLookup::Handle(value) => ("lookup.handle", value),
            PersonLookup::ProfileUrl(value) => ("lookup.profile_url", value),
            PersonLookup::CrmId(value) => ("lookup.crm_id", value),
        };
        if value.trim().is_empty() {
            return Err(CoreError::invalid(
                field,
                "is empty; give the value to look the person up by",
            ));
        }
        if value.len() > 2048 {
            return Err(CoreError::invalid(field, "is longer than 2048 bytes"));
        }
        Ok(())
    }
}

/// A person found for a lookup, with where they meet the strategy and what to suggest them.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonMatch {
    pub insight: PersonInsight,
    pub suggested: Vec<SuggestedDiscussion>,
}

impl Trellis {
    /// The person a lookup names; `None` when nobody matches. Several records sharing a key
    /// (the same e-mail on two platforms) resolve to the most active one.
    pub fn find_person(
        &self,
        workspace: &WorkspaceId,
        lookup: &PersonLookup,
    ) -> CoreResult<Option<RecordKey>> {
        lookup.validate()?;
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        Ok(Self::find_in(&engine, lookup))
    }

    /// Who a (valid) lookup names in `engine`: of several people it fits, the most active.
    fn find_in(engine: &Engine, lookup: &PersonLookup) -> Option<RecordKey> {
        use crate::engine::people::LookupKey;
        let people = engine.people();
        let key = match lookup {
            PersonLookup::Record(key) => {
                return people.person_id(key).map(|_| key.clone());
            }
            PersonLookup::EmailSha256(value) => LookupKey::email_sha256(value),
            PersonLookup::Handle(value) => LookupKey::handle(value),
            PersonLookup::ProfileUrl(value) => LookupKey::profile_url(value),
            PersonLookup::CrmId(value) => LookupKey::crm_id(value),
        };
        let now = engine.people_clock(None);
        people
            .find(&key)
            .iter()
            .max_by(|a, b| {
                let activity = |key: &RecordKey| {
                    people
                        .summary(key, now)
                        .map_or(0, |summary| summary.contributions)
                };
                activity(a).cmp(&activity(b)).then_with(|| b.cmp(a))
            })
            .cloned()
    }

    /// For CRM systems: who the lookup names, where they meet the strategy, and which
    /// discussions to suggest them. `Ok(None)` when nobody matches.
    pub fn match_person(
        &self,
        workspace: &WorkspaceId,
        lookup: &PersonLookup,
        suggestions: usize,
    ) -> CoreResult<Option<PersonMatch>> {
        lookup.validate()?;
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        self.match_in(workspace, &engine, lookup, suggestions)
    }

    /// For a CRM's bulk sync: [`Trellis::match_person`] (without suggestions) for many lookups
    /// of one workspace, in their order, side by side on every core; a bad lookup gets its own
    /// error. The engine is read once, here: a lock taken inside rayon's workers could be taken
    /// again by a worker that picks up another contact while it waits for its own work, and a
    /// writer queued in between would then wait on it forever.
    pub fn match_people(
        &self,
        workspace: &WorkspaceId,
        lookups: &[PersonLookup],
    ) -> CoreResult<Vec<CoreResult<Option<PersonMatch>>>> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let engine = &*engine;
        Ok(lookups
            .par_iter()
            .map(|lookup| {
                lookup.validate()?;
                self.match_in(workspace, engine, lookup, 0)
            })
            .collect())
    }

    /// A match of a valid lookup in an engine already read.
    fn match_in(
        &self,
        workspace: &WorkspaceId,
        engine: &Engine,
        lookup: &PersonLookup,
        suggestions: usize,
    ) -> CoreResult<Option<PersonMatch>> {
        let Some(key) = Self::find_in(engine, lookup) else {
            return Ok(None);
        };
        let person = &self.resolve_person(engine, &key)?;
        if suggestions == 0 {
            // A CRM's bulk sync: the insight index answers, or the person's writing is read
            // for it alone.
            let parts = self.present_insight(workspace, engine, person, None)?;
            return Ok(Some(PersonMatch {
                insight: self.insight_of(workspace, engine, person, &parts, None)?,
                suggested: Vec::new(),
            }));
        }
        // Their writing, read and analyzed once, then where they meet the strategy (kept, or
        // made from it) beside the discussions to suggest (threads, read and analyzed): a match
        // takes the longer of the two instead of their sum. Topics to start are not part of a
        // match.
        let writing = self.writing_of_all(workspace, engine, person)?;
        let analyzed = engine.analyze(&writing_parts(&writing.0, &writing.1));
        let analyzed = &analyzed[..];
        let (insight, suggested) = rayon::join(
            || {
                let parts = self.present_insight(workspace, engine, person, Some(analyzed))?;
                self.insight_of(workspace, engine, person, &parts, None)
            },
            || self.discussions_to_join(workspace, engine, person, analyzed, None, suggestions),
        );
        Ok(Some(PersonMatch {
            insight: insight?,
            suggested: suggested?,
        }))
    }

    /// A page of people in the order they arrived, and the position to ask for the next one.
    pub fn list_people(
        &self,
        workspace: &WorkspaceId,
        member: Option<bool>,
        after: i64,
        limit: usize,
    ) -> CoreResult<(Vec<Person>, Option<i64>)> {
        self.engine(workspace)?;
        let mut page = self
            .store
            .list_people(workspace, member, after, limit + 1)?;
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more {
            page.last().map(|(position, _)| *position)
        } else {
            None
        };
        Ok((page.into_iter().map(|(_, person)| person).collect(), next))
    }
}
