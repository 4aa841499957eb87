//! Identity resolution over what the real connectors produce: each connector's records, converted
//! by the host as a sync converts them, ingested into a real store, and the automatic merges
//! that resolution made compared with a list checked by hand once
//! (`tests/expected/auto-merges.txt`, rewritten with `TRELLIS_BLESS=1`). A merge of two
//! different people is a false merge; the list must hold none.
//!
//! Also: people who only share a display name on one platform stay apart (the four-"Joe" chain
//! of issue 20), and the merges an earlier version made on such evidence are found and undone
//! through the audit trail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trellis_conformance::built_library;
use trellis_core::domain::{Merge, Record, RecordKey, WorkspaceId};
use trellis_core::service::{Settings, Trellis};
use trellis_core::store::Store;
use trellis_plugin_host::PluginRegistry;
use trellis_plugin_sdk::State;
use trellis_plugin_sdk::host::convert::record_to_core;
use trellis_plugin_sdk::pb::connector::batch_item;
use trellis_store::SqliteStore;

fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("TRELLIS_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    if root.join("stackexchange").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "skipped: no shared data at {} (set TRELLIS_SHARED_DATA)",
            root.display()
        );
        None
    }
}

fn trellis() -> (Arc<Trellis>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    (trellis, store)
}

/// The real connectors' libraries, as cargo built them, loaded by the host.
fn registry(dir: &Path) -> PluginRegistry {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for crate_name in [
        "trellis_connector_stackexchange",
        "trellis_connector_slack",
        "trellis_connector_discourse",
        "trellis_connector_mastodon",
    ] {
        let library = built_library(crate_name);
        std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    }
    PluginRegistry::load(&[plugins])
}

/// Reads a connector to its end and ingests each batch as a sync does: records converted by
/// the host and stored under `source`.
fn sync(
    registry: &PluginRegistry,
    trellis: &Trellis,
    connector: &str,
    source: &str,
    config: serde_json::Value,
) {
    let loaded = registry
        .get(connector)
        .unwrap_or_else(|| panic!("no {connector} connector: {:?}", registry.refused()));
    let instance = loaded.instance().unwrap();
    let mut read = instance
        .read(&config.to_string(), &State::new())
        .unwrap_or_else(|error| panic!("{source}: {error:?}"));
    let workspace = WorkspaceId::default_workspace();
    let mut position = 0u64;
    while let Some(batch) = read
        .next_batch()
        .unwrap_or_else(|error| panic!("{source}: {error:?}"))
    {
        let mut records: Vec<(u64, Record)> = Vec::new();
        for item in batch.items {
            if let Some(batch_item::Item::Record(record)) = item.item {
                let record = record_to_core(source, record)
                    .unwrap_or_else(|violation| panic!("{source}: {violation:?}"));
                records.push((position, record));
                position += 1;
            }
        }
        if !records.is_empty() {
            let outcome = trellis.ingest(&workspace, records).unwrap();
            assert!(outcome.errors.is_empty(), "{source}: {:?}", outcome.errors);
        }
    }
}

/// A person's record as the list shows it: key and display name.
fn named(store: &SqliteStore, key: &RecordKey) -> String {
    let name = store
        .person(&WorkspaceId::default_workspace(), key)
        .unwrap()
        .map(|person| person.display_name)
        .unwrap_or_default();
    format!("{key} ({name})")
}

