//! An incremental inverted index with the corpus statistics BM25 needs.
//!
//! Documents are conversations. A conversation's text arrives in pieces (the opening post, then
//! replies, then edits of either), so the index works in deltas: callers add the terms of new
//! text and subtract the terms of text it replaces. Nothing is ever re-scanned: document
//! frequencies, lengths and postings move with each delta. Adjacent word pairs are indexed as
//! terms of their own so that phrases weigh more than their words apart.

use std::collections::HashMap;

use crate::domain::RecordKey;
use crate::text::Token;

pub type TermId = u32;
pub type Slot = u32;

/// How much a title word counts against a body word: titles state the topic.
pub const TITLE_BOOST: f32 = 2.0;
/// Pair terms count for less than words, so that a phrase lifts a match without dominating it.
pub const PAIR_WEIGHT: f32 = 0.5;
/// Separates the two stems of a pair term; cannot occur inside a stem.
pub const PAIR_JOINER: char = '\u{1f}';

#[derive(Debug, Default, Clone)]
struct TermEntry {
    text: String,
    /// Documents with the term, in slot order.
    postings: Vec<Slot>,
    /// The term's weighted frequency in each document of `postings`: scoring reads it here
    /// instead of searching every document's terms.
    frequencies: Vec<f32>,
}

impl TermEntry {
    fn set(&mut self, slot: Slot, frequency: f32) {
        match self.postings.binary_search(&slot) {
            Ok(index) => self.frequencies[index] = frequency,
            Err(index) => {
                make_room(&mut self.postings, 1);
                make_room(&mut self.frequencies, 1);
                self.postings.insert(index, slot);
                self.frequencies.insert(index, frequency);
            }
        }
    }

    fn unset(&mut self, slot: Slot) {
        if let Ok(index) = self.postings.binary_search(&slot) {
            self.postings.remove(index);
            self.frequencies.remove(index);
        }
    }
}

#[derive(Debug, Clone)]
struct DocEntry {
    key: RecordKey,
    /// Weighted term frequencies, sorted by term id.
    tf: Vec<(TermId, f32)>,
    length: f32,
}

/// Weighted term frequencies of one piece of text, ready to add to or subtract from a document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TermBag {
    pub counts: HashMap<String, f32>,
}

