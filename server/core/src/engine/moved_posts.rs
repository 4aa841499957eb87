//! Property tests of delta ingest for posts that change, including posts moved to another
//! conversation (a forum's "move posts"): an engine that saw every version must equal one built
//! afresh from the final records, in its index, conversation activity, participation and
//! people's profiles.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::Engine;
use crate::domain::{Conversation, Millis, Post, RecordKey};

const SOURCE: &str = "forum";
const CONVERSATIONS: usize = 3;
const POSTS: usize = 6;
const AUTHORS: usize = 3;
const START: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;
const WORDS: &[&str] = &[
    "tracing",
    "sampling",
    "latency",
    "deploy",
    "incident",
    "outage",
    "collector",
    "kitchen",
    "garden",
    "coffee",
    "train",
    "service",
    "alerts",
    "review",
    "the",
    "and",
];
const TOLERANCE: f32 = 1e-3;

#[derive(Debug, Clone)]
enum Step {
    /// A new version of post `id` in conversation `conversation`, answering its opening or
    /// another post, with new words.
    Post {
        id: usize,
        conversation: usize,
        comment: bool,
        words: Vec<usize>,
    },
    /// A new version of a conversation: its text, and whether it is open.
    Conversation {
        id: usize,
        words: Vec<usize>,
        open: bool,
    },
}

fn words() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..WORDS.len(), 0..8)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..POSTS, 0..CONVERSATIONS, any::<bool>(), words()).prop_map(
            |(id, conversation, comment, words)| Step::Post { id, conversation, comment, words }
        ),
        1 => (0..CONVERSATIONS, words(), any::<bool>())
            .prop_map(|(id, words, open)| Step::Conversation { id, words, open }),
    ]
}

fn text(words: &[usize]) -> String {
    words
        .iter()
        .map(|word| WORDS[*word])
        .collect::<Vec<_>>()
        .join(" ")
}

fn conversation(id: usize, words: &[usize], open: bool) -> Conversation {
    let created_at = START + id as Millis * HOUR;
    Conversation {
        key: RecordKey::new(SOURCE, format!("c{id}")),
        title: format!("thread {}", text(&words[..words.len().min(2)])),
        body: text(words),
        author: Some(format!("u{}", id % AUTHORS)),
        open,
        created_at: Some(created_at),
        last_activity_at: Some(created_at + HOUR),
        ..Conversation::default()
    }
}

/// A post's author and time stay with it from version to version; one post has no author.
fn post(id: usize, conversation: usize, comment: bool, words: &[usize]) -> Post {
    Post {
        key: RecordKey::new(SOURCE, format!("p{id}")),
        conversation: format!("c{conversation}"),
        author: (id != POSTS - 1).then(|| format!("u{}", (id + 1) % AUTHORS)),
        parent: comment.then(|| format!("p{}", (id + 1) % POSTS)),
        created_at: Some(START + (10 + id as Millis) * HOUR),
        text: text(words),
        ..Post::default()
    }
}

/// Applies `steps` to an engine delta by delta, each with the version it replaces; returns it
/// with the final records.
fn live(steps: &[Step]) -> (Engine, Vec<Conversation>, Vec<Post>) {
    let mut engine = Engine::default();
    let mut conversations: Vec<Conversation> = (0..CONVERSATIONS)
        .map(|id| conversation(id, &[id, id + 1], id.is_multiple_of(2)))
        .collect();
    for conversation in &conversations {
        engine.upsert_conversation(conversation, None);
    }
    let mut posts: BTreeMap<usize, Post> = BTreeMap::new();
    for step in steps {
        match step {
            Step::Post {
                id,
                conversation,
                comment,
                words,
            } => {
                let new = post(*id, *conversation, *comment, words);
                engine.upsert_post(&new, posts.get(id));
                posts.insert(*id, new);
            }
            Step::Conversation { id, words, open } => {
                let new = conversation(*id, words, *open);
                engine.upsert_conversation(&new, Some(&conversations[*id]));
                conversations[*id] = new;
            }
        }
    }
    (engine, conversations, posts.into_values().collect())
}

/// An engine loaded from the final records alone, as a replica loads a snapshot.
fn rebuilt(conversations: &[Conversation], posts: &[Post]) -> Engine {
    let mut engine = Engine::default();
    for conversation in conversations {
        engine.upsert_conversation(conversation, None);
    }
    for post in posts {
        engine.upsert_post(post, None);
    }
    engine
}

