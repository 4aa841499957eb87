//! End-to-end tests: the real `trellis` binary, started on a loopback port chosen by the OS with
//! a database in a temporary folder, driven over real gRPC with the generated clients and through
//! its own command line. Every test starts its own server, so tests run in parallel and share
//! nothing but the binary.
//!
//! The fixtures are the team's examples: `examples/strategy.toml` (Lumen, an observability
//! company) and `examples/community.jsonl`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;
use trellis_grpc::pb;

mod auth;
mod bulk;
mod crash;
mod evaluation;
mod evidence;
mod feedback;
mod languages;
mod learning;
mod limits;
mod mix;
mod plan;
mod replicas;
mod report;
mod semantic;
mod shaping;
mod sources;

const BIN: &str = env!("CARGO_BIN_EXE_trellis");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// Upper bound for the server to print its address and answer health checks.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn example(name: &str) -> PathBuf {
    Path::new(ROOT).join("examples").join(name)
}

/// A command for the binary with no `TRELLIS_*` settings inherited from the environment.
fn trellis() -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TRELLIS_") {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    // Connectors read files below the repository (fixtures, examples), the shared data (real
    // dumps) and the temporary folder (what tests write); a test of the roots sets its own.
    let mut roots = vec![
        std::fs::canonicalize(ROOT).expect("the repository root"),
        std::env::temp_dir(),
    ];
    roots.extend(std::fs::canonicalize(evaluation::shared_data()).ok());
    let roots: Vec<String> = roots
        .iter()
        .map(|root| root.display().to_string())
        .collect();
    command.env(
        "TRELLIS__FILES__ROOTS",
        serde_json::to_string(&roots).expect("paths as JSON"),
    );
    command
}

// ---------------------------------------------------------------------------------------------
// The server under test

