//! A community scaled up from a real dump, for benchmarks and load tests.
//!
//! Random words would make a corpus whose vocabulary, thread lengths and postings lists look
//! nothing like a real community's, and an engine tuned on such a corpus would be tuned for the
//! wrong thing. So every record here is a copy of a real one: conversation `i` copies real thread
//! `i % threads` (copy number `i / threads`), with fresh keys, dates shifted a day per copy, and
//! a share of its sentences swapped for real sentences of other threads with the same first tag.
//! Replies are the real thread's replies, repeated or thinned so the whole corpus reaches the
//! requested number of posts, in proportion to how long each real thread is. Authors are real
//! authors ranked by activity and folded into each copy's share of the population (the most
//! active keep a person of their own; the long tail shares), and rotated between repeats, so the
//! postings of people keep the real heavy tail. Real users who never wrote but have a profile
//! text become outsiders: people with a bio who are not members.
//!
//! Everything is a pure function of the dump, the sizes and the seed: the same [`ScaleSpec`]
//! gives the same corpus on every machine, thread by thread, without holding it all in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::EvalError;
use crate::dump::{Dump, PostType};
use crate::html::strip_html;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Share of a copied text's sentences replaced by sentences of another thread with its tag.
const SWAP_SHARE: u64 = 30;

/// How big a scaled community is, and the seed that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSpec {
    pub conversations: usize,
    pub posts: usize,
    pub people: usize,
    pub seed: u64,
}

impl ScaleSpec {
    /// The full size of the speed targets: 100,000 conversations, 1,000,000 posts, 50,000 people.
    pub const FULL: ScaleSpec = ScaleSpec {
        conversations: 100_000,
        posts: 1_000_000,
        people: 50_000,
        seed: 7,
    };

    /// `percent` of the full size (at least one of each).
    pub fn percent(percent: f64) -> ScaleSpec {
        let part = |full: usize| ((full as f64 * percent / 100.0).round() as usize).max(1);
        ScaleSpec {
            conversations: part(Self::FULL.conversations),
            posts: part(Self::FULL.posts),
            people: part(Self::FULL.people),
            seed: Self::FULL.seed,
        }
    }

    /// Parses a size as `N%` of the full size (`10%`, `0.5%`) or `full`.
    pub fn parse(text: &str) -> Option<ScaleSpec> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("full") {
            return Some(Self::FULL);
        }
        let percent: f64 = text.strip_suffix('%')?.trim().parse().ok()?;
        (percent > 0.0 && percent <= 1000.0).then(|| Self::percent(percent))
    }

    /// How the size is written: the percentage of the full size.
    pub fn label(&self) -> String {
        let percent = self.conversations as f64 * 100.0 / Self::FULL.conversations as f64;
        format!("{percent}%")
    }
}

/// A reply in a scaled thread.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledPost {
    pub id: String,
    /// The conversation's id for a reply to it, or the id of the reply it comments on.
    pub parent: String,
    pub author: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub text: String,
}

/// A conversation of the scaled community with its replies.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledThread {
    pub id: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub author: Option<String>,
    pub created_at: i64,
    pub last_activity_at: i64,
    /// Open when the real question has no accepted answer.
    pub open: bool,
    pub posts: Vec<ScaledPost>,
}

/// A person of the scaled community.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledPerson {
    pub id: String,
    pub bio: String,
    /// Wrote something in the real community (outsiders have only a profile).
    pub member: bool,
}

