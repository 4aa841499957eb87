//! A CRM's bulk match while the workspace is written to and single contacts are asked about:
//! nothing may wait forever. (It once did: each contact of a bulk match took the engine's read
//! lock inside one of rayon's workers; with a writer queued, every worker waited for the lock,
//! while a single match, holding the lock, waited for a worker to do part of its work.)

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

#[test]
fn a_bulk_match_never_waits_on_itself_while_the_workspace_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).expect("open the store");
    let trellis = Arc::new(Trellis::open(Arc::new(store), Settings::default()).unwrap());
    let workspace = WorkspaceId::default_workspace();
    trellis
        .put_strategy(&workspace, strategy(0), 1_700_000_000_000)
        .unwrap();
    let outcome = trellis.ingest(&workspace, community()).unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
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
