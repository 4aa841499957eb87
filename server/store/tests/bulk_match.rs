//! A CRM's bulk match while the workspace is written to and single contacts are asked about:
//! nothing may wait forever. (It once did: each contact of a bulk match took the engine's read
//! lock inside one of rayon's workers; with a writer queued, every worker waited for the lock,
//! while a single match, holding the lock, waited for a worker to do part of its work.) And the
//! insight index that answers a bulk match: what it keeps is what is made from scratch, and a
//! person's writing or a new strategy makes it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use trellis_core::domain::{Conversation, Person, Post, Record, RecordKey, WorkspaceId};
use trellis_core::service::{PersonLookup, Settings, Trellis};
use trellis_core::strategy::{Facet, FacetKind, Strategy};
use trellis_store::SqliteStore;

const WORDS: &[&str] = &[
    "circuit",
    "simulator",
    "noise",
    "qubit",
    "compiler",
    "gate",
    "benchmark",
    "error",
    "correction",
    "hardware",
    "pulse",
    "calibration",
];

const PEOPLE: usize = 40;

fn text(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(seed * 7 + i * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn strategy(version: usize) -> Strategy {
    Strategy {
        name: format!("Bulk {version}"),
        mission: "Help people build quantum software.".into(),
        facets: vec![Facet {
            id: "simulate".into(),
            kind: FacetKind::Job,
            name: "simulating circuits".into(),
            description: "When I simulate circuits, I want to see the noise.".into(),
            examples: vec!["how do I simulate noise".into()],
            keywords: vec!["simulator".into(), WORDS[version % WORDS.len()].into()],
            weight: 1.0,
        }],
        exclusions: Vec::new(),
    }
}

fn community() -> Vec<(u64, Record)> {
    let mut records = Vec::new();
    for id in 0..PEOPLE {
        records.push(Record::Person(Person {
            key: RecordKey::new("forum", format!("u{id}")),
            display_name: format!("Person {id}"),
            bio: text(id * 11, 12),
            member: true,
            ..Person::default()
        }));
    }
    for id in 0..PEOPLE {
        records.push(Record::Conversation(Conversation {
            key: RecordKey::new("forum", format!("c{id}")),
            title: text(id, 5),
            body: text(id * 3, 30),
            author: Some(format!("u{id}")),
            open: true,
            created_at: Some(1_700_000_000_000 + id as i64 * 60_000),
            ..Conversation::default()
        }));
        for reply in 0..3 {
            let number = id * 3 + reply;
            records.push(Record::Post(Post {
                key: RecordKey::new("forum", format!("p{number}")),
                conversation: format!("c{id}"),
                author: Some(format!("u{}", (id + reply + 1) % PEOPLE)),
                text: text(number * 5, 20),
                created_at: Some(1_700_000_100_000 + number as i64 * 60_000),
                ..Post::default()
            }));
        }
    }
    records
        .into_iter()
        .enumerate()
        .map(|(position, record)| (position as u64, record))
        .collect()
}

/// A service on a fresh SQLite store holding the community and its strategy, in the default
/// workspace; the folder goes with the first value.
fn open_community(settings: Settings) -> (tempfile::TempDir, Trellis) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).expect("open the store");
    let trellis = Trellis::open(Arc::new(store), settings).unwrap();
    let workspace = WorkspaceId::default_workspace();
    trellis
        .put_strategy(&workspace, strategy(0), 1_700_000_000_000)
        .unwrap();
    let outcome = trellis.ingest(&workspace, community()).unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    (dir, trellis)
}

#[test]
fn a_bulk_match_never_waits_on_itself_while_the_workspace_is_written() {
    let (_dir, trellis) = open_community(Settings::default());
    let trellis = Arc::new(trellis);
    let workspace = WorkspaceId::default_workspace();
    let lookups: Vec<PersonLookup> = (0..PEOPLE * 5)
        .map(|index| PersonLookup::Record(RecordKey::new("forum", format!("u{}", index % PEOPLE))))
        .chain([PersonLookup::Handle("nobody".into())])
        .collect();

    // A writer takes the engine's write lock over and over while the contacts are matched.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (trellis, workspace, stop) =
            (Arc::clone(&trellis), workspace.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                trellis
                    .put_strategy(
                        &workspace,
                        strategy(version),
                        1_700_000_000_000 + version as i64,
                    )
                    .unwrap();
                version += 1;
            }
        })
    };
    // And a CRM asks about one contact at a time beside the bulk match, as unary calls do:
    // holding the engine's read lock, it waits for rayon's workers to do part of its work.
    let single = {
        let (trellis, workspace, stop) =
            (Arc::clone(&trellis), workspace.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                let lookup =
                    PersonLookup::Record(RecordKey::new("forum", format!("u{}", index % PEOPLE)));
                let found = trellis.match_person(&workspace, &lookup, 5).unwrap();
                assert!(found.is_some());
                index += 1;
            }
        })
    };
    let (done, finished) = std::sync::mpsc::channel();
    {
        let (trellis, workspace) = (Arc::clone(&trellis), workspace.clone());
        std::thread::spawn(move || {
            for _ in 0..20 {
                let matches = trellis.match_people(&workspace, &lookups).unwrap();
                let found = matches
                    .iter()
                    .filter(|outcome| matches!(outcome, Ok(Some(_))))
                    .count();
                assert_eq!(found, PEOPLE * 5, "every known contact is found");
                assert!(matches!(matches.last(), Some(Ok(None))), "nobody is nobody");
            }
            let _ = done.send(());
        });
    }
    // Not a speed claim: twenty rounds take seconds; only a bulk match that waits on itself
    // takes this long.
    let outcome = finished.recv_timeout(Duration::from_secs(600));
    stop.store(true, Ordering::Relaxed);
    match outcome {
        Ok(()) => {
            writer.join().unwrap();
            single.join().unwrap();
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the bulk match stopped: it waits on the engine's lock it already holds")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the bulk match failed (see its panic above)")
        }
    }
}

