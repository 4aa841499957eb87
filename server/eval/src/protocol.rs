//! The split and the ground truth of `design/EVALUATION.md`, built once from a dump and a strategy.
//!
//! [`Protocol`] is split in two on purpose. What the engine may see — history items, `AboutMe`
//! texts, test threads' title and body, candidates, assets — has public accessors and carries no
//! tags and nothing created at or after the cut-off. What it must not see — participation after the
//! cut-off, tags, post links — lives only in [`GroundTruth`], which the metrics read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::EvalError;
use crate::dump::{Dump, Post, PostType, Timestamp};
use crate::html::strip_html;
use crate::strategy::{LabelFacet, LabelStrategy};

/// What a history item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Question,
    Answer,
    Comment,
}

/// A question, answer or comment created strictly before the cut-off.
#[derive(Debug, Clone)]
pub struct HistoryItem {
    /// The post id, or the comment id for comments (the two id spaces overlap).
    pub id: i64,
    pub kind: ItemKind,
    /// The author when it is a person (user id 1 and above).
    pub author: Option<i64>,
    /// The question this item belongs to; `None` for comments on posts that are not
    /// questions or answers (tag wikis and the like).
    pub thread_id: Option<i64>,
    /// The answered question for answers, the commented post for comments.
    pub parent_post_id: Option<i64>,
    pub creation_date: Timestamp,
    /// Questions: title and stripped body; answers: stripped body; comments: as in the dump.
    pub text: String,
}

/// A thread created at or after the cut-off: only its title and body may be shown to the engine.
#[derive(Debug, Clone)]
pub struct TestThread {
    pub id: i64,
    pub asker: Option<i64>,
    pub creation_date: Timestamp,
    pub title: String,
    /// HTML stripped.
    pub body: String,
}

impl TestThread {
    /// Title and body, the text a ranking for this thread is computed from.
    pub fn text(&self) -> String {
        join_title_body(&self.title, &self.body)
    }
}

/// A history thread offered as supporting content (Task D).
#[derive(Debug, Clone)]
pub struct AssetDoc {
    pub thread_id: i64,
    pub title: String,
    /// Title, stripped body, and the stripped body of the accepted answer when that answer was
    /// created before the cut-off.
    pub text: String,
}

/// The labels: everything the metrics judge against, never shown to the engine.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    /// Task A: test thread → participating candidates (threads with none are not evaluated).
    pub routing: BTreeMap<i64, BTreeSet<i64>>,
    /// Task A': test thread → answering candidates.
    pub routing_answerers: BTreeMap<i64, BTreeSet<i64>>,
    /// Task B: candidate → test threads they participated in.
    pub discussions: BTreeMap<i64, BTreeSet<i64>>,
    /// Task C: per facet (in strategy order), the test threads carrying one of its tags.
    pub facets: Vec<(String, BTreeSet<i64>)>,
    /// Task C AUC: test threads relevant to any facet.
    pub strategic: BTreeSet<i64>,
    /// Task D: test thread → linked history threads.
    pub assets: BTreeMap<i64, BTreeSet<i64>>,
    /// Task E: candidates who participate in a strategically relevant test thread.
    pub prospects: BTreeSet<i64>,
}

/// The counts line of `EVALUATION.md`, a quick check that an implementation reads a dump the
/// same way as the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub threads: usize,
    pub test_threads: usize,
    pub cutoff: Timestamp,
    pub history_items: usize,
    pub candidates: usize,
    pub assets: usize,
    pub evaluated_a: usize,
    pub evaluated_a_prime: usize,
    pub evaluated_b: usize,
    pub evaluated_d: usize,
    /// Task C relevant test threads per facet, in strategy order.
    pub task_c_relevant: Vec<(String, usize)>,
    pub task_c_relevant_any: usize,
    pub prospect_hits: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_facet = if self.task_c_relevant.is_empty() {
            "none".to_owned()
        } else {
            self.task_c_relevant
                .iter()
                .map(|(_, count)| count.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} threads, {} test threads, T = {}, {} history items, {} candidates, {} assets; \
             evaluated: A {}, A' {}, B {}, D {}; Task C relevant test threads per facet {} \
             ({} relevant to any); Task E prospect hits {}",
            thousands(self.threads),
            thousands(self.test_threads),
            self.cutoff,
            thousands(self.history_items),
            thousands(self.candidates),
            thousands(self.assets),
            self.evaluated_a,
            self.evaluated_a_prime,
            self.evaluated_b,
            self.evaluated_d,
            per_facet,
            self.task_c_relevant_any,
            self.prospect_hits
        )
    }
}

fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The whole set-up of one evaluation run: split, engine-visible data, pools and ground truth.
#[derive(Debug, Clone)]
pub struct Protocol {
    thread_count: usize,
    cutoff: Timestamp,
    cutoff_text: String,
    history_items: Vec<HistoryItem>,
    about_me: BTreeMap<i64, String>,
    test_threads: Vec<TestThread>,
    test_thread_index: HashMap<i64, usize>,
    candidates: Vec<i64>,
    candidate_set: BTreeSet<i64>,
    assets: Vec<AssetDoc>,
    asset_set: BTreeSet<i64>,
    facets: Vec<LabelFacet>,
    history_counts_by_person: HashMap<i64, usize>,
    history_counts_by_thread: HashMap<i64, usize>,
    truth: GroundTruth,
}

/// A person is a user id of 1 and above; everything else is anonymous.
fn person(user_id: Option<i64>) -> Option<i64> {
    user_id.filter(|id| *id >= 1)
}

fn join_title_body(title: &str, body: &str) -> String {
    match (title.is_empty(), body.is_empty()) {
        (true, _) => body.to_owned(),
        (false, true) => title.to_owned(),
        (false, false) => format!("{title}\n{body}"),
    }
}

impl Protocol {
    /// Builds the split, the history, the pools and the ground truth.
    pub fn new(dump: &Dump, strategy: &LabelStrategy) -> Result<Protocol, EvalError> {
        let posts_by_id: HashMap<i64, &Post> =
            dump.posts.iter().map(|post| (post.id, post)).collect();
        // The question a post belongs to: itself for a question, its parent for an answer.
        let thread_of = |post_id: i64| -> Option<i64> {
            let post = posts_by_id.get(&post_id)?;
            match post.post_type {
                PostType::Question => Some(post.id),
                PostType::Answer => {
                    let parent = posts_by_id.get(&post.parent_id?)?;
                    (parent.post_type == PostType::Question).then_some(parent.id)
                }
                PostType::Other(_) => None,
            }
        };

        let mut threads: Vec<&Post> = dump
            .posts
            .iter()
            .filter(|post| post.post_type == PostType::Question)
            .collect();
        if threads.is_empty() {
            return Err(EvalError::NoThreads);
        }
        threads.sort_by_key(|post| (post.creation_date, post.id));
        let test_count = threads.len() / 5;
        let history_count = threads.len() - test_count;
        // With fewer than five threads there is no test thread; the cut-off then lies after
        // everything, so the whole dump is history.
        let cutoff = match threads.get(history_count) {
            Some(first_test) => first_test.creation_date,
            None => Timestamp(time::PrimitiveDateTime::MAX),
        };

        // History items.
        let mut history_items = Vec::new();
        for post in &dump.posts {
            if post.creation_date >= cutoff {
                continue;
            }
            let (kind, text, parent_post_id) = match post.post_type {
                PostType::Question => (
                    ItemKind::Question,
                    join_title_body(
                        post.title.as_deref().unwrap_or_default(),
                        &strip_html(&post.body),
                    ),
                    None,
                ),
                PostType::Answer => (ItemKind::Answer, strip_html(&post.body), post.parent_id),
                PostType::Other(_) => continue,
            };
            history_items.push(HistoryItem {
                id: post.id,
                kind,
                author: person(post.owner_user_id),
                thread_id: thread_of(post.id),
                parent_post_id,
                creation_date: post.creation_date,
                text,
            });
        }
        for comment in &dump.comments {
            if comment.creation_date >= cutoff {
                continue;
            }
            history_items.push(HistoryItem {
                id: comment.id,
                kind: ItemKind::Comment,
                author: person(comment.user_id),
                thread_id: thread_of(comment.post_id),
                parent_post_id: Some(comment.post_id),
                creation_date: comment.creation_date,
                text: comment.text.clone(),
            });
        }
        history_items.sort_by_key(|item| (item.creation_date, item.kind, item.id));

        let mut history_counts_by_person: HashMap<i64, usize> = HashMap::new();
        let mut history_counts_by_thread: HashMap<i64, usize> = HashMap::new();
        for item in &history_items {
            if let Some(author) = item.author {
                *history_counts_by_person.entry(author).or_default() += 1;
            }
            if let Some(thread) = item.thread_id {
                *history_counts_by_thread.entry(thread).or_default() += 1;
            }
        }
        let candidates: Vec<i64> = history_counts_by_person
            .iter()
            .filter(|(_, count)| **count >= 3)
            .map(|(person, _)| *person)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let candidate_set: BTreeSet<i64> = candidates.iter().copied().collect();

        let about_me: BTreeMap<i64, String> = dump
            .users
            .iter()
            .filter(|user| user.id >= 1)
            .filter_map(|user| {
                let text = strip_html(user.about_me.as_deref()?);
                (!text.is_empty()).then_some((user.id, text))
            })
            .collect();

        let test_threads: Vec<TestThread> = threads[history_count..]
            .iter()
            .map(|post| TestThread {
                id: post.id,
                asker: person(post.owner_user_id),
                creation_date: post.creation_date,
                title: post.title.clone().unwrap_or_default(),
                body: strip_html(&post.body),
            })
            .collect();
        let test_thread_index: HashMap<i64, usize> = test_threads
            .iter()
            .enumerate()
            .map(|(index, thread)| (thread.id, index))
            .collect();

        let assets: Vec<AssetDoc> = {
            let mut history_threads: Vec<&Post> = threads[..history_count].to_vec();
            history_threads.sort_by_key(|post| post.id);
            history_threads
                .into_iter()
                .map(|post| {
                    let title = post.title.clone().unwrap_or_default();
                    let mut text = join_title_body(&title, &strip_html(&post.body));
                    let accepted = post
                        .accepted_answer_id
                        .and_then(|id| posts_by_id.get(&id))
                        .filter(|answer| answer.creation_date < cutoff);
                    if let Some(answer) = accepted {
                        let answer_text = strip_html(&answer.body);
                        if !answer_text.is_empty() {
                            text.push('\n');
                            text.push_str(&answer_text);
                        }
                    }
                    AssetDoc {
                        thread_id: post.id,
                        title,
                        text,
                    }
                })
                .collect()
        };
        let asset_set: BTreeSet<i64> = assets.iter().map(|asset| asset.thread_id).collect();

        // Participation over the whole dump (test threads' participants come after the cut-off).
        let askers: HashMap<i64, Option<i64>> = threads
            .iter()
            .map(|post| (post.id, person(post.owner_user_id)))
            .collect();
        let mut participants: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        let mut answerers: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        let add = |map: &mut HashMap<i64, BTreeSet<i64>>, thread: i64, user: i64| {
            if askers.get(&thread).copied().flatten() != Some(user) {
                map.entry(thread).or_default().insert(user);
            }
        };
        for post in &dump.posts {
            if post.post_type != PostType::Answer {
                continue;
            }
            if let (Some(thread), Some(author)) = (thread_of(post.id), person(post.owner_user_id)) {
                add(&mut participants, thread, author);
                add(&mut answerers, thread, author);
            }
        }
        for comment in &dump.comments {
            if let (Some(thread), Some(author)) =
                (thread_of(comment.post_id), person(comment.user_id))
            {
                add(&mut participants, thread, author);
            }
        }

        let mut truth = GroundTruth::default();
        for thread in &test_threads {
            let candidates_among = |map: &HashMap<i64, BTreeSet<i64>>| -> BTreeSet<i64> {
                map.get(&thread.id)
                    .map(|users| users.intersection(&candidate_set).copied().collect())
                    .unwrap_or_default()
            };
            let participating = candidates_among(&participants);
            for user in &participating {
                truth
                    .discussions
                    .entry(*user)
                    .or_default()
                    .insert(thread.id);
            }
            if !participating.is_empty() {
                truth.routing.insert(thread.id, participating);
            }
            let answering = candidates_among(&answerers);
            if !answering.is_empty() {
                truth.routing_answerers.insert(thread.id, answering);
            }
        }

        for facet in &strategy.facets {
            let relevant: BTreeSet<i64> = test_threads
                .iter()
                .filter(|thread| {
                    posts_by_id[&thread.id]
                        .tags
                        .iter()
                        .any(|tag| facet.label_tags.contains(tag))
                })
                .map(|thread| thread.id)
                .collect();
            truth.strategic.extend(relevant.iter().copied());
            truth.facets.push((facet.id.clone(), relevant));
        }

        for link in &dump.post_links {
            if !test_thread_index.contains_key(&link.post_id) {
                continue;
            }
            if let Some(thread) =
                thread_of(link.related_post_id).filter(|id| asset_set.contains(id))
            {
                truth.assets.entry(link.post_id).or_default().insert(thread);
            }
        }

        for thread in &truth.strategic {
            if let Some(users) = participants.get(thread) {
                truth
                    .prospects
                    .extend(users.intersection(&candidate_set).copied());
            }
        }

        Ok(Protocol {
            thread_count: threads.len(),
            cutoff,
            cutoff_text: cutoff.to_string(),
            history_items,
            about_me,
            test_threads,
            test_thread_index,
            candidates,
            candidate_set,
            assets,
            asset_set,
            facets: strategy.facets.clone(),
            history_counts_by_person,
            history_counts_by_thread,
            truth,
        })
    }

