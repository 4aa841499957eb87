//! The people recommendations at community scale: an engine built from the development dump
//! scaled up (`trellis_eval::scale`: real threads, posts and users copied with fresh keys,
//! shifted dates and recombined real sentences) to 10 %, 25 %, 50 % and 100 % of 100,000
//! conversations, 1,000,000 posts and 50,000 people, with `strategies/quantumcomputing.toml`.
//!
//! At each size it prints the build time, resident memory and the engine's live heap (counted
//! by the allocator, without what it keeps of freed memory), then the engine work behind the
//! two RPCs for sampled people (the most active members, occasional members, outsiders):
//! - `suggest_discussions`: what `SuggestDiscussions` asks of the engine (the person's profile
//!   query, the discussions to join, their convergence with each facet and the facets' shares);
//! - `match_person`: what `MatchPerson` asks of it (the lookup, the insight: convergence and
//!   interests, and five discussions to join).
//!
//! Each sampled person is asked once, in turn, as a fresh caller would be (p50/p99/max latency,
//! calls per second); criterion then times repeated calls. A table at the end shows how each
//! figure grows against the smallest size of the run. The fetching of stored text and the
//! quoting of evidence happen in the service over SQLite and are measured by the load generator
//! (`trellis-load`), not here. Benchmarks report, they do not assert times.
//!
//! Sizes: `TRELLIS_BENCH_SIZES` (default `10%,25%,50%,100%`; `full` is 100 %); people sampled
//! of each kind: `TRELLIS_BENCH_SAMPLE` (default 20). The data folder is
//! `TRELLIS_SHARED_DATA`, or `../shared/data` beside the workspace; without it the benchmark
//! says so and does nothing.
//!
//! `cargo bench -p trellis-core --bench people` (add `-- --quick` for a faster, rougher run;
//! `TRELLIS_BENCH_SIZES=0.2% cargo bench -p trellis-core --bench people -- --test` is the smoke
//! run).

use std::collections::HashSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use trellis_core::domain::{Conversation, Identity, Millis, Person, PlatformKind, Post, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::people::{LookupKey, PeopleSettings};
use trellis_eval::{Community, Dump, ScaleSpec};

const SOURCE: &str = "scaled";
/// People sampled of each kind, unless `TRELLIS_BENCH_SAMPLE` says otherwise.
const SAMPLE: usize = 20;

fn sample_size() -> usize {
    std::env::var("TRELLIS_BENCH_SAMPLE")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|value| *value > 0)
        .unwrap_or(SAMPLE)
}

fn shared_data() -> PathBuf {
    std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The system allocator, counting the bytes it holds for this process: the engine's live heap,
/// apart from what the allocator keeps of freed memory (which resident memory includes).
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Bytes the process holds on the heap now, in MiB.
fn live_heap_mib() -> f64 {
    ALLOCATOR.allocated() as f64 / (1024.0 * 1024.0)
}

/// Resident memory of this process as (current, peak), in MiB, from /proc/self/status.
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
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
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn sizes() -> Vec<ScaleSpec> {
    let text = std::env::var("TRELLIS_BENCH_SIZES").unwrap_or_else(|_| "10%,25%,50%,100%".into());
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            ScaleSpec::parse(part).unwrap_or_else(|| {
                panic!("TRELLIS_BENCH_SIZES: {part:?} is not a size; write sizes like 10%,full")
            })
        })
        .collect()
}

