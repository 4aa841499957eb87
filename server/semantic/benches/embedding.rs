//! Embedding throughput of all-MiniLM-L6-v2 on the CPU, in texts per second, on real text from
//! the development dump: question titles (one sentence each) and answer paragraphs (a few
//! sentences, 300 to 1,200 characters of text), at batch sizes 1, 8 and 32.
//!
//! Beside it, in the same run, the lexical analyzer of the core (`trellis_core::text::Analyzer`)
//! tokenises and stems the same texts, so the printed ratio says how much dearer the semantic
//! tier is than the lexical one per text. Benchmarks report, they do not assert times.
//!
//! The model folder is `TRELLIS_MODEL_DIR`, else `models/all-minilm-l6-v2` under the repository
//! (`scripts/fetch-model.sh` fills it); the dump is read from `TRELLIS_SHARED_DATA`, else
//! `../shared/data` beside the workspace. Without either the benchmark says so and does nothing.
//! The model runs on its default thread count (all cores but one, at least one); set
//! `TRELLIS_EMBED_THREADS` to measure another.
//!
//! `cargo bench -p trellis-semantic` (add `-- --quick` for a faster, rougher run).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use trellis_core::semantic::SentenceEmbedder;
use trellis_core::text::Analyzer;
use trellis_eval::{Dump, PostType};
use trellis_semantic::{MiniLm, Options};

const BATCH_SIZES: [usize; 3] = [1, 8, 32];
/// Texts of each kind taken from the dump; every batch cycles through them.
const TEXTS_PER_KIND: usize = 256;

struct Fixture {
    model: MiniLm,
    analyzer: Analyzer,
    /// (kind, texts): "short" question titles and "paragraph" answer texts.
    kinds: Vec<(&'static str, Vec<String>)>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> Option<Fixture> {
    let model_dir = std::env::var_os("TRELLIS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/all-minilm-l6-v2"));
    let data = std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    let dump_dir = data.join("stackexchange/quantumcomputing");
    if !dump_dir.join("Posts.xml").is_file() {
        println!(
            "embedding bench skipped: no development dump at {} (set TRELLIS_SHARED_DATA)",
            dump_dir.display()
        );
        return None;
    }
    let mut options = Options::default();
    if let Some(threads) = std::env::var("TRELLIS_EMBED_THREADS")
        .ok()
        .and_then(|value| value.parse().ok())
    {
        options.threads = threads;
    }
    let model = match MiniLm::load_with(&model_dir, options) {
        Ok(model) => model,
        Err(error) => {
            println!("embedding bench skipped: {error}");
            return None;
        }
    };
    let dump = Dump::load(&dump_dir).expect("the development dump loads");
    let mut posts: Vec<_> = dump.posts.iter().collect();
    posts.sort_by_key(|post| post.id);
    let titles: Vec<String> = posts
        .iter()
        .filter(|post| post.post_type == PostType::Question)
        .filter_map(|post| post.title.clone())
        .take(TEXTS_PER_KIND)
        .collect();
    let paragraphs: Vec<String> = posts
        .iter()
        .filter(|post| post.post_type == PostType::Answer)
        .map(|post| trellis_eval::strip_html(&post.body))
        .filter(|text| (300..=1200).contains(&text.len()))
        .take(TEXTS_PER_KIND)
        .collect();
    let model_tokens = |texts: &[String]| -> f64 {
        let total: usize = texts
            .iter()
            .map(|text| model.token_count(text).unwrap_or(0))
            .sum();
        total as f64 / texts.len().max(1) as f64
    };
    println!(
        "embedding bench: {} titles ({:.0} word pieces each on average), {} answer paragraphs ({:.0} word pieces, cut at {}), {} model threads",
        titles.len(),
        model_tokens(&titles),
        paragraphs.len(),
        model_tokens(&paragraphs),
        model.max_tokens(),
        model.options().threads,
    );
    Some(Fixture {
        model,
        analyzer: Analyzer::new(),
        kinds: vec![("short", titles), ("paragraph", paragraphs)],
    })
}

/// The `index`-th batch of `size` texts, cycling through `texts`.
fn batch(texts: &[String], size: usize, index: usize) -> Vec<&str> {
    (0..size)
        .map(|offset| texts[(index * size + offset) % texts.len()].as_str())
        .collect()
}

/// Texts per second over one pass of all texts in batches of `size`, measured directly for the
/// summary lines (criterion's figures above them are the detailed ones).
fn rate(texts: &[String], size: usize, mut run: impl FnMut(&[&str])) -> f64 {
    let batches = texts.len().div_ceil(size).max(1);
    let started = Instant::now();
    for index in 0..batches {
        run(&batch(texts, size, index));
    }
    (batches * size) as f64 / started.elapsed().as_secs_f64()
}

fn lexical(analyzer: &Analyzer, texts: &[&str]) -> usize {
    texts.iter().map(|text| analyzer.tokens(text).len()).sum()
}

fn embedding(c: &mut Criterion) {
    let Some(fixture) = load() else {
        return;
    };
    for (kind, texts) in &fixture.kinds {
        if texts.is_empty() {
            println!("embedding bench: no {kind} texts in the dump");
            continue;
        }
        let mut group = c.benchmark_group(format!("embed/{kind}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(5));
        for size in BATCH_SIZES {
            group.throughput(Throughput::Elements(size as u64));
            let mut index = 0;
            group.bench_with_input(BenchmarkId::new("minilm", size), &size, |b, &size| {
                b.iter(|| {
                    index += 1;
                    black_box(
                        fixture
                            .model
                            .embed(&batch(texts, size, index))
                            .expect("embeds"),
                    )
                })
            });
            let mut index = 0;
            group.bench_with_input(BenchmarkId::new("lexical", size), &size, |b, &size| {
                b.iter(|| {
                    index += 1;
                    black_box(lexical(&fixture.analyzer, &batch(texts, size, index)))
                })
            });
        }
        group.finish();
    }

    println!("\nsummary, texts per second (one pass over all texts of a kind):");
    for (kind, texts) in &fixture.kinds {
        if texts.is_empty() {
            continue;
        }
        let lexical_rate = rate(texts, 32, |batch| {
            black_box(lexical(&fixture.analyzer, batch));
        });
        for size in BATCH_SIZES {
            let embed_rate = rate(texts, size, |batch| {
                black_box(fixture.model.embed(batch).expect("embeds"));
            });
            println!(
                "  {kind:>9} batch {size:>2}: embedding {embed_rate:>8.1}/s, lexical analysis {lexical_rate:>9.0}/s: embedding is {:.0}x slower",
                lexical_rate / embed_rate
            );
        }
    }
}

criterion_group!(benches, embedding);
criterion_main!(benches);
