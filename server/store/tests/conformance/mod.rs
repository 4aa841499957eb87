//! The storage conformance suite: every behaviour the `Store` and `SourceStore` contracts promise,
//! written once against any engine. Each engine's test file (`store.rs` for SQLite,
//! `postgres.rs` for PostgreSQL) says how to make a fresh database and instantiates every test
//! here with [`conformance_tests!`]; behaviours that only one engine has (SQLite's file and log,
//! PostgreSQL's connection errors) stay in that engine's file.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use trellis_core::CoreError;
use trellis_core::domain::{
    Asset, AssetKind, Conversation, Identity, Merge, Person, PlatformKind, Post, Record, RecordKey,
    WorkspaceId,
};
use trellis_core::engine::semantic::{Embedded, Embedding};
use trellis_core::feedback::{Feedback, FeedbackFilter, Outcome, SuggestionKind};
use trellis_core::sources::{Source, SourceStore, SyncStatus};
use trellis_core::store::{CorpusCounts, Store, TextBudget, Upserted};
use trellis_core::strategy::{Facet, FacetKind, Strategy as TrellisStrategy};

/// Both contracts, as one object: every engine implements both on one type.
pub trait Stores: Store + SourceStore {}
impl<T: Store + SourceStore> Stores for T {}

/// One empty database of an engine. Dropping it removes what the tests wrote, where the engine
/// needs that.
pub trait Database {
    /// Opens a store on this database. Every call opens a new store (new connections) on the
    /// same data, as a restart or a second process would.
    fn open(&self) -> Arc<dyn Stores>;
}

/// An engine under test.
pub trait Engine {
    /// A new, empty database; `None` (having said why) when the engine is not available here.
    fn database(&self) -> Option<Box<dyn Database>>;
    /// True when the engine refuses the character U+0000 in text (PostgreSQL does).
    fn refuses_nul(&self) -> bool;
}

/// A fresh database and a store open on it; the database must outlive the store.
pub fn fresh(engine: &dyn Engine) -> Option<(Box<dyn Database>, Arc<dyn Stores>)> {
    let database = engine.database()?;
    let store = database.open();
    Some((database, store))
}

