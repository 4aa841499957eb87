//! The semantic tier's seam: the [`SentenceEmbedder`] trait the engine calls, its error type, and
//! the similarity of two embeddings.
//!
//! The engine owns the trait so that it stays free of any neural-network runtime: the
//! `trellis-semantic` crate implements it with a real model on the CPU, and the service wires
//! that implementation in when the model files are present. Without them the engine runs
//! lexical-only, so nothing here may assume an embedder exists.

/// Turns texts into sentence embeddings: one vector per text, L2-normalised, so that the dot
/// product of two of them is their cosine similarity.
pub trait SentenceEmbedder: Send + Sync + std::fmt::Debug {
    /// The model's name, e.g. "sentence-transformers/all-MiniLM-L6-v2"; stored beside the
    /// vectors so that vectors of different models are never compared.
    fn model_id(&self) -> &str;

    /// The languages whose meaning the model reads (ISO 639-1 codes); texts in others are
    /// found by their words only.
    fn languages(&self) -> &[&'static str];

    /// The length of every vector [`SentenceEmbedder::embed`] returns.
    fn dimension(&self) -> usize;

    /// L2-normalised sentence embeddings, one per text, in the order of `texts`. An empty text
    /// gets a valid vector too (the model's embedding of no words), never an error.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Why an embedder could not be built or could not embed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is absent; the message names it and the set-up command that fetches it.
    #[error("model file {path} is missing: {fix}")]
    MissingFile { path: String, fix: String },
    /// A model file is present but is not the one the checksum manifest names.
    #[error(
        "model file {path} does not match its checksum (expected sha256 {expected}, found {actual}): {fix}"
    )]
    ChecksumMismatch {
        path: String,
        expected: String,
        actual: String,
        fix: String,
    },
    /// A model file is present and matches, but could not be read or parsed.
    #[error("model file {path} could not be loaded: {reason}")]
    InvalidModel { path: String, reason: String },
    /// The model failed while tokenising or running; carries the runtime's own message.
    #[error("embedding failed: {0}")]
    Inference(String),
}

/// Dot product of two vectors; for L2-normalised embeddings this is their cosine similarity.
/// Vectors of different lengths come from different models and have no similarity: 0.
pub fn dot(left: &[f32], right: &[f32]) -> f32 {
    if left.len() != right.len() {
        return 0.0;
    }
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

/// Cosine similarity of two vectors of any length, in [-1, 1]; 0 when either is all zeros or
/// their lengths differ.
pub fn cosine(left: &[f32], right: &[f32]) -> f32 {
    if left.len() != right.len() {
        return 0.0;
    }
    let norms = dot(left, left).sqrt() * dot(right, right).sqrt();
    if norms == 0.0 {
        return 0.0;
    }
    (dot(left, right) / norms).clamp(-1.0, 1.0)
}

/// Scales `vector` to unit length in place; an all-zero vector stays as it is.
pub fn normalize(vector: &mut [f32]) {
    let norm = dot(vector, vector).sqrt();
    if norm > 0.0 {
        for value in vector.iter_mut() {
            *value /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_opposite_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn cosine_of_zero_or_mismatched_vectors_is_zero() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0, 0.0], &[1.0, 0.0, 0.0]), 0.0);
        assert_eq!(dot(&[1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_direction() {
        let mut vector = vec![3.0, 4.0];
        normalize(&mut vector);
        assert!((vector[0] - 0.6).abs() < 1e-6 && (vector[1] - 0.8).abs() < 1e-6);
        let mut zeros = vec![0.0; 3];
        normalize(&mut zeros);
        assert_eq!(zeros, vec![0.0; 3]);
    }

    #[test]
    fn error_messages_name_the_file_and_the_fix() {
        let error = EmbedError::MissingFile {
            path: "models/x/model.safetensors".into(),
            fix: "run scripts/fetch-model.sh".into(),
        };
        let message = error.to_string();
        assert!(
            message.contains("model.safetensors") && message.contains("scripts/fetch-model.sh")
        );
    }
}