impl TermBag {
    /// Adds the words of `tokens`, and their adjacent pairs, with `weight` per occurrence.
    pub fn add_tokens(&mut self, tokens: &[Token], weight: f32) {
        for token in tokens {
            // A word seen before in the bag is counted without allocating its key again.
            match self.counts.get_mut(&*token.stem) {
                Some(count) => *count += weight,
                None => {
                    self.counts.insert(token.stem.to_string(), weight);
                }
            }
        }
        for pair in tokens.windows(2) {
            if pair[1].position == pair[0].position + 1 {
                *self
                    .counts
                    .entry(pair_term(&pair[0].stem, &pair[1].stem))
                    .or_default() += weight * PAIR_WEIGHT;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

pub fn pair_term(first: &str, second: &str) -> String {
    let mut term = String::with_capacity(first.len() + second.len() + 1);
    term.push_str(first);
    term.push(PAIR_JOINER);
    term.push_str(second);
    term
}

pub fn is_pair_term(term: &str) -> bool {
    term.contains(PAIR_JOINER)
}

#[derive(Debug, Default, Clone)]
pub struct CorpusIndex {
    vocab: HashMap<String, TermId>,
    terms: Vec<TermEntry>,
    /// Each term's document frequency by term id, apart from the entries so that walking a long
    /// document's terms reads one dense array, not an entry per term.
    dfs: Vec<u32>,
    /// Each term's weighted frequency summed over every document (its collection frequency):
    /// what a person's use of a word is compared with to tell an interest from a common word.
    cfs: Vec<f32>,
    docs: Vec<Option<DocEntry>>,
    /// Each slot's document length (0 when free), apart from the documents so that scoring a
    /// term's postings reads one dense array.
    lengths: Vec<f32>,
    slots: HashMap<RecordKey, Slot>,
    free: Vec<Slot>,
    total_length: f64,
    live: u32,
    /// Counts slots given to documents and taken back: what maps slots to owners checks.
    layout: u64,
    /// Postings are not kept while a bulk load runs (see `defer_postings`).
    deferred: bool,
}

/// BM25 parameters; the usual values, not tuned to any corpus.
pub const K1: f32 = 1.2;
pub const B: f32 = 0.75;

impl CorpusIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of documents with any text.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn average_length(&self) -> f32 {
        if self.live == 0 {
            1.0
        } else {
            (self.total_length / f64::from(self.live)).max(1.0) as f32
        }
    }

    pub fn term_id(&self, term: &str) -> Option<TermId> {
        self.vocab.get(term).copied()
    }

    /// Changes whenever a slot is given to a document or taken back: a map from slots to
    /// something about their documents stays right while it stays the same.
    pub fn layout_version(&self) -> u64 {
        self.layout
    }

    /// Terms ever seen: term ids below it are valid, and a term's id never changes.
    pub fn vocabulary_size(&self) -> usize {
        self.terms.len()
    }

    pub fn term_text(&self, id: TermId) -> Option<&str> {
        self.terms.get(id as usize).map(|entry| entry.text.as_str())
    }

    pub fn df(&self, term: TermId) -> u32 {
        self.dfs.get(term as usize).copied().unwrap_or(0)
    }

    /// Lucene's BM25 idf: always positive, so a common term never counts against a match.
    /// The term's weighted frequency over the whole collection.
    pub fn cf(&self, term: TermId) -> f32 {
        self.cfs.get(term as usize).copied().unwrap_or(0.0).max(0.0)
    }

    /// Every document's weighted length summed.
    pub fn total_length(&self) -> f64 {
        self.total_length.max(0.0)
    }

    /// Every term's id with its document frequency, for walking the vocabulary.
    pub fn term_frequencies(&self) -> impl Iterator<Item = (TermId, u32, f32)> + '_ {
        self.dfs
            .iter()
            .zip(&self.cfs)
            .enumerate()
            .map(|(id, (df, cf))| (TermId::try_from(id).unwrap_or(TermId::MAX), *df, *cf))
    }

    pub fn idf(&self, term: TermId) -> f32 {
        let n = self.live as f32;
        let df = self.df(term) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// Idf of a term that may not be in the corpus (a rare term: as if seen once).
    pub fn idf_of(&self, term: &str) -> f32 {
        // A term whose documents all left the corpus stays in the vocabulary with df 0; it must
        // read exactly like a term never seen, or scores would depend on the corpus's history.
        match self.term_id(term).filter(|id| self.df(*id) > 0) {
            Some(id) => self.idf(id),
            None => {
                let n = self.live as f32;
                (1.0 + (n + 0.5) / 1.5).ln()
            }
        }
    }

    pub fn key(&self, slot: Slot) -> Option<&RecordKey> {
        self.docs.get(slot as usize)?.as_ref().map(|doc| &doc.key)
    }

    pub fn slot(&self, key: &RecordKey) -> Option<Slot> {
        self.slots.get(key).copied()
    }

    pub fn slot_count(&self) -> usize {
        self.docs.len()
    }

    pub fn doc_length(&self, slot: Slot) -> f32 {
        self.lengths.get(slot as usize).copied().unwrap_or(0.0)
    }

    /// Weighted frequency of `term` in the document at `slot`.
    pub fn tf(&self, slot: Slot, term: TermId) -> f32 {
        let Some(Some(doc)) = self.docs.get(slot as usize) else {
            return 0.0;
        };
        doc.tf
            .binary_search_by_key(&term, |(id, _)| *id)
            .map_or(0.0, |index| doc.tf[index].1)
    }

    pub fn doc_terms(&self, slot: Slot) -> &[(TermId, f32)] {
        match self.docs.get(slot as usize) {
            Some(Some(doc)) => &doc.tf,
            _ => &[],
        }
    }

    pub fn postings(&self, term: TermId) -> &[Slot] {
        debug_assert!(!self.deferred, "postings read during a bulk load");
        self.terms
            .get(term as usize)
            .map_or(&[], |entry| entry.postings.as_slice())
    }

    /// The documents with a term and the term's weighted frequency in each, in slot order.
    pub fn postings_with_frequencies(&self, term: TermId) -> (&[Slot], &[f32]) {
        debug_assert!(!self.deferred, "postings read during a bulk load");
        self.terms.get(term as usize).map_or((&[], &[]), |entry| {
            (entry.postings.as_slice(), entry.frequencies.as_slice())
        })
    }

    /// BM25 of weighted terms over every document with any of them, as `model::score_all`
    /// computes it; returns (slot, raw score), in no order callers may rely on.
    pub fn score_terms(&self, terms: &[(TermId, f32)]) -> Vec<(Slot, f32)> {
        let average = self.average_length();
        let weighted: Vec<(TermId, f32)> = terms
            .iter()
            .map(|&(term, query_weight)| (term, query_weight * self.idf(term)))
            .collect();
        let volume = terms.iter().map(|(term, _)| self.df(*term) as usize).sum();
        by_slot_ranges(self.slot_count(), volume, |range| {
            accumulate(
                range,
                &weighted,
                |term| self.postings_with_frequencies(term),
                |weight, slot, tf| weight * bm25_tf(tf, self.lengths[slot as usize], average),
            )
        })
    }

    /// The scores `score_terms` gives the documents at `slots`, read from the documents alone:
    /// the same terms summed in the same order, so the same to the last bit. For a few hundred
    /// documents this is far cheaper than walking every posting of every term.
    pub fn score_slots(&self, slots: &[Slot], terms: &[(TermId, f32)]) -> Vec<f32> {
        let average = self.average_length();
        let weighted: Vec<f32> = terms
            .iter()
            .map(|&(term, query_weight)| query_weight * self.idf(term))
            .collect();
        // The query's positions in term id order, to walk a document's terms (sorted by id) once.
        let mut by_id: Vec<usize> = (0..terms.len()).collect();
        by_id.sort_unstable_by_key(|&position| terms[position].0);
        let mut found = vec![0.0f32; terms.len()];
        slots
            .iter()
            .map(|&slot| {
                let document = self.doc_terms(slot);
                let length = self.doc_length(slot);
                found.fill(0.0);
                let mut from = 0;
                for &position in &by_id {
                    let term = terms[position].0;
                    from += gallop(&document[from..], term);
                    match document.get(from) {
                        Some(&(id, tf)) if id == term => found[position] = tf,
                        Some(_) => {}
                        None => break,
                    }
                }
                let mut score = 0.0f32;
                for (position, &tf) in found.iter().enumerate() {
                    if tf != 0.0 {
                        score += weighted[position] * bm25_tf(tf, length, average);
                    }
                }
                score
            })
            .collect()
    }

    /// The saturated, length-normalised term frequency of BM25.
    pub fn bm25_tf(&self, tf: f32, length: f32) -> f32 {
        bm25_tf(tf, length, self.average_length())
    }

    /// Applies a change of a document's text: `removed` is the text it no longer has,
    /// `added` the text it gained. A document whose text drops to nothing leaves the index.
    pub fn apply(&mut self, key: &RecordKey, removed: Option<&TermBag>, added: Option<&TermBag>) {
        let slot = match self.slots.get(key) {
            Some(slot) => *slot,
            None => {
                if added.is_none_or(TermBag::is_empty) {
                    return;
                }
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.docs.push(None);
                    self.lengths.push(0.0);
                    Slot::try_from(self.docs.len() - 1).unwrap_or(Slot::MAX)
                });
                self.docs[slot as usize] = Some(DocEntry {
                    key: key.clone(),
                    tf: Vec::new(),
                    length: 0.0,
                });
                self.slots.insert(key.clone(), slot);
                self.live += 1;
                self.layout += 1;
                slot
            }
        };
        let mut delta: HashMap<TermId, f32> = HashMap::new();
        if let Some(removed) = removed {
            for (term, count) in &removed.counts {
                if let Some(id) = self.vocab.get(term) {
                    *delta.entry(*id).or_default() -= count;
                }
            }
        }
        if let Some(added) = added {
            // New terms get their ids in the order of their text, not of the bag's hashing:
            // sums over a document's terms (its length) then come out the same to the last bit
            // in every engine that saw the same records.
            let mut terms: Vec<(&String, &f32)> = added.counts.iter().collect();
            terms.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (term, count) in terms {
                let id = self.intern(term);
                *delta.entry(id).or_default() += count;
            }
        }
        let Some(doc) = self.docs[slot as usize].as_mut() else {
            return;
        };
        // The document's terms stay a sorted vector updated in place: a person's profile can
        // hold tens of thousands of terms while one post changes a few dozen, so rebuilding
        // it per change would make ingest quadratic in a prolific author's output.
        let mut delta: Vec<(TermId, f32)> = delta.into_iter().collect();
        delta.sort_unstable_by_key(|(term, _)| *term);
        let mut became_present = Vec::new();
        let mut became_absent = Vec::new();
        let mut inserted: Vec<(TermId, f32)> = Vec::new();
        let mut changed: Vec<(TermId, f32)> = Vec::new();
        let mut removed_any = false;
        for (term, change) in delta {
            let position = doc.tf.binary_search_by_key(&term, |(id, _)| *id);
            let before = position.map_or(0.0, |index| doc.tf[index].1);
            let after = before + change;
            // Relative, because weights need not be counts: people's profiles hold decayed
            // weights many orders of magnitude below one.
            if after <= 1e-4 * before.abs().max(change.abs()) {
                self.cfs[term as usize] -= before.max(0.0);
                if before > 0.0 {
                    became_absent.push(term);
                }
                if let Ok(index) = position {
                    doc.tf[index].1 = f32::NEG_INFINITY;
                    removed_any = true;
                }
            } else {
                self.cfs[term as usize] += after - before.max(0.0);
                if before <= 0.0 {
                    became_present.push(term);
                }
                match position {
                    Ok(index) => doc.tf[index].1 = after,
                    Err(_) => inserted.push((term, after)),
                }
                changed.push((term, after));
            }
        }
        if removed_any {
            doc.tf.retain(|(_, count)| *count != f32::NEG_INFINITY);
        }
        merge_sorted(&mut doc.tf, &inserted);
        let length: f32 = doc.tf.iter().map(|(_, count)| count).sum();
        self.total_length += f64::from(length - doc.length);
        doc.length = length;
        self.lengths[slot as usize] = length;
        let empty = doc.tf.is_empty();
        for term in became_present {
            self.dfs[term as usize] += 1;
        }
        if !self.deferred {
            for (term, frequency) in changed {
                self.terms[term as usize].set(slot, frequency);
            }
        }
        for term in became_absent {
            self.dfs[term as usize] = self.dfs[term as usize].saturating_sub(1);
            if !self.deferred {
                self.terms[term as usize].unset(slot);
            }
        }
        if empty {
            self.remove_slot(slot);
        }
    }

    /// Removes a document entirely.
    pub fn remove(&mut self, key: &RecordKey) {
        let Some(slot) = self.slots.get(key).copied() else {
            return;
        };
        let terms: Vec<(TermId, f32)> = self.doc_terms(slot).to_vec();
        for (term, count) in terms {
            self.cfs[term as usize] -= count;
            self.dfs[term as usize] = self.dfs[term as usize].saturating_sub(1);
            if !self.deferred {
                self.terms[term as usize].unset(slot);
            }
        }
        self.total_length -= f64::from(self.doc_length(slot));
        self.remove_slot(slot);
    }

    fn remove_slot(&mut self, slot: Slot) {
        if let Some(doc) = self.docs[slot as usize].take() {
            self.lengths[slot as usize] = 0.0;
            self.layout += 1;
            self.slots.remove(&doc.key);
            self.free.push(slot);
            self.live -= 1;
        }
    }

    /// Stops keeping postings while a bulk load runs: a document that grows piece by piece (a
    /// thread reply by reply, a person post by post) would otherwise insert its slot into the
    /// middle of every one of its terms' postings, moving the rest each time. Documents, lengths
    /// and document frequencies stay current; nothing may read postings or score until
    /// `build_postings`.
    pub fn defer_postings(&mut self) {
        self.deferred = true;
    }

    /// Builds every term's postings from the documents' terms, in one pass in slot order, and
    /// keeps them current again. Nothing to do unless `defer_postings` was called.
    pub fn build_postings(&mut self) {
        if !std::mem::take(&mut self.deferred) {
            return;
        }
        for (entry, df) in self.terms.iter_mut().zip(&self.dfs) {
            entry.postings = Vec::with_capacity(*df as usize);
            entry.frequencies = Vec::with_capacity(*df as usize);
        }
        for (slot, doc) in self.docs.iter().enumerate() {
            let Some(doc) = doc else {
                continue;
            };
            let slot = Slot::try_from(slot).unwrap_or(Slot::MAX);
            for &(term, frequency) in &doc.tf {
                let entry = &mut self.terms[term as usize];
                entry.postings.push(slot);
                entry.frequencies.push(frequency);
            }
        }
    }

    fn intern(&mut self, term: &str) -> TermId {
        if let Some(id) = self.vocab.get(term) {
            return *id;
        }
        let id = TermId::try_from(self.terms.len()).unwrap_or(TermId::MAX);
        self.vocab.insert(term.to_owned(), id);
        self.terms.push(TermEntry {
            text: term.to_owned(),
            ..TermEntry::default()
        });
        self.dfs.push(0);
        self.cfs.push(0.0);
        id
    }
}

/// Postings a query must reach before its scoring is split over two threads: below it, the
/// split costs more than it saves.
const PARALLEL_POSTINGS: usize = 200_000;

/// Scores documents by slot ranges: the whole range at once for a small query, two halves on
/// two threads for a large one. Each document's sum runs over the same terms in the same order
/// either way, so the scores are the same to the last bit.
pub(crate) fn by_slot_ranges(
    slot_count: usize,
    volume: usize,
    score: impl Fn(std::ops::Range<Slot>) -> Vec<(Slot, f32)> + Sync,
) -> Vec<(Slot, f32)> {
    if volume < PARALLEL_POSTINGS || rayon::current_num_threads() < 2 {
        return score(0..Slot::try_from(slot_count).unwrap_or(Slot::MAX));
    }
    in_two_halves(slot_count, score)
}

fn in_two_halves(
    slot_count: usize,
    score: impl Fn(std::ops::Range<Slot>) -> Vec<(Slot, f32)> + Sync,
) -> Vec<(Slot, f32)> {
    let end = Slot::try_from(slot_count).unwrap_or(Slot::MAX);
    let middle = end / 2;
    let (mut first, second) = rayon::join(|| score(0..middle), || score(middle..end));
    first.extend(second);
    first
}

/// Sums `gain(weight, slot, tf)` over the postings of weighted terms, in the terms' order, for
/// the documents whose slots are in `range`; returns (slot, score) of every document reached.
pub(crate) fn accumulate<'a>(
    range: std::ops::Range<Slot>,
    terms: &[(TermId, f32)],
    postings: impl Fn(TermId) -> (&'a [Slot], &'a [f32]),
    gain: impl Fn(f32, Slot, f32) -> f32,
) -> Vec<(Slot, f32)> {
    let mut scores = vec![0.0f32; (range.end - range.start) as usize];
    let mut touched = Vec::new();
    for &(term, weight) in terms {
        let (slots, frequencies) = postings(term);
        let from = slots.partition_point(|slot| *slot < range.start);
        let to = from + slots[from..].partition_point(|slot| *slot < range.end);
        for (&slot, &tf) in slots[from..to].iter().zip(&frequencies[from..to]) {
            let offset = (slot - range.start) as usize;
            if scores[offset] == 0.0 {
                touched.push(slot);
            }
            scores[offset] += gain(weight, slot, tf);
        }
    }
    touched
        .into_iter()
        .map(|slot| (slot, scores[(slot - range.start) as usize]))
        .collect()
}