/// A running `trellis serve`; killed when dropped, whatever happened to the test.
struct Server {
    child: Child,
    addr: String,
    channel: Channel,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the child unless defused, so that a server that never came up is not left behind.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True when `TRELLIS_TEST_STORAGE=postgres`: every server keeps its data in PostgreSQL (the
/// database of `TRELLIS_TEST_POSTGRES_URL`) instead of the SQLite file `db`.
fn on_postgres() -> bool {
    std::env::var("TRELLIS_TEST_STORAGE").is_ok_and(|engine| engine == "postgres")
}

/// The schema that stands for the database file `db` on PostgreSQL: one per test (each test has
/// its own folder), the same on every restart of that test's server. Remembered, so that the
/// test's folder ([`TestDir`]) drops it when the test is over.
fn postgres_schema(db: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    db.hash(&mut hasher);
    let schema = format!("e2e_{:016x}", hasher.finish());
    used_schemas().insert(schema.clone(), db.to_owned());
    schema
}

/// The PostgreSQL schemas this process's servers used, with the database file each stands for.
fn used_schemas() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<String, PathBuf>> {
    static USED: std::sync::Mutex<std::collections::BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    USED.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A test's temporary folder. On PostgreSQL, dropping it also drops the schemas that stood for
/// database files in it: by then the test's servers are stopped (a test declares its folder
/// before its servers, so they go first), and a server restarted on the same file during the
/// test found its data. Best effort: a schema that cannot be dropped is reported on standard
/// error and never fails the test.
struct TestDir(TempDir);

/// A new [`TestDir`].
fn test_dir() -> std::io::Result<TestDir> {
    tempfile::tempdir().map(TestDir)
}

impl std::ops::Deref for TestDir {
    type Target = TempDir;

    fn deref(&self) -> &TempDir {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !on_postgres() {
            return;
        }
        let schemas: Vec<String> = {
            let mut used = used_schemas();
            let mine: Vec<String> = used
                .iter()
                .filter(|(_, db)| db.starts_with(self.0.path()))
                .map(|(schema, _)| schema.clone())
                .collect();
            for schema in &mine {
                used.remove(schema);
            }
            mine
        };
        if schemas.is_empty() {
            return;
        }
        let url = postgres_url();
        // The blocking client runs a runtime of its own: not on a thread of the test's runtime.
        let dropped = std::thread::spawn(move || drop_schemas(&url, &schemas)).join();
        if let Ok(Err(error)) = dropped {
            eprintln!("note: a test schema was left behind: {error}");
        }
    }
}

fn drop_schemas(url: &str, schemas: &[String]) -> Result<(), String> {
    let mut config: postgres::Config = url.parse().map_err(|error| format!("{error}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|error| format!("cannot connect to drop {schemas:?}: {error}"))?;
    for schema in schemas {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .map_err(|error| format!("cannot drop schema {schema}: {error}"))?;
    }
    Ok(())
}

fn postgres_url() -> String {
    std::env::var("TRELLIS_TEST_POSTGRES_URL")
        .expect("TRELLIS_TEST_STORAGE=postgres needs TRELLIS_TEST_POSTGRES_URL")
}

/// The `TRELLIS__STORAGE__…` settings that send a server's data where [`on_postgres`] says.
fn storage_settings(db: &Path) -> Vec<(&'static str, String)> {
    if !on_postgres() {
        return Vec::new();
    }
    vec![
        ("TRELLIS__STORAGE__ENGINE", "postgres".to_owned()),
        ("TRELLIS__STORAGE__URL", postgres_url()),
        ("TRELLIS__STORAGE__POOL_SIZE", "4".to_owned()),
        ("TRELLIS__STORAGE__SCHEMA", postgres_schema(db)),
    ]
}

/// Opens the store a server started on `db` used, to look at what it committed.
fn open_store(db: &Path) -> Box<dyn trellis_core::store::Store> {
    if on_postgres() {
        let options = trellis_store::PostgresOptions {
            url: postgres_url(),
            pool_size: 1,
            schema: Some(postgres_schema(db)),
        };
        Box::new(trellis_store::PostgresStore::open(&options).expect("open the postgres store"))
    } else {
        Box::new(trellis_store::SqliteStore::open(db).expect("open the sqlite store"))
    }
}

impl Server {
    /// Starts `trellis serve --listen 127.0.0.1:0 --db DB`, reads the address it prints, and
    /// waits (bounded) until its health service reports the Trellis services as serving.
    async fn start(db: &Path) -> Server {
        Self::start_with(db, &[]).await
    }

    /// The same, with more `TRELLIS__…` settings in the environment.
    async fn start_with(db: &Path, settings: &[(&str, &str)]) -> Server {
        let mut child = trellis()
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .envs(storage_settings(db))
            .envs(settings.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("TRELLIS_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(
                if std::env::var_os("TRELLIS_TEST_SERVER_STDERR").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                },
            )
            .spawn()
            .expect("the trellis binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut guard = ChildGuard(Some(child));
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line);
            // Keep draining so that the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = tokio::task::spawn_blocking(move || receiver.recv_timeout(START_TIMEOUT))
            .await
            .expect("the reader task runs")
            .expect("the server prints its address within the start timeout");
        let addr = line
            .trim()
            .strip_prefix("trellis listening on ")
            .unwrap_or_else(|| panic!("unexpected first line on stdout: {line:?}"))
            .to_owned();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "listens on loopback: {addr}"
        );
        let channel = wait_until_serving(&addr).await;
        Server {
            child: guard.0.take().expect("the child is still guarded"),
            addr,
            channel,
        }
    }

    fn strategies(&self) -> pb::strategy_service_client::StrategyServiceClient<Channel> {
        pb::strategy_service_client::StrategyServiceClient::new(self.channel.clone())
    }

    fn ingest(&self) -> pb::ingest_service_client::IngestServiceClient<Channel> {
        pb::ingest_service_client::IngestServiceClient::new(self.channel.clone())
    }

    fn insight(&self) -> pb::insight_service_client::InsightServiceClient<Channel> {
        pb::insight_service_client::InsightServiceClient::new(self.channel.clone())
    }

    fn feedback(&self) -> pb::feedback_service_client::FeedbackServiceClient<Channel> {
        pb::feedback_service_client::FeedbackServiceClient::new(self.channel.clone())
    }

    fn people(&self) -> pb::people_service_client::PeopleServiceClient<Channel> {
        pb::people_service_client::PeopleServiceClient::new(self.channel.clone())
    }

    /// Runs a client subcommand against this server. `args` is the subcommand and its
    /// arguments; `--addr` and `--json` are appended.
    fn cli(&self, args: &[&str]) -> Output {
        trellis()
            .args(args)
            .args(["--addr", &self.addr, "--json"])
            .output()
            .expect("the trellis binary runs")
    }

    /// Like [`cli`](Self::cli), but the command must succeed and print JSON.
    fn cli_json(&self, args: &[&str]) -> Value {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "`trellis {}` failed: {}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "`trellis {}` printed no JSON ({error}): {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Stops the server with SIGTERM, as a service manager would, and returns its exit status.
    async fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within 20 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn wait_until_serving(addr: &str) -> Channel {
    let deadline = Instant::now() + START_TIMEOUT;
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a valid address");
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let serving = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "trellis.v1.StrategyService".into(),
                })
                .await
                .is_ok_and(|response| {
                    response.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                });
            if serving {
                return channel;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server at {addr} was not serving within {START_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fresh server on a fresh database; the folder must outlive the server.
async fn fresh() -> (TestDir, Server) {
    let dir = test_dir().expect("a temporary folder");
    let server = Server::start(&dir.path().join("t.db")).await;
    (dir, server)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn example_strategy() -> trellis_core::strategy::Strategy {
    let text =
        std::fs::read_to_string(example("strategy.toml")).expect("examples/strategy.toml exists");
    trellis_core::strategy::parse_strategy_toml(&text).expect("the example strategy is valid")
}

fn example_strategy_pb() -> pb::Strategy {
    trellis_grpc::convert::strategy_to_pb(&example_strategy())
}

async fn put_example_strategy(server: &Server) -> pb::StrategyVersion {
    server
        .strategies()
        .put_strategy(pb::PutStrategyRequest {
            workspace: String::new(),
            strategy: Some(example_strategy_pb()),
        })
        .await
        .expect("the example strategy is accepted")
        .into_inner()
        .strategy_version
        .expect("a stored version")
}

/// Ingests `examples/community.jsonl` through the CLI and returns its JSON report.
fn ingest_example(server: &Server) -> Value {
    let path = example("community.jsonl");
    let report = server.cli_json(&["ingest", path.to_str().expect("a UTF-8 path")]);
    assert_eq!(
        report["errors"],
        Value::Array(Vec::new()),
        "the example community is clean: {report}"
    );
    report
}

fn conversation_ids_of_example() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(example("community.jsonl"))
        .expect("examples/community.jsonl exists");
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| serde_json::from_str::<Value>(line).expect("every example line is JSON"))
        .filter(|value| value["type"] == "conversation")
        .map(|value| {
            (
                value["source"].as_str().unwrap_or_default().to_owned(),
                value["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn reference(source: &str, id: &str) -> Option<pb::RecordRef> {
    Some(pb::RecordRef {
        source: source.into(),
        external_id: id.into(),
    })
}

fn conversation(source: &str, id: &str, title: &str, body: &str) -> pb::IngestRequest {
    pb::IngestRequest {
        workspace: String::new(),
        record: Some(pb::ingest_request::Record::Conversation(pb::Conversation {
            r#ref: reference(source, id),
            platform: pb::PlatformKind::QaForum.into(),
            title: title.into(),
            body: body.into(),
            open: true,
            ..Default::default()
        })),
    }
}

fn post(source: &str, id: &str, conversation: &str, text: &str) -> pb::IngestRequest {
    pb::IngestRequest {
        workspace: String::new(),
        record: Some(pb::ingest_request::Record::Post(pb::Post {
            r#ref: reference(source, id),
            conversation: conversation.into(),
            text: text.into(),
            ..Default::default()
        })),
    }
}

async fn ingest(server: &Server, messages: Vec<pb::IngestRequest>) -> pb::IngestResponse {
    server
        .ingest()
        .ingest(tokio_stream::iter(messages))
        .await
        .expect("the ingest stream is accepted")
        .into_inner()
}

async fn score_texts(server: &Server, texts: &[(&str, &str)]) -> Vec<pb::ConversationScore> {
    score_texts_with(server, texts, false).await
}

/// Scores free texts, with evidence for every facet when `all_evidence`.
async fn score_texts_with(
    server: &Server,
    texts: &[(&str, &str)],
    all_evidence: bool,
) -> Vec<pb::ConversationScore> {
    server
        .insight()
        .score_conversations(pb::ScoreConversationsRequest {
            texts: texts
                .iter()
                .map(|(title, body)| pb::TextInput {
                    title: (*title).into(),
                    body: (*body).into(),
                })
                .collect(),
            all_evidence,
            ..Default::default()
        })
        .await
        .expect("texts can be scored")
        .into_inner()
        .scores
}

fn best_facet(score: &pb::ConversationScore) -> &pb::FacetScore {
    score
        .facets
        .iter()
        .max_by(|a, b| a.relevance.total_cmp(&b.relevance))
        .expect("a score has facets")
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

/// On topic for the `opentelemetry` facet of the example strategy.
const OPENTELEMETRY_TITLE: &str = "Adding OpenTelemetry instrumentation to a Python service";
const OPENTELEMETRY_BODY: &str = "We want to instrument our Python and Go services with OpenTelemetry. \
    How do we add custom spans, and how does context propagation work between services? \
    Should every service export to a collector, and which semantic conventions should we follow?";
/// Off topic for every facet.
const RECIPE_TITLE: &str = "Grandmother's apple pie";
const RECIPE_BODY: &str = "Peel and slice six apples, toss them with sugar, cinnamon and a little lemon juice. \
    Roll out the pastry, fill the dish, cover it and bake for forty minutes until golden.";

// ---------------------------------------------------------------------------------------------
// Health and reflection

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_serving_and_reflection_lists_the_services() {
    let (_dir, server) = fresh().await;

    let health = server.cli_json(&["health"]);
    assert_eq!(health["serving"], true, "{health}");
    assert_eq!(
        health["services"].as_array().map(Vec::len),
        Some(6),
        "{health}"
    );
    // The tests' servers run without the model: lexical-only, and said so with the fix.
    assert_eq!(health["engine"], "lexical-only", "{health}");
    // A server that owns its database follows no change log: nothing to lag behind.
    if std::env::var("TRELLIS_TEST_STORAGE").as_deref() != Ok("postgres") {
        assert_eq!(health["follows_change_log"], false, "{health}");
        for workspace in health["workspaces"].as_array().into_iter().flatten() {
            assert_eq!(workspace["replication_lag"], 0, "{health}");
            assert_eq!(workspace["change_log_head"], 0, "{health}");
        }
    }
    assert!(
        health["semantic"]["lexical_only_reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("fetch-model")),
        "{health}"
    );

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a reflection response")
        .expect("one response per request");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!(
            "expected a service list, got {:?}",
            response.message_response
        );
    };
    let names: Vec<&str> = list
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    for expected in [
        "trellis.v1.StrategyService",
        "trellis.v1.IngestService",
        "trellis.v1.InsightService",
        "trellis.v1.PeopleService",
        "trellis.v1.ServerService",
        "trellis.v1.SourceService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&expected),
            "reflection lists {expected}: {names:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Strategy

#[tokio::test(flavor = "multi_thread")]
async fn put_strategy_names_every_problem_as_a_field_violation() {
    let (_dir, server) = fresh().await;
    let facet = |id: &str, kind: pb::FacetKind, weight: Option<f64>| pb::Facet {
        id: id.into(),
        kind: kind.into(),
        name: format!("Facet {id}"),
        description: "Plain words, as a strategist would write them.".into(),
        weight,
        ..Default::default()
    };
    let bad = pb::Strategy {
        name: String::new(),
        mission: "A mission".into(),
        facets: vec![
            facet("tracing", pb::FacetKind::Advantage, None),
            facet("tracing", pb::FacetKind::Job, None),
            facet("alerts", pb::FacetKind::Message, Some(20.0)),
            facet("logs", pb::FacetKind::Unspecified, None),
        ],
        exclusions: Vec::new(),
    };
    let status = server
        .strategies()
        .put_strategy(pb::PutStrategyRequest {
            workspace: String::new(),
            strategy: Some(bad),
        })
        .await
        .expect_err("a bad strategy is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = violations(&status);
    assert_eq!(
        violations.len(),
        4,
        "one violation per problem: {violations:#?}"
    );
    let rendered: String = violations
        .iter()
        .map(|(field, description)| format!("{field}: {description}\n"))
        .collect();
    insta::assert_snapshot!("put_strategy_violations", rendered);

    // Nothing was stored.
    let status = server
        .strategies()
        .get_strategy(pb::GetStrategyRequest::default())
        .await
        .expect_err("no strategy was stored");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn strategy_versions_are_listed_newest_first_and_each_can_be_read() {
    let (_dir, server) = fresh().await;
    let first = put_example_strategy(&server).await;
    assert_eq!(first.version, 1);
    let mut second_strategy = example_strategy_pb();
    second_strategy.name = "Lumen, second draft".into();
    second_strategy.facets.truncate(2);
    let second = server
        .strategies()
        .put_strategy(pb::PutStrategyRequest {
            workspace: String::new(),
            strategy: Some(second_strategy.clone()),
        })
        .await
        .expect("the second version is accepted")
        .into_inner()
        .strategy_version
        .expect("a stored version");
    assert_eq!(second.version, 2);

    let listed = server
        .strategies()
        .list_strategy_versions(pb::ListStrategyVersionsRequest::default())
        .await
        .expect("versions are listed")
        .into_inner();
    let versions: Vec<u32> = listed
        .strategy_versions
        .iter()
        .map(|version| version.version)
        .collect();
    assert_eq!(versions, [2, 1]);
    assert!(listed.next_page_token.is_empty());

    let get = |version: u32| {
        let mut client = server.strategies();
        async move {
            client
                .get_strategy(pb::GetStrategyRequest {
                    workspace: String::new(),
                    version,
                })
                .await
                .expect("the version exists")
                .into_inner()
                .strategy_version
                .expect("a version")
        }
    };
    let one = get(1).await;
    assert_eq!(one.strategy, Some(example_strategy_pb()));
    let latest = get(0).await;
    assert_eq!(latest.version, 2);
    assert_eq!(latest.strategy, Some(second_strategy));

    let status = server
        .strategies()
        .get_strategy(pb::GetStrategyRequest {
            workspace: String::new(),
            version: 3,
        })
        .await
        .expect_err("version 3 does not exist");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Ingest

#[tokio::test(flavor = "multi_thread")]
async fn ingest_reports_bad_records_by_position_and_field_and_stores_the_rest() {
    let (_dir, server) = fresh().await;
    let huge = "trace ".repeat((2 << 20) / 6 + 1);
    let response = ingest(
        &server,
        vec![
            conversation(
                "forum",
                "k1",
                "Kafka spans",
                "The trace breaks at the consumer.",
            ),
            post("forum", "k1-p1", "", "A post that belongs nowhere."),
            post(
                "forum",
                "k1-p2",
                "k1",
                "Propagate the context in message headers.",
            ),
            post("forum", "k1-p3", "k1", &huge),
            conversation(
                "forum",
                "k2",
                "Dashboards in git",
                "Should dashboards be reviewed like code?",
            ),
        ],
    )
    .await;
    assert_eq!(response.received, 5);
    assert_eq!(response.inserted, 3, "{response:?}");
    let refused: Vec<(u64, &str)> = response
        .errors
        .iter()
        .map(|error| (error.position, error.field.as_str()))
        .collect();
    assert_eq!(refused, [(1, "conversation"), (3, "text")], "{response:?}");
    assert!(response.errors.iter().all(|error| !error.reason.is_empty()));

    let stored = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "k1"),
        })
        .await
        .expect("k1 is stored")
        .into_inner();
    assert_eq!(
        stored.conversation.as_ref().map(|c| c.title.as_str()),
        Some("Kafka spans")
    );
    let posts: Vec<&str> = stored
        .posts
        .iter()
        .filter_map(|post| post.r#ref.as_ref().map(|r| r.external_id.as_str()))
        .collect();
    assert_eq!(posts, ["k1-p2"], "only the good post is stored");
    server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "k2"),
        })
        .await
        .expect("k2, after the bad records, is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_is_idempotent_and_reports_updates() {
    let (_dir, server) = fresh().await;
    let first = ingest_example(&server);
    let received = first["received"].as_u64().expect("a count");
    assert!(received > 0);
    assert_eq!(first["inserted"].as_u64(), Some(received), "{first}");

    let again = ingest_example(&server);
    assert_eq!(again["inserted"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
    assert_eq!(again["unchanged"].as_u64(), Some(received), "{again}");

    // Every example conversation can be read back.
    for (source, id) in conversation_ids_of_example() {
        server
            .ingest()
            .get_conversation(pb::GetConversationRequest {
                workspace: String::new(),
                r#ref: reference(&source, &id),
            })
            .await
            .unwrap_or_else(|status| panic!("{source}:{id} is stored: {status:?}"));
    }

    // The same records over gRPC: unchanged; one changed: updated.
    let records = vec![
        conversation(
            "forum",
            "g1",
            "Sampling rates",
            "How much should we sample?",
        ),
        post(
            "forum",
            "g1-p1",
            "g1",
            "Sample everything with a low overhead agent.",
        ),
    ];
    let response = ingest(&server, records.clone()).await;
    assert_eq!(
        (response.inserted, response.updated, response.unchanged),
        (2, 0, 0),
        "{response:?}"
    );
    let response = ingest(&server, records).await;
    assert_eq!(
        (response.inserted, response.updated, response.unchanged),
        (0, 0, 2),
        "{response:?}"
    );
    let response = ingest(
        &server,
        vec![
            conversation(
                "forum",
                "g1",
                "Sampling rates",
                "How much should we sample? Tail sampling?",
            ),
            post(
                "forum",
                "g1-p1",
                "g1",
                "Sample everything with a low overhead agent.",
            ),
        ],
    )
    .await;
    assert_eq!(
        (response.inserted, response.updated, response.unchanged),
        (0, 1, 1),
        "{response:?}"
    );
    let stored = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "g1"),
        })
        .await
        .expect("g1 is stored")
        .into_inner();
    assert!(
        stored
            .conversation
            .expect("a conversation")
            .body
            .ends_with("Tail sampling?")
    );
}

// ---------------------------------------------------------------------------------------------
// Scoring

#[tokio::test(flavor = "multi_thread")]
async fn scoring_before_any_strategy_is_a_failed_precondition() {
    let (_dir, server) = fresh().await;
    let status = server
        .insight()
        .score_conversations(pb::ScoreConversationsRequest {
            texts: vec![pb::TextInput {
                title: OPENTELEMETRY_TITLE.into(),
                body: OPENTELEMETRY_BODY.into(),
            }],
            ..Default::default()
        })
        .await
        .expect_err("there is no strategy to score against");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("strategy"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_on_topic_text_scores_its_facet_highest_with_evidence() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    let version = put_example_strategy(&server).await.version;
    let scores = score_texts(
        &server,
        &[
            (OPENTELEMETRY_TITLE, OPENTELEMETRY_BODY),
            (RECIPE_TITLE, RECIPE_BODY),
        ],
    )
    .await;
    assert_eq!(scores.len(), 2);
    let (on, off) = (&scores[0], &scores[1]);
    assert!(on.conversation.is_none(), "a raw text has no ref");
    assert_eq!(on.strategy_version, version);
    assert_eq!(
        on.facets.len(),
        example_strategy().facets.len(),
        "one score per facet"
    );

    let best = best_facet(on);
    assert_eq!(best.facet_id, "opentelemetry", "{on:#?}");
    assert_ne!(on.class, pb::ConnectionClass::OffStrategy as i32, "{on:#?}");
    assert_ne!(on.class, pb::ConnectionClass::Unspecified as i32, "{on:#?}");
    for score in [on, off] {
        assert!(
            (0.0..1.0).contains(&score.relevance),
            "relevance in [0, 1): {score:#?}"
        );
        for facet in &score.facets {
            assert!(
                (0.0..1.0).contains(&facet.relevance),
                "facet relevance in [0, 1): {facet:#?}"
            );
        }
    }
    let evidence = best
        .evidence
        .as_ref()
        .expect("the best facet carries evidence");
    assert_eq!(evidence.facet_id, "opentelemetry");
    assert!(!evidence.terms.is_empty(), "matched terms: {evidence:#?}");
    let text = format!("{OPENTELEMETRY_TITLE}\n{OPENTELEMETRY_BODY}").to_lowercase();
    assert!(
        evidence
            .terms
            .iter()
            .any(|term| text.contains(&term.term.to_lowercase())),
        "matched terms are words of the text: {evidence:#?}"
    );
    assert!(!evidence.sentence.is_empty(), "{evidence:#?}");
    assert!(
        OPENTELEMETRY_BODY.contains(&evidence.sentence)
            || OPENTELEMETRY_TITLE.contains(&evidence.sentence),
        "the sentence is taken from the text: {:?}",
        evidence.sentence
    );
    assert!(
        ["title", "body"].contains(&evidence.location.as_str()),
        "{evidence:#?}"
    );

    assert!(
        off.class == pb::ConnectionClass::OffStrategy as i32 || off.relevance < on.relevance,
        "a recipe is off-strategy or at least less relevant: {off:#?}"
    );
    assert!(
        off.relevance < on.relevance,
        "on {} vs off {}",
        on.relevance,
        off.relevance
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_conversations_are_scored_by_ref_and_unknown_refs_are_not_found() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    put_example_strategy(&server).await;
    let response = server
        .insight()
        .score_conversations(pb::ScoreConversationsRequest {
            conversations: vec![reference("forum", "t2").expect("a ref")],
            texts: vec![pb::TextInput {
                title: RECIPE_TITLE.into(),
                body: RECIPE_BODY.into(),
            }],
            ..Default::default()
        })
        .await
        .expect("a stored conversation can be scored")
        .into_inner();
    assert_eq!(
        response.scores.len(),
        2,
        "stored conversations first, then texts"
    );
    let stored = &response.scores[0];
    assert_eq!(stored.conversation, reference("forum", "t2"));
    assert!(response.scores[1].conversation.is_none());
    assert_eq!(best_facet(stored).facet_id, "opentelemetry", "{stored:#?}");
    let evidence = best_facet(stored).evidence.as_ref().expect("evidence");
    assert!(
        !evidence.sentence.is_empty() && !evidence.terms.is_empty(),
        "{evidence:#?}"
    );

    let status = server
        .insight()
        .score_conversations(pb::ScoreConversationsRequest {
            conversations: vec![reference("forum", "no-such-thread").expect("a ref")],
            ..Default::default()
        })
        .await
        .expect_err("an unknown conversation");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("no-such-thread"), "{status:?}");

    let status = server
        .insight()
        .score_conversations(pb::ScoreConversationsRequest::default())
        .await
        .expect_err("nothing to score");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Strategic conversations and audit

#[tokio::test(flavor = "multi_thread")]
async fn strategic_conversations_come_with_reasons_by_priority() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    let version = put_example_strategy(&server).await.version;
    let response = server
        .insight()
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("strategic conversations are listed")
        .into_inner();
    assert_eq!(response.strategy_version, version);
    let items = &response.conversations;
    assert!(
        items.len() >= 3,
        "the example community has several strategic threads: {items:#?}"
    );
    for pair in items.windows(2) {
        assert!(
            pair[0].priority >= pair[1].priority,
            "priority descending: {items:#?}"
        );
    }
    for item in items {
        assert!(!item.reasons.is_empty(), "{item:#?}");
        assert!(item.conversation.is_some(), "{item:#?}");
        assert!(
            item.relevance >= 0.2,
            "the default minimum relevance holds: {item:#?}"
        );
        assert_ne!(
            item.class,
            pb::ConnectionClass::OffStrategy as i32,
            "{item:#?}"
        );
    }
    let listed: Vec<String> = items
        .iter()
        .filter_map(|item| {
            item.conversation
                .as_ref()
                .map(|r| format!("{}:{}", r.source, r.external_id))
        })
        .collect();
    assert!(
        !listed.contains(&"forum:t4".to_owned()),
        "the sourdough thread is not strategic: {listed:?}"
    );

    let status = server
        .insight()
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            facet_id: "no-such-facet".into(),
            ..Default::default()
        })
        .await
        .expect_err("an unknown facet");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_finds_the_facets_a_mission_leaves_out() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    put_example_strategy(&server).await;
    let audit = server
        .insight()
        .audit_community_design(pb::AuditCommunityDesignRequest {
            workspace: String::new(),
            mission: "A community where engineers instrument their services with OpenTelemetry: \
                      instrumentation libraries, context propagation, custom spans and the collector."
                .into(),
        })
        .await
        .expect("the mission is audited")
        .into_inner();
    assert_eq!(audit.facets.len(), example_strategy().facets.len());
    let served: Vec<&str> = audit
        .facets
        .iter()
        .filter(|facet| facet.served)
        .map(|facet| facet.facet_id.as_str())
        .collect();
    assert_eq!(served, ["opentelemetry"], "{audit:#?}");
    for facet in audit.facets.iter().filter(|facet| !facet.served) {
        assert!(
            !facet.suggestion.is_empty(),
            "a left-out facet comes with a suggestion: {facet:#?}"
        );
    }
    let opentelemetry = audit
        .facets
        .iter()
        .find(|facet| facet.served)
        .expect("served");
    assert!(
        !opentelemetry.matched_terms.is_empty(),
        "{opentelemetry:#?}"
    );
    assert!(
        (0.0..=1.0).contains(&audit.alignment) && audit.alignment < 0.5,
        "{audit:#?}"
    );
    assert!(!audit.findings.is_empty());

    let status = server
        .insight()
        .audit_community_design(pb::AuditCommunityDesignRequest {
            workspace: String::new(),
            mission: "   ".into(),
        })
        .await
        .expect_err("an empty mission");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = violations(&status)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["mission"], "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// Restart

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_on_the_same_database_keeps_strategy_conversations_and_scores() {
    let dir = test_dir().expect("a temporary folder");
    let db = dir.path().join("t.db");

    async fn snapshot(
        server: &Server,
    ) -> (
        pb::StrategyVersion,
        Vec<pb::GetConversationResponse>,
        Vec<pb::ConversationScore>,
    ) {
        let strategy = server
            .strategies()
            .get_strategy(pb::GetStrategyRequest::default())
            .await
            .expect("a strategy")
            .into_inner()
            .strategy_version
            .expect("a version");
        let mut conversations = Vec::new();
        let mut refs = Vec::new();
        for (source, id) in conversation_ids_of_example() {
            conversations.push(
                server
                    .ingest()
                    .get_conversation(pb::GetConversationRequest {
                        workspace: String::new(),
                        r#ref: reference(&source, &id),
                    })
                    .await
                    .expect("stored")
                    .into_inner(),
            );
            refs.extend(reference(&source, &id));
        }
        let scores = server
            .insight()
            .score_conversations(pb::ScoreConversationsRequest {
                conversations: refs,
                texts: vec![pb::TextInput {
                    title: OPENTELEMETRY_TITLE.into(),
                    body: OPENTELEMETRY_BODY.into(),
                }],
                ..Default::default()
            })
            .await
            .expect("scores")
            .into_inner()
            .scores;
        (strategy, conversations, scores)
    }

    let server = Server::start(&db).await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let before = snapshot(&server).await;
    let status = server.terminate().await;
    assert!(status.success(), "a clean exit on SIGTERM: {status}");

    let server = Server::start(&db).await;
    let after = snapshot(&server).await;
    assert_eq!(after.0, before.0, "the strategy survives a restart");
    assert_eq!(after.1, before.1, "the conversations survive a restart");
    assert_eq!(after.2, before.2, "scores are identical after a restart");
}

// ---------------------------------------------------------------------------------------------
// The command line

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_speaks_json() {
    let (_dir, server) = fresh().await;
    let strategy_path = example("strategy.toml");
    let put = server.cli_json(&["strategy", "put", strategy_path.to_str().expect("UTF-8")]);
    assert_eq!(put["version"], 1, "{put}");
    assert_eq!(
        put["facets"].as_array().map(Vec::len),
        Some(example_strategy().facets.len())
    );

    let versions = server.cli_json(&["strategy", "versions"]);
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");

    ingest_example(&server);

    let text = format!("{OPENTELEMETRY_TITLE}. {OPENTELEMETRY_BODY}");
    let scored = server.cli_json(&["score", "--text", &text]);
    let score = &scored[0];
    assert!(
        score["relevance"]
            .as_f64()
            .is_some_and(|r| (0.0..1.0).contains(&r)),
        "{scored}"
    );
    assert_ne!(score["class"], "off-strategy", "{scored}");
    let best = score["facets"]
        .as_array()
        .expect("facets")
        .iter()
        .max_by(|a, b| {
            a["relevance"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["relevance"].as_f64().unwrap_or(0.0))
        })
        .expect("a facet");
    assert_eq!(best["facet_id"], "opentelemetry", "{scored}");

    let stored = server.cli_json(&["score", "--conversation", "forum:t2"]);
    assert_eq!(stored[0]["conversation"], "forum:t2", "{stored}");

    let top = server.cli_json(&["conversations", "top", "--limit", "3"]);
    let conversations = top["conversations"].as_array().expect("conversations");
    assert!(
        !conversations.is_empty() && conversations.len() <= 3,
        "{top}"
    );
    assert!(
        conversations
            .iter()
            .all(|item| !item["reasons"].as_array().is_none_or(Vec::is_empty)),
        "{top}"
    );

    let audit = server.cli_json(&[
        "audit",
        "--mission",
        "Engineers sharing dashboards, alerts and SLOs kept in version control.",
    ]);
    assert!(audit["alignment"].as_f64().is_some(), "{audit}");
    assert_eq!(
        audit["facets"].as_array().map(Vec::len),
        Some(example_strategy().facets.len()),
        "{audit}"
    );

    let missing = server.cli(&["score", "--conversation", "forum:nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_refuses_a_bad_strategy_file_and_names_the_field() {
    let (dir, server) = fresh().await;
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
name = "Lumen"
[[facets]]
id = "tracing"
kind = "advantage"
name = "Tracing"
description = "Low overhead tracing."
weight = 20.0
"#,
    )
    .expect("the file is written");
    let output = server.cli(&["strategy", "put", path.to_str().expect("UTF-8")]);
    assert!(!output.status.success(), "a bad file fails: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("facets[0].weight"),
        "the field is named: {stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let versions = server.cli_json(&["strategy", "versions"]);
    assert_eq!(versions, Value::Array(Vec::new()), "nothing was stored");
}

// ---------------------------------------------------------------------------------------------
// Evaluation on the development dump

// ---------------------------------------------------------------------------------------------
// People

fn lookup(key: pb::person_lookup::Key) -> Option<pb::PersonLookup> {
    Some(pb::PersonLookup { key: Some(key) })
}

fn person_ref(profile: &pb::PersonProfile) -> String {
    let reference = profile
        .person
        .as_ref()
        .and_then(|person| person.r#ref.as_ref())
        .expect("a profile names its person");
    format!("{}:{}", reference.source, reference.external_id)
}

/// The standing index fills in the background once records stop arriving, health reports
/// it, and a suggestion read from it is the one judging on request gives.
#[tokio::test(flavor = "multi_thread")]
async fn the_standing_index_fills_in_the_background_and_health_reports_it() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let health = loop {
        let health = server.cli_json(&["health"]);
        let workspace = &health["workspaces"][0];
        if workspace["standing_pending"] == 0 && workspace["standing_judged"].as_u64() > Some(0) {
            break health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the standing index did not fill within 60 s: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let workspace = &health["workspaces"][0];
    assert!(
        workspace["standing_judged"].as_u64() <= workspace["conversations"].as_u64(),
        "only open conversations are judged: {health}"
    );
    assert!(workspace["standing_bytes"].as_u64() > Some(0), "{health}");
    assert!(
        workspace["insights_ready"].is_u64() && workspace["insights_pending"].is_u64(),
        "health says where the insight index is: {health}"
    );
    assert!(
        workspace["standing_stale"].as_u64() <= workspace["standing_judged"].as_u64(),
        "judgments made before the latest changes are among those made: {health}"
    );
    let text = trellis()
        .args(["health", "--addr", &server.addr])
        .output()
        .expect("trellis health runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("open conversations judged, 0 waiting"),
        "{text}"
    );

    // What the index answers is what judging on request answers: a server that judges on
    // request after every change (max age 0, no background thread) over the same records.
    let strict_dir = tempfile::tempdir().expect("a temporary folder");
    let strict = Server::start_with(
        &strict_dir.path().join("t.db"),
        &[
            ("TRELLIS__STANDING__BACKGROUND", "false"),
            ("TRELLIS__STANDING__MAX_AGE_SECONDS", "0"),
        ],
    )
    .await;
    put_example_strategy(&strict).await;
    ingest_example(&strict);
    let strict_health = strict.cli_json(&["health"]);
    assert_eq!(
        strict_health["workspaces"][0]["standing_judged"], 0,
        "nothing is judged ahead without the background thread: {strict_health}"
    );
    let from_index = server.cli_json(&["suggest", "--person", "forum:u-ana"]);
    let on_request = strict.cli_json(&["suggest", "--person", "forum:u-ana"]);
    assert_eq!(from_index["join"], on_request["join"]);
    assert!(
        from_index["join"]
            .as_array()
            .is_some_and(|join| !join.is_empty()),
        "{from_index}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_lookups_find_people_with_their_convergence_and_suggestions() {
    use pb::person_lookup::Key;
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let mut people = server.people();

    let by_handle = people
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(Key::Handle("@Ana".into())),
            suggestion_limit: 3,
        })
        .await
        .expect("a match by handle")
        .into_inner();
    assert!(by_handle.found);
    let profile = by_handle.profile.expect("a profile");
    assert_eq!(person_ref(&profile), "forum:u-ana");
    assert_eq!(profile.convergence.len(), example_strategy().facets.len());
    let best = profile
        .convergence
        .iter()
        .max_by(|a, b| a.convergence.total_cmp(&b.convergence))
        .expect("convergence per facet");
    assert!(
        ["debug-incidents", "low-overhead-tracing"].contains(&best.facet_id.as_str()),
        "an SRE who writes about traces of slow requests converges on incidents or tracing: {profile:?}"
    );
    assert!(!profile.top_interests.is_empty());
    assert!(profile.posts >= 1);
    for discussion in &by_handle.suggested_discussions {
        let id = &discussion
            .conversation
            .as_ref()
            .expect("a conversation")
            .external_id;
        assert_ne!(id, "t1", "Ana already replied in t1");
        assert!(!discussion.reasons.is_empty());
    }

    let by_crm = people
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(Key::CrmId("crm-1002".into())),
            suggestion_limit: 0,
        })
        .await
        .expect("a match by CRM id")
        .into_inner();
    assert_eq!(
        person_ref(&by_crm.profile.expect("a profile")),
        "forum:u-chen"
    );

    let nobody = people
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(Key::Handle("nobody-here".into())),
            suggestion_limit: 0,
        })
        .await
        .expect("an unknown person is an answer, not an error")
        .into_inner();
    assert!(!nobody.found && nobody.profile.is_none());

    let bad = people
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(Key::EmailSha256("not-a-hash".into())),
            suggestion_limit: 0,
        })
        .await
        .expect_err("a malformed hash is refused");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violations(&bad)[0].0, "lookup.email_sha256");

    // The bulk form answers every contact in order, a bad one with its own error.
    let contacts = vec![
        pb::MatchPeopleRequest {
            workspace: String::new(),
            contact_id: "c-1".into(),
            lookup: lookup(Key::Handle("ben".into())),
        },
        pb::MatchPeopleRequest {
            workspace: String::new(),
            contact_id: "c-2".into(),
            lookup: None,
        },
        pb::MatchPeopleRequest {
            workspace: String::new(),
            contact_id: "c-3".into(),
            lookup: lookup(Key::Handle("nobody-here".into())),
        },
    ];
    let mut answers = people
        .match_people(tokio_stream::iter(contacts))
        .await
        .expect("the bulk match starts")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(answer) = answers.message().await.expect("the stream ends cleanly") {
        seen.push((
            answer.contact_id.clone(),
            answer.found,
            answer.error.clone(),
        ));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], ("c-1".to_owned(), true, String::new()));
    assert!(seen[1].2.contains("lookup"), "{seen:?}");
    assert_eq!(seen[2], ("c-3".to_owned(), false, String::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn participants_and_discussions_come_with_reasons_and_leave_out_who_is_already_in() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let mut insight = server.insight();

    let participants = insight
        .suggest_participants(pb::SuggestParticipantsRequest {
            workspace: String::new(),
            conversation: reference("forum", "t1"),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("participants for t1")
        .into_inner()
        .participants;
    assert!(!participants.is_empty());
    let refs: Vec<String> = participants
        .iter()
        .map(|participant| {
            let reference = participant
                .person
                .as_ref()
                .and_then(|p| p.r#ref.as_ref())
                .expect("a ref");
            format!("{}:{}", reference.source, reference.external_id)
        })
        .collect();
    for already_in in ["forum:u-ana", "forum:u-ben"] {
        assert!(
            !refs.contains(&already_in.to_owned()),
            "{already_in} is already in t1: {refs:?}"
        );
    }
    let first_outsider = participants
        .iter()
        .position(|p| !p.member)
        .unwrap_or(participants.len());
    assert!(
        participants[first_outsider..].iter().all(|p| !p.member),
        "members first, then people outside the community: {refs:?}"
    );
    assert!(participants.iter().all(|p| !p.reasons.is_empty()));

    // A draft that is not stored: who knows about dashboards as code?
    let draft = insight
        .suggest_participants(pb::SuggestParticipantsRequest {
            workspace: String::new(),
            text: Some(pb::TextInput {
                title: "Reviewing Grafana dashboards in pull requests".into(),
                body: "How do you keep dashboards and alerts in version control?".into(),
            }),
            limit: 3,
            ..Default::default()
        })
        .await
        .expect("participants for a draft")
        .into_inner()
        .participants;
    let top = draft[0]
        .person
        .as_ref()
        .and_then(|p| p.r#ref.as_ref())
        .expect("a ref");
    assert!(
        ["u-chen", "u-dora"].contains(&top.external_id.as_str()),
        "the people who wrote about dashboards as code come first: {draft:?}"
    );

    let discussions = insight
        .suggest_discussions(pb::SuggestDiscussionsRequest {
            workspace: String::new(),
            person: reference("forum", "u-ana"),
            limit: 5,
            as_of: None,
        })
        .await
        .expect("discussions for Ana")
        .into_inner();
    for discussion in &discussions.join {
        let id = &discussion
            .conversation
            .as_ref()
            .expect("a conversation")
            .external_id;
        assert_ne!(id, "t1", "Ana is already in t1");
        assert!(!discussion.reasons.is_empty());
    }
    assert!(
        !discussions.join.is_empty(),
        "Ana has open conversations to join"
    );

    let unknown = insight
        .suggest_discussions(pb::SuggestDiscussionsRequest {
            workspace: String::new(),
            person: reference("forum", "nobody"),
            limit: 5,
            as_of: None,
        })
        .await
        .expect_err("an unknown person");
    assert_eq!(unknown.code(), Code::NotFound);

    let neither = insight
        .suggest_participants(pb::SuggestParticipantsRequest::default())
        .await
        .expect_err("no conversation and no text");
    assert_eq!(neither.code(), Code::InvalidArgument);
    assert_eq!(violations(&neither)[0].0, "conversation");

    // The same answers through the command line.
    let cli = server.cli_json(&["participants", "--conversation", "forum:t1", "--limit", "3"]);
    assert!(
        !cli["participants"].as_array().is_none_or(Vec::is_empty),
        "{cli}"
    );
    let cli = server.cli_json(&["suggest", "--person", "forum:u-ana"]);
    assert!(cli["join"].is_array(), "{cli}");
    let cli = server.cli_json(&["people", "match", "--crm-id", "crm-1001"]);
    assert_eq!(cli["profile"]["person"], "forum:u-ana", "{cli}");
    let cli = server.cli_json(&["people", "list", "--members"]);
    assert!(
        cli["people"]
            .as_array()
            .is_some_and(|people| people.iter().all(|p| p["member"] == true)),
        "{cli}"
    );
}

async fn profile_of(
    server: &Server,
    source: &str,
    id: &str,
) -> Result<pb::PersonProfile, tonic::Status> {
    server
        .people()
        .get_person(pb::GetPersonRequest {
            workspace: String::new(),
            r#ref: reference(source, id),
        })
        .await
        .map(|response| response.into_inner().profile.expect("a profile"))
}

#[tokio::test(flavor = "multi_thread")]
async fn merges_join_records_undo_cleanly_and_forgetting_lasts_through_restarts_and_resyncs() {
    let dir = test_dir().expect("a temporary folder");
    let db = dir.path().join("t.db");
    let server = Server::start(&db).await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let mut people = server.people();

    // Chen writes in the forum, the chat and on the blog: three records, one person.
    let alone = profile_of(&server, "forum", "u-chen").await.expect("Chen");
    let merge = people
        .merge_people(pb::MergePeopleRequest {
            workspace: String::new(),
            target: reference("forum", "u-chen"),
            others: vec![
                reference("chat", "u-chen").expect("a ref"),
                reference("blog", "u-chen").expect("a ref"),
            ],
            reason: "Chen confirmed these accounts are theirs".into(),
        })
        .await
        .expect("the merge is made")
        .into_inner();
    assert!(!merge.merge_id.is_empty());
    assert!(
        merge
            .reasons
            .iter()
            .any(|reason| reason.contains("Chen confirmed"))
    );
    assert!((0.0..=1.0).contains(&merge.confidence));
    let merged = profile_of(&server, "chat", "u-chen")
        .await
        .expect("found by a merged record");
    assert_eq!(person_ref(&merged), "forum:u-chen");
    assert_eq!(merged.merged.len(), 2, "{merged:?}");
    assert!(
        merged.posts > alone.posts,
        "the merged person has all their posts"
    );

    let unknown = people
        .merge_people(pb::MergePeopleRequest {
            workspace: String::new(),
            target: reference("forum", "u-chen"),
            others: vec![reference("forum", "nobody").expect("a ref")],
            reason: "a typo".into(),
        })
        .await
        .expect_err("an unknown record");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(violations(&unknown)[0].0, "others[0]");
    // The same record twice; a reason that shows nothing.
    for (times, reason, field) in [
        (2, "the same twice", "others[1]"),
        (1, "\u{200B}\u{2060} ", "reason"),
    ] {
        let others = (0..times)
            .map(|_| reference("forum", "u-ana").expect("a ref"))
            .collect();
        let refused = people
            .merge_people(pb::MergePeopleRequest {
                workspace: String::new(),
                target: reference("forum", "u-chen"),
                others,
                reason: reason.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violations(&refused)[0].0, field, "{refused:?}");
    }

    people
        .unmerge_people(pb::UnmergePeopleRequest {
            workspace: String::new(),
            merge_id: merge.merge_id.clone(),
        })
        .await
        .expect("the merge is undone");
    let again = profile_of(&server, "forum", "u-chen").await.expect("Chen");
    assert_eq!(
        again.posts, alone.posts,
        "undoing gives back the person as they were"
    );
    assert!(again.merged.is_empty());
    let twice = people
        .unmerge_people(pb::UnmergePeopleRequest {
            workspace: String::new(),
            merge_id: merge.merge_id.clone(),
        })
        .await
        .expect_err("a merge is undone once");
    assert_eq!(twice.code(), Code::NotFound);

    // The audit trail keeps the merge, its reason and its undoing.
    let trail = people
        .list_merges(pb::ListMergesRequest {
            person: reference("chat", "u-chen"),
            ..Default::default()
        })
        .await
        .expect("the merges of Chen's chat record")
        .into_inner()
        .merges;
    assert_eq!(trail.len(), 1, "{trail:?}");
    let record = &trail[0];
    assert_eq!(record.merge_id, merge.merge_id);
    assert_eq!(
        record.target.as_ref().map(|r| r.external_id.as_str()),
        Some("u-chen")
    );
    assert_eq!(record.others.len(), 2);
    assert!(!record.automatic);
    assert!(
        record
            .reasons
            .iter()
            .any(|reason| reason.contains("Chen confirmed"))
    );
    assert!(record.created_at.is_some() && record.undone_at.is_some());
    let active = people
        .list_merges(pb::ListMergesRequest {
            active_only: true,
            ..Default::default()
        })
        .await
        .expect("the merges that hold")
        .into_inner()
        .merges;
    assert!(active.iter().all(|merge| merge.merge_id != record.merge_id));
    let json = server.cli_json(&["people", "merges", "--person", "chat:u-chen"]);
    assert_eq!(json["merges"][0]["merge_id"], record.merge_id.as_str());
    assert!(!json["merges"][0]["undone_at_unix"].is_null());
    // The trail pages: one merge a page, following the tokens, is the whole trail in order.
    let again = people
        .merge_people(pb::MergePeopleRequest {
            workspace: String::new(),
            target: reference("forum", "u-chen"),
            others: vec![reference("chat", "u-chen").expect("a ref")],
            reason: "Chen confirmed the chat account again".into(),
        })
        .await
        .expect("the merge is made again")
        .into_inner();
    people
        .unmerge_people(pb::UnmergePeopleRequest {
            workspace: String::new(),
            merge_id: again.merge_id.clone(),
        })
        .await
        .expect("and undone");
    let whole = people
        .list_merges(pb::ListMergesRequest::default())
        .await
        .expect("the whole trail")
        .into_inner();
    assert!(whole.merges.len() >= 2, "{whole:?}");
    assert!(whole.next_page_token.is_empty());
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = people
            .list_merges(pb::ListMergesRequest {
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .expect("a page of the trail")
            .into_inner();
        assert!(page.merges.len() <= 1);
        paged.extend(page.merges);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged, whole.merges);
    let refused = people
        .list_merges(pb::ListMergesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .expect_err("a token the server did not give");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused)[0].0, "page_token");

    // Forgetting Ana removes her record and the text she wrote...
    let forgotten = people
        .forget_person(pb::ForgetPersonRequest {
            workspace: String::new(),
            r#ref: reference("forum", "u-ana"),
        })
        .await
        .expect("Ana is forgotten")
        .into_inner();
    assert!(
        forgotten.posts_removed >= 1 && forgotten.identities_removed >= 1,
        "{forgotten:?}"
    );
    let thread = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "t1"),
        })
        .await
        .expect("t1 stays, with the others' posts")
        .into_inner();
    let ana_wrote = "Distributed tracing is what you want here";
    assert!(
        thread
            .posts
            .iter()
            .all(|post| !post.text.contains(ana_wrote) && post.author != "u-ana")
    );
    assert_eq!(
        profile_of(&server, "forum", "u-ana")
            .await
            .expect_err("gone")
            .code(),
        Code::NotFound
    );

    // ...and she stays gone when a sync sends her again, and after a restart.
    ingest_example(&server);
    assert_eq!(
        profile_of(&server, "forum", "u-ana")
            .await
            .expect_err("still gone")
            .code(),
        Code::NotFound
    );
    let status = server.terminate().await;
    assert!(status.success());
    let server = Server::start(&db).await;
    assert_eq!(
        profile_of(&server, "forum", "u-ana")
            .await
            .expect_err("gone for good")
            .code(),
        Code::NotFound
    );
    let lookup_ana = server
        .people()
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(pb::person_lookup::Key::CrmId("crm-1001".into())),
            suggestion_limit: 0,
        })
        .await
        .expect("a lookup")
        .into_inner();
    assert!(!lookup_ana.found, "her CRM id leads nowhere");
    let thread = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "t1"),
        })
        .await
        .expect("t1")
        .into_inner();
    assert!(
        thread
            .posts
            .iter()
            .all(|post| !post.text.contains(ana_wrote))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_resolution_merges_records_that_share_an_email_and_says_why() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    let hash = "a".repeat(64);
    let person = |source: &str, id: &str, platform: &str, handle: &str| pb::IngestRequest {
        workspace: String::new(),
        record: Some(pb::ingest_request::Record::Person(pb::Person {
            r#ref: reference(source, id),
            display_name: "Sam".into(),
            member: true,
            identities: vec![pb::Identity {
                platform: platform.into(),
                handle: handle.into(),
                email_sha256: hash.clone(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    ingest(&server, vec![person("forum", "sam", "forum", "sam")]).await;
    ingest(&server, vec![person("chat", "U123", "slack", "samuel")]).await;
    let profile = profile_of(&server, "chat", "U123").await.expect("Sam");
    assert_eq!(
        person_ref(&profile),
        "chat:U123",
        "the smaller key keeps the person"
    );
    assert_eq!(
        profile
            .merged
            .iter()
            .map(|r| format!("{}:{}", r.source, r.external_id))
            .collect::<Vec<_>>(),
        ["forum:sam"]
    );
    let by_email = server
        .people()
        .match_person(pb::MatchPersonRequest {
            workspace: String::new(),
            lookup: lookup(pb::person_lookup::Key::EmailSha256(hash.clone())),
            suggestion_limit: 0,
        })
        .await
        .expect("a lookup")
        .into_inner();
    assert_eq!(person_ref(&by_email.profile.expect("found")), "chat:U123");

    // Two people who only share a display name on one platform stay two (issue 20).
    let joe = |id: &str| {
        let mut request = person("forum", id, "forum", "Joe");
        if let Some(pb::ingest_request::Record::Person(person)) = &mut request.record {
            person.identities[0].email_sha256 = String::new();
        }
        request
    };
    ingest(&server, vec![joe("joe-1"), joe("joe-2")]).await;
    let joe_1 = profile_of(&server, "forum", "joe-1").await.expect("Joe");
    assert_eq!(person_ref(&joe_1), "forum:joe-1");
    assert!(joe_1.merged.is_empty(), "{:?}", joe_1.merged);
    // The e-mail merge holds under today's rules: the review finds nothing to undo.
    let review = server.cli_json(&["people", "review-merges"]);
    assert_eq!(review["merges"], serde_json::json!([]), "{review}");
    assert_eq!(review["applied"], false);
}

/// A command's output piped into something that stops reading (`trellis ... | head`) ends the
/// command quietly, as it would any Unix tool: no panic about a broken pipe.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_command_piped_into_a_reader_that_stops_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    let mut child = trellis()
        .args(["health", "--addr", &server.addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the trellis binary runs");
    // The reader goes away before the command has printed anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("the command ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.status.success() || output.status.signal() == Some(13),
        "{:?}: {stderr}",
        output.status
    );
}
