//! `trellis-load`: a load generator for a real `trellis serve` over real gRPC.
//!
//! It starts the `trellis` binary on a loopback port with a temporary database (or connects to
//! one given with `--addr`), ingests a community scaled up from the development dump through the
//! public Ingest API (see `trellis_eval::scale`), puts the dump's strategy, and then drives the
//! chosen workloads from `--clients` concurrent clients for `--duration` seconds each, printing
//! p50/p99/max latency, calls per second, errors, and the server's resident memory read from
//! `/proc/<pid>/status`.
//!
//! Workloads are named calls over sampled people (the most active members, occasional members,
//! outsiders): `suggest` (`SuggestDiscussions`) and `match` (`MatchPerson` by handle); `mixed`
//! interleaves them; `bulk` streams contacts through `MatchPeople` as a CRM sync does and
//! reports contacts/s, beside its ratio to `match` when both ran. `soak` mixes ingest, scoring, suggestions, matches and lists for a long run
//! and judges errors and memory growth (see the `soak` module; the program then exits non-zero
//! when the soak failed). A new workload is one more arm of [`Workload`].
//!
//! `--storage postgres --postgres-url URL` makes the started server keep its data in PostgreSQL,
//! in a schema of its own (`--postgres-schema`, by default a fresh `load_<seconds>_<pid>`).
//!
//! `--size 10%,25%,50%,full` measures several sizes, smallest first, each on a fresh server of
//! its own (ingest, standing index, workloads), and ends with a growth table: every figure
//! beside its ratio to the same figure at the smallest size.
//!
//! `cargo build --release -p trellis --bins && target/release/trellis-load --size 10% --clients 1`

#[path = "trellis-load/soak.rs"]
mod soak;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tonic::transport::Channel;
use trellis_eval::{Community, Dump, PeopleSample, ScaleSpec, ScaledThread};
use trellis_grpc::pb;

const SOURCE: &str = "scaled";
/// Records per Ingest call: big enough to stream, small enough to report progress.
const INGEST_BATCH: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// `SuggestDiscussions` for sampled people.
    Suggest,
    /// `MatchPerson` by handle for sampled people.
    Match,
    /// Both, alternating.
    Mixed,
    /// `MatchPeople`: one bidirectional stream per client, the sampled people's handles (and as
    /// many unknown ones) sent for the whole duration with at most 10,000 awaiting their
    /// answers, as a CRM sync drives it; a "call" is one contact, its time from sending to its
    /// answer.
    Bulk,
    /// Ingest, scoring, suggestions, matches and lists in a fixed mix, reported each
    /// --report-every seconds, judged for errors and memory growth.
    Soak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Storage {
    Sqlite,
    Postgres,
}

#[derive(Debug, Parser)]
#[command(
    name = "trellis-load",
    about = "Drive a real trellis server with a community scaled up from a real dump"
)]
struct Args {
    /// Size of the community: a percentage of 100,000 conversations, 1,000,000 posts and
    /// 50,000 people (`10%`), or `full`; several, comma-separated (`10%,25%,50%,full`), are
    /// measured one after the other on a fresh server each, with a growth table at the end.
    #[arg(long, default_value = "10%")]
    size: String,
    /// The StackExchange dump folder the community is scaled from.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// The strategy TOML to put.
    #[arg(long)]
    strategy: Option<PathBuf>,
    /// A running server to use instead of starting one (then give --server-pid to see its
    /// memory, and --no-ingest when it already holds the community).
    #[arg(long)]
    addr: Option<String>,
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long)]
    no_ingest: bool,
    /// The trellis binary to start; by default the one beside this program.
    #[arg(long)]
    trellis_bin: Option<PathBuf>,
    /// Concurrent clients (1: the single-call latency).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Workloads to run, one after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["suggest", "match"])]
    workloads: Vec<Workload>,
    /// People sampled of each kind.
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// The started server's storage engine.
    #[arg(long, value_enum, default_value = "sqlite")]
    storage: Storage,
    /// The PostgreSQL database of `--storage postgres`.
    #[arg(long, required_if_eq("storage", "postgres"))]
    postgres_url: Option<String>,
    /// The schema for the tables (created if missing); a fresh `load_<seconds>_<pid>` by
    /// default.
    #[arg(long)]
    postgres_schema: Option<String>,
    /// Soak: seconds between report lines.
    #[arg(long, default_value_t = 60.0)]
    report_every: f64,
    /// Soak: percent of the conversations held back from the initial ingest and sent during
    /// the soak as new records.
    #[arg(long, default_value_t = 2.0)]
    hold_back: f64,
    /// Soak: a second-half RSS slope above this percent of the RSS per minute is growth.
    #[arg(long, default_value_t = 1.0)]
    growth_threshold: f64,
    /// After the ingest, wait at most this many seconds for the server's standing index
    /// (judged in the background once records stop arriving) before measuring, and as long
    /// again for the judgments it made while records arrived to be judged again; 0 measures at
    /// once, with requests judging what is not judged yet.
    #[arg(long, default_value_t = 3600.0)]
    standing_timeout: f64,
    /// Then wait at most this many seconds for every person's insight to be made (the insight
    /// index, what `MatchPeople` answers from); 0 measures at once, with requests making what
    /// is not made yet.
    #[arg(long, default_value_t = 3600.0)]
    insight_timeout: f64,
    /// Then wait at most this many seconds for the semantic tier to embed every conversation,
    /// so that requests are measured without the embedder on the same cores; 0 (the default)
    /// measures at once and says how many are still waiting.
    #[arg(long, default_value_t = 0.0)]
    embedding_timeout: f64,
}

