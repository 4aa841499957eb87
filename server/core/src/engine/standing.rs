//! The standing index: for each open conversation, the people best placed to be brought into it
//! and how well placed each is (their participant score against the best placed person's).
//!
//! `SuggestDiscussions` asks where one person stands in each of the conversations that suit
//! them; judging one conversation means ranking everyone who could join it (similar threads,
//! profiles, activity). That is far too much work for one request at community scale, and the
//! answer moves slowly: one new post shifts a person's standing in a few conversations, not in
//! all. So judgments are kept here, made ahead of time by a background worker
//! ([`super::Engine::refresh_standing`]), and made again when their conversation changes or when
//! they grow older than the engine's `standing_max_age` while the corpus moved on. A request
//! reads what is here and judges, itself, only conversations never judged or judged too long
//! ago.
//!
//! Questions about another moment (`as_of`) are judged on request and cached per corpus
//! generation, as the evaluation asks them; they share the representation below.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Engine;
use super::index::{TermBag, TermId};
use super::people::PersonId;
use crate::domain::{Millis, RecordKey};

/// What a conversation looked like when it was judged: a judgment of a conversation that has
/// since gained or changed posts is redone first.
pub(super) type Fingerprint = (u32, Option<Millis>);

/// Where the best placed people stand in one conversation.
#[derive(Debug, Clone)]
pub(super) struct Judgment {
    /// The engine generation it was made at.
    pub generation: u64,
    pub made_at: Instant,
    pub fingerprint: Fingerprint,
    /// People by id, ascending; `scores` runs alongside.
    people: Box<[PersonId]>,
    /// Standing in [0, 1] in steps of 1/65535: 1.0 for the best placed person.
    scores: Box<[u16]>,
}

impl Judgment {
    pub fn new(
        generation: u64,
        fingerprint: Fingerprint,
        mut standings: Vec<(PersonId, f32)>,
    ) -> Self {
        standings.sort_unstable_by_key(|(id, _)| *id);
        standings.dedup_by_key(|(id, _)| *id);
        let (people, scores) = standings
            .into_iter()
            .map(|(id, score)| {
                (
                    id,
                    (score.clamp(0.0, 1.0) * f32::from(u16::MAX)).round() as u16,
                )
            })
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Self {
            generation,
            made_at: Instant::now(),
            fingerprint,
            people: people.into_boxed_slice(),
            scores: scores.into_boxed_slice(),
        }
    }

    /// Where `person` stands: 0 when they are not among the best placed.
    pub fn of(&self, person: PersonId) -> f32 {
        self.people
            .binary_search(&person)
            .map_or(0.0, |index| standing(self.scores[index]))
    }

    /// Whether a request may still use it: made at this generation, or recently enough.
    pub fn usable(&self, generation: u64, max_age: Duration) -> bool {
        self.generation == generation || self.made_at.elapsed() <= max_age
    }

    /// Bytes it holds, for the memory report.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.people.len() * std::mem::size_of::<PersonId>()
            + self.scores.len() * std::mem::size_of::<u16>()
    }
}

/// The judgments of the present (requests without `as_of`), per conversation, and the same
/// read by person: where each person is placed, so that a person's best placed conversations
/// are found without looking at every conversation.
#[derive(Debug, Default)]
pub(super) struct StandingIndex {
    /// Each judged conversation's number and judgment.
    judgments: HashMap<RecordKey, (u32, Judgment)>,
    /// Judged conversations by number (`None` for a free number), with the moment and generation
    /// their judgment was made at: what decides whether a request may use it.
    numbered: Vec<Option<Numbered>>,
    free: Vec<u32>,
    /// Per person id: the numbers of the conversations whose judgment places them, and their
    /// standing there (as the judgment keeps it), in no particular order.
    placed: Vec<Placements>,
    /// The count of record changes the refresh last saw, and since when: judging while records
    /// pour in would be redone as soon as they stop.
    seen: Option<(u64, Instant)>,
    /// When the refresh last judged anything, and when it first ran.
    last_judged: Option<Instant>,
    first_refresh: Option<Instant>,
    /// What the last refresh found when nothing needed judging; forgotten as soon as a
    /// judgment is put or dropped.
    quiet: Option<Quiet>,
}

