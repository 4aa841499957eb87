//! The embedder against the reference implementation and against broken model folders.
//!
//! With the model fetched (`scripts/fetch-model.sh`; `scripts/test.sh` does it), the vectors must
//! match the ones sentence-transformers computed from the same files
//! (`fixtures/reference.json`, written by `fixtures/make_reference.py`). Without it those tests
//! say they are skipped; the tests of missing and corrupted files run everywhere.
//!
//! The model folder is `TRELLIS_MODEL_DIR`, else `models/all-minilm-l6-v2` under the repository.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trellis_core::semantic::{EmbedError, SentenceEmbedder, cosine, dot};
use trellis_semantic::{DIMENSION, MODEL_ID, MiniLm, Options};

fn model_dir() -> PathBuf {
    std::env::var_os("TRELLIS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-minilm-l6-v2")
        })
}

/// The model, loaded once for all tests; `None` (with a message) when its files are absent.
fn model(test: &str) -> Option<&'static MiniLm> {
    static MODEL: OnceLock<Option<MiniLm>> = OnceLock::new();
    let loaded = MODEL.get_or_init(|| {
        let dir = model_dir();
        if !dir.join("model.safetensors").is_file() {
            return None;
        }
        Some(MiniLm::load(&dir).expect("the fetched model loads"))
    });
    if loaded.is_none() {
        println!(
            "{test} skipped: no model at {} (run scripts/fetch-model.sh)",
            model_dir().display()
        );
    }
    loaded.as_ref()
}

#[derive(serde::Deserialize)]
struct Reference {
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    token_count: usize,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    let text = std::fs::read_to_string(&path).expect("the reference fixture reads");
    serde_json::from_str(&text).expect("the reference fixture parses")
}