/// How many of a document's terms (sorted by id) come before `term`: looked for by doubling
/// steps, then halving, so that walking a short query over a long document skips most of it.
pub(crate) fn gallop(terms: &[(TermId, f32)], term: TermId) -> usize {
    let mut step = 1;
    while step < terms.len() && terms[step - 1].0 < term {
        step *= 2;
    }
    let end = step.min(terms.len());
    let start = step / 2;
    start + terms[start..end].partition_point(|(id, _)| *id < term)
}

/// The saturated, length-normalised term frequency of BM25 for a document of `length` in a
/// corpus whose documents average `average`.
fn bm25_tf(tf: f32, length: f32, average: f32) -> f32 {
    if tf <= 0.0 {
        return 0.0;
    }
    let norm = K1 * (1.0 - B + B * length / average);
    tf * (K1 + 1.0) / (tf + norm)
}

/// Makes room for `extra` more elements, growing by an eighth rather than doubling: postings
/// and documents' terms are most of the engine's memory, and doubling leaves a third of it
/// unused on average. Each growth copies at most the whole vector, so an element is copied about
/// eight times over its vector's life instead of twice.
fn make_room<T>(vector: &mut Vec<T>, extra: usize) {
    if vector.len() + extra > vector.capacity() {
        vector.reserve_exact((vector.len() / 8).max(extra).max(4));
    }
}

