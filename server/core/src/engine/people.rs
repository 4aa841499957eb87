//! People: who wrote what, where, and when; their interest profiles; and the questions the
//! recommendations ask of them ("who knows about this?", "what should this person join?").
//!
//! A person's interest profile is the text they wrote (conversations they opened, replies,
//! comments) and their bio, as one document in an index of its own, decayed with age. Decay
//! uses *forward* weights: an item written at time `t` is stored with weight
//! `2^((t - LANDMARK) / half_life)`, and a query made at time `now` multiplies every stored
//! weight by `2^((LANDMARK - now) / half_life)`. The product is the item's true decayed weight,
//! so profiles move in deltas as items arrive and never have to be re-aged.
//!
//! Expertise is judged two ways:
//! - *thread evidence*: the conversations most like the question, and who took part in them
//!   (document-centric expert finding; a reply counts more than a comment or the question), who
//!   replied there, and who replied there lately;
//! - *profile evidence*: the question against every person's whole profile.
//!
//! A third kind, activity (how much, how recently, in which roles), carries the fact that people
//! who were active stay active. How the three combine is the participant model's: named
//! features ([`PARTICIPANT_FEATURES`]) weighed as each community learned from its own history
//! (`engine::learn`), or by default fused by reciprocal rank.

use std::collections::{HashMap, HashSet};

use super::index::{CorpusIndex, K1, Slot, TermBag, TermId, is_pair_term};
use super::learn::{RankingKind, RankingModel};
use crate::domain::{Millis, RecordKey};

/// A fixed point in time the forward weights are relative to (2025-01-01T00:00:00Z). Any fixed
/// instant works; this one keeps weights within f32 range for data from the 1960s to the 2080s.
const LANDMARK: Millis = 1_735_689_600_000;
const DAY_MS: f64 = 86_400_000.0;

pub type PersonId = u32;

/// How someone took part in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Opened it: asked the question, wrote the post.
    Opened,
    /// Replied to the conversation itself: an answer, a comment on the post.
    Replied,
    /// Replied to someone else's reply.
    Commented,
    /// Took up a suggestion to join it, by feedback (`crate::feedback`): interest shown, not
    /// writing.
    Accepted,
}

impl Role {
    /// How much taking part this way says about knowing the topic.
    fn weight(self) -> f32 {
        match self {
            Role::Opened => 0.5,
            Role::Replied => 1.0,
            Role::Commented => 0.6,
            Role::Accepted => 0.5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Opened => "opened",
            Role::Replied => "replied",
            Role::Commented => "commented",
            Role::Accepted => "accepted",
        }
    }
}

/// Tunables of the people model. General defaults, held constant across communities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeopleSettings {
    /// Age, in days, at which an item counts half in a profile.
    pub half_life_days: f64,
    /// Conversations most like a question whose participants count as thread evidence.
    pub similar_conversations: usize,
    /// The `k` of reciprocal-rank fusion: how flat the fused ranking is.
    pub fusion_k: f32,
    /// Profile terms used to look for conversations that suit a person.
    pub profile_query_terms: usize,
    /// Conversations that suit a person's profile best, judged further by where the person
    /// stands among everyone who could join them.
    pub discussion_pool: usize,
    /// People kept per conversation when judging where a person stands in it. The standing
    /// index keeps each placement twice (by conversation and by person), so this sets most of its
    /// memory: 200 places a person among the best 1% of a community of 20,000.
    pub standing_depth: usize,
    /// The conversation's most distinctive words (by log weight times idf) that judge where people
    /// stand in it. Words only: profiles hold no word pairs, so a pair would take the place of a
    /// word without matching anyone; on the development dump, leaving pairs out moved Task B by
    /// +0.011 P@5, +0.010 R@10 and -0.025 MRR. A long thread has thousands of terms; its
    /// strongest carry the topic, and the cost of judging a conversation grows with the postings
    /// of every term kept. 128 judges at about half the cost of 256; on the development dump,
    /// Task B moved by +0.005 P@5, +0.016 R@10 and -0.017 MRR.
    pub standing_query_terms: usize,
    /// Postings a profile query walks over the whole corpus at most. A long profile of common
    /// words touches millions (every term is in a good share of a large community's threads);
    /// past this, the query first walks the terms that weigh most per posting (weight times
    /// idf over document frequency, so the commonest words are the ones left out), then scores
    /// the best `2 × pool` documents it found with every term of the profile. The pool's scores
    /// are then exact; only which documents reach the pool depends on the bound. In the engine
    /// bench at 100,000 conversations it took occasional members' p99 from 26 to 18 ms, and
    /// every suggestion the unbounded query gave was still given.
    pub profile_postings: usize,
}

impl Default for PeopleSettings {
    fn default() -> Self {
        Self {
            half_life_days: 180.0,
            similar_conversations: 50,
            fusion_k: 60.0,
            profile_query_terms: 300,
            discussion_pool: 200,
            standing_depth: 200,
            standing_query_terms: 128,
            profile_postings: 2_000_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Contribution {
    person: PersonId,
    role: Role,
    /// The post's external id; the conversation's own id for the opening.
    item: String,
    /// Forward weight of the time it was written.
    forward: f32,
    /// When it was written, when known.
    at: Option<Millis>,
}

#[derive(Debug, Clone, Default)]
struct PersonEntry {
    key: RecordKey,
    /// A person record was ingested (not only posts naming them as author).
    known: bool,
    member: bool,
    /// The bios of all their records together.
    bio: TermBag,
    /// Each record's bio and membership: a merged person has several.
    records: HashMap<RecordKey, (TermBag, bool)>,
    /// Forward weight at which the bio is in the profile: that of their latest activity.
    bio_forward: f32,
    /// Sum of forward weights of their contributions: decayed activity.
    activity: f64,
    contributions: u32,
    last_active: Option<Millis>,
    conversations: HashSet<RecordKey>,
    /// Each contribution's time and role, in no particular order: what the activity features
    /// are read from, as of any moment.
    history: Vec<(Option<Millis>, Role)>,
    /// Counts changes to what they wrote, their bios and their merges: what is derived from
    /// one person alone (see `engine::insights`) is stale once it moves.
    revision: u64,
}

/// A person suggested for a conversation, with what the suggestion rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantMatch {
    pub person: RecordKey,
    pub member: bool,
    /// With a learned model, the probability that they take part; with the default fusion,
    /// their score against the best placed person's.
    pub score: f32,
    /// Similar conversations they took part in, most similar first: (conversation, similarity
    /// in [0, 1], their role).
    pub similar: Vec<(RecordKey, f32, Role)>,
    /// Words of the question found in their profile, strongest first (stems).
    pub matched_terms: Vec<String>,
    pub contributions: u32,
    pub last_active: Option<Millis>,
    /// Decayed number of contributions as of the query time.
    pub recent_activity: f32,
}

/// A conversation that suits a person, with the words of their profile it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMatch {
    pub conversation: RecordKey,
    /// Similarity to the person's interests in [0, 1]: its BM25 score against their profile,
    /// relative to the score of a conversation that used every term of the profile as often as
    /// BM25 counts. It does not depend on which other conversations were considered.
    pub personal: f32,
    pub matched_terms: Vec<String>,
}

/// What is known of a person's activity.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonSummary {
    pub key: RecordKey,
    pub known: bool,
    pub member: bool,
    pub contributions: u32,
    pub conversations: usize,
    pub last_active: Option<Millis>,
    pub recent_activity: f32,
}

