//! Learning each workspace's rankings from its own history (see `engine::learn`).
//!
//! No label is needed: the community already showed who takes part in what. The stored history
//! is replayed in time order into a training engine, and at moments inside it (steps between
//! the times by which 40%, 50%, ... 90% of the conversations that drew a reply had been opened)
//! the engine is asked, as it stood then, the questions the served rankings answer:
//! - who could be brought into each conversation opened before the next step (participants);
//! - which of the conversations opened before the next step each person who took part in one
//!   of them should join (discussions), with those conversations in the engine as they were
//!   when opened.
//!
//! Who did take part labels the answers. The newest splits are held back to choose the
//! regularisation and to compare each fitted model with the one serving; a model replaces it only
//! if it ranks that held-back history better. The discussion queries come from a second replay
//! with the participant model that will serve installed, since where people stand (which the
//! discussion model reads) comes from it.
//!
//! The training engine is the same engine the workspace serves from, built by the same code,
//! so the features a model is fitted on are the features it is served with. The replay keeps
//! postings deferred between steps and builds them once per step. Each split contributes at most
//! [`MAX_QUERIES_PER_SPLIT`] conversations, and each step at most [`MAX_DISCUSSIONS_PER_STEP`]
//! conversations offered to [`MAX_PEOPLE_PER_STEP`] people.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Trellis, poisoned};
use crate::domain::{Conversation, Millis, Person, Post, Record, RecordKey, WorkspaceId};
use crate::engine::DISCUSSION_FEATURES;
use crate::engine::Engine;
use crate::engine::learn::{self, FitError, ModelOrigin, Query, RankingKind, RankingModel};
use crate::engine::people::PARTICIPANT_FEATURES;
use crate::engine::semantic::{Embedded, Embedding, embedding_text, text_hash};
use crate::error::CoreResult;
use crate::feedback::{Feedback, Outcome, SuggestionKind};

/// Where the splits fall: the share of replied conversations opened before each.
pub const SPLIT_QUANTILES: [f64; 6] = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// Steps of each split: the conversations opened during a step are asked about as of its start.
pub const STEPS_PER_SPLIT: usize = 5;
/// Conversations asked about per split at most (evenly spread over the split when there are
/// more): bounds the cost of a fit on a large community.
pub const MAX_QUERIES_PER_SPLIT: usize = 400;
/// Dated records (conversations and posts) a fit replays at most: the newest ones. About a
/// fifth of the largest community the service is sized for, so that the training engine stays
/// a fraction of the serving one.
pub const MAX_REPLAYED_RECORDS: usize = 200_000;
/// Conversations offered per step to the people asked which to join, at most.
pub const MAX_DISCUSSIONS_PER_STEP: usize = 80;
/// People asked per step which conversations to join, at most.
pub const MAX_PEOPLE_PER_STEP: usize = 60;
/// People considered per conversation beyond those the evidence lists name (the most active).
const POOL_DEPTH: usize = 200;
/// A workspace is fitted again once its records grew by this share since the last fit.
pub const REFIT_GROWTH: f64 = 0.1;
/// ... or by this many records, whichever is smaller.
pub const REFIT_RECORDS: u64 = 5_000;
/// ... or once this many suggestions were taken up or dismissed since (see `crate::feedback`):
/// each is a labelled example, worth far more than a record.
pub const REFIT_FEEDBACK: u64 = 100;

/// What the service knows of a workspace's models: the one serving and the last fit.
#[derive(Debug, Clone)]
pub(super) struct WorkspaceModels {
    pub participants: Arc<RankingModel>,
    pub discussions: Arc<RankingModel>,
    /// Records in the workspace when it was last fitted (whatever the outcome).
    pub fitted_records: u64,
    /// Feedback outcomes (taken up or dismissed) in the workspace when it was last fitted.
    pub fitted_feedback: u64,
    /// What the last fit said: kept, refused and why.
    pub last_outcome: String,
    pub fits: u64,
}

