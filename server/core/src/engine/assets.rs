//! Supporting assets: articles, bookmarks, docs and earlier threads ranked by how well they
//! support a context — a strategy facet, a stored conversation, or a free text.
//!
//! Assets get a BM25 index of their own, built with the same analyzer and the same incremental
//! [`CorpusIndex`] as conversations: their statistics (document frequencies, lengths) describe
//! the asset collection, not the conversations, so a word common in discussions but rare in
//! articles still tells articles apart. An asset's text is its title (boosted, as a
//! conversation's) and its text. The index moves in deltas as assets arrive and change, like the
//! conversation index; it keeps only term statistics and a few counters per asset, never text.
//!
//! Contexts become weighted queries. A facet brings its compiled query (its own words widened
//! with the conversations' vocabulary); a text or a conversation brings its terms, with the
//! weight of each term saturated so that a word repeated in a long thread does not drown the
//! rest, and long contexts trimmed to their most telling terms.

use std::collections::HashMap;
use std::ops::Range;

use super::explain::{self, Evidence, TextPart};
use super::index::{CorpusIndex, TITLE_BOOST, TermBag, is_pair_term};
use super::model::{Query, score_all};
use super::semantic::{Embedding, SemanticIndex};
use crate::domain::{Asset, AssetKind, RecordKey};
use crate::text::{Analyzer, sentences};

/// How much a reply counts against the conversation's own title and body, in a context.
const POST_WEIGHT: f32 = 0.5;
/// Terms kept of a long context: its most telling ones, by weight times rarity.
const MAX_CONTEXT_TERMS: usize = 64;
/// Longest passage quoted, in bytes; longer sentences are cut at a word boundary.
const MAX_PASSAGE_BYTES: usize = 400;

/// What ranking needs of an asset besides its terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AssetFacts {
    own: bool,
    kind: AssetKind,
}

/// How much closeness by meaning counts for an asset against how much it counts for a
/// conversation (the semantic tier's `weight`). An asset is usually a longer text than a
/// question (an article, a thread with its accepted answer), and its vector reads only its
/// opening (the model keeps its first 256 word pieces) while its words come from all of it.
/// Measured on the three development communities (Task D of the evaluation: recall at 10 and
/// MRR against words alone), 0.3 of meaning (0.6 of 0.5) gave ai .667 / .668 (words alone .417 /
/// .294), sustainability .857 / .652 (.714 / .605) and quantumcomputing .556 / .462 (.586 / .39);
/// 0.5 gave a better MRR on sustainability (.760) but a worse one on quantumcomputing (.347).
const ASSET_MEANING_FACTOR: f32 = 0.6;

/// The asset collection's index.
#[derive(Debug, Default, Clone)]
pub struct AssetIndex {
    index: CorpusIndex,
    facts: HashMap<RecordKey, AssetFacts>,
}

/// A ranked asset: its key, raw BM25 score and a score in [0, 1) calibrated on the collection.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedAsset {
    pub key: RecordKey,
    /// BM25 of the context's terms; 0 when only its meaning is close.
    pub raw: f32,
    pub score: f32,
    /// How close the asset is to the context by meaning, when both have a vector.
    pub meaning: Option<Meaning>,
}

/// An asset's closeness to a context by meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meaning {
    /// The cosine similarity of the two sentence embeddings.
    pub cosine: f32,
    /// The cosine read against the collection, in (0, 1): 0.05 at this context's median
    /// cosine to the assets, 0.5 at its 95th percentile (where its clearest matches begin).
    pub relevance: f32,
}

/// What the supporting assets are wanted for, as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetContext {
    /// The facet it came from, when it did; its evidence is labelled with it.
    pub facet_id: Option<String>,
    pub query: Query,
    /// The strategist's own words when the context is a facet: evidence says which terms are
    /// theirs.
    pub base: Query,
    /// The context's sentence embedding, while the semantic tier is on and one is at hand.
    pub vector: Option<Vec<f32>>,
}

/// Why an asset supports a context, in words, with the passage that does.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetExplanation {
    /// A sentence (or a window of one) of the asset's text, exactly as written there.
    pub passage: String,
    pub evidence: Evidence,
}

impl AssetIndex {
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    pub fn corpus(&self) -> &CorpusIndex {
        &self.index
    }

    pub fn contains(&self, key: &RecordKey) -> bool {
        self.facts.contains_key(key)
    }

    /// Whether an indexed asset is the organisation's own.
    fn is_own(&self, key: &RecordKey) -> bool {
        self.facts.get(key).is_some_and(|facts| facts.own)
    }