/// A refresh that found nothing to judge. Another would find the same until the records change,
/// or until a judgment grows old while the corpus moved on: while the engine is as it was, when
/// the first judgment made at an earlier generation does (`until`); once only embeddings have
/// arrived since, when the first judgment of all does (`until_any`). Until then refreshes are
/// answered from here instead of walking every open conversation with the index locked, which
/// would hold up the requests reading it.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    generation: u64,
    records: u64,
    until: Option<Instant>,
    until_any: Option<Instant>,
    ready: usize,
    /// Judgments made before `generation`.
    stale: usize,
    bytes: usize,
}

impl Quiet {
    fn holds(&self, generation: u64, records: u64, now: Instant) -> bool {
        let until = if generation == self.generation {
            self.until
        } else if records == self.records {
            self.until_any
        } else {
            return false;
        };
        until.is_none_or(|until| now < until)
    }

    /// Where the index stands at `generation`, while the quiet holds: after embeddings only,
    /// every judgment was made before them.
    fn progress(&self, generation: u64) -> StandingProgress {
        StandingProgress {
            judged: 0,
            ready: self.ready,
            pending: 0,
            stale: if generation == self.generation {
                self.stale
            } else {
                self.ready
            },
            bytes: self.bytes,
        }
    }
}

#[derive(Debug)]
struct Numbered {
    conversation: RecordKey,
    generation: u64,
    made_at: Instant,
}

#[derive(Debug, Default)]
struct Placements {
    conversations: Vec<u32>,
    scores: Vec<u16>,
}

impl StandingIndex {
    pub fn get(&self, conversation: &RecordKey) -> Option<&Judgment> {
        self.judgments
            .get(conversation)
            .map(|(_, judgment)| judgment)
    }

    /// Keeps `judgment` as the one of `conversation`, in place of any earlier.
    pub fn put(&mut self, conversation: RecordKey, judgment: Judgment) {
        self.quiet = None;
        let number = match self.judgments.remove(&conversation) {
            Some((number, earlier)) => {
                self.unplace(number, &earlier);
                number
            }
            None => self.free.pop().unwrap_or_else(|| {
                self.numbered.push(None);
                u32::try_from(self.numbered.len() - 1).unwrap_or(u32::MAX)
            }),
        };
        for (&person, &score) in judgment.people.iter().zip(judgment.scores.iter()) {
            let index = person as usize;
            if self.placed.len() <= index {
                self.placed.resize_with(index + 1, Placements::default);
            }
            let placements = &mut self.placed[index];
            placements.conversations.push(number);
            placements.scores.push(score);
        }
        self.numbered[number as usize] = Some(Numbered {
            conversation: conversation.clone(),
            generation: judgment.generation,
            made_at: judgment.made_at,
        });
        self.judgments.insert(conversation, (number, judgment));
    }

    /// Drops the judgments of the conversations `keep` turns down.
    pub fn retain(&mut self, keep: impl Fn(&RecordKey) -> bool) {
        let dropped: Vec<RecordKey> = self
            .judgments
            .keys()
            .filter(|conversation| !keep(conversation))
            .cloned()
            .collect();
        for conversation in dropped {
            self.quiet = None;
            if let Some((number, judgment)) = self.judgments.remove(&conversation) {
                self.unplace(number, &judgment);
                self.numbered[number as usize] = None;
                self.free.push(number);
            }
        }
    }

    fn unplace(&mut self, number: u32, judgment: &Judgment) {
        for &person in judgment.people.iter() {
            let Some(placements) = self.placed.get_mut(person as usize) else {
                continue;
            };
            if let Some(at) = placements
                .conversations
                .iter()
                .position(|&conversation| conversation == number)
            {
                placements.conversations.swap_remove(at);
                placements.scores.swap_remove(at);
            }
        }
    }