/// A workspace's ranking models as the status reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStatus {
    pub workspace: WorkspaceId,
    /// The model serving each ranking.
    pub models: Vec<RankingModel>,
    /// Records in the workspace when it was last fitted; 0 before the first fit.
    pub fitted_records: u64,
    /// Feedback outcomes in the workspace when it was last fitted.
    pub fitted_feedback: u64,
    /// What the last fit concluded, in words.
    pub last_outcome: String,
    pub fits: u64,
}

/// What a replay of a workspace's history gives to learn from.
#[derive(Debug, Default)]
struct History {
    /// Per conversation opened during a step: the people who could be brought in.
    participants: Vec<Query>,
    /// Per person who took part in a conversation opened during a step: those conversations.
    discussions: Vec<Query>,
    /// The time of the newest record.
    newest: Millis,
}

/// One record of the replay, with the time it happened (records without a time go first: they
/// are the oldest the workspace can vouch for).
enum Event {
    Person(Person),
    Conversation(Conversation),
    Post(Post),
    /// Feedback on a discussion or participant suggestion: the engine takes it in at its time,
    /// and a suggestion taken up labels its person as taking part.
    Feedback(Feedback),
}

fn event_time(event: &Event) -> Option<Millis> {
    match event {
        Event::Person(_) => None,
        Event::Conversation(conversation) => conversation.created_at,
        Event::Post(post) => post.created_at,
        Event::Feedback(feedback) => Some(feedback.at),
    }
}

impl Trellis {
    /// The models of every workspace, for the status.
    pub fn model_status(&self) -> CoreResult<Vec<ModelStatus>> {
        let mut workspaces = self.store.workspaces()?;
        workspaces.sort();
        let models = self.models.lock().map_err(poisoned)?;
        Ok(workspaces
            .into_iter()
            .map(|workspace| match models.get(&workspace) {
                Some(state) => ModelStatus {
                    workspace,
                    models: vec![(*state.participants).clone(), (*state.discussions).clone()],
                    fitted_records: state.fitted_records,
                    fitted_feedback: state.fitted_feedback,
                    last_outcome: state.last_outcome.clone(),
                    fits: state.fits,
                },
                None => ModelStatus {
                    workspace,
                    models: vec![
                        crate::engine::people::default_participant_model().clone(),
                        crate::engine::default_discussion_model().clone(),
                    ],
                    fitted_records: 0,
                    fitted_feedback: 0,
                    last_outcome: "not fitted yet".to_owned(),
                    fits: 0,
                },
            })
            .collect())
    }

    /// Whether a workspace is due a fit: never fitted, or grown since the last fit by
    /// [`REFIT_GROWTH`] or [`REFIT_RECORDS`] records.
    pub fn learning_due(&self, workspace: &WorkspaceId) -> CoreResult<bool> {
        let counts = self.store.counts(workspace)?;
        let records = counts.people + counts.conversations + counts.posts;
        let feedback = self.store.feedback_counts(workspace)?.outcomes();
        let models = self.models.lock().map_err(poisoned)?;
        Ok(match models.get(workspace) {
            None => records > 0,
            Some(state) => {
                let grown = records.saturating_sub(state.fitted_records);
                (grown > 0
                    && (grown as f64 >= REFIT_GROWTH * state.fitted_records as f64
                        || grown >= REFIT_RECORDS))
                    || feedback.saturating_sub(state.fitted_feedback) >= REFIT_FEEDBACK
            }
        })
    }

