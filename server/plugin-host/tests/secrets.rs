//! Connector secrets in the plugin host, over the real Discourse plugin (its schema marks
//! `api_key` as a secret) and a real SQLite store: taken out of the stored config and sealed,
//! kept across an update that leaves them out, set and cleared alone, refused without a key,
//! moved out of configs that a store written before sealing holds in clear, and sealed anew
//! after a key rotation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trellis_conformance::built_library;
use trellis_core::CoreError;
use trellis_core::domain::WorkspaceId;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::{Source, SourceStore};
use trellis_core::store::Store;
use trellis_plugin_host::{PluginRegistry, SecretKeys, SecretStatus, Sources};
use trellis_store::SqliteStore;

const SECRET: &str = "k-0123456789abcdef";

fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_discourse");
    let copy = plugins.join(library.file_name().unwrap());
    // Never over a copy already loaded: libraries stay mapped for the life of the process.
    if !copy.exists() {
        std::fs::copy(&library, copy).unwrap();
    }
    plugins
}

fn sources(dir: &Path, keys: SecretKeys) -> (Sources, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&dir.join("trellis.db")).unwrap());
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    let registry = Arc::new(PluginRegistry::load(&[plugin_dir(dir)]));
    let sources = Sources::new(
        trellis,
        Arc::clone(&store) as Arc<dyn SourceStore>,
        registry,
    )
    .with_secret_keys(Arc::new(keys));
    (sources, store)
}

fn forum(config: serde_json::Value) -> Source {
    Source {
        id: "forum".to_owned(),
        connector: "discourse".to_owned(),
        config_json: config.to_string(),
        ..Source::default()
    }
}

fn contains(file: &Path, secret: &str) -> bool {
    std::fs::read(file).is_ok_and(|bytes| {
        bytes
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    })
}

#[test]
fn a_secret_is_sealed_out_of_the_stored_config_and_kept_across_updates() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path(), SecretKeys::new(Some([3; 32]), &[]));
    let workspace = WorkspaceId::default_workspace();
    let created = sources
        .create(
            &workspace,
            forum(serde_json::json!({"base_url": "https://forum.example.org", "api_key": SECRET, "api_username": "system"})),
        )
        .unwrap();
    assert!(!created.config_json.contains(SECRET));
    assert!(created.sealed_secrets.starts_with("v1."));
    assert_eq!(created.secret_names, ["api_key"]);
    assert_eq!(
        sources.secret_status(&created),
        [SecretStatus {
            field: "api_key".to_owned(),
            set: true
        }]
    );
    let stored = store.source(&workspace, "forum").unwrap().unwrap();
    assert!(!stored.config_json.contains(SECRET));
    assert!(!stored.sealed_secrets.contains(SECRET));
    for suffix in ["", "-wal"] {
        assert!(!contains(
            &dir.path().join(format!("trellis.db{suffix}")),
            SECRET
        ));
    }

    // An update without the key keeps it; one with a new key replaces it.
    let updated = sources
        .update(
            &workspace,
            forum(serde_json::json!({"base_url": "https://forum.example.org/"})),
        )
        .unwrap();
    assert_eq!(updated.secret_names, ["api_key"]);
    assert_eq!(
        SecretKeys::new(Some([3; 32]), &[])
            .open(&workspace, "forum", &updated.sealed_secrets)
            .unwrap()["api_key"],
        SECRET
    );

    // Set and cleared alone; only secret fields, by name.
    let set = sources
        .set_secrets(
            &workspace,
            "forum",
            BTreeMap::from([("api_key".to_owned(), "k-new".to_owned())]),
            &[],
        )
        .unwrap();
    assert_eq!(
        set.config_json, updated.config_json,
        "the rest is untouched"
    );
    let Err(CoreError::Invalid(violations)) = sources.set_secrets(
        &workspace,
        "forum",
        BTreeMap::from([("base_url".to_owned(), "x".to_owned())]),
        &[],
    ) else {
        panic!("a field that is not a secret is refused");
    };
    assert_eq!(violations[0].field, "secrets.base_url");
    assert!(violations[0].description.contains("api_key"));
    let cleared = sources
        .set_secrets(
            &workspace,
            "forum",
            BTreeMap::new(),
            &["api_key".to_owned()],
        )
        .unwrap();
    assert!(cleared.secret_names.is_empty());
    assert_eq!(cleared.sealed_secrets, "");
    assert_eq!(
        sources.secret_status(&cleared),
        [SecretStatus {
            field: "api_key".to_owned(),
            set: false
        }]
    );
}

