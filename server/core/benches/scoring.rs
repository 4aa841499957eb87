//! Scoring throughput on the development dump: an engine built from the history threads of
//! `stackexchange/quantumcomputing` (questions as conversations, answers and comments as posts)
//! with `strategies/quantumcomputing.toml`, scoring the test threads' title and body as raw
//! texts, in conversations per second.
//!
//! Beside it, the BM25 baseline library (`bm25s`, Python) indexes the same corpus and scores the
//! same test-thread texts against the six facet queries; both figures and their ratio are
//! printed. Benchmarks report, they do not assert times.
//!
//! The data folder is `TRELLIS_SHARED_DATA`, or `../shared/data` beside the workspace; without
//! it the benchmark says so and does nothing.
//!
//! `cargo bench -p trellis-core --bench scoring` (add `-- --quick` for a faster, rougher run).

use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trellis_core::domain::{Conversation, Post, RecordKey};
use trellis_core::engine::{Engine, TextPart};
use trellis_eval::{Dump, ItemKind, LabelStrategy, Protocol};

struct Fixture {
    engine: Engine,
    /// Test threads as (title, body).
    texts: Vec<(String, String)>,
    /// History threads' text, for the BM25 side: question, answers and comments joined.
    corpus: Vec<String>,
    /// The facets' BM25 queries, as the evaluation's baseline writes them.
    queries: Vec<String>,
}

fn shared_data() -> PathBuf {
    std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn load() -> Option<Fixture> {
    let data = shared_data();
    let dump_dir = data.join("stackexchange/quantumcomputing");
    let strategy_path = data.join("strategies/quantumcomputing.toml");
    if !dump_dir.is_dir() || !strategy_path.is_file() {
        println!(
            "scoring bench skipped: no development dump at {} (set TRELLIS_SHARED_DATA)",
            data.display()
        );
        return None;
    }
    let started = Instant::now();
    let dump = Dump::load(&dump_dir).expect("the development dump loads");
    let labels = LabelStrategy::load(&strategy_path).expect("the strategy's labels load");
    let protocol = Protocol::new(&dump, &labels).expect("the protocol splits the dump");
    let strategy_text = std::fs::read_to_string(&strategy_path).expect("the strategy file reads");
    let strategy =
        trellis_core::strategy::parse_strategy_toml(&strategy_text).expect("the strategy is valid");

    let mut engine = Engine::new(Default::default());
    let mut threads: std::collections::BTreeMap<i64, String> = std::collections::BTreeMap::new();
    for item in protocol.history_items() {
        let Some(thread) = item.thread_id else {
            continue;
        };
        let text = threads.entry(thread).or_default();
        text.push_str(&item.text);
        text.push('\n');
        match item.kind {
            ItemKind::Question => engine.upsert_conversation(
                &Conversation {
                    key: RecordKey::new("dump", format!("q{}", item.id)),
                    body: item.text.clone(),
                    open: true,
                    ..Default::default()
                },
                None,
            ),
            ItemKind::Answer | ItemKind::Comment => engine.upsert_post(
                &Post {
                    key: RecordKey::new(
                        "dump",
                        match item.kind {
                            ItemKind::Answer => format!("a{}", item.id),
                            _ => format!("c{}", item.id),
                        },
                    ),
                    conversation: format!("q{thread}"),
                    text: item.text.clone(),
                    ..Default::default()
                },
                None,
            ),
        }
    }
    engine.set_strategy(1, strategy);
    engine.recompile();
    let texts: Vec<(String, String)> = protocol
        .test_threads()
        .iter()
        .map(|thread| (thread.title.clone(), thread.body.clone()))
        .collect();
    println!(
        "scoring bench: {} history conversations indexed, {} test threads, loaded in {:.1}s",
        engine.conversation_count(),
        texts.len(),
        started.elapsed().as_secs_f64()
    );
    Some(Fixture {
        engine,
        texts,
        corpus: threads.into_values().collect(),
        queries: protocol
            .facets()
            .iter()
            .map(|facet| facet.query_text())
            .collect(),
    })
}

/// What a suggestion's evidence does per thread: analyze the title and body once, then explain
/// them for every facet of the strategy. Returns the quoted sentences' total length.
fn explain_all(engine: &Engine, texts: &[(String, String)]) -> usize {
    let facets: Vec<String> = engine
        .model()
        .map(|model| model.facets.iter().map(|facet| facet.id.clone()).collect())
        .unwrap_or_default();
    let explainers: Vec<_> = facets
        .iter()
        .filter_map(|facet| engine.facet_explainer(facet))
        .collect();
    texts
        .iter()
        .map(|(title, body)| {
            let parts = engine.analyze(&[
                TextPart {
                    location: "title",
                    text: title,
                },
                TextPart {
                    location: "body",
                    text: body,
                },
            ]);
            explainers
                .iter()
                .map(|explainer| explainer.explain(&parts).sentence.len())
                .sum::<usize>()
        })
        .sum()
}

fn score_all(engine: &Engine, texts: &[(String, String)]) -> f32 {
    texts
        .iter()
        .map(|(title, body)| {
            engine
                .score_text(title, body)
                .map_or(0.0, |score| score.overall)
        })
        .sum()
}

/// Conversations per second of Trellis, measured directly over a few passes (criterion's
/// figures are the detailed ones; this one is for the side-by-side line).
fn trellis_rate(fixture: &Fixture) -> f64 {
    let passes = 3;
    let started = Instant::now();
    for _ in 0..passes {
        black_box(score_all(&fixture.engine, &fixture.texts));
    }
    (passes * fixture.texts.len()) as f64 / started.elapsed().as_secs_f64()
}

const BM25S_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
import bm25s

data = json.load(sys.stdin)
corpus, texts, queries = data["corpus"], data["texts"], data["queries"]
started = time.perf_counter()
# A text is scored against a facet query the way the evaluation's BM25 baseline does: the text
# is a document of an index over the corpus, and the query's scores are read off for it.
tokens = bm25s.tokenize(corpus + texts, stopwords="en", show_progress=False)
model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
model.index(tokens, show_progress=False)
indexed = time.perf_counter() - started
query_tokens = [bm25s.tokenize([q], stopwords="en", show_progress=False, return_ids=False)[0] for q in queries]
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    total = 0.0
    for query in query_tokens:
        scores = np.asarray(model.get_scores(query))
        total += float(scores[len(corpus):].sum())
    best = min(best, time.perf_counter() - started)
print(json.dumps({
    "texts": len(texts),
    "index_seconds": indexed,
    "score_seconds": best,
    "texts_per_second": len(texts) / best,
    "texts_per_second_with_indexing": len(texts) / (best + indexed),
}))
"#;

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.map(json_string).collect();
    format!("[{}]", items.join(","))
}