    /// Fits the workspace's ranking models on its history and installs each that ranks held-back
    /// history better than the model serving. The participant model first: where people stand,
    /// which the discussion model reads, comes from it, so the discussions are drawn from a
    /// second replay with the participant model that will serve. Returns what happened, in words.
    pub fn learn(&self, workspace: &WorkspaceId) -> CoreResult<String> {
        let counts = self.store.counts(workspace)?;
        let records = counts.people + counts.conversations + counts.posts;
        let feedback = self.store.feedback_counts(workspace)?.outcomes();
        let started = std::time::Instant::now();
        let (incumbent_participants, incumbent_discussions) = {
            let models = self.models.lock().map_err(poisoned)?;
            match models.get(workspace) {
                Some(state) => (
                    Arc::clone(&state.participants),
                    Arc::clone(&state.discussions),
                ),
                None => (
                    Arc::new(crate::engine::people::default_participant_model().clone()),
                    Arc::new(crate::engine::default_discussion_model().clone()),
                ),
            }
        };
        let first = self.history(workspace, Pass::Participants)?;
        let (participants, participants_outcome) = choose(
            RankingKind::Participants,
            &PARTICIPANT_FEATURES,
            &first.participants,
            incumbent_participants,
            first.newest,
            "conversations drew replies from people active before them",
        );
        let second = self.history(workspace, Pass::Discussions(Arc::clone(&participants)))?;
        let (discussions, discussions_outcome) = choose(
            RankingKind::Discussions,
            &DISCUSSION_FEATURES,
            &second.discussions,
            incumbent_discussions,
            second.newest,
            "people took part in conversations opened after they were active",
        );
        let discussions = calibrated(discussions, &second.discussions);
        let discussions_outcome = match &discussions.calibration {
            Some(calibration) => format!(
                "{discussions_outcome}; scores calibrated as chances of taking part on {} candidates ({} took part){}",
                calibration.examples,
                calibration.positives,
                held_back_reliability(&discussions, &second.discussions)
            ),
            None => format!(
                "{discussions_outcome}; scores not calibrated (too few candidates took part, or did not, to say what a score means)"
            ),
        };
        let outcome =
            format!("participants: {participants_outcome}; discussions: {discussions_outcome}");
        tracing::info!(
            workspace = %workspace,
            seconds = started.elapsed().as_secs_f64(),
            outcome = %outcome,
            "ranking models fitted"
        );
        {
            let mut models = self.models.lock().map_err(poisoned)?;
            let fits = models.get(workspace).map_or(0, |state| state.fits) + 1;
            models.insert(
                workspace.clone(),
                super::learn::WorkspaceModels {
                    participants: Arc::clone(&participants),
                    discussions: Arc::clone(&discussions),
                    fitted_records: records,
                    fitted_feedback: feedback,
                    last_outcome: outcome.clone(),
                    fits,
                },
            );
        }
        // The engine changes only for a model it does not serve yet: installing a participant
        // model drops every judgment of where people stand.
        if let Ok(engine) = self.engine(workspace) {
            let mut engine = engine.write().map_err(poisoned)?;
            let current = engine.participant_model();
            if participants.is_learned()
                && !(current.is_learned() && current.version == participants.version)
            {
                engine.set_participant_model(participants);
            }
            let current = engine.discussion_model();
            if serves(&discussions) && !(serves(current) && current.version == discussions.version)
            {
                engine.set_discussion_model(discussions);
            }
        }
        Ok(outcome)
    }

    /// The installed models of a workspace into a freshly loaded engine.
    pub(super) fn install_models(&self, workspace: &WorkspaceId, engine: &mut Engine) {
        if let Ok(models) = self.models.lock()
            && let Some(state) = models.get(workspace)
        {
            if state.participants.is_learned() {
                engine.set_participant_model(Arc::clone(&state.participants));
            }
            if serves(&state.discussions) {
                engine.set_discussion_model(Arc::clone(&state.discussions));
            }
        }
    }

