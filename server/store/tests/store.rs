//! The SQLite store against the `Store` contract: every record kind round-trips, upserts report
//! what they replaced, strategies are versioned, workspaces are isolated, and everything
//! survives closing and reopening the file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use trellis_core::CoreError;
use trellis_core::domain::{
    Asset, AssetKind, Conversation, Identity, Person, PlatformKind, Post, Record, RecordKey,
    WorkspaceId,
};
use trellis_core::engine::semantic::Embedding;
use trellis_core::store::{CorpusCounts, Store, Upserted};
use trellis_core::strategy::{Facet, FacetKind, Strategy as TrellisStrategy};
use trellis_store::{SCHEMA_VERSION, SqliteStore};

fn workspace(name: &str) -> WorkspaceId {
    WorkspaceId::parse(name).expect("valid workspace id")
}

fn default_workspace() -> WorkspaceId {
    WorkspaceId::default_workspace()
}

fn person(id: &str) -> Person {
    Person {
        key: RecordKey::new("forum", id),
        display_name: "Ada Lovelace".into(),
        bio: "Writes about analytical engines. Émigré of ∑ and 数学.".into(),
        member: true,
        identities: vec![
            Identity {
                platform: "forum".into(),
                handle: "ada".into(),
                profile_url: "https://forum.example/u/ada".into(),
                email_sha256: "a".repeat(64),
            },
            Identity {
                platform: "mastodon".into(),
                handle: "@ada@example.social".into(),
                profile_url: String::new(),
                email_sha256: String::new(),
            },
        ],
        crm_ids: vec!["crm-1".into(), "crm-2".into()],
        created_at: Some(1_700_000_000_000),
    }
}

fn conversation(id: &str) -> Conversation {
    Conversation {
        key: RecordKey::new("forum", id),
        platform: Some(PlatformKind::QaForum),
        url: format!("https://forum.example/t/{id}"),
        title: format!("How do I simulate circuit {id}?"),
        body: "When I design a circuit, I want to test it first.".into(),
        tags: vec!["quantum".into(), "simulation".into()],
        author: Some("ada".into()),
        open: true,
        created_at: Some(1_700_000_000_000),
        last_activity_at: Some(1_700_000_100_000),
    }
}

fn post(id: &str, conversation: &str, created_at: Option<i64>) -> Post {
    Post {
        key: RecordKey::new("forum", id),
        conversation: conversation.into(),
        author: Some("grace".into()),
        parent: None,
        created_at,
        text: format!("Reply {id}: try the simulator."),
        reactions: 3,
    }
}

fn asset(id: &str) -> Asset {
    Asset {
        key: RecordKey::new("blog", id),
        url: format!("https://blog.example/{id}"),
        title: "Simulating circuits".into(),
        text: "A guide.".into(),
        kind: AssetKind::Doc,
        own: true,
        bookmark_count: 12,
        share_count: u32::MAX,
        tags: vec!["guide".into()],
        created_at: None,
    }
}

fn strategy(name: &str) -> TrellisStrategy {
    TrellisStrategy {
        name: name.into(),
        mission: "Help people build quantum software.".into(),
        facets: vec![Facet {
            id: "simulate".into(),
            kind: FacetKind::Job,
            name: "Simulate circuits".into(),
            description: "When I design a circuit, I want to simulate it, so I can trust it."
                .into(),
            examples: vec!["run my circuit on a simulator".into()],
            keywords: vec!["simulator".into()],
            // Not exactly representable in binary, to catch any loss on the way through JSON.
            weight: 0.1 + 0.2,
        }],
        exclusions: vec!["politics".into()],
    }
}

fn scan(store: &dyn Store, workspace: &WorkspaceId) -> Vec<Record> {
    let mut seen = Vec::new();
    store
        .scan_corpus(workspace, &mut |record| {
            seen.push(record);
            Ok(())
        })
        .expect("scan");
    seen
}