fn max_abs_difference(left: &[f32], right: &[f32]) -> f32 {
    assert_eq!(left.len(), right.len());
    left.iter()
        .zip(right)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn embed_one(model: &MiniLm, text: &str) -> Vec<f32> {
    let mut vectors = model.embed(&[text]).expect("one text embeds");
    assert_eq!(vectors.len(), 1);
    vectors.remove(0)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let Some(model) = model("embeddings_match_sentence_transformers") else {
        return;
    };
    let reference = reference();
    assert_eq!(model.max_tokens(), reference.max_seq_length);
    let texts: Vec<&str> = reference
        .cases
        .iter()
        .map(|case| case.text.as_str())
        .collect();
    let vectors = model.embed(&texts).expect("the reference texts embed");
    assert_eq!(vectors.len(), reference.cases.len());
    for (case, vector) in reference.cases.iter().zip(&vectors) {
        let label = case.text.chars().take(40).collect::<String>();
        assert_eq!(vector.len(), DIMENSION, "{label:?}");
        assert_eq!(
            model.token_count(&case.text).expect("tokenises"),
            case.token_count,
            "word pieces of {label:?}"
        );
        let similarity = cosine(vector, &case.embedding);
        let difference = max_abs_difference(vector, &case.embedding);
        assert!(
            similarity > 1.0 - 1e-4 && difference < 1e-4,
            "{label:?}: cosine {similarity}, max abs difference {difference}"
        );
    }
}

#[test]
fn embeddings_have_unit_length() {
    let Some(model) = model("embeddings_have_unit_length") else {
        return;
    };
    let vectors = model
        .embed(&[
            "a qubit",
            "",
            "Grover's algorithm finds a marked item quadratically faster.",
        ])
        .expect("embeds");
    for vector in vectors {
        assert!((dot(&vector, &vector) - 1.0).abs() < 1e-5);
    }
}

#[test]
fn similar_sentences_score_higher_than_unrelated_ones() {
    let Some(model) = model("similar_sentences_score_higher_than_unrelated_ones") else {
        return;
    };
    let vectors = model
        .embed(&[
            "How do I apply a Hadamard gate to a qubit in Qiskit?",
            "Putting a qubit into superposition with the H gate in Qiskit",
            "Which error-correcting code tolerates the highest physical error rate?",
            "The surface code has a threshold of about one percent.",
            "My sourdough bread did not rise overnight.",
        ])
        .expect("embeds");
    let hadamard = dot(&vectors[0], &vectors[1]);
    let threshold = dot(&vectors[2], &vectors[3]);
    for unrelated in [
        dot(&vectors[0], &vectors[4]),
        dot(&vectors[1], &vectors[4]),
        dot(&vectors[2], &vectors[4]),
        dot(&vectors[3], &vectors[4]),
    ] {
        assert!(hadamard > unrelated + 0.2, "{hadamard} vs {unrelated}");
        assert!(threshold > unrelated + 0.2, "{threshold} vs {unrelated}");
    }
    assert!(hadamard > dot(&vectors[0], &vectors[3]));
}

#[test]
fn a_batch_embeds_like_its_texts_one_by_one() {
    let Some(model) = model("a_batch_embeds_like_its_texts_one_by_one") else {
        return;
    };
    let texts = [
        "short",
        "A somewhat longer sentence about variational quantum eigensolvers and their ansätze.",
        "",
        "Measurement collapses the state; repeated shots estimate the probabilities.",
        "short",
    ];
    let together = model.embed(&texts).expect("the batch embeds");
    for (text, vector) in texts.iter().zip(&together) {
        let alone = embed_one(model, text);
        let difference = max_abs_difference(vector, &alone);
        assert!(difference < 1e-5, "{text:?}: {difference}");
    }
    assert_eq!(
        together[0], together[4],
        "the same text in one batch embeds the same"
    );

    // Smaller batches than texts: the order of the answer is still the order of the texts.
    let dir = model_dir();
    let small_batches = MiniLm::load_with(
        &dir,
        Options {
            threads: 1,
            batch_size: 2,
            max_tokens: None,
        },
    )
    .expect("loads with small batches");
    let batched = small_batches
        .embed(&texts)
        .expect("embeds in batches of two");
    for (left, right) in together.iter().zip(&batched) {
        assert!(max_abs_difference(left, right) < 1e-5);
    }
}

#[test]
fn empty_inputs_and_texts_embed() {
    let Some(model) = model("empty_inputs_and_texts_embed") else {
        return;
    };
    assert!(model.embed(&[]).expect("no texts embed").is_empty());
    let empty = embed_one(model, "");
    assert_eq!(empty.len(), DIMENSION);
    assert!(empty.iter().all(|value| value.is_finite()));
    let whitespace = embed_one(model, " \n\t ");
    assert!(
        max_abs_difference(&empty, &whitespace) < 1e-6,
        "whitespace is no words"
    );
}

#[test]
fn long_texts_are_cut_at_the_models_length() {
    let Some(model) = model("long_texts_are_cut_at_the_models_length") else {
        return;
    };
    let paragraph = "Decoherence limits how long a superconducting qubit keeps its phase. ";
    let long = paragraph.repeat(40);
    assert_eq!(
        model.token_count(&long).expect("tokenises"),
        model.max_tokens()
    );
    let with_tail = format!("{long} Completely different words about baking bread at the end.");
    let cut = embed_one(model, &long);
    let cut_with_tail = embed_one(model, &with_tail);
    assert!(
        max_abs_difference(&cut, &cut_with_tail) < 1e-6,
        "what lies past the cut does not change the embedding"
    );
    // A megabyte of text embeds too, at the cost of tokenising it.
    let huge = paragraph.repeat(15_000);
    assert!(huge.len() > 1_000_000);
    let vector = embed_one(model, &huge);
    assert!(max_abs_difference(&vector, &cut) < 1e-5);
}

#[test]
fn a_shorter_cut_from_the_options_is_kept() {
    if model("a_shorter_cut_from_the_options_is_kept").is_none() {
        return;
    }
    let short = MiniLm::load_with(
        &model_dir(),
        Options {
            threads: 1,
            batch_size: 8,
            max_tokens: Some(32),
        },
    )
    .expect("loads with a 32-piece cut");
    assert_eq!(short.max_tokens(), 32);
    let long = "Qubits lose their phase to noise from the environment. ".repeat(20);
    assert_eq!(short.token_count(&long).expect("tokenises"), 32);
    let tail = format!("{long} A sentence about gardening that lies past the cut.");
    let vectors = short.embed(&[&long, &tail]).expect("embeds");
    assert!(max_abs_difference(&vectors[0], &vectors[1]) < 1e-6);
    let error = MiniLm::load_with(
        &model_dir(),
        Options {
            threads: 1,
            batch_size: 8,
            max_tokens: Some(2),
        },
    )
    .expect_err("a cut below 8 pieces is refused");
    assert!(error.to_string().contains("options.max_tokens"), "{error}");
}

#[test]
fn the_model_names_itself() {
    let Some(model) = model("the_model_names_itself") else {
        return;
    };
    assert_eq!(model.model_id(), MODEL_ID);
    assert_eq!(model.dimension(), DIMENSION);
    let as_trait: &dyn SentenceEmbedder = model;
    assert_eq!(as_trait.dimension(), 384);
}

#[test]
fn an_empty_folder_names_the_missing_file_and_the_fetch_command() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let error = MiniLm::load(dir.path()).expect_err("an empty folder has no model");
    assert!(matches!(error, EmbedError::MissingFile { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("scripts/fetch-model.sh"), "{message}");
    assert!(message.contains("lexical-only"), "{message}");
}

#[test]
fn a_corrupted_file_fails_its_checksum() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("config.json"), b"{\"hidden_size\": 384}")
        .expect("writes a config");
    let error = MiniLm::load(dir.path()).expect_err("a wrong config is refused");
    let EmbedError::ChecksumMismatch {
        path,
        expected,
        actual,
        ..
    } = &error
    else {
        panic!("expected a checksum mismatch, got {error:?}");
    };
    assert!(path.ends_with("config.json"));
    assert_eq!(
        expected.as_str(),
        trellis_semantic::manifest()["config.json"],
        "the expected sum is the committed one"
    );
    assert_ne!(expected, actual);
    let message = error.to_string();
    assert!(message.contains("does not match its checksum"), "{message}");
    assert!(message.contains("scripts/fetch-model.sh"), "{message}");
}

