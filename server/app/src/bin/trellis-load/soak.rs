//! The `soak` workload: every kind of call at once, for a long time, watched for errors and for
//! memory that keeps growing.
//!
//! Clients take turns from one counter, and each turn's kind comes from a fixed cycle of ten
//! ([`MIX`]): 3 × `ScoreConversations` (by stored reference and by text, alternately),
//! 3 × `SuggestDiscussions`, 2 × `MatchPerson`, 1 × `ListStrategicConversations`, 1 × `Ingest`.
//! An ingest turn sends one conversation with its posts as a small stream: during the first half of
//! the soak, alternately a conversation held back from the initial ingest (new records) and a
//! re-versioned stored one (its body and first reply edited: updated records); in the second half
//! only re-versions, so the corpus no longer grows and memory growth there is not data.
//!
//! Every `--report-every` seconds one line per interval: calls/s per kind and in total, p50/p99
//! per kind, errors by gRPC code, and the server's resident memory (mean of one-second samples of
//! `/proc/<pid>/status`). At the end: the same over the whole run, the error rate, RSS at the start
//! of the soak, at its end and its peak, and the memory verdict:
//!
//! - the least-squares slope of the one-second RSS samples taken in the second half of the run, in
//!   MiB per minute and in percent of their mean per minute, and the ratio of the last interval's
//!   RSS to that of the first interval of the second half;
//! - **growth** when the slope exceeds `--growth-threshold` percent of the mean per minute (1 by
//!   default: a server that kept that pace would double in well under two hours);
//! - not judged when the second half spans fewer than two report intervals or the server's pid is
//!   unknown (a run against `--addr` without `--server-pid`).
//!
//! The soak fails (the program exits non-zero) on any error or on growth, so it can serve as a
//! check.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use trellis_eval::{Community, ScaleSpec, ScaledThread};
use trellis_grpc::pb;

use super::{quantile_ms, reference, resident_mib, thread_records};

/// The kinds of call of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ingest,
    Score,
    Suggest,
    Match,
    List,
}

const KINDS: [Kind; 5] = [
    Kind::Ingest,
    Kind::Score,
    Kind::Suggest,
    Kind::Match,
    Kind::List,
];

/// One cycle of turns: 10% ingest, 30% scoring, 30% suggestions, 20% matches, 10% lists.
const MIX: [Kind; 10] = [
    Kind::Score,
    Kind::Suggest,
    Kind::Match,
    Kind::Score,
    Kind::Suggest,
    Kind::List,
    Kind::Score,
    Kind::Suggest,
    Kind::Match,
    Kind::Ingest,
];

/// Stored conversations named in one `ScoreConversations` call by reference.
const SCORED_REFS: usize = 5;

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Ingest => 0,
            Kind::Score => 1,
            Kind::Suggest => 2,
            Kind::Match => 3,
            Kind::List => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Ingest => "ingest",
            Kind::Score => "score",
            Kind::Suggest => "suggest",
            Kind::Match => "match",
            Kind::List => "list",
        }
    }
}

/// What the soak works on.
pub(crate) struct Corpus {
    pub community: Arc<Community>,
    pub spec: ScaleSpec,
    /// Conversations `0..stored` were ingested before the soak; `stored..spec.conversations` are
    /// held back for it.
    pub stored: usize,
    /// People the reading calls ask about.
    pub people: Arc<Vec<String>>,
}

pub(crate) struct Options {
    pub clients: usize,
    pub duration: Duration,
    pub report_every: Duration,
    /// Percent of the mean RSS per minute above which the second half's slope is growth.
    pub growth_threshold: f64,
    pub server_pid: Option<u32>,
}

/// Latencies and errors of some calls.
#[derive(Debug, Default)]
struct Tally {
    times: [Vec<Duration>; 5],
    errors: [usize; 5],
    by_code: BTreeMap<String, usize>,
    first_message: BTreeMap<String, String>,
}

impl Tally {
    fn record(&mut self, kind: Kind, elapsed: Duration, status: Option<&tonic::Status>) {
        self.times[kind.index()].push(elapsed);
        if let Some(status) = status {
            self.errors[kind.index()] += 1;
            let code = format!("{:?}", status.code());
            *self.by_code.entry(code.clone()).or_default() += 1;
            self.first_message
                .entry(code)
                .or_insert_with(|| status.message().to_owned());
        }
    }

    fn calls(&self) -> usize {
        self.times.iter().map(Vec::len).sum()
    }

    fn errors(&self) -> usize {
        self.errors.iter().sum()
    }

