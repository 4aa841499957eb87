//! The semantic side of the corpus: one sentence embedding per conversation (its title and the
//! opening of its body), kept beside the lexical index so that "conversations like this one"
//! can be found by meaning as well as by shared words, and the two lists fused.
//!
//! The engine never runs a model. It says which conversations need a vector (their text is new
//! or changed since it was embedded, compared through a hash of the exact text embedded), and
//! takes vectors that the service computed off the request path. Until a vector arrives, a
//! conversation is found lexically only; nothing waits for the model.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use crate::domain::{Asset, Conversation, RecordKey};

/// The most characters of a conversation that are embedded: its title and the opening of its
/// body. The model keeps only its first word pieces anyway; cutting here bounds tokenising.
pub const EMBEDDED_CHARS: usize = 2_000;

/// How semantic similarity joins lexical similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemanticSettings {
    /// Share of the fused similarity that comes from meaning, in [0, 1]; the rest comes from
    /// shared words. Half and half: neither signal is trusted over the other by default.
    pub weight: f32,
    /// How many of the nearest conversations by meaning join the lexical candidates.
    pub candidates: usize,
}

impl Default for SemanticSettings {
    fn default() -> Self {
        Self {
            weight: 0.5,
            candidates: 200,
        }
    }
}

/// The text of a conversation that is embedded: title, then the opening of the body.
pub fn embedding_text(conversation: &Conversation) -> String {
    title_and_opening(&conversation.title, &conversation.body)
}

/// The text of an asset that is embedded: title, then the opening of its text, as for a
/// conversation.
pub fn asset_embedding_text(asset: &Asset) -> String {
    title_and_opening(&asset.title, &asset.text)
}

fn title_and_opening(title: &str, body: &str) -> String {
    let mut text = String::with_capacity((title.len() + body.len() + 1).min(EMBEDDED_CHARS + 4));
    text.push_str(title.trim());
    let body = body.trim();
    if !body.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(body);
    }
    if text.len() > EMBEDDED_CHARS {
        let mut cut = EMBEDDED_CHARS;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// What a vector embeds: a conversation or an asset. Their keys may coincide (an asset can be
/// an earlier thread kept under the thread's own reference), so each has its own vectors.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Embedded {
    #[default]
    Conversation,
    Asset,
}

impl Embedded {
    /// Both kinds, in the order the service embeds them.
    pub const ALL: [Embedded; 2] = [Embedded::Conversation, Embedded::Asset];

    pub fn as_str(self) -> &'static str {
        match self {
            Embedded::Conversation => "conversation",
            Embedded::Asset => "asset",
        }
    }
}

/// A stable fingerprint of an embedded text, stored with its vector: a vector is used only while
/// the conversation's text still hashes the same.
pub fn text_hash(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// One stored embedding: whose it is, the hash of the text it embeds, and the vector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Embedding {
    pub key: RecordKey,
    pub text_hash: u64,
    pub vector: Vec<f32>,
}

/// Conversation embeddings of one model, and which conversations still need one.
#[derive(Debug, Default)]
pub struct SemanticIndex {
    /// The model whose vectors these are; `None` while the semantic tier is off.
    model: Option<(String, usize)>,
    /// The hash of each conversation's current text, while the tier is on.
    expected: HashMap<RecordKey, u64>,
    /// Conversations whose current text has no vector yet, in key order (stable batches).
    pending: BTreeSet<RecordKey>,
    slots: HashMap<RecordKey, usize>,
    keys: Vec<RecordKey>,
    hashes: Vec<u64>,
    /// Row-major, `keys.len() * dimension`, each row L2-normalised.
    vectors: Vec<f32>,
}

impl SemanticIndex {
    /// Turns the tier on for `model_id`'s vectors of `dimension`, before the corpus is loaded:
    /// only conversations noted while the tier is on are tracked. Vectors of another model are
    /// dropped and the conversations they embedded become pending.
    pub fn enable(&mut self, model_id: &str, dimension: usize) {
        if self
            .model
            .as_ref()
            .is_some_and(|(id, dim)| id == model_id && *dim == dimension)
        {
            return;
        }
        self.model = Some((model_id.to_owned(), dimension));
        self.slots.clear();
        self.keys.clear();
        self.hashes.clear();
        self.vectors.clear();
        self.pending = self.expected.keys().cloned().collect();
    }