#[derive(Debug, Default, Clone)]
pub struct People {
    settings: PeopleSettings,
    profiles: CorpusIndex,
    entries: Vec<PersonEntry>,
    ids: HashMap<RecordKey, PersonId>,
    /// The keys merged into each person that has any, besides their own: `records_of` reads
    /// them here instead of walking every key.
    merged: HashMap<PersonId, Vec<RecordKey>>,
    /// Who took part in each conversation, and how.
    participation: HashMap<RecordKey, Vec<Contribution>>,
    /// The newest time seen: "now" for a corpus that stopped growing.
    clock: Option<Millis>,
    /// People by the keys a CRM knows them by.
    lookup: HashMap<LookupKey, Vec<RecordKey>>,
    /// Everyone by activity, for the activity evidence; emptied whenever activity changes.
    activity_order: ActivityOrder,
    /// The person of each profile slot, for the slot layout it was built at.
    profile_owners: ProfileOwners,
    /// The model that ranks people for a conversation; the default fusion while `None`.
    participant_model: Option<std::sync::Arc<RankingModel>>,
}

/// The person whose profile is at each slot of `profiles` (`PersonId::MAX` for a free slot),
/// at one `layout_version` of the profiles index and count of known keys: ranking people by profile then reads ids
/// instead of hashing every scored person's key.
#[derive(Debug, Default)]
struct ProfileOwners(std::sync::Mutex<Option<std::sync::Arc<OwnersAt>>>);

/// ((profiles layout version, known keys), the person of each slot).
type OwnersAt = ((u64, usize), Vec<PersonId>);

impl Clone for ProfileOwners {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Everyone ranked by activity as of one time.
#[derive(Debug)]
struct ActivityRanks {
    present: f32,
    by_activity: Vec<PersonId>,
    /// Each person's index in `by_activity`.
    position: Vec<usize>,
    /// How many have any activity (a prefix of `by_activity`).
    active: usize,
}

/// Everyone's activity features as of one time, by person id.
type ActivityRows = (Millis, std::sync::Arc<Vec<ActivityRow>>);

/// The caches of what is read from everyone's activity (the order by decayed activity, and
/// the activity features as of one moment); they start empty when cloned and are emptied
/// whenever anyone's activity changes.
#[derive(Debug, Default)]
struct ActivityOrder(
    std::sync::Mutex<Option<std::sync::Arc<ActivityRanks>>>,
    std::sync::Mutex<Option<ActivityRows>>,
);

impl Clone for ActivityOrder {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl ActivityOrder {
    fn lock(
        &self,
    ) -> std::sync::LockResult<std::sync::MutexGuard<'_, Option<std::sync::Arc<ActivityRanks>>>>
    {
        self.0.lock()
    }

    fn clear(&mut self) {
        if let Ok(cache) = self.0.get_mut() {
            *cache = None;
        }
        if let Ok(cache) = self.1.get_mut() {
            *cache = None;
        }
    }
}

/// A normalised way to find a person: what a CRM knows of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKey {
    EmailSha256(String),
    /// A handle without its leading '@', lowercased.
    Handle(String),
    /// A profile URL without scheme, "www." or trailing '/', lowercased.
    ProfileUrl(String),
    CrmId(String),
    /// A handle its platform gives to one account only (`Identity::handle_unique`):
    /// (platform, handle), both lowercased. Handles that are not unique are not indexed by
    /// platform: on one platform they are no evidence at all.
    UniqueHandle(String, String),
}

impl LookupKey {
    pub fn email_sha256(value: &str) -> Self {
        LookupKey::EmailSha256(value.trim().to_ascii_lowercase())
    }

    pub fn handle(value: &str) -> Self {
        LookupKey::Handle(value.trim().trim_start_matches('@').to_lowercase())
    }

    pub fn profile_url(value: &str) -> Self {
        let trimmed = value.trim();
        let without_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
        let without_www = without_scheme
            .strip_prefix("www.")
            .unwrap_or(without_scheme);
        LookupKey::ProfileUrl(without_www.trim_end_matches('/').to_lowercase())
    }

    pub fn crm_id(value: &str) -> Self {
        LookupKey::CrmId(value.trim().to_owned())
    }