/// Instantiates every conformance test as a `#[test]` for one engine.
#[macro_export]
macro_rules! conformance_tests {
    ($engine:expr) => {
        $crate::conformance_tests!(@each $engine;
            every_record_kind_round_trips,
            kinds_with_the_same_key_do_not_collide,
            upserts_report_inserted_unchanged_and_updated_with_the_previous_record,
            an_empty_batch_does_nothing,
            a_key_repeated_in_one_batch_sees_its_earlier_occurrence,
            strategies_are_versioned_and_listed_newest_first,
            a_strategy_json_cannot_hold_is_refused,
            workspaces_are_isolated,
            the_default_workspace_always_exists_and_ensuring_is_idempotent,
            posts_come_by_creation_time_then_insertion_order,
            opening_posts_are_the_first_posts_a_text_budget_admits,
            scan_visits_people_then_conversations_then_posts_in_first_insertion_order,
            scan_pages_through_large_corpora_without_losing_or_repeating_records,
            scan_stops_at_the_first_error_and_may_call_back_into_the_store,
            everything_survives_closing_and_reopening,
            readers_and_a_writer_work_side_by_side_across_threads,
            concurrent_writers_to_one_workspace_follow_one_another,
            arbitrary_records_round_trip_unchanged,
            an_update_reports_exactly_the_record_it_replaced,
            two_stores_on_one_database_see_each_others_commits,
            embeddings_round_trip_per_model_replace_and_go_with_a_forgotten_author,
            asset_embeddings_are_kept_apart_from_conversation_embeddings_of_the_same_key,
            people_are_listed_in_insertion_order_and_their_writing_newest_first,
            merges_are_kept_undone_once_and_forgotten_with_their_people,
            feedback_is_kept_by_id_listed_newest_first_filtered_paged_and_counted,
            checkpoints_replace_state_and_add_to_the_count,
            sources_are_listed_by_id_and_deleted_with_their_state,
            sealed_secrets_are_stored_replaced_alone_and_listed,
            a_sync_lease_has_one_holder_until_it_runs_out_or_is_given_up,
            text_with_nul_is_stored_or_refused_naming_the_field
        );
    };
    (@each $engine:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                conformance::$name(&$engine);
            }
        )*
    };
}

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
                handle_unique: false,
            },
            Identity {
                platform: "mastodon".into(),
                handle: "@ada@example.social".into(),
                profile_url: String::new(),
                email_sha256: String::new(),
                handle_unique: true,
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
pub fn corpus() -> Vec<Record> {
    vec![
        Record::Person(person("ada")),
        Record::Conversation(conversation("c1")),
        Record::Post(post("p1", "c1", Some(10))),
        Record::Post(post("p2", "c1", Some(20))),
        Record::Asset(asset("guide")),
        Record::Conversation(conversation("c2")),
    ]
}

pub fn every_record_kind_round_trips(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn kinds_with_the_same_key_do_not_collide(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn upserts_report_inserted_unchanged_and_updated_with_the_previous_record(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn an_empty_batch_does_nothing(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    assert_eq!(
        store.upsert_records(&default_workspace(), &[]).unwrap(),
        vec![]
    );
}

pub fn a_key_repeated_in_one_batch_sees_its_earlier_occurrence(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn strategies_are_versioned_and_listed_newest_first(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn a_strategy_json_cannot_hold_is_refused(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let mut bad = strategy("nan");
    bad.facets[0].weight = f64::NAN;
    let Err(CoreError::Invalid(violations)) = store.put_strategy(&default_workspace(), &bad, 0)
    else {
        panic!("expected invalid");
    };
    assert_eq!(violations[0].field, "facets[0].weight");
    assert_eq!(store.strategy(&default_workspace(), None).unwrap(), None);
}

pub fn workspaces_are_isolated(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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
    assert_eq!(scan(&*store, &b), vec![]);
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

pub fn the_default_workspace_always_exists_and_ensuring_is_idempotent(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn posts_come_by_creation_time_then_insertion_order(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

/// `opening_posts` returns what `posts_of` would, cut where a `TextBudget` turns a post down:
/// lengths in bytes (not characters), an empty post counted as one byte, the first post however
/// long; a long thread cut early leaves the store able to answer the next read.
pub fn opening_posts_are_the_first_posts_a_text_budget_admits(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let ws = default_workspace();
    let with_text = |id: &str, created_at: Option<i64>, text: String| Post {
        text,
        ..post(id, "c1", created_at)
    };
    let mut batch = vec![
        Record::Post(with_text("late", Some(30), "late".repeat(10))),
        Record::Post(with_text("tie-first", Some(20), "ü".repeat(20))),
        Record::Post(with_text("tie-second", Some(20), String::new())),
        Record::Post(with_text("undated", None, "x".repeat(50))),
        Record::Post(with_text("early", Some(10), "é".repeat(5))),
    ];
    batch.extend((0..300).map(|number| {
        Record::Post(Post {
            text: format!("reply {number} ").repeat(20),
            ..post(&format!("long-{number}"), "c2", Some(number))
        })
    }));
    store.upsert_records(&ws, &batch).unwrap();
    for thread in ["c1", "c2", "missing"] {
        let key = RecordKey::new("forum", thread);
        let all = store.posts_of(&ws, &key).unwrap();
        for bytes in [
            0,
            1,
            49,
            50,
            59,
            60,
            100,
            101,
            140,
            141,
            1_000,
            10_000,
            usize::MAX,
        ] {
            let mut budget = TextBudget::new(bytes);
            let expected: Vec<&Post> = all
                .iter()
                .take_while(|post| budget.admits(post.text.len()))
                .collect();
            let opening = store.opening_posts(&ws, &key, bytes).unwrap();
            assert_eq!(
                opening.iter().collect::<Vec<_>>(),
                expected,
                "{thread} within {bytes} bytes"
            );
            // The store still answers after a read it stopped early.
            assert_eq!(store.posts_of(&ws, &key).unwrap().len(), all.len());
        }
    }
    let ids = |bytes| -> Vec<String> {
        store
            .opening_posts(&ws, &RecordKey::new("forum", "c1"), bytes)
            .unwrap()
            .into_iter()
            .map(|post| post.key.external_id)
            .collect()
    };
    assert_eq!(ids(0), ["undated"], "the first post always");
    assert_eq!(
        ids(59),
        ["undated"],
        "\"early\" is 10 bytes in 5 characters"
    );
    assert_eq!(ids(60), ["undated", "early"]);
    assert_eq!(ids(100), ["undated", "early", "tie-first"]);
    assert_eq!(
        ids(140),
        ["undated", "early", "tie-first", "tie-second"],
        "an empty post counts as a byte"
    );
    assert_eq!(
        ids(141),
        ["undated", "early", "tie-first", "tie-second", "late"]
    );
}

pub fn scan_visits_people_then_conversations_then_posts_in_first_insertion_order(
    engine: &dyn Engine,
) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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
        scan(&*store, &ws),
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

pub fn scan_pages_through_large_corpora_without_losing_or_repeating_records(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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
    assert_eq!(scan(&*store, &ws), expected);
    assert_eq!(scan(&*store, &other).len(), 500);
}

pub fn scan_stops_at_the_first_error_and_may_call_back_into_the_store(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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

pub fn everything_survives_closing_and_reopening(engine: &dyn Engine) {
    let Some(db) = engine.database() else { return };
    let team = workspace("team");
    let mut updated = conversation("c1");
    updated.tags.clear();
    {
        let store = db.open();
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
    let store = db.open();
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
        scan(&*store, &ws),
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

pub fn readers_and_a_writer_work_side_by_side_across_threads(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
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
    (text(), text(), text(), text(), any::<bool>()).prop_map(
        |(platform, handle, profile_url, email_sha256, handle_unique)| Identity {
            platform,
            handle,
            profile_url,
            email_sha256,
            handle_unique,
        },
    )
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

fn read_back(store: &dyn Stores, ws: &WorkspaceId, record: &Record) -> Option<Record> {
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

/// A workspace of its own for each property case, so that cases share one store.
fn case_workspace(case: usize) -> WorkspaceId {
    workspace(&format!("case-{case}"))
}

/// True when a text field the engine keeps as plain text holds U+0000 (lists are JSON, where
/// it is escaped).
fn has_nul_in_text(record: &Record) -> bool {
    let key = record.key();
    let mut texts: Vec<&str> = vec![&key.source, &key.external_id];
    match record {
        Record::Person(person) => texts.extend([&*person.display_name, &*person.bio]),
        Record::Conversation(conversation) => {
            texts.extend([
                &*conversation.url,
                &*conversation.title,
                &*conversation.body,
            ]);
            texts.extend(conversation.author.as_deref());
        }
        Record::Post(post) => {
            texts.extend([&*post.conversation, &*post.text]);
            texts.extend(post.author.as_deref());
            texts.extend(post.parent.as_deref());
        }
        Record::Asset(asset) => texts.extend([&*asset.url, &*asset.title, &*asset.text]),
    }
    texts.iter().any(|text| text.contains('\0'))
}

/// Stores `records` in `ws`, or, when the engine refuses U+0000 and the records carry it, checks
/// that the refusal is invalid input and returns `None`.
fn upsert_or_refused(
    engine: &dyn Engine,
    store: &dyn Stores,
    ws: &WorkspaceId,
    records: &[Record],
) -> Result<Option<Vec<Upserted<Record>>>, TestCaseError> {
    let refused = engine.refuses_nul() && records.iter().any(has_nul_in_text);
    match store.upsert_records(ws, records) {
        Err(CoreError::Invalid(violations)) if refused => {
            prop_assert!(
                violations[0].description.contains("U+0000"),
                "{violations:?}"
            );
            prop_assert_eq!(store.counts(ws).unwrap(), CorpusCounts::default());
            Ok(None)
        }
        Ok(results) if !refused => Ok(Some(results)),
        other => Err(TestCaseError::fail(format!(
            "refused: {refused}; got {other:?}"
        ))),
    }
}

pub fn arbitrary_records_round_trip_unchanged(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let mut runner = TestRunner::new(ProptestConfig::with_cases(128));
    let case = std::cell::Cell::new(0);
    runner
        .run(&any_record(), |record| {
            case.set(case.get() + 1);
            let ws = case_workspace(case.get());
            let one = std::slice::from_ref(&record);
            let Some(results) = upsert_or_refused(engine, &*store, &ws, one)? else {
                return Ok(());
            };
            prop_assert_eq!(results, vec![Upserted::Inserted]);
            prop_assert_eq!(read_back(&*store, &ws, &record), Some(record.clone()));
            prop_assert_eq!(
                store.upsert_records(&ws, one).unwrap(),
                vec![Upserted::Unchanged]
            );
            let scanned = scan(&*store, &ws);
            match &record {
                Record::Person(_) | Record::Conversation(_) | Record::Post(_) => {
                    prop_assert_eq!(scanned, vec![record])
                }
                Record::Asset(_) => prop_assert!(scanned.is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

pub fn an_update_reports_exactly_the_record_it_replaced(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let mut runner = TestRunner::new(ProptestConfig::with_cases(128));
    let case = std::cell::Cell::new(0);
    runner
        .run(&(any_record(), any_record()), |(first, second)| {
            case.set(case.get() + 1);
            let ws = case_workspace(case.get());
            // Give the second record the first one's kind-independent key.
            let mut second = second;
            let key = first.key().clone();
            match &mut second {
                Record::Person(person) => person.key = key,
                Record::Conversation(conversation) => conversation.key = key,
                Record::Post(post) => post.key = key,
                Record::Asset(asset) => asset.key = key,
            }
            if upsert_or_refused(engine, &*store, &ws, std::slice::from_ref(&first))?.is_none() {
                return Ok(());
            }
            let Some(result) =
                upsert_or_refused(engine, &*store, &ws, std::slice::from_ref(&second))?
            else {
                return Ok(());
            };
            let same_kind = std::mem::discriminant(&first) == std::mem::discriminant(&second);
            let expected = if !same_kind {
                Upserted::Inserted
            } else if first == second {
                Upserted::Unchanged
            } else {
                Upserted::Updated { previous: first }
            };
            prop_assert_eq!(result, vec![expected]);
            prop_assert_eq!(read_back(&*store, &ws, &second), Some(second));
            Ok(())
        })
        .unwrap();
}

pub fn two_stores_on_one_database_see_each_others_commits(engine: &dyn Engine) {
    // As when the CLI writes to the database a running server has open, or two replicas share it.
    let Some(db) = engine.database() else { return };
    let server = db.open();
    let cli = db.open();
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

pub fn concurrent_writers_to_one_workspace_follow_one_another(engine: &dyn Engine) {
    // Two stores (two processes, or two replicas) writing the same keys at once: exactly one
    // insert is reported per key, and strategy versions are never handed out twice.
    let Some(db) = engine.database() else { return };
    let stores = [db.open(), db.open()];
    let ws = default_workspace();
    let results: Vec<Vec<Upserted<Record>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let ws = &ws;
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    for index in 0..40 {
                        let batch = [Record::Conversation(conversation(&format!("c{index}")))];
                        seen.extend(store.upsert_records(ws, &batch).unwrap());
                    }
                    for index in 0..10 {
                        store
                            .put_strategy(ws, &strategy(&format!("s{index}")), index)
                            .unwrap();
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let inserted = results
        .iter()
        .flatten()
        .filter(|result| matches!(result, Upserted::Inserted))
        .count();
    let unchanged = results
        .iter()
        .flatten()
        .filter(|result| matches!(result, Upserted::Unchanged))
        .count();
    assert_eq!((inserted, unchanged), (40, 40));
    assert_eq!(stores[0].counts(&ws).unwrap().conversations, 40);
    let versions: Vec<u32> = stores[1]
        .strategy_versions(&ws, 100, None)
        .unwrap()
        .into_iter()
        .map(|stored| stored.version)
        .collect();
    assert_eq!(versions, (1..=20).rev().collect::<Vec<_>>());
}

pub fn people_are_listed_in_insertion_order_and_their_writing_newest_first(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let ws = default_workspace();
    let mut outsider = person("zed");
    outsider.member = false;
    let mut undated = conversation("undated");
    undated.created_at = None;
    let mut older = conversation("older");
    older.created_at = Some(1);
    let mut elsewhere = post("elsewhere", "c1", Some(99));
    elsewhere.key.source = "mastodon".into();
    let by_ada = |id: &str, at: Option<i64>| {
        let mut post = post(id, "c1", at);
        post.author = Some("ada".into());
        post
    };
    store
        .upsert_records(
            &ws,
            &[
                Record::Person(person("ada")),
                Record::Person(outsider.clone()),
                Record::Person(person("bob")),
                Record::Conversation(undated.clone()),
                Record::Conversation(conversation("c1")),
                Record::Conversation(older.clone()),
                Record::Post(by_ada("p-undated", None)),
                Record::Post(by_ada("p-old", Some(5))),
                Record::Post(by_ada("p-new", Some(50))),
                Record::Post(by_ada("p-tie", Some(50))),
                Record::Post(post("by-grace", "c1", Some(60))),
                Record::Post(elsewhere),
            ],
        )
        .unwrap();
    let ids = |people: Vec<(i64, Person)>| -> Vec<String> {
        people.into_iter().map(|(_, p)| p.key.external_id).collect()
    };
    assert_eq!(
        ids(store.list_people(&ws, None, 0, 10).unwrap()),
        ["ada", "zed", "bob"]
    );
    assert_eq!(
        ids(store.list_people(&ws, Some(true), 0, 10).unwrap()),
        ["ada", "bob"]
    );
    assert_eq!(
        ids(store.list_people(&ws, Some(false), 0, 10).unwrap()),
        ["zed"]
    );
    let first = store.list_people(&ws, None, 0, 2).unwrap();
    assert_eq!(first.len(), 2);
    let after = first[1].0;
    assert_eq!(
        ids(store.list_people(&ws, None, after, 2).unwrap()),
        ["bob"]
    );
    assert!(store.list_people(&ws, None, 0, 0).unwrap().is_empty());
    assert!(
        store
            .list_people(&workspace("other"), None, 0, 10)
            .unwrap()
            .is_empty()
    );

    let (conversations, posts) = store.writing_of(&ws, &person("ada").key, 10).unwrap();
    assert_eq!(
        conversations
            .iter()
            .map(|c| c.key.external_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "older", "undated"],
        "newest first, unknown times last"
    );
    assert_eq!(
        posts
            .iter()
            .map(|p| p.key.external_id.as_str())
            .collect::<Vec<_>>(),
        ["p-tie", "p-new", "p-old", "p-undated"],
        "newest first, ties latest inserted first, unknown times last"
    );
    let (conversations, posts) = store.writing_of(&ws, &person("ada").key, 1).unwrap();
    assert_eq!((conversations.len(), posts.len()), (1, 1));
    let (conversations, posts) = store
        .writing_of(&ws, &RecordKey::new("mastodon", "ada"), 10)
        .unwrap();
    assert!(conversations.is_empty() && posts.is_empty());
}

fn merge(id: &str, target: &str, others: &[&str], created_at: i64) -> Merge {
    Merge {
        id: id.into(),
        target: RecordKey::new("forum", target),
        others: others
            .iter()
            .map(|other| RecordKey::new("forum", *other))
            .collect(),
        confidence: 0.75,
        reasons: vec!["same email".into(), "same handle ✓".into()],
        automatic: true,
        created_at,
        undone_at: None,
    }
}

fn feedback(id: &str, kind: SuggestionKind, outcome: Outcome, person: &str, at: i64) -> Feedback {
    Feedback {
        id: id.into(),
        kind,
        outcome,
        person: Some(RecordKey::new("forum", person)),
        conversation: (kind != SuggestionKind::Prospect).then(|| RecordKey::new("forum", "t1")),
        asset: None,
        action: None,
        at,
        recorded_at: at + 5,
        actor: "crm ∑".into(),
        note: "said so on the phone; 数学".into(),
    }
}

pub fn feedback_is_kept_by_id_listed_newest_first_filtered_paged_and_counted(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let ws = workspace("crm");
    let first = vec![
        feedback("a", SuggestionKind::Discussion, Outcome::Shown, "ada", 10),
        feedback(
            "b",
            SuggestionKind::Discussion,
            Outcome::Accepted,
            "ada",
            20,
        ),
        feedback(
            "c",
            SuggestionKind::Participant,
            Outcome::Dismissed,
            "bob",
            20,
        ),
        feedback("d", SuggestionKind::Prospect, Outcome::Done, "eve", 30),
    ];
    assert_eq!(store.put_feedback(&ws, &first).unwrap(), 0);
    // The same id again replaces what it said.
    let replaced = feedback(
        "a",
        SuggestionKind::Discussion,
        Outcome::Dismissed,
        "ada",
        15,
    );
    assert_eq!(
        store
            .put_feedback(&ws, std::slice::from_ref(&replaced))
            .unwrap(),
        1
    );

    let mut scanned = Vec::new();
    store
        .scan_feedback(&ws, &mut |item| {
            scanned.push(item);
            Ok(())
        })
        .unwrap();
    let ids = |items: &[Feedback]| -> Vec<String> { items.iter().map(|f| f.id.clone()).collect() };
    assert_eq!(ids(&scanned), ["a", "b", "c", "d"], "oldest first");
    assert_eq!(scanned[0], replaced, "a record round-trips whole");

    let all = FeedbackFilter::default();
    let newest = store.list_feedback(&ws, &all, None, 10).unwrap();
    assert_eq!(
        ids(&newest),
        ["d", "c", "b", "a"],
        "newest first, then the larger id"
    );
    let page = store.list_feedback(&ws, &all, None, 2).unwrap();
    assert_eq!(ids(&page), ["d", "c"]);
    let next = store
        .list_feedback(&ws, &all, Some((page[1].at, &page[1].id)), 2)
        .unwrap();
    assert_eq!(ids(&next), ["b", "a"]);
    let by_kind = FeedbackFilter {
        kind: Some(SuggestionKind::Discussion),
        ..FeedbackFilter::default()
    };
    assert_eq!(
        ids(&store.list_feedback(&ws, &by_kind, None, 10).unwrap()),
        ["b", "a"]
    );
    let by_person = FeedbackFilter {
        person: Some(RecordKey::new("forum", "bob")),
        ..FeedbackFilter::default()
    };
    assert_eq!(
        ids(&store.list_feedback(&ws, &by_person, None, 10).unwrap()),
        ["c"]
    );
    let by_conversation = FeedbackFilter {
        conversation: Some(RecordKey::new("forum", "t1")),
        ..FeedbackFilter::default()
    };
    assert_eq!(
        ids(&store
            .list_feedback(&ws, &by_conversation, None, 10)
            .unwrap()),
        ["c", "b", "a"]
    );

    let counts = store.feedback_counts(&ws).unwrap();
    assert_eq!(
        (counts.shown, counts.accepted, counts.dismissed, counts.done),
        (0, 1, 2, 1)
    );
    assert_eq!(
        store.feedback_counts(&default_workspace()).unwrap().total(),
        0
    );
    assert!(
        store
            .list_feedback(&default_workspace(), &all, None, 10)
            .unwrap()
            .is_empty(),
        "workspaces are apart"
    );
}

pub fn merges_are_kept_undone_once_and_forgotten_with_their_people(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let ws = default_workspace();
    store
        .put_merge(&ws, &merge("m2", "bob", &["carol"], 20))
        .unwrap();
    store
        .put_merge(&ws, &merge("m1", "ada", &["eve"], 10))
        .unwrap();
    store
        .put_merge(&ws, &merge("m3", "dan", &["ada", "fay"], 20))
        .unwrap();
    let ids = |merges: Vec<Merge>| -> Vec<String> { merges.into_iter().map(|m| m.id).collect() };
    assert_eq!(ids(store.merges(&ws).unwrap()), ["m1", "m2", "m3"]);
    assert_eq!(
        store.merges(&ws).unwrap()[0],
        merge("m1", "ada", &["eve"], 10)
    );
    assert!(store.merges(&workspace("other")).unwrap().is_empty());

    let undone = store.undo_merge(&ws, "m2", 30).unwrap().expect("undone");
    assert_eq!(undone.undone_at, Some(30));
    assert_eq!(undone.others, vec![RecordKey::new("forum", "carol")]);
    assert_eq!(store.undo_merge(&ws, "m2", 40).unwrap(), None, "only once");
    assert_eq!(store.undo_merge(&ws, "missing", 40).unwrap(), None);
    assert_eq!(
        store.undo_merge(&workspace("other"), "m1", 40).unwrap(),
        None
    );
    assert_eq!(store.merges(&ws).unwrap()[1].undone_at, Some(30));

    // Forgetting ada: her person record and identities go, her writing is blanked, and every
    // merge naming her (as target or as one of the others) goes.
    let mut ada_post = post("p1", "c1", Some(1));
    ada_post.author = Some("ada".into());
    store
        .upsert_records(
            &ws,
            &[
                Record::Person(person("ada")),
                Record::Conversation(conversation("c1")),
                Record::Post(ada_post.clone()),
                Record::Post(post("p2", "c1", Some(2))),
            ],
        )
        .unwrap();
    let forgotten = store
        .forget_people(&ws, &[RecordKey::new("forum", "ada")], 50)
        .unwrap();
    assert_eq!(
        forgotten.identities_removed, 3,
        "the person and two identities"
    );
    assert_eq!(forgotten.posts_removed, 2, "one post and one conversation");
    assert_eq!(store.person(&ws, &person("ada").key).unwrap(), None);
    let blanked = store
        .conversation(&ws, &conversation("c1").key)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            blanked.title.as_str(),
            blanked.body.as_str(),
            blanked.author
        ),
        ("", "", None)
    );
    let posts = store.posts_of(&ws, &conversation("c1").key).unwrap();
    assert_eq!(
        (posts[0].text.as_str(), posts[0].author.as_deref()),
        ("", None)
    );
    assert_eq!(
        posts[1],
        post("p2", "c1", Some(2)),
        "other people's posts stay"
    );
    assert_eq!(ids(store.merges(&ws).unwrap()), ["m2"]);
    assert_eq!(
        store.forgotten(&ws).unwrap(),
        vec![RecordKey::new("forum", "ada")]
    );
    // Forgetting again, or someone unknown, is harmless and remembered once.
    let again = store
        .forget_people(
            &ws,
            &[
                RecordKey::new("forum", "ada"),
                RecordKey::new("forum", "zoe"),
            ],
            60,
        )
        .unwrap();
    assert_eq!(again.identities_removed, 0);
    assert_eq!(
        store.forgotten(&ws).unwrap(),
        vec![
            RecordKey::new("forum", "ada"),
            RecordKey::new("forum", "zoe")
        ]
    );
    assert!(store.forgotten(&workspace("other")).unwrap().is_empty());
}

fn source(id: &str) -> Source {
    Source {
        id: id.to_owned(),
        connector: "jsonl".to_owned(),
        display_name: id.to_owned(),
        config_json: "{}".to_owned(),
        ..Source::default()
    }
}

pub fn checkpoints_replace_state_and_add_to_the_count(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let workspace = WorkspaceId::default_workspace();
    store.create_source(&workspace, &source("a")).unwrap();
    assert!(matches!(
        store.create_source(&workspace, &source("a")),
        Err(CoreError::FailedPrecondition(_))
    ));
    store
        .commit_checkpoint(&workspace, "a", "posts", r#"{"n":1}"#, 10)
        .unwrap();
    store
        .commit_checkpoint(&workspace, "a", "posts", r#"{"n":2}"#, 5)
        .unwrap();
    store
        .commit_checkpoint(&workspace, "a", "people", r#"{"p":1}"#, 1)
        .unwrap();
    assert_eq!(
        store.sync_state(&workspace, "a").unwrap(),
        [
            ("people".to_owned(), r#"{"p":1}"#.to_owned()),
            ("posts".to_owned(), r#"{"n":2}"#.to_owned())
        ]
    );
    assert_eq!(
        store
            .source(&workspace, "a")
            .unwrap()
            .unwrap()
            .records_synced,
        16
    );
    store.clear_sync_state(&workspace, "a").unwrap();
    assert!(store.sync_state(&workspace, "a").unwrap().is_empty());
    assert!(matches!(
        store.commit_checkpoint(&workspace, "missing", "posts", "{}", 1),
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.update_source(&workspace, &source("missing")),
        Err(CoreError::NotFound { .. })
    ));
    let mut changed = source("a");
    changed.display_name = "Forum".into();
    changed.sync_interval_seconds = 3600;
    changed.isolated = true;
    changed.records_synced = 999;
    store.update_source(&workspace, &changed).unwrap();
    let stored = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(
        (
            stored.display_name.as_str(),
            stored.sync_interval_seconds,
            stored.isolated,
            stored.records_synced
        ),
        ("Forum", 3600, true, 16),
        "the configuration changes, the count stays"
    );
}

pub fn sealed_secrets_are_stored_replaced_alone_and_listed(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let workspace = WorkspaceId::default_workspace();
    let mut created = source("a");
    created.sealed_secrets = "v1.0011223344556677.c2VhbGVk".into();
    created.secret_names = vec!["api_key".into(), "auth.token".into()];
    store.create_source(&workspace, &created).unwrap();
    let stored = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(stored.sealed_secrets, created.sealed_secrets);
    assert_eq!(stored.secret_names, created.secret_names);
    assert_eq!(
        store.sources(&workspace, 10, None).unwrap()[0].secret_names,
        created.secret_names
    );
    assert_eq!(
        store.all_sources().unwrap()[0].1.sealed_secrets,
        created.sealed_secrets
    );

    // Replaced alone: the config stays unless given.
    store
        .set_source_secrets(&workspace, "a", None, "v1.8899.bmV3", &["api_key".into()])
        .unwrap();
    let stored = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(
        (stored.config_json.as_str(), stored.sealed_secrets.as_str()),
        ("{}", "v1.8899.bmV3")
    );
    assert_eq!(stored.secret_names, ["api_key"]);
    store
        .set_source_secrets(&workspace, "a", Some(r#"{"url":"u"}"#), "", &[])
        .unwrap();
    let stored = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(stored.config_json, r#"{"url":"u"}"#);
    assert!(stored.sealed_secrets.is_empty() && stored.secret_names.is_empty());
    assert!(matches!(
        store.set_source_secrets(&workspace, "missing", None, "", &[]),
        Err(CoreError::NotFound { .. })
    ));
    // An update replaces them with the rest of the configuration.
    let mut changed = source("a");
    changed.sealed_secrets = "v1.aa.YQ".into();
    changed.secret_names = vec!["api_key".into()];
    store.update_source(&workspace, &changed).unwrap();
    let stored = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(stored.sealed_secrets, "v1.aa.YQ");
    assert_eq!(stored.config_json, "{}");
}

pub fn a_sync_lease_has_one_holder_until_it_runs_out_or_is_given_up(engine: &dyn Engine) {
    use std::time::Duration;
    let Some((db, store)) = fresh(engine) else {
        return;
    };
    // Two processes on one database, as two replicas are.
    let other = db.open();
    let workspace = WorkspaceId::default_workspace();
    store.create_source(&workspace, &source("a")).unwrap();
    store.create_source(&workspace, &source("b")).unwrap();
    let long = Duration::from_secs(60);
    assert!(!store.lease_is_live(&workspace, "a").unwrap());
    assert_eq!(
        store.take_lease(&workspace, "a", "one", long).unwrap(),
        None
    );
    assert!(other.lease_is_live(&workspace, "a").unwrap());
    assert_eq!(
        other.take_lease(&workspace, "a", "two", long).unwrap(),
        Some("one".to_owned()),
        "a live lease names its holder to anyone else"
    );
    assert_eq!(
        store.take_lease(&workspace, "a", "one", long).unwrap(),
        None,
        "the holder renews its own lease"
    );
    assert_eq!(
        other.take_lease(&workspace, "b", "two", long).unwrap(),
        None,
        "leases are per source"
    );
    other.release_lease(&workspace, "a", "two").unwrap();
    assert!(
        store.lease_is_live(&workspace, "a").unwrap(),
        "only the holder gives a lease up"
    );
    store.release_lease(&workspace, "a", "one").unwrap();
    assert!(!store.lease_is_live(&workspace, "a").unwrap());
    assert_eq!(
        other.take_lease(&workspace, "a", "two", long).unwrap(),
        None
    );

    // A lease that runs out (its holder died) is anyone's.
    assert_eq!(
        store
            .take_lease(&workspace, "b", "two", Duration::from_millis(1))
            .unwrap(),
        None
    );
    std::thread::sleep(Duration::from_millis(20));
    assert!(!store.lease_is_live(&workspace, "b").unwrap());
    assert_eq!(
        store.take_lease(&workspace, "b", "one", long).unwrap(),
        None
    );
    assert_eq!(
        other.take_lease(&workspace, "b", "two", long).unwrap(),
        Some("one".to_owned())
    );
    store.break_lease(&workspace, "b").unwrap();
    assert!(
        !other.lease_is_live(&workspace, "b").unwrap(),
        "a broken lease is gone"
    );
    assert_eq!(
        other.take_lease(&workspace, "b", "two", long).unwrap(),
        None
    );
    assert!(matches!(
        store.take_lease(&workspace, "missing", "one", long),
        Err(CoreError::NotFound { .. })
    ));
    let kept = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(kept.status, SyncStatus::Idle, "a lease is not a status");
}

pub fn sources_are_listed_by_id_and_deleted_with_their_state(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let workspace = WorkspaceId::default_workspace();
    for id in ["c", "a", "b", "a-b", "a_b"] {
        store.create_source(&workspace, &source(id)).unwrap();
    }
    let page = store.sources(&workspace, 3, None).unwrap();
    assert_eq!(
        page.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a", "a-b", "a_b"],
        "ids compare byte by byte"
    );
    let rest = store.sources(&workspace, 3, Some("a_b")).unwrap();
    assert_eq!(
        rest.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    store
        .commit_checkpoint(&workspace, "a", "s", "{}", 1)
        .unwrap();
    store
        .set_sync_status(&workspace, "a", SyncStatus::Failed, "boom", Some(5))
        .unwrap();
    let a = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!(
        (a.status, a.last_error.as_str(), a.last_sync_at),
        (SyncStatus::Failed, "boom", Some(5))
    );
    store
        .set_sync_status(&workspace, "a", SyncStatus::Running, "", None)
        .unwrap();
    let a = store.source(&workspace, "a").unwrap().unwrap();
    assert_eq!((a.status, a.last_sync_at), (SyncStatus::Running, Some(5)));
    assert!(store.delete_source(&workspace, "a").unwrap());
    assert!(!store.delete_source(&workspace, "a").unwrap());
    assert!(store.sync_state(&workspace, "a").unwrap().is_empty());
    let other = self::workspace("other");
    store.create_source(&other, &source("a")).unwrap();
    let all: Vec<(String, String)> = store
        .all_sources()
        .unwrap()
        .into_iter()
        .map(|(ws, s)| (ws.as_str().to_owned(), s.id))
        .collect();
    assert_eq!(
        all,
        [
            ("default", "a-b"),
            ("default", "a_b"),
            ("default", "b"),
            ("default", "c"),
            ("other", "a"),
        ]
        .map(|(ws, id)| (ws.to_owned(), id.to_owned()))
    );
}

pub fn text_with_nul_is_stored_or_refused_naming_the_field(engine: &dyn Engine) {
    let Some((_db, store)) = fresh(engine) else {
        return;
    };
    let ws = default_workspace();
    let mut odd = conversation("odd");
    odd.title = "before\0after".into();
    // In a list the character is escaped JSON, which every engine keeps.
    odd.tags = vec!["nul\0tag".into()];
    let result = store.upsert_records(
        &ws,
        &[
            Record::Conversation(conversation("fine")),
            Record::Conversation(odd.clone()),
        ],
    );
    if engine.refuses_nul() {
        let Err(CoreError::Invalid(violations)) = result else {
            panic!("expected invalid input, got {result:?}");
        };
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "records[1].title");
        assert!(
            violations[0].description.contains("U+0000"),
            "{violations:?}"
        );
        assert_eq!(
            store.counts(&ws).unwrap().conversations,
            0,
            "nothing of the batch is kept"
        );
        assert_eq!(
            store
                .conversation(&ws, &RecordKey::new("forum", "a\0b"))
                .unwrap(),
            None
        );
        odd.title = "before after".into();
        assert_eq!(
            store
                .upsert_records(&ws, &[Record::Conversation(odd.clone())])
                .unwrap(),
            vec![Upserted::Inserted]
        );
    } else {
        assert_eq!(result.unwrap(), vec![Upserted::Inserted; 2]);
    }
    assert_eq!(store.conversation(&ws, &odd.key).unwrap(), Some(odd));
}

fn embeddings(store: &dyn Store, workspace: &WorkspaceId, model: &str) -> Vec<Embedding> {
    embeddings_of(store, workspace, model, Embedded::Conversation)
}

fn embeddings_of(
    store: &dyn Store,
    workspace: &WorkspaceId,
    model: &str,
    of: Embedded,
) -> Vec<Embedding> {
    let mut found = Vec::new();
    store
        .scan_embeddings(workspace, model, of, &mut |embedding| {
            found.push(embedding);
            Ok(())
        })
        .expect("embeddings scan");
    found
}

pub fn embeddings_round_trip_per_model_replace_and_go_with_a_forgotten_author(engine: &dyn Engine) {
    let Some(db) = engine.database() else { return };
    let ws = default_workspace();
    {
        let store = db.open();
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
                Embedded::Conversation,
                &[
                    embedding("c1", u64::MAX, 0.25),
                    embedding("c2", 7, 1.0),
                    // No such conversation: dropped.
                    embedding("ghost", 1, 1.0),
                ],
            )
            .expect("put");
        store
            .put_embeddings(
                &ws,
                "model-b",
                Embedded::Conversation,
                &[embedding("c1", 3, 9.0)],
            )
            .expect("put another model");
        // A new vector for c2 replaces the old one.
        store
            .put_embeddings(
                &ws,
                "model-a",
                Embedded::Conversation,
                &[embedding("c2", 8, 2.0)],
            )
            .expect("replace");
        let a = embeddings(&*store, &ws, "model-a");
        assert_eq!(
            a,
            vec![embedding("c1", u64::MAX, 0.25), embedding("c2", 8, 2.0)],
            "bits, signs and the largest hash survive the round trip"
        );
        assert_eq!(embeddings(&*store, &ws, "model-b").len(), 1);
        assert!(embeddings(&*store, &workspace("other"), "model-a").is_empty());

        // Forgetting ada removes the vectors of what she wrote, of every model.
        store
            .forget_people(&ws, &[RecordKey::new("forum", "ada")], 1)
            .expect("forget");
    }
    let store = db.open();
    let left: Vec<String> = embeddings(&*store, &ws, "model-a")
        .into_iter()
        .map(|embedding| embedding.key.external_id)
        .collect();
    assert_eq!(left, vec!["c2".to_owned()]);
    assert!(embeddings(&*store, &ws, "model-b").is_empty());
}

pub fn asset_embeddings_are_kept_apart_from_conversation_embeddings_of_the_same_key(
    engine: &dyn Engine,
) {
    let Some(db) = engine.database() else { return };
    let ws = default_workspace();
    // A conversation and an asset under one reference (an earlier thread offered as an asset).
    let mut thread = conversation("t1");
    thread.key = RecordKey::new("blog", "t1");
    let embedding = |id: &str, hash: u64, x: f32| Embedding {
        key: RecordKey::new("blog", id),
        text_hash: hash,
        vector: vec![x, 1.0 - x],
    };
    {
        let store = db.open();
        store
            .upsert_records(
                &ws,
                &[Record::Conversation(thread), Record::Asset(asset("t1"))],
            )
            .expect("upsert");
        store
            .put_embeddings(
                &ws,
                "m",
                Embedded::Conversation,
                &[embedding("t1", 1, 0.25)],
            )
            .expect("put the conversation's");
        store
            .put_embeddings(
                &ws,
                "m",
                Embedded::Asset,
                &[
                    embedding("t1", 2, 0.75),
                    // No such asset: dropped, as for conversations.
                    embedding("ghost", 3, 1.0),
                ],
            )
            .expect("put the asset's");
        // The asset's text changed and was embedded again: the new vector replaces the old.
        store
            .put_embeddings(&ws, "m", Embedded::Asset, &[embedding("t1", 4, 0.5)])
            .expect("replace the asset's");
    }
    let store = db.open();
    assert_eq!(
        embeddings_of(&*store, &ws, "m", Embedded::Conversation),
        vec![embedding("t1", 1, 0.25)],
        "the conversation's vector is untouched by the asset's"
    );
    assert_eq!(
        embeddings_of(&*store, &ws, "m", Embedded::Asset),
        vec![embedding("t1", 4, 0.5)]
    );
    assert!(embeddings_of(&*store, &ws, "other-model", Embedded::Asset).is_empty());
}
