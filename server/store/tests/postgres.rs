//! The PostgreSQL store: the storage conformance suite (`conformance/mod.rs`), each test in a
//! schema of its own so that tests run in parallel on one database, and what only PostgreSQL
//! has: connection errors, and migrations shared by several stores.
//!
//! The database comes from `TRELLIS_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway cluster
//! and sets it; `scripts/postgres-test-cluster.sh` does the same by hand). Without it these
//! tests say they are skipped, except under `CI=true`, where they fail.

mod conformance;
mod replication;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use trellis_core::CoreError;
use trellis_core::domain::WorkspaceId;
use trellis_core::store::Store;
use trellis_store::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};

use conformance::{Database, Engine, Stores};

const URL_VARIABLE: &str = "TRELLIS_TEST_POSTGRES_URL";

/// The test database's URL, or `None` (having said so) when there is none outside CI.
fn url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
            "{URL_VARIABLE} is not set under CI=true; .ci/run starts a PostgreSQL cluster and sets it"
        ),
        _ => {
            eprintln!(
                "skipped: {URL_VARIABLE} is not set; run scripts/postgres-test-cluster.sh start DIR and export the URL it prints"
            );
            None
        }
    }
}

/// A schema name no other test (nor another run at the same time) uses.
fn unique_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One schema in the test database, dropped with everything in it at the end of the test.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn options(&self) -> PostgresOptions {
        PostgresOptions {
            url: self.url.clone(),
            pool_size: 4,
            schema: Some(self.name.clone()),
        }
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let dropped = self
            .client()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        if let Err(error) = dropped {
            eprintln!("could not drop the test schema {}: {error}", self.name);
        }
    }
}

impl Database for Schema {
    fn open(&self) -> Arc<dyn Stores> {
        Arc::new(PostgresStore::open(&self.options()).expect("open the postgres store"))
    }
}

struct Postgres;

impl Engine for Postgres {
    fn database(&self) -> Option<Box<dyn Database>> {
        Some(Box::new(schema()?))
    }

    fn refuses_nul(&self) -> bool {
        true
    }
}

fn schema() -> Option<Schema> {
    Some(Schema {
        url: url()?,
        name: unique_schema(),
    })
}

conformance_tests!(Postgres);

#[test]
fn migrations_run_once_even_when_stores_open_together() {
    let Some(schema) = schema() else { return };
    let stores: Vec<PostgresStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PostgresStore::open(&schema.options()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for store in &stores {
        assert_eq!(store.schema_version().unwrap(), POSTGRES_SCHEMA_VERSION);
        assert_eq!(store.schema(), Some(schema.name.as_str()));
        assert_eq!(
            store.workspaces().unwrap(),
            vec![WorkspaceId::default_workspace()]
        );
    }
    drop(stores);
    let versions: Vec<i64> = schema
        .client()
        .query(
            &format!(
                "SELECT version FROM {}.schema_migrations ORDER BY version",
                schema.name
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=i64::from(POSTGRES_SCHEMA_VERSION)).collect::<Vec<_>>()
    );
    drop(PostgresStore::open(&schema.options()).unwrap());
    let count: i64 = schema
        .client()
        .query_one(
            &format!("SELECT COUNT(*) FROM {}.schema_migrations", schema.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        count,
        i64::from(POSTGRES_SCHEMA_VERSION),
        "nothing applied twice"
    );
}

#[test]
fn a_database_newer_than_the_binary_is_refused_with_a_clear_error() {
    let Some(schema) = schema() else { return };
    drop(PostgresStore::open(&schema.options()).unwrap());
    let future = i64::from(POSTGRES_SCHEMA_VERSION) + 1;
    schema
        .client()
        .execute(
            &format!(
                "INSERT INTO {}.schema_migrations (version, applied_at) VALUES ($1, 0)",
                schema.name
            ),
            &[&future],
        )
        .unwrap();
    let Err(CoreError::FailedPrecondition(message)) = PostgresStore::open(&schema.options()) else {
        panic!("expected a failed precondition");
    };
    assert!(
        message.contains(&format!("schema version {future}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "version {POSTGRES_SCHEMA_VERSION} that this trellis knows"
        )),
        "{message}"
    );
}

#[test]
fn a_url_that_is_not_one_names_the_field_and_the_form() {
    // Needs no server: the URL is checked before connecting.
    let options = PostgresOptions::new("postgres://trellis@127.0.0.1:notaport/db");
    let Err(CoreError::Invalid(violations)) = PostgresStore::open(&options) else {
        panic!("expected invalid input");
    };
    assert_eq!(violations[0].field, "storage.url");
    assert!(
        violations[0]
            .description
            .contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
        "{violations:?}"
    );
    let mut options = PostgresOptions::new("postgres://trellis@127.0.0.1/db");
    options.schema = Some("Robert'); DROP TABLE".into());
    let Err(CoreError::Invalid(violations)) = PostgresStore::open(&options) else {
        panic!("expected invalid input");
    };
    assert_eq!(violations[0].field, "storage.schema");
    options.schema = None;
    options.pool_size = 0;
    let Err(CoreError::Invalid(violations)) = PostgresStore::open(&options) else {
        panic!("expected invalid input");
    };
    assert_eq!(violations[0].field, "storage.pool_size");
}

#[test]
fn an_unreachable_server_is_a_storage_error_that_says_what_to_check() {
    // Needs no server: nothing listens on this port (it is bound and closed at once), and the
    // password must never appear in the message.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = PostgresOptions::new(format!(
        "postgres://trellis:secret-password@127.0.0.1:{port}/trellis?connect_timeout=2"
    ));
    let Err(CoreError::Storage(message)) = PostgresStore::open(&options) else {
        panic!("expected a storage error");
    };
    assert!(
        message.contains(&format!("127.0.0.1:{port}/trellis")),
        "{message}"
    );
    assert!(message.contains("storage.url"), "{message}");
    assert!(message.contains("is running and reachable"), "{message}");
    assert!(!message.contains("secret-password"), "{message}");
    assert!(
        !format!("{options:?}").contains("secret-password"),
        "{options:?}"
    );
}