fn person_record(person: trellis_eval::ScaledPerson) -> Person {
    Person {
        key: RecordKey::new(SOURCE, person.id.as_str()),
        bio: person.bio,
        member: person.member,
        identities: vec![Identity {
            platform: "qa".into(),
            handle: person.id.clone(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Builds the engine as the service does: strategy first, then records as they arrive.
fn build(
    community: &Community,
    spec: ScaleSpec,
    strategy: &trellis_core::strategy::Strategy,
) -> Engine {
    let scaled = community.scaled(spec);
    let mut engine = Engine::new(Default::default());
    // As a server keeps it: judgments of where people stand are used for up to ten minutes
    // once the corpus moves on (nothing moves here after the build).
    engine.set_standing_max_age(Duration::from_secs(600));
    engine.set_strategy(1, strategy.clone());
    for person in scaled.people() {
        engine.upsert_person(&person_record(person), None);
    }
    for thread in scaled.threads() {
        engine.upsert_conversation(
            &Conversation {
                key: RecordKey::new(SOURCE, thread.id.as_str()),
                platform: Some(PlatformKind::QaForum),
                title: thread.title,
                body: thread.body,
                tags: thread.tags,
                author: thread.author,
                open: thread.open,
                created_at: Some(thread.created_at),
                last_activity_at: Some(thread.last_activity_at),
                ..Default::default()
            },
            None,
        );
        for post in thread.posts {
            engine.upsert_post(
                &Post {
                    key: RecordKey::new(SOURCE, post.id.as_str()),
                    conversation: thread.id.clone(),
                    author: post.author,
                    parent: Some(post.parent),
                    created_at: Some(post.created_at),
                    text: post.text,
                    reactions: 0,
                },
                None,
            );
        }
    }
    engine
}

/// The engine work of `SuggestDiscussions` (as `Trellis::suggest_discussions` does it).
fn suggest_discussions(engine: &Engine, person: &RecordKey) -> usize {
    let now: Millis = engine.people_clock(None);
    let profile = engine.profile_query(person);
    let join = engine.suggest_discussions(person, None, 10);
    let convergence = engine.convergence(person, Some(now));
    let shares = engine.facet_shares();
    profile.len() + join.len() + convergence.len() + shares.len()
}

/// The engine work of `MatchPerson` (as `Trellis::match_person` does it, by handle).
fn match_person(engine: &Engine, handle: &str) -> usize {
    let people = engine.people();
    let Some(person) = people.find(&LookupKey::handle(handle)).into_iter().next() else {
        return 0;
    };
    let now = engine.people_clock(None);
    let summary = people.summary(&person, now);
    let insight = engine.convergence(&person, Some(now)).len()
        + engine.interests(&person, 10).len()
        + people.records_of(&person).len()
        + usize::from(summary.is_some());
    insight + suggest_discussions_limit(engine, &person, 5)
}

fn suggest_discussions_limit(engine: &Engine, person: &RecordKey, limit: usize) -> usize {
    let now = engine.people_clock(None);
    engine.profile_query(person).len()
        + engine.suggest_discussions(person, None, limit).len()
        + engine.convergence(person, Some(now)).len()
        + engine.facet_shares().len()
}

#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    per_second: f64,
}

fn latency(mut times: Vec<Duration>) -> Latency {
    if times.is_empty() {
        return Latency::default();
    }
    times.sort();
    let total: Duration = times.iter().sum();
    let at = |quantile: f64| {
        let index = ((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1;
        times[index].as_secs_f64() * 1000.0
    };
    Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        per_second: times.len() as f64 / total.as_secs_f64().max(1e-9),
    }
}

#[derive(Debug, Clone, Default)]
struct Row {
    size: String,
    build_s: f64,
    standing_s: f64,
    standing_mib: f64,
    cold: Latency,
    rss_mib: f64,
    engine_mib: f64,
    suggest: Latency,
    matching: Latency,
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "people bench summary (first-call latency over sampled people; ratios against {})",
        rows.first().map_or("-", |row| row.size.as_str())
    );
    println!(
        "| size | build s | standing s | standing MiB | RSS MiB | engine heap MiB | cold suggest p50 ms | suggest p50 ms | suggest p99 ms | warm/cold p50 | suggest /s | match p50 ms | match p99 ms | match /s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3}x | {:.1} | {:.2} | {:.2} | {:.1} |",
            row.size,
            row.build_s,
            row.standing_s,
            row.standing_mib,
            row.rss_mib,
            row.engine_mib,
            row.cold.p50_ms,
            row.suggest.p50_ms,
            row.suggest.p99_ms,
            row.suggest.p50_ms / row.cold.p50_ms.max(1e-9),
            row.suggest.per_second,
            row.matching.p50_ms,
            row.matching.p99_ms,
            row.matching.per_second
        );
    }
    let Some(base) = rows.first() else {
        return;
    };
    println!();
    println!(
        "| size | build | standing | engine heap | suggest p50 | suggest p99 | match p50 | match p99 | suggest /s | match /s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let ratio = |value: f64, base: f64| value / base.max(1e-9);
    for row in rows {
        println!(
            "| {} | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            row.size,
            ratio(row.build_s, base.build_s),
            ratio(row.standing_s, base.standing_s),
            ratio(row.engine_mib, base.engine_mib),
            ratio(row.suggest.p50_ms, base.suggest.p50_ms),
            ratio(row.suggest.p99_ms, base.suggest.p99_ms),
            ratio(row.matching.p50_ms, base.matching.p50_ms),
            ratio(row.matching.p99_ms, base.matching.p99_ms),
            ratio(row.suggest.per_second, base.suggest.per_second),
            ratio(row.matching.per_second, base.matching.per_second),
        );
    }
}

fn people_bench(c: &mut Criterion) {
    let data = shared_data();
    let dump_dir = data.join("stackexchange/quantumcomputing");
    let strategy_path = data.join("strategies/quantumcomputing.toml");
    if !dump_dir.is_dir() || !strategy_path.is_file() {
        println!(
            "people bench skipped: no development dump at {} (set TRELLIS_SHARED_DATA)",
            data.display()
        );
        return;
    }
    let dump = Dump::load(&dump_dir).expect("the development dump loads");
    let community = Community::from_dump(&dump).expect("the dump has threads");
    drop(dump);
    let strategy_text = std::fs::read_to_string(&strategy_path).expect("the strategy file reads");
    let strategy =
        trellis_core::strategy::parse_strategy_toml(&strategy_text).expect("the strategy is valid");
    let (threads, replies, writers, outsiders) = community.real_counts();
    println!(
        "people bench: real community of {threads} threads, {replies} replies, {writers} writers, {outsiders} profiles only"
    );

    let mut rows = Vec::new();
    for spec in sizes() {
        let label = spec.label();
        let (rss_before, _) = resident_mib();
        let heap_before = live_heap_mib();
        let started = Instant::now();
        let engine = build(&community, spec, &strategy);
        let build_s = started.elapsed().as_secs_f64();
        let (rss, peak) = resident_mib();
        let engine_heap = live_heap_mib() - heap_before;
        println!(
            "[{label}] built {} conversations, {} posts, {} people in {build_s:.1}s; RSS {rss:.0} MiB (peak {peak:.0} MiB, {:.0} MiB more than before the build), engine heap {engine_heap:.0} MiB",
            spec.conversations,
            spec.posts,
            spec.people,
            rss - rss_before
        );
        let sample = community.scaled(spec).sample_people(sample_size());
        // The baseline of this run: first calls while nothing is judged yet, so each judges
        // where the person stands in the conversations it weighs (as every call did before the
        // standing index). One person of each kind; their judgments stay for later calls.
        let mut cold_times = Vec::new();
        for id in [&sample.active, &sample.occasional, &sample.outsiders]
            .into_iter()
            .filter_map(|people| people.first())
        {
            let key = RecordKey::new(SOURCE, id.as_str());
            let started = Instant::now();
            black_box(suggest_discussions(&engine, &key));
            cold_times.push(started.elapsed());
        }
        let cold = latency(cold_times);
        println!(
            "[{label}] before the standing index (one person of each kind, judging on request): suggest_discussions p50 {:.2} ms max {:.2} ms",
            cold.p50_ms, cold.max_ms
        );
        // The standing index, as the server's background worker fills it before requests
        // find it warm.
        let started = Instant::now();
        let mut judged = 0;
        let standing = loop {
            let progress = engine.refresh_standing(Duration::from_secs(5), Duration::ZERO);
            judged += progress.judged;
            if progress.pending == 0 {
                break progress;
            }
        };
        let standing_s = started.elapsed().as_secs_f64();
        let standing_mib = standing.bytes as f64 / (1024.0 * 1024.0);
        println!(
            "[{label}] standing index: {judged} open conversations judged in {standing_s:.1}s ({:.2} ms each), {standing_mib:.1} MiB",
            standing_s * 1000.0 / judged.max(1) as f64
        );
        let kinds = [
            ("active", &sample.active),
            ("occasional", &sample.occasional),
            ("outsider", &sample.outsiders),
        ];
        let mut suggest_all = Vec::new();
        let mut match_all = Vec::new();
        for (kind, people) in kinds {
            let mut suggest_times = Vec::new();
            let mut match_times = Vec::new();
            for id in people.iter() {
                let key = RecordKey::new(SOURCE, id.as_str());
                let started = Instant::now();
                black_box(suggest_discussions(&engine, &key));
                suggest_times.push(started.elapsed());
                let started = Instant::now();
                black_box(match_person(&engine, id));
                match_times.push(started.elapsed());
            }
            let suggest = latency(suggest_times.clone());
            let matching = latency(match_times.clone());
            println!(
                "[{label}] {kind:>10} x{}: suggest_discussions p50 {:.2} ms p99 {:.2} ms max {:.2} ms; match_person p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                people.len(),
                suggest.p50_ms,
                suggest.p99_ms,
                suggest.max_ms,
                matching.p50_ms,
                matching.p99_ms,
                matching.max_ms
            );
            suggest_all.extend(suggest_times);
            match_all.extend(match_times);
        }
        let suggest = latency(suggest_all);
        let matching = latency(match_all);
        let (rss_after, peak_after) = resident_mib();
        // What bounding the profile query costs in answers: each person's ten suggestions,
        // bounded (the default) and exact.
        let mut engine = engine;
        for (kind, people) in kinds {
            let chosen = |engine: &Engine, id: &String| -> HashSet<RecordKey> {
                engine
                    .suggest_discussions(&RecordKey::new(SOURCE, id.as_str()), None, 10)
                    .into_iter()
                    .map(|found| found.conversation)
                    .collect()
            };
            let bounded: Vec<HashSet<RecordKey>> =
                people.iter().map(|id| chosen(&engine, id)).collect();
            engine.set_profile_postings(usize::MAX);
            let (mut shared, mut total) = (0, 0);
            for (id, bounded) in people.iter().zip(&bounded) {
                let exact = chosen(&engine, id);
                shared += exact.intersection(bounded).count();
                total += exact.len();
            }
            engine.set_profile_postings(PeopleSettings::default().profile_postings);
            println!(
                "[{label}] {kind:>10}: bounded profile query keeps {shared} of the exact query's {total} suggestions ({:.1}%)",
                100.0 * shared as f64 / total.max(1) as f64
            );
        }
        println!(
            "[{label}] all: suggest_discussions p50 {:.2} ms p99 {:.2} ms, {:.1}/s; match_person p50 {:.2} ms p99 {:.2} ms, {:.1}/s; RSS {rss_after:.0} MiB (peak {peak_after:.0} MiB)",
            suggest.p50_ms,
            suggest.p99_ms,
            suggest.per_second,
            matching.p50_ms,
            matching.p99_ms,
            matching.per_second
        );
        rows.push(Row {
            size: label.clone(),
            build_s,
            standing_s,
            standing_mib,
            cold,
            rss_mib: rss_after,
            engine_mib: engine_heap,
            suggest,
            matching,
        });

        let mut group = c.benchmark_group(format!("people/{label}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for (kind, people) in kinds {
            let Some(id) = people.first() else {
                continue;
            };
            let key = RecordKey::new(SOURCE, id.as_str());
            group.bench_function(format!("suggest_discussions/{kind}"), |bencher| {
                bencher.iter(|| black_box(suggest_discussions(&engine, &key)));
            });
            group.bench_function(format!("match_person/{kind}"), |bencher| {
                bencher.iter(|| black_box(match_person(&engine, id)));
            });
        }
        group.finish();
        drop(engine);
    }
    print_table(&rows);
}

criterion_group!(benches, people_bench);
criterion_main!(benches);