    /// The conversations whose usable judgment places `person`, best standing first, that
    /// `eligible` accepts: the first `want`, and any more tied with the last of them (at most
    /// `4 * want` in all, ties beyond that in the order of the conversations' keys).
    pub fn best_placed(
        &self,
        person: PersonId,
        generation: u64,
        max_age: Duration,
        want: usize,
        eligible: impl Fn(&RecordKey) -> bool,
    ) -> Vec<(RecordKey, f32)> {
        let Some(placements) = self.placed.get(person as usize) else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut order: Vec<(u16, &RecordKey)> = placements
            .conversations
            .iter()
            .zip(&placements.scores)
            .filter_map(|(&number, &score)| {
                let numbered = self.numbered.get(number as usize)?.as_ref()?;
                let usable = numbered.generation == generation
                    || now.saturating_duration_since(numbered.made_at) <= max_age;
                usable.then_some((score, &numbered.conversation))
            })
            .collect();
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let mut best: Vec<(RecordKey, f32)> = Vec::new();
        let mut last = None;
        for (score, conversation) in order {
            let full = best.len() >= want;
            if (full && last != Some(score)) || best.len() >= want.saturating_mul(4) {
                break;
            }
            if eligible(conversation) {
                best.push((conversation.clone(), standing(score)));
                last = Some(score);
            }
        }
        best
    }

    /// Bytes the judgments and placements hold, for the memory report.
    pub fn bytes(&self) -> usize {
        let judgments: usize = self
            .judgments
            .values()
            .map(|(_, judgment)| judgment.bytes())
            .sum();
        let placements: usize = self
            .placed
            .iter()
            .map(|placements| {
                std::mem::size_of::<Placements>()
                    + placements.conversations.capacity() * std::mem::size_of::<u32>()
                    + placements.scores.capacity() * std::mem::size_of::<u16>()
            })
            .sum();
        judgments + placements + self.numbered.capacity() * std::mem::size_of::<Option<Numbered>>()
    }
}

/// A kept standing as a number in [0, 1].
fn standing(kept: u16) -> f32 {
    f32::from(kept) / f32::from(u16::MAX)
}

/// How long the refresh waits at most for the corpus to settle before judging anyway.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// When judgments not due yet grow old enough to be redone if the corpus has moved on since: the
/// first of those made at an earlier generation (`moved_on`), and the first of all (`any`).
#[derive(Debug, Default, Clone, Copy)]
struct Due {
    moved_on: Option<Instant>,
    any: Option<Instant>,
}

/// What a walk over the open conversations found: how many have a judgment, how many of those
/// were judged before the corpus moved on, and when the next judgment comes due.
#[derive(Debug, Default)]
struct Tally {
    ready: usize,
    stale: usize,
    due: Due,
}

/// How far the standing index is: what a status report or a waiting client needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandingProgress {
    /// Conversations judged by this call.
    pub judged: usize,
    /// Open conversations that have a judgment.
    pub ready: usize,
    /// Open conversations never judged, or changed since they were.
    pub pending: usize,
    /// Open conversations unchanged since they were judged, but judged before the latest
    /// records or embeddings arrived: judged again once their judgment is half the maximum age
    /// old. After a bulk load, those judged while it ran (the refresh judges at least every half
    /// minute while records keep coming).
    pub stale: usize,
    /// Bytes the judgments hold.
    pub bytes: usize,
}

impl StandingProgress {
    pub fn add(&mut self, other: StandingProgress) {
        self.judged += other.judged;
        self.ready += other.ready;
        self.pending += other.pending;
        self.stale += other.stale;
        self.bytes += other.bytes;
    }
}

