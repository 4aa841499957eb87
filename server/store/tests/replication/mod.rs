//! Replicas on one database: services opened on separate stores (separate connections, as
//! separate processes have) over one schema, writing through one and following the change log
//! in the others. Every replica must end with the engine the writer has: the same scores, to
//! rounding, for every conversation and facet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use trellis_core::domain::{Conversation, Person, Post, Record, RecordKey, WorkspaceId};
use trellis_core::feedback::{Feedback, Outcome, SuggestionKind};
use trellis_core::service::{Settings, StrategicQuery, Trellis};
use trellis_core::store::{ChangeKind, ChangeLog, Store};
use trellis_core::strategy::{Facet, FacetKind, Strategy};
use trellis_store::PostgresStore;

use super::{Schema, schema};

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
    "algorithm",
    "chemistry",
    "optimisation",
    "sampling",
    "tutorial",
    "python",
    "library",
    "install",
];

fn strategy() -> Strategy {
    let facet = |id: &str, kind, name: &str, keywords: &[&str]| Facet {
        id: id.into(),
        kind,
        name: name.into(),
        description: format!("When I work on {name}, I want help with it."),
        examples: vec![format!("how do I get started with {name}")],
        keywords: keywords.iter().map(|word| (*word).to_owned()).collect(),
        weight: 1.0,
    };
    Strategy {
        name: "Replicated".into(),
        mission: "Help people build quantum software.".into(),
        facets: vec![
            facet(
                "simulate",
                FacetKind::Job,
                "simulating circuits",
                &["simulator", "noise"],
            ),
            facet(
                "compile",
                FacetKind::Expertise,
                "compiling circuits",
                &["compiler", "gate"],
            ),
        ],
        exclusions: Vec::new(),
    }
}