#[test]
fn a_refused_secret_is_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _) = sources(dir.path(), SecretKeys::new(Some([3; 32]), &[]));
    let workspace = WorkspaceId::default_workspace();
    // The schema wants a string: an object holding the secret is refused without quoting it.
    let Err(CoreError::Invalid(violations)) = sources.create(
        &workspace,
        forum(serde_json::json!({"base_url": "https://forum.example.org", "api_key": {"value": SECRET}})),
    ) else {
        panic!("a bad secret is refused");
    };
    let text = format!("{violations:?}");
    assert!(text.contains("api_key"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn without_a_key_a_secret_is_refused_and_the_error_says_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path(), SecretKeys::default());
    let workspace = WorkspaceId::default_workspace();
    let error = sources
        .create(
            &workspace,
            forum(serde_json::json!({"base_url": "https://forum.example.org", "api_key": SECRET})),
        )
        .unwrap_err();
    let CoreError::FailedPrecondition(message) = error else {
        panic!("refused as a precondition: {error:?}");
    };
    assert!(message.contains("trellis secrets new-key"), "{message}");
    assert!(store.source(&workspace, "forum").unwrap().is_none());
    // A source without secrets needs no key.
    sources
        .create(
            &workspace,
            forum(serde_json::json!({"base_url": "https://forum.example.org"})),
        )
        .unwrap();
}

#[test]
fn secrets_a_store_holds_in_clear_are_sealed_at_start_and_rotation_seals_them_anew() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = WorkspaceId::default_workspace();
    {
        // As a store written before secrets were sealed holds it.
        let store = SqliteStore::open(&dir.path().join("trellis.db")).unwrap();
        store
            .create_source(
                &workspace,
                &forum(
                    serde_json::json!({"base_url": "https://forum.example.org", "api_key": SECRET}),
                ),
            )
            .unwrap();
    }
    // Without a key, the start refuses and names the source.
    let (unkeyed, _) = sources(dir.path(), SecretKeys::default());
    let error = unkeyed.seal_stored_secrets().unwrap_err().to_string();
    assert!(
        error.contains("default/forum") && error.contains("secrets.key_file"),
        "{error}"
    );
    drop(unkeyed);

    let (first, store) = sources(dir.path(), SecretKeys::new(Some([1; 32]), &[]));
    let report = first.seal_stored_secrets().unwrap();
    assert_eq!((report.moved, report.resealed), (1, 0));
    let sealed = store.source(&workspace, "forum").unwrap().unwrap();
    assert!(
        !sealed.config_json.contains(SECRET),
        "{}",
        sealed.config_json
    );
    assert_eq!(sealed.secret_names, ["api_key"]);
    assert_eq!(first.seal_stored_secrets().unwrap(), Default::default());
    drop((first, store));

    let (rotated, store) = sources(dir.path(), SecretKeys::new(Some([2; 32]), &[[1; 32]]));
    let report = rotated.seal_stored_secrets().unwrap();
    assert_eq!((report.moved, report.resealed), (0, 1));
    let resealed = store.source(&workspace, "forum").unwrap().unwrap();
    assert_eq!(
        SecretKeys::new(Some([2; 32]), &[])
            .open(&workspace, "forum", &resealed.sealed_secrets)
            .unwrap()["api_key"],
        SECRET,
        "the new key alone opens it"
    );
    drop((rotated, store));
    let (stale, _) = sources(dir.path(), SecretKeys::new(Some([1; 32]), &[]));
    // A source the key cannot open does not stop the start; its check says why.
    assert_eq!(stale.seal_stored_secrets().unwrap(), Default::default());
    let error = stale.check(&workspace, "forum").unwrap_err().to_string();
    assert!(error.contains("previous_key_files"), "{error}");
    // The way out of a lost key, as the error says: set the secret again.
    let recovered = stale
        .set_secrets(
            &workspace,
            "forum",
            BTreeMap::from([("api_key".to_owned(), "k-again".to_owned())]),
            &[],
        )
        .unwrap();
    assert_eq!(
        SecretKeys::new(Some([1; 32]), &[])
            .open(&workspace, "forum", &recovered.sealed_secrets)
            .unwrap()["api_key"],
        "k-again"
    );
}