/// Every record kind, as one batch.
fn corpus() -> Vec<Record> {
    vec![
        Record::Person(person("ada")),
        Record::Conversation(conversation("c1")),
        Record::Post(post("p1", "c1", Some(10))),
        Record::Post(post("p2", "c1", Some(20))),
        Record::Asset(asset("guide")),
        Record::Conversation(conversation("c2")),
    ]
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}

#[test]
fn every_record_kind_round_trips() {
    let store = SqliteStore::open_in_memory().expect("open");
    let ws = default_workspace();
    let results = store.upsert_records(&ws, &corpus()).expect("upsert");
    assert_eq!(results, vec![Upserted::Inserted; 6]);

    assert_eq!(
        store.person(&ws, &person("ada").key).unwrap(),
        Some(person("ada"))
    );
    assert_eq!(
        store.conversation(&ws, &conversation("c1").key).unwrap(),
        Some(conversation("c1"))
    );
    assert_eq!(
        store.asset(&ws, &asset("guide").key).unwrap(),
        Some(asset("guide"))
    );
    assert_eq!(
        store.posts_of(&ws, &conversation("c1").key).unwrap(),
        vec![post("p1", "c1", Some(10)), post("p2", "c1", Some(20))]
    );
    assert_eq!(
        store.counts(&ws).unwrap(),
        CorpusCounts {
            people: 1,
            conversations: 2,
            posts: 2,
            assets: 1
        }
    );
    assert_eq!(
        store
            .person(&ws, &RecordKey::new("forum", "nobody"))
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .conversation(&ws, &RecordKey::new("other", "c1"))
            .unwrap(),
        None
    );
}

#[test]
fn kinds_with_the_same_key_do_not_collide() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    let mut shared_person = person("x");
    shared_person.key = RecordKey::new("s", "x");
    let mut shared_conversation = conversation("x");
    shared_conversation.key = RecordKey::new("s", "x");
    let results = store
        .upsert_records(
            &ws,
            &[
                Record::Person(shared_person.clone()),
                Record::Conversation(shared_conversation.clone()),
            ],
        )
        .unwrap();
    assert_eq!(results, vec![Upserted::Inserted, Upserted::Inserted]);
    assert_eq!(
        store.person(&ws, &shared_person.key).unwrap(),
        Some(shared_person)
    );
}

#[test]
fn upserts_report_inserted_unchanged_and_updated_with_the_previous_record() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    assert_eq!(
        store.upsert_records(&ws, &corpus()).unwrap(),
        vec![Upserted::Inserted; 6]
    );
    assert_eq!(
        store.upsert_records(&ws, &corpus()).unwrap(),
        vec![Upserted::Unchanged; 6]
    );

    let mut edited_person = person("ada");
    edited_person.identities.pop();
    let mut closed = conversation("c1");
    closed.open = false;
    closed.platform = None;
    let mut edited_post = post("p1", "c1", Some(10));
    edited_post.reactions += 1;
    let mut edited_asset = asset("guide");
    edited_asset.kind = AssetKind::Video;
    let batch = [
        Record::Person(edited_person.clone()),
        Record::Conversation(closed.clone()),
        Record::Post(edited_post.clone()),
        Record::Asset(edited_asset.clone()),
        Record::Conversation(conversation("c2")),
        Record::Conversation(conversation("c3")),
    ];
    assert_eq!(
        store.upsert_records(&ws, &batch).unwrap(),
        vec![
            Upserted::Updated {
                previous: Record::Person(person("ada"))
            },
            Upserted::Updated {
                previous: Record::Conversation(conversation("c1"))
            },
            Upserted::Updated {
                previous: Record::Post(post("p1", "c1", Some(10)))
            },
            Upserted::Updated {
                previous: Record::Asset(asset("guide"))
            },
            Upserted::Unchanged,
            Upserted::Inserted,
        ]
    );
    assert_eq!(
        store.person(&ws, &edited_person.key).unwrap(),
        Some(edited_person)
    );
    assert_eq!(store.conversation(&ws, &closed.key).unwrap(), Some(closed));
    assert_eq!(
        store.asset(&ws, &edited_asset.key).unwrap(),
        Some(edited_asset)
    );
    assert_eq!(store.counts(&ws).unwrap().conversations, 3);
}