/// The automatic merges that hold, one a line, in key order (ids and times left out: they
/// change from run to run).
fn automatic_merges(store: &SqliteStore, merges: &[Merge]) -> Vec<String> {
    let mut lines: Vec<String> = merges
        .iter()
        .filter(|merge| merge.automatic && merge.undone_at.is_none())
        .map(|merge| {
            let others: Vec<String> = merge
                .others
                .iter()
                .map(|other| named(store, other))
                .collect();
            format!(
                "{} <- {} [{:.3}] {}",
                named(store, &merge.target),
                others.join(", "),
                merge.confidence,
                merge.reasons.join("; ")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The source of a merge's records, for the counts by data set.
fn sources_of(merge: &Merge) -> String {
    let mut sources: Vec<&str> = std::iter::once(&merge.target)
        .chain(&merge.others)
        .map(|key| key.source.as_str())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    sources.join(" + ")
}

fn compare_with_expected(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name);
    if std::env::var_os("TRELLIS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "the automatic merges differ from {}; check each new one by hand (are they one person?), \
         then rerun with TRELLIS_BLESS=1 to keep them. Now:\n{actual}",
        path.display()
    );
}

#[test]
fn automatic_merges_on_the_real_data_join_only_the_same_person() {
    let Some(data) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (trellis, store) = trellis();
    for site in ["ai", "conlang", "quantumcomputing", "sustainability"] {
        let dump = data.join("stackexchange").join(site);
        sync(
            &registry,
            &trellis,
            "stackexchange",
            &format!("se-{site}"),
            serde_json::json!({
                "path": dump,
                "site_url": format!("https://{site}.stackexchange.com"),
                "comments": true,
            }),
        );
    }
    sync(
        &registry,
        &trellis,
        "slack",
        "slack-houstondatavis",
        serde_json::json!({
            "path": data.join("slack/houstondatavis"),
            "workspace_url": "https://houstondatavis.slack.com",
        }),
    );
    sync(
        &registry,
        &trellis,
        "discourse",
        "discourse-aci",
        serde_json::json!({
            "base_url": "https://ask.cyberinfrastructure.org",
            "saved_dir": data.join("discourse/ask-cyberinfrastructure"),
        }),
    );
    sync(
        &registry,
        &trellis,
        "mastodon",
        "mastodon-dealingwith",
        serde_json::json!({"archive_dir": data.join("mastodon/dealingwith")}),
    );

    let merges = trellis.merges(&WorkspaceId::default_workspace()).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for merge in merges
        .iter()
        .filter(|merge| merge.automatic && merge.undone_at.is_none())
    {
        *counts.entry(sources_of(merge)).or_default() += 1;
    }
    for merge in merges.iter().filter(|merge| merge.automatic) {
        assert!(
            merge
                .others
                .iter()
                .all(|other| other.source != merge.target.source),
            "two records of one source are two accounts, never one person: {merge:?}"
        );
    }
    assert!(
        trellis
            .review_automatic_merges(&WorkspaceId::default_workspace(), false)
            .unwrap()
            .is_empty(),
        "the review judges as resolution does"
    );
    let lines = automatic_merges(&store, &merges);
    let mut report = String::from(
        "# Automatic merges of identity resolution over the shared StackExchange, Slack, Discourse\n\
         # and Mastodon data, all in one workspace (server/plugin-host/tests/identity.rs).\n\
         # Checked by hand once: every merge joins the users of one Stack Exchange network account\n\
         # (the same AccountId in both sites' Users.xml, stackexchange.com/users/<AccountId>) on\n\
         # two sites, some of them also the same LinkedIn or GitHub page; where the display names\n\
         # differ the account was renamed on one site. No merge within one site, none on a shared\n\
         # display name alone, none in the Slack, Discourse or Mastodon data.\n",
    );
    let people = store
        .counts(&WorkspaceId::default_workspace())
        .unwrap()
        .people;
    writeln!(
        report,
        "# people: {people}; automatic merges: {}",
        lines.len()
    )
    .unwrap();
    for (sources, count) in &counts {
        writeln!(report, "# {sources}: {count}").unwrap();
    }
    for line in &lines {
        writeln!(report, "{line}").unwrap();
    }
    compare_with_expected("auto-merges.txt", &report);
}

/// A StackExchange dump of `users` (id, display name, network account id) who each asked one
/// question.
fn write_dump(dir: &Path, users: &[(i64, &str, i64)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut users_xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<users>\n");
    let mut posts_xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n");
    for (id, name, account) in users {
        writeln!(
            users_xml,
            r#"  <row Id="{id}" CreationDate="2020-01-01T00:00:00.000" DisplayName="{name}" AccountId="{account}" />"#
        )
        .unwrap();
        writeln!(
            posts_xml,
            r#"  <row Id="{id}" PostTypeId="1" CreationDate="2020-02-01T08:00:00.000" Score="1" Body="&lt;p&gt;How far apart should trellis posts stand? ({id})&lt;/p&gt;" OwnerUserId="{id}" Title="Trellis posts {id}" Tags="&lt;trellis&gt;" />"#
        )
        .unwrap();
    }
    users_xml.push_str("</users>\n");
    posts_xml.push_str("</posts>\n");
    std::fs::write(dir.join("Users.xml"), users_xml).unwrap();
    std::fs::write(dir.join("Posts.xml"), posts_xml).unwrap();
}

/// Four different Joes of one site (and the third of them on a second site, the same network
/// account), synced from their dumps.
fn four_joes(registry: &PluginRegistry, trellis: &Trellis, dir: &Path) {
    let garden = dir.join("garden");
    let cooking = dir.join("cooking");
    write_dump(
        &garden,
        &[
            (10, "Joe", 100),
            (11, "Joe", 101),
            (12, "joe", 102),
            (13, "Joe", 103),
        ],
    );
    write_dump(&cooking, &[(7, "Joe", 102)]);
    for (source, path, site) in [
        ("garden", &garden, "https://gardening.stackexchange.com"),
        ("cooking", &cooking, "https://cooking.stackexchange.com"),
    ] {
        sync(
            registry,
            trellis,
            "stackexchange",
            source,
            serde_json::json!({"path": path, "site_url": site}),
        );
    }
}

fn key(text: &str) -> RecordKey {
    let (source, id) = text.split_once(':').unwrap();
    RecordKey::new(source, id)
}

#[test]
fn users_who_share_only_a_display_name_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (trellis, store) = trellis();
    four_joes(&registry, &trellis, dir.path());
    let merges = trellis.merges(&WorkspaceId::default_workspace()).unwrap();
    assert_eq!(
        automatic_merges(&store, &merges),
        [
            "cooking:7 (Joe) <- garden:12 (joe) [0.950] the same profile URL \
          (stackexchange.com/users/102); the same handle @joe on stackexchange, not known to be \
          unique there (not evidence)"
        ],
        "only the one Joe with the same network account on two sites"
    );
}

#[test]
fn merges_an_earlier_version_made_on_a_shared_name_are_found_and_undone_with_their_chain() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (trellis, store) = trellis();
    four_joes(&registry, &trellis, dir.path());
    let workspace = WorkspaceId::default_workspace();
    // What the earlier rules stored: each Joe merged into the one before, a chain of four.
    let earlier = |id: &str, target: &str, other: &str, at: i64| Merge {
        id: id.to_owned(),
        target: key(target),
        others: vec![key(other)],
        confidence: 0.95,
        reasons: vec![
            "the same handle @joe on different platforms".into(),
            "the same handle @joe on stackexchange".into(),
        ],
        automatic: true,
        created_at: at,
        undone_at: None,
    };
    store
        .put_merge(&workspace, &earlier("merge-a", "garden:10", "garden:11", 1))
        .unwrap();
    store
        .put_merge(&workspace, &earlier("merge-b", "garden:10", "garden:12", 2))
        .unwrap();
    store
        .put_merge(&workspace, &earlier("merge-c", "garden:10", "garden:13", 3))
        .unwrap();
    // A merge asked for by hand is someone's word, not resolution's: it stays.
    store
        .put_merge(
            &workspace,
            &Merge {
                automatic: false,
                reasons: vec!["merged by request: they told us".into()],
                ..earlier("merge-by-hand", "garden:11", "garden:13", 4)
            },
        )
        .unwrap();
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    let records_of = |person: &str| -> Vec<String> {
        trellis
            .person_insight(&workspace, &key(person), None)
            .unwrap()
            .records
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        records_of("garden:13"),
        [
            "cooking:7",
            "garden:10",
            "garden:11",
            "garden:12",
            "garden:13"
        ],
        "the chain holds before the review"
    );

    let ids = |merges: &[Merge]| -> Vec<String> { merges.iter().map(|m| m.id.clone()).collect() };
    let found = trellis.review_automatic_merges(&workspace, false).unwrap();
    assert_eq!(ids(&found), ["merge-a", "merge-b", "merge-c"]);
    assert!(
        found.iter().all(|merge| merge.undone_at.is_none()),
        "a dry run changes nothing"
    );
    assert_eq!(
        trellis
            .review_automatic_merges(&workspace, false)
            .unwrap()
            .len(),
        3
    );

    let undone = trellis.review_automatic_merges(&workspace, true).unwrap();
    assert_eq!(ids(&undone), ["merge-a", "merge-b", "merge-c"]);
    assert!(undone.iter().all(|merge| merge.undone_at.is_some()));
    assert_eq!(records_of("garden:10"), ["garden:10"]);
    assert_eq!(
        records_of("garden:13"),
        ["garden:11", "garden:13"],
        "joined by hand"
    );
    assert_eq!(records_of("garden:12"), ["cooking:7", "garden:12"]);
    // The audit trail keeps them, undone; the merge by hand and the network account's hold.
    let trail = trellis.merges(&workspace).unwrap();
    for merge in &trail {
        let expected_undone = ["merge-a", "merge-b", "merge-c"].contains(&merge.id.as_str());
        assert_eq!(merge.undone_at.is_some(), expected_undone, "{merge:?}");
    }
    assert_eq!(
        trail.len(),
        5,
        "three undone, one by hand, one on the network account"
    );
    assert!(
        trellis
            .review_automatic_merges(&workspace, false)
            .unwrap()
            .is_empty(),
        "nothing left to undo"
    );
}