/// `author` writes a new post in the first conversation.
fn write_post(trellis: &Trellis, author: &str, text: &str) {
    let post = Post {
        key: RecordKey::new("forum", format!("p-{author}-{}", text.len())),
        conversation: "c1".into(),
        author: Some(author.into()),
        text: text.into(),
        created_at: Some(1_800_000_000_000),
        ..Post::default()
    };
    let outcome = trellis
        .ingest(
            &WorkspaceId::default_workspace(),
            vec![(0, Record::Post(post))],
        )
        .unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

fn insights_ready(trellis: &Trellis) -> (usize, usize) {
    let status = trellis.insight_status().unwrap();
    assert_eq!(status.len(), 1, "one workspace");
    (status[0].1.ready, status[0].1.pending)
}

/// Makes insights until the index has nothing left to do.
fn fill_insights(trellis: &Trellis) {
    while trellis
        .refresh_insights(Duration::from_secs(5), Duration::ZERO)
        .unwrap()
        .made
        > 0
    {}
}

#[test]
fn the_insight_index_answers_as_a_fresh_engine_would_and_drops_what_changed() {
    let (_dir, trellis) = open_community(Settings {
        standing_max_age: Duration::from_secs(600),
        ..Settings::default()
    });
    let workspace = WorkspaceId::default_workspace();
    let person = |id: usize| RecordKey::new("forum", format!("u{id}"));
    let lookups: Vec<PersonLookup> = (0..PEOPLE)
        .map(|id| PersonLookup::Record(person(id)))
        .collect();

    assert_eq!(
        insights_ready(&trellis),
        (0, PEOPLE),
        "nothing is made before the worker runs"
    );
    fill_insights(&trellis);
    assert_eq!(
        insights_ready(&trellis),
        (PEOPLE, 0),
        "the worker made everyone's"
    );
    assert_eq!(
        trellis
            .refresh_insights(Duration::from_secs(5), Duration::ZERO)
            .unwrap()
            .made,
        0,
        "a complete index has nothing to do"
    );

    // What the index answers is what is made from scratch: asked as of the same moment (the
    // latest post), an insight is never kept nor read from the index.
    let kept: Vec<_> = trellis
        .match_people(&workspace, &lookups)
        .unwrap()
        .into_iter()
        .map(|found| found.unwrap().expect("known").insight)
        .collect();
    let latest = community()
        .iter()
        .filter_map(|(_, record)| match record {
            Record::Post(post) => post.created_at,
            _ => None,
        })
        .max();
    for (id, kept) in kept.iter().enumerate() {
        let made = trellis
            .person_insight(&workspace, &person(id), latest)
            .unwrap();
        assert_eq!(
            kept, &made,
            "u{id}: the kept insight is the one made from scratch"
        );
    }
    assert!(
        kept.iter().any(|insight| insight
            .convergence
            .iter()
            .any(|(_, evidence)| !evidence.is_empty())),
        "some insight quotes evidence, so the comparison covers it"
    );

    // One person writes: their insight is made again, with what they wrote; everyone else's
    // is still used (the community's weights moved less than the allowed age).
    write_post(
        &trellis,
        "u3",
        "Zebrafish zebrafish zebrafish: my simulator models zebrafish noise.",
    );
    assert_eq!(
        insights_ready(&trellis),
        (PEOPLE - 1, 1),
        "only the writer's is dropped"
    );
    let insight = trellis
        .person_insight(&workspace, &person(3), None)
        .unwrap();
    assert!(
        insight
            .interests
            .iter()
            .any(|(word, _)| word.contains("zebrafish")),
        "the new post is among their interests: {:?}",
        insight.interests
    );
    assert_eq!(
        insights_ready(&trellis),
        (PEOPLE, 0),
        "the request kept what it made"
    );

    // A new strategy drops them all.
    trellis
        .put_strategy(&workspace, strategy(1), 1_700_000_000_001)
        .unwrap();
    assert_eq!(
        insights_ready(&trellis),
        (0, PEOPLE),
        "a new strategy drops every insight"
    );
}

#[test]
fn insights_grown_old_while_the_community_moved_on_are_made_again_once() {
    let (_dir, trellis) = open_community(Settings {
        standing_max_age: Duration::from_secs(2),
        ..Settings::default()
    });
    fill_insights(&trellis);
    // Someone writes, so everyone else's insight is of an earlier community; past half the
    // allowed age each is due (usable until the full age), and the worker makes each again once.
    write_post(&trellis, "u3", "A new simulator benchmark of the compiler.");
    std::thread::sleep(Duration::from_millis(1_200));
    let mut made = Vec::new();
    for _ in 0..10 {
        made.push(
            trellis
                .refresh_insights(Duration::from_secs(5), Duration::ZERO)
                .unwrap()
                .made,
        );
        if made.last() == Some(&0) {
            break;
        }
    }
    assert_eq!(
        made.iter().sum::<usize>(),
        PEOPLE,
        "each made once: {made:?}"
    );
    assert_eq!(made.last(), Some(&0), "then nothing is due: {made:?}");
    assert_eq!(insights_ready(&trellis), (PEOPLE, 0));
}
