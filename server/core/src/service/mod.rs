//! The application service: the one place that keeps storage and the in-memory engines in step.
//!
//! Every write goes to the store first and reaches the engine only once committed, so an engine
//! never knows something the database would forget. At start-up each workspace's engine is
//! rebuilt from the store; after that it moves in deltas. Transports (gRPC, the CLI's in-process
//! mode, the evaluation harness) all go through here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::domain::{Conversation, FieldLimits, Millis, Post, Record, RecordKey, WorkspaceId};
use crate::engine::model::ModelSettings;
use crate::engine::people::PeopleSettings;
use crate::engine::{
    Audit, CONNECTED, ConversationScore, Engagement, EngagementSettings, Engine, Evidence,
    StrategicConversation, TextPart,
};
use crate::error::{CoreError, CoreResult, Violation};
use crate::semantic::SentenceEmbedder;
use crate::store::{CorpusCounts, Store, Upserted};
use crate::strategy::{Strategy, StrategyVersion};

mod assets;
mod identity;
mod mix;
mod people;
mod plan;
mod prospects;
mod semantic;

pub use assets::{AssetTarget, SupportingAsset};
pub use prospects::{DRAFT_MAX_CHARS, Invitation, Prospect, draft_invitation};
pub use semantic::{SemanticStatus, WorkspaceEmbeddings};

pub use plan::PlannedAction;

pub use people::{
    ParticipantSuggestion, ParticipantTarget, PersonInsight, PersonLookup, PersonMatch,
    SuggestedDiscussion, TopicSuggestion,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub model: ModelSettings,
    pub engagement: EngagementSettings,
    pub people: PeopleSettings,
    pub semantic: crate::engine::semantic::SemanticSettings,
    pub limits: FieldLimits,
}

/// The outcome of one ingest batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// (position in the stream, violation) for each refused record.
    pub errors: Vec<(u64, Violation)>,
}

/// A conversation's score with the evidence for its connected facets.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainedScore {
    pub key: Option<RecordKey>,
    pub score: ConversationScore,
    pub evidence: Vec<Evidence>,
    pub strategy_version: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StrategicItem {
    pub item: StrategicConversation,
    pub conversation: Option<Conversation>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategicQuery<'a> {
    pub limit: usize,
    pub facet_id: Option<&'a str>,
    pub min_relevance: f32,
    pub as_of: Option<Millis>,
}

type SharedEngine = Arc<RwLock<Engine>>;

pub struct Trellis {
    store: Arc<dyn Store>,
    engines: RwLock<HashMap<WorkspaceId, SharedEngine>>,
    settings: Settings,
    /// Held by every write from its store transaction until the engine has it, so that an
    /// engine rebuilt from the store never sees a write that is then applied to it again.
    write_gate: std::sync::Mutex<()>,
    /// The sentence embedder of the semantic tier; `None` runs lexical-only.
    embedder: Option<Arc<dyn SentenceEmbedder>>,
    /// Why the semantic tier is off, in words with the fix; empty while it is on.
    lexical_only_reason: String,
}

impl std::fmt::Debug for Trellis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trellis")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn poisoned<T>(_: T) -> CoreError {
    CoreError::Internal(
        "an engine lock was poisoned by an earlier panic; restart the service".into(),
    )
}

impl Trellis {
    /// Opens the service over `store`, lexical-only, rebuilding every workspace's engine from it.
    pub fn open(store: Arc<dyn Store>, settings: Settings) -> CoreResult<Self> {
        Self::open_with(
            store,
            settings,
            Err("the semantic tier was not configured".to_owned()),
        )
    }