    fn is_empty(&self) -> bool {
        match self {
            LookupKey::EmailSha256(value)
            | LookupKey::Handle(value)
            | LookupKey::ProfileUrl(value)
            | LookupKey::CrmId(value) => value.is_empty(),
            LookupKey::UniqueHandle(platform, handle) => platform.is_empty() || handle.is_empty(),
        }
    }
}

/// A platform's name as identities are compared by it.
pub fn platform_name(platform: &str) -> String {
    platform.trim().to_lowercase()
}

/// The lookup keys of a person record.
pub fn lookup_keys(person: &crate::domain::Person) -> Vec<LookupKey> {
    let mut keys = Vec::new();
    for identity in &person.identities {
        keys.push(LookupKey::email_sha256(&identity.email_sha256));
        keys.push(LookupKey::handle(&identity.handle));
        keys.push(LookupKey::profile_url(&identity.profile_url));
        if identity.handle_unique
            && let LookupKey::Handle(handle) = LookupKey::handle(&identity.handle)
        {
            keys.push(LookupKey::UniqueHandle(
                platform_name(&identity.platform),
                handle,
            ));
        }
    }
    keys.extend(person.crm_ids.iter().map(|id| LookupKey::crm_id(id)));
    keys.retain(|key| !key.is_empty());
    keys.sort();
    keys.dedup();
    keys
}

/// Drops one record of `contribution` from its author's history.
fn forget_contribution(entry: &mut PersonEntry, contribution: &Contribution) {
    if let Some(index) = entry
        .history
        .iter()
        .position(|(at, role)| *at == contribution.at && *role == contribution.role)
    {
        entry.history.swap_remove(index);
    }
}

fn max_time(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A text's terms as a profile holds them: its words, each weighted by `factor`. Profiles keep
/// no pair terms: phrases tell conversations apart, but in a person's profile they would double
/// the profiles' size (a quarter of the engine's memory at 10 % of full size) for little gain in
/// finding people — on the development dump, without them Task A P@1 went from .276 to .284 and
/// A' P@1 stayed .229, while B R@10 went from .181 to .161.
fn scaled(bag: &TermBag, factor: f32) -> TermBag {
    TermBag {
        counts: bag
            .counts
            .iter()
            .filter(|(term, _)| !is_pair_term(term))
            .map(|(term, count)| (term.clone(), count * factor))
            .collect(),
    }
}

/// The features a person is judged by when they could be brought into a conversation, in the
/// order of a [`ParticipantPool`] row and of the participant model's weights:
/// - per list (the question against their profile; the conversations most like it that they
///   took part in, weighted by role and age; the same conversations where they replied; and
///   where they replied lately, each reply weighted by `exp(-age / 30 days)`), the score's share
///   of the list's best and the reciprocal rank `1 / (k + rank + 1)` (scale-free, so that
///   questions with much evidence and with little are read alike);
/// - the reciprocal rank of their decayed activity among everyone;
/// - what they did up to the moment asked about: contributions, replies, comments and
///   conversations opened (log counts), contributions over the last 7, 30 and 90 days and
///   replies over the last 30 and 90 (exponentially decayed counts, log), days since they were
///   last active (log), and the share of their contributions that are replies.
pub const PARTICIPANT_FEATURES: [&str; PARTICIPANT_FEATURE_COUNT] = [
    "profile_share",
    "profile_rank",
    "similar_threads_share",
    "similar_threads_rank",
    "similar_replies_share",
    "similar_replies_rank",
    "recent_similar_replies_share",
    "recent_similar_replies_rank",
    "activity_rank",
    "contributions",
    "replies",
    "comments",
    "opened",
    "recent_7d",
    "recent_30d",
    "recent_90d",
    "replies_30d",
    "replies_90d",
    "days_since_active",
    "reply_share",
];
pub const PARTICIPANT_FEATURE_COUNT: usize = 20;
/// Features read from the evidence lists and the activity order, before the activity features.
const LIST_FEATURE_COUNT: usize = 9;
const ACTIVITY_FEATURE_COUNT: usize = 11;
type ActivityRow = [f32; ACTIVITY_FEATURE_COUNT];

/// The default participant model: the fusion of the profile, thread and activity lists by
/// reciprocal rank, each list counting once. It applies until a community has history enough to
/// learn its own.
pub fn default_participant_model() -> &'static RankingModel {
    static DEFAULT: std::sync::LazyLock<RankingModel> = std::sync::LazyLock::new(|| {
        let mut weights = [0.0f32; PARTICIPANT_FEATURE_COUNT];
        for feature in ["profile_rank", "similar_threads_rank", "activity_rank"] {
            if let Some(index) = PARTICIPANT_FEATURES
                .iter()
                .position(|name| *name == feature)
            {
                weights[index] = 1.0;
            }
        }
        RankingModel::fixed(
            RankingKind::Participants,
            &PARTICIPANT_FEATURES,
            &weights,
            "no model learned yet: reciprocal-rank fusion of profile, similar threads and activity",
        )
    });
    &DEFAULT
}

/// A person's activity features as of `now` (the last eleven of [`PARTICIPANT_FEATURES`]).
fn activity_row(history: &[(Option<Millis>, Role)], now: Millis) -> ActivityRow {
    // Replies, comments, openings and accepted suggestions; the last count only in the total.
    let mut counts = [0u32; 4];
    let mut decayed = [0.0f64; 5];
    let mut last: Option<Millis> = None;
    for (at, role) in history {
        if at.is_some_and(|at| at > now) {
            continue;
        }
        counts[match role {
            Role::Replied => 0,
            Role::Commented => 1,
            Role::Opened => 2,
            Role::Accepted => 3,
        }] += 1;
        let Some(at) = *at else {
            continue;
        };
        last = max_time(last, Some(at));
        let days = (now - at) as f64 / DAY_MS;
        decayed[0] += (-days / 7.0).exp();
        decayed[1] += (-days / 30.0).exp();
        decayed[2] += (-days / 90.0).exp();
        if *role == Role::Replied {
            decayed[3] += (-days / 30.0).exp();
            decayed[4] += (-days / 90.0).exp();
        }
    }
    let total = counts.iter().sum::<u32>();
    let log = |value: f64| value.ln_1p() as f32;
    [
        log(f64::from(total)),
        log(f64::from(counts[0])),
        log(f64::from(counts[1])),
        log(f64::from(counts[2])),
        log(decayed[0]),
        log(decayed[1]),
        log(decayed[2]),
        log(decayed[3]),
        log(decayed[4]),
        // Never active: as if last active ten years ago.
        log(last.map_or(3650.0, |last| ((now - last) as f64 / DAY_MS).max(0.0))),
        ((f64::from(counts[0]) + 1.0) / (f64::from(total) + 2.0)) as f32,
    ]
}

/// Everyone who could be brought into one conversation, each with their feature row.
#[derive(Debug, Default)]
pub(crate) struct ParticipantPool {
    pub ids: Vec<PersonId>,
    pub rows: Vec<[f32; PARTICIPANT_FEATURE_COUNT]>,
    /// The similar conversations each took part in: (conversation, similarity, role).
    pub similar_of: HashMap<PersonId, Vec<(RecordKey, f32, Role)>>,
}

impl People {
    pub fn new(settings: PeopleSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn settings(&self) -> &PeopleSettings {
        &self.settings
    }

    /// Sets how many postings a profile query walks at most (`PeopleSettings::profile_postings`);
    /// everything else is computed as before.
    pub fn set_profile_postings(&mut self, postings: usize) {
        self.settings.profile_postings = postings;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// See `CorpusIndex::defer_postings`.
    pub(super) fn defer_postings(&mut self) {
        self.profiles.defer_postings();
    }

    /// See `CorpusIndex::build_postings`.
    pub(super) fn build_postings(&mut self) {
        self.profiles.build_postings();
    }

    pub fn profiles(&self) -> &CorpusIndex {
        &self.profiles
    }

    pub fn clock(&self) -> Option<Millis> {
        self.clock
    }

    fn forward(&self, at: Option<Millis>) -> f32 {
        let Some(at) = at else {
            return 1.0;
        };
        let exponent = (at - LANDMARK) as f64 / DAY_MS / self.settings.half_life_days.max(1.0);
        2f64.powf(exponent.clamp(-120.0, 120.0)) as f32
    }

    /// The factor that turns forward weights into weights decayed as of `now`.
    fn present(&self, now: Millis) -> f32 {
        let exponent = (LANDMARK - now) as f64 / DAY_MS / self.settings.half_life_days.max(1.0);
        2f64.powf(exponent.clamp(-120.0, 120.0)) as f32
    }

    fn id(&mut self, key: &RecordKey) -> PersonId {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = PersonId::try_from(self.entries.len()).unwrap_or(PersonId::MAX);
        self.activity_order.clear();
        self.entries.push(PersonEntry {
            key: key.clone(),
            bio_forward: 1.0,
            ..PersonEntry::default()
        });
        self.ids.insert(key.clone(), id);
        id
    }

    pub fn person_id(&self, key: &RecordKey) -> Option<PersonId> {
        self.ids.get(key).copied()
    }

    /// Indexes the keys a person can be looked up by; `previous` are the keys of the version
    /// it replaces.
    pub fn index_lookup(&mut self, key: &RecordKey, previous: &[LookupKey], current: &[LookupKey]) {
        for old in previous {
            if let Some(list) = self.lookup.get_mut(old) {
                list.retain(|person| person != key);
                if list.is_empty() {
                    self.lookup.remove(old);
                }
            }
        }
        for new in current {
            let list = self.lookup.entry(new.clone()).or_default();
            if !list.contains(key) {
                list.push(key.clone());
                list.sort();
            }
        }
    }

    /// The people a lookup key names (merged records as the person they were merged into), in
    /// key order.
    pub fn find(&self, key: &LookupKey) -> Vec<RecordKey> {
        let mut found: Vec<RecordKey> = self
            .lookup
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|record| self.canonical(record).cloned())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// The records merged into a person, their own first.
    pub fn records_of(&self, person: &RecordKey) -> Vec<RecordKey> {
        let Some(id) = self.person_id(person) else {
            return Vec::new();
        };
        let canonical = &self.entries[id as usize].key;
        let mut records: Vec<RecordKey> = self
            .merged
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|key| *key != canonical)
            .cloned()
            .collect();
        records.sort();
        records.dedup();
        records.insert(0, canonical.clone());
        records
    }

    /// Takes in a person record: their bio joins their profile, membership is noted. A record
    /// merged into another person adds to that person's profile.
    pub fn upsert_person(&mut self, key: &RecordKey, member: bool, bio: TermBag) {
        // Kept as the profile holds it (words only; see `scaled`).
        let bio = scaled(&bio, 1.0);
        let id = self.id(key);
        let entry = &mut self.entries[id as usize];
        entry.revision += 1;
        entry.known = true;
        entry.records.insert(key.clone(), (bio, member));
        entry.member = entry.records.values().any(|(_, member)| *member);
        let mut total = TermBag::default();
        let mut sources: Vec<&RecordKey> = entry.records.keys().collect();
        sources.sort();
        for source in sources {
            for (term, count) in &entry.records[source].0.counts {
                *total.counts.entry(term.clone()).or_default() += count;
            }
        }
        let old = std::mem::replace(&mut entry.bio, total);
        let forward = entry.bio_forward;
        let removed = scaled(&old, forward);
        let added = scaled(&entry.bio, forward);
        let canonical = entry.key.clone();
        self.profiles
            .apply(&canonical, Some(&removed), Some(&added));
    }

    /// Takes `alias` to be the same person as `canonical` from now on. Set before any of the
    /// alias's records arrive (the engine is rebuilt when merges change).
    pub fn alias(&mut self, alias: &RecordKey, canonical: &RecordKey) {
        let id = self.id(canonical);
        // Records merged into the alias earlier follow it into the canonical person.
        if let Some(old) = self.ids.get(alias).copied()
            && old != id
        {
            for target in self.ids.values_mut() {
                if *target == old {
                    *target = id;
                }
            }
            let mut followers = self.merged.remove(&old).unwrap_or_default();
            followers.push(self.entries[old as usize].key.clone());
            followers.push(alias.clone());
            self.entries[old as usize].revision += 1;
            self.add_merged(id, followers);
        } else {
            self.add_merged(id, vec![alias.clone()]);
        }
        self.ids.insert(alias.clone(), id);
        self.entries[id as usize].revision += 1;
        self.activity_order.clear();
    }

    /// How often what is derived from `person` alone (what they wrote, their bios, their
    /// merges) has changed: equal revisions mean the same writing.
    pub fn revision(&self, person: &RecordKey) -> Option<u64> {
        self.person_id(person)
            .map(|id| self.entries[id as usize].revision)
    }

    /// Every person by their own key (merged records are part of the person they were merged
    /// into), in id order from `start`, with their id.
    pub fn canonical_from(&self, start: usize) -> impl Iterator<Item = (PersonId, &RecordKey)> {
        self.entries
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(id, entry)| {
                self.ids
                    .get(&entry.key)
                    .is_some_and(|own| *own as usize == *id)
            })
            .map(|(id, entry)| (id as PersonId, &entry.key))
    }