/// A text of `n` words picked by `seed`, so that every conversation reads differently.
fn text(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(seed * 7 + i * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn conversation(id: usize, version: usize) -> Record {
    Record::Conversation(Conversation {
        key: RecordKey::new("forum", format!("c{id}")),
        url: format!("https://forum.example/t/{id}"),
        title: text(id + version, 5),
        body: text(id * 3 + version, 30),
        tags: vec![WORDS[id % WORDS.len()].to_owned()],
        author: Some(format!("u{}", id % 7)),
        open: true,
        created_at: Some(1_700_000_000_000 + id as i64 * 60_000),
        last_activity_at: Some(1_700_000_000_000 + (id + version) as i64 * 60_000),
        ..Conversation::default()
    })
}

fn post(id: usize, conversation: usize, version: usize) -> Record {
    Record::Post(Post {
        key: RecordKey::new("forum", format!("p{id}")),
        conversation: format!("c{conversation}"),
        author: Some(format!("u{}", id % 5)),
        text: text(id * 5 + version, 20),
        created_at: Some(1_700_000_100_000 + id as i64 * 60_000),
        reactions: (id % 4) as u32,
        ..Post::default()
    })
}

fn person(id: usize) -> Record {
    Record::Person(Person {
        key: RecordKey::new("forum", format!("u{id}")),
        display_name: format!("Person {id}"),
        bio: text(id * 11, 12),
        member: id.is_multiple_of(2),
        ..Person::default()
    })
}

fn open(schema: &Schema) -> Trellis {
    let store = PostgresStore::open(&schema.options()).expect("open the postgres store");
    Trellis::open(Arc::new(store), Settings::default()).expect("open the service")
}

fn ingest(replica: &Trellis, records: Vec<Record>) {
    let outcome = replica
        .ingest(
            &WorkspaceId::default_workspace(),
            records
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i as u64, r))
                .collect(),
        )
        .expect("ingest");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

/// What a replica's engine answers: every facet's ranking of every conversation, and the
/// conversations to nourish.
fn answers(replica: &Trellis) -> Vec<(String, Vec<(RecordKey, f32)>)> {
    let workspace = WorkspaceId::default_workspace();
    let mut answers: Vec<(String, Vec<(RecordKey, f32)>)> = ["simulate", "compile"]
        .iter()
        .map(|facet| {
            let mut ranked = replica.rank_facet(&workspace, facet).expect("rank");
            ranked.sort_by(|a, b| a.0.cmp(&b.0));
            ((*facet).to_owned(), ranked)
        })
        .collect();
    let (_, strategic) = replica
        .strategic_conversations(
            &workspace,
            StrategicQuery {
                limit: 50,
                facet_id: None,
                min_relevance: 0.0,
                as_of: Some(1_700_100_000_000),
            },
        )
        .expect("strategic conversations");
    let mut nourish: Vec<(RecordKey, f32)> = strategic
        .into_iter()
        .map(|item| (item.item.key, item.item.priority))
        .collect();
    nourish.sort_by(|a, b| a.0.cmp(&b.0));
    answers.push(("strategic".to_owned(), nourish));
    answers
}

/// The same, after both recompile their strategy models: replicas that loaded the corpus at
/// different sizes calibrate differently until the model is next compiled (as one server does
/// across a restart), but their indexes must hold exactly the same words.
#[track_caller]
fn assert_same_index(writer: &Trellis, follower: &Trellis) {
    let workspace = WorkspaceId::default_workspace();
    writer.recompile(&workspace).unwrap();
    follower.recompile(&workspace).unwrap();
    assert_same_engine(writer, follower);
}

#[track_caller]
fn assert_same_engine(writer: &Trellis, follower: &Trellis) {
    let (expected, actual) = (answers(writer), answers(follower));
    assert_eq!(expected.len(), actual.len());
    for ((facet, expected), (_, actual)) in expected.iter().zip(&actual) {
        assert_eq!(
            expected.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            actual.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            "{facet}: the same conversations"
        );
        for ((key, expected), (_, actual)) in expected.iter().zip(actual) {
            assert!(
                (expected - actual).abs() < 1e-4,
                "{facet} of {key}: the writer has {expected}, the follower {actual}"
            );
        }
    }
    assert_eq!(
        writer.indexed_conversations().unwrap(),
        follower.indexed_conversations().unwrap()
    );
}

#[test]
fn writes_through_one_replica_reach_the_others_through_the_change_log() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = open(&schema);
    let workspace = WorkspaceId::default_workspace();
    assert!(writer.follows_changes() && follower.follows_changes());

    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    let mut records: Vec<Record> = (0..12).map(person).collect();
    records.extend((0..60).map(|id| conversation(id, 0)));
    records.extend((0..150).map(|id| post(id, id % 60, 0)));
    ingest(&writer, records);
    assert!(
        follower.rank_facet(&workspace, "simulate").is_err(),
        "nothing reaches a replica before it follows"
    );
    assert_eq!(follower.follow().unwrap(), 2, "the strategy and one batch");
    assert_same_engine(&writer, &follower);
    assert_eq!(follower.follow().unwrap(), 0, "nothing more to apply");

    // Updates apply against the versions they replaced, on both sides.
    let mut updates: Vec<Record> = (0..60).step_by(3).map(|id| conversation(id, 1)).collect();
    updates.extend((0..150).step_by(4).map(|id| post(id, (id + 1) % 60, 1)));
    ingest(&writer, updates);
    // The follower writes too: the writer follows it in turn.
    ingest(&follower, (60..70).map(|id| conversation(id, 0)).collect());
    follower.follow().unwrap();
    writer.follow().unwrap();
    assert_same_engine(&writer, &follower);

    // A merge reloads every replica.
    writer
        .merge_people(
            &workspace,
            &RecordKey::new("forum", "u1"),
            &[RecordKey::new("forum", "u3")],
            "the same person",
        )
        .unwrap();
    assert!(follower.follow().unwrap() >= 1);
    assert_eq!(
        follower.merges(&workspace).unwrap().len(),
        writer.merges(&workspace).unwrap().len()
    );
    assert_same_engine(&writer, &follower);

    // A replica started now loads a snapshot and has nothing to replay.
    let late = open(&schema);
    assert_eq!(late.follow().unwrap(), 0);
    assert_same_index(&writer, &late);
}