/// Merges sorted `extra` (terms not in `into`) into sorted `into`, in place from the back.
fn merge_sorted(into: &mut Vec<(TermId, f32)>, extra: &[(TermId, f32)]) {
    if extra.is_empty() {
        return;
    }
    let old_len = into.len();
    make_room(into, extra.len());
    into.resize(old_len + extra.len(), (0, 0.0));
    let (mut from_old, mut from_extra, mut to) = (old_len, extra.len(), into.len());
    while from_extra > 0 {
        to -= 1;
        if from_old > 0 && into[from_old - 1].0 > extra[from_extra - 1].0 {
            into[to] = into[from_old - 1];
            from_old -= 1;
        } else {
            into[to] = extra[from_extra - 1];
            from_extra -= 1;
        }
    }
    debug_assert!(into.windows(2).all(|pair| pair[0].0 < pair[1].0));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bag(words: &[u8]) -> TermBag {
        let mut bag = TermBag::default();
        for word in words {
            *bag.counts.entry(format!("w{word}")).or_default() += 1.0;
        }
        bag
    }

    /// Everything a reader of the index can see, postings included.
    fn observed(index: &CorpusIndex) -> Vec<String> {
        let mut seen = vec![format!(
            "live {} slots {} total {} layout {}",
            index.len(),
            index.slot_count(),
            index.total_length,
            index.layout_version()
        )];
        for term in 0..index.vocabulary_size() as TermId {
            let (postings, frequencies) = index.postings_with_frequencies(term);
            seen.push(format!(
                "{:?} df {} {postings:?} {frequencies:?}",
                index.term_text(term),
                index.df(term)
            ));
        }
        for slot in 0..index.slot_count() as Slot {
            seen.push(format!(
                "{slot} {:?} {} {:?}",
                index.key(slot),
                index.doc_length(slot),
                index.doc_terms(slot)
            ));
        }
        seen
    }

    proptest! {
        /// A bulk load (postings deferred, then built in one pass) ends with the index that
        /// keeping postings current all along gives: the same postings in slot order, the same
        /// frequencies, document frequencies and documents, whatever the changes (documents
        /// growing piece by piece, pieces replaced, documents removed and slots reused).
        #[test]
        fn a_bulk_load_builds_the_postings_kept_current_all_along(
            changes in prop::collection::vec(
                (0u8..12, prop::collection::vec(0u8..30, 0..12), any::<bool>(), any::<bool>()),
                1..60,
            ),
        ) {
            let mut current = CorpusIndex::new();
            let mut bulk = CorpusIndex::new();
            bulk.defer_postings();
            // What each document holds, to subtract a piece it replaces.
            let mut last: HashMap<u8, TermBag> = HashMap::new();
            for (doc, words, replace, remove) in &changes {
                let key = RecordKey::new("t", format!("d{doc}"));
                if *remove {
                    current.remove(&key);
                    bulk.remove(&key);
                    last.remove(doc);
                    continue;
                }
                let added = bag(words);
                let removed = if *replace { last.get(doc).cloned() } else { None };
                current.apply(&key, removed.as_ref(), Some(&added));
                bulk.apply(&key, removed.as_ref(), Some(&added));
                last.insert(*doc, added);
            }
            bulk.build_postings();
            prop_assert_eq!(observed(&bulk), observed(&current));
            // And it keeps them current afterwards.
            let key = RecordKey::new("t", "later");
            current.apply(&key, None, Some(&bag(&[1, 2, 3])));
            bulk.apply(&key, None, Some(&bag(&[1, 2, 3])));
            prop_assert_eq!(observed(&bulk), observed(&current));
        }

        /// Scoring split over two threads by slot ranges, or one document at a time, gives every
        /// document the same score, to the last bit, as scoring all slots at once.
        #[test]
        fn split_scoring_is_exact(
            docs in prop::collection::vec(prop::collection::vec(0u8..40, 1..30), 1..80),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            query in prop::collection::vec((0u8..45, 0.01f32..3.0), 1..20),
        ) {
            let mut index = CorpusIndex::new();
            for (number, words) in docs.iter().enumerate() {
                index.apply(&RecordKey::new("t", format!("d{number}")), None, Some(&bag(words)));
            }
            for pick in removed {
                index.remove(&RecordKey::new("t", format!("d{}", pick.index(docs.len()))));
            }
            let terms: Vec<(TermId, f32)> = query
                .iter()
                .filter_map(|(word, weight)| Some((index.term_id(&format!("w{word}"))?, *weight)))
                .collect();
            let average = index.average_length();
            let weighted: Vec<(TermId, f32)> =
                terms.iter().map(|&(term, weight)| (term, weight * index.idf(term))).collect();
            let score = |range: std::ops::Range<Slot>| {
                accumulate(
                    range,
                    &weighted,
                    |term| index.postings_with_frequencies(term),
                    |weight, slot, tf| weight * bm25_tf(tf, index.doc_length(slot), average),
                )
            };
            let sorted = |mut scores: Vec<(Slot, f32)>| {
                scores.sort_by_key(|(slot, _)| *slot);
                scores.into_iter().map(|(slot, score)| (slot, score.to_bits())).collect::<Vec<_>>()
            };
            let whole = sorted(score(0..index.slot_count() as Slot));
            prop_assert_eq!(&whole, &sorted(in_two_halves(index.slot_count(), score)));
            prop_assert_eq!(&whole, &sorted(index.score_terms(&terms)));
            // One document at a time, the same scores; documents no term reaches score 0.
            let reached: HashMap<Slot, u32> = whole.iter().copied().collect();
            let (mut live, mut expected_scores) = (Vec::new(), Vec::new());
            for slot in 0..index.slot_count() as Slot {
                if index.key(slot).is_some() {
                    let expected = reached.get(&slot).copied().unwrap_or(0);
                    expected_scores.push(expected);
                    live.push(slot);
                }
            }
            let one_by_one: Vec<u32> =
                index.score_slots(&live, &terms).into_iter().map(f32::to_bits).collect();
            prop_assert_eq!(one_by_one, expected_scores);
        }
    }
}