    /// Notes `keys` as merged into person `id` (its own key and repeats are left out).
    fn add_merged(&mut self, id: PersonId, keys: Vec<RecordKey>) {
        let own = self.entries[id as usize].key.clone();
        let merged = self.merged.entry(id).or_default();
        for key in keys {
            if key != own && !merged.contains(&key) {
                merged.push(key);
            }
        }
        if merged.is_empty() {
            self.merged.remove(&id);
        }
    }

    /// The key a person is known by: their own, or the one they were merged into.
    pub fn canonical(&self, key: &RecordKey) -> Option<&RecordKey> {
        self.person_id(key).map(|id| &self.entries[id as usize].key)
    }

    /// Records that `author` wrote `item` in `conversation` as `role`, with `bag` its terms.
    /// `previous` is the version it replaces: (its conversation, its author, its bag, its time);
    /// its conversation differs from `conversation` when the item moved to another thread.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        conversation: &RecordKey,
        item: &str,
        role: Role,
        author: Option<&RecordKey>,
        at: Option<Millis>,
        bag: &TermBag,
        previous: Option<(&RecordKey, Option<&RecordKey>, &TermBag, Option<Millis>)>,
    ) {
        self.clock = max_time(self.clock, at);
        self.activity_order.clear();
        if let Some((previous_conversation, previous_author, previous_bag, previous_at)) = previous
            && let Some(previous_author) = previous_author
            && let Some(id) = self.person_id(previous_author)
        {
            let removed = scaled(previous_bag, self.forward(previous_at));
            let canonical = self.entries[id as usize].key.clone();
            self.profiles.apply(&canonical, Some(&removed), None);
            if let Some(list) = self.participation.get_mut(previous_conversation)
                && let Some(index) = list
                    .iter()
                    .position(|contribution| contribution.item == item)
            {
                let contribution = list.swap_remove(index);
                let still_there = list.iter().any(|other| other.person == contribution.person);
                if list.is_empty() {
                    self.participation.remove(previous_conversation);
                }
                let entry = &mut self.entries[contribution.person as usize];
                entry.revision += 1;
                entry.activity -= f64::from(contribution.forward);
                entry.contributions = entry.contributions.saturating_sub(1);
                forget_contribution(entry, &contribution);
                if !still_there {
                    entry.conversations.remove(previous_conversation);
                }
            }
        }
        let Some(author) = author else {
            return;
        };
        let id = self.id(author);
        let forward = self.forward(at);
        let added = scaled(bag, forward);
        let canonical = self.entries[id as usize].key.clone();
        self.profiles.apply(&canonical, None, Some(&added));
        self.participation
            .entry(conversation.clone())
            .or_default()
            .push(Contribution {
                person: id,
                role,
                item: item.to_owned(),
                forward,
                at,
            });
        let entry = &mut self.entries[id as usize];
        entry.revision += 1;
        entry.activity += f64::from(forward);
        entry.contributions += 1;
        entry.history.push((at, role));
        entry.conversations.insert(conversation.clone());
        let last_active = max_time(entry.last_active, at);
        if last_active != entry.last_active {
            entry.last_active = last_active;
            self.move_bio(id);
        }
    }