fn terms(index: &super::CorpusIndex, key: &RecordKey) -> BTreeMap<String, f32> {
    index
        .slot(key)
        .map(|slot| {
            index
                .doc_terms(slot)
                .iter()
                .map(|(term, tf)| (index.term_text(*term).unwrap_or("?").to_owned(), *tf))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_same_terms(
    what: &str,
    live: &super::CorpusIndex,
    rebuilt: &super::CorpusIndex,
    key: &RecordKey,
) -> Result<(), TestCaseError> {
    let (live_terms, rebuilt_terms) = (terms(live, key), terms(rebuilt, key));
    let names: BTreeSet<&String> = live_terms.keys().chain(rebuilt_terms.keys()).collect();
    for term in names {
        let (a, b) = (
            live_terms.get(term).copied().unwrap_or(0.0),
            rebuilt_terms.get(term).copied().unwrap_or(0.0),
        );
        prop_assert!(
            (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1.0),
            "{what} {key:?}: term {term} weighs {a} live, {b} rebuilt"
        );
        let df = |index: &super::CorpusIndex| index.term_id(term).map_or(0, |id| index.df(id));
        prop_assert_eq!(df(live), df(rebuilt), "{} df of {}", what, term);
    }
    Ok(())
}

/// Compares everything a moved or edited post touches.
fn assert_same(live: &Engine, rebuilt: &Engine) -> Result<(), TestCaseError> {
    prop_assert_eq!(live.index.len(), rebuilt.index.len());
    prop_assert_eq!(live.activity.len(), rebuilt.activity.len());
    for id in 0..CONVERSATIONS {
        let key = RecordKey::new(SOURCE, format!("c{id}"));
        assert_same_terms("conversation", &live.index, &rebuilt.index, &key)?;
        let (a, b) = (&live.activity[&key], &rebuilt.activity[&key]);
        prop_assert_eq!(a.posts, b.posts, "posts of {:?}", key);
        let sorted = |times: &[Millis]| {
            let mut times = times.to_vec();
            times.sort_unstable();
            times
        };
        prop_assert_eq!(sorted(&a.post_times), sorted(&b.post_times));
        prop_assert_eq!(
            &a.participants,
            &b.participants,
            "participants of {:?}",
            key
        );
        prop_assert_eq!(a.replies_by_others, b.replies_by_others);
        prop_assert_eq!(a.last_activity_at, b.last_activity_at);
        prop_assert_eq!(a.open, b.open, "open of {:?}", key);
        let roles = |engine: &Engine| {
            let mut roles: Vec<(RecordKey, &'static str)> = engine
                .people
                .participants_of(&key)
                .into_iter()
                .map(|(person, role)| (person, role.as_str()))
                .collect();
            roles.sort();
            roles
        };
        prop_assert_eq!(roles(live), roles(rebuilt), "participation in {:?}", key);
    }
    let people = |engine: &Engine| engine.people.keys().cloned().collect::<BTreeSet<_>>();
    let everyone = people(live);
    prop_assert!(everyone.is_superset(&people(rebuilt)));
    let now = START + 100 * HOUR;
    for person in &everyone {
        let (a, b) = (
            live.people.summary(person, now),
            rebuilt.people.summary(person, now),
        );
        let contributions = |summary: &Option<super::people::PersonSummary>| {
            summary.as_ref().map_or(0, |summary| summary.contributions)
        };
        prop_assert_eq!(
            contributions(&a),
            contributions(&b),
            "contributions of {:?}",
            person
        );
        prop_assert_eq!(
            live.people.conversations_of(person),
            rebuilt.people.conversations_of(person)
        );
        let activity = |summary: &Option<super::people::PersonSummary>| {
            summary
                .as_ref()
                .map_or(0.0, |summary| summary.recent_activity)
        };
        prop_assert!((activity(&a) - activity(&b)).abs() <= TOLERANCE * activity(&b).max(1.0));
        assert_same_terms(
            "profile",
            live.people.profiles(),
            rebuilt.people.profiles(),
            person,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_live_engine_equals_one_rebuilt_from_the_final_posts(steps in prop::collection::vec(step(), 1..40)) {
        let (live, conversations, posts) = live(&steps);
        assert_same(&live, &rebuilt(&conversations, &posts))?;
    }
}

#[test]
fn a_moved_post_leaves_its_old_conversation() {
    let steps = [
        Step::Post {
            id: 0,
            conversation: 0,
            comment: false,
            words: vec![9, 10, 11],
        },
        Step::Post {
            id: 0,
            conversation: 1,
            comment: false,
            words: vec![9, 10, 11],
        },
    ];
    let (live, conversations, posts) = live(&steps);
    let old = RecordKey::new(SOURCE, "c0");
    assert_eq!(live.activity[&old].posts, 0);
    let conversations_alone = rebuilt(&conversations, &[]);
    assert_eq!(
        terms(&live.index, &old),
        terms(&conversations_alone.index, &old)
    );
    // Only the one who opened it is left.
    assert_eq!(live.people.participants_of(&old).len(), 1);
    assert_same(&live, &rebuilt(&conversations, &posts)).unwrap();
}