#[derive(Debug, Clone)]
struct TemplateReply {
    /// Index of the answer this comments on, among the thread's replies; `None` for replies to
    /// the question itself.
    parent: Option<usize>,
    author: Option<usize>,
    created_at: i64,
    sentences: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
struct TemplateThread {
    title: String,
    sentences: Vec<Arc<str>>,
    tags: Vec<String>,
    author: Option<usize>,
    created_at: i64,
    open: bool,
    /// Index of the sentence pool of its first tag.
    pool: usize,
    replies: Vec<TemplateReply>,
}

/// The real community, digested once, from which scaled communities are made.
#[derive(Debug, Clone)]
pub struct Community {
    threads: Vec<TemplateThread>,
    /// Sentences per first tag.
    pools: Vec<Vec<Arc<str>>>,
    /// Real users by activity rank: (bio, wrote anything).
    users: Vec<(String, bool)>,
    /// Real users who wrote something (a prefix of `users`).
    writers: usize,
}

fn millis(timestamp: &crate::Timestamp) -> i64 {
    let time = timestamp.0.assume_utc();
    time.unix_timestamp() * 1000 + i64::from(time.millisecond())
}

/// Splits a text into sentences, keeping each sentence's closing punctuation.
fn sentences(text: &str) -> Vec<Arc<str>> {
    let mut found = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        let ends = matches!(byte, b'.' | b'?' | b'!')
            && bytes.get(index + 1).is_none_or(|next| *next == b' ');
        if ends {
            let sentence = text[start..=index].trim();
            if !sentence.is_empty() {
                found.push(Arc::from(sentence));
            }
            start = index + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        found.push(Arc::from(rest));
    }
    found
}

impl Community {
    /// Digests a dump: its questions with their answers and comments, and its users ranked by
    /// how much they wrote.
    pub fn from_dump(dump: &Dump) -> Result<Community, EvalError> {
        let mut activity: HashMap<i64, usize> = HashMap::new();
        let author_of = |user: Option<i64>| user.filter(|user| *user > 0);
        for post in &dump.posts {
            if let Some(user) = author_of(post.owner_user_id) {
                *activity.entry(user).or_default() += 1;
            }
        }
        for comment in &dump.comments {
            if let Some(user) = author_of(comment.user_id) {
                *activity.entry(user).or_default() += 1;
            }
        }
        let bios: HashMap<i64, String> = dump
            .users
            .iter()
            .filter_map(|user| {
                let bio = strip_html(user.about_me.as_deref()?);
                (!bio.is_empty()).then_some((user.id, bio))
            })
            .collect();
        let mut ranked: Vec<(i64, usize)> = activity.iter().map(|(u, n)| (*u, *n)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let writers = ranked.len();
        let mut outsiders: Vec<i64> = bios
            .keys()
            .filter(|user| !activity.contains_key(user))
            .copied()
            .collect();
        outsiders.sort_unstable();
        let mut rank_of: HashMap<i64, usize> = HashMap::new();
        let mut users = Vec::with_capacity(writers + outsiders.len());
        for (user, _) in &ranked {
            rank_of.insert(*user, users.len());
            users.push((bios.get(user).cloned().unwrap_or_default(), true));
        }
        for user in outsiders {
            users.push((bios[&user].clone(), false));
        }
        let rank = |user: Option<i64>| author_of(user).and_then(|user| rank_of.get(&user).copied());

        let mut pool_ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut pools: Vec<Vec<Arc<str>>> = Vec::new();
        let mut threads: Vec<TemplateThread> = Vec::new();
        let mut thread_of_question: HashMap<i64, usize> = HashMap::new();
        let mut questions: Vec<_> = dump
            .posts
            .iter()
            .filter(|post| post.post_type == PostType::Question)
            .collect();
        questions.sort_by_key(|post| post.id);
        for question in questions {
            let first_tag = question.tags.first().cloned().unwrap_or_default();
            let next = pool_ids.len();
            let pool = *pool_ids.entry(first_tag).or_insert(next);
            if pool == pools.len() {
                pools.push(Vec::new());
            }
            let body = sentences(&strip_html(&question.body));
            pools[pool].extend(body.iter().cloned());
            thread_of_question.insert(question.id, threads.len());
            threads.push(TemplateThread {
                title: question.title.clone().unwrap_or_default(),
                sentences: body,
                tags: question.tags.clone(),
                author: rank(question.owner_user_id),
                created_at: millis(&question.creation_date),
                open: question.accepted_answer_id.is_none(),
                pool,
                replies: Vec::new(),
            });
        }
        if threads.is_empty() {
            return Err(EvalError::NoThreads);
        }
        // Answers, then comments on questions and answers, in time order within a thread.
        let mut answers: Vec<_> = dump
            .posts
            .iter()
            .filter(|post| post.post_type == PostType::Answer)
            .collect();
        answers.sort_by_key(|post| post.id);
        let mut answer_slot: HashMap<i64, (usize, usize)> = HashMap::new();
        for answer in answers {
            let Some(&thread) = answer
                .parent_id
                .and_then(|parent| thread_of_question.get(&parent))
            else {
                continue;
            };
            let text = sentences(&strip_html(&answer.body));
            let template = &mut threads[thread];
            pools[template.pool].extend(text.iter().cloned());
            answer_slot.insert(answer.id, (thread, template.replies.len()));
            template.replies.push(TemplateReply {
                parent: None,
                author: rank(answer.owner_user_id),
                created_at: millis(&answer.creation_date),
                sentences: text,
            });
        }
        let mut comments: Vec<_> = dump.comments.iter().collect();
        comments.sort_by_key(|comment| comment.id);
        for comment in comments {
            let (thread, parent) = match thread_of_question.get(&comment.post_id) {
                Some(&thread) => (thread, None),
                None => match answer_slot.get(&comment.post_id) {
                    Some(&(thread, answer)) => (thread, Some(answer)),
                    None => continue,
                },
            };
            let text = sentences(&strip_html(&comment.text));
            let template = &mut threads[thread];
            pools[template.pool].extend(text.iter().cloned());
            template.replies.push(TemplateReply {
                parent,
                author: rank(comment.user_id),
                created_at: millis(&comment.creation_date),
                sentences: text,
            });
        }
        Ok(Community {
            threads,
            pools,
            users,
            writers,
        })
    }

    /// The real community's size: (threads, replies, users who wrote, users with a profile only).
    pub fn real_counts(&self) -> (usize, usize, usize, usize) {
        let replies = self.threads.iter().map(|thread| thread.replies.len()).sum();
        (
            self.threads.len(),
            replies,
            self.writers,
            self.users.len() - self.writers,
        )
    }

    /// A scaled community of the given size.
    pub fn scaled(&self, spec: ScaleSpec) -> Scaled<'_> {
        let copies = spec.conversations.div_ceil(self.threads.len()).max(1);
        let real_replies: usize = (0..spec.conversations)
            .map(|index| self.threads[index % self.threads.len()].replies.len())
            .sum();
        // Each copy's population: an equal share of the people who write. Outsiders come after.
        let outsiders = (self.users.len() - self.writers).min(spec.people / 10);
        let writers_per_copy = ((spec.people - outsiders) / copies).max(1);
        Scaled {
            community: self,
            spec,
            real_replies: real_replies.max(1),
            writers_per_copy,
            outsiders,
        }
    }
}

/// A scaled community, generated thread by thread.
#[derive(Debug, Clone)]
pub struct Scaled<'a> {
    community: &'a Community,
    spec: ScaleSpec,
    real_replies: usize,
    writers_per_copy: usize,
    outsiders: usize,
}