impl Engine {
    /// How old a judgment of the present may grow, once the corpus moved on, before a request
    /// judges its conversation again itself. Zero (the default) makes every answer current, at
    /// the cost of judging on request after every change; a server gives it minutes and keeps
    /// the index fresh in the background.
    pub fn set_standing_max_age(&mut self, max_age: Duration) {
        self.standing_max_age = max_age;
    }

    /// Sets how many postings a profile query walks at most (`PeopleSettings::profile_postings`):
    /// `usize::MAX` for the exact query, as the bench compares.
    pub fn set_profile_postings(&mut self, postings: usize) {
        self.people.set_profile_postings(postings);
    }

    fn fingerprint(&self, conversation: &RecordKey) -> Fingerprint {
        self.activity
            .get(conversation)
            .map_or((0, None), |activity| {
                (activity.posts, activity.last_activity_at)
            })
    }

    /// Where everyone who could be brought into `conversation` stands, as of `as_of`: the
    /// participant scores of the `standing_depth` best placed, judged from the conversation's
    /// most distinctive terms.
    fn judge(&self, conversation: &RecordKey, as_of: Option<Millis>) -> Judgment {
        let settings = *self.people.settings();
        let mut bag = TermBag::default();
        if let Some(slot) = self.index.slot(conversation) {
            let mut strongest: Vec<(f32, TermId, f32)> = self
                .index
                .doc_terms(slot)
                .iter()
                .filter(|(term, _)| {
                    self.index
                        .term_text(*term)
                        .is_some_and(|text| !super::index::is_pair_term(text))
                })
                .map(|(term, count)| (count.ln_1p() * self.index.idf(*term), *term, *count))
                .collect();
            let keep = settings.standing_query_terms.max(1);
            let order = |a: &(f32, TermId, f32), b: &(f32, TermId, f32)| {
                b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
            };
            if strongest.len() > keep {
                strongest.select_nth_unstable_by(keep - 1, order);
                strongest.truncate(keep);
            }
            for (_, term, count) in strongest {
                if let Some(text) = self.index.term_text(term) {
                    bag.counts.insert(text.to_owned(), count);
                }
            }
        }
        let now = self.people_clock(as_of);
        let similar = self.similar_conversations(
            &bag,
            self.semantic.vector(conversation),
            Some(conversation),
            settings.similar_conversations,
        );
        let exclude = self.already_in(conversation);
        let standings =
            self.people
                .participant_ids(&bag, &similar, &exclude, now, settings.standing_depth);
        Judgment::new(self.generation, self.fingerprint(conversation), standings)
    }

    /// Where `person` stands in each of `conversations` (in their order): 1.0 where they are
    /// the best placed person to bring in, 0 where they are not among the best placed.
    ///
    /// About the present, judgments of the standing index are used while usable (made at this
    /// generation, or younger than the maximum age); the rest are judged here and kept. About
    /// another moment, judgments are made here and cached for this generation.
    pub(super) fn standings_of(
        &self,
        person: &RecordKey,
        conversations: &[RecordKey],
        as_of: Option<Millis>,
    ) -> Vec<f32> {
        let Some(id) = self.people.person_id(person) else {
            return vec![0.0; conversations.len()];
        };
        let Some(moment) = as_of else {
            return self.present_standings(id, conversations);
        };
        // Judgments of earlier generations are of no use to anyone any more.
        if let Ok(mut cache) = self.standing_cache.lock() {
            cache.retain(|_, judgment| judgment.generation == self.generation);
        }
        conversations
            .iter()
            .map(|conversation| {
                let key = (conversation.clone(), moment);
                let cached = self
                    .standing_cache
                    .lock()
                    .ok()
                    .and_then(|cache| cache.get(&key).cloned());
                let judgment = cached.unwrap_or_else(|| {
                    let judgment = Arc::new(self.judge(conversation, as_of));
                    if let Ok(mut cache) = self.standing_cache.lock() {
                        cache.insert(key, Arc::clone(&judgment));
                    }
                    judgment
                });
                judgment.of(id)
            })
            .collect()
    }