    /// The model and dimension while the tier is on.
    pub fn model(&self) -> Option<(&str, usize)> {
        self.model.as_ref().map(|(id, dim)| (id.as_str(), *dim))
    }

    pub fn is_enabled(&self) -> bool {
        self.model.is_some()
    }

    /// Notes a conversation's current text. It becomes pending unless its vector embeds exactly
    /// this text. While the tier is off this costs nothing and nothing is kept.
    pub fn note(&mut self, conversation: &Conversation) {
        if self.model.is_some() {
            self.note_text(&conversation.key, &embedding_text(conversation));
        }
    }

    /// Notes an asset's current text, as [`note`](Self::note) does a conversation's.
    pub fn note_asset(&mut self, asset: &Asset) {
        if self.model.is_some() {
            self.note_text(&asset.key, &asset_embedding_text(asset));
        }
    }

    /// Notes the text embedded for `key`: pending unless its vector embeds exactly this text.
    fn note_text(&mut self, key: &RecordKey, text: &str) {
        let hash = text_hash(text);
        self.expected.insert(key.clone(), hash);
        if self
            .slots
            .get(key)
            .is_some_and(|slot| self.hashes[*slot] == hash)
        {
            self.pending.remove(key);
        } else {
            self.pending.insert(key.clone());
        }
    }

    /// Forgets a conversation and its vector.
    pub fn remove(&mut self, key: &RecordKey) {
        self.expected.remove(key);
        self.pending.remove(key);
        self.remove_vector(key);
    }

    fn remove_vector(&mut self, key: &RecordKey) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        let dimension = self.dimension();
        let last = self.keys.len() - 1;
        if slot != last {
            self.keys.swap(slot, last);
            self.hashes.swap(slot, last);
            let (head, tail) = self.vectors.split_at_mut(last * dimension);
            head[slot * dimension..(slot + 1) * dimension].copy_from_slice(&tail[..dimension]);
            self.slots.insert(self.keys[slot].clone(), slot);
        }
        self.keys.pop();
        self.hashes.pop();
        self.vectors.truncate(last * dimension);
    }

    fn dimension(&self) -> usize {
        self.model.as_ref().map_or(0, |(_, dim)| *dim)
    }

    /// Takes a vector if it embeds the conversation's current text; returns whether it did. A
    /// vector for a text that has changed since, or of the wrong length, is refused.
    pub fn insert(&mut self, embedding: Embedding) -> bool {
        let dimension = self.dimension();
        if dimension == 0
            || embedding.vector.len() != dimension
            || self.expected.get(&embedding.key) != Some(&embedding.text_hash)
        {
            return false;
        }
        self.pending.remove(&embedding.key);
        match self.slots.get(&embedding.key) {
            Some(&slot) => {
                self.hashes[slot] = embedding.text_hash;
                self.vectors[slot * dimension..(slot + 1) * dimension]
                    .copy_from_slice(&embedding.vector);
            }
            None => {
                self.slots.insert(embedding.key.clone(), self.keys.len());
                self.keys.push(embedding.key);
                self.hashes.push(embedding.text_hash);
                self.vectors.extend_from_slice(&embedding.vector);
            }
        }
        true
    }

    /// Up to `limit` conversations that need a vector, in key order.
    pub fn pending(&self, limit: usize) -> Vec<RecordKey> {
        self.pending.iter().take(limit).cloned().collect()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// How many conversations have a vector for their current text.
    pub fn embedded_count(&self) -> usize {
        self.keys.len()
    }

    /// A conversation's vector, while it embeds the current text.
    pub fn vector(&self, key: &RecordKey) -> Option<&[f32]> {
        let dimension = self.dimension();
        let slot = *self.slots.get(key)?;
        if self.pending.contains(key) {
            return None;
        }
        Some(&self.vectors[slot * dimension..(slot + 1) * dimension])
    }

    /// The cosine similarity of `query` to every conversation whose vector is current, in no
    /// particular order.
    pub fn similarities(&self, query: &[f32]) -> Vec<f32> {
        self.similarities_by_key(query)
            .into_iter()
            .map(|(_, cosine)| cosine)
            .collect()
    }

    /// The cosine similarity of `query` to every item whose vector is current, with its key,
    /// in no particular order.
    pub fn similarities_by_key(&self, query: &[f32]) -> Vec<(&RecordKey, f32)> {
        let dimension = self.dimension();
        if dimension == 0 || query.len() != dimension {
            return Vec::new();
        }
        self.vectors
            .chunks_exact(dimension)
            .zip(&self.keys)
            .filter(|(_, key)| !self.pending.contains(*key))
            .map(|(row, key)| (key, crate::semantic::dot(row, query)))
            .collect()
    }

    /// The `limit` conversations nearest to `query` by cosine similarity, best first (ties by
    /// key), without `exclude` and without those whose vector is out of date.
    pub fn nearest(
        &self,
        query: &[f32],
        exclude: Option<&RecordKey>,
        limit: usize,
    ) -> Vec<(RecordKey, f32)> {
        let dimension = self.dimension();
        if dimension == 0 || query.len() != dimension || limit == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(dimension)
            .enumerate()
            .map(|(slot, row)| (slot, crate::semantic::dot(row, query)))
            .filter(|(slot, _)| {
                let key = &self.keys[*slot];
                Some(key) != exclude && !self.pending.contains(key)
            })
            .collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.keys[a.0].cmp(&self.keys[b.0]))
        };
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, by_score);
            scored.truncate(limit);
        }
        scored.sort_by(by_score);
        scored
            .into_iter()
            .map(|(slot, score)| (self.keys[slot].clone(), score))
            .collect()
    }
}

