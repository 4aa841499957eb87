//! The engine: keeps the corpus index and conversation activity current as records arrive, and
//! answers the strategy questions over them, each answer with its evidence.
//!
//! It holds no text of its own beyond term statistics; callers pass the text of the few
//! conversations they want explained, which keeps memory proportional to the vocabulary and
//! the number of conversations rather than to the words written.

pub mod assets;
pub mod index;
pub mod insights;
pub mod learn;
pub mod mix;
pub mod model;
pub mod people;
pub mod plan;
pub mod prospects;
pub mod semantic;

mod audit;
mod explain;
mod feedback;
#[cfg(test)]
mod moved_posts;
mod rank;
mod recommend;
pub mod standing;
mod words;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::{Conversation, Millis, Person, Post, RecordKey};
use crate::strategy::{FacetKind, Strategy};
use crate::text::{Analyzer, Language, detect, language_of};
use index::{CorpusIndex, Slot, TITLE_BOOST, TermBag};
use model::{ModelSettings, StrategyModel, score_all, score_bag};
use people::{People, PeopleSettings, Role};

pub use audit::{Audit, FacetCoverage};
pub use explain::{
    AnalyzedPart, CommonWords, Distinctive, Evidence, Explainer, MatchedTerm, TextPart,
};
pub use rank::{Engagement, EngagementSettings, StrategicConversation};
pub use recommend::{
    DISCUSSION_FEATURES, DiscussionSuggestion, FacetConvergence, FacetShare,
    default_discussion_model,
};

/// How a conversation connects to the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionClass {
    /// Its best facet is an advantage, an expertise or a key message: where the organisation
    /// competes.
    CompetitiveArea,
    /// Its best facet is a job customers hire the organisation for.
    CustomerJob,
    /// It is about the product category broadly, or only weakly about any facet.
    CategoryUsage,
    /// Nothing in it connects to the strategy, or it is about an excluded topic.
    OffStrategy,
}

/// Relevance at or above which a conversation counts as connected to a facet.
pub const CONNECTED: f32 = 0.4;
/// Relevance below which nothing connects.
pub const WEAK: f32 = 0.2;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacetScore {
    pub facet_id: String,
    pub kind: FacetKind,
    pub relevance: f32,
    pub raw: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConversationScore {
    pub facets: Vec<FacetScore>,
    pub overall: f32,
    pub class: ConnectionClass,
    /// Exclusions this text matched, with their relevance.
    pub excluded: Vec<(String, f32)>,
}

/// What the engine remembers of a conversation besides its terms: enough to judge engagement.
#[derive(Debug, Clone, Default)]
struct Activity {
    open: bool,
    platform: Option<crate::domain::PlatformKind>,
    author: Option<String>,
    created_at: Option<Millis>,
    last_activity_at: Option<Millis>,
    posts: u32,
    /// Creation times of posts, to count recent activity.
    post_times: Vec<Millis>,
    /// Authors of posts, each with how many posts they have here (a post may move away).
    participants: HashMap<String, u32>,
    replies_by_others: u32,
    /// The latest time the conversation record itself gave (created or last active), so that
    /// the activity time can be worked out again when a post leaves.
    conversation_time: Option<Millis>,
    /// The language of the conversation's title and opening text, once the record arrived.
    language: Option<Language>,
    /// The languages of its posts, each with how many are written in it.
    post_languages: Vec<(Language, u32)>,
}

/// How much of a workspace is written in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageCount {
    pub language: Language,
    /// Conversations whose title and opening text are written in it.
    pub conversations: usize,
    /// Posts written in it.
    pub posts: usize,
}

/// Counts one more (`change` 1) or one fewer (-1) post in `language`.
fn count_post_language(counts: &mut Vec<(Language, u32)>, language: Language, change: i32) {
    match counts.iter().position(|(counted, _)| *counted == language) {
        Some(at) => {
            counts[at].1 = counts[at].1.saturating_add_signed(change);
            if counts[at].1 == 0 {
                counts.swap_remove(at);
            }
        }
        None if change > 0 => counts.push((language, change.unsigned_abs())),
        None => {}
    }
}