#[test]
fn a_store_is_debuggable_without_its_password() {
    let Some(schema) = schema() else { return };
    let store = PostgresStore::open(&schema.options()).unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains(&schema.name), "{shown}");
    store.flush().unwrap();
}

#[test]
fn keys_round_trip_and_a_revocation_is_seen_by_another_store_at_once() {
    use trellis_core::domain::WorkspaceId;
    use trellis_core::keys::{self, KeyStore, Role};
    let Some(schema) = schema() else {
        return;
    };
    let cli = PostgresStore::open(&schema.options()).expect("open");
    let server = PostgresStore::open(&schema.options()).expect("open a second time");
    let workspace = |name: &str| WorkspaceId::parse(name).expect("valid workspace");
    let (reader, reader_secret) = keys::generate(workspace("acme"), Role::Read, "dashboard", 10);
    let (admin, _) = keys::generate(workspace("globex"), Role::Admin, "", 20);
    cli.put_key(&reader).expect("put");
    cli.put_key(&admin).expect("put");
    assert!(cli.put_key(&reader).is_err(), "a duplicate id is refused");

    let found = server.key(&reader.id).expect("read").expect("found");
    assert_eq!(found, reader);
    let (_, secret) = keys::split(&reader_secret).expect("splits");
    assert!(keys::matches(&found, secret));
    assert_eq!(server.key("0000").expect("read"), None);
    let listed: Vec<String> = server
        .keys()
        .expect("list")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec![reader.id.clone(), admin.id.clone()]);

    assert!(cli.revoke_key(&reader.id, 30).expect("revoke"));
    assert!(!cli.revoke_key(&reader.id, 40).expect("revoke again"));
    assert!(!cli.revoke_key("0000", 40).expect("revoke unknown"));
    assert_eq!(
        server
            .key(&reader.id)
            .expect("read")
            .expect("found")
            .revoked_at,
        Some(30)
    );
    let stored: Vec<Vec<u8>> = schema
        .client()
        .query(
            &format!("SELECT secret_sha256 FROM {}.api_keys", schema.name),
            &[],
        )
        .expect("read the rows")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        stored.iter().all(|digest| digest.len() == 32
            && !digest.windows(secret.len()).any(|w| w == secret.as_bytes())),
        "only digests are stored"
    );
}