    /// Keeps the bio as fresh as the person's latest activity.
    fn move_bio(&mut self, id: PersonId) {
        let entry = &self.entries[id as usize];
        let forward = self.forward(entry.last_active);
        if entry.bio.is_empty() || (forward - entry.bio_forward).abs() <= 1e-6 * forward {
            self.entries[id as usize].bio_forward = forward;
            return;
        }
        let removed = scaled(&entry.bio, entry.bio_forward);
        let added = scaled(&entry.bio, forward);
        let key = entry.key.clone();
        self.profiles.apply(&key, Some(&removed), Some(&added));
        self.entries[id as usize].bio_forward = forward;
    }

    /// Forgets a conversation's participation (the conversation left the corpus).
    pub fn remove_conversation(&mut self, conversation: &RecordKey) {
        let Some(list) = self.participation.remove(conversation) else {
            return;
        };
        self.activity_order.clear();
        for contribution in list {
            let entry = &mut self.entries[contribution.person as usize];
            entry.revision += 1;
            entry.activity -= f64::from(contribution.forward);
            entry.contributions = entry.contributions.saturating_sub(1);
            forget_contribution(entry, &contribution);
            entry.conversations.remove(conversation);
        }
    }

    /// Whether `person` took part in `conversation` (opened it or replied).
    pub fn took_part(&self, person: &RecordKey, conversation: &RecordKey) -> bool {
        self.person_id(person).is_some_and(|id| {
            self.entries[id as usize]
                .conversations
                .contains(conversation)
        })
    }

    pub fn conversations_of(&self, person: &RecordKey) -> Vec<RecordKey> {
        let Some(id) = self.person_id(person) else {
            return Vec::new();
        };
        let mut conversations: Vec<RecordKey> = self.entries[id as usize]
            .conversations
            .iter()
            .cloned()
            .collect();
        conversations.sort();
        conversations
    }

    /// The conversations a person took part in, each with how much it says about their
    /// interests as of `now` (their strongest role there, decayed), strongest first.
    pub fn threads_of(
        &self,
        person: &RecordKey,
        now: Millis,
        limit: usize,
    ) -> Vec<(RecordKey, f32)> {
        let Some(id) = self.person_id(person) else {
            return Vec::new();
        };
        let present = self.present(now);
        let mut threads: Vec<(RecordKey, f32)> = self.entries[id as usize]
            .conversations
            .iter()
            .map(|conversation| {
                let weight = self
                    .participation
                    .get(conversation)
                    .into_iter()
                    .flatten()
                    .filter(|contribution| contribution.person == id)
                    .map(|contribution| {
                        contribution.role.weight() * (contribution.forward * present).min(1.0)
                    })
                    .fold(0.0f32, f32::max);
                (conversation.clone(), weight)
            })
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        threads.truncate(limit);
        threads
    }