    /// The conversations where the standing index places `person` best, with their standing,
    /// among those `eligible` accepts (see [`StandingIndex::best_placed`]). It holds judgments of
    /// the present only, and uses those a request may: made at this generation, or recently
    /// enough.
    pub(super) fn best_placed(
        &self,
        person: &RecordKey,
        want: usize,
        eligible: impl Fn(&RecordKey) -> bool,
    ) -> Vec<(RecordKey, f32)> {
        let Some(id) = self.people.person_id(person) else {
            return Vec::new();
        };
        self.standing.lock().map_or_else(
            |_| Vec::new(),
            |index| index.best_placed(id, self.generation, self.standing_max_age, want, eligible),
        )
    }

    fn present_standings(&self, person: PersonId, conversations: &[RecordKey]) -> Vec<f32> {
        let mut standings = vec![0.0; conversations.len()];
        let mut unjudged = Vec::new();
        match self.standing.lock() {
            Ok(index) => {
                for (position, conversation) in conversations.iter().enumerate() {
                    match index.get(conversation) {
                        Some(judgment)
                            if judgment.usable(self.generation, self.standing_max_age) =>
                        {
                            standings[position] = judgment.of(person);
                        }
                        _ => unjudged.push(position),
                    }
                }
            }
            Err(_) => unjudged.extend(0..conversations.len()),
        }
        for position in unjudged {
            let conversation = &conversations[position];
            let judgment = self.judge(conversation, None);
            standings[position] = judgment.of(person);
            if let Ok(mut index) = self.standing.lock() {
                index.put(conversation.clone(), judgment);
            }
        }
        standings
    }

    /// Keeps the standing index ahead of requests: judges the open conversations never judged,
    /// then those changed since their judgment, then those whose judgment is more than half the
    /// maximum age old while the corpus moved on (oldest first), for at most `budget` (at least
    /// one conversation when any needs it). Judgments of conversations that are gone or closed
    /// are dropped. Returns where the index stands.
    ///
    /// While records keep arriving, what is judged now is judged again when they stop, so it
    /// judges nothing until the corpus has not changed for `settle`, or for at most half a
    /// minute after it last judged.
    pub fn refresh_standing(&self, budget: Duration, settle: Duration) -> StandingProgress {
        let started = Instant::now();
        // (priority, age order, conversation): 0 never judged, 1 changed, 2 old.
        let mut work: Vec<(u8, Option<Instant>, RecordKey)> = Vec::new();
        let mut progress = StandingProgress::default();
        let settled;
        let refresh_after = self.standing_max_age / 2;
        {
            let Ok(mut index) = self.standing.lock() else {
                return progress;
            };
            let now = Instant::now();
            // Embeddings arriving do not count: they change no conversation's record, and
            // the embedder may take hours over a large community.
            let records = self.generation - self.embedding_generations;
            if let Some(quiet) = index
                .quiet
                .filter(|quiet| quiet.holds(self.generation, records, now))
            {
                return quiet.progress(self.generation);
            }
            let seen_at = match index.seen {
                Some((generation, at)) if generation == records => at,
                _ => {
                    index.seen = Some((records, now));
                    now
                }
            };
            let first_refresh = *index.first_refresh.get_or_insert(now);
            let since_judged = index.last_judged.unwrap_or(first_refresh).elapsed();
            settled = seen_at.elapsed() >= settle || since_judged >= MAX_WAIT;
            index.retain(|conversation| {
                self.activity
                    .get(conversation)
                    .is_some_and(|activity| activity.open)
                    && self.index.slot(conversation).is_some()
            });
            let tally = self.standing_work(&index, refresh_after, &mut work);
            progress.ready = tally.ready;
            progress.stale = tally.stale;
            if work.is_empty() {
                let quiet = Quiet {
                    generation: self.generation,
                    records,
                    until: tally.due.moved_on,
                    until_any: tally.due.any,
                    ready: tally.ready,
                    stale: tally.stale,
                    bytes: index.bytes(),
                };
                index.quiet = Some(quiet);
                return quiet.progress(self.generation);
            }
        }
        work.sort_unstable_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        let urgent = work.iter().filter(|(priority, _, _)| *priority < 2).count();
        if !settled {
            work.clear();
        }
        for (priority, _, conversation) in work {
            if progress.judged > 0 && started.elapsed() >= budget {
                break;
            }
            let judgment = self.judge(&conversation, None);
            if let Ok(mut index) = self.standing.lock() {
                index.put(conversation, judgment);
                index.last_judged = Some(Instant::now());
            }
            progress.judged += 1;
            match priority {
                0 => progress.ready += 1,
                2 => progress.stale = progress.stale.saturating_sub(1),
                _ => {}
            }
        }
        progress.pending = urgent.saturating_sub(progress.judged);
        if let Ok(index) = self.standing.lock() {
            progress.bytes = index.bytes();
        }
        progress
    }