#[test]
fn an_empty_batch_does_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        store.upsert_records(&default_workspace(), &[]).unwrap(),
        vec![]
    );
}

#[test]
fn a_key_repeated_in_one_batch_sees_its_earlier_occurrence() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    let first = conversation("c1");
    let mut second = first.clone();
    second.title = "Edited title".into();
    let batch = [
        Record::Conversation(first.clone()),
        Record::Conversation(second.clone()),
        Record::Conversation(second.clone()),
    ];
    assert_eq!(
        store.upsert_records(&ws, &batch).unwrap(),
        vec![
            Upserted::Inserted,
            Upserted::Updated {
                previous: Record::Conversation(first)
            },
            Upserted::Unchanged,
        ]
    );
    assert_eq!(store.conversation(&ws, &second.key).unwrap(), Some(second));
    assert_eq!(store.counts(&ws).unwrap().conversations, 1);
}

#[test]
fn strategies_are_versioned_and_listed_newest_first() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    assert_eq!(store.strategy(&ws, None).unwrap(), None);
    assert_eq!(store.strategy_versions(&ws, 10, None).unwrap(), vec![]);

    for (index, name) in ["one", "two", "three"].iter().enumerate() {
        let stored = store
            .put_strategy(&ws, &strategy(name), 1000 + index as i64)
            .unwrap();
        assert_eq!(stored.version, index as u32 + 1);
        assert_eq!(stored.created_at, 1000 + index as i64);
        assert_eq!(stored.strategy, strategy(name));
    }

    let latest = store.strategy(&ws, None).unwrap().expect("latest");
    assert_eq!((latest.version, latest.created_at), (3, 1002));
    assert_eq!(latest.strategy, strategy("three"));
    assert_eq!(
        latest.strategy.facets[0].weight.to_bits(),
        (0.1f64 + 0.2).to_bits()
    );
    assert_eq!(
        store.strategy(&ws, Some(1)).unwrap().unwrap().strategy,
        strategy("one")
    );
    assert_eq!(store.strategy(&ws, Some(4)).unwrap(), None);
    assert_eq!(store.strategy(&ws, Some(0)).unwrap(), None);

    let versions = |limit, before| -> Vec<u32> {
        store
            .strategy_versions(&ws, limit, before)
            .unwrap()
            .into_iter()
            .map(|stored| stored.version)
            .collect()
    };
    assert_eq!(versions(10, None), [3, 2, 1]);
    assert_eq!(versions(2, None), [3, 2]);
    assert_eq!(versions(10, Some(3)), [2, 1]);
    assert_eq!(versions(1, Some(3)), [2]);
    assert_eq!(versions(10, Some(1)), Vec::<u32>::new());
    assert_eq!(versions(0, None), Vec::<u32>::new());
    assert_eq!(versions(usize::MAX, None), [3, 2, 1]);
    let listed = store.strategy_versions(&ws, 1, Some(2)).unwrap();
    assert_eq!(listed[0].strategy, strategy("one"));
    assert_eq!(listed[0].created_at, 1000);

    // Every workspace numbers its own versions.
    let other = workspace("other");
    assert_eq!(
        store
            .put_strategy(&other, &strategy("x"), 5)
            .unwrap()
            .version,
        1
    );
    assert_eq!(store.strategy(&ws, None).unwrap().unwrap().version, 3);
}

#[test]
fn a_strategy_json_cannot_hold_is_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut bad = strategy("nan");
    bad.facets[0].weight = f64::NAN;
    let Err(CoreError::Invalid(violations)) = store.put_strategy(&default_workspace(), &bad, 0)
    else {
        panic!("expected invalid");
    };
    assert_eq!(violations[0].field, "facets[0].weight");
    assert_eq!(store.strategy(&default_workspace(), None).unwrap(), None);
}