/// Fuses a lexical and a semantic list of (conversation, score), each best first, into one
/// similarity in [0, 1], best first (ties by key), at most `limit` long.
///
/// Each list is rescaled to [0, 1] over its own candidates: lexical scores by the best score
/// (a BM25 score of 0 means no shared word), semantic ones between the least and the most
/// similar candidate (cosines of unrelated texts are not 0). A conversation missing from one
/// list gets 0 from it. The fused value is `(1 - weight) * lexical + weight * semantic`.
pub fn fuse(
    lexical: &[(RecordKey, f32)],
    semantic: &[(RecordKey, f32)],
    weight: f32,
    limit: usize,
) -> Vec<(RecordKey, f32)> {
    let weight = weight.clamp(0.0, 1.0);
    let mut fused: HashMap<&RecordKey, f32> = HashMap::new();
    let top = lexical
        .iter()
        .map(|(_, score)| *score)
        .fold(0.0f32, f32::max);
    if top > 0.0 {
        for (key, score) in lexical {
            *fused.entry(key).or_default() += (1.0 - weight) * (score / top).max(0.0);
        }
    }
    let best = semantic
        .iter()
        .map(|(_, score)| *score)
        .fold(f32::MIN, f32::max);
    let least = semantic
        .iter()
        .map(|(_, score)| *score)
        .fold(f32::MAX, f32::min);
    let span = best - least;
    for (key, score) in semantic {
        let scaled = if span > f32::EPSILON {
            (score - least) / span
        } else {
            1.0
        };
        *fused.entry(key).or_default() += weight * scaled;
    }
    let mut fused: Vec<(RecordKey, f32)> = fused
        .into_iter()
        .filter(|(_, score)| *score > 0.0)
        .map(|(key, score)| (key.clone(), score))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> RecordKey {
        RecordKey::new("s", id)
    }

    fn conversation(id: &str, title: &str) -> Conversation {
        Conversation {
            key: key(id),
            title: title.into(),
            ..Conversation::default()
        }
    }

    fn unit(values: &[f32]) -> Vec<f32> {
        let mut vector = values.to_vec();
        crate::semantic::normalize(&mut vector);
        vector
    }

    fn embedding(conversation: &Conversation, vector: Vec<f32>) -> Embedding {
        Embedding {
            key: conversation.key.clone(),
            text_hash: text_hash(&embedding_text(conversation)),
            vector,
        }
    }

    #[test]
    fn conversations_are_pending_until_their_current_text_is_embedded() {
        let mut index = SemanticIndex::default();
        let first = conversation("1", "qubits");
        index.note(&first);
        assert_eq!(index.pending_count(), 0, "off: nothing is kept");
        index.enable("m", 2);
        index.note(&first);
        assert_eq!(index.pending(10), vec![key("1")]);
        assert!(index.insert(embedding(&first, unit(&[1.0, 0.0]))));
        assert_eq!((index.pending_count(), index.embedded_count()), (0, 1));

        // The text changes: the old vector is out of date and is not used.
        let edited = conversation("1", "qubits and gates");
        index.note(&edited);
        assert_eq!(index.pending(10), vec![key("1")]);
        assert!(index.vector(&key("1")).is_none());
        assert!(index.nearest(&unit(&[1.0, 0.0]), None, 5).is_empty());
        assert!(
            !index.insert(embedding(&first, unit(&[1.0, 0.0]))),
            "a vector of the old text is refused"
        );
        assert!(index.insert(embedding(&edited, unit(&[0.0, 1.0]))));
        assert_eq!(index.vector(&key("1")), Some(&unit(&[0.0, 1.0])[..]));

        // Wrong dimension, unknown conversation: refused.
        assert!(!index.insert(embedding(&edited, unit(&[1.0, 0.0, 0.0]))));
        assert!(!index.insert(embedding(&conversation("9", "x"), unit(&[1.0, 0.0]))));
    }

    #[test]
    fn nearest_ranks_by_cosine_and_survives_removals() {
        let mut index = SemanticIndex::default();
        index.enable("m", 2);
        let items = [
            ("a", [1.0, 0.0]),
            ("b", [0.8, 0.6]),
            ("c", [0.0, 1.0]),
            ("d", [-1.0, 0.0]),
        ];
        for (id, vector) in items {
            let conversation = conversation(id, id);
            index.note(&conversation);
            assert!(index.insert(embedding(&conversation, unit(&vector))));
        }
        let query = unit(&[1.0, 0.1]);
        let ranked: Vec<RecordKey> = index
            .nearest(&query, None, 3)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(ranked, vec![key("a"), key("b"), key("c")]);
        let without_a: Vec<RecordKey> = index
            .nearest(&query, Some(&key("a")), 2)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(without_a, vec![key("b"), key("c")]);

        index.remove(&key("a"));
        index.remove(&key("c"));
        assert_eq!(index.embedded_count(), 2);
        let ranked: Vec<RecordKey> = index
            .nearest(&query, None, 5)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(ranked, vec![key("b"), key("d")]);
        assert_eq!(index.vector(&key("d")), Some(&unit(&[-1.0, 0.0])[..]));
    }

    #[test]
    fn a_new_model_drops_old_vectors() {
        let mut index = SemanticIndex::default();
        index.enable("m", 2);
        let first = conversation("1", "qubits");
        index.note(&first);
        assert!(index.insert(embedding(&first, unit(&[1.0, 0.0]))));
        index.enable("m", 2);
        assert_eq!(
            index.embedded_count(),
            1,
            "the same model keeps its vectors"
        );
        index.enable("other", 3);
        assert_eq!((index.embedded_count(), index.pending_count()), (0, 1));
    }

    #[test]
    fn fusion_rescales_each_list_and_weighs_them() {
        let lexical = vec![(key("a"), 10.0), (key("b"), 4.0)];
        let semantic = vec![
            (key("c"), 0.9),
            (key("b"), 0.8),
            (key("a"), 0.6),
            (key("d"), 0.4),
        ];
        // Lexical only.
        let fused = fuse(&lexical, &semantic, 0.0, 10);
        assert_eq!(fused, vec![(key("a"), 1.0), (key("b"), 0.4)]);
        // Half and half: a = .5 + .2, b = .2 + .4, c = 0 + .5, d = 0 (left out).
        let fused = fuse(&lexical, &semantic, 0.5, 10);
        let order: Vec<RecordKey> = fused.iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(order, vec![key("a"), key("b"), key("c")]);
        assert!((fused[0].1 - 0.7).abs() < 1e-6 && (fused[1].1 - 0.6).abs() < 1e-6);
        // Semantic only, and the limit.
        let fused = fuse(&lexical, &semantic, 1.0, 1);
        assert_eq!(fused, vec![(key("c"), 1.0)]);
        // An empty semantic list leaves the lexical order.
        assert_eq!(fuse(&lexical, &[], 0.5, 10)[0].0, key("a"));
    }

    #[test]
    fn embedded_text_is_title_and_opening() {
        let mut long = conversation("1", "Title");
        long.body = "é".repeat(EMBEDDED_CHARS);
        let text = embedding_text(&long);
        assert!(text.starts_with("Title\n"));
        assert!(text.len() <= EMBEDDED_CHARS);
        assert_eq!(text_hash(&text), text_hash(&embedding_text(&long)));
        assert_ne!(text_hash("a"), text_hash("b"));
    }
}