    /// The training queries of a workspace's history (see the module doc), and the moment of
    /// its newest record.
    fn history(&self, workspace: &WorkspaceId, pass: Pass) -> CoreResult<History> {
        let mut events = Vec::new();
        self.store.scan_corpus(workspace, &mut |record| {
            match record {
                Record::Person(person) => events.push(Event::Person(person)),
                Record::Conversation(conversation) => {
                    events.push(Event::Conversation(conversation));
                }
                Record::Post(post) => events.push(Event::Post(post)),
                Record::Asset(_) => {}
            }
            Ok(())
        })?;
        self.store.scan_feedback(workspace, &mut |feedback| {
            if matches!(
                feedback.kind,
                SuggestionKind::Discussion | SuggestionKind::Participant
            ) && feedback.person.is_some()
                && feedback.conversation.is_some()
            {
                events.push(Event::Feedback(feedback));
            }
            Ok(())
        })?;
        // A large community is learned from its most recent records only: the training engine
        // holds what it replays, beside the engine that serves.
        let mut times: Vec<Millis> = events.iter().filter_map(event_time).collect();
        if times.len() > MAX_REPLAYED_RECORDS {
            let skipped = times.len() - MAX_REPLAYED_RECORDS;
            let start = *times.select_nth_unstable(skipped).1;
            events.retain(|event| event_time(event).is_none_or(|at| at >= start));
        }
        drop(times);
        let mut vectors: HashMap<RecordKey, Embedding> = HashMap::new();
        if let Some(embedder) = &self.embedder {
            self.store.scan_embeddings(
                workspace,
                embedder.model_id(),
                Embedded::Conversation,
                &mut |embedding| {
                    vectors.insert(embedding.key.clone(), embedding);
                    Ok(())
                },
            )?;
        }
        // Who took part in each conversation, by author key as records name them.
        let mut openers: HashMap<RecordKey, RecordKey> = HashMap::new();
        let mut takers: HashMap<RecordKey, HashSet<RecordKey>> = HashMap::new();
        let mut opened: Vec<(Millis, usize)> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match event {
                Event::Conversation(conversation) => {
                    if let Some(author) =
                        crate::engine::author_key(&conversation.key, conversation.author.as_deref())
                    {
                        openers.insert(conversation.key.clone(), author);
                    }
                    if let Some(at) = conversation.created_at {
                        opened.push((at, index));
                    }
                }
                Event::Post(post) => {
                    if let Some(author) =
                        crate::engine::author_key(&post.key, post.author.as_deref())
                    {
                        takers
                            .entry(crate::engine::post_conversation(post))
                            .or_default()
                            .insert(author);
                    }
                }
                Event::Person(_) | Event::Feedback(_) => {}
            }
        }
        // Feedback adds what people took up (as it stands: the latest of each person and
        // conversation) to who took part; a dismissal is a negative as any other candidate who
        // did not take part, unless the person took part after all.
        let mut standing: HashMap<(RecordKey, RecordKey), (Millis, Outcome, &str)> = HashMap::new();
        for event in &events {
            if let Event::Feedback(feedback) = event
                && let (Some(person), Some(conversation)) =
                    (&feedback.person, &feedback.conversation)
            {
                // As the engine reads it (`engine::feedback`): the latest, then the outcome
                // furthest along, then the larger id.
                let entry = standing
                    .entry((person.clone(), conversation.clone()))
                    .or_insert((Millis::MIN, Outcome::Shown, ""));
                let this = (feedback.at, feedback.outcome, feedback.id.as_str());
                if this >= *entry {
                    *entry = this;
                }
            }
        }
        for ((person, conversation), (_, outcome, _)) in standing {
            if outcome.is_positive() {
                takers.entry(conversation).or_default().insert(person);
            }
        }
        let replied = |key: &RecordKey| {
            takers
                .get(key)
                .is_some_and(|people| people.iter().any(|person| openers.get(key) != Some(person)))
        };
        let mut replied_times: Vec<Millis> = opened
            .iter()
            .filter(|(_, index)| match &events[*index] {
                Event::Conversation(conversation) => replied(&conversation.key),
                _ => false,
            })
            .map(|(at, _)| *at)
            .collect();
        replied_times.sort_unstable();
        let newest = events.iter().filter_map(event_time).max().unwrap_or(0);
        if replied_times.is_empty() {
            return Ok(History {
                newest,
                ..History::default()
            });
        }
        // Each split is asked about in `STEPS_PER_SPLIT` steps, each as of its own start: a
        // question is judged with what was known shortly before it was asked.
        let mut cuts: Vec<(usize, Millis)> = Vec::new();
        for (split, share) in SPLIT_QUANTILES.iter().enumerate() {
            let next = SPLIT_QUANTILES.get(split + 1).copied().unwrap_or(1.0);
            for step in 0..STEPS_PER_SPLIT {
                let share = share + (next - share) * step as f64 / STEPS_PER_SPLIT as f64;
                let position = ((replied_times.len() as f64) * share) as usize;
                cuts.push((split, replied_times[position.min(replied_times.len() - 1)]));
            }
        }
        cuts.dedup_by_key(|(_, at)| *at);