/// Runs the bm25s side; `None` (with a message) when Python or bm25s is missing.
fn bm25s_rate(fixture: &Fixture) -> Option<(f64, String)> {
    let mut child = match Command::new("python3")
        .args(["-c", BM25S_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            println!("bm25s comparison skipped: cannot run python3 ({error})");
            return None;
        }
    };
    let texts: Vec<String> = fixture
        .texts
        .iter()
        .map(|(title, body)| format!("{title}\n{body}"))
        .collect();
    let input = format!(
        "{{\"corpus\":{},\"texts\":{},\"queries\":{}}}",
        json_list(fixture.corpus.iter().map(String::as_str)),
        json_list(texts.iter().map(String::as_str)),
        json_list(fixture.queries.iter().map(String::as_str)),
    );
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!(
            "bm25s comparison skipped: {}",
            stderr.lines().last().unwrap_or("python3 failed")
        );
        return None;
    }
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let rate = line
        .split("\"texts_per_second\": ")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|value| value.trim().parse::<f64>().ok())?;
    Some((rate, line))
}

fn scoring(c: &mut Criterion) {
    let Some(fixture) = load() else {
        return;
    };
    let mut group = c.benchmark_group("score_text");
    group.throughput(Throughput::Elements(fixture.texts.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("test_threads", |b| {
        b.iter(|| black_box(score_all(&fixture.engine, &fixture.texts)))
    });
    group.bench_function("explain_test_threads", |b| {
        b.iter(|| black_box(explain_all(&fixture.engine, &fixture.texts)))
    });
    group.finish();

    // Evidence against scoring, in the same run and interleaved, the best pass of each: the
    // figure to compare across builds on a shared machine.
    let pass = |run: &dyn Fn()| {
        let started = Instant::now();
        run();
        fixture.texts.len() as f64 / started.elapsed().as_secs_f64()
    };
    let (mut scored, mut explained) = (0.0f64, 0.0f64);
    for _ in 0..7 {
        scored = scored.max(pass(&|| {
            black_box(score_all(&fixture.engine, &fixture.texts));
        }));
        explained = explained.max(pass(&|| {
            black_box(explain_all(&fixture.engine, &fixture.texts));
        }));
    }
    println!(
        "Trellis evidence (analyze once, explain every facet): {explained:.0} conversations/s, {:.2}x the time of scoring them ({scored:.0}/s)",
        scored / explained
    );

    let trellis = trellis_rate(&fixture);
    println!(
        "Trellis score_text: {trellis:.0} conversations/s (6 facets each, with classification)"
    );
    match bm25s_rate(&fixture) {
        Some((bm25s, details)) => {
            println!("bm25s get_scores over the 6 facet queries: {bm25s:.0} conversations/s");
            println!("  bm25s details: {details}");
            println!("Trellis / bm25s: {:.2}x", trellis / bm25s);
        }
        None => println!("only Trellis was measured"),
    }
}

criterion_group!(benches, scoring);
criterion_main!(benches);