#[test]
fn workspaces_are_isolated() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = workspace("team-a");
    let b = workspace("team_b");
    store.ensure_workspace(&b).unwrap();
    store.upsert_records(&a, &corpus()).unwrap();
    store.put_strategy(&a, &strategy("a"), 1).unwrap();

    assert_eq!(store.person(&b, &person("ada").key).unwrap(), None);
    assert_eq!(
        store.conversation(&b, &conversation("c1").key).unwrap(),
        None
    );
    assert_eq!(store.asset(&b, &asset("guide").key).unwrap(), None);
    assert_eq!(store.posts_of(&b, &conversation("c1").key).unwrap(), vec![]);
    assert_eq!(store.counts(&b).unwrap(), CorpusCounts::default());
    assert_eq!(scan(&store, &b), vec![]);
    assert_eq!(store.strategy(&b, None).unwrap(), None);
    assert_eq!(store.strategy_versions(&b, 10, None).unwrap(), vec![]);

    // The same keys in B are new records there, and leave A alone.
    let mut in_b = conversation("c1");
    in_b.title = "B's own".into();
    assert_eq!(
        store
            .upsert_records(&b, &[Record::Conversation(in_b.clone())])
            .unwrap(),
        vec![Upserted::Inserted]
    );
    assert_eq!(
        store.conversation(&a, &in_b.key).unwrap(),
        Some(conversation("c1"))
    );
    assert_eq!(store.conversation(&b, &in_b.key).unwrap(), Some(in_b));

    // A write to a workspace creates it, so it is listed.
    assert_eq!(store.workspaces().unwrap(), vec![default_workspace(), a, b]);
}

#[test]
fn the_default_workspace_always_exists_and_ensuring_is_idempotent() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(store.workspaces().unwrap(), vec![default_workspace()]);
    let extra = workspace("extra");
    store.ensure_workspace(&extra).unwrap();
    store.ensure_workspace(&extra).unwrap();
    store.ensure_workspace(&default_workspace()).unwrap();
    assert_eq!(
        store.workspaces().unwrap(),
        vec![default_workspace(), extra]
    );
}

#[test]
fn posts_come_by_creation_time_then_insertion_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    let mut elsewhere = post("other-source", "c1", Some(1));
    elsewhere.key.source = "mastodon".into();
    let batch = [
        Record::Post(post("late", "c1", Some(30))),
        Record::Post(post("tie-first", "c1", Some(20))),
        Record::Post(post("other-conversation", "c2", Some(5))),
        Record::Post(post("tie-second", "c1", Some(20))),
        Record::Post(post("undated", "c1", None)),
        Record::Post(elsewhere),
        Record::Post(post("early", "c1", Some(10))),
    ];
    store.upsert_records(&ws, &batch).unwrap();
    let ids: Vec<String> = store
        .posts_of(&ws, &RecordKey::new("forum", "c1"))
        .unwrap()
        .into_iter()
        .map(|post| post.key.external_id)
        .collect();
    assert_eq!(ids, ["undated", "early", "tie-first", "tie-second", "late"]);
}

#[test]
fn scan_visits_people_then_conversations_then_posts_in_first_insertion_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    store.upsert_records(&ws, &corpus()).unwrap();
    // An update keeps the record's place; a new record goes last.
    let mut edited = conversation("c1");
    edited.title = "Edited".into();
    store
        .upsert_records(
            &ws,
            &[
                Record::Conversation(edited.clone()),
                Record::Post(post("p0", "c2", Some(1))),
            ],
        )
        .unwrap();
    assert_eq!(
        scan(&store, &ws),
        vec![
            Record::Person(person("ada")),
            Record::Conversation(edited),
            Record::Conversation(conversation("c2")),
            Record::Post(post("p1", "c1", Some(10))),
            Record::Post(post("p2", "c1", Some(20))),
            Record::Post(post("p0", "c2", Some(1))),
        ]
    );
}

