//! The application service: the one place that keeps storage and the in-memory engines in step.
//!
//! Every write goes to the store first and reaches the engine only once committed, so an engine
//! never knows something the database would forget. At start-up each workspace's engine is
//! rebuilt from the store; after that it moves in deltas. Transports (gRPC, the CLI's in-process
//! mode, the evaluation harness) all go through here.
//!
//! On a store several replicas share (one with a [`ChangeLog`]), a replica's engines move only
//! by the log: a write is committed with its change, and then every replica, the writer
//! included, applies the changes in log order ([`Trellis::follow`] for the others, straight after
//! the write for the writer, so it reads its own writes). Each engine remembers the log position
//! it includes; it is loaded from a consistent snapshot that names its position, so no change is
//! applied twice or missed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::domain::{Conversation, FieldLimits, Millis, Post, Record, RecordKey, WorkspaceId};
use crate::engine::model::ModelSettings;
use crate::engine::people::PeopleSettings;
use crate::engine::semantic::Embedded;
use crate::engine::{
    AnalyzedPart, Audit, CONNECTED, ConversationScore, Engagement, EngagementSettings, Engine,
    Evidence, StrategicConversation, TextPart,
};
use crate::error::{CoreError, CoreResult, Violation};
use crate::semantic::SentenceEmbedder;
use crate::store::{Change, ChangeKind, ChangeLog, CorpusCounts, Store, TextBudget, Upserted};
use crate::strategy::{Strategy, StrategyVersion};

mod assets;
mod feedback;
mod identity;
mod learn;
mod mix;
mod people;
mod plan;
mod prospects;
mod semantic;

pub use assets::{AssetTarget, SupportingAsset};
pub use feedback::{FeedbackPage, RecordedFeedback};
pub use learn::{ModelStatus, REFIT_FEEDBACK};
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
    /// How old a judgment of where people stand in a conversation may grow, once the corpus
    /// moved on, before a request judges again (see `engine::standing`); zero judges on request
    /// after every change.
    pub standing_max_age: std::time::Duration,
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
    /// The language of the text scored; a language Trellis cannot analyse scores nothing, which
    /// says nothing about the text (see `Analysis::NotAnalysed`).
    pub language: crate::text::Language,
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

/// Where one workspace's engine stands in the change log of a store replicas share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatus {
    pub workspace: WorkspaceId,
    /// The log position the engine includes.
    pub applied: u64,
    /// The position of the log's latest change.
    pub head: u64,
    /// Changes logged and not applied yet: `head - applied`.
    pub lag: u64,
}