#[derive(Debug, Default)]
pub struct Engine {
    analyzer: Analyzer,
    index: CorpusIndex,
    activity: HashMap<RecordKey, Activity>,
    settings: ModelSettings,
    strategy: Option<(u32, Strategy)>,
    model: Option<Arc<StrategyModel>>,
    people: People,
    /// The most common surface form of each stem, to speak of terms in plain words.
    surfaces: HashMap<String, String>,
    /// Per-facet calibration of people's convergence, keyed by what it was computed against.
    people_calibration: std::sync::Mutex<Option<PeopleCalibrationKey>>,
    /// Counts changes to the corpus; caches computed at one generation are stale at the next.
    generation: u64,
    /// The generations that only brought embeddings: records did not change in them.
    embedding_generations: u64,
    /// People who asked to be forgotten: what arrives of them is dropped or blanked.
    forgotten: HashSet<RecordKey>,
    /// Pairs of records whose merge was undone: identity resolution must not merge them again.
    unmerged: HashSet<(RecordKey, RecordKey)>,
    /// Where people stand in each conversation as of another moment, per (conversation,
    /// moment), for the generation each was judged at.
    standing_cache: std::sync::Mutex<HashMap<StandingKey, Arc<standing::Judgment>>>,
    /// Each person's insight of the present, kept ahead of CRM syncs (see `insights`).
    insights: std::sync::RwLock<insights::InsightIndex>,
    /// Where people stand in each open conversation now, kept ahead by `refresh_standing`.
    standing: std::sync::Mutex<standing::StandingIndex>,
    /// How old a judgment of the present may be, once the corpus moved on, before a request
    /// judges the conversation again itself.
    standing_max_age: std::time::Duration,
    /// Conversation embeddings, while the semantic tier is on.
    semantic: semantic::SemanticIndex,
    /// Asset embeddings, while the semantic tier is on (see `assets`).
    asset_semantic: semantic::SemanticIndex,
    semantic_settings: semantic::SemanticSettings,
    /// How the conversations spread over the facets, at the generation it was computed.
    facet_shares_cache:
        std::sync::Mutex<Option<(FacetSharesKey, std::time::Instant, Vec<FacetShare>)>>,
    /// The asset collection, indexed apart from conversations (see `assets`).
    assets: assets::AssetIndex,
    /// The compiled model's queries as term ids, for the vocabulary they were resolved in.
    resolved_queries: std::sync::Mutex<Option<Arc<ResolvedQueries>>>,
    /// Each facet's sentence embedding, for the strategy version they embed (see
    /// `set_facet_vectors`), while the semantic tier is on.
    facet_vectors: Option<(u32, Vec<Vec<f32>>)>,
    /// Per facet, where its cosine similarity to the embedded conversations has its median and
    /// its 95th percentile, for the count of embedded conversations it was read at.
    facet_similarity_scale: std::sync::Mutex<Option<(usize, FacetScales)>>,
    /// The model that ranks discussions for a person; the default while `None`.
    discussion_model: Option<Arc<learn::RankingModel>>,
    /// Feedback on suggestions: engagements and dismissals (see `feedback`).
    feedback: feedback::FeedbackState,
    /// The community's common words, for the generation they were learned at (see `words`).
    common_words: std::sync::Mutex<Option<(u64, std::time::Instant, Arc<CommonWords>)>>,
}

/// A model's queries resolved to term ids (see `Engine::resolved_queries`). Holding the model
/// keeps its address from being reused while the resolution is cached.
#[derive(Debug)]
struct ResolvedQueries {
    model: Arc<StrategyModel>,
    vocabulary: usize,
    /// Every term of the queries below once, in id order: one pass over a document's terms
    /// (also in id order) finds what all the queries need of it.
    terms: Vec<index::TermId>,
    /// Each facet's query as (position in `terms`, weight), in the query's order.
    facets: Vec<Vec<ResolvedTerm>>,
    exclusions: Vec<Vec<ResolvedTerm>>,
    /// Raw scores of stored conversations (facets, then exclusions) by slot, for the corpus
    /// generation they were computed at: idf and lengths move with every change, and slots
    /// change hands only in a change. A suggestion weighs the strategy of every conversation it
    /// considers, and the same conversations come up for many people.
    raws: std::sync::Mutex<KeptRaws>,
}

type ResolvedTerm = (usize, f32);
/// Raw scores by slot, and the generation they were computed at.
type KeptRaws = (u64, HashMap<Slot, Arc<[f32]>>);

impl ResolvedQueries {
    /// The raw scores of the document at `slot` kept at `generation`, if any.
    fn raws_at(&self, generation: u64, slot: Slot) -> Option<Arc<[f32]>> {
        let raws = self.raws.lock().ok()?;
        (raws.0 == generation)
            .then(|| raws.1.get(&slot).cloned())
            .flatten()
    }

    /// Keeps the raw scores of a document for `generation`, forgetting those of earlier ones.
    fn keep_raws(&self, generation: u64, slot: Slot, scores: Arc<[f32]>) {
        if let Ok(mut raws) = self.raws.lock() {
            if raws.0 != generation {
                *raws = (generation, HashMap::new());
            }
            raws.1.insert(slot, scores);
        }
    }
}