#[test]
fn scan_pages_through_large_corpora_without_losing_or_repeating_records() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    // Interleave another workspace so that pages must skip its rows.
    let other = workspace("other");
    let mut expected = Vec::new();
    for chunk in 0..5 {
        let batch: Vec<Record> = (0..300)
            .map(|index| Record::Conversation(conversation(&format!("c{chunk}-{index}"))))
            .collect();
        store.upsert_records(&ws, &batch).unwrap();
        store.upsert_records(&other, &batch[..100]).unwrap();
        expected.extend(batch);
    }
    let posts: Vec<Record> = (0..1030)
        .map(|index| Record::Post(post(&format!("p{index}"), "c0-0", Some(index))))
        .collect();
    store.upsert_records(&ws, &posts).unwrap();
    expected.extend(posts);
    assert_eq!(scan(&store, &ws), expected);
    assert_eq!(scan(&store, &other).len(), 500);
}

#[test]
fn scan_stops_at_the_first_error_and_may_call_back_into_the_store() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    store.upsert_records(&ws, &corpus()).unwrap();
    let mut visited = 0;
    let result = store.scan_corpus(&ws, &mut |record| {
        visited += 1;
        // Re-entering an in-memory store must not wait on its own connection.
        if let Record::Post(post) = &record {
            let parent = RecordKey::new(post.key.source.clone(), post.conversation.clone());
            assert!(store.conversation(&ws, &parent)?.is_some());
            store.upsert_records(&ws, &[Record::Person(person("visitor"))])?;
            return Err(CoreError::Internal("stop here".into()));
        }
        Ok(())
    });
    assert!(matches!(result, Err(CoreError::Internal(message)) if message == "stop here"));
    assert_eq!(
        visited, 4,
        "a person, two conversations, then the first post"
    );
}

#[test]
fn everything_survives_closing_and_reopening_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("nested/deeper/trellis.db");
    let team = workspace("team");
    let mut updated = conversation("c1");
    updated.tags.clear();
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        store
            .upsert_records(&default_workspace(), &corpus())
            .unwrap();
        store
            .upsert_records(&team, &[Record::Asset(asset("team-doc"))])
            .unwrap();
        store
            .upsert_records(
                &default_workspace(),
                &[Record::Conversation(updated.clone())],
            )
            .unwrap();
        store
            .put_strategy(&default_workspace(), &strategy("one"), 10)
            .unwrap();
        store
            .put_strategy(&default_workspace(), &strategy("two"), 20)
            .unwrap();
        store.ensure_workspace(&workspace("empty")).unwrap();
        // No flush: a store dropped without one (as in a crash after commit) keeps everything.
    }
    let store = SqliteStore::open(&path).unwrap();
    let ws = default_workspace();
    assert_eq!(
        store.workspaces().unwrap(),
        vec![ws.clone(), workspace("empty"), team.clone()]
    );
    assert_eq!(
        store.person(&ws, &person("ada").key).unwrap(),
        Some(person("ada"))
    );
    assert_eq!(
        store.conversation(&ws, &updated.key).unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store.asset(&ws, &asset("guide").key).unwrap(),
        Some(asset("guide"))
    );
    assert_eq!(
        store.asset(&team, &asset("team-doc").key).unwrap(),
        Some(asset("team-doc"))
    );
    assert_eq!(
        store.posts_of(&ws, &updated.key).unwrap(),
        vec![post("p1", "c1", Some(10)), post("p2", "c1", Some(20))]
    );
    assert_eq!(
        scan(&store, &ws),
        vec![
            Record::Person(person("ada")),
            Record::Conversation(updated),
            Record::Conversation(conversation("c2")),
            Record::Post(post("p1", "c1", Some(10))),
            Record::Post(post("p2", "c1", Some(20))),
        ]
    );
    let versions = store.strategy_versions(&ws, 10, None).unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!((versions[0].version, versions[0].created_at), (2, 20));
    assert_eq!(versions[0].strategy, strategy("two"));
    assert_eq!(versions[1].strategy, strategy("one"));
    // The store keeps reporting against what is on disk: the same batch is unchanged now.
    assert_eq!(
        store.upsert_records(&ws, &corpus()[..1]).unwrap(),
        vec![Upserted::Unchanged]
    );
}