    /// Takes in a new or changed asset; `previous` is the stored version it replaces.
    pub fn upsert(&mut self, analyzer: &Analyzer, asset: &Asset, previous: Option<&Asset>) {
        let added = asset_bag(analyzer, asset);
        let removed = previous.map(|previous| asset_bag(analyzer, previous));
        self.index.apply(&asset.key, removed.as_ref(), Some(&added));
        self.facts.insert(
            asset.key.clone(),
            AssetFacts {
                own: asset.own,
                kind: asset.kind,
            },
        );
    }

    pub fn remove(&mut self, key: &RecordKey) {
        self.index.remove(key);
        self.facts.remove(key);
    }

    /// Every asset that matches `query`, best first (ties by key), at most `limit`.
    /// The kind of an indexed asset.
    pub fn kind(&self, key: &RecordKey) -> Option<AssetKind> {
        self.facts.get(key).map(|facts| facts.kind)
    }

    pub fn rank(&self, query: &Query, own_only: bool, limit: usize) -> Vec<RankedAsset> {
        let scored = score_all(query, &self.index);
        let scale = calibration(query, &scored, self.index.len());
        let mut ranked: Vec<RankedAsset> = scored
            .into_iter()
            .filter(|(_, raw)| *raw > 0.0)
            .filter_map(|(slot, raw)| {
                let key = self.index.key(slot)?;
                let facts = self.facts.get(key).copied().unwrap_or_default();
                (!own_only || facts.own).then(|| RankedAsset {
                    key: key.clone(),
                    raw,
                    score: raw / (raw + scale),
                    meaning: None,
                })
            })
            .collect();
        ranked.sort_by(|a, b| b.raw.total_cmp(&a.raw).then_with(|| a.key.cmp(&b.key)));
        ranked.truncate(limit);
        ranked
    }

    /// The query of a free text or a conversation: title words count double, replies half;
    /// each term's weight saturates with its count; a long text keeps its most telling terms.
    pub fn context_query(&self, analyzer: &Analyzer, parts: &[(&str, f32)]) -> Query {
        let mut bag = TermBag::default();
        for (text, weight) in parts {
            bag.add_tokens(&analyzer.tokens(text), *weight);
        }
        let mut weighted: Vec<(String, f32, f32)> = bag
            .counts
            .into_iter()
            .map(|(term, count)| {
                let weight = (1.0 + count).ln();
                let telling = weight * self.index.idf_of(&term);
                (term, weight, telling)
            })
            .collect();
        weighted.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        weighted.truncate(MAX_CONTEXT_TERMS);
        Query::from_weights(
            weighted
                .into_iter()
                .map(|(term, weight, _)| (term, weight))
                .collect(),
        )
    }

    /// The passage and the evidence for one asset against a context.
    pub fn explain(
        &self,
        analyzer: &Analyzer,
        context: &AssetContext,
        asset: &Asset,
    ) -> AssetExplanation {
        let parts = [
            TextPart {
                location: "title",
                text: &asset.title,
            },
            TextPart {
                location: "text",
                text: &asset.text,
            },
        ];
        let evidence = explain::explain(
            &self.index,
            context.facet_id.as_deref().unwrap_or_default(),
            &context.query,
            &context.base,
            &explain::analyze(analyzer, &parts),
        );
        let passage = match best_passage(analyzer, &self.index, &context.query, &asset.text) {
            Some(range) => asset.text[range].to_owned(),
            None => best_passage(analyzer, &self.index, &context.query, &asset.title)
                .map(|range| asset.title[range].to_owned())
                .unwrap_or_default(),
        };
        AssetExplanation { passage, evidence }
    }
}

/// An asset's terms: its title, boosted as a conversation's title is, and its text.
fn asset_bag(analyzer: &Analyzer, asset: &Asset) -> TermBag {
    let mut bag = TermBag::default();
    bag.add_tokens(&analyzer.tokens(&asset.title), TITLE_BOOST);
    bag.add_tokens(&analyzer.tokens(&asset.text), 1.0);
    bag
}