type StandingKey = (RecordKey, Millis);
/// Per facet, the median and 95th percentile of its cosine similarity to the conversations.
type FacetScales = Arc<Vec<(f32, f32)>>;
/// The corpus generation and the compiled model (by address) facet shares were computed at.
type FacetSharesKey = (u64, usize);

type PeopleCalibrationKey = ((u32, usize, usize), std::time::Instant, Vec<f32>);

impl Engine {
    pub fn new(settings: ModelSettings) -> Self {
        Self::with_people(settings, PeopleSettings::default())
    }

    pub fn with_people(settings: ModelSettings, people: PeopleSettings) -> Self {
        Self {
            settings,
            people: People::new(people),
            ..Self::default()
        }
    }

    pub fn people(&self) -> &People {
        &self.people
    }

    /// Turns the semantic tier on for a model's vectors; call before the corpus is loaded.
    pub fn enable_semantic(
        &mut self,
        model_id: &str,
        dimension: usize,
        settings: semantic::SemanticSettings,
    ) {
        self.semantic.enable(model_id, dimension);
        self.asset_semantic.enable(model_id, dimension);
        self.semantic_settings = settings;
    }

    pub fn semantic(&self) -> &semantic::SemanticIndex {
        &self.semantic
    }

    /// Takes conversation vectors computed by the service; returns how many were current.
    /// Similar-conversation lists change, so cached standings are dropped.
    pub fn insert_embeddings(&mut self, embeddings: Vec<semantic::Embedding>) -> usize {
        let mut taken = 0;
        for embedding in embeddings {
            taken += usize::from(self.semantic.insert(embedding));
        }
        if taken > 0 {
            self.generation += 1;
            self.embedding_generations += 1;
        }
        taken
    }

    /// A stem in plain words: the first word seen that stems to it.
    pub fn surface<'a>(&'a self, stem: &'a str) -> &'a str {
        self.surfaces.get(stem).map_or(stem, String::as_str)
    }

    fn note_surfaces(&mut self, text: &str, tokens: &[crate::text::Token]) {
        for token in tokens {
            if !self.surfaces.contains_key(&*token.stem) {
                let word = text[token.span.clone()].to_lowercase();
                self.surfaces.insert(token.stem.to_string(), word);
            }
        }
    }

    /// Installs the merges of a workspace, before any record arrives.
    pub fn set_merges(&mut self, merges: &[crate::domain::Merge]) {
        for merge in merges {
            if merge.undone_at.is_some() {
                for other in &merge.others {
                    self.unmerged.insert(ordered_pair(&merge.target, other));
                }
                continue;
            }
            let target = self
                .people
                .canonical(&merge.target)
                .cloned()
                .unwrap_or_else(|| merge.target.clone());
            for other in &merge.others {
                if other != &target {
                    self.people.alias(other, &target);
                }
            }
        }
    }

    /// Whether a merge of these two records was undone once.
    pub fn was_unmerged(&self, a: &RecordKey, b: &RecordKey) -> bool {
        self.unmerged.contains(&ordered_pair(a, b))
    }

    pub fn set_forgotten(&mut self, forgotten: Vec<RecordKey>) {
        self.forgotten = forgotten.into_iter().collect();
    }

    pub fn forgotten(&self) -> &HashSet<RecordKey> {
        &self.forgotten
    }