#[test]
fn flush_checkpoints_the_log_into_the_database_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .upsert_records(&default_workspace(), &corpus())
        .unwrap();
    let wal = folder.path().join("trellis.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    store.flush().unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    let journal_mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    // An in-memory store has no log, and flushing it is harmless.
    SqliteStore::open_in_memory().unwrap().flush().unwrap();
}

#[test]
fn migrations_run_once_and_reopening_applies_nothing_twice() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    let applied = |path: &Path| -> Vec<(u32, i64)> {
        raw(path)
            .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    drop(store);
    let first = applied(&path);
    assert_eq!(
        first
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    for _ in 0..3 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.workspaces().unwrap(), vec![default_workspace()]);
    }
    assert_eq!(applied(&path), first, "nothing was applied again");
}

#[test]
fn a_database_newer_than_the_binary_is_refused_with_a_clear_error() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    drop(SqliteStore::open(&path).unwrap());
    let future = SCHEMA_VERSION + 1;
    raw(&path)
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
            [future],
        )
        .unwrap();
    let Err(CoreError::FailedPrecondition(message)) = SqliteStore::open(&path) else {
        panic!("expected a failed precondition");
    };
    assert!(
        message.contains(&format!("schema version {future}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("version {SCHEMA_VERSION} that this trellis knows")),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the pages you are looking for ".repeat(100),
    )
    .unwrap();
    let Err(CoreError::Storage(message)) = SqliteStore::open(&path) else {
        panic!("expected a storage error");
    };
    assert!(message.contains("notes.txt"), "{message}");
}

#[test]
fn readers_and_a_writer_work_side_by_side_across_threads() {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&folder.path().join("trellis.db")).unwrap());
    let ws = default_workspace();
    let writing = AtomicBool::new(true);
    /// Lets the readers stop even if the writer panics.
    struct DoneOnDrop<'a>(&'a AtomicBool);
    impl Drop for DoneOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _done = DoneOnDrop(&writing);
            for index in 0..200 {
                let record = Record::Conversation(conversation(&format!("c{index}")));
                assert_eq!(
                    store.upsert_records(&ws, &[record]).unwrap(),
                    vec![Upserted::Inserted]
                );
            }
        });
        for _ in 0..4 {
            scope.spawn(|| {
                let mut last = 0;
                while writing.load(Ordering::SeqCst) {
                    let now = store.counts(&ws).unwrap().conversations;
                    assert!(now >= last, "a reader never goes back in time");
                    last = now;
                }
            });
        }
    });
    assert_eq!(store.counts(&ws).unwrap().conversations, 200);
    // A write is visible to the very next read, whichever connection serves it.
    let fresh = conversation("fresh");
    store
        .upsert_records(&ws, &[Record::Conversation(fresh.clone())])
        .unwrap();
    assert_eq!(store.conversation(&ws, &fresh.key).unwrap(), Some(fresh));
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), any::<String>(), "[a-zé数😀 ]{0,12}",]
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}

fn key() -> impl Strategy<Value = RecordKey> {
    (text(), text()).prop_map(|(source, external_id)| RecordKey::new(source, external_id))
}

fn millis() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(any::<i64>())
}

fn identity() -> impl Strategy<Value = Identity> {
    (text(), text(), text(), text()).prop_map(|(platform, handle, profile_url, email_sha256)| {
        Identity {
            platform,
            handle,
            profile_url,
            email_sha256,
        }
    })
}