        // The replay, in time order (records without a time first, in stored order).
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|index| (event_time(&events[*index]).unwrap_or(Millis::MIN), *index));
        opened.sort_unstable();
        let mut engine = self.new_engine();
        engine.set_merges(&self.store.merges(workspace)?);
        engine.set_forgotten(self.store.forgotten(workspace)?);
        if let Pass::Discussions(participants) = &pass
            && participants.is_learned()
        {
            engine.set_participant_model(Arc::clone(participants));
        }
        let mut next = 0usize;
        let mut replayed_conversations: Vec<RecordKey> = Vec::new();
        let mut queries = Vec::new();
        let mut discussions = Vec::new();
        for (index, (split, cut)) in cuts.iter().enumerate() {
            engine.begin_load();
            while next < order.len() && event_time(&events[order[next]]).is_none_or(|at| at < *cut)
            {
                match &events[order[next]] {
                    Event::Person(person) => engine.upsert_person(person, None),
                    Event::Conversation(conversation) => {
                        engine.upsert_conversation(conversation, None);
                        replayed_conversations.push(conversation.key.clone());
                    }
                    Event::Post(post) => engine.upsert_post(post, None),
                    Event::Feedback(feedback) => {
                        engine.apply_feedback(std::slice::from_ref(feedback));
                    }
                }
                next += 1;
            }
            engine.finish_load();
            engine.insert_embeddings(
                replayed_conversations
                    .drain(..)
                    .filter_map(|key| vectors.get(&key).cloned())
                    .collect(),
            );
            let until = cuts.get(index + 1).map_or(Millis::MAX, |(_, at)| *at);
            let window: Vec<&Conversation> = opened
                .iter()
                .filter(|(at, _)| *at >= *cut && *at < until)
                .filter_map(|(_, index)| match &events[*index] {
                    Event::Conversation(conversation) if replied(&conversation.key) => {
                        Some(conversation)
                    }
                    _ => None,
                })
                .collect();
            if let Pass::Discussions(_) = &pass {
                discussions.extend(self.discussion_step(
                    &mut engine,
                    &events,
                    &opened,
                    &takers,
                    &vectors,
                    (*split, *cut, until),
                ));
                continue;
            }
            let step = window
                .len()
                .div_ceil(MAX_QUERIES_PER_SPLIT / STEPS_PER_SPLIT)
                .max(1);
            for conversation in window.into_iter().step_by(step) {
                let bag = engine.text_bag(&conversation.title, &conversation.body);
                let vector = vectors
                    .get(&conversation.key)
                    .filter(|embedding| {
                        embedding.text_hash == text_hash(&embedding_text(conversation))
                    })
                    .map(|embedding| embedding.vector.as_slice());
                let opener = openers.get(&conversation.key);
                let candidates =
                    engine.participant_candidates(&bag, vector, opener, *cut, POOL_DEPTH);
                let took_part: HashSet<RecordKey> = takers
                    .get(&conversation.key)
                    .into_iter()
                    .flatten()
                    .filter(|person| Some(*person) != opener)
                    .map(|person| {
                        engine
                            .people()
                            .canonical(person)
                            .cloned()
                            .unwrap_or_else(|| person.clone())
                    })
                    .collect();
                let relevant: Vec<bool> = candidates
                    .iter()
                    .map(|(person, _)| took_part.contains(person))
                    .collect();
                queries.push(Query {
                    split: *split,
                    rows: candidates.into_iter().map(|(_, row)| row).collect(),
                    relevant,
                });
            }
        }
        Ok(History {
            participants: queries,
            discussions,
            newest,
        })
    }

    /// The discussion queries of one step of the replay: the conversations opened during the
    /// step go into the engine as they were when opened (no reply yet, open), and each person who
    /// took part in one of them and was known before is asked which of them to join, as of the
    /// step's start; then they leave the engine again, to be replayed whole in their turn.
    fn discussion_step(
        &self,
        engine: &mut Engine,
        events: &[Event],
        opened: &[(Millis, usize)],
        takers: &HashMap<RecordKey, HashSet<RecordKey>>,
        vectors: &HashMap<RecordKey, Embedding>,
        (split, cut, until): (usize, Millis, Millis),
    ) -> Vec<Query> {
        let fresh: Vec<Conversation> = opened
            .iter()
            .filter(|(at, _)| *at >= cut && *at < until)
            .filter_map(|(_, index)| match &events[*index] {
                Event::Conversation(conversation) => Some(Conversation {
                    open: true,
                    last_activity_at: conversation.created_at,
                    ..conversation.clone()
                }),
                _ => None,
            })
            .collect();
        let step = fresh.len().div_ceil(MAX_DISCUSSIONS_PER_STEP).max(1);
        let fresh: Vec<Conversation> = fresh.into_iter().step_by(step).collect();
        if fresh.is_empty() {
            return Vec::new();
        }
        for conversation in &fresh {
            engine.upsert_conversation(conversation, None);
        }
        engine.insert_embeddings(
            fresh
                .iter()
                .filter_map(|conversation| vectors.get(&conversation.key).cloned())
                .collect(),
        );
        let canonical = |engine: &Engine, person: &RecordKey| {
            engine
                .people()
                .canonical(person)
                .cloned()
                .unwrap_or_else(|| person.clone())
        };
        let mut people: Vec<RecordKey> = fresh
            .iter()
            .flat_map(|conversation| takers.get(&conversation.key).into_iter().flatten())
            .map(|person| canonical(engine, person))
            .filter(|person| {
                engine
                    .people()
                    .summary(person, cut)
                    .is_some_and(|summary| summary.contributions > 0)
            })
            .collect();
        people.sort();
        people.dedup();
        let stride = people.len().div_ceil(MAX_PEOPLE_PER_STEP).max(1);
        let mut queries = Vec::new();
        for person in people.into_iter().step_by(stride) {
            let offered: Vec<&Conversation> = fresh
                .iter()
                .filter(|conversation| {
                    crate::engine::author_key(&conversation.key, conversation.author.as_deref())
                        .is_none_or(|author| canonical(engine, &author) != person)
                })
                .collect();
            let keys: Vec<RecordKey> = offered
                .iter()
                .map(|conversation| conversation.key.clone())
                .collect();
            let rows = engine.discussion_candidates(&person, &keys, cut);
            let relevant = offered
                .iter()
                .map(|conversation| {
                    takers.get(&conversation.key).is_some_and(|joined| {
                        joined
                            .iter()
                            .any(|taker| canonical(engine, taker) == person)
                    })
                })
                .collect();
            queries.push(Query {
                split,
                rows,
                relevant,
            });
        }
        for conversation in &fresh {
            engine.remove_conversation(&conversation.key);
        }
        queries
    }
}