    /// Opens the service over `store` with the semantic tier's embedder, or the reason there is
    /// none (said in [`Trellis::semantic_status`]), rebuilding every workspace's engine from the
    /// store and the embeddings stored for that model.
    pub fn open_with(
        store: Arc<dyn Store>,
        settings: Settings,
        embedder: Result<Arc<dyn SentenceEmbedder>, String>,
    ) -> CoreResult<Self> {
        store.ensure_workspace(&WorkspaceId::default_workspace())?;
        let (embedder, lexical_only_reason) = match embedder {
            Ok(embedder) => (Some(embedder), String::new()),
            Err(reason) => (None, reason),
        };
        let trellis = Self {
            store,
            engines: RwLock::new(HashMap::new()),
            settings,
            write_gate: std::sync::Mutex::new(()),
            embedder,
            lexical_only_reason,
        };
        for workspace in trellis.store.workspaces()? {
            let engine = trellis.load_engine(&workspace)?;
            trellis
                .engines
                .write()
                .map_err(poisoned)?
                .insert(workspace, Arc::new(RwLock::new(engine)));
        }
        Ok(trellis)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// An empty engine with this service's settings and, when it has one, its embedder's model.
    fn new_engine(&self) -> Engine {
        let mut engine = Engine::with_people(self.settings.model, self.settings.people);
        if let Some(embedder) = &self.embedder {
            engine.enable_semantic(
                embedder.model_id(),
                embedder.dimension(),
                self.settings.semantic,
            );
        }
        engine
    }

    fn load_engine(&self, workspace: &WorkspaceId) -> CoreResult<Engine> {
        let mut engine = self.new_engine();
        // Merges first, so every record lands on the person it belongs to.
        engine.set_merges(&self.store.merges(workspace)?);
        engine.set_forgotten(self.store.forgotten(workspace)?);
        self.store.scan_corpus(workspace, &mut |record| {
            match &record {
                Record::Conversation(conversation) => {
                    engine.upsert_conversation(conversation, None)
                }
                Record::Post(post) => engine.upsert_post(post, None),
                Record::Person(person) => engine.upsert_person(person, None),
                Record::Asset(_) => {}
            }
            Ok(())
        })?;
        self.store.scan_assets(workspace, &mut |asset| {
            engine.upsert_asset(&asset, None);
            Ok(())
        })?;
        if let Some(embedder) = &self.embedder {
            let mut stored = Vec::new();
            self.store
                .scan_embeddings(workspace, embedder.model_id(), &mut |embedding| {
                    stored.push(embedding);
                    Ok(())
                })?;
            engine.insert_embeddings(stored);
        }
        // Set after the corpus is in, so the model compiles once, against all of it.
        if let Some(version) = self.store.strategy(workspace, None)? {
            engine.set_strategy(version.version, version.strategy);
        }
        Ok(engine)
    }

    /// Rebuilds a workspace's engine from the store (after merges change, or people are
    /// forgotten), in place, so readers holding the engine see the new one.
    fn rebuild(&self, workspace: &WorkspaceId) -> CoreResult<()> {
        let engine = self.engine(workspace)?;
        let rebuilt = self.load_engine(workspace)?;
        *engine.write().map_err(poisoned)? = rebuilt;
        Ok(())
    }

    /// The engine of an existing workspace.
    fn engine(&self, workspace: &WorkspaceId) -> CoreResult<SharedEngine> {
        self.engines
            .read()
            .map_err(poisoned)?
            .get(workspace)
            .cloned()
            .ok_or_else(|| CoreError::NotFound {
                kind: "workspace",
                id: workspace.to_string(),
            })
    }

    /// The engine of a workspace, creating the workspace on first write.
    fn engine_for_write(&self, workspace: &WorkspaceId) -> CoreResult<SharedEngine> {
        if let Ok(engine) = self.engine(workspace) {
            return Ok(engine);
        }
        self.store.ensure_workspace(workspace)?;
        let mut engines = self.engines.write().map_err(poisoned)?;
        Ok(engines
            .entry(workspace.clone())
            .or_insert_with(|| Arc::new(RwLock::new(self.new_engine())))
            .clone())
    }

    fn read<'a>(engine: &'a SharedEngine) -> CoreResult<RwLockReadGuard<'a, Engine>> {
        engine.read().map_err(poisoned)
    }

    pub fn put_strategy(
        &self,
        workspace: &WorkspaceId,
        strategy: Strategy,
        now: Millis,
    ) -> CoreResult<StrategyVersion> {
        strategy.validate()?;
        let engine = self.engine_for_write(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let stored = self.store.put_strategy(workspace, &strategy, now)?;
        engine
            .write()
            .map_err(poisoned)?
            .set_strategy(stored.version, strategy);
        Ok(stored)
    }

    pub fn strategy(
        &self,
        workspace: &WorkspaceId,
        version: Option<u32>,
    ) -> CoreResult<StrategyVersion> {
        self.engine(workspace)?;
        self.store
            .strategy(workspace, version)?
            .ok_or_else(|| match version {
                Some(version) => CoreError::NotFound {
                    kind: "strategy version",
                    id: version.to_string(),
                },
                None => no_strategy(workspace),
            })
    }

    pub fn strategy_versions(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        before: Option<u32>,
    ) -> CoreResult<Vec<StrategyVersion>> {
        self.engine(workspace)?;
        self.store.strategy_versions(workspace, limit, before)
    }

    /// Validates, stores and indexes one batch. `records` carry their stream positions; a bad
    /// record is reported and skipped, the rest are stored together.
    pub fn ingest(
        &self,
        workspace: &WorkspaceId,
        records: Vec<(u64, Record)>,
    ) -> CoreResult<IngestOutcome> {
        let engine = self.engine_for_write(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let mut outcome = IngestOutcome::default();
        let mut good = Vec::with_capacity(records.len());
        let forgotten = Self::read(&engine)?.forgotten().clone();
        for (position, record) in records {
            match record.validate(&self.settings.limits) {
                Ok(()) => match identity::redact(record, &forgotten) {
                    Some(record) => good.push(record),
                    // Someone who asked to be forgotten stays forgotten, whoever sends them.
                    None => outcome.unchanged += 1,
                },
                Err(violations) => outcome.errors.extend(
                    violations
                        .into_iter()
                        .map(|violation| (position, violation)),
                ),
            }
        }
        if good.is_empty() {
            return Ok(outcome);
        }
        let results = self.store.upsert_records(workspace, &good)?;
        let mut engine = engine.write().map_err(poisoned)?;
        for (record, result) in good.iter().zip(results) {
            let previous = match result {
                Upserted::Inserted => {
                    outcome.inserted += 1;
                    None
                }
                Upserted::Updated { previous } => {
                    outcome.updated += 1;
                    Some(previous)
                }
                Upserted::Unchanged => {
                    outcome.unchanged += 1;
                    continue;
                }
            };
            match (record, previous.as_ref()) {
                (Record::Conversation(conversation), previous) => {
                    let previous = match previous {
                        Some(Record::Conversation(previous)) => Some(previous),
                        _ => None,
                    };
                    engine.upsert_conversation(conversation, previous);
                }
                (Record::Post(post), previous) => {
                    let previous = match previous {
                        Some(Record::Post(previous)) => Some(previous),
                        _ => None,
                    };
                    engine.upsert_post(post, previous);
                }
                (Record::Person(person), previous) => {
                    let previous = match previous {
                        Some(Record::Person(previous)) => Some(previous),
                        _ => None,
                    };
                    engine.upsert_person(person, previous);
                }
                (Record::Asset(asset), previous) => {
                    let previous = match previous {
                        Some(Record::Asset(previous)) => Some(previous),
                        _ => None,
                    };
                    engine.upsert_asset(asset, previous);
                }
            }
        }
        let merges = identity::resolve(&engine, &good, identity::now_millis())?;
        drop(engine);
        if !merges.is_empty() {
            for merge in &merges {
                self.store.put_merge(workspace, merge)?;
            }
            self.rebuild(workspace)?;
        }
        Ok(outcome)
    }

    pub fn conversation(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<(Conversation, Vec<Post>)> {
        self.engine(workspace)?;
        let conversation =
            self.store
                .conversation(workspace, key)?
                .ok_or_else(|| CoreError::NotFound {
                    kind: "conversation",
                    id: key.to_string(),
                })?;
        let posts = self.store.posts_of(workspace, key)?;
        Ok((conversation, posts))
    }

    pub fn counts(&self, workspace: &WorkspaceId) -> CoreResult<CorpusCounts> {
        self.engine(workspace)?;
        self.store.counts(workspace)
    }

    /// Scores stored conversations by key and raw texts (title, body), in that order.
    pub fn score_conversations(
        &self,
        workspace: &WorkspaceId,
        keys: &[RecordKey],
        texts: &[(String, String)],
        all_evidence: bool,
    ) -> CoreResult<Vec<ExplainedScore>> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (version, _) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        let mut scores = Vec::with_capacity(keys.len() + texts.len());
        for key in keys {
            let (conversation, posts) = self.conversation(workspace, key)?;
            // A conversation with no content words (only stop words, say) has no index entry;
            // scoring its stored text gives the same, honest, zero answer.
            let score = match engine.score_conversation(key) {
                Some(score) => score,
                None => engine
                    .score_text(&conversation.title, &conversation.body)
                    .ok_or_else(|| no_strategy(workspace))?,
            };
            let parts = conversation_parts(&conversation, &posts);
            let evidence = evidence_for(&engine, &score, &parts, all_evidence);
            scores.push(ExplainedScore {
                key: Some(key.clone()),
                score,
                evidence,
                strategy_version: version,
            });
        }
        for (title, body) in texts {
            let score = engine
                .score_text(title, body)
                .ok_or_else(|| no_strategy(workspace))?;
            let parts = [
                TextPart {
                    location: "title",
                    text: title,
                },
                TextPart {
                    location: "body",
                    text: body,
                },
            ];
            let evidence = evidence_for(&engine, &score, &parts, all_evidence);
            scores.push(ExplainedScore {
                key: None,
                score,
                evidence,
                strategy_version: version,
            });
        }
        Ok(scores)
    }

    /// The conversations to nourish now, with their stored details and evidence.
    pub fn strategic_conversations(
        &self,
        workspace: &WorkspaceId,
        query: StrategicQuery<'_>,
    ) -> CoreResult<(u32, Vec<StrategicItem>)> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (version, strategy) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        if let Some(facet_id) = query.facet_id
            && strategy.facet(facet_id).is_none()
        {
            return Err(CoreError::invalid(
                "facet_id",
                format!(
                    "{facet_id:?} is not a facet of strategy version {version}; list the facets with GetStrategy"
                ),
            ));
        }
        let ranked = engine.strategic_conversations(
            query.as_of,
            &self.settings.engagement,
            query.min_relevance,
            query.facet_id,
            query.limit,
        );
        let mut items = Vec::with_capacity(ranked.len());
        for item in ranked {
            let conversation = self.store.conversation(workspace, &item.key)?;
            let posts = match &conversation {
                Some(_) => self.store.posts_of(workspace, &item.key)?,
                None => Vec::new(),
            };
            let evidence = match &conversation {
                Some(conversation) => {
                    let parts = conversation_parts(conversation, &posts);
                    item.facets
                        .iter()
                        .filter(|facet| facet.relevance >= CONNECTED)
                        .filter_map(|facet| engine.explain(&facet.facet_id, &parts))
                        .collect()
                }
                None => Vec::new(),
            };
            items.push(StrategicItem {
                item,
                conversation,
                evidence,
            });
        }
        Ok((version, items))
    }

    pub fn engagement(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
        now: Millis,
    ) -> CoreResult<Option<Engagement>> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        Ok(engine.engagement(key, now, &self.settings.engagement))
    }

    pub fn audit(&self, workspace: &WorkspaceId, mission: &str) -> CoreResult<(u32, Audit)> {
        if mission.trim().is_empty() {
            return Err(CoreError::invalid(
                "mission",
                "is empty; pass the community's mission statement to audit",
            ));
        }
        if mission.len() > 20_000 {
            return Err(CoreError::invalid(
                "mission",
                "is longer than 20000 bytes; shorten it",
            ));
        }
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (version, _) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        let audit = engine
            .audit(mission)
            .ok_or_else(|| no_strategy(workspace))?;
        Ok((version, audit))
    }

    /// Rankings of every indexed conversation per facet; for evaluation and reports.
    pub fn rank_facet(
        &self,
        workspace: &WorkspaceId,
        facet_id: &str,
    ) -> CoreResult<Vec<(RecordKey, f32)>> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        engine.rank_facet(facet_id).ok_or_else(|| {
            CoreError::invalid(
                "facet_id",
                format!("{facet_id:?} is not a facet of the current strategy"),
            )
        })
    }

    /// Number of conversations indexed per workspace, for health and logs.
    pub fn indexed_conversations(&self) -> CoreResult<Vec<(WorkspaceId, usize)>> {
        let engines = self.engines.read().map_err(poisoned)?;
        let mut counts = Vec::new();
        for (workspace, engine) in engines.iter() {
            counts.push((workspace.clone(), Self::read(engine)?.conversation_count()));
        }
        counts.sort();
        Ok(counts)
    }

    /// Makes everything durable; called at shutdown.
    pub fn flush(&self) -> CoreResult<()> {
        self.store.flush()
    }
}

fn no_strategy(workspace: &WorkspaceId) -> CoreError {
    CoreError::FailedPrecondition(format!(
        "workspace {workspace:?} has no strategy yet; put one first (PutStrategy, or `trellis strategy put FILE`)"
    ))
}

fn conversation_parts<'a>(conversation: &'a Conversation, posts: &'a [Post]) -> Vec<TextPart<'a>> {
    let mut parts = vec![
        TextPart {
            location: "title",
            text: &conversation.title,
        },
        TextPart {
            location: "body",
            text: &conversation.body,
        },
    ];
    parts.extend(posts.iter().map(|post| TextPart {
        location: &post.key.external_id,
        text: &post.text,
    }));
    parts
}

fn evidence_for(
    engine: &Engine,
    score: &ConversationScore,
    parts: &[TextPart<'_>],
    all: bool,
) -> Vec<Evidence> {
    score
        .facets
        .iter()
        .filter(|facet| all || facet.relevance >= CONNECTED)
        .filter_map(|facet| engine.explain(&facet.facet_id, parts))
        .collect()
}