pub struct Trellis {
    store: Arc<dyn Store>,
    engines: RwLock<HashMap<WorkspaceId, SharedEngine>>,
    settings: Settings,
    /// Held by every write from its store transaction until the engine has it, so that an
    /// engine rebuilt from the store never sees a write that is then applied to it again.
    write_gate: std::sync::Mutex<()>,
    /// With a change log: the log position each workspace's engine includes. Changed only under
    /// the write gate.
    positions: std::sync::Mutex<HashMap<WorkspaceId, u64>>,
    /// The sentence embedder of the semantic tier; `None` runs lexical-only.
    embedder: Option<Arc<dyn SentenceEmbedder>>,
    /// Why the semantic tier is off, in words with the fix; empty while it is on.
    lexical_only_reason: String,
    /// Each workspace's ranking models, learned from its history (see `learn`); installed in
    /// its engine whenever the engine is (re)loaded.
    models: std::sync::Mutex<HashMap<WorkspaceId, learn::WorkspaceModels>>,
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
            positions: std::sync::Mutex::new(HashMap::new()),
            embedder,
            lexical_only_reason,
            models: std::sync::Mutex::new(HashMap::new()),
        };
        for workspace in trellis.store.workspaces()? {
            let (engine, position) = trellis.load_engine(&workspace)?;
            trellis.set_position(&workspace, position)?;
            trellis
                .engines
                .write()
                .map_err(poisoned)?
                .insert(workspace, Arc::new(RwLock::new(engine)));
        }
        Ok(trellis)
    }

    /// Whether this service follows a change log shared with other replicas.
    pub fn follows_changes(&self) -> bool {
        self.store.change_log().is_some()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// An empty engine with this service's settings and, when it has one, its embedder's model.
    fn new_engine(&self) -> Engine {
        let mut engine = Engine::with_people(self.settings.model, self.settings.people);
        engine.set_standing_max_age(self.settings.standing_max_age);
        if let Some(embedder) = &self.embedder {
            engine.enable_semantic(
                embedder.model_id(),
                embedder.dimension(),
                self.settings.semantic,
            );
        }
        engine
    }

    /// A workspace's engine as the store has it, and, with a change log, the log position it
    /// includes (0 without one).
    fn load_engine(&self, workspace: &WorkspaceId) -> CoreResult<(Engine, u64)> {
        let Some(log) = self.store.change_log() else {
            return Ok((self.load_engine_from(&*self.store, workspace)?, 0));
        };
        let mut loaded = None;
        let position = log.snapshot(workspace, &mut |snapshot| {
            loaded = Some(self.load_engine_from(snapshot, workspace)?);
            Ok(())
        })?;
        let engine = loaded.ok_or_else(|| {
            CoreError::Internal("the store's snapshot did not run the engine's load".into())
        })?;
        Ok((engine, position))
    }

    fn load_engine_from(&self, store: &dyn Store, workspace: &WorkspaceId) -> CoreResult<Engine> {
        let mut engine = self.new_engine();
        // Merges first, so every record lands on the person it belongs to.
        engine.set_merges(&store.merges(workspace)?);
        engine.set_forgotten(store.forgotten(workspace)?);
        engine.begin_load();
        store.scan_corpus(workspace, &mut |record| {
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
        store.scan_assets(workspace, &mut |asset| {
            engine.upsert_asset(&asset, None);
            Ok(())
        })?;
        engine.finish_load();
        let mut feedback = Vec::new();
        store.scan_feedback(workspace, &mut |item| {
            feedback.push(item);
            Ok(())
        })?;
        if !feedback.is_empty() {
            engine.apply_feedback(&feedback);
        }
        if let Some(embedder) = &self.embedder {
            for of in Embedded::ALL {
                let mut stored = Vec::new();
                store.scan_embeddings(workspace, embedder.model_id(), of, &mut |embedding| {
                    stored.push(embedding);
                    Ok(())
                })?;
                match of {
                    Embedded::Conversation => engine.insert_embeddings(stored),
                    Embedded::Asset => engine.insert_asset_embeddings(stored),
                };
            }
        }
        // Set after the corpus is in, so the model compiles once, against all of it.
        if let Some(version) = store.strategy(workspace, None)? {
            let vectors = self.facet_vectors(&version.strategy);
            engine.set_strategy(version.version, version.strategy);
            if let Some(vectors) = vectors {
                engine.set_facet_vectors(version.version, vectors);
            }
        }
        self.install_models(workspace, &mut engine);
        Ok(engine)
    }

    /// Rebuilds a workspace's engine from the store (after merges change, or people are
    /// forgotten), in place, so readers holding the engine see the new one. With a change log
    /// the write that calls for it logged a reload, which catching up applies. The caller holds
    /// the write gate.
    fn rebuild(&self, workspace: &WorkspaceId) -> CoreResult<()> {
        if let Some(log) = self.store.change_log() {
            self.catch_up(log, workspace)?;
            return Ok(());
        }
        let engine = self.engine(workspace)?;
        let (rebuilt, _) = self.load_engine(workspace)?;
        *engine.write().map_err(poisoned)? = rebuilt;
        Ok(())
    }

    fn position(&self, workspace: &WorkspaceId) -> CoreResult<u64> {
        Ok(self
            .positions
            .lock()
            .map_err(poisoned)?
            .get(workspace)
            .copied()
            .unwrap_or(0))
    }

    fn set_position(&self, workspace: &WorkspaceId, position: u64) -> CoreResult<()> {
        self.positions
            .lock()
            .map_err(poisoned)?
            .insert(workspace.clone(), position);
        Ok(())
    }

    /// Applies the changes of a workspace's log after its engine's position, in order; returns
    /// how many. A log that no longer holds the next change (pruned, or cut when people were
    /// forgotten) and a logged reload both reload the engine from a snapshot; so does a log
    /// that holds nothing after the position while its head is past it (a replica that stood
    /// still longer than the log is kept, with no write since). The caller holds the write gate.
    fn catch_up(&self, log: &dyn ChangeLog, workspace: &WorkspaceId) -> CoreResult<usize> {
        const PAGE: usize = 256;
        let engine = self.engine_entry(workspace)?;
        let mut position = self.position(workspace)?;
        let mut applied = 0;
        // Whether the log was found empty after the position once already, with its head past
        // it: the head is read after the changes, so a write committed between the two reads
        // looks like that once, and only a second look tells it from a pruned log.
        let mut looked_twice = false;
        let mut reloaded_for_gap = false;
        loop {
            let changes = log.changes_after(workspace, position, PAGE)?;
            let Some(first) = changes.first() else {
                if reloaded_for_gap || log.head(workspace)? <= position {
                    break;
                }
                if !looked_twice {
                    looked_twice = true;
                    continue;
                }
                tracing::info!(workspace = %workspace, position, "the change log was pruned past this replica; reloading the workspace");
                position = self.reload(&engine, workspace)?;
                reloaded_for_gap = true;
                continue;
            };
            if first.seq != position + 1 {
                tracing::info!(workspace = %workspace, position, next = first.seq, "the change log moved past this replica; reloading the workspace");
                position = self.reload(&engine, workspace)?;
                continue;
            }
            let fetched = changes.len();
            for change in changes {
                if change.seq <= position {
                    continue;
                }
                applied += 1;
                position = match self.apply_change(&engine, workspace, change)? {
                    Some(reloaded) => reloaded,
                    None => position + 1,
                };
                self.set_position(workspace, position)?;
            }
            if fetched < PAGE {
                break;
            }
        }
        self.set_position(workspace, position)?;
        Ok(applied)
    }

    /// Applies one change; `Some(position)` when it reloaded the engine from a snapshot.
    fn apply_change(
        &self,
        engine: &SharedEngine,
        workspace: &WorkspaceId,
        change: Change,
    ) -> CoreResult<Option<u64>> {
        match change.kind {
            ChangeKind::Records(records) => {
                let mut engine = engine.write().map_err(poisoned)?;
                for record in &records {
                    apply_record(&mut engine, &record.record, record.previous.as_ref());
                }
            }
            ChangeKind::Strategy { version } => {
                if let Some(stored) = self.store.strategy(workspace, Some(version))? {
                    let vectors = self.facet_vectors(&stored.strategy);
                    let mut engine = engine.write().map_err(poisoned)?;
                    engine.set_strategy(stored.version, stored.strategy);
                    if let Some(vectors) = vectors {
                        engine.set_facet_vectors(stored.version, vectors);
                    }
                }
            }
            ChangeKind::Reload => return self.reload(engine, workspace).map(Some),
            ChangeKind::Feedback(feedback) => {
                engine.write().map_err(poisoned)?.apply_feedback(&feedback);
            }
            ChangeKind::Embeddings {
                model,
                of,
                embeddings,
            } => {
                if self
                    .embedder
                    .as_ref()
                    .is_some_and(|embedder| embedder.model_id() == model)
                {
                    let mut engine = engine.write().map_err(poisoned)?;
                    match of {
                        Embedded::Conversation => engine.insert_embeddings(embeddings),
                        Embedded::Asset => engine.insert_asset_embeddings(embeddings),
                    };
                }
            }
        }
        Ok(None)
    }

    /// Replaces a workspace's engine with one loaded from a snapshot; returns its position.
    fn reload(&self, engine: &SharedEngine, workspace: &WorkspaceId) -> CoreResult<u64> {
        let (reloaded, position) = self.load_engine(workspace)?;
        *engine.write().map_err(poisoned)? = reloaded;
        self.set_position(workspace, position)?;
        Ok(position)
    }

    /// Brings every workspace's engine up to the change log: the workspaces other replicas
    /// created, and the writes they made. A no-op without a change log. Returns the changes
    /// applied.
    ///
    /// The logs' heads are read first, without the write gate, so that writes through this
    /// replica do not wait on a follow that has nothing to do; the gate is taken only for a
    /// workspace whose head is past the engine's position (or that has no engine here yet),
    /// and catching up reads the log again under it.
    pub fn follow(&self) -> CoreResult<usize> {
        let Some(log) = self.store.change_log() else {
            return Ok(0);
        };
        let mut applied = 0;
        for (workspace, head) in log.heads()? {
            if self.engine(&workspace).is_ok() && head <= self.position(&workspace)? {
                continue;
            }
            let _gate = self.write_gate.lock().map_err(poisoned)?;
            applied += self.catch_up(log, &workspace)?;
        }
        Ok(applied)
    }

    /// Recompiles a workspace's strategy model against its corpus as it is now. The model is
    /// compiled when the strategy is set and again each time the corpus has grown by a quarter,
    /// so two replicas (or one before and after a restart) that loaded at different sizes
    /// calibrate slightly differently until then; after this they score alike.
    pub fn recompile(&self, workspace: &WorkspaceId) -> CoreResult<()> {
        let engine = self.engine(workspace)?;
        engine.write().map_err(poisoned)?.recompile();
        Ok(())
    }

    /// Drops logged changes older than `retention`; a no-op without a change log.
    pub fn prune_changes(&self, retention: std::time::Duration) -> CoreResult<u64> {
        let Some(log) = self.store.change_log() else {
            return Ok(0);
        };
        let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        log.prune(identity::now_millis().saturating_sub(retention))
    }

    /// Holds the write gate, as a long write does, until the guard drops: for tests that show
    /// what waits on it and what does not.
    #[doc(hidden)]
    pub fn hold_write_gate(&self) -> CoreResult<std::sync::MutexGuard<'_, ()>> {
        self.write_gate.lock().map_err(poisoned)
    }

    /// Where each workspace's engine stands in its change log: the position it includes, the
    /// log's head, and so how many changes it has still to apply. Empty without a change log.
    /// One read of the heads, so it is cheap enough for a status call.
    pub fn replication(&self) -> CoreResult<Vec<ReplicationStatus>> {
        let Some(log) = self.store.change_log() else {
            return Ok(Vec::new());
        };
        log.heads()?
            .into_iter()
            .map(|(workspace, head)| {
                let applied = self.position(&workspace)?;
                Ok(ReplicationStatus {
                    lag: head.saturating_sub(applied),
                    workspace,
                    applied,
                    head,
                })
            })
            .collect()
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
        self.engine_entry(workspace)
    }

    /// The engine of a workspace that exists in the store, empty (at log position 0) when this
    /// service has not seen it yet.
    fn engine_entry(&self, workspace: &WorkspaceId) -> CoreResult<SharedEngine> {
        if let Ok(engine) = self.engine(workspace) {
            return Ok(engine);
        }
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
        // Embedded before any lock is taken: the model is slow next to a write.
        let vectors = match self.store.change_log() {
            Some(_) => None,
            None => self.facet_vectors(&strategy),
        };
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let stored = self.store.put_strategy(workspace, &strategy, now)?;
        match self.store.change_log() {
            Some(log) => {
                self.catch_up(log, workspace)?;
            }
            None => {
                let mut engine = engine.write().map_err(poisoned)?;
                engine.set_strategy(stored.version, strategy);
                if let Some(vectors) = vectors {
                    engine.set_facet_vectors(stored.version, vectors);
                }
            }
        }
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
        let log = self.store.change_log();
        // With a change log the batch reaches the engine through it, in log order.
        let mut direct = Vec::new();
        for (record, result) in good.iter().zip(results) {
            match result {
                Upserted::Inserted => {
                    outcome.inserted += 1;
                    direct.push((record, None));
                }
                Upserted::Updated { previous } => {
                    outcome.updated += 1;
                    direct.push((record, Some(previous)));
                }
                Upserted::Unchanged => outcome.unchanged += 1,
            }
        }
        if let Some(log) = log {
            self.catch_up(log, workspace)?;
        }
        let mut engine = engine.write().map_err(poisoned)?;
        if log.is_none() {
            for (record, previous) in direct {
                apply_record(&mut engine, record, previous.as_ref());
            }
        }
        let merges = identity::resolve(
            &engine,
            &*self.store,
            workspace,
            &good,
            identity::now_millis(),
        )?;
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
        let conversation = self.stored_conversation(workspace, key)?;
        let posts = self.store.posts_of(workspace, key)?;
        Ok((conversation, posts))
    }

    /// A stored conversation and the first posts that evidence quotes (`opening_posts`).
    fn conversation_opening(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<(Conversation, Vec<Post>)> {
        let conversation = self.stored_conversation(workspace, key)?;
        let posts = opening_posts(&*self.store, workspace, key)?;
        Ok((conversation, posts))
    }

    fn stored_conversation(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<Conversation> {
        self.store
            .conversation(workspace, key)?
            .ok_or_else(|| CoreError::NotFound {
                kind: "conversation",
                id: key.to_string(),
            })
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
            let (conversation, posts) = self.conversation_opening(workspace, key)?;
            // A conversation with no content words (only stop words, say) has no index entry;
            // scoring its stored text gives the same, honest, zero answer.
            let score = match engine.score_conversation(key) {
                Some(score) => score,
                None => engine
                    .score_text(&conversation.title, &conversation.body)
                    .ok_or_else(|| no_strategy(workspace))?,
            };
            let parts = engine.analyze(&conversation_parts(&conversation, &posts));
            let evidence = evidence_for(&engine, &score, &parts, all_evidence);
            scores.push(ExplainedScore {
                key: Some(key.clone()),
                score,
                evidence,
                strategy_version: version,
                language: crate::text::language_of(&conversation.title, &conversation.body),
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
            let evidence = evidence_for(&engine, &score, &engine.analyze(&parts), all_evidence);
            scores.push(ExplainedScore {
                key: None,
                score,
                evidence,
                strategy_version: version,
                language: crate::text::language_of(title, body),
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
                Some(_) => opening_posts(&*self.store, workspace, &item.key)?,
                None => Vec::new(),
            };
            let evidence = match &conversation {
                Some(conversation) => {
                    let parts = engine.analyze(&conversation_parts(conversation, &posts));
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

    /// Every loaded workspace with its engine, taken out of the map so that the engines can be
    /// read one at a time without holding the map: what background work over all workspaces
    /// iterates.
    fn loaded_engines(&self) -> CoreResult<Vec<(WorkspaceId, SharedEngine)>> {
        Ok(self
            .engines
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(workspace, engine)| (workspace.clone(), Arc::clone(engine)))
            .collect())
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

/// Hands one stored record to the engine, with the stored version it replaced.
fn apply_record(engine: &mut Engine, record: &Record, previous: Option<&Record>) {
    match record {
        Record::Conversation(conversation) => {
            let previous = match previous {
                Some(Record::Conversation(previous)) => Some(previous),
                _ => None,
            };
            engine.upsert_conversation(conversation, previous);
        }
        Record::Post(post) => {
            let previous = match previous {
                Some(Record::Post(previous)) => Some(previous),
                _ => None,
            };
            engine.upsert_post(post, previous);
        }
        Record::Person(person) => {
            let previous = match previous {
                Some(Record::Person(previous)) => Some(previous),
                _ => None,
            };
            engine.upsert_person(person, previous);
        }
        Record::Asset(asset) => {
            let previous = match previous {
                Some(Record::Asset(previous)) => Some(previous),
                _ => None,
            };
            engine.upsert_asset(asset, previous);
        }
    }
}

fn no_strategy(workspace: &WorkspaceId) -> CoreError {
    CoreError::FailedPrecondition(format!(
        "workspace {workspace:?} has no strategy yet; put one first (PutStrategy, or `trellis strategy put FILE`)"
    ))
}

/// The first replies of a conversation, as many as evidence reads (`EVIDENCE_REPLY_BYTES`).
fn opening_posts(
    store: &dyn Store,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
) -> CoreResult<Vec<Post>> {
    store.opening_posts(workspace, conversation, EVIDENCE_REPLY_BYTES)
}

/// Text of a conversation's replies that evidence reads, after its title and opening post:
/// nine replies of the mean length of the development dump's answers and comments (about 900
/// bytes); one of its threads in eleven is longer. A long thread is quoted from its first
/// replies, so that explaining it costs what explaining a short one does; reading the text is
/// most of the work of a suggestion's evidence. Scores always read the whole thread.
const EVIDENCE_REPLY_BYTES: usize = 8 * 1024;

/// A conversation's texts to explain: its title, its opening post, and the replies among
/// `posts` that a `TextBudget` of `EVIDENCE_REPLY_BYTES` admits (all that `opening_posts`
/// read).
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
    let mut budget = TextBudget::new(EVIDENCE_REPLY_BYTES);
    parts.extend(
        posts
            .iter()
            .take_while(|post| budget.admits(post.text.len()))
            .map(|post| TextPart {
                location: &post.key.external_id,
                text: &post.text,
            }),
    );
    parts
}

fn evidence_for(
    engine: &Engine,
    score: &ConversationScore,
    parts: &[AnalyzedPart<'_>],
    all: bool,
) -> Vec<Evidence> {
    score
        .facets
        .iter()
        .filter(|facet| all || facet.relevance >= CONNECTED)
        .filter_map(|facet| engine.explain(&facet.facet_id, parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(number: usize, bytes: usize) -> Post {
        Post {
            key: RecordKey::new("forum", format!("p{number}")),
            conversation: "c".into(),
            text: "word ".repeat(bytes / 5),
            ..Default::default()
        }
    }

    /// Evidence reads the title, the opening post and the replies in order while they fit in
    /// the budget; the first reply always, however long.
    #[test]
    fn evidence_reads_replies_in_order_up_to_its_budget() {
        let conversation = Conversation {
            key: RecordKey::new("forum", "c"),
            title: "title".into(),
            body: "body".into(),
            ..Default::default()
        };
        let locations = |posts: &[Post]| -> Vec<String> {
            conversation_parts(&conversation, posts)
                .iter()
                .map(|part| part.location.to_owned())
                .collect()
        };
        let short: Vec<Post> = (0..5).map(|number| reply(number, 100)).collect();
        assert_eq!(
            locations(&short),
            ["title", "body", "p0", "p1", "p2", "p3", "p4"]
        );
        let long: Vec<Post> = (0..100).map(|number| reply(number, 1000)).collect();
        let read = locations(&long);
        assert_eq!(read.len(), 2 + EVIDENCE_REPLY_BYTES / 1000);
        assert_eq!(read[2..5], ["p0", "p1", "p2"]);
        let giant = [reply(0, 2 * EVIDENCE_REPLY_BYTES), reply(1, 10)];
        assert_eq!(locations(&giant), ["title", "body", "p0"]);
    }
}