    /// Questions, answers and comments created strictly before the cut-off, in time order.
    pub fn history_items(&self) -> &[HistoryItem] {
        &self.history_items
    }

    /// Each person's `AboutMe`, HTML stripped (people without one are left out), by user id.
    pub fn about_me(&self) -> impl Iterator<Item = (i64, &str)> {
        self.about_me.iter().map(|(id, text)| (*id, text.as_str()))
    }

    /// One person's `AboutMe`, HTML stripped.
    pub fn about_me_of(&self, user: i64) -> Option<&str> {
        self.about_me.get(&user).map(String::as_str)
    }

    /// Threads created at or after the cut-off, in split order (creation date, then id).
    pub fn test_threads(&self) -> &[TestThread] {
        &self.test_threads
    }

    /// The test thread with this id.
    pub fn test_thread(&self, id: i64) -> Option<&TestThread> {
        self.test_thread_index
            .get(&id)
            .map(|index| &self.test_threads[*index])
    }

    /// People with at least three history items, ascending.
    pub fn candidates(&self) -> &[i64] {
        &self.candidates
    }

    /// Whether this user is a candidate.
    pub fn is_candidate(&self, user: i64) -> bool {
        self.candidate_set.contains(&user)
    }

    /// History threads as supporting content, by ascending thread id.
    pub fn assets(&self) -> &[AssetDoc] {
        &self.assets
    }