    pub fn participants_of(&self, conversation: &RecordKey) -> Vec<(RecordKey, Role)> {
        self.participation
            .get(conversation)
            .map(|list| {
                list.iter()
                    .map(|contribution| {
                        (
                            self.entries[contribution.person as usize].key.clone(),
                            contribution.role,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn summary(&self, person: &RecordKey, now: Millis) -> Option<PersonSummary> {
        let id = self.person_id(person)?;
        let entry = &self.entries[id as usize];
        Some(PersonSummary {
            key: entry.key.clone(),
            known: entry.known,
            member: entry.member,
            contributions: entry.contributions,
            conversations: entry.conversations.len(),
            last_active: entry.last_active,
            recent_activity: (entry.activity * f64::from(self.present(now))) as f32,
        })
    }

    /// BM25 of a query over profiles, with the stored forward weights brought to `now`.
    fn profile_scores(&self, query: &[(TermId, f32)], now: Millis) -> Vec<(Slot, f32)> {
        let present = self.present(now);
        let profiles = &self.profiles;
        let average = profiles.average_length() * present;
        let weighted: Vec<(TermId, f32)> = query
            .iter()
            .map(|&(term, weight)| (term, weight * profiles.idf(term)))
            .collect();
        let volume = query
            .iter()
            .map(|(term, _)| profiles.df(*term) as usize)
            .sum();
        super::index::by_slot_ranges(profiles.slot_count(), volume, |range| {
            super::index::accumulate(
                range,
                &weighted,
                |term| profiles.postings_with_frequencies(term),
                |weight, slot, stored| {
                    let tf = stored * present;
                    let length = profiles.doc_length(slot) * present;
                    let norm = K1 * (1.0 - super::index::B + super::index::B * length / average);
                    weight * tf * (K1 + 1.0) / (tf + norm)
                },
            )
        })
    }

    /// A text's terms as a query over profiles, in the order of the terms' text: scores are
    /// sums over the terms, and a fixed order makes them the same to the last bit however the
    /// text's terms were gathered.
    fn profile_query(&self, bag: &TermBag) -> Vec<(TermId, f32)> {
        let mut terms: Vec<(&str, TermId, f32)> = bag
            .counts
            .iter()
            .filter_map(|(term, count)| {
                let id = self.profiles.term_id(term)?;
                (self.profiles.df(id) > 0).then_some((term.as_str(), id, (1.0 + count).ln()))
            })
            .collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(b.0));
        terms
            .into_iter()
            .map(|(_, id, weight)| (id, weight))
            .collect()
    }

    /// A text's terms as a query over profiles (see `profile_query`).
    pub(crate) fn profile_query_of(&self, bag: &TermBag) -> Vec<(TermId, f32)> {
        self.profile_query(bag)
    }

    /// The key of the person with this id.
    pub(crate) fn key_of(&self, id: PersonId) -> Option<&RecordKey> {
        self.entries.get(id as usize).map(|entry| &entry.key)
    }

    /// People to bring into a conversation about `question`, best first.
    /// `similar` are the conversations most like it, best first, with raw similarity;
    /// `exclude` are people already in it.
    pub fn suggest_participants(
        &self,
        question: &TermBag,
        similar: &[(RecordKey, f32)],
        exclude: &HashSet<RecordKey>,
        now: Millis,
        limit: usize,
    ) -> Vec<ParticipantMatch> {
        let present = self.present(now);
        let query = self.profile_query(question);
        let (mut ranked, mut similar_of) =
            self.participant_ranking(&query, similar, exclude, now, limit);
        // A learned model's score is the probability that the person takes part, which reads
        // the same in every conversation; the default fusion's means nothing alone, so it is
        // read against the best placed person's.
        if self.participant_model().link != super::learn::Link::Logistic {
            let best = ranked.first().map_or(1.0, |(_, score)| score.max(1e-9));
            for (_, score) in &mut ranked {
                *score /= best;
            }
        }
        ranked
            .into_iter()
            .map(|(id, score)| {
                let entry = &self.entries[id as usize];
                let mut similar = similar_of.remove(&id).unwrap_or_default();
                similar.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                similar.truncate(3);
                ParticipantMatch {
                    person: entry.key.clone(),
                    member: entry.member,
                    score,
                    similar,
                    matched_terms: self.matched_terms(id, &query, 5),
                    contributions: entry.contributions,
                    last_active: entry.last_active,
                    recent_activity: (entry.activity * f64::from(present)) as f32,
                }
            })
            .collect()
    }

    /// The participant scores of `suggest_participants` alone, by person id, without the
    /// reasons: what judging where people stand in a conversation needs, for every open
    /// conversation of the community (see `standing`).
    pub fn participant_ids(
        &self,
        question: &TermBag,
        similar: &[(RecordKey, f32)],
        exclude: &HashSet<RecordKey>,
        now: Millis,
        limit: usize,
    ) -> Vec<(PersonId, f32)> {
        let query = self.profile_query(question);
        let mut ranked = self
            .participant_ranking(&query, similar, exclude, now, limit)
            .0;
        // Where people stand: against the best placed person, whatever the model's scale.
        let best = ranked.first().map_or(1.0, |(_, score)| score.max(1e-9));
        for (_, score) in &mut ranked {
            *score /= best;
        }
        ranked
    }

    /// People ranked by the participant model over their thread, profile and activity
    /// features, best first, with the model's scores; and the similar conversations each took
    /// part in.
    #[allow(clippy::type_complexity)]
    fn participant_ranking(
        &self,
        query: &[(TermId, f32)],
        similar: &[(RecordKey, f32)],
        exclude: &HashSet<RecordKey>,
        now: Millis,
        limit: usize,
    ) -> (
        Vec<(PersonId, f32)>,
        HashMap<PersonId, Vec<(RecordKey, f32, Role)>>,
    ) {
        let pool = self.participant_pool(query, similar, exclude, now, limit);
        if limit == 0 {
            return (Vec::new(), pool.similar_of);
        }
        let model = self.participant_model();
        let by_score_then_key = |a: &(PersonId, f32), b: &(PersonId, f32)| {
            b.1.total_cmp(&a.1).then_with(|| {
                self.entries[a.0 as usize]
                    .key
                    .cmp(&self.entries[b.0 as usize].key)
            })
        };
        let mut ranked: Vec<(PersonId, f32)> = pool
            .ids
            .iter()
            .zip(&pool.rows)
            .map(|(id, row)| (*id, model.score(row)))
            .filter(|(_, score)| *score > 0.0)
            .collect();
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit - 1, by_score_then_key);
            ranked.truncate(limit);
        }
        ranked.sort_by(by_score_then_key);
        (ranked, pool.similar_of)
    }

    /// The model that ranks people for a conversation: the one learned for this community, or
    /// the default fusion until one is.
    pub fn participant_model(&self) -> &RankingModel {
        self.participant_model
            .as_deref()
            .unwrap_or_else(|| default_participant_model())
    }

    /// Installs the model that ranks people for a conversation.
    pub fn set_participant_model(&mut self, model: std::sync::Arc<RankingModel>) {
        debug_assert_eq!(model.features, PARTICIPANT_FEATURES);
        self.participant_model = Some(model);
    }

    /// Everyone who could be brought into a conversation about `query`, with their features
    /// (see [`PARTICIPANT_FEATURES`]): the people of similar conversations, the people whose
    /// profile matches, and the most active others (`limit` and as many more as the first two
    /// found, beyond whom nobody can reach the top of the default fusion). `exclude` are people
    /// already in it. Only what is known as of `now` counts.
    pub(crate) fn participant_pool(
        &self,
        query: &[(TermId, f32)],
        similar: &[(RecordKey, f32)],
        exclude: &HashSet<RecordKey>,
        now: Millis,
        limit: usize,
    ) -> ParticipantPool {
        let present = self.present(now);
        let fusion_k = self.settings.fusion_k;
        let top_similarity = similar.first().map_or(1.0, |(_, score)| score.max(1e-6));

        // Thread evidence: participants of similar conversations, and those who replied there.
        let mut thread_evidence: HashMap<PersonId, f32> = HashMap::new();
        let mut reply_evidence: HashMap<PersonId, f32> = HashMap::new();
        let mut recent_reply_evidence: HashMap<PersonId, f32> = HashMap::new();
        let mut similar_of: HashMap<PersonId, Vec<(RecordKey, f32, Role)>> = HashMap::new();
        for (conversation, score) in similar.iter().take(self.settings.similar_conversations) {
            let Some(list) = self.participation.get(conversation) else {
                continue;
            };
            let similarity = score / top_similarity;
            let mut seen: HashMap<PersonId, (f32, Role)> = HashMap::new();
            let mut replied: HashMap<PersonId, f32> = HashMap::new();
            for contribution in list {
                if contribution.at.is_some_and(|at| at > now) {
                    continue;
                }
                let weight = contribution.role.weight() * (contribution.forward * present).min(1.0);
                let best = seen
                    .entry(contribution.person)
                    .or_insert((0.0, contribution.role));
                if weight > best.0 {
                    *best = (weight, contribution.role);
                }
                if contribution.role == Role::Replied {
                    let age_days = contribution
                        .at
                        .map_or(f64::INFINITY, |at| (now - at) as f64 / DAY_MS);
                    let recency = (-age_days / 30.0).exp() as f32;
                    let kept = replied.entry(contribution.person).or_default();
                    *kept = kept.max(recency);
                }
            }
            for (person, recency) in replied {
                *reply_evidence.entry(person).or_default() += similarity;
                *recent_reply_evidence.entry(person).or_default() += similarity * recency;
            }
            for (person, (weight, role)) in seen {
                *thread_evidence.entry(person).or_default() += similarity * weight;
                similar_of.entry(person).or_default().push((
                    conversation.clone(),
                    similarity,
                    role,
                ));
            }
        }

        // Profile evidence.
        let profile_scores = self.profile_scores(query, now);

        let excluded_ids: HashSet<PersonId> = exclude
            .iter()
            .filter_map(|key| self.person_id(key))
            .filter(|id| exclude.contains(&self.entries[*id as usize].key))
            .collect();
        let by_score_then_key = |a: &(PersonId, f32), b: &(PersonId, f32)| {
            b.1.total_cmp(&a.1).then_with(|| {
                self.entries[a.0 as usize]
                    .key
                    .cmp(&self.entries[b.0 as usize].key)
            })
        };
        let ranked_list = |mut scored: Vec<(PersonId, f32)>| -> Vec<(PersonId, f32)> {
            scored.retain(|(id, score)| *score > 0.0 && !excluded_ids.contains(id));
            scored.sort_by(by_score_then_key);
            scored
        };
        let threads = ranked_list(thread_evidence.into_iter().collect());
        let replies = ranked_list(reply_evidence.into_iter().collect());
        let recent_replies = ranked_list(recent_reply_evidence.into_iter().collect());
        let owners = self.profile_owners();
        let profiles = ranked_list(
            profile_scores
                .into_iter()
                .filter_map(|(slot, score)| {
                    let owner = *owners.1.get(slot as usize)?;
                    (owner != PersonId::MAX).then_some((owner, score))
                })
                .collect(),
        );
        // Activity evidence: everyone by recent activity. Only the people of the other lists and
        // the first `limit` others need their rank, which the cached order gives without
        // sorting everyone per question.
        let order = self.activity_order(present);
        let mut excluded_positions: Vec<usize> = excluded_ids
            .iter()
            .map(|id| order.position[*id as usize])
            .collect();
        excluded_positions.sort_unstable();
        let activity_rank = |id: PersonId| -> Option<usize> {
            let position = order.position[id as usize];
            if position >= order.active || excluded_ids.contains(&id) {
                return None;
            }
            Some(position - excluded_positions.partition_point(|other| *other < position))
        };
        let reciprocal = |rank: usize| 1.0 / (fusion_k + rank as f32 + 1.0);

        // Each list as (share of the list's best, reciprocal rank) per person.
        let mut from_lists: HashMap<PersonId, [f32; LIST_FEATURE_COUNT]> = HashMap::new();
        for (list_index, list) in [&profiles, &threads, &replies, &recent_replies]
            .into_iter()
            .enumerate()
        {
            let best = list.first().map_or(1.0, |(_, score)| score.max(1e-9));
            for (rank, (id, score)) in list.iter().enumerate() {
                let row = from_lists.entry(*id).or_default();
                row[list_index * 2] = score / best;
                row[list_index * 2 + 1] = reciprocal(rank);
            }
        }
        let activity_candidates = order
            .by_activity
            .iter()
            .take(order.active)
            .filter(|id| !excluded_ids.contains(id))
            .take(limit + from_lists.len());
        let mut ids: Vec<PersonId> = from_lists.keys().copied().collect();
        ids.extend(activity_candidates.filter(|id| !from_lists.contains_key(id)));
        // In id order: the same question always gives the same rows in the same order, which a
        // fit (thinning negatives, breaking ties) relies on.
        ids.sort_unstable();
        let activity = self.activity_rows(now);
        let rows = ids
            .iter()
            .map(|id| {
                let lists = from_lists.get(id).copied().unwrap_or_default();
                let mut row = [0.0f32; PARTICIPANT_FEATURE_COUNT];
                row[..LIST_FEATURE_COUNT].copy_from_slice(&lists);
                row[LIST_FEATURE_COUNT - 1] = activity_rank(*id).map_or(0.0, reciprocal);
                row[LIST_FEATURE_COUNT..].copy_from_slice(&activity[*id as usize]);
                row
            })
            .collect();
        ParticipantPool {
            ids,
            rows,
            similar_of,
        }
    }

    /// Everyone's activity features as of `now` (see [`PARTICIPANT_FEATURES`]), by person id;
    /// cached until anyone's activity changes or another moment is asked about. Only
    /// contributions made by `now` count, so a question about the past is answered as it would
    /// have been then.
    fn activity_rows(&self, now: Millis) -> std::sync::Arc<Vec<ActivityRow>> {
        if let Ok(cache) = self.activity_order.1.lock()
            && let Some((at, rows)) = cache.as_ref()
            && *at == now
            && rows.len() == self.entries.len()
        {
            return std::sync::Arc::clone(rows);
        }
        let rows = std::sync::Arc::new(
            self.entries
                .iter()
                .map(|entry| activity_row(&entry.history, now))
                .collect::<Vec<ActivityRow>>(),
        );
        if let Ok(mut cache) = self.activity_order.1.lock() {
            *cache = Some((now, std::sync::Arc::clone(&rows)));
        }
        rows
    }

    /// The person of each profile slot, built again when the slots' layout changed.
    fn profile_owners(&self) -> std::sync::Arc<OwnersAt> {
        // Records merged into a person add ids too.
        let layout = (self.profiles.layout_version(), self.ids.len());
        if let Ok(cache) = self.profile_owners.0.lock()
            && let Some(owners) = cache.as_ref()
            && owners.0 == layout
        {
            return std::sync::Arc::clone(owners);
        }
        let owners: Vec<PersonId> = (0..self.profiles.slot_count())
            .map(|slot| {
                self.profiles
                    .key(slot as Slot)
                    .and_then(|key| self.person_id(key))
                    .unwrap_or(PersonId::MAX)
            })
            .collect();
        let owners = std::sync::Arc::new((layout, owners));
        if let Ok(mut cache) = self.profile_owners.0.lock() {
            *cache = Some(std::sync::Arc::clone(&owners));
        }
        owners
    }

    /// Everyone by activity as of `present` (most active first, ties by key, as the activity
    /// evidence ranks them); cached until people change or another time is asked about.
    fn activity_order(&self, present: f32) -> std::sync::Arc<ActivityRanks> {
        if let Ok(cache) = self.activity_order.lock()
            && let Some(order) = cache.as_ref()
            && order.present.to_bits() == present.to_bits()
            && order.position.len() == self.entries.len()
        {
            return std::sync::Arc::clone(order);
        }
        let value = |id: PersonId| (self.entries[id as usize].activity * f64::from(present)) as f32;
        let mut by_activity: Vec<PersonId> = (0..self.entries.len() as PersonId).collect();
        by_activity.sort_by(|a, b| {
            value(*b).total_cmp(&value(*a)).then_with(|| {
                self.entries[*a as usize]
                    .key
                    .cmp(&self.entries[*b as usize].key)
            })
        });
        let active = by_activity.partition_point(|id| value(*id) > 0.0);
        let mut position = vec![0usize; by_activity.len()];
        for (index, id) in by_activity.iter().enumerate() {
            position[*id as usize] = index;
        }
        let order = std::sync::Arc::new(ActivityRanks {
            present,
            by_activity,
            position,
            active,
        });
        if let Ok(mut cache) = self.activity_order.lock() {
            *cache = Some(std::sync::Arc::clone(&order));
        }
        order
    }

    /// The query terms that weigh most in a person's profile, strongest first.
    fn matched_terms(&self, id: PersonId, query: &[(TermId, f32)], limit: usize) -> Vec<String> {
        let Some(slot) = self.profiles.slot(&self.entries[id as usize].key) else {
            return Vec::new();
        };
        let mut terms: Vec<(f32, &str)> = query
            .iter()
            .filter_map(|(term, weight)| {
                let tf = self.profiles.tf(slot, *term);
                let text = self.profiles.term_text(*term)?;
                (tf > 0.0).then(|| (weight * self.profiles.idf(*term) * tf.ln_1p(), text))
            })
            .collect();
        terms.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        terms
            .into_iter()
            .take(limit)
            .map(|(_, text)| text.to_owned())
            .collect()
    }

    /// The terms of a weighted query that weigh most in a person's profile (stems).
    pub fn matched_query_terms(
        &self,
        person: &RecordKey,
        query: &[(String, f32)],
        limit: usize,
    ) -> Vec<String> {
        let Some(id) = self.person_id(person) else {
            return Vec::new();
        };
        let ids: Vec<(TermId, f32)> = query
            .iter()
            .filter_map(|(term, weight)| Some((self.profiles.term_id(term)?, *weight)))
            .collect();
        self.matched_terms(id, &ids, limit)
    }

    /// A person's strongest interests: the terms that weigh most in their profile against how
    /// common the terms are, as (stem, weight in [0, 1]).
    /// `shared` says whether a term is used elsewhere in the community (in its conversations);
    /// a term no one else uses is an idiosyncrasy, not an interest to match on.
    pub fn interests(
        &self,
        person: &RecordKey,
        limit: usize,
        shared: &dyn Fn(&str) -> bool,
    ) -> Vec<(String, f32)> {
        let Some(slot) = self
            .canonical(person)
            .and_then(|person| self.profiles.slot(person))
        else {
            return Vec::new();
        };
        if limit == 0 {
            return Vec::new();
        }
        let length = self.profiles.doc_length(slot).max(1e-9);
        // Terms by id until the kept ones are known: a prolific author's profile holds tens of
        // thousands of terms, and reading each one's text would cost a cache miss apiece. A
        // profile holds words only (see `scaled`).
        let mut terms: Vec<(f32, TermId)> = self
            .profiles
            .doc_terms(slot)
            .iter()
            .filter(|(term, _)| {
                self.profiles.df(*term) >= 2 || self.profiles.term_text(*term).is_some_and(shared)
            })
            .map(|(term, tf)| ((tf / length) * self.profiles.idf(*term), *term))
            .collect();
        let text = |term: TermId| self.profiles.term_text(term).unwrap_or_default();
        let order = |a: &(f32, TermId), b: &(f32, TermId)| {
            b.0.total_cmp(&a.0).then_with(|| text(a.1).cmp(text(b.1)))
        };
        if terms.len() > limit {
            terms.select_nth_unstable_by(limit - 1, order);
            terms.truncate(limit);
        }
        terms.sort_by(order);
        let best = terms.first().map_or(1.0, |(weight, _)| weight.max(1e-9));
        terms
            .into_iter()
            .map(|(weight, term)| (text(term).to_owned(), weight / best))
            .collect()
    }

    /// The profile as a query: its most distinctive terms, weighted as in `interests`.
    pub fn profile_as_query(
        &self,
        person: &RecordKey,
        shared: &dyn Fn(&str) -> bool,
    ) -> Vec<(String, f32)> {
        let Some(slot) = self
            .canonical(person)
            .and_then(|person| self.profiles.slot(person))
        else {
            return Vec::new();
        };
        let length = self.profiles.doc_length(slot).max(1e-9);
        // The person's own distribution of words (their language model), restricted to the
        // terms that say the most about them.
        self.interests(person, self.settings.profile_query_terms, shared)
            .into_iter()
            .filter_map(|(term, _)| {
                let id = self.profiles.term_id(&term)?;
                Some((term, self.profiles.tf(slot, id) / length))
            })
            .collect()
    }

    /// Raw BM25 of a weighted term query against one person's profile, as of `now`.
    pub fn profile_score(&self, person: &RecordKey, query: &[(String, f32)], now: Millis) -> f32 {
        let Some(slot) = self
            .canonical(person)
            .and_then(|person| self.profiles.slot(person))
        else {
            return 0.0;
        };
        let present = self.present(now);
        let average = self.profiles.average_length() * present;
        let length = self.profiles.doc_length(slot) * present;
        let norm = K1 * (1.0 - super::index::B + super::index::B * length / average);
        query
            .iter()
            .filter_map(|(term, weight)| {
                let id = self.profiles.term_id(term)?;
                let tf = self.profiles.tf(slot, id) * present;
                (tf > 0.0).then(|| weight * self.profiles.idf(id) * tf * (K1 + 1.0) / (tf + norm))
            })
            .sum()
    }

    /// Raw scores of a weighted term query against every profile with any of its terms.
    pub fn profile_scores_for(
        &self,
        query: &[(String, f32)],
        now: Millis,
    ) -> Vec<(RecordKey, f32)> {
        let ids: Vec<(TermId, f32)> = query
            .iter()
            .filter_map(|(term, weight)| Some((self.profiles.term_id(term)?, *weight)))
            .collect();
        self.profile_scores(&ids, now)
            .into_iter()
            .filter_map(|(slot, score)| Some((self.profiles.key(slot)?.clone(), score)))
            .collect()
    }

    /// Every person with a profile, for ranking people as a whole.
    pub fn keys(&self) -> impl Iterator<Item = &RecordKey> {
        self.entries.iter().map(|entry| &entry.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> RecordKey {
        RecordKey::new("forum", id)
    }

    #[test]
    fn records_of_follow_merges_and_merges_of_merges_and_each_moves_the_revision() {
        let mut people = People::new(PeopleSettings::default());
        for id in ["a", "b", "c", "d"] {
            people.upsert_person(&key(id), true, TermBag::default());
        }
        let before = people.revision(&key("a")).unwrap();
        // c first becomes part of b; then b (with c) becomes part of a.
        people.alias(&key("c"), &key("b"));
        assert_eq!(people.records_of(&key("b")), vec![key("b"), key("c")]);
        people.alias(&key("b"), &key("a"));
        assert_eq!(
            people.records_of(&key("a")),
            vec![key("a"), key("b"), key("c")]
        );
        assert_eq!(people.canonical(&key("c")), Some(&key("a")));
        // The same merge again adds nothing; a person merged into themselves neither.
        people.alias(&key("c"), &key("a"));
        people.alias(&key("a"), &key("a"));
        assert_eq!(
            people.records_of(&key("a")),
            vec![key("a"), key("b"), key("c")]
        );
        assert_eq!(people.records_of(&key("d")), vec![key("d")]);
        assert!(people.records_of(&key("nobody")).is_empty());
        assert!(people.revision(&key("a")).unwrap() > before);
        // Everyone by their own key: the merged ones are part of a.
        let own: Vec<&RecordKey> = people.canonical_from(0).map(|(_, key)| key).collect();
        assert_eq!(own, vec![&key("a"), &key("d")]);
    }
}