    /// Takes in a new or changed person record; `previous` is the stored version it replaces.
    pub fn upsert_person(&mut self, person: &Person, previous: Option<&Person>) {
        self.generation += 1;
        let previous_keys = previous.map(people::lookup_keys).unwrap_or_default();
        self.people
            .index_lookup(&person.key, &previous_keys, &people::lookup_keys(person));
        let mut bag = TermBag::default();
        let tokens = self.analyzer.tokens(&person.bio);
        bag.add_tokens(&tokens, 1.0);
        self.note_surfaces(&person.bio, &tokens);
        self.people.upsert_person(&person.key, person.member, bag);
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn index(&self) -> &CorpusIndex {
        &self.index
    }

    pub fn conversation_count(&self) -> usize {
        self.activity.len()
    }

    /// The languages the workspace's conversations and posts are written in, most used first.
    pub fn languages(&self) -> Vec<LanguageCount> {
        let mut counts: HashMap<Language, LanguageCount> = HashMap::new();
        fn entry(
            counts: &mut HashMap<Language, LanguageCount>,
            language: Language,
        ) -> &mut LanguageCount {
            counts.entry(language).or_insert_with(|| LanguageCount {
                language,
                conversations: 0,
                posts: 0,
            })
        }
        for activity in self.activity.values() {
            if let Some(language) = activity.language {
                entry(&mut counts, language).conversations += 1;
            }
            for (language, posts) in &activity.post_languages {
                entry(&mut counts, *language).posts += *posts as usize;
            }
        }
        let mut counts: Vec<LanguageCount> = counts.into_values().collect();
        counts.sort_by(|a, b| {
            (b.conversations + b.posts)
                .cmp(&(a.conversations + a.posts))
                .then(a.language.cmp(&b.language))
        });
        counts
    }

    fn conversation_bag(&self, conversation: &Conversation) -> TermBag {
        let mut bag = TermBag::default();
        bag.add_tokens(&self.analyzer.tokens(&conversation.title), TITLE_BOOST);
        bag.add_tokens(&self.analyzer.tokens(&conversation.body), 1.0);
        bag
    }

    fn post_bag(&self, post: &Post) -> TermBag {
        let mut bag = TermBag::default();
        bag.add_tokens(&self.analyzer.tokens(&post.text), 1.0);
        bag
    }

    /// The terms of a free text, as a conversation's would be.
    pub fn text_bag(&self, title: &str, body: &str) -> TermBag {
        let mut bag = TermBag::default();
        bag.add_tokens(&self.analyzer.tokens(title), TITLE_BOOST);
        bag.add_tokens(&self.analyzer.tokens(body), 1.0);
        bag
    }

    /// Starts a bulk load (all of a stored corpus, before any question): the conversation and
    /// profile indexes stop keeping postings, which `finish_load` then builds in one pass.
    /// Nothing may score or recommend in between; records go in as usual.
    pub fn begin_load(&mut self) {
        self.index.defer_postings();
        self.people.defer_postings();
    }

    /// Ends a bulk load begun with `begin_load`.
    pub fn finish_load(&mut self) {
        self.index.build_postings();
        self.people.build_postings();
    }

    /// Takes in a new or changed conversation; `previous` is the stored version it replaces.
    pub fn upsert_conversation(
        &mut self,
        conversation: &Conversation,
        previous: Option<&Conversation>,
    ) {
        self.generation += 1;
        self.semantic.note(conversation);
        // Tokenized once: the same tokens make the terms and the surface forms.
        let title_tokens = self.analyzer.tokens(&conversation.title);
        let body_tokens = self.analyzer.tokens(&conversation.body);
        let mut added = TermBag::default();
        added.add_tokens(&title_tokens, TITLE_BOOST);
        added.add_tokens(&body_tokens, 1.0);
        let removed = previous.map(|previous| self.conversation_bag(previous));
        self.index
            .apply(&conversation.key, removed.as_ref(), Some(&added));
        self.note_surfaces(&conversation.title, &title_tokens);
        self.note_surfaces(&conversation.body, &body_tokens);
        let author = author_key(&conversation.key, conversation.author.as_deref());
        let previous_author =
            previous.and_then(|previous| author_key(&previous.key, previous.author.as_deref()));
        self.people.record(
            &conversation.key,
            &conversation.key.external_id,
            Role::Opened,
            author.as_ref(),
            conversation.created_at,
            &added,
            previous.zip(removed.as_ref()).map(|(previous, removed)| {
                (
                    &conversation.key,
                    previous_author.as_ref(),
                    removed,
                    previous.created_at,
                )
            }),
        );
        let activity = self.activity.entry(conversation.key.clone()).or_default();
        activity.conversation_time = max_time(
            max_time(activity.conversation_time, conversation.last_activity_at),
            conversation.created_at,
        );
        activity.platform = conversation.platform;
        activity.open = conversation.open;
        activity.language = Some(language_of(&conversation.title, &conversation.body));
        activity.author = conversation.author.clone();
        activity.created_at = conversation.created_at;
        activity.last_activity_at = max_time(
            max_time(activity.last_activity_at, conversation.last_activity_at),
            conversation.created_at,
        );
        self.apply_pending_feedback(&conversation.key);
        self.refresh_model_if_stale();
    }

    /// Takes in a new or changed post; `previous` is the stored version it replaces. A new
    /// version may name another conversation (a post moved to another thread): the old version
    /// then leaves its own conversation, words, activity and participation alike.
    pub fn upsert_post(&mut self, post: &Post, previous: Option<&Post>) {
        self.generation += 1;
        let conversation_key = post_conversation(post);
        let previous_key = previous.map(post_conversation);
        let (detected, tokens) = self.analyzer.analyse(&post.text);
        let mut added = TermBag::default();
        added.add_tokens(&tokens, 1.0);
        let removed = previous.map(|previous| self.post_bag(previous));
        match &previous_key {
            Some(previous_key) if *previous_key != conversation_key => {
                self.index.apply(previous_key, removed.as_ref(), None);
                self.index.apply(&conversation_key, None, Some(&added));
            }
            _ => self
                .index
                .apply(&conversation_key, removed.as_ref(), Some(&added)),
        }
        self.note_surfaces(&post.text, &tokens);
        let role = match post.parent.as_deref() {
            None => Role::Replied,
            Some(parent) if parent == post.conversation => Role::Replied,
            Some(_) => Role::Commented,
        };
        let author = author_key(&post.key, post.author.as_deref());
        let previous_author =
            previous.and_then(|previous| author_key(&previous.key, previous.author.as_deref()));
        self.people.record(
            &conversation_key,
            &post.key.external_id,
            role,
            author.as_ref(),
            post.created_at,
            &added,
            previous
                .zip(previous_key.as_ref())
                .zip(removed.as_ref())
                .map(|((previous, previous_key), removed)| {
                    (
                        previous_key,
                        previous_author.as_ref(),
                        removed,
                        previous.created_at,
                    )
                }),
        );
        if let Some((previous, previous_key)) = previous.zip(previous_key.as_ref()) {
            self.forget_post_activity(previous_key, previous);
        }
        let activity = self.activity.entry(conversation_key).or_default();
        activity.posts += 1;
        count_post_language(&mut activity.post_languages, detected.language, 1);
        if let Some(created_at) = post.created_at {
            activity.post_times.push(created_at);
        }
        if let Some(author) = &post.author {
            *activity.participants.entry(author.clone()).or_default() += 1;
            if activity.author.as_ref() != Some(author) {
                activity.replies_by_others += 1;
            }
        }
        activity.last_activity_at = max_time(activity.last_activity_at, post.created_at);
        self.refresh_model_if_stale();
    }

    /// Takes a post's stored version out of its conversation's activity, before its new
    /// version (in the same conversation or another) is counted.
    fn forget_post_activity(&mut self, conversation: &RecordKey, previous: &Post) {
        let Some(activity) = self.activity.get_mut(conversation) else {
            return;
        };
        activity.posts = activity.posts.saturating_sub(1);
        count_post_language(
            &mut activity.post_languages,
            detect(&previous.text).language,
            -1,
        );
        if let Some(created_at) = previous.created_at
            && let Some(index) = activity
                .post_times
                .iter()
                .position(|time| *time == created_at)
        {
            activity.post_times.swap_remove(index);
        }
        if let Some(author) = &previous.author {
            if let Some(count) = activity.participants.get_mut(author) {
                *count -= 1;
                if *count == 0 {
                    activity.participants.remove(author);
                }
            }
            if activity.author.as_ref() != Some(author) {
                activity.replies_by_others = activity.replies_by_others.saturating_sub(1);
            }
        }
        // The latest time of what is still there: the conversation's own and its posts'.
        activity.last_activity_at = activity
            .post_times
            .iter()
            .copied()
            .fold(activity.conversation_time, |latest, time| {
                max_time(latest, Some(time))
            });
    }

    /// Forgets a conversation and everything indexed for it.
    pub fn remove_conversation(&mut self, key: &RecordKey) {
        self.generation += 1;
        self.index.remove(key);
        self.semantic.remove(key);
        self.activity.remove(key);
        self.people.remove_conversation(key);
        self.suspend_feedback(key);
    }

    /// Installs a strategy version; scoring uses it from now on.
    pub fn set_strategy(&mut self, version: u32, strategy: Strategy) {
        self.generation += 1;
        self.strategy = Some((version, strategy));
        self.model = None;
        self.refresh_model_if_stale();
    }

    /// Takes the sentence embeddings of the facets of strategy `version`, in the strategy's
    /// order (the service embeds each facet's name, description, keywords and examples). While
    /// they match the strategy in use, a conversation's relevance to a facet fuses similarity by
    /// words with similarity by meaning (see `semantic_relevances`).
    pub fn set_facet_vectors(&mut self, version: u32, vectors: Vec<Vec<f32>>) {
        self.generation += 1;
        self.facet_vectors = Some((version, vectors));
        if let Ok(mut scale) = self.facet_similarity_scale.lock() {
            *scale = None;
        }
    }

    /// The facets' vectors when they embed the strategy in use.
    fn current_facet_vectors(&self) -> Option<&[Vec<f32>]> {
        let (version, vectors) = self.facet_vectors.as_ref()?;
        let (current, strategy) = self.strategy.as_ref()?;
        (version == current && vectors.len() == strategy.facets.len()).then_some(vectors.as_slice())
    }

    /// A conversation's relevance to each facet by meaning, in [0, 1): the cosine similarity of
    /// its vector and the facet's, read against how similar the facet is to the community's
    /// conversations at large: 0.5 at the facet's 95th percentile (where relevance by words
    /// reads 0.5 too), 0.05 at its median. `None` without vectors for both.
    fn semantic_relevances(&self, key: &RecordKey) -> Option<Vec<f32>> {
        let facets = self.current_facet_vectors()?;
        let vector = self.semantic.vector(key)?;
        let scales = self.facet_similarity_scales(facets)?;
        Some(
            facets
                .iter()
                .zip(scales.iter())
                .map(|(facet, (median, high))| {
                    let cosine = crate::semantic::dot(vector, facet);
                    let spread = ((high - median) / 19f32.ln()).max(1e-4);
                    1.0 / (1.0 + (-(cosine - high) / spread).exp())
                })
                .collect(),
        )
    }

    /// Per facet, the median and 95th percentile of its cosine similarity to every embedded
    /// conversation; read again when the count of embedded conversations changed. `None` until
    /// enough conversations are embedded to read a distribution.
    fn facet_similarity_scales(&self, facets: &[Vec<f32>]) -> Option<FacetScales> {
        const ENOUGH: usize = 20;
        let embedded = self.semantic.embedded_count();
        if embedded < ENOUGH {
            return None;
        }
        if let Ok(cache) = self.facet_similarity_scale.lock()
            && let Some((count, scales)) = cache.as_ref()
            && *count == embedded
        {
            return Some(Arc::clone(scales));
        }
        let mut scales = Vec::with_capacity(facets.len());
        for facet in facets {
            let mut cosines = self.semantic.similarities(facet);
            if cosines.len() < ENOUGH {
                return None;
            }
            cosines.sort_by(f32::total_cmp);
            let at = |share: f32| {
                let position = ((cosines.len() as f32) * share) as usize;
                cosines[position.min(cosines.len() - 1)]
            };
            scales.push((at(0.5), at(0.95)));
        }
        let scales = Arc::new(scales);
        if let Ok(mut cache) = self.facet_similarity_scale.lock() {
            *cache = Some((embedded, Arc::clone(&scales)));
        }
        Some(scales)
    }

    pub fn strategy(&self) -> Option<(u32, &Strategy)> {
        self.strategy
            .as_ref()
            .map(|(version, strategy)| (*version, strategy))
    }

    fn refresh_model_if_stale(&mut self) {
        let Some((version, strategy)) = &self.strategy else {
            return;
        };
        let stale = self
            .model
            .as_ref()
            .is_none_or(|model| model.is_stale(&self.index));
        if stale {
            self.model = Some(Arc::new(StrategyModel::compile(
                *version,
                strategy,
                &self.analyzer,
                &self.index,
                &self.settings,
            )));
        }
    }

    /// Recompiles the model against the corpus as it is now (after a bulk load, say).
    pub fn recompile(&mut self) {
        self.model = None;
        self.refresh_model_if_stale();
    }

    /// The compiled strategy, or `None` before any strategy was set.
    pub fn model(&self) -> Option<Arc<StrategyModel>> {
        self.model.clone()
    }

    fn score_from_raw(
        &self,
        model: &StrategyModel,
        raw: impl Fn(&model::Query) -> f32,
    ) -> ConversationScore {
        let facet_raw: Vec<f32> = model.facets.iter().map(|facet| raw(&facet.query)).collect();
        let exclusion_raw: Vec<f32> = model
            .exclusions
            .iter()
            .map(|(_, query)| raw(query))
            .collect();
        self.score_from_raws(model, &facet_raw, &exclusion_raw)
    }

    /// A score from the raw scores of each facet's and each exclusion's query.
    fn score_from_raws(
        &self,
        model: &StrategyModel,
        facet_raw: &[f32],
        exclusion_raw: &[f32],
    ) -> ConversationScore {
        let facets: Vec<FacetScore> = model
            .facets
            .iter()
            .zip(facet_raw)
            .enumerate()
            .map(|(index, (facet, raw_score))| {
                let raw_score = *raw_score;
                FacetScore {
                    facet_id: facet.id.clone(),
                    kind: facet.kind,
                    relevance: model.relevance(index, raw_score),
                    raw: raw_score,
                }
            })
            .collect();
        let excluded: Vec<(String, f32)> = model
            .exclusions
            .iter()
            .zip(exclusion_raw)
            .filter_map(|((text, query), raw_score)| {
                let raw_score = *raw_score;
                let relevance = raw_score / (raw_score + exclusion_scale(query));
                (relevance >= CONNECTED).then(|| (text.clone(), relevance))
            })
            .collect();
        let overall = overall_relevance(model, &facets);
        let class = classify(model, &facets, overall, &excluded);
        ConversationScore {
            facets,
            overall,
            class,
            excluded,
        }
    }

    /// Scores a stored conversation.
    pub fn score_conversation(&self, key: &RecordKey) -> Option<ConversationScore> {
        let model = self.model.as_ref()?;
        let slot = self.index.slot(key)?;
        let resolved = self.resolved_queries(model);
        let raws = resolved.raws_at(self.generation, slot).unwrap_or_else(|| {
            let raws = self.raw_scores(&resolved, slot);
            resolved.keep_raws(self.generation, slot, Arc::clone(&raws));
            raws
        });
        let (facet_raw, exclusion_raw) = raws.split_at(resolved.facets.len());
        let mut score = self.score_from_raws(model, facet_raw, exclusion_raw);
        if let Some(semantic) = self.semantic_relevances(key) {
            let weight = self.semantic_settings.weight.clamp(0.0, 1.0);
            for (facet, by_meaning) in score.facets.iter_mut().zip(semantic) {
                facet.relevance = (1.0 - weight) * facet.relevance + weight * by_meaning;
            }
            score.overall = overall_relevance(model, &score.facets);
            score.class = classify(model, &score.facets, score.overall, &score.excluded);
        }
        Some(score)
    }

    /// The raw scores of the document at `slot` for each facet query, then each exclusion.
    fn raw_scores(&self, resolved: &ResolvedQueries, slot: Slot) -> Arc<[f32]> {
        // The document's frequency of every query term, by one merge of two id-ordered lists.
        let mut frequencies = vec![0.0f32; resolved.terms.len()];
        let document = self.index.doc_terms(slot);
        let mut from = 0;
        for (position, term) in resolved.terms.iter().enumerate() {
            // Galloping from the last match: the next term is usually near.
            from += index::gallop(&document[from..], *term);
            match document.get(from) {
                Some((id, tf)) if id == term => frequencies[position] = *tf,
                Some(_) => {}
                None => break,
            }
        }
        let length = self.index.doc_length(slot);
        // Summed in the query's order from zero, as `score_all` sums a query over the corpus;
        // absent terms add nothing and are skipped.
        let raw = |query: &[ResolvedTerm]| -> f32 {
            query
                .iter()
                .filter(|(position, _)| frequencies[*position] > 0.0)
                .fold(0.0f32, |sum, (position, weight)| {
                    sum + weight
                        * self.index.idf(resolved.terms[*position])
                        * self.index.bm25_tf(frequencies[*position], length)
                })
        };
        resolved
            .facets
            .iter()
            .chain(&resolved.exclusions)
            .map(|query| raw(query))
            .collect()
    }

    /// The model's facet and exclusion queries as term ids of the index (terms the index does
    /// not know left out), resolved once per model and vocabulary: scoring a stored
    /// conversation then looks no word up by its text.
    fn resolved_queries(&self, model: &Arc<StrategyModel>) -> Arc<ResolvedQueries> {
        let vocabulary = self.index.vocabulary_size();
        if let Ok(cache) = self.resolved_queries.lock()
            && let Some(resolved) = cache.as_ref()
            && Arc::ptr_eq(&resolved.model, model)
            && resolved.vocabulary == vocabulary
        {
            return Arc::clone(resolved);
        }
        let queries: Vec<&model::Query> = model
            .facets
            .iter()
            .map(|facet| &facet.query)
            .chain(model.exclusions.iter().map(|(_, query)| query))
            .collect();
        let mut terms: Vec<index::TermId> = queries
            .iter()
            .flat_map(|query| query.terms.iter())
            .filter_map(|term| self.index.term_id(&term.term))
            .collect();
        terms.sort_unstable();
        terms.dedup();
        let resolve = |query: &model::Query| -> Vec<ResolvedTerm> {
            query
                .terms
                .iter()
                .filter_map(|term| {
                    let id = self.index.term_id(&term.term)?;
                    Some((terms.binary_search(&id).ok()?, term.weight))
                })
                .collect()
        };
        let (facets, exclusions) = queries.split_at(model.facets.len());
        let resolved = Arc::new(ResolvedQueries {
            model: Arc::clone(model),
            vocabulary,
            facets: facets.iter().map(|query| resolve(query)).collect(),
            exclusions: exclusions.iter().map(|query| resolve(query)).collect(),
            terms,
            raws: std::sync::Mutex::default(),
        });
        if let Ok(mut cache) = self.resolved_queries.lock() {
            *cache = Some(Arc::clone(&resolved));
        }
        resolved
    }

    /// Scores a text that is not stored, against the corpus statistics.
    pub fn score_text(&self, title: &str, body: &str) -> Option<ConversationScore> {
        let model = self.model.as_ref()?;
        let mut bag = TermBag::default();
        bag.add_tokens(&self.analyzer.tokens(title), TITLE_BOOST);
        bag.add_tokens(&self.analyzer.tokens(body), 1.0);
        Some(self.score_from_raw(model, |query| score_bag(query, &self.index, &bag)))
    }

    /// Every indexed conversation that matches the facet, best first, with raw scores.
    pub fn rank_facet(&self, facet_id: &str) -> Option<Vec<(RecordKey, f32)>> {
        let model = self.model.as_ref()?;
        let facet = model.facets.iter().find(|facet| facet.id == facet_id)?;
        let mut ranked: Vec<(RecordKey, f32)> = score_all(&facet.query, &self.index)
            .into_iter()
            .filter_map(|(slot, score)| Some((self.index.key(slot)?.clone(), score)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Some(ranked)
    }

    /// Audits a community mission statement against the current strategy.
    pub fn audit(&self, mission: &str) -> Option<Audit> {
        let model = self.model.as_ref()?;
        Some(audit::audit(&self.analyzer, &self.index, model, mission))
    }

    /// Text parts analyzed for explaining, once for every explanation that reads them.
    pub fn analyze<'a>(&self, parts: &[TextPart<'a>]) -> Vec<AnalyzedPart<'a>> {
        explain::analyze(&self.analyzer, parts)
    }