/// What a replay of the history draws: the participant queries, or the discussion queries with
/// the participant model that will serve installed in the training engine.
enum Pass {
    Participants,
    Discussions(Arc<RankingModel>),
}

/// Whether a discussion model differs from the engine's built-in one: learned, or calibrated
/// on the community's history.
fn serves(model: &RankingModel) -> bool {
    model.is_learned() || model.calibration.is_some()
}

/// `model` with its calibration on `queries` (see [`learn::calibrate`]); a new version when the
/// calibration changed, so that engines install it. The ranking is unchanged: a calibration only
/// says what a score means.
fn calibrated(model: Arc<RankingModel>, queries: &[Query]) -> Arc<RankingModel> {
    let calibration = learn::calibrate(queries, &model);
    if calibration == model.calibration {
        return model;
    }
    let mut model = (*model).clone();
    model.calibration = calibration;
    model.version += 1;
    Arc::new(model)
}

/// How a calibration of `model` fitted without the newest split of `queries` fares on that
/// split, in words (empty when there is too little history to say).
fn held_back_reliability(model: &RankingModel, queries: &[Query]) -> String {
    let Some(newest) = queries.iter().map(|query| query.split).max() else {
        return String::new();
    };
    let (held, fitted): (Vec<Query>, Vec<Query>) = queries
        .iter()
        .cloned()
        .partition(|query| query.split == newest);
    let mut judged = model.clone();
    judged.calibration = learn::calibrate(&fitted, model);
    match learn::reliability(&held, &judged) {
        Some(reliability) => format!(
            " (fitted without the newest history, on its {} candidates it gave {:.1}% on average where {:.1}% took part; calibration error {:.1} points)",
            reliability.candidates,
            reliability.predicted * 100.0,
            reliability.observed * 100.0,
            reliability.error * 100.0
        ),
        None => String::new(),
    }
}

