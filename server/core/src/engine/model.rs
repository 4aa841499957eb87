//! A strategy compiled for scoring: each facet becomes a weighted query over stems and stem
//! pairs, then is widened with the vocabulary its best-matching conversations actually use.
//!
//! Two general corrections make plain-words facets work as queries, neither tied to a corpus:
//! - terms that many facets share ("customers", "our", "want") say nothing about which facet a
//!   conversation serves, so a term's weight falls with the number of facets using it;
//! - strategists and community members use different words for the same things, so each facet
//!   is expanded by pseudo-relevance feedback (RM3-style) from the ingested corpus.

use std::collections::HashMap;

use super::index::{CorpusIndex, Slot, TermBag, TermId, is_pair_term};
use crate::strategy::{Facet, FacetKind, Strategy};
use crate::text::Analyzer;

/// A weighted term of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    pub term: String,
    pub weight: f32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub terms: Vec<QueryTerm>,
}

impl Query {
    pub(crate) fn from_weights(weights: HashMap<String, f32>) -> Self {
        let mut terms: Vec<QueryTerm> = weights
            .into_iter()
            .filter(|(_, weight)| *weight > 0.0)
            .map(|(term, weight)| QueryTerm { term, weight })
            .collect();
        terms.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then_with(|| a.term.cmp(&b.term))
        });
        Self { terms }
    }

    pub fn weight_of(&self, term: &str) -> f32 {
        self.terms
            .iter()
            .find(|query_term| query_term.term == term)
            .map_or(0.0, |query_term| query_term.weight)
    }
}