    /// Whether this thread is an asset (a history thread).
    pub fn is_asset(&self, thread: i64) -> bool {
        self.asset_set.contains(&thread)
    }

    /// The cut-off `T`, as the dump writes timestamps.
    pub fn cutoff(&self) -> &str {
        &self.cutoff_text
    }

    /// The cut-off `T`.
    pub fn cutoff_time(&self) -> Timestamp {
        self.cutoff
    }

    /// The strategy's facets (with their labels: do not pass `label_tags` to the engine).
    pub fn facets(&self) -> &[LabelFacet] {
        &self.facets
    }

    /// Number of history items this person wrote (0 for anyone else).
    pub fn history_count_of_person(&self, user: i64) -> usize {
        self.history_counts_by_person
            .get(&user)
            .copied()
            .unwrap_or(0)
    }

    /// Number of history items in this thread (question, answers, comments on either).
    pub fn history_count_of_thread(&self, thread: i64) -> usize {
        self.history_counts_by_thread
            .get(&thread)
            .copied()
            .unwrap_or(0)
    }

    /// The labels the metrics judge against.
    pub fn ground_truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Task A's pool for a test thread: every candidate but the asker.
    pub fn routing_pool(&self, thread: i64) -> Vec<i64> {
        let asker = self.test_thread(thread).and_then(|thread| thread.asker);
        self.candidates
            .iter()
            .copied()
            .filter(|candidate| Some(*candidate) != asker)
            .collect()
    }