#[test]
fn feedback_recorded_through_one_replica_reaches_the_others_and_a_late_one() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = open(&schema);
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    let mut records: Vec<Record> = (0..12).map(person).collect();
    records.extend((0..60).map(|id| conversation(id, 0)));
    records.extend((0..150).map(|id| post(id, id % 60, 0)));
    ingest(&writer, records);
    follower.follow().unwrap();

    let person = RecordKey::new("forum", "u1");
    let joinable = |replica: &Trellis| -> Vec<RecordKey> {
        replica
            .suggest_discussions(&workspace, &person, None, 40)
            .unwrap()
            .0
            .into_iter()
            .map(|discussion| discussion.conversation)
            .collect()
    };
    let before = joinable(&writer);
    assert!(before.len() >= 2, "{before:?}");
    let item = |id: &str, outcome: Outcome, conversation: &RecordKey| Feedback {
        id: id.into(),
        kind: SuggestionKind::Discussion,
        outcome,
        person: Some(person.clone()),
        conversation: Some(conversation.clone()),
        asset: None,
        action: None,
        at: 1_700_000_900_000,
        recorded_at: 0,
        actor: "replica test".into(),
        note: String::new(),
    };
    let recorded = writer
        .record_feedback(
            &workspace,
            vec![
                item("dismiss", Outcome::Dismissed, &before[0]),
                item("accept", Outcome::Accepted, &before[1]),
            ],
        )
        .unwrap();
    assert_eq!((recorded.recorded, recorded.replaced), (2, 0));
    let store = PostgresStore::open(&schema.options()).expect("open the postgres store");
    let changes = store.changes_after(&workspace, 0, 1_000).unwrap();
    assert!(
        changes
            .iter()
            .any(|change| matches!(&change.kind, ChangeKind::Feedback(items) if items.len() == 2)),
        "the feedback is logged"
    );
    assert_eq!(follower.follow().unwrap(), 1);
    for replica in [&writer, &follower] {
        let after = joinable(replica);
        assert!(!after.contains(&before[0]), "dismissed: {after:?}");
        assert!(!after.contains(&before[1]), "taken up: {after:?}");
    }
    assert_same_engine(&writer, &follower);
    let late = open(&schema);
    late.follow().unwrap();
    let after = joinable(&late);
    assert!(
        !after.contains(&before[0]) && !after.contains(&before[1]),
        "{after:?}"
    );
}

#[test]
fn forgetting_a_person_empties_the_log_of_their_words_and_every_replica_forgets_them() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = open(&schema);
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    let mut records: Vec<Record> = (0..6).map(person).collect();
    records.extend((0..20).map(|id| conversation(id, 0)));
    records.extend((0..40).map(|id| post(id, id % 20, 0)));
    ingest(&writer, records);
    writer
        .forget_person(&workspace, &RecordKey::new("forum", "u2"))
        .unwrap();

    let store = PostgresStore::open(&schema.options()).unwrap();
    let logged = store.changes_after(&workspace, 0, 100).unwrap();
    assert_eq!(
        logged.iter().map(|change| &change.kind).collect::<Vec<_>>(),
        [&ChangeKind::Reload],
        "nothing they wrote stays in the log"
    );
    follower.follow().unwrap();
    assert_same_index(&writer, &follower);
    assert!(
        store
            .person(&workspace, &RecordKey::new("forum", "u2"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_replica_whose_changes_were_pruned_reloads_instead_of_replaying() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = open(&schema);
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    ingest(&writer, (0..30).map(|id| conversation(id, 0)).collect());
    let pruned = writer
        .prune_changes(std::time::Duration::from_secs(0))
        .unwrap();
    assert!(pruned >= 2, "{pruned}");
    ingest(
        &writer,
        (0..30).step_by(2).map(|id| conversation(id, 1)).collect(),
    );
    // The follower is at 0, the log now starts at 3: it reloads and lands at the head.
    follower.follow().unwrap();
    assert_same_index(&writer, &follower);
    let status = follower.replication().unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].workspace, workspace);
    assert_eq!(status[0].lag, 0);
    assert_eq!(status[0].applied, status[0].head);
    assert_eq!(status[0].head, writer.replication().unwrap()[0].head);
}