    fn errors_line(&self) -> String {
        if self.by_code.is_empty() {
            return "errors 0".to_owned();
        }
        let codes: Vec<String> = self
            .by_code
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect();
        format!("errors {} ({})", self.errors(), codes.join(", "))
    }
}

/// Counters and tallies the clients share.
struct Shared {
    corpus: Corpus,
    half_time: Instant,
    turns: AtomicUsize,
    per_kind: [AtomicUsize; 5],
    next_new: AtomicUsize,
    revisions: AtomicUsize,
    interval: Mutex<Tally>,
    whole: Mutex<Tally>,
}

impl Shared {
    fn record(&self, kind: Kind, elapsed: Duration, status: Option<&tonic::Status>) {
        for tally in [&self.interval, &self.whole] {
            tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(kind, elapsed, status);
        }
    }

    /// The records of the next ingest turn: a held-back conversation or a re-versioned one.
    fn next_ingest(&self, ingest_turn: usize) -> Vec<pb::IngestRequest> {
        let corpus = &self.corpus;
        let scaled = corpus.community.scaled(corpus.spec);
        let mut thread = None;
        if ingest_turn.is_multiple_of(2) && Instant::now() < self.half_time {
            let index = corpus.stored + self.next_new.fetch_add(1, Ordering::Relaxed);
            if index < corpus.spec.conversations {
                thread = Some(scaled.thread(index));
            }
        }
        let thread = thread.unwrap_or_else(|| {
            let revision = self.revisions.fetch_add(1, Ordering::Relaxed);
            let stored = corpus.stored.max(1);
            re_versioned(scaled.thread(revision % stored), revision / stored + 1)
        });
        let mut records = Vec::new();
        thread_records(thread, &mut records);
        records
    }
}

/// A thread as edited for the `number`-th time: its body and first reply changed, the same size
/// every time so that re-versions do not grow the corpus.
fn re_versioned(mut thread: ScaledThread, number: usize) -> ScaledThread {
    let mark = format!(" (revision {:03})", number % 1000);
    thread.body.push_str(&mark);
    if let Some(post) = thread.posts.first_mut() {
        post.text.push_str(&mark);
    }
    thread
}