/// Tunables of the compiled model. Defaults are general-purpose and held constant across
/// communities; the evaluation protocol checks them on sites they were never tuned on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSettings {
    pub name_weight: f32,
    pub keyword_weight: f32,
    pub example_weight: f32,
    pub description_weight: f32,
    /// Documents taken as pseudo-relevant for expansion.
    pub feedback_docs: usize,
    /// Terms added by expansion.
    pub feedback_terms: usize,
    /// Share of the final query that comes from expansion (0 = none).
    pub feedback_share: f32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            name_weight: 2.0,
            keyword_weight: 2.0,
            example_weight: 1.0,
            description_weight: 1.0,
            feedback_docs: 10,
            feedback_terms: 30,
            feedback_share: 0.4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CompiledFacet {
    pub id: String,
    pub kind: FacetKind,
    pub name: String,
    pub weight: f32,
    /// The facet's own words, as the strategist wrote them.
    pub base: Query,
    /// `base` widened with the corpus's vocabulary; what ranking uses.
    pub query: Query,
    /// The words of the facet's text as written, by stem, to speak of them in plain words.
    pub surface: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct StrategyModel {
    pub version: u32,
    pub facets: Vec<CompiledFacet>,
    pub exclusions: Vec<(String, Query)>,
    /// Per facet, the raw score at which relevance reads 0.5.
    pub calibration: Vec<f32>,
    /// Corpus size the expansion and calibration were computed at.
    pub corpus_size: usize,
}

fn add_text(bag: &mut TermBag, analyzer: &Analyzer, text: &str, weight: f32) {
    let tokens = analyzer.tokens(text);
    bag.add_tokens(&tokens, weight);
}

fn facet_bag(analyzer: &Analyzer, facet: &Facet, settings: &ModelSettings) -> TermBag {
    let mut bag = TermBag::default();
    add_text(&mut bag, analyzer, &facet.name, settings.name_weight);
    add_text(
        &mut bag,
        analyzer,
        &facet.description,
        settings.description_weight,
    );
    for keyword in &facet.keywords {
        add_text(&mut bag, analyzer, keyword, settings.keyword_weight);
    }
    for example in &facet.examples {
        add_text(&mut bag, analyzer, example, settings.example_weight);
    }
    bag
}

/// Turns raw term counts of a text into query weights: counts saturate (a word repeated in a
/// description is not ten times as important), and words shared by many facets fade.
fn saturate(count: f32) -> f32 {
    (1.0 + count).ln()
}

impl StrategyModel {
    /// Compiles `strategy` against the current corpus.
    pub fn compile(
        version: u32,
        strategy: &Strategy,
        analyzer: &Analyzer,
        index: &CorpusIndex,
        settings: &ModelSettings,
    ) -> Self {
        let bags: Vec<TermBag> = strategy
            .facets
            .iter()
            .map(|facet| facet_bag(analyzer, facet, settings))
            .collect();
        let facet_count = bags.len().max(1) as f32;
        let mut facet_frequency: HashMap<&str, f32> = HashMap::new();
        for bag in &bags {
            for term in bag.counts.keys() {
                *facet_frequency.entry(term.as_str()).or_default() += 1.0;
            }
        }
        let specificity = |term: &str| -> f32 {
            let frequency = facet_frequency.get(term).copied().unwrap_or(1.0);
            // 1.0 for a term of one facet, falling towards 0.5 for a term of every facet.
            if facet_count <= 1.0 {
                1.0
            } else {
                1.0 - 0.5 * (frequency - 1.0) / (facet_count - 1.0)
            }
        };
        let facets = strategy
            .facets
            .iter()
            .zip(&bags)
            .map(|(facet, bag)| {
                let weights: HashMap<String, f32> = bag
                    .counts
                    .iter()
                    .map(|(term, count)| (term.clone(), saturate(*count) * specificity(term)))
                    .collect();
                let base = Query::from_weights(weights);
                let query = expand(&base, index, settings);
                let mut surface = HashMap::new();
                for text in std::iter::once(&facet.name)
                    .chain(std::iter::once(&facet.description))
                    .chain(&facet.keywords)
                    .chain(&facet.examples)
                {
                    for token in analyzer.tokens(text) {
                        surface
                            .entry(token.stem.to_string())
                            .or_insert_with(|| text[token.span].to_lowercase());
                    }
                }
                CompiledFacet {
                    surface,
                    id: facet.id.clone(),
                    kind: facet.kind,
                    name: facet.name.clone(),
                    weight: facet.weight as f32,
                    base,
                    query,
                }
            })
            .collect::<Vec<_>>();
        let exclusions = strategy
            .exclusions
            .iter()
            .map(|exclusion| {
                let mut bag = TermBag::default();
                add_text(&mut bag, analyzer, exclusion, 1.0);
                let weights = bag
                    .counts
                    .into_iter()
                    .map(|(term, count)| (term, saturate(count)))
                    .collect();
                (exclusion.clone(), Query::from_weights(weights))
            })
            .collect();
        let calibration = facets
            .iter()
            .map(|facet| calibrate(&facet.query, index))
            .collect();
        Self {
            version,
            facets,
            exclusions,
            calibration,
            corpus_size: index.len(),
        }
    }

    /// Whether the corpus has grown enough since compiling that expansion and calibration
    /// should be recomputed (a quarter more, or the first documents arrived).
    pub fn is_stale(&self, index: &CorpusIndex) -> bool {
        let now = index.len();
        (self.corpus_size == 0 && now > 0) || now * 4 > self.corpus_size * 5 + 40
    }

    /// Relevance in [0, 1) of a raw facet score.
    pub fn relevance(&self, facet_index: usize, raw: f32) -> f32 {
        let scale = self
            .calibration
            .get(facet_index)
            .copied()
            .unwrap_or(1.0)
            .max(1e-3);
        let raw = raw.max(0.0);
        raw / (raw + scale)
    }
}

/// Scores every document containing any query term; returns (slot, raw score), unsorted.
pub fn score_all(query: &Query, index: &CorpusIndex) -> Vec<(Slot, f32)> {
    let terms: Vec<(TermId, f32)> = query
        .terms
        .iter()
        .filter_map(|query_term| Some((index.term_id(&query_term.term)?, query_term.weight)))
        .collect();
    index.score_terms(&terms)
}

/// Raw score of a text that is not in the index, against the corpus statistics.
pub fn score_bag(query: &Query, index: &CorpusIndex, bag: &TermBag) -> f32 {
    let length: f32 = bag.counts.values().sum();
    query
        .terms
        .iter()
        .map(|query_term| {
            let tf = bag.counts.get(&query_term.term).copied().unwrap_or(0.0);
            query_term.weight * index.idf_of(&query_term.term) * index.bm25_tf(tf, length)
        })
        .sum()
}

/// RM3-style expansion: the terms that weigh most in the best-matching documents, mixed into the
/// query with `feedback_share` of its mass. Pair terms are not added: they would only echo the
/// words already chosen.
fn expand(base: &Query, index: &CorpusIndex, settings: &ModelSettings) -> Query {
    if settings.feedback_share <= 0.0 || settings.feedback_docs == 0 || index.len() < 20 {
        return base.clone();
    }
    let mut ranked = score_all(base, index);
    // Ties go by record key, not slot: slots depend on arrival order, and the expansion must not.
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| index.key(a.0).cmp(&index.key(b.0)))
    });
    ranked.truncate(settings.feedback_docs);
    if ranked.is_empty() {
        return base.clone();
    }
    let top_score = ranked[0].1.max(1e-6);
    let mut candidates: HashMap<u32, f32> = HashMap::new();
    for (slot, score) in &ranked {
        let length = index.doc_length(*slot).max(1.0);
        let doc_weight = score / top_score;
        for (term, tf) in index.doc_terms(*slot) {
            *candidates.entry(*term).or_default() += doc_weight * tf / length * index.idf(*term);
        }
    }
    let mut expansion: Vec<(String, f32)> = candidates
        .into_iter()
        .filter(|(_, weight)| *weight > 0.0)
        .filter_map(|(term, weight)| {
            let text = index.term_text(term)?;
            // A term in a single document is that document's idiosyncrasy, not the facet's.
            (!is_pair_term(text) && index.df(term) >= 2).then(|| (text.to_owned(), weight))
        })
        .collect();
    expansion.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    expansion.truncate(settings.feedback_terms);
    let base_mass: f32 = base.terms.iter().map(|term| term.weight).sum();
    let expansion_mass: f32 = expansion.iter().map(|(_, weight)| weight).sum();
    if base_mass <= 0.0 || expansion_mass <= 0.0 {
        return base.clone();
    }
    let share = settings.feedback_share.clamp(0.0, 0.95);
    let mut weights: HashMap<String, f32> = HashMap::new();
    for term in &base.terms {
        *weights.entry(term.term.clone()).or_default() += (1.0 - share) * term.weight / base_mass;
    }
    for (term, weight) in expansion {
        *weights.entry(term).or_default() += share * weight / expansion_mass;
    }
    // Back to the scale of the base query so raw scores stay comparable across versions.
    for weight in weights.values_mut() {
        *weight *= base_mass;
    }
    Query::from_weights(weights)
}

/// The raw score at which a facet's relevance reads 0.5: the 95th percentile of its scores
/// over the corpus, so "relevant" means "among the corpus's clearest matches" whatever the
/// corpus. Before there is a corpus, half the facet's self-match stands in.
fn calibrate(query: &Query, index: &CorpusIndex) -> f32 {
    if index.len() < 20 {
        let self_score: f32 = query.terms.iter().map(|term| term.weight).sum();
        return (self_score * 0.5).max(1.0);
    }
    let mut scores: Vec<f32> = score_all(query, index)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    scores.resize(index.len(), 0.0);
    scores.sort_by(f32::total_cmp);
    let rank = ((scores.len() as f32) * 0.95) as usize;
    scores
        .get(rank.min(scores.len() - 1))
        .copied()
        .unwrap_or(1.0)
        .max(1e-3)
}