#[test]
fn a_replica_stalled_past_the_retention_reloads_when_the_log_is_empty() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = open(&schema);
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    ingest(&writer, (0..30).map(|id| conversation(id, 0)).collect());
    follower.follow().unwrap();
    assert_same_engine(&writer, &follower);

    // The follower stands still while the writer writes, and every change is pruned after;
    // nothing is written since, so the log holds nothing at all.
    let mut updates: Vec<Record> = (0..30).step_by(2).map(|id| conversation(id, 1)).collect();
    updates.extend((0..20).map(|id| post(id, id % 30, 0)));
    ingest(&writer, updates);
    ingest(
        &writer,
        (0..20).map(|id| post(id, (id + 7) % 30, 1)).collect(),
    );
    let behind = follower.replication().unwrap();
    assert_eq!(behind.len(), 1);
    assert_eq!(behind[0].lag, 2, "two batches the follower has not applied");
    assert_eq!(behind[0].head, behind[0].applied + 2);
    writer
        .prune_changes(std::time::Duration::from_secs(0))
        .unwrap();
    let store = PostgresStore::open(&schema.options()).unwrap();
    assert!(store.changes_after(&workspace, 0, 10).unwrap().is_empty());
    assert_eq!(store.head(&workspace).unwrap(), behind[0].head);

    // Following notices the head is past it although the log is empty, and reloads.
    follower.follow().unwrap();
    let caught_up = follower.replication().unwrap();
    assert_eq!(caught_up[0].lag, 0);
    assert_eq!(caught_up[0].applied, behind[0].head);
    assert_same_index(&writer, &follower);
}

#[test]
fn a_snapshot_taken_during_writes_is_never_applied_twice() {
    let Some(schema) = schema() else { return };
    let writer = Arc::new(open(&schema));
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    ingest(&writer, (0..40).map(|id| conversation(id, 0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writing = {
        let (writer, stop, written) =
            (Arc::clone(&writer), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut version = 1;
            while !stop.load(Ordering::SeqCst) {
                // Every batch changes every conversation's text and moves every post to another
                // conversation: a change applied twice, or against the wrong previous version,
                // leaves the wrong words counted.
                let mut batch: Vec<Record> = (0..40).map(|id| conversation(id, version)).collect();
                batch.extend((0..20).map(|id| post(id, (id + version) % 40, version)));
                ingest(&writer, batch);
                written.fetch_add(1, Ordering::SeqCst);
                version += 1;
            }
        })
    };
    // Waits (bounded) until the writer has written `batches` batches in all.
    let wait_for = |batches: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while written.load(Ordering::SeqCst) < batches {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer stopped writing"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    // Replicas start (load a snapshot) while the writer writes, then follow; the writer goes
    // on past their loads, so they have its later batches to apply.
    wait_for(1);
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(open(&schema));
        replicas.last().unwrap().follow().unwrap();
    }
    wait_for(written.load(Ordering::SeqCst) + 2);
    stop.store(true, Ordering::SeqCst);
    writing.join().unwrap();
    writer.follow().unwrap();
    for replica in &replicas {
        replica.follow().unwrap();
        assert_same_index(&writer, replica);
    }
}

#[test]
fn following_with_nothing_new_does_not_wait_for_writes_in_progress() {
    let Some(schema) = schema() else { return };
    let writer = open(&schema);
    let follower = Arc::new(open(&schema));
    let workspace = WorkspaceId::default_workspace();
    writer
        .put_strategy(&workspace, strategy(), 1_700_000_000_000)
        .unwrap();
    ingest(&writer, (0..10).map(|id| conversation(id, 0)).collect());
    follower.follow().unwrap();

    // A write through the follower is under way (it holds the write gate); following finds no
    // new change in the log and returns without the gate.
    let gate = follower.hold_write_gate().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    let following = {
        let follower = Arc::clone(&follower);
        std::thread::spawn(move || sender.send(follower.follow().unwrap()).unwrap())
    };
    let applied = receiver
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a follow with nothing to apply waited for the write gate");
    assert_eq!(applied, 0);
    following.join().unwrap();

    // With a new change it takes the gate, so it waits until the write is done.
    ingest(&writer, (10..12).map(|id| conversation(id, 0)).collect());
    let (sender, receiver) = std::sync::mpsc::channel();
    let following = {
        let follower = Arc::clone(&follower);
        std::thread::spawn(move || sender.send(follower.follow().unwrap()).unwrap())
    };
    assert!(
        receiver
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err(),
        "a follow with a change to apply waits for the write in progress"
    );
    drop(gate);
    assert_eq!(receiver.recv().unwrap(), 1);
    following.join().unwrap();
    assert_same_engine(&writer, &follower);
}