/// People of a scaled community sampled by how they take part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeopleSample {
    /// Members who wrote the most (the head of the postings distribution).
    pub active: Vec<String>,
    /// Members who wrote once or twice.
    pub occasional: Vec<String>,
    /// People with a profile who never wrote.
    pub outsiders: Vec<String>,
}

impl Scaled<'_> {
    pub fn spec(&self) -> ScaleSpec {
        self.spec
    }

    /// The person a real user (by rank) is in copy `copy`, at repeat `repeat` of a reply.
    fn person_of(&self, rank: usize, copy: usize, repeat: usize) -> usize {
        let folded = (rank + repeat * 7919) % self.community.writers.max(1);
        let local = folded % self.writers_per_copy;
        let index = copy * self.writers_per_copy + local;
        index % (self.spec.people - self.outsiders).max(1)
    }

    fn person_id(index: usize) -> String {
        format!("p{index}")
    }

    /// Every person, in id order: writers first, then outsiders.
    pub fn people(&self) -> impl Iterator<Item = ScaledPerson> + '_ {
        let writers = self.spec.people - self.outsiders;
        (0..self.spec.people).map(move |index| {
            if index < writers {
                let rank = (index % self.writers_per_copy) % self.community.writers.max(1);
                ScaledPerson {
                    id: Self::person_id(index),
                    bio: self.community.users[rank].0.clone(),
                    member: true,
                }
            } else {
                let outsider = index - writers;
                ScaledPerson {
                    id: Self::person_id(index),
                    bio: self.community.users[self.community.writers + outsider]
                        .0
                        .clone(),
                    member: false,
                }
            }
        })
    }

    /// Real replies of the threads copied by conversations `0..index`.
    fn replies_before(&self, index: usize) -> usize {
        let threads = &self.community.threads;
        let per_round: usize = threads.iter().map(|thread| thread.replies.len()).sum();
        let rounds = index / threads.len();
        let partial: usize = threads[..index % threads.len()]
            .iter()
            .map(|thread| thread.replies.len())
            .sum();
        rounds * per_round + partial
    }

    /// Every conversation with its replies, in id order.
    pub fn threads(&self) -> impl Iterator<Item = ScaledThread> + '_ {
        let mut before = 0usize;
        (0..self.spec.conversations).map(move |index| {
            let thread = self.thread_after(index, before);
            before += self.community.threads[index % self.community.threads.len()]
                .replies
                .len();
            thread
        })
    }

    /// Conversation `index` alone.
    pub fn thread(&self, index: usize) -> ScaledThread {
        self.thread_after(index, self.replies_before(index))
    }

    fn thread_after(&self, index: usize, before: usize) -> ScaledThread {
        let community = self.community;
        let template = &community.threads[index % community.threads.len()];
        let copy = index / community.threads.len();
        let mut random = ChaCha8Rng::seed_from_u64(self.spec.seed ^ (index as u64).rotate_left(17));
        let pool = &community.pools[template.pool];
        let recombine = |sentences: &[Arc<str>], random: &mut ChaCha8Rng| -> String {
            let mut text = String::new();
            for sentence in sentences {
                let chosen = if copy > 0 && random.next_u64() % 100 < SWAP_SHARE && !pool.is_empty()
                {
                    &pool[(random.next_u64() % pool.len() as u64) as usize]
                } else {
                    sentence
                };
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(chosen);
            }
            text
        };
        let shift = copy as i64 * DAY_MS;
        let id = format!("t{index}");
        let body = recombine(&template.sentences, &mut random);
        let own = template.replies.len();
        let count = self.reply_count_after(before, own);
        let mut posts = Vec::with_capacity(count);
        let mut last_activity_at = template.created_at + shift;
        for reply in 0..count {
            let template_index = reply % own.max(1);
            let repeat = reply / own.max(1);
            let Some(real) = template.replies.get(template_index) else {
                break;
            };
            let parent = match real.parent {
                // A comment on an answer comments on the same repeat's copy of that answer.
                Some(answer) if answer + repeat * own < count => {
                    format!("{id}-r{}", answer + repeat * own)
                }
                _ => id.clone(),
            };
            let created_at = real.created_at + shift + repeat as i64 * HOUR_MS;
            last_activity_at = last_activity_at.max(created_at);
            posts.push(ScaledPost {
                id: format!("{id}-r{reply}"),
                parent,
                author: real
                    .author
                    .map(|rank| Self::person_id(self.person_of(rank, copy, repeat))),
                created_at,
                text: recombine(&real.sentences, &mut random),
            });
        }
        ScaledThread {
            title: template.title.clone(),
            body,
            tags: template.tags.clone(),
            author: template
                .author
                .map(|rank| Self::person_id(self.person_of(rank, copy, 0))),
            created_at: template.created_at + shift,
            last_activity_at,
            open: template.open,
            posts,
            id,
        }
    }

    /// Up to `each` people of each kind, found from the authorship of the corpus (no text is
    /// generated for this).
    pub fn sample_people(&self, each: usize) -> PeopleSample {
        let mut written: HashMap<usize, usize> = HashMap::new();
        let community = self.community;
        let mut before = 0usize;
        for index in 0..self.spec.conversations {
            let template = &community.threads[index % community.threads.len()];
            let copy = index / community.threads.len();
            if let Some(rank) = template.author {
                *written.entry(self.person_of(rank, copy, 0)).or_default() += 1;
            }
            let own = template.replies.len();
            let count = self.reply_count_after(before, own);
            for reply in 0..count {
                if let Some(rank) = template.replies[reply % own].author {
                    let person = self.person_of(rank, copy, reply / own);
                    *written.entry(person).or_default() += 1;
                }
            }
            before += own;
        }
        let mut by_activity: Vec<(usize, usize)> = written.into_iter().collect();
        by_activity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let active = by_activity
            .iter()
            .take(each)
            .map(|(person, _)| Self::person_id(*person))
            .collect();
        let mut occasional: Vec<usize> = by_activity
            .iter()
            .filter(|(_, count)| *count <= 2)
            .map(|(person, _)| *person)
            .collect();
        occasional.sort_unstable();
        // Spread over the id range rather than the first few.
        let step = (occasional.len() / each.max(1)).max(1);
        let occasional = occasional
            .into_iter()
            .step_by(step)
            .take(each)
            .map(Self::person_id)
            .collect();
        let writers = self.spec.people - self.outsiders;
        let step = (self.outsiders / each.max(1)).max(1);
        let outsiders = (writers..self.spec.people)
            .step_by(step)
            .take(each)
            .map(Self::person_id)
            .collect();
        PeopleSample {
            active,
            occasional,
            outsiders,
        }
    }

    fn reply_count_after(&self, before: usize, own: usize) -> usize {
        let scale = |count: usize| {
            ((count as u128 * self.spec.posts as u128) / self.real_replies as u128) as usize
        };
        scale(before + own) - scale(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{Comment, Post, Timestamp, User};

    fn time(day: u32) -> Timestamp {
        Timestamp::parse(&format!("2020-01-{day:02}T10:00:00.000")).expect("a valid time")
    }

    fn post(id: i64, kind: PostType, parent: Option<i64>, user: i64, body: &str) -> Post {
        Post {
            id,
            post_type: kind,
            parent_id: parent,
            accepted_answer_id: None,
            creation_date: time(1 + id as u32 % 20),
            owner_user_id: Some(user),
            title: (kind == PostType::Question).then(|| format!("Question {id}?")),
            body: body.to_owned(),
            tags: vec!["qubits".into()],
        }
    }

    fn dump() -> Dump {
        Dump {
            posts: vec![
                post(
                    1,
                    PostType::Question,
                    None,
                    1,
                    "<p>How do qubits decohere? I wonder.</p>",
                ),
                post(2, PostType::Answer, Some(1), 2, "Through noise. And heat."),
                post(3, PostType::Question, None, 2, "What is a gate? Tell me."),
                post(4, PostType::Answer, Some(3), 1, "A unitary. Nothing more."),
            ],
            comments: vec![Comment {
                id: 10,
                post_id: 2,
                creation_date: time(5),
                user_id: Some(3),
                text: "Good answer. Thanks!".into(),
            }],
            users: vec![User {
                id: 9,
                about_me: Some("<p>I read about physics.</p>".into()),
            }],
            post_links: Vec::new(),
        }
    }

    #[test]
    fn scaled_sizes_are_exact_and_the_output_is_deterministic() {
        let community = Community::from_dump(&dump()).expect("the dump digests");
        assert_eq!(community.real_counts(), (2, 3, 3, 1));
        let spec = ScaleSpec {
            conversations: 25,
            posts: 100,
            people: 12,
            seed: 3,
        };
        let scaled = community.scaled(spec);
        let threads: Vec<ScaledThread> = scaled.threads().collect();
        assert_eq!(threads.len(), 25);
        assert_eq!(threads.iter().map(|t| t.posts.len()).sum::<usize>(), 100);
        assert_eq!(scaled.people().count(), 12);
        assert_eq!(scaled.people().filter(|p| !p.member).count(), 1);
        assert_eq!(
            threads,
            community.scaled(spec).threads().collect::<Vec<_>>()
        );
        assert_eq!(scaled.thread(17), threads[17]);
        let ids: std::collections::HashSet<&str> = threads
            .iter()
            .flat_map(|t| {
                std::iter::once(t.id.as_str()).chain(t.posts.iter().map(|p| p.id.as_str()))
            })
            .collect();
        assert_eq!(ids.len(), 125, "every key is fresh");
        let people: std::collections::HashSet<String> =
            scaled.people().map(|person| person.id).collect();
        for thread in &threads {
            for author in thread.posts.iter().filter_map(|p| p.author.as_ref()) {
                assert!(
                    people.contains(author),
                    "{author} is a person of the community"
                );
            }
            for post in &thread.posts {
                assert!(post.parent == thread.id || ids.contains(post.parent.as_str()));
            }
        }
        // Copies reuse real sentences only.
        let real: std::collections::HashSet<Arc<str>> =
            community.pools.iter().flatten().cloned().collect();
        for thread in &threads {
            let texts = std::iter::once(&thread.body).chain(thread.posts.iter().map(|p| &p.text));
            for text in texts {
                assert!(
                    sentences(text)
                        .iter()
                        .all(|sentence| real.contains(sentence))
                );
            }
        }
        let sample = scaled.sample_people(2);
        assert_eq!(sample.active.len(), 2);
        assert_eq!(sample.outsiders.len(), 1);
    }

    #[test]
    fn sizes_parse_as_percentages_of_the_full_size() {
        assert_eq!(ScaleSpec::parse("full"), Some(ScaleSpec::FULL));
        assert_eq!(ScaleSpec::parse("10%").map(|s| s.posts), Some(100_000));
        assert_eq!(ScaleSpec::parse("0.1%").map(|s| s.people), Some(50));
        assert_eq!(ScaleSpec::parse("ten"), None);
        assert_eq!(ScaleSpec::percent(25.0).label(), "25%");
    }
}