async fn one_call(shared: &Shared, channel: &Channel, kind: Kind) -> Result<(), tonic::Status> {
    let corpus = &shared.corpus;
    let turn = shared.per_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
    let person = |turn: usize| corpus.people[turn % corpus.people.len()].clone();
    match kind {
        Kind::Ingest => {
            let records = shared.next_ingest(turn);
            let response = pb::ingest_service_client::IngestServiceClient::new(channel.clone())
                .ingest(tokio_stream::iter(records))
                .await?
                .into_inner();
            if let Some(first) = response.errors.first() {
                return Err(tonic::Status::invalid_argument(format!(
                    "the server refused {} records; first: {} {}",
                    response.errors.len(),
                    first.field,
                    first.reason
                )));
            }
        }
        Kind::Score => {
            let stored = corpus.stored.max(1);
            let mut request = pb::ScoreConversationsRequest::default();
            if turn.is_multiple_of(2) {
                request.conversations = (0..SCORED_REFS)
                    .map(|offset| {
                        let index = (turn * SCORED_REFS + offset * 7919) % stored;
                        pb::RecordRef {
                            source: super::SOURCE.to_owned(),
                            external_id: format!("t{index}"),
                        }
                    })
                    .collect();
            } else {
                let thread = corpus
                    .community
                    .scaled(corpus.spec)
                    .thread(turn % corpus.spec.conversations.max(1));
                request.texts = vec![pb::TextInput {
                    title: thread.title,
                    body: thread.body,
                }];
            }
            pb::insight_service_client::InsightServiceClient::new(channel.clone())
                .score_conversations(request)
                .await?;
        }
        Kind::Suggest => {
            pb::insight_service_client::InsightServiceClient::new(channel.clone())
                .suggest_discussions(pb::SuggestDiscussionsRequest {
                    workspace: String::new(),
                    person: reference(&person(turn)),
                    limit: 10,
                    as_of: None,
                })
                .await?;
        }
        Kind::Match => {
            pb::people_service_client::PeopleServiceClient::new(channel.clone())
                .match_person(pb::MatchPersonRequest {
                    workspace: String::new(),
                    lookup: Some(pb::PersonLookup {
                        key: Some(pb::person_lookup::Key::Handle(person(turn))),
                    }),
                    suggestion_limit: 5,
                })
                .await?;
        }
        Kind::List => {
            pb::insight_service_client::InsightServiceClient::new(channel.clone())
                .list_strategic_conversations(pb::ListStrategicConversationsRequest {
                    limit: 20,
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// One second's resident memory, seconds after the start of the soak.
type Sample = (f64, f64);

fn rss_now(pid: Option<u32>) -> Option<f64> {
    pid.and_then(resident_mib).map(|(rss, _peak)| rss)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), value| {
        (sum + value, count + 1)
    });
    (count > 0).then(|| sum / count as f64)
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let x_mean = mean(points.iter().map(|point| point.0))?;
    let y_mean = mean(points.iter().map(|point| point.1))?;
    let spread: f64 = points.iter().map(|point| (point.0 - x_mean).powi(2)).sum();
    if points.len() < 2 || spread <= 0.0 {
        return None;
    }
    let covariance: f64 = points
        .iter()
        .map(|point| (point.0 - x_mean) * (point.1 - y_mean))
        .sum();
    Some(covariance / spread)
}

struct Interval {
    start: f64,
    rss: Option<f64>,
}

fn format_ms(sorted: &[Duration], quantile: f64) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    format!("{:.1}", quantile_ms(sorted, quantile))
}

/// Runs the soak and prints its report; true when it passed (no error, no growth).
pub(crate) async fn run(channel: Channel, corpus: Corpus, options: &Options) -> bool {
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + options.duration;
    let pid = options.server_pid;
    let rss_at_start = rss_now(pid);
    println!(
        "soak: {} clients for {:.0}s, a line every {}s; {} conversations held back for ingest",
        options.clients,
        options.duration.as_secs_f64(),
        options.report_every.as_secs_f64(),
        corpus.spec.conversations - corpus.stored
    );
    let shared = Arc::new(Shared {
        corpus,
        half_time: started + options.duration / 2,
        turns: AtomicUsize::new(0),
        per_kind: Default::default(),
        next_new: AtomicUsize::new(0),
        revisions: AtomicUsize::new(0),
        interval: Mutex::default(),
        whole: Mutex::default(),
    });

    let sampler = {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                if let Some(rss) = rss_now(pid) {
                    samples
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((started.elapsed().as_secs_f64(), rss));
                }
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..options.clients.max(1) {
        let shared = Arc::clone(&shared);
        let channel = channel.clone();
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let turn = shared.turns.fetch_add(1, Ordering::Relaxed);
                let kind = MIX[turn % MIX.len()];
                let call_started = Instant::now();
                let result = one_call(&shared, &channel, kind).await;
                shared.record(kind, call_started.elapsed(), result.err().as_ref());
            }
        }));
    }

    let mut intervals = Vec::new();
    let mut interval_start = started;
    let mut number = 1u32;
    loop {
        let boundary = (started + options.report_every * number).min(deadline);
        tokio::time::sleep_until(boundary.into()).await;
        let last = boundary >= deadline;
        if last {
            for client in clients.drain(..) {
                let _ = client.await;
            }
        }
        let now = Instant::now();
        let seconds = now.duration_since(interval_start).as_secs_f64().max(1e-9);
        let from = interval_start.duration_since(started).as_secs_f64();
        let to = now.duration_since(started).as_secs_f64();
        let mut tally = std::mem::take(
            &mut *shared
                .interval
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let rss = mean(
            samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|sample| sample.0 >= from && sample.0 <= to)
                .map(|sample| sample.1),
        )
        .or_else(|| rss_now(pid));
        let mut line = format!("[{to:>6.1}s] total {:.1}/s", tally.calls() as f64 / seconds);
        for kind in KINDS {
            let times = &mut tally.times[kind.index()];
            times.sort();
            line.push_str(&format!(
                " | {} {:.1}/s p50 {} p99 {} ms",
                kind.name(),
                times.len() as f64 / seconds,
                format_ms(times, 0.50),
                format_ms(times, 0.99)
            ));
        }
        line.push_str(&format!(" | {}", tally.errors_line()));
        match rss {
            Some(rss) => line.push_str(&format!(" | RSS {rss:.0} MiB")),
            None => line.push_str(" | RSS unknown"),
        }
        println!("{line}");
        intervals.push(Interval { start: from, rss });
        interval_start = now;
        number += 1;
        if last {
            break;
        }
    }
    sampler.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let rss_at_end = rss_now(pid);

    let mut whole =
        std::mem::take(&mut *shared.whole.lock().unwrap_or_else(PoisonError::into_inner));
    println!();
    println!("| kind | calls | calls/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    for kind in KINDS {
        let times = &mut whole.times[kind.index()];
        times.sort();
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} |",
            kind.name(),
            times.len(),
            times.len() as f64 / elapsed,
            format_ms(times, 0.50),
            format_ms(times, 0.99),
            format_ms(times, 1.0),
            whole.errors[kind.index()]
        );
    }
    let calls = whole.calls();
    let errors = whole.errors();
    println!(
        "| total | {calls} | {:.1} | | | | {errors} |",
        calls as f64 / elapsed
    );
    println!(
        "{} of {calls} calls ({:.3}%)",
        whole.errors_line(),
        100.0 * errors as f64 / (calls.max(1)) as f64
    );
    for (code, message) in &whole.first_message {
        println!("first {code}: {message}");
    }
    let new_records = shared
        .next_new
        .load(Ordering::Relaxed)
        .min(shared.corpus.spec.conversations - shared.corpus.stored);
    println!(
        "ingested {new_records} new conversations and {} re-versions",
        shared.revisions.load(Ordering::Relaxed)
    );

    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let peak = samples
        .iter()
        .map(|sample| sample.1)
        .fold(None, |peak: Option<f64>, rss| {
            Some(peak.map_or(rss, |peak| peak.max(rss)))
        });
    let show = |rss: Option<f64>| rss.map_or("unknown".to_owned(), |rss| format!("{rss:.0} MiB"));
    println!(
        "server RSS: start {}, end {}, peak {} (one-second samples)",
        show(rss_at_start),
        show(rss_at_end),
        show(peak)
    );
    let memory = memory_verdict(&samples, &intervals, elapsed, options);
    let growth = memory == Memory::Growth;
    let passed = errors == 0 && !growth;
    println!(
        "soak {}",
        match (errors, memory) {
            (0, Memory::Steady) => "passed: no error, no memory growth".to_owned(),
            (0, Memory::NotJudged) => "passed: no error (memory not judged)".to_owned(),
            (0, Memory::Growth) => "failed: memory growth".to_owned(),
            (errors, Memory::Growth) => format!("failed: {errors} errors and memory growth"),
            (errors, _) => format!("failed: {errors} errors"),
        }
    );
    passed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memory {
    Steady,
    Growth,
    NotJudged,
}

