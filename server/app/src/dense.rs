//! The sentence embedder of the evaluation's Dense baseline: all-MiniLM-L6-v2 as
//! sentence-transformers runs it (the first 256 word pieces, mean pooling, L2-normalised), from
//! the same checked model files as the semantic tier, on every core (the baselines run after the
//! server has ranked).
//!
//! Embedding a development dump takes minutes on a CPU, and the texts do not change between runs,
//! so vectors can be kept in a cache folder: one file per model, a sequence of records (the
//! sha256 of the text, then the vector as little-endian `f32`s), appended as texts are embedded
//! and read whole at start. A damaged tail (an interrupted run) is ignored.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use trellis_core::semantic::SentenceEmbedder as _;

type TextKey = [u8; 32];

#[derive(Debug, Clone)]
pub struct DenseEmbedder {
    model: Arc<trellis_semantic::MiniLm>,
    cache: Arc<Mutex<HashMap<TextKey, Vec<f32>>>>,
    cache_file: Option<PathBuf>,
}

fn key_of(text: &str) -> TextKey {
    Sha256::digest(text.as_bytes()).into()
}

impl DenseEmbedder {
    /// Loads the model (checked against its manifest) and, with `cache_dir`, the vectors kept
    /// there for it.
    pub fn load(model_dir: &Path, cache_dir: Option<&Path>) -> anyhow::Result<DenseEmbedder> {
        let options = trellis_semantic::Options {
            threads: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            ..trellis_semantic::Options::default()
        };
        let model = trellis_semantic::MiniLm::load_with(model_dir, options)?;
        let dimension = model.dimension();
        let mut cache = HashMap::new();
        let cache_file = match cache_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|error| {
                    anyhow::anyhow!(
                        "--embedding-cache {}: cannot create the folder: {error}",
                        dir.display()
                    )
                })?;
                let file = dir.join(format!(
                    "{}-{dimension}.vectors",
                    model.model_id().replace('/', "_")
                ));
                cache = read_cache(&file, dimension);
                Some(file)
            }
            None => None,
        };
        Ok(DenseEmbedder {
            model: Arc::new(model),
            cache: Arc::new(Mutex::new(cache)),
            cache_file,
        })
    }

    fn append_to_cache(&self, records: &[(TextKey, Vec<f32>)]) -> std::io::Result<()> {
        let Some(file) = &self.cache_file else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for (key, vector) in records {
            bytes.extend_from_slice(key);
            for value in vector {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?
            .write_all(&bytes)
    }
}

/// The records of a cache file; whatever follows the last whole record is ignored.
fn read_cache(file: &Path, dimension: usize) -> HashMap<TextKey, Vec<f32>> {
    let mut bytes = Vec::new();
    if std::fs::File::open(file)
        .and_then(|mut opened| opened.read_to_end(&mut bytes))
        .is_err()
    {
        return HashMap::new();
    }
    let record = 32 + 4 * dimension;
    bytes
        .chunks_exact(record)
        .map(|chunk| {
            let mut key = [0u8; 32];
            key.copy_from_slice(&chunk[..32]);
            let vector = chunk[32..]
                .chunks_exact(4)
                .map(|value| f32::from_le_bytes([value[0], value[1], value[2], value[3]]))
                .collect();
            (key, vector)
        })
        .collect()
}

impl trellis_eval::TextEmbedder for DenseEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let keys: Vec<TextKey> = texts.iter().map(|text| key_of(text)).collect();
        let missing: Vec<usize> = {
            let cache = self.cache.lock().map_err(|error| error.to_string())?;
            (0..texts.len())
                .filter(|index| !cache.contains_key(&keys[*index]))
                .collect()
        };
        if !missing.is_empty() {
            eprintln!(
                "Dense baseline: embedding {} texts ({} cached)",
                missing.len(),
                texts.len() - missing.len()
            );
            let started = std::time::Instant::now();
            let mut fresh = Vec::with_capacity(missing.len());
            for chunk in missing.chunks(512) {
                let batch: Vec<&str> = chunk.iter().map(|index| texts[*index]).collect();
                let vectors = self
                    .model
                    .embed(&batch)
                    .map_err(|error| error.to_string())?;
                let records: Vec<(TextKey, Vec<f32>)> = chunk
                    .iter()
                    .map(|index| keys[*index])
                    .zip(vectors)
                    .collect();
                if let Err(error) = self.append_to_cache(&records) {
                    eprintln!("Dense baseline: cannot keep vectors in the cache: {error}");
                }
                fresh.extend(records);
            }
            eprintln!(
                "Dense baseline: {} texts embedded in {:.1}s",
                missing.len(),
                started.elapsed().as_secs_f64()
            );
            let mut cache = self.cache.lock().map_err(|error| error.to_string())?;
            cache.extend(fresh);
        }
        let cache = self.cache.lock().map_err(|error| error.to_string())?;
        keys.iter()
            .map(|key| {
                cache
                    .get(key)
                    .cloned()
                    .ok_or_else(|| "a vector went missing from the cache".to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_reads_whole_records_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model-2.vectors");
        let mut bytes = Vec::new();
        for (byte, values) in [(1u8, [0.5f32, -1.0]), (2u8, [2.0, 3.0])] {
            bytes.extend_from_slice(&[byte; 32]);
            for value in values {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&[9u8; 20]);
        std::fs::write(&file, &bytes).unwrap();
        let cache = read_cache(&file, 2);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache[&[1u8; 32]], vec![0.5, -1.0]);
        assert_eq!(cache[&[2u8; 32]], vec![2.0, 3.0]);
        assert!(read_cache(&dir.path().join("absent"), 2).is_empty());
    }
}
