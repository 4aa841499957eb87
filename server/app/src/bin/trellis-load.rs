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
//! interleaves them. `soak` mixes ingest, scoring, suggestions, matches and lists for a long run
//! and judges errors and memory growth (see the `soak` module; the program then exits non-zero
//! when the soak failed). A new workload is one more arm of [`Workload`].
//!
//! `--storage postgres --postgres-url URL` makes the started server keep its data in PostgreSQL,
//! in a schema of its own (`--postgres-schema`, by default a fresh `load_<seconds>_<pid>`).
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
    /// 50,000 people (`10%`), or `full`.
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
    /// (judged in the background once records stop arriving) before measuring; 0 measures at
    /// once, with requests judging what is not judged yet.
    #[arg(long, default_value_t = 3600.0)]
    standing_timeout: f64,
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

/// Waits until the server reports no open conversation waiting to be judged in any
/// workspace, or `timeout` passed; prints how long it took and what the index holds.
async fn wait_for_standing(
    channel: Channel,
    timeout: Duration,
    pid: Option<u32>,
) -> anyhow::Result<()> {
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
            return Ok(());
        }
        if started.elapsed() >= timeout {
            println!(
                "standing index: {judged} judged, {pending} still waiting after {:.0}s; measuring anyway (requests judge what they need)",
                timeout.as_secs_f64()
            );
            return Ok(());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!("standing index: {judged} judged, {pending} waiting");
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
        Workload::Mixed | Workload::Soak => Workload::Match,
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
        Workload::Match => {
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
                outcome.times.push(call_started.elapsed());
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
    let mut total = Outcome::default();
    for task in tasks {
        if let Ok(outcome) = task.await {
            total.times.extend(outcome.times);
            total.errors += outcome.errors;
            if total.first_error.is_none() {
                total.first_error = outcome.first_error;
            }
        }
    }
    (total, started.elapsed())
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

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    let spec = ScaleSpec::parse(&args.size)
        .with_context(|| format!("--size: {:?} is not a size; write 10% or full", args.size))?;
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

    let mut server = None;
    let (addr, pid) = match &args.addr {
        Some(addr) => (addr.clone(), args.server_pid),
        None => {
            let binary = match &args.trellis_bin {
                Some(binary) => binary.clone(),
                None => std::env::current_exe()?.with_file_name("trellis"),
            };
            if !binary.is_file() {
                bail!(
                    "no trellis binary at {}; build it with `cargo build --release -p trellis --bins` or give --trellis-bin",
                    binary.display()
                );
            }
            let started = start_server(&binary, &storage)?;
            let found = (started.addr.clone(), Some(started.child.id()));
            server = Some(started);
            found
        }
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

    if !args.no_ingest {
        pb::strategy_service_client::StrategyServiceClient::new(channel.clone())
            .put_strategy(pb::PutStrategyRequest {
                workspace: String::new(),
                strategy: Some(trellis_grpc::convert::strategy_to_pb(&strategy)),
            })
            .await
            .context("PutStrategy failed")?;
        let started = Instant::now();
        let sent = ingest(channel.clone(), Arc::clone(&community), spec, stored).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "ingested {sent} records in {seconds:.1}s ({:.0}/s); {}",
            sent as f64 / seconds.max(1e-9),
            memory_line(pid)
        );
    }
    if args.standing_timeout > 0.0 {
        wait_for_standing(
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

    let sample = community.scaled(spec).sample_people(args.sample);
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
    let mut soak_failed = false;
    for workload in &args.workloads {
        if *workload == Workload::Soak {
            let corpus = soak::Corpus {
                community: Arc::clone(&community),
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
            soak_failed |= !soak::run(channel.clone(), corpus, &options).await;
            continue;
        }
        let (outcome, elapsed) = drive(
            *workload,
            channel.clone(),
            Arc::clone(&people),
            args.clients,
            duration,
        )
        .await;
        let mut times = outcome.times;
        times.sort();
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            format!("{workload:?}").to_lowercase(),
            args.clients,
            times.len(),
            outcome.errors,
            quantile_ms(&times, 0.50),
            quantile_ms(&times, 0.99),
            quantile_ms(&times, 1.0),
            times.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            memory_line(pid)
        );
        if let Some(error) = outcome.first_error {
            println!("first error: {error}");
        }
    }
    drop(server);
    // The soak printed why it failed; an exit status is all a check needs.
    Ok(if soak_failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