/// Prints the memory verdict and returns it.
fn memory_verdict(
    samples: &[Sample],
    intervals: &[Interval],
    elapsed: f64,
    options: &Options,
) -> Memory {
    let half = elapsed / 2.0;
    let second_half: Vec<(f64, f64)> = samples
        .iter()
        .filter(|sample| sample.0 >= half)
        .map(|sample| (sample.0 / 60.0, sample.1))
        .collect();
    let later: Vec<f64> = intervals
        .iter()
        .filter(|interval| interval.start >= half - 1.0)
        .filter_map(|interval| interval.rss)
        .collect();
    if options.server_pid.is_none() {
        println!("memory: not judged (the server's pid is unknown; give --server-pid)");
        return Memory::NotJudged;
    }
    let (Some(per_minute), Some(level), [first, .., last]) = (
        slope(&second_half),
        mean(second_half.iter().map(|point| point.1)),
        later.as_slice(),
    ) else {
        println!(
            "memory: not judged (the second half must span two report intervals: --duration at least 4 × --report-every)"
        );
        return Memory::NotJudged;
    };
    let percent = 100.0 * per_minute / level.max(1e-9);
    let growth = percent > options.growth_threshold;
    println!(
        "memory: second half slope {per_minute:+.2} MiB/min ({percent:+.2}%/min of {level:.0} MiB), last / first interval of the second half {:.3}; {} (growth above {}%/min)",
        last / first.max(1e-9),
        if growth { "GROWTH" } else { "no growth" },
        options.growth_threshold
    );
    if growth {
        Memory::Growth
    } else {
        Memory::Steady
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_gradient() {
        let points: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 2.5 * x as f64)).collect();
        assert!((slope(&points).unwrap() - 2.5).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 2.0)]), None);
    }

    #[test]
    fn the_mix_is_ten_percent_ingest_and_thirty_scoring() {
        let count = |kind| MIX.iter().filter(|turn| **turn == kind).count();
        assert_eq!(
            KINDS.map(count),
            [1, 3, 3, 2, 1],
            "ingest, score, suggest, match, list"
        );
    }

    #[test]
    fn re_versions_change_the_body_and_first_reply_without_growing() {
        let thread = |text: &str| ScaledThread {
            id: "t1".into(),
            title: "title".into(),
            body: text.into(),
            tags: Vec::new(),
            author: None,
            created_at: 0,
            last_activity_at: 0,
            open: true,
            posts: Vec::new(),
        };
        let first = re_versioned(thread("body"), 1);
        let again = re_versioned(thread("body"), 2);
        assert_ne!(first.body, again.body);
        assert_eq!(first.body.len(), again.body.len());
    }
}