/// Fits a model of `kind` on `queries` and decides what serves: the fit when it ranks held-back
/// history better than `incumbent`, else `incumbent` (with the reason when it is the default
/// and history is too short). `what` says what a query is, for the outcome.
fn choose(
    kind: RankingKind,
    features: &[&'static str],
    queries: &[Query],
    incumbent: Arc<RankingModel>,
    fitted_at: Millis,
    what: &str,
) -> (Arc<RankingModel>, String) {
    match learn::fit(kind, features, queries, &incumbent, fitted_at) {
        Ok(mut model) => {
            let ModelOrigin::Learned(training) = &model.origin else {
                unreachable!("a fit is learned");
            };
            if training.is_better() {
                let outcome = format!(
                    "learned from {} queries over {} splits (held-back MRR {:.3} against {:.3} for the model it replaced, {:.1} standard errors better)",
                    training.queries,
                    training.splits,
                    training.validated,
                    training.replaced,
                    training.gain_in_standard_errors
                );
                model.version = incumbent.version + 1;
                (Arc::new(model), outcome)
            } else {
                let outcome = format!(
                    "kept the serving model (a fit on {} queries ranked held-back history at MRR {:.3} against its {:.3}: {:.1} standard errors, short of the {} it takes to replace it)",
                    training.queries,
                    training.validated,
                    training.replaced,
                    training.gain_in_standard_errors,
                    learn::MIN_GAIN_IN_STANDARD_ERRORS
                );
                (incumbent, outcome)
            }
        }
        Err(FitError::TooLittle { queries, needed }) => {
            let reason = format!(
                "too little history to learn from ({queries} {what}; at least {needed} needed): the default applies"
            );
            if incumbent.is_learned() {
                return (incumbent, reason);
            }
            let mut model = (*incumbent).clone();
            model.origin = ModelOrigin::Default {
                reason: reason.clone(),
            };
            (Arc::new(model), reason)
        }
        Err(error) => (incumbent, format!("kept the serving model: {error}")),
    }
}