fn any_record() -> impl Strategy<Value = Record> {
    let person = (
        key(),
        text(),
        text(),
        any::<bool>(),
        proptest::collection::vec(identity(), 0..3),
        texts(),
        millis(),
    )
        .prop_map(
            |(key, display_name, bio, member, identities, crm_ids, created_at)| {
                Record::Person(Person {
                    key,
                    display_name,
                    bio,
                    member,
                    identities,
                    crm_ids,
                    created_at,
                })
            },
        );
    let platform = proptest::option::of(proptest::sample::select(PlatformKind::ALL.to_vec()));
    let conversation = (
        key(),
        platform,
        (text(), text(), text()),
        texts(),
        optional_text(),
        any::<bool>(),
        millis(),
        millis(),
    )
        .prop_map(
            |(
                key,
                platform,
                (url, title, body),
                tags,
                author,
                open,
                created_at,
                last_activity_at,
            )| {
                Record::Conversation(Conversation {
                    key,
                    platform,
                    url,
                    title,
                    body,
                    tags,
                    author,
                    open,
                    created_at,
                    last_activity_at,
                })
            },
        );
    let post = (
        key(),
        text(),
        optional_text(),
        optional_text(),
        millis(),
        text(),
        any::<u32>(),
    )
        .prop_map(
            |(key, conversation, author, parent, created_at, text, reactions)| {
                Record::Post(Post {
                    key,
                    conversation,
                    author,
                    parent,
                    created_at,
                    text,
                    reactions,
                })
            },
        );
    let asset_kind = proptest::sample::select(vec![
        AssetKind::Article,
        AssetKind::Bookmark,
        AssetKind::Doc,
        AssetKind::Video,
        AssetKind::Thread,
    ]);
    let asset = (
        key(),
        (text(), text(), text()),
        asset_kind,
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        texts(),
        millis(),
    )
        .prop_map(
            |(
                key,
                (url, title, text),
                kind,
                own,
                bookmark_count,
                share_count,
                tags,
                created_at,
            )| {
                Record::Asset(Asset {
                    key,
                    url,
                    title,
                    text,
                    kind,
                    own,
                    bookmark_count,
                    share_count,
                    tags,
                    created_at,
                })
            },
        );
    prop_oneof![person, conversation, post, asset]
}