    /// Evidence for one facet over the given parts of a text.
    pub fn explain(&self, facet_id: &str, parts: &[AnalyzedPart<'_>]) -> Option<Evidence> {
        Some(self.facet_explainer(facet_id)?.explain(parts))
    }

    /// A facet's query made ready to explain many texts; `None` without a strategy or when no
    /// facet has that id.
    pub fn facet_explainer(&self, facet_id: &str) -> Option<Explainer<'_>> {
        let model = self.model.as_ref()?;
        let facet = model.facets.iter().find(|facet| facet.id == facet_id)?;
        Some(
            Explainer::for_query(&self.index, &facet.id, &facet.query, &facet.base)
                .with_common_words(self.common_words()),
        )
    }
}

/// The key of the conversation a post belongs to.
pub(crate) fn post_conversation(post: &Post) -> RecordKey {
    RecordKey::new(post.key.source.clone(), post.conversation.clone())
}

fn ordered_pair(a: &RecordKey, b: &RecordKey) -> (RecordKey, RecordKey) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// The person an author id names: authors are external ids in the record's own source.
pub(crate) fn author_key(record: &RecordKey, author: Option<&str>) -> Option<RecordKey> {
    author
        .filter(|author| !author.trim().is_empty())
        .map(|author| RecordKey::new(record.source.clone(), author))
}