/// The raw score at which an asset's score reads 0.5: the 95th percentile of this query's
/// scores over the collection, so a high score means "among the collection's clearest
/// matches"; on a small collection, half the query's self-match stands in.
fn calibration(query: &Query, scored: &[(u32, f32)], collection: usize) -> f32 {
    if collection < 20 {
        let self_score: f32 = query.terms.iter().map(|term| term.weight).sum();
        return (self_score * 0.5).max(1.0);
    }
    let mut scores: Vec<f32> = scored.iter().map(|(_, raw)| *raw).collect();
    scores.resize(collection.max(scores.len()), 0.0);
    scores.sort_by(f32::total_cmp);
    let rank = ((scores.len() as f32) * 0.95) as usize;
    scores
        .get(rank.min(scores.len() - 1))
        .copied()
        .unwrap_or(1.0)
        .max(1e-3)
}

/// The byte range of the sentence of `text` that matches `query` best (distinct terms weighted
/// by rarity, mildly penalised for length), cut to [`MAX_PASSAGE_BYTES`] at a word boundary.
/// `None` when no sentence matches any query term.
pub(crate) fn best_passage(
    analyzer: &Analyzer,
    index: &CorpusIndex,
    query: &Query,
    text: &str,
) -> Option<Range<usize>> {
    let weights: HashMap<&str, f32> = query
        .terms
        .iter()
        .filter(|term| !is_pair_term(&term.term))
        .map(|term| (term.term.as_str(), term.weight * index.idf_of(&term.term)))
        .collect();
    let tokens = analyzer.tokens(text);
    let mut best: Option<(f32, Range<usize>)> = None;
    for range in sentences(text) {
        let mut seen: Vec<&str> = Vec::new();
        let mut score = 0.0;
        let mut first_match = None;
        for token in tokens
            .iter()
            .filter(|token| range.contains(&token.span.start))
        {
            let Some(weight) = weights.get(&*token.stem) else {
                continue;
            };
            first_match.get_or_insert(token.span.start);
            if !seen.contains(&&*token.stem) {
                seen.push(&*token.stem);
                score += weight;
            }
        }
        let words = crate::text::word_count(&text[range.clone()]).max(1) as f32;
        let score = score / (1.0 + words / 40.0);
        if score > 0.0 && best.as_ref().is_none_or(|(top, _)| score > *top) {
            let start = first_match.unwrap_or(range.start);
            best = Some((score, window(text, range, start)));
        }
    }
    best.map(|(_, range)| range)
}

/// At most [`MAX_PASSAGE_BYTES`] of `sentence`, starting at its beginning when the first match
/// falls inside that much, else at the word where the first match is; ends at a word boundary.
fn window(text: &str, sentence: Range<usize>, first_match: usize) -> Range<usize> {
    if sentence.len() <= MAX_PASSAGE_BYTES {
        return sentence;
    }
    let start = if first_match - sentence.start < MAX_PASSAGE_BYTES / 2 {
        sentence.start
    } else {
        first_match
    };
    let mut end = (start + MAX_PASSAGE_BYTES).min(sentence.end);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < sentence.end
        && let Some(space) = text[start..end].rfind(char::is_whitespace)
        && space > 0
    {
        end = start + space;
    }
    start..text[start..end].trim_end().len() + start
}

impl super::Engine {
    /// Takes in a new or changed asset; `previous` is the stored version it replaces.
    pub fn upsert_asset(&mut self, asset: &Asset, previous: Option<&Asset>) {
        self.assets.upsert(&self.analyzer, asset, previous);
        self.asset_semantic.note_asset(asset);
    }

    /// Forgets an asset.
    pub fn remove_asset(&mut self, key: &RecordKey) {
        self.assets.remove(key);
        self.asset_semantic.remove(key);
    }

    pub fn assets(&self) -> &AssetIndex {
        &self.assets
    }

    /// Asset embeddings, while the semantic tier is on.
    pub fn asset_semantic(&self) -> &SemanticIndex {
        &self.asset_semantic
    }

    /// Takes asset vectors computed by the service; returns how many embed an asset's current
    /// text.
    pub fn insert_asset_embeddings(&mut self, embeddings: Vec<Embedding>) -> usize {
        embeddings
            .into_iter()
            .map(|embedding| usize::from(self.asset_semantic.insert(embedding)))
            .sum()
    }

    /// The context of a facet: its compiled query, and its vector while the semantic tier is
    /// on. `None` before a strategy is set or when the strategy has no such facet.
    pub fn facet_asset_context(&self, facet_id: &str) -> Option<AssetContext> {
        let model = self.model.as_ref()?;
        let position = model.facets.iter().position(|facet| facet.id == facet_id)?;
        let facet = &model.facets[position];
        Some(AssetContext {
            facet_id: Some(facet.id.clone()),
            query: facet.query.clone(),
            base: facet.base.clone(),
            vector: self
                .current_facet_vectors()
                .and_then(|vectors| vectors.get(position))
                .cloned(),
        })
    }