    /// Task B's pool for a candidate: every test thread they did not ask, in split order.
    pub fn discussion_pool(&self, user: i64) -> Vec<i64> {
        self.test_threads
            .iter()
            .filter(|thread| thread.asker != Some(user))
            .map(|thread| thread.id)
            .collect()
    }

    /// When the later half of the test period begins: the creation date of its middle thread.
    pub fn test_period_middle(&self) -> Option<Timestamp> {
        self.test_threads
            .get(self.test_threads.len() / 2)
            .map(|thread| thread.creation_date)
    }

    /// The same set-up judged on the test threads created at or after `from` only: their
    /// routing and discussions, each candidate's pool cut to them. What the feedback protocol
    /// (`docs/feedback.md`) measures after replaying the earlier threads' participations.
    pub fn from_time(&self, from: Timestamp) -> Protocol {
        let mut later = self.clone();
        later
            .test_threads
            .retain(|thread| thread.creation_date >= from);
        later.test_thread_index = later
            .test_threads
            .iter()
            .enumerate()
            .map(|(index, thread)| (thread.id, index))
            .collect();
        let kept: BTreeSet<i64> = later.test_threads.iter().map(|thread| thread.id).collect();
        let truth = &mut later.truth;
        truth.routing.retain(|thread, _| kept.contains(thread));
        truth
            .routing_answerers
            .retain(|thread, _| kept.contains(thread));
        truth.assets.retain(|thread, _| kept.contains(thread));
        for threads in truth.discussions.values_mut() {
            threads.retain(|thread| kept.contains(thread));
        }
        truth.discussions.retain(|_, threads| !threads.is_empty());
        for (_, threads) in &mut truth.facets {
            threads.retain(|thread| kept.contains(thread));
        }
        truth.strategic.retain(|thread| kept.contains(thread));
        later
    }

    /// The counts line of `EVALUATION.md`.
    pub fn counts(&self) -> Counts {
        Counts {
            threads: self.thread_count,
            test_threads: self.test_threads.len(),
            cutoff: self.cutoff,
            history_items: self.history_items.len(),
            candidates: self.candidates.len(),
            assets: self.assets.len(),
            evaluated_a: self.truth.routing.len(),
            evaluated_a_prime: self.truth.routing_answerers.len(),
            evaluated_b: self.truth.discussions.len(),
            evaluated_d: self.truth.assets.len(),
            task_c_relevant: self
                .truth
                .facets
                .iter()
                .map(|(id, relevant)| (id.clone(), relevant.len()))
                .collect(),
            task_c_relevant_any: self.truth.strategic.len(),
            prospect_hits: self.truth.prospects.len(),
        }
    }
}