fn read_back(store: &SqliteStore, ws: &WorkspaceId, record: &Record) -> Option<Record> {
    match record {
        Record::Person(person) => store.person(ws, &person.key).unwrap().map(Record::Person),
        Record::Conversation(conversation) => store
            .conversation(ws, &conversation.key)
            .unwrap()
            .map(Record::Conversation),
        Record::Post(post) => {
            let parent = RecordKey::new(post.key.source.clone(), post.conversation.clone());
            store
                .posts_of(ws, &parent)
                .unwrap()
                .into_iter()
                .find(|stored| stored.key == post.key)
                .map(Record::Post)
        }
        Record::Asset(asset) => store.asset(ws, &asset.key).unwrap().map(Record::Asset),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_records_round_trip_unchanged(record in any_record()) {
        let store = SqliteStore::open_in_memory().unwrap();
        let ws = default_workspace();
        prop_assert_eq!(store.upsert_records(&ws, std::slice::from_ref(&record)).unwrap(), vec![Upserted::Inserted]);
        prop_assert_eq!(read_back(&store, &ws, &record), Some(record.clone()));
        prop_assert_eq!(store.upsert_records(&ws, std::slice::from_ref(&record)).unwrap(), vec![Upserted::Unchanged]);
        let scanned = scan(&store, &ws);
        match &record {
            Record::Person(_) | Record::Conversation(_) | Record::Post(_) => prop_assert_eq!(scanned, vec![record]),
            Record::Asset(_) => prop_assert!(scanned.is_empty()),
        }
    }

    #[test]
    fn an_update_reports_exactly_the_record_it_replaced(first in any_record(), second in any_record()) {
        let store = SqliteStore::open_in_memory().unwrap();
        let ws = default_workspace();
        // Give the second record the first one's kind-independent key.
        let mut second = second;
        let key = first.key().clone();
        match &mut second {
            Record::Person(person) => person.key = key,
            Record::Conversation(conversation) => conversation.key = key,
            Record::Post(post) => post.key = key,
            Record::Asset(asset) => asset.key = key,
        }
        store.upsert_records(&ws, std::slice::from_ref(&first)).unwrap();
        let result = store.upsert_records(&ws, std::slice::from_ref(&second)).unwrap();
        let same_kind = std::mem::discriminant(&first) == std::mem::discriminant(&second);
        let expected = if !same_kind {
            Upserted::Inserted
        } else if first == second {
            Upserted::Unchanged
        } else {
            Upserted::Updated { previous: first }
        };
        prop_assert_eq!(result, vec![expected]);
        prop_assert_eq!(read_back(&store, &ws, &second), Some(second));
    }
}

#[test]
fn two_stores_on_one_file_see_each_others_commits() {
    // As when the CLI writes to the file a running server has open.
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    let ws = default_workspace();
    server.upsert_records(&ws, &corpus()).unwrap();
    assert_eq!(
        cli.upsert_records(&ws, &corpus()).unwrap(),
        vec![Upserted::Unchanged; 6]
    );
    cli.put_strategy(&ws, &strategy("from the cli"), 7).unwrap();
    assert_eq!(
        server
            .put_strategy(&ws, &strategy("from the server"), 8)
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        cli.strategy(&ws, None).unwrap().unwrap().strategy,
        strategy("from the server")
    );
}

fn embeddings(store: &dyn Store, workspace: &WorkspaceId, model: &str) -> Vec<Embedding> {
    let mut found = Vec::new();
    store
        .scan_embeddings(workspace, model, &mut |embedding| {
            found.push(embedding);
            Ok(())
        })
        .expect("embeddings scan");
    found
}

#[test]
fn embeddings_round_trip_per_model_replace_and_go_with_a_forgotten_author() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let ws = default_workspace();
    {
        let store = SqliteStore::open(&path).expect("opens");
        let mut by_someone_else = conversation("c2");
        by_someone_else.author = Some("grace".into());
        store
            .upsert_records(
                &ws,
                &[
                    Record::Conversation(conversation("c1")),
                    Record::Conversation(by_someone_else),
                ],
            )
            .expect("upsert");
        let vector = |x: f32| vec![x, -x, 0.5, f32::MIN_POSITIVE];
        let embedding = |id: &str, hash: u64, x: f32| Embedding {
            key: RecordKey::new("forum", id),
            text_hash: hash,
            vector: vector(x),
        };
        store
            .put_embeddings(
                &ws,
                "model-a",
                &[
                    embedding("c1", u64::MAX, 0.25),
                    embedding("c2", 7, 1.0),
                    // No such conversation: dropped.
                    embedding("ghost", 1, 1.0),
                ],
            )
            .expect("put");
        store
            .put_embeddings(&ws, "model-b", &[embedding("c1", 3, 9.0)])
            .expect("put another model");
        // A new vector for c2 replaces the old one.
        store
            .put_embeddings(&ws, "model-a", &[embedding("c2", 8, 2.0)])
            .expect("replace");
        let a = embeddings(&store, &ws, "model-a");
        assert_eq!(
            a,
            vec![embedding("c1", u64::MAX, 0.25), embedding("c2", 8, 2.0)],
            "bits, signs and the largest hash survive the round trip"
        );
        assert_eq!(embeddings(&store, &ws, "model-b").len(), 1);
        assert!(embeddings(&store, &workspace("other"), "model-a").is_empty());

        // Forgetting ada removes the vectors of what she wrote, of every model.
        store
            .forget_people(&ws, &[RecordKey::new("forum", "ada")], 1)
            .expect("forget");
    }
    let store = SqliteStore::open(&path).expect("reopens");
    let left: Vec<String> = embeddings(&store, &ws, "model-a")
        .into_iter()
        .map(|embedding| embedding.key.external_id)
        .collect();
    assert_eq!(left, vec!["c2".to_owned()]);
    assert!(embeddings(&store, &ws, "model-b").is_empty());
}