/// Copies the real model into a temporary folder, then breaks one file in it.
fn copy_of_model(source: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("a temporary folder");
    for name in trellis_semantic::manifest().keys() {
        let target = copy.path().join(name);
        std::fs::create_dir_all(target.parent().expect("has a parent")).expect("mkdir");
        std::fs::copy(source.join(name), &target).expect("copies a model file");
    }
    copy
}

#[test]
fn a_real_folder_missing_its_weights_or_with_flipped_bytes_is_refused() {
    if model("a_real_folder_missing_its_weights_or_with_flipped_bytes_is_refused").is_none() {
        return;
    }
    let copy = copy_of_model(&model_dir());
    MiniLm::load(copy.path()).expect("an exact copy loads");

    let weights = copy.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("reads the weights");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&weights, &bytes).expect("writes the flipped weights");
    let error = MiniLm::load(copy.path()).expect_err("one flipped bit is refused");
    assert!(
        matches!(&error, EmbedError::ChecksumMismatch { path, .. } if path.ends_with("model.safetensors")),
        "{error:?}"
    );

    std::fs::remove_file(&weights).expect("removes the weights");
    let error = MiniLm::load(copy.path()).expect_err("missing weights are refused");
    assert!(
        matches!(&error, EmbedError::MissingFile { path, .. } if path.ends_with("model.safetensors")),
        "{error:?}"
    );
}

#[test]
fn zero_threads_or_batch_size_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let error = MiniLm::load_with(
        dir.path(),
        Options {
            threads: 0,
            batch_size: 32,
            max_tokens: None,
        },
    )
    .expect_err("zero threads is refused");
    assert!(error.to_string().contains("options.threads"), "{error}");
}