    /// The context of a text or a conversation: its title, its body and, for a conversation,
    /// its replies (which count half); `vector` is its sentence embedding when there is one.
    pub fn text_asset_context(
        &self,
        title: &str,
        body: &str,
        replies: &[&str],
        vector: Option<Vec<f32>>,
    ) -> AssetContext {
        let mut parts = vec![(title, TITLE_BOOST), (body, 1.0)];
        parts.extend(replies.iter().map(|reply| (*reply, POST_WEIGHT)));
        AssetContext {
            facet_id: None,
            query: self.assets.context_query(&self.analyzer, &parts),
            base: Query::default(),
            vector,
        }
    }

    /// The context of a stored conversation with its replies, and its vector when it has a
    /// current one.
    pub fn conversation_asset_context(
        &self,
        conversation: &crate::domain::Conversation,
        replies: &[&str],
    ) -> AssetContext {
        let vector = self.semantic.vector(&conversation.key).map(<[f32]>::to_vec);
        self.text_asset_context(&conversation.title, &conversation.body, replies, vector)
    }

    /// Assets that support `context`, best first.
    ///
    /// By words, an asset's score is its BM25 read against the collection (0.5 at this
    /// context's 95th percentile). When the context and the assets have vectors, closeness by
    /// meaning is read the same way against the collection (see [`Meaning`]), and the two are
    /// weighed as a conversation's relevance to a facet is, with meaning counting
    /// [`ASSET_MEANING_FACTOR`] of the semantic tier's `weight` (an asset's vector reads its
    /// opening, its words come from all of it). The words of an asset and the meaning of its
    /// opening each find what the other misses. An asset without a vector yet keeps its score by
    /// words. Assets that share no word and sit in the lower half by meaning are left out.
    pub fn rank_assets(
        &self,
        context: &AssetContext,
        own_only: bool,
        limit: usize,
    ) -> Vec<RankedAsset> {
        let by_meaning = context
            .vector
            .as_deref()
            .map(|vector| self.asset_semantic.similarities_by_key(vector))
            .filter(|cosines| cosines.len() >= MIN_ASSETS_BY_MEANING);
        let Some(cosines) = by_meaning else {
            return self.assets.rank(&context.query, own_only, limit);
        };
        let (median, high) = percentiles(cosines.iter().map(|(_, cosine)| *cosine).collect());
        let spread = ((high - median) / 19f32.ln()).max(1e-4);
        let weight = self.semantic_settings.weight.clamp(0.0, 1.0) * ASSET_MEANING_FACTOR;
        let mut ranked: HashMap<RecordKey, RankedAsset> = self
            .assets
            .rank(&context.query, own_only, usize::MAX)
            .into_iter()
            .map(|asset| (asset.key.clone(), asset))
            .collect();
        for (key, cosine) in cosines {
            if own_only && !self.assets.is_own(key) {
                continue;
            }
            let relevance = 1.0 / (1.0 + (-(cosine - high) / spread).exp());
            let meaning = Meaning { cosine, relevance };
            match ranked.get_mut(key) {
                Some(asset) => {
                    asset.score = (1.0 - weight) * asset.score + weight * relevance;
                    asset.meaning = Some(meaning);
                }
                None if cosine > median && self.assets.contains(key) => {
                    ranked.insert(
                        key.clone(),
                        RankedAsset {
                            key: key.clone(),
                            raw: 0.0,
                            score: weight * relevance,
                            meaning: Some(meaning),
                        },
                    );
                }
                None => {}
            }
        }
        let mut ranked: Vec<RankedAsset> = ranked.into_values().collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        ranked.truncate(limit);
        ranked
    }

    /// The passage and evidence of one asset for `context`.
    pub fn explain_asset(&self, context: &AssetContext, asset: &Asset) -> AssetExplanation {
        self.assets.explain(&self.analyzer, context, asset)
    }
}

/// Fewest assets with vectors for a context's closeness by meaning to be read against the
/// collection; below it, assets are ranked by words.
const MIN_ASSETS_BY_MEANING: usize = 20;

/// The median and the 95th percentile of `values`, which is not empty.
fn percentiles(mut values: Vec<f32>) -> (f32, f32) {
    values.sort_by(f32::total_cmp);
    let at = |share: f32| {
        let position = ((values.len() as f32) * share) as usize;
        values[position.min(values.len() - 1)]
    };
    (at(0.5), at(0.95))
}