    /// Where the standing index is, without judging anything (`judged` is 0).
    pub fn standing_progress(&self) -> StandingProgress {
        let Ok(index) = self.standing.lock() else {
            return StandingProgress::default();
        };
        let records = self.generation - self.embedding_generations;
        if let Some(quiet) = index
            .quiet
            .filter(|quiet| quiet.holds(self.generation, records, Instant::now()))
        {
            return quiet.progress(self.generation);
        }
        let mut work = Vec::new();
        let tally = self.standing_work(&index, Duration::MAX, &mut work);
        StandingProgress {
            judged: 0,
            ready: tally.ready,
            pending: work.len(),
            stale: tally.stale,
            bytes: index.bytes(),
        }
    }

    /// The open conversations that need judging, into `work` as (priority, judged at,
    /// conversation): 0 never judged, 1 changed since, 2 judged `refresh_after` ago or more while
    /// the corpus moved on. Returns how many open conversations have a judgment, how many of
    /// those were judged before the corpus moved on, and when the first that is not due yet
    /// grows `refresh_after` old.
    fn standing_work(
        &self,
        index: &StandingIndex,
        refresh_after: Duration,
        work: &mut Vec<(u8, Option<Instant>, RecordKey)>,
    ) -> Tally {
        let mut tally = Tally::default();
        for (conversation, activity) in &self.activity {
            if !activity.open || self.index.slot(conversation).is_none() {
                continue;
            }
            match index.get(conversation) {
                None => work.push((0, None, conversation.clone())),
                Some(judgment) => {
                    tally.ready += 1;
                    let moved_on = judgment.generation != self.generation;
                    if judgment.fingerprint != (activity.posts, activity.last_activity_at) {
                        work.push((1, Some(judgment.made_at), conversation.clone()));
                        continue;
                    }
                    if moved_on {
                        tally.stale += 1;
                    }
                    if moved_on && judgment.made_at.elapsed() >= refresh_after {
                        work.push((2, Some(judgment.made_at), conversation.clone()));
                    } else if let Some(at) = judgment.made_at.checked_add(refresh_after) {
                        let earliest = |next: Option<Instant>| Some(next.map_or(at, |n| n.min(at)));
                        tally.due.any = earliest(tally.due.any);
                        if moved_on {
                            tally.due.moved_on = earliest(tally.due.moved_on);
                        }
                    }
                }
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn conversation(number: u8) -> RecordKey {
        RecordKey::new("forum", format!("c{number}"))
    }

    /// A remembered quiet refresh holds while the engine is as it was until a judgment made
    /// before it moved on grows old; after embeddings only, until any judgment does; after any
    /// record changed, not at all.
    #[test]
    fn a_quiet_refresh_holds_until_the_corpus_or_the_clock_says_otherwise() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let quiet = Quiet {
            generation: 10,
            records: 7,
            until: Some(later),
            until_any: Some(now + Duration::from_secs(5)),
            ready: 3,
            stale: 1,
            bytes: 100,
        };
        assert!(quiet.holds(10, 7, now));
        assert!(quiet.holds(10, 7, now + Duration::from_secs(30)));
        assert!(!quiet.holds(10, 7, later));
        // Only embeddings arrived (generation moved, records did not).
        assert!(quiet.holds(11, 7, now));
        assert!(!quiet.holds(11, 7, now + Duration::from_secs(5)));
        // A record changed.
        assert!(!quiet.holds(12, 8, now));
        let forever = Quiet {
            until: None,
            until_any: None,
            ..quiet
        };
        assert!(forever.holds(10, 7, later + Duration::from_secs(3600)));
        assert!(forever.holds(11, 7, later));
        assert!(!forever.holds(12, 8, now));
        assert_eq!(
            quiet.progress(10),
            StandingProgress {
                judged: 0,
                ready: 3,
                pending: 0,
                stale: 1,
                bytes: 100
            }
        );
        // After embeddings only, every judgment was made before them.
        assert_eq!(quiet.progress(11).stale, 3);
    }

    proptest! {
        /// Read by person, the index holds what its judgments say, however they were replaced
        /// and dropped: each person's best placed conversations are those of a walk over every
        /// judgment.
        #[test]
        fn placements_follow_the_judgments(
            steps in prop::collection::vec(
                (0u8..12, prop::collection::vec((0u32..20, any::<u16>()), 0..15), 0u8..5),
                1..40,
            ),
            want in 1usize..6,
        ) {
            let mut index = StandingIndex::default();
            for (number, placed, drop) in steps {
                if drop == 0 {
                    index.retain(|key| *key != conversation(number));
                } else {
                    let standings = placed
                        .into_iter()
                        .map(|(person, score)| (person, f32::from(score) / f32::from(u16::MAX)))
                        .collect();
                    index.put(conversation(number), Judgment::new(1, (0, None), standings));
                }
            }
            let skip = conversation(3);
            // Old enough that a maximum age of zero turns them down.
            std::thread::sleep(Duration::from_millis(1));
            for person in 0..21 {
                let mut walked: Vec<(u16, RecordKey)> = index
                    .judgments
                    .iter()
                    .filter(|(key, _)| **key != skip)
                    .filter_map(|(key, (_, judgment))| {
                        let at = judgment.people.binary_search(&person).ok()?;
                        Some((judgment.scores[at], key.clone()))
                    })
                    .collect();
                walked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                let mut expected = Vec::new();
                for (score, key) in walked {
                    let full = expected.len() >= want;
                    if (full && expected.last().map(|(_, last)| *last) != Some(score))
                        || expected.len() >= 4 * want
                    {
                        break;
                    }
                    expected.push((key, score));
                }
                let expected: Vec<(RecordKey, f32)> =
                    expected.into_iter().map(|(key, score)| (key, standing(score))).collect();
                let found = index.best_placed(person, 1, Duration::ZERO, want, |key| *key != skip);
                prop_assert_eq!(found, expected);
                // Judgments of another generation serve only while young enough.
                prop_assert!(index.best_placed(person, 2, Duration::ZERO, want, |_| true).is_empty());
            }
        }
    }

    #[test]
    fn a_judgment_answers_by_person_and_gives_zero_to_others() {
        let judgment = Judgment::new(3, (2, Some(10)), vec![(9, 0.25), (2, 1.0), (5, 0.5)]);
        assert_eq!(judgment.of(2), 1.0);
        assert!((judgment.of(5) - 0.5).abs() < 1e-4);
        assert!((judgment.of(9) - 0.25).abs() < 1e-4);
        assert_eq!(judgment.of(4), 0.0);
        assert!(judgment.usable(3, Duration::ZERO));
        assert!(!judgment.usable(4, Duration::ZERO));
        assert!(judgment.usable(4, Duration::from_secs(60)));
    }
}