async fn server_status(
    server: &mut pb::server_service_client::ServerServiceClient<Channel>,
) -> anyhow::Result<pb::GetServerStatusResponse> {
    Ok(server
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .context("GetServerStatus failed")?
        .into_inner())
}

/// Waits until the server reports no conversation waiting to be embedded in any workspace, or
/// `timeout` passed; prints how fast the embedder went meanwhile.
async fn wait_for_embeddings(channel: Channel, timeout: Duration) -> anyhow::Result<()> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut first: Option<u64> = None;
    loop {
        let status = server_status(&mut server).await?;
        let embedded: u64 = status
            .workspaces
            .iter()
            .map(|w| w.embedded_conversations)
            .sum();
        let pending: u64 = status.workspaces.iter().map(|w| w.pending_embeddings).sum();
        let first = *first.get_or_insert(embedded);
        let seconds = started.elapsed().as_secs_f64();
        let rate = embedded.saturating_sub(first) as f64 / seconds.max(1e-9);
        if pending == 0 {
            println!(
                "embeddings: {embedded} conversations embedded, done {seconds:.1}s after the standing index ({rate:.1} conversations/s meanwhile)"
            );
            return Ok(());
        }
        if started.elapsed() >= timeout {
            println!(
                "embeddings: {embedded} embedded, {pending} still waiting after {seconds:.0}s ({rate:.1} conversations/s); measuring beside the embedder"
            );
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!("embeddings: {embedded} embedded, {pending} waiting ({rate:.1}/s)");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the server has judged again, in every workspace, the judgments it made before
/// the latest records arrived (after an ingest, those made while it ran: the server redoes them
/// once they are half its maximum age old), or `timeout` passed, so that the workloads are not
/// measured beside that refresh. Skipped while conversations wait to be embedded: every
/// embedding makes all judgments older than the corpus.
async fn wait_for_stale(channel: Channel, timeout: Duration) -> anyhow::Result<()> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut first = None;
    loop {
        let status = server_status(&mut server).await?;
        let stale: u64 = status.workspaces.iter().map(|w| w.standing_stale).sum();
        let embedding: u64 = status.workspaces.iter().map(|w| w.pending_embeddings).sum();
        let first = *first.get_or_insert(stale);
        if first == 0 && stale == 0 {
            return Ok(());
        }
        if embedding > 0 {
            println!(
                "standing index: {stale} judgments made before the latest changes; not waiting for their refresh while {embedding} conversations wait to be embedded"
            );
            return Ok(());
        }
        if stale == 0 {
            println!(
                "standing index: {first} judgments made while records arrived judged again {:.1}s later",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() >= timeout {
            println!(
                "standing index: {stale} judgments made before the latest changes still waiting to be judged again after {:.0}s; measuring beside that refresh",
                timeout.as_secs_f64()
            );
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!(
                "standing index: {stale} judgments made while records arrived, judged again once half the server's maximum age old"
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the server reports no open conversation waiting to be judged in any
/// workspace, or `timeout` passed; prints how long it took and what the index holds.
async fn wait_for_standing(
    channel: Channel,
    timeout: Duration,
    pid: Option<u32>,
) -> anyhow::Result<Option<f64>> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let status = server_status(&mut server).await?;
        let judged: u64 = status.workspaces.iter().map(|w| w.standing_judged).sum();
        let pending: u64 = status.workspaces.iter().map(|w| w.standing_pending).sum();
        let bytes: u64 = status.workspaces.iter().map(|w| w.standing_bytes).sum();
        if pending == 0 {
            println!(
                "standing index: {judged} open conversations judged, ready {:.1}s after the ingest, {:.1} MiB; {}",
                started.elapsed().as_secs_f64(),
                bytes as f64 / (1024.0 * 1024.0),
                memory_line(pid)
            );
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= timeout {
            println!(
                "standing index: {judged} judged, {pending} still waiting after {:.0}s; measuring anyway (requests judge what they need)",
                timeout.as_secs_f64()
            );
            return Ok(None);
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!("standing index: {judged} judged, {pending} waiting");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the server reports every person's insight made in every workspace (what
/// `MatchPeople` answers from), or `timeout` passed; prints how long it took, at how many
/// people a second, and what the index holds.
async fn wait_for_insights(
    channel: Channel,
    timeout: Duration,
    ingested_at: Instant,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let mut server = pb::server_service_client::ServerServiceClient::new(channel);
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let status = server_status(&mut server).await?;
        let ready: u64 = status.workspaces.iter().map(|w| w.insights_ready).sum();
        let pending: u64 = status.workspaces.iter().map(|w| w.insights_pending).sum();
        let bytes: u64 = status.workspaces.iter().map(|w| w.insights_bytes).sum();
        if pending == 0 {
            println!(
                "insight index: {ready} people's insights ready {:.1}s after the ingest, {:.1} MiB; {}",
                ingested_at.elapsed().as_secs_f64(),
                bytes as f64 / (1024.0 * 1024.0),
                memory_line(pid)
            );
            return Ok(());
        }
        if started.elapsed() >= timeout {
            println!(
                "insight index: {ready} ready, {pending} still waiting after {:.0}s; measuring anyway (requests make what they need)",
                timeout.as_secs_f64()
            );
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!("insight index: {ready} ready, {pending} waiting");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn shared_data() -> PathBuf {
    std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// Resident memory of a process as (current, peak) in MiB.
fn resident_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn memory_line(pid: Option<u32>) -> String {
    match pid.and_then(resident_mib) {
        Some((rss, peak)) => format!("server RSS {rss:.0} MiB (peak {peak:.0} MiB)"),
        None => "server RSS unknown (give --server-pid)".to_owned(),
    }
}

/// A started `trellis serve`, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a started server keeps its data.
enum StorageChoice {
    Sqlite,
    Postgres { url: String, schema: String },
}

fn start_server(binary: &Path, storage: &StorageChoice) -> anyhow::Result<Server> {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("load.db"));
    if let StorageChoice::Postgres { url, schema } = storage {
        command
            .env("TRELLIS__STORAGE__ENGINE", "postgres")
            .env("TRELLIS__STORAGE__URL", url)
            .env("TRELLIS__STORAGE__SCHEMA", schema);
    }
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stdout = child.stdout.take().context("stdout is piped")?;
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Keep draining so that the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let Some(addr) = line.trim().strip_prefix("trellis listening on ") else {
        let _ = child.kill();
        bail!("the server did not print its address; first line: {line:?}");
    };
    Ok(Server {
        addr: addr.to_owned(),
        child,
        _dir: dir,
    })
}

fn timestamp(millis: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

fn reference(id: &str) -> Option<pb::RecordRef> {
    Some(pb::RecordRef {
        source: SOURCE.to_owned(),
        external_id: id.to_owned(),
    })
}

fn thread_records(thread: ScaledThread, out: &mut Vec<pb::IngestRequest>) {
    use pb::ingest_request::Record;
    let message = |record| pb::IngestRequest {
        workspace: String::new(),
        record: Some(record),
    };
    out.push(message(Record::Conversation(pb::Conversation {
        r#ref: reference(&thread.id),
        platform: pb::PlatformKind::QaForum.into(),
        url: format!("https://qa.example/{}", thread.id),
        title: thread.title,
        body: thread.body,
        tags: thread.tags,
        author: thread.author.unwrap_or_default(),
        open: thread.open,
        created_at: timestamp(thread.created_at),
        last_activity_at: timestamp(thread.last_activity_at),
    })));
    for post in thread.posts {
        out.push(message(Record::Post(pb::Post {
            r#ref: reference(&post.id),
            conversation: thread.id.clone(),
            author: post.author.unwrap_or_default(),
            parent: post.parent,
            created_at: timestamp(post.created_at),
            text: post.text,
            reactions: 0,
        })));
    }
}

/// Streams the scaled community into the server in batches, people first, then conversations
/// `0..threads`.
async fn ingest(
    channel: Channel,
    community: Arc<Community>,
    spec: ScaleSpec,
    threads: usize,
) -> anyhow::Result<usize> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<pb::IngestRequest>>(4);
    let producer = std::thread::spawn(move || {
        let scaled = community.scaled(spec);
        let mut batch = Vec::with_capacity(INGEST_BATCH);
        for person in scaled.people() {
            batch.push(pb::IngestRequest {
                workspace: String::new(),
                record: Some(pb::ingest_request::Record::Person(pb::Person {
                    r#ref: reference(&person.id),
                    display_name: person.id.clone(),
                    bio: person.bio,
                    member: person.member,
                    identities: vec![pb::Identity {
                        platform: "qa".into(),
                        handle: person.id.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })),
            });
            if batch.len() >= INGEST_BATCH
                && sender.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                return;
            }
        }
        for thread in scaled.threads().take(threads) {
            thread_records(thread, &mut batch);
            if batch.len() >= INGEST_BATCH
                && sender.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
    });
    let mut client = pb::ingest_service_client::IngestServiceClient::new(channel)
        .max_decoding_message_size(64 << 20);
    let mut sent = 0usize;
    let started = Instant::now();
    while let Some(batch) = receiver.recv().await {
        let count = batch.len();
        let response = client
            .ingest(tokio_stream::iter(batch))
            .await
            .context("the Ingest call failed")?
            .into_inner();
        if let Some(first) = response.errors.first() {
            bail!(
                "the server refused {} records; first: {} {}",
                response.errors.len(),
                first.field,
                first.reason
            );
        }
        sent += count;
        eprintln!(
            "ingested {sent} records in {:.0}s ({:.0}/s)",
            started.elapsed().as_secs_f64(),
            sent as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    let _ = producer.join();
    Ok(sent)
}

#[derive(Debug, Default)]
struct Outcome {
    times: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    /// The slowest calls, slowest first: where a tail comes from (a kind of person, a moment
    /// of the run).
    slowest: Vec<Slow>,
}

impl Outcome {
    /// The outcomes of the clients' tasks as one (a task that panicked counts for nothing).
    async fn gathered(tasks: Vec<tokio::task::JoinHandle<Outcome>>) -> Outcome {
        let mut total = Outcome::default();
        for task in tasks {
            if let Ok(outcome) = task.await {
                total.times.extend(outcome.times);
                total.errors += outcome.errors;
                if total.first_error.is_none() {
                    total.first_error = outcome.first_error;
                }
                for slow in outcome.slowest {
                    keep_slowest(&mut total.slowest, slow);
                }
            }
        }
        total
    }
}

/// One slow call: how long it took, when in the workload it started, and for whom.
#[derive(Debug, Clone)]
struct Slow {
    took: Duration,
    at: Duration,
    person: String,
}

/// How many of the slowest calls a workload reports.
const SLOWEST: usize = 5;

/// Keeps `call` among `slowest` if it is one of the `SLOWEST` slowest, slowest first.
fn keep_slowest(slowest: &mut Vec<Slow>, call: Slow) {
    if slowest.len() == SLOWEST && slowest.last().is_some_and(|last| last.took >= call.took) {
        return;
    }
    let position = slowest.partition_point(|kept| kept.took >= call.took);
    slowest.insert(position, call);
    slowest.truncate(SLOWEST);
}

fn slowest_line(slowest: &[Slow]) -> String {
    slowest
        .iter()
        .map(|slow| {
            format!(
                "{:.1} ms at {:.1} s ({})",
                slow.took.as_secs_f64() * 1000.0,
                slow.at.as_secs_f64(),
                slow.person
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One call of a workload for the `turn`-th person of the sample.
async fn call(
    workload: Workload,
    channel: &Channel,
    people: &[String],
    turn: usize,
) -> Result<(), tonic::Status> {
    let person = &people[turn % people.len()];
    // The soak has calls of its own (`soak::run`); here it stands for `mixed`.
    let workload = match workload {
        Workload::Mixed | Workload::Soak if turn.is_multiple_of(2) => Workload::Suggest,
        Workload::Mixed | Workload::Soak | Workload::Bulk => Workload::Match,
        other => other,
    };
    match workload {
        Workload::Suggest | Workload::Mixed | Workload::Soak => {
            pb::insight_service_client::InsightServiceClient::new(channel.clone())
                .suggest_discussions(pb::SuggestDiscussionsRequest {
                    workspace: String::new(),
                    person: reference(person),
                    limit: 10,
                    as_of: None,
                })
                .await?;
        }
        Workload::Match | Workload::Bulk => {
            pb::people_service_client::PeopleServiceClient::new(channel.clone())
                .match_person(pb::MatchPersonRequest {
                    workspace: String::new(),
                    lookup: Some(pb::PersonLookup {
                        key: Some(pb::person_lookup::Key::Handle(person.clone())),
                    }),
                    suggestion_limit: 5,
                })
                .await?;
        }
    }
    Ok(())
}

/// Contacts a bulk client keeps awaiting their answers, as the thin clients do.
const BULK_IN_FLIGHT: usize = 10_000;

/// The `bulk` workload: `clients` `MatchPeople` streams for `duration`, each contact's time from
/// being sent to its answer (answers come back in the order contacts were sent).
async fn drive_bulk(
    channel: Channel,
    people: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients.max(1) {
        let channel = channel.clone();
        let people = Arc::clone(&people);
        tasks.push(tokio::spawn(async move {
            let window = Arc::new(tokio::sync::Semaphore::new(BULK_IN_FLIGHT));
            let sent: Arc<std::sync::Mutex<std::collections::VecDeque<Instant>>> = Arc::default();
            let contacts = {
                let window = Arc::clone(&window);
                let sent = Arc::clone(&sent);
                futures::stream::unfold(0usize, move |turn| {
                    let window = Arc::clone(&window);
                    let sent = Arc::clone(&sent);
                    let people = Arc::clone(&people);
                    async move {
                        if Instant::now() >= deadline {
                            return None;
                        }
                        window.acquire().await.ok()?.forget();
                        // Every other contact is someone the community does not know.
                        let handle = if turn % 2 == 0 {
                            people[(turn / 2) % people.len()].clone()
                        } else {
                            format!("unknown-{client}-{turn}")
                        };
                        sent.lock().ok()?.push_back(Instant::now());
                        let request = pb::MatchPeopleRequest {
                            workspace: String::new(),
                            contact_id: format!("{client}-{turn}"),
                            lookup: Some(pb::PersonLookup {
                                key: Some(pb::person_lookup::Key::Handle(handle)),
                            }),
                        };
                        Some((request, turn + 1))
                    }
                })
            };
            let mut outcome = Outcome::default();
            let answers = pb::people_service_client::PeopleServiceClient::new(channel)
                .match_people(contacts)
                .await;
            let mut answers = match answers {
                Ok(answers) => answers.into_inner(),
                Err(status) => {
                    outcome.errors += 1;
                    outcome.first_error =
                        Some(format!("{:?}: {}", status.code(), status.message()));
                    return outcome;
                }
            };
            loop {
                match answers.message().await {
                    Ok(Some(answer)) => {
                        window.add_permits(1);
                        let at = sent.lock().ok().and_then(|mut sent| sent.pop_front());
                        if let Some(at) = at {
                            outcome.times.push(at.elapsed());
                        }
                        if !answer.error.is_empty() {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert(answer.error);
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        outcome.errors += 1;
                        outcome.first_error.get_or_insert_with(|| {
                            format!("{:?}: {}", status.code(), status.message())
                        });
                        break;
                    }
                }
            }
            outcome
        }));
    }
    (Outcome::gathered(tasks).await, started.elapsed())
}

async fn drive(
    workload: Workload,
    channel: Channel,
    people: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> (Outcome, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let channel = channel.clone();
        let people = Arc::clone(&people);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let turn = next.fetch_add(1, Ordering::Relaxed);
                let call_started = Instant::now();
                let result = call(workload, &channel, &people, turn).await;
                let took = call_started.elapsed();
                outcome.times.push(took);
                keep_slowest(
                    &mut outcome.slowest,
                    Slow {
                        took,
                        at: call_started.duration_since(started),
                        person: people[turn % people.len()].clone(),
                    },
                );
                if let Err(status) = result {
                    outcome.errors += 1;
                    outcome.first_error.get_or_insert_with(|| {
                        format!("{:?}: {}", status.code(), status.message())
                    });
                }
            }
            outcome
        }));
    }
    (Outcome::gathered(tasks).await, started.elapsed())
}

fn quantile_ms(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// The sample in the order calls take it: kinds interleaved.
fn interleave(sample: &PeopleSample) -> Vec<String> {
    let mut people = Vec::new();
    let longest = sample
        .active
        .len()
        .max(sample.occasional.len())
        .max(sample.outsiders.len());
    for index in 0..longest {
        for kind in [&sample.active, &sample.occasional, &sample.outsiders] {
            if let Some(person) = kind.get(index) {
                people.push(person.clone());
            }
        }
    }
    people
}

/// The sizes of `--size`, smallest first: one (`10%`) or several (`10%,25%,50%,full`).
fn parse_sizes(text: &str) -> anyhow::Result<Vec<ScaleSpec>> {
    let mut sizes = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let spec = ScaleSpec::parse(part).with_context(|| {
            format!("--size: {part:?} is not a size; write 10% or full, or several as 10%,25%,full")
        })?;
        sizes.push(spec);
    }
    if sizes.is_empty() {
        bail!("--size: no size given; write 10% or full, or several as 10%,25%,full");
    }
    sizes.sort_by_key(|spec| spec.conversations);
    sizes.dedup_by_key(|spec| spec.conversations);
    Ok(sizes)
}

/// What one size of a run measured.
#[derive(Debug, Clone)]
struct SizeReport {
    spec: ScaleSpec,
    /// Records sent and seconds taken, when this run ingested them.
    ingest: Option<(usize, f64)>,
    /// Seconds until the standing index was complete, when it was waited for and completed.
    standing: Option<f64>,
    /// The server's RSS in MiB once the community was in and judged, before the workloads.
    loaded_rss: Option<f64>,
    rows: Vec<Row>,
    soak_failed: bool,
}

/// One workload's figures.
#[derive(Debug, Clone)]
struct Row {
    workload: Workload,
    calls: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    calls_per_second: f64,
    /// The server's RSS in MiB after the workload.
    rss: Option<f64>,
}

fn workload_name(workload: Workload) -> String {
    format!("{workload:?}").to_lowercase()
}

/// `value` and its ratio to `base`, as `12.3 (2.05x)`; the ratio is left out without a base.
fn with_ratio(value: Option<f64>, base: Option<f64>, decimals: usize) -> String {
    match (value, base) {
        (Some(value), Some(base)) if value.is_finite() && base.is_finite() && base > 0.0 => {
            format!("{value:.decimals$} ({:.2}x)", value / base)
        }
        (Some(value), _) if value.is_finite() => format!("{value:.decimals$}"),
        _ => "-".to_owned(),
    }
}

/// How each figure grows from the smallest size of the run: two Markdown tables, the load
/// (ingest, standing index, memory) and the workloads, each figure with its ratio to the same
/// figure at the smallest size.
fn growth_table(reports: &[SizeReport]) -> String {
    use std::fmt::Write as _;
    let Some(first) = reports.first() else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "growth from {} (each figure, then its ratio to the same figure at {}):",
        first.spec.label(),
        first.spec.label()
    );
    let _ = writeln!(
        out,
        "| size | conversations | posts | people | ingest s | standing index s | server RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let count = |value: usize| Some(value as f64);
    for report in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            report.spec.label(),
            with_ratio(
                count(report.spec.conversations),
                count(first.spec.conversations),
                0
            ),
            with_ratio(count(report.spec.posts), count(first.spec.posts), 0),
            with_ratio(count(report.spec.people), count(first.spec.people), 0),
            with_ratio(
                report.ingest.map(|(_, seconds)| seconds),
                first.ingest.map(|(_, seconds)| seconds),
                1
            ),
            with_ratio(report.standing, first.standing, 1),
            with_ratio(report.loaded_rss, first.loaded_rss, 0),
        );
    }
    let mut workloads: Vec<Workload> = Vec::new();
    for row in reports.iter().flat_map(|report| &report.rows) {
        if !workloads.contains(&row.workload) {
            workloads.push(row.workload);
        }
    }
    if workloads.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "| workload | size | calls | errors | p50 ms | p99 ms | calls/s | server RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for workload in workloads {
        let row_of = |report: &SizeReport| {
            report
                .rows
                .iter()
                .find(|row| row.workload == workload)
                .cloned()
        };
        let base = reports.iter().find_map(row_of);
        for report in reports {
            let Some(row) = row_of(report) else { continue };
            let base = base.as_ref();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                workload_name(workload),
                report.spec.label(),
                row.calls,
                row.errors,
                with_ratio(Some(row.p50_ms), base.map(|base| base.p50_ms), 2),
                with_ratio(Some(row.p99_ms), base.map(|base| base.p99_ms), 2),
                with_ratio(
                    Some(row.calls_per_second),
                    base.map(|base| base.calls_per_second),
                    1
                ),
                with_ratio(row.rss, base.and_then(|base| base.rss), 0),
            );
        }
    }
    out
}

/// What every size of a run shares: the community to scale, the strategy, where servers run.
struct Setup {
    community: Arc<Community>,
    strategy: trellis_core::strategy::Strategy,
    /// The binary to start a server per size; `None` with `--addr`.
    binary: Option<PathBuf>,
    /// Where started servers keep their data; a PostgreSQL schema gets the size appended when
    /// the run has several sizes.
    storage: StorageChoice,
    several: bool,
}

/// Starts a server (unless `--addr` names one), ingests the community at `spec`, waits for the
/// standing index and runs the workloads, printing as it goes.
async fn run_size(args: &Args, setup: &Setup, spec: ScaleSpec) -> anyhow::Result<SizeReport> {
    let storage = match &setup.storage {
        StorageChoice::Postgres { url, schema } if setup.several => StorageChoice::Postgres {
            url: url.clone(),
            schema: format!("{schema}_{}", spec.conversations),
        },
        StorageChoice::Postgres { url, schema } => StorageChoice::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        },
        StorageChoice::Sqlite => StorageChoice::Sqlite,
    };
    let mut server = None;
    let (addr, pid) = match (&args.addr, &setup.binary) {
        (Some(addr), _) => (addr.clone(), args.server_pid),
        (None, Some(binary)) => {
            let started = start_server(binary, &storage)?;
            let found = (started.addr.clone(), Some(started.child.id()));
            server = Some(started);
            found
        }
        (None, None) => bail!("no server to measure: give --addr or a trellis binary"),
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {addr}"))?;
    println!(
        "trellis-load: {} ({} conversations, {} posts, {} people) against {addr}{}",
        spec.label(),
        spec.conversations,
        spec.posts,
        spec.people,
        match (&args.addr, &storage) {
            (None, StorageChoice::Sqlite) => " (SQLite)".to_owned(),
            (None, StorageChoice::Postgres { schema, .. }) =>
                format!(" (PostgreSQL, schema {schema})"),
            (Some(_), _) => String::new(),
        }
    );
    // The soak sends the last conversations as new records; the other workloads read them all.
    let stored = if args.workloads.contains(&Workload::Soak) {
        let held_back = (spec.conversations as f64 * args.hold_back / 100.0).round() as usize;
        spec.conversations - held_back.min(spec.conversations.saturating_sub(1))
    } else {
        spec.conversations
    };

    let mut report = SizeReport {
        spec,
        ingest: None,
        standing: None,
        loaded_rss: None,
        rows: Vec::new(),
        soak_failed: false,
    };
    let mut ingested_at = Instant::now();
    if !args.no_ingest {
        pb::strategy_service_client::StrategyServiceClient::new(channel.clone())
            .put_strategy(pb::PutStrategyRequest {
                workspace: String::new(),
                strategy: Some(trellis_grpc::convert::strategy_to_pb(&setup.strategy)),
            })
            .await
            .context("PutStrategy failed")?;
        let started = Instant::now();
        let sent = ingest(channel.clone(), Arc::clone(&setup.community), spec, stored).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "ingested {sent} records in {seconds:.1}s ({:.0}/s); {}",
            sent as f64 / seconds.max(1e-9),
            memory_line(pid)
        );
        report.ingest = Some((sent, seconds));
        ingested_at = Instant::now();
    }
    if args.standing_timeout > 0.0 {
        report.standing = wait_for_standing(
            channel.clone(),
            Duration::from_secs_f64(args.standing_timeout),
            pid,
        )
        .await?;
    }
    wait_for_embeddings(
        channel.clone(),
        Duration::from_secs_f64(args.embedding_timeout.max(0.0)),
    )
    .await?;
    if args.standing_timeout > 0.0 {
        wait_for_stale(
            channel.clone(),
            Duration::from_secs_f64(args.standing_timeout),
        )
        .await?;
    }
    if args.insight_timeout > 0.0 {
        wait_for_insights(
            channel.clone(),
            Duration::from_secs_f64(args.insight_timeout),
            ingested_at,
            pid,
        )
        .await?;
    }
    report.loaded_rss = pid.and_then(resident_mib).map(|(rss, _)| rss);

    let sample = setup.community.scaled(spec).sample_people(args.sample);
    let people = Arc::new(interleave(&sample));
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    if args
        .workloads
        .iter()
        .any(|workload| *workload != Workload::Soak)
    {
        println!(
            "| workload | clients | calls | errors | p50 ms | p99 ms | max ms | calls/s | server RSS |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
    }
    for workload in &args.workloads {
        if *workload == Workload::Soak {
            let corpus = soak::Corpus {
                community: Arc::clone(&setup.community),
                spec,
                stored,
                people: Arc::clone(&people),
            };
            let options = soak::Options {
                clients: args.clients,
                duration,
                report_every: Duration::from_secs_f64(args.report_every),
                growth_threshold: args.growth_threshold,
                server_pid: pid,
            };
            report.soak_failed |= !soak::run(channel.clone(), corpus, &options).await;
            continue;
        }
        let (outcome, elapsed) = if *workload == Workload::Bulk {
            drive_bulk(channel.clone(), Arc::clone(&people), args.clients, duration).await
        } else {
            drive(
                *workload,
                channel.clone(),
                Arc::clone(&people),
                args.clients,
                duration,
            )
            .await
        };
        let mut times = outcome.times;
        times.sort();
        let row = Row {
            workload: *workload,
            calls: times.len(),
            errors: outcome.errors,
            p50_ms: quantile_ms(&times, 0.50),
            p99_ms: quantile_ms(&times, 0.99),
            max_ms: quantile_ms(&times, 1.0),
            calls_per_second: times.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            rss: pid.and_then(resident_mib).map(|(rss, _)| rss),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            workload_name(row.workload),
            args.clients,
            row.calls,
            row.errors,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.calls_per_second,
            memory_line(pid)
        );
        if let Some(error) = outcome.first_error {
            println!("first error: {error}");
        }
        if *workload == Workload::Bulk {
            let unary = report
                .rows
                .iter()
                .find(|row| row.workload == Workload::Match)
                .map(|row| row.calls_per_second);
            println!(
                "bulk: {} contacts/s through MatchPeople{}",
                with_ratio(Some(row.calls_per_second), unary, 0),
                if unary.is_some() {
                    ", the ratio to this run's MatchPerson calls/s"
                } else {
                    " (add the match workload for a ratio to MatchPerson calls/s)"
                }
            );
        } else {
            println!("slowest: {}", slowest_line(&outcome.slowest));
        }
        report.rows.push(row);
    }
    drop(server);
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    let sizes = parse_sizes(&args.size)?;
    if sizes.len() > 1 && (args.addr.is_some() || args.no_ingest) {
        bail!(
            "--size: several sizes start a fresh server for each; --addr and --no-ingest measure the one community a running server holds, so give one size with them"
        );
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if args.report_every.is_nan() || args.report_every <= 0.0 {
        bail!("--report-every must be a positive number of seconds");
    }
    if !(0.0..100.0).contains(&args.hold_back) {
        bail!("--hold-back is a percentage of the conversations: at least 0, below 100");
    }
    let storage = match args.storage {
        Storage::Sqlite => StorageChoice::Sqlite,
        Storage::Postgres => {
            let url = args
                .postgres_url
                .clone()
                .context("--postgres-url is needed with --storage postgres")?;
            let schema = args.postgres_schema.clone().unwrap_or_else(|| {
                let seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs());
                format!("load_{seconds}_{}", std::process::id())
            });
            StorageChoice::Postgres { url, schema }
        }
    };
    let binary = match (&args.addr, &args.trellis_bin) {
        (Some(_), _) => None,
        (None, Some(binary)) => Some(binary.clone()),
        (None, None) => Some(std::env::current_exe()?.with_file_name("trellis")),
    };
    if let Some(binary) = binary.as_ref().filter(|binary| !binary.is_file()) {
        bail!(
            "no trellis binary at {}; build it with `cargo build --release -p trellis --bins` or give --trellis-bin",
            binary.display()
        );
    }
    let data = shared_data();
    let dump_dir = args
        .dump
        .clone()
        .unwrap_or_else(|| data.join("stackexchange/quantumcomputing"));
    let strategy_path = args
        .strategy
        .clone()
        .unwrap_or_else(|| data.join("strategies/quantumcomputing.toml"));
    let dump = Dump::load(&dump_dir).with_context(|| {
        format!(
            "cannot load the dump at {} (give --dump or set TRELLIS_SHARED_DATA)",
            dump_dir.display()
        )
    })?;
    let community = Arc::new(Community::from_dump(&dump)?);
    drop(dump);
    let strategy_text = std::fs::read_to_string(&strategy_path)
        .with_context(|| format!("cannot read the strategy {}", strategy_path.display()))?;
    let strategy = trellis_core::strategy::parse_strategy_toml(&strategy_text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", strategy_path.display()))?;
    let setup = Setup {
        community,
        strategy,
        binary,
        storage,
        several: sizes.len() > 1,
    };

    let mut reports = Vec::new();
    for spec in sizes {
        reports.push(run_size(&args, &setup, spec).await?);
    }
    if reports.len() > 1 {
        print!("\n{}", growth_table(&reports));
    }
    // The soak printed why it failed; an exit status is all a check needs.
    Ok(if reports.iter().any(|report| report.soak_failed) {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: Workload, p50_ms: f64, p99_ms: f64, calls_per_second: f64) -> Row {
        Row {
            workload,
            calls: 100,
            errors: 0,
            p50_ms,
            p99_ms,
            max_ms: p99_ms * 2.0,
            calls_per_second,
            rss: Some(p50_ms * 100.0),
        }
    }

    fn report(size: &str, ingest: f64, rows: Vec<Row>) -> SizeReport {
        SizeReport {
            spec: ScaleSpec::parse(size).unwrap(),
            ingest: Some((1000, ingest)),
            standing: None,
            loaded_rss: Some(ingest * 10.0),
            rows,
            soak_failed: false,
        }
    }

    #[test]
    fn the_slowest_calls_are_kept_slowest_first() {
        let mut slowest = Vec::new();
        let millis = [5, 40, 7, 40, 1, 90, 12, 3, 60, 8];
        for (turn, ms) in millis.into_iter().enumerate() {
            keep_slowest(
                &mut slowest,
                Slow {
                    took: Duration::from_millis(ms),
                    at: Duration::from_secs(turn as u64),
                    person: format!("p{turn}"),
                },
            );
        }
        let kept: Vec<(u64, &str)> = slowest
            .iter()
            .map(|slow| (slow.took.as_millis() as u64, slow.person.as_str()))
            .collect();
        assert_eq!(
            kept,
            [(90, "p5"), (60, "p8"), (40, "p1"), (40, "p3"), (12, "p6")]
        );
        assert_eq!(
            slowest_line(&slowest[..2]),
            "90.0 ms at 5.0 s (p5), 60.0 ms at 8.0 s (p8)"
        );
    }

    #[test]
    fn sizes_are_measured_smallest_first_once_each() {
        let sizes = parse_sizes("full, 10%,50%,10%,").unwrap();
        let conversations: Vec<usize> = sizes.iter().map(|spec| spec.conversations).collect();
        assert_eq!(conversations, [10_000, 50_000, 100_000]);
        assert_eq!(parse_sizes("5%").unwrap().len(), 1);
    }

    #[test]
    fn a_size_that_is_not_one_is_named_with_the_fix() {
        let error = parse_sizes("10%,ten").unwrap_err().to_string();
        assert!(
            error.contains("--size") && error.contains("\"ten\""),
            "{error}"
        );
        assert!(error.contains("10%,25%,full"), "{error}");
        let error = parse_sizes(" , ").unwrap_err().to_string();
        assert!(error.contains("--size: no size given"), "{error}");
    }

    #[test]
    fn the_growth_table_sets_every_figure_beside_its_ratio_to_the_smallest_size() {
        let reports = [
            report(
                "10%",
                50.0,
                vec![
                    row(Workload::Suggest, 4.0, 10.0, 200.0),
                    row(Workload::Match, 2.0, 8.0, 250.0),
                ],
            ),
            report(
                "full",
                500.0,
                vec![
                    row(Workload::Suggest, 8.0, 20.0, 100.0),
                    row(Workload::Match, 7.0, 16.0, 125.0),
                ],
            ),
        ];
        let table = growth_table(&reports);
        assert!(table.starts_with("growth from 10%"), "{table}");
        let line = |start: &str| {
            table
                .lines()
                .find(|line| line.starts_with(start))
                .unwrap_or_else(|| panic!("no line {start:?} in\n{table}"))
                .to_owned()
        };
        assert_eq!(
            line("| 10% |"),
            "| 10% | 10000 (1.00x) | 100000 (1.00x) | 5000 (1.00x) | 50.0 (1.00x) | - | 500 (1.00x) |"
        );
        assert_eq!(
            line("| 100% |"),
            "| 100% | 100000 (10.00x) | 1000000 (10.00x) | 50000 (10.00x) | 500.0 (10.00x) | - | 5000 (10.00x) |"
        );
        assert_eq!(
            line("| suggest | 100% |"),
            "| suggest | 100% | 100 | 0 | 8.00 (2.00x) | 20.00 (2.00x) | 100.0 (0.50x) | 800 (2.00x) |"
        );
        assert_eq!(
            line("| match | 100% |"),
            "| match | 100% | 100 | 0 | 7.00 (3.50x) | 16.00 (2.00x) | 125.0 (0.50x) | 700 (3.50x) |"
        );
        assert_eq!(line("| match | 10% |").matches("(1.00x)").count(), 4);
    }

    #[test]
    fn a_workload_missing_at_the_smallest_size_grows_from_the_first_size_that_has_it() {
        let reports = [
            report("10%", 50.0, vec![row(Workload::Suggest, 4.0, 10.0, 200.0)]),
            report("25%", 80.0, vec![row(Workload::Match, 3.0, 9.0, 150.0)]),
            report("50%", 90.0, vec![row(Workload::Match, 6.0, 18.0, 75.0)]),
        ];
        let table = growth_table(&reports);
        assert!(
            table.contains("| match | 25% | 100 | 0 | 3.00 (1.00x) |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| match | 50% | 100 | 0 | 6.00 (2.00x) | 18.00 (2.00x) | 75.0 (0.50x) |"
            ),
            "{table}"
        );
        assert!(!table.contains("| suggest | 25%"), "{table}");
    }
}
