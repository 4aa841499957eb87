//! The Dense and Hybrid baselines reproduce `EVALUATION.md`'s table, every cell to three
//! decimals, on the smallest development dump (embedding a dump's texts on a CPU takes minutes;
//! `trellis eval` runs them on every dump, and the closing notes record that they reproduce
//! there too).
//!
//! Needs the model files (`scripts/fetch-model.sh`) and Python with `bm25s` (Hybrid fuses BM25);
//! without them the test says so and returns, except under `CI=true`, where it fails.

use std::path::PathBuf;

use trellis_core::semantic::SentenceEmbedder as _;
use trellis_eval::published::published;
use trellis_eval::{
    Dump, LabelStrategy, Protocol, Report, TextEmbedder, baselines, dense, evaluate,
};

const DUMP: &str = "sustainability";

fn shared_data() -> PathBuf {
    std::env::var_os("TRELLIS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        })
}

fn skip_or_fail(why: String) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {why}");
    }
    eprintln!("skipped: {why}");
}

struct MiniLm(trellis_semantic::MiniLm);

impl TextEmbedder for MiniLm {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.0.embed(texts).map_err(|error| error.to_string())
    }
}

/// Compares a report with one column of the published table; returns the mismatches.
fn mismatches(report: &Report, column: usize, name: &str) -> Vec<String> {
    let table = published(DUMP).expect("a published table");
    report
        .rows()
        .iter()
        .zip(table)
        .filter_map(|(row, expected)| {
            assert_eq!((row.task, row.metric), (expected.0, expected.1));
            let want = expected.2[column];
            match row.value {
                Some(got) if (got - want).abs() < 0.0005 + 1e-9 => None,
                got => Some(format!(
                    "{name} {} {}: got {got:?}, table {want:.3}",
                    row.task, row.metric
                )),
            }
        })
        .collect()
}

#[test]
fn dense_and_hybrid_reproduce_the_table() {
    let dir = shared_data().join("stackexchange").join(DUMP);
    if !dir.join("Posts.xml").exists() {
        eprintln!(
            "skipped: no dump at {} (set TRELLIS_SHARED_DATA)",
            dir.display()
        );
        return;
    }
    let model_dir = std::env::var_os("TRELLIS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/all-minilm-l6-v2"
            ))
        });
    let options = trellis_semantic::Options {
        threads: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        ..trellis_semantic::Options::default()
    };
    let model = match trellis_semantic::MiniLm::load_with(&model_dir, options) {
        Ok(model) => model,
        Err(error) => return skip_or_fail(format!("the model cannot be loaded: {error}")),
    };
    assert_eq!(
        model.max_tokens(),
        256,
        "sentence-transformers' max_seq_length"
    );
    if let Err(error) = baselines::bm25_available(&baselines::Bm25Options::default()) {
        return skip_or_fail(format!("the BM25 baseline cannot run: {error}"));
    }
    let dump = Dump::load(&dir).expect("the dump loads");
    let strategy = LabelStrategy::load(
        &shared_data()
            .join("strategies")
            .join(format!("{DUMP}.toml")),
    )
    .expect("the strategy loads");
    let protocol = Protocol::new(&dump, &strategy).expect("the protocol");

    let dense_rankings = dense::dense(&protocol, &MiniLm(model)).expect("Dense runs");
    let bm25 = baselines::bm25(&protocol).expect("BM25 runs");
    let hybrid = dense::hybrid(&bm25, &dense_rankings, &baselines::popularity(&protocol));
    let mut wrong = mismatches(&evaluate(&protocol, &dense_rankings), 3, "Dense");
    wrong.extend(mismatches(&evaluate(&protocol, &hybrid), 4, "Hybrid"));
    assert!(wrong.is_empty(), "{wrong:#?}");
}