fn max_time(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn exclusion_scale(query: &model::Query) -> f32 {
    let self_score: f32 = query.terms.iter().map(|term| term.weight).sum();
    (self_score * 0.5).max(1.0)
}

/// Overall strategic relevance: the best facet's relevance, scaled by the facet's weight against
/// the heaviest facet, lifted a little by further connected facets (a conversation that touches
/// several parts of the strategy matters more than one that touches one).
pub fn overall_relevance(model: &StrategyModel, facets: &[FacetScore]) -> f32 {
    let max_weight = model
        .facets
        .iter()
        .map(|facet| facet.weight)
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let mut weighted: Vec<f32> = facets
        .iter()
        .zip(&model.facets)
        .map(|(score, facet)| score.relevance * facet.weight / max_weight)
        .collect();
    weighted.sort_by(|a, b| b.total_cmp(a));
    let best = weighted.first().copied().unwrap_or(0.0);
    let second = weighted.get(1).copied().unwrap_or(0.0);
    (best + 0.25 * second * (1.0 - best)).clamp(0.0, 1.0)
}

fn classify(
    model: &StrategyModel,
    facets: &[FacetScore],
    overall: f32,
    excluded: &[(String, f32)],
) -> ConnectionClass {
    let strongest_exclusion = excluded
        .iter()
        .map(|(_, relevance)| *relevance)
        .fold(0.0, f32::max);
    if overall < WEAK || strongest_exclusion >= overall {
        return ConnectionClass::OffStrategy;
    }
    let best = facets
        .iter()
        .zip(&model.facets)
        .max_by(|a, b| (a.0.relevance * a.1.weight).total_cmp(&(b.0.relevance * b.1.weight)));
    let Some((best_score, _)) = best else {
        return ConnectionClass::OffStrategy;
    };
    if best_score.relevance < CONNECTED {
        return ConnectionClass::CategoryUsage;
    }
    match best_score.kind {
        FacetKind::Advantage | FacetKind::Expertise | FacetKind::Message => {
            ConnectionClass::CompetitiveArea
        }
        FacetKind::Job => ConnectionClass::CustomerJob,
        FacetKind::Category => ConnectionClass::CategoryUsage,
    }
}
