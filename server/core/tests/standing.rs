//! The standing index (where people stand in each open conversation, judged ahead of
//! `SuggestDiscussions`): once complete it answers as judging on request does, and finds the
//! conversations where a person is placed that their profile does not reach; a
//! conversation that changes is judged again first; judgments of the present are used only
//! while the maximum age allows; nothing is judged while records keep arriving.
//!
//! Communities are generated: people who write about a few topics each, in threads that others
//! answer, so that standings differ from person to person and conversation to conversation.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use trellis_core::domain::{Conversation, Post, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::engine::people::PeopleSettings;

const TOPICS: &[&[&str]] = &[
    &["tracing", "span", "sampling", "collector", "propagation"],
    &["deploy", "rollback", "canary", "release", "pipeline"],
    &["incident", "outage", "postmortem", "pager", "escalation"],
    &["bread", "sourdough", "oven", "flour", "crust"],
    &["garden", "tomato", "compost", "seedling", "soil"],
];

/// A deterministic stream of numbers, so that a seed names a community.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % sides as u64) as usize
    }
}

fn text(dice: &mut Dice, topic: usize, words: usize) -> String {
    (0..words)
        .map(|_| {
            let topic = if dice.roll(4) == 0 {
                dice.roll(TOPICS.len())
            } else {
                topic
            };
            TOPICS[topic][dice.roll(TOPICS[topic].len())]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Community {
    conversations: Vec<Conversation>,
    posts: Vec<Post>,
    people: usize,
}

/// `threads` threads by `people` people; person `p` favours topic `p % 5` and answers threads
/// of that topic more often than others.
fn community(seed: u64, threads: usize, people: usize) -> Community {
    let mut dice = Dice(seed);
    let mut conversations = Vec::new();
    let mut posts = Vec::new();
    for thread in 0..threads {
        let author = dice.roll(people);
        let topic = (author + usize::from(dice.roll(3) == 0)) % TOPICS.len();
        let created = 1_700_000_000_000 + thread as i64 * 3_600_000;
        conversations.push(Conversation {
            key: RecordKey::new("forum", format!("t{thread}")),
            title: text(&mut dice, topic, 4),
            body: text(&mut dice, topic, 20),
            author: Some(format!("u{author}")),
            open: true,
            created_at: Some(created),
            last_activity_at: Some(created),
            ..Default::default()
        });
        for reply in 0..dice.roll(4) {
            let mut replier = dice.roll(people);
            if replier % TOPICS.len() != topic && dice.roll(2) == 0 {
                replier = (topic + TOPICS.len() * dice.roll(people.div_ceil(TOPICS.len())))
                    .min(people - 1);
            }
            posts.push(Post {
                key: RecordKey::new("forum", format!("t{thread}r{reply}")),
                conversation: format!("t{thread}"),
                author: Some(format!("u{replier}")),
                parent: None,
                created_at: Some(created + (reply as i64 + 1) * 60_000),
                text: text(&mut dice, topic, 12),
                reactions: 0,
            });
        }
    }
    Community {
        conversations,
        posts,
        people,
    }
}

fn engine(community: &Community, max_age: Duration) -> Engine {
    let mut engine = Engine::new(Default::default());
    engine.set_standing_max_age(max_age);
    for conversation in &community.conversations {
        engine.upsert_conversation(conversation, None);
    }
    for post in &community.posts {
        engine.upsert_post(post, None);
    }
    engine
}

fn person(index: usize) -> RecordKey {
    RecordKey::new("forum", format!("u{index}"))
}

/// Every person's suggestions about the present: (conversation, score) in order.
fn suggestions(engine: &Engine, people: usize) -> Vec<Vec<(RecordKey, f32)>> {
    (0..people)
        .map(|index| {
            engine
                .suggest_discussions(&person(index), None, 10)
                .into_iter()
                .map(|found| (found.conversation, found.score))
                .collect()
        })
        .collect()
}

fn complete(engine: &Engine) -> usize {
    let mut judged = 0;
    loop {
        let progress = engine.refresh_standing(Duration::from_secs(60), Duration::ZERO);
        judged += progress.judged;
        if progress.pending == 0 {
            return judged;
        }
    }
}

/// An engine that judges on request only, and looks at every conversation its profile reaches.
fn judging_on_request(community: &Community) -> Engine {
    with_people(
        community,
        PeopleSettings {
            discussion_pool: 100_000,
            ..PeopleSettings::default()
        },
    )
}

/// An engine whose profile queries walk at most `postings` postings.
fn bounded(community: &Community, postings: usize) -> Engine {
    with_people(
        community,
        PeopleSettings {
            profile_postings: postings,
            ..PeopleSettings::default()
        },
    )
}

fn with_people(community: &Community, people: PeopleSettings) -> Engine {
    let mut engine = Engine::with_people(ModelSettings::default(), people);
    for conversation in &community.conversations {
        engine.upsert_conversation(conversation, None);
    }
    for post in &community.posts {
        engine.upsert_post(post, None);
    }
    engine
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A profile query held to fewer postings than it would walk finds its candidates from the
    /// terms that fit, then scores them with the whole profile: every fit it reports is the
    /// exact one, best first, among conversations the person may join.
    #[test]
    fn a_bounded_profile_query_reports_exact_fits_best_first(
        seed in 0u64..1_000,
        postings in 1usize..200,
    ) {
        let community = community(seed, 60, 15);
        let exact = bounded(&community, usize::MAX);
        let cheap = bounded(&community, postings);
        for index in 0..community.people {
            let everything: HashMap<RecordKey, u32> = exact
                .conversations_for(&person(index), true, 100_000)
                .into_iter()
                .map(|found| (found.conversation, found.personal.to_bits()))
                .collect();
            let found = cheap.conversations_for(&person(index), true, 10);
            prop_assert!(found.len() <= 10);
            for pair in found.windows(2) {
                prop_assert!(pair[0].personal >= pair[1].personal, "{:?}", pair);
            }
            for found in &found {
                prop_assert_eq!(
                    everything.get(&found.conversation).copied(),
                    Some(found.personal.to_bits()),
                    "{:?}", found
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A complete standing index answers as judging on request does, and looks further: it
    /// also finds the conversations where a person is placed that their profile does not reach.
    /// Every suggestion it makes scores as judging on request scores it, and its suggestions are,
    /// place by place, at least as good as the best that judging every conversation the profile
    /// reaches finds.
    #[test]
    fn a_complete_index_answers_as_judging_on_request(seed in any::<u64>(), threads in 8usize..40) {
        let community = community(seed, threads, 12);
        let indexed = engine(&community, Duration::from_secs(600));
        let before = indexed.standing_progress();
        prop_assert_eq!((before.ready, before.pending), (0, community.conversations.len()));
        let judged = complete(&indexed);
        let after = indexed.standing_progress();
        prop_assert_eq!((after.judged, after.ready, after.pending), (0, judged, 0));
        prop_assert_eq!(judged, community.conversations.len());
        for index in 0..community.people {
            // A fresh engine per person, so that nothing judged for one serves another.
            let reference: HashMap<RecordKey, f32> = judging_on_request(&community)
                .suggest_discussions(&person(index), None, 100_000)
                .into_iter()
                .map(|found| (found.conversation, found.score))
                .collect();
            let mut best: Vec<f32> = reference.values().copied().collect();
            best.sort_by(|a, b| b.total_cmp(a));
            let served = indexed.suggest_discussions(&person(index), None, 10);
            prop_assert!(served.len() >= best.len().min(10), "{} of {}", served.len(), best.len());
            for (place, found) in served.iter().enumerate() {
                if let Some(score) = reference.get(&found.conversation) {
                    prop_assert_eq!(found.score.to_bits(), score.to_bits(), "{:?}", found);
                }
                if let Some(score) = best.get(place) {
                    prop_assert!(found.score >= *score, "place {}: {:?} under {}", place, found, score);
                }
            }
        }
        // Nothing left to judge: the index is current.
        let progress = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
        prop_assert_eq!((progress.judged, progress.pending), (0, 0));
        prop_assert_eq!(progress.ready, community.conversations.len());
        prop_assert!(progress.bytes > 0);
    }
}

#[test]
fn a_changed_conversation_is_judged_again_first_and_old_judgments_serve_meanwhile() {
    let community = community(7, 30, 12);
    let mut indexed = engine(&community, Duration::from_secs(600));
    complete(&indexed);
    let before = suggestions(&indexed, community.people);

    // u3 answers t5: the corpus moves on.
    let reply = Post {
        key: RecordKey::new("forum", "late-reply"),
        conversation: "t5".into(),
        author: Some("u3".into()),
        parent: None,
        created_at: Some(1_800_000_000_000),
        text: "sampling collector propagation tracing span".into(),
        reactions: 0,
    };
    indexed.upsert_post(&reply, None);

    // Nothing is judged while records keep arriving.
    let waiting = indexed.refresh_standing(Duration::from_secs(60), Duration::from_secs(3600));
    assert_eq!(waiting.judged, 0);
    assert_eq!(waiting.pending, 1, "t5 changed: {waiting:?}");

    // The other judgments are young enough to serve, so only t5 is judged again.
    let progress = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!((progress.judged, progress.pending), (1, 0), "{progress:?}");

    // What the person did is applied at once even where judgments are older: u3 is no longer
    // sent to the thread they just answered.
    let t5 = RecordKey::new("forum", "t5");
    let served = suggestions(&indexed, community.people);
    assert!(
        served[3]
            .iter()
            .all(|(conversation, _)| conversation != &t5)
    );
    assert_eq!(served.len(), before.len());

    let mut current = community;
    current.posts.push(reply);
    let strict = engine(&current, Duration::ZERO);
    let now = suggestions(&strict, current.people);

    // With no maximum age, every old judgment is redone on request: the index then answers
    // exactly as judging on request does.
    indexed.set_standing_max_age(Duration::ZERO);
    assert_eq!(suggestions(&indexed, current.people), now);
}

/// A refresh that finds nothing to judge is remembered, not repeated on every call; it still
/// sees judgments made before the corpus moved on grow old, and redoes them then.
#[test]
fn a_quiet_index_still_redoes_judgments_that_grow_old() {
    const MAX_AGE: Duration = Duration::from_secs(4);
    let community = community(5, 24, 10);
    let mut indexed = engine(&community, MAX_AGE);
    assert_eq!(complete(&indexed), 24);
    let quiet = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!(
        (quiet.judged, quiet.pending, quiet.ready, quiet.stale),
        (0, 0, 24, 0)
    );
    assert_eq!(
        indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO),
        quiet
    );

    // The corpus moves on: the changed thread is judged again at once, the others only once
    // their judgments are half the maximum age old.
    indexed.upsert_post(
        &Post {
            key: RecordKey::new("forum", "late-reply"),
            conversation: "t2".into(),
            author: Some("u4".into()),
            parent: None,
            created_at: Some(1_800_000_000_000),
            text: "garden tomato compost".into(),
            reactions: 0,
        },
        None,
    );
    // The 23 others were judged before it moved on: stale, as the status says, not pending.
    assert_eq!(
        (
            indexed.standing_progress().pending,
            indexed.standing_progress().stale
        ),
        (1, 23)
    );
    let changed = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!(
        (changed.judged, changed.pending, changed.stale),
        (1, 0, 23),
        "{changed:?}"
    );
    let young = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!(
        (young.judged, young.pending, young.ready, young.stale),
        (0, 0, 24, 23)
    );
    assert_eq!(indexed.standing_progress(), young);

    std::thread::sleep(MAX_AGE / 2);
    let old = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!((old.judged, old.stale), (23, 0), "{old:?}");
    assert_eq!(indexed.standing_progress().stale, 0);
}

#[test]
fn judgments_of_closed_and_removed_conversations_are_dropped() {
    let community = community(11, 20, 10);
    let mut indexed = engine(&community, Duration::from_secs(600));
    assert_eq!(complete(&indexed), 20);

    let mut closed = community.conversations[0].clone();
    closed.open = false;
    indexed.upsert_conversation(&closed, Some(&community.conversations[0]));
    indexed.remove_conversation(&community.conversations[1].key);
    let progress = indexed.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert_eq!(progress.ready, 18, "{progress:?}");
    assert_eq!(progress.pending, 0, "{progress:?}");
}

#[test]
fn a_request_judges_what_the_index_lacks() {
    let community = community(3, 25, 10);
    let lazy = engine(&community, Duration::from_secs(600));
    let strict = engine(&community, Duration::ZERO);
    // No refresh ran: every conversation a request weighs is judged by the request and kept.
    assert_eq!(
        suggestions(&lazy, community.people),
        suggestions(&strict, community.people)
    );
    let progress = lazy.refresh_standing(Duration::from_secs(60), Duration::ZERO);
    assert!(
        progress.ready > 0,
        "requests kept their judgments: {progress:?}"
    );
}
