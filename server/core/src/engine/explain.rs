//! Evidence: which words and phrases of a text matched a facet, and the sentence that matched
//! best. Scores without reasons are not answers; this is where the reasons come from.

// Looked up once per word of the text: a fast hash, seeded per process.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use std::cell::OnceCell;
use std::ops::Range;

use super::index::{CorpusIndex, PAIR_JOINER};
use super::model::Query;
use crate::text::{Analyzer, Token, sentences};

/// A named piece of text to explain: a title, a body, or one post.
#[derive(Debug, Clone, Copy)]
pub struct TextPart<'a> {
    /// Where the text stands: `title`, `body`, or a post's id.
    pub location: &'a str,
    pub text: &'a str,
}

/// A text part with its words and sentences, analyzed once however many explanations read it:
/// a conversation is explained for each facet it serves and for the person it suits.
#[derive(Debug, Clone)]
pub struct AnalyzedPart<'a> {
    pub part: TextPart<'a>,
    tokens: Vec<Token>,
    /// Sentences, in order: found when an explanation first looks for its best sentence in
    /// this part, which most parts of a long thread never need.
    sentences: OnceCell<Vec<Sentence>>,
}

/// A sentence of a part: where it stands, which of the part's tokens it holds, and how many
/// words it has (what its score is divided by), found once for every query that reads it.
#[derive(Debug, Clone)]
struct Sentence {
    range: Range<usize>,
    tokens: Range<usize>,
    words: usize,
}

impl AnalyzedPart<'_> {
    fn sentences(&self) -> &[Sentence] {
        self.sentences.get_or_init(|| {
            let tokens = &self.tokens;
            // Sentences and tokens are both in text order: one walk pairs them.
            let mut next = 0;
            sentences(self.part.text)
                .into_iter()
                .map(|range| {
                    while next < tokens.len() && tokens[next].span.start < range.start {
                        next += 1;
                    }
                    let first = next;
                    while next < tokens.len() && tokens[next].span.start < range.end {
                        next += 1;
                    }
                    let words = self.part.text[range.clone()].split_whitespace().count();
                    Sentence {
                        range,
                        tokens: first..next,
                        words,
                    }
                })
                .collect()
        })
    }
}

pub(crate) fn analyze<'a>(analyzer: &Analyzer, parts: &[TextPart<'a>]) -> Vec<AnalyzedPart<'a>> {
    parts
        .iter()
        .map(|part| AnalyzedPart {
            part: *part,
            tokens: analyzer.tokens(part.text),
            sentences: OnceCell::new(),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MatchedTerm {
    /// The word as written in the text.
    pub term: String,
    /// How much it contributed, relative to the best term (1.0).
    pub weight: f32,
    /// Whether the strategist's own words contain it, or it came from corpus expansion.
    pub from_strategy: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    pub facet_id: String,
    pub terms: Vec<MatchedTerm>,
    /// Multi-word phrases of the facet found verbatim (after stemming) in the text.
    pub phrases: Vec<String>,
    /// The sentence that matched best, as written.
    pub sentence: String,
    /// Where that sentence stands.
    pub location: String,
}

const MAX_TERMS: usize = 8;
const MAX_PHRASES: usize = 5;
const MAX_SENTENCE_CHARS: usize = 400;

/// A query made ready to explain texts: its terms' weights (query weight × idf) looked up by
/// stem, and its two-word terms by their words, so that explaining a text allocates nothing per
/// word. Build it once and explain every text of a request with it: a suggestion explains ten
/// threads for the same facet and the same person.
#[derive(Debug, Clone)]
pub struct Explainer<'q> {
    label: &'q str,
    weights: HashMap<&'q str, f32>,
    /// Two-word terms by (first, second) stem.
    pairs: HashMap<(&'q str, &'q str), f32>,
    base: &'q Query,
}

/// No base query: every matched term counts as not the strategist's own.
static NO_BASE: Query = Query { terms: Vec::new() };

impl<'q> Explainer<'q> {
    /// `terms` are (stem or two-word term, query weight); `base` holds the strategist's own
    /// words, to tell them from corpus expansion.
    pub(crate) fn new(
        index: &CorpusIndex,
        label: &'q str,
        terms: impl IntoIterator<Item = (&'q str, f32)>,
        base: Option<&'q Query>,
    ) -> Self {
        let mut weights = HashMap::new();
        let mut pairs = HashMap::new();
        for (term, weight) in terms {
            let weight = weight * index.idf_of(term);
            match term.split_once(PAIR_JOINER) {
                Some(pair) => {
                    pairs.insert(pair, weight);
                }
                None => {
                    weights.insert(term, weight);
                }
            }
        }
        Self {
            label,
            weights,
            pairs,
            base: base.unwrap_or(&NO_BASE),
        }
    }

    /// For a compiled query, such as a facet's.
    pub(crate) fn for_query(
        index: &CorpusIndex,
        label: &'q str,
        query: &'q Query,
        base: &'q Query,
    ) -> Self {
        let terms = query
            .terms
            .iter()
            .map(|term| (term.term.as_str(), term.weight));
        Self::new(index, label, terms, Some(base))
    }

    /// The words and phrases of `parts` that match the query, and the sentence that matches
    /// best.
    pub fn explain(&self, parts: &[AnalyzedPart<'_>]) -> Evidence {
        let weights = &self.weights;
        // stem -> (first surface form, total contribution)
        let mut matched: HashMap<&str, (&str, f32)> = HashMap::new();
        let mut phrases: Vec<(&str, f32)> = Vec::new();
        // Per part, the weight of the distinct words it matched: no sentence of the part can
        // score more, so parts are searched for the best sentence from the highest bound down.
        let mut bounds: Vec<(f32, usize)> = Vec::with_capacity(parts.len());
        let mut distinct: HashSet<&str> = HashSet::new();
        for (index, analyzed) in parts.iter().enumerate() {
            let (part, tokens) = (&analyzed.part, &analyzed.tokens);
            distinct.clear();
            let mut bound = 0.0f32;
            for token in tokens {
                if let Some(&weight) = weights.get(&*token.stem) {
                    let entry = matched
                        .entry(&*token.stem)
                        .or_insert_with(|| (&part.text[token.span.clone()], 0.0));
                    // Repeats add less and less, as in BM25.
                    entry.1 += weight / (1.0 + entry.1 / weight.max(1e-6));
                    if distinct.insert(&*token.stem) {
                        bound += weight.max(0.0);
                    }
                }
            }
            if bound > 0.0 {
                bounds.push((bound, index));
            }
            if self.pairs.is_empty() {
                continue;
            }
            for pair in tokens.windows(2) {
                if pair[1].position != pair[0].position + 1 {
                    continue;
                }
                let key = (&*pair[0].stem, &*pair[1].stem);
                if let Some(&weight) = self.pairs.get(&key) {
                    let surface = &part.text[pair[0].span.start..pair[1].span.end];
                    if !phrases
                        .iter()
                        .any(|(phrase, _)| phrase.eq_ignore_ascii_case(surface))
                    {
                        phrases.push((surface, weight));
                    }
                }
            }
        }
        let best_sentence = best_sentence(parts, weights, bounds);
        let mut terms: Vec<(&str, &str, f32)> = matched
            .into_iter()
            .map(|(stem, (surface, weight))| (stem, surface, weight))
            .collect();
        terms.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(b.0)));
        terms.truncate(MAX_TERMS);
        let top = terms.first().map_or(1.0, |term| term.2.max(1e-6));
        phrases.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        phrases.truncate(MAX_PHRASES);
        let (sentence, location) = best_sentence
            .map(|(sentence, location)| (shorten(sentence), location.to_owned()))
            .unwrap_or_default();
        Evidence {
            facet_id: self.label.to_owned(),
            terms: terms
                .into_iter()
                .map(|(stem, surface, weight)| MatchedTerm {
                    from_strategy: self.base.weight_of(stem) > 0.0,
                    term: surface.to_owned(),
                    weight: (weight / top * 1000.0).round() / 1000.0,
                })
                .collect(),
            phrases: phrases
                .into_iter()
                .map(|(phrase, _)| phrase.to_owned())
                .collect(),
            sentence,
            location,
        }
    }
}

pub(crate) fn explain(
    index: &CorpusIndex,
    facet_id: &str,
    query: &Query,
    base: &Query,
    parts: &[AnalyzedPart<'_>],
) -> Evidence {
    Explainer::for_query(index, facet_id, query, base).explain(parts)
}

/// The sentence that matched best, and where it stands: the highest score over every sentence
/// of every part, the first in text order among equals. Parts are searched from the highest
/// `bounds` (the most a sentence of the part can score) down, and the search stops at a bound
/// under the best score found: the parts left cannot hold a better sentence, nor an equal one.
fn best_sentence<'p>(
    parts: &'p [AnalyzedPart<'_>],
    weights: &HashMap<&str, f32>,
    mut bounds: Vec<(f32, usize)>,
) -> Option<(&'p str, &'p str)> {
    bounds.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    // (score, part, sentence of the part)
    let mut best: Option<(f32, usize, usize)> = None;
    for (bound, index) in bounds {
        if best.is_some_and(|(score, _, _)| bound < score) {
            break;
        }
        let analyzed = &parts[index];
        for (number, sentence) in analyzed.sentences().iter().enumerate() {
            let tokens = &analyzed.tokens[sentence.tokens.clone()];
            let score = words_score(tokens, sentence.words, weights);
            let better = best.is_none_or(|(best, best_part, best_number)| {
                score > best || (score == best && (index, number) < (best_part, best_number))
            });
            if score > 0.0 && better {
                best = Some((score, index, number));
            }
        }
    }
    best.map(|(_, index, number)| {
        let analyzed = &parts[index];
        let range = analyzed.sentences()[number].range.clone();
        (&analyzed.part.text[range], analyzed.part.location)
    })
}

/// `words_score` of a sentence as written, its words counted.
#[cfg(test)]
fn sentence_score(sentence: &str, tokens: &[Token], weights: &HashMap<&str, f32>) -> f32 {
    words_score(tokens, sentence.split_whitespace().count(), weights)
}

/// How well a sentence matches: the weights of the distinct words it matched, with a mild
/// penalty for length (long sentences match more words by length alone), to keep the quote to the
/// point. `tokens` are the sentence's, `words` how many words it has.
fn words_score(tokens: &[Token], words: usize, weights: &HashMap<&str, f32>) -> f32 {
    let mut seen: Vec<&str> = Vec::new();
    let mut score = 0.0;
    for token in tokens {
        if seen.contains(&&*token.stem) {
            continue;
        }
        if let Some(weight) = weights.get(&*token.stem) {
            seen.push(&*token.stem);
            score += weight;
        }
    }
    score / (1.0 + words.max(1) as f32 / 40.0)
}

fn shorten(sentence: &str) -> String {
    let collapsed = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_SENTENCE_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MAX_SENTENCE_CHARS).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::model::QueryTerm;

    const WORDS: &[&str] = &[
        "tracing",
        "span",
        "sampling",
        "collector",
        "deploy",
        "rollback",
        "canary",
        "bread",
        "oven",
        "garden",
        "soil",
        "quietly",
        "seven",
    ];

    /// Generated texts: word indices with how each word ends (a full stop, an exclamation and a
    /// line break, a comma, after a stop word, or nothing), and a location per text.
    fn written(texts: &[Vec<(usize, u8)>]) -> (Vec<String>, Vec<String>) {
        let texts: Vec<String> = texts
            .iter()
            .map(|words| {
                words
                    .iter()
                    .map(|(word, end)| match end {
                        0 => format!("{}.", WORDS[*word]),
                        1 => format!("{}!\n", WORDS[*word]),
                        2 => format!("{}, ", WORDS[*word]),
                        3 => format!("The {}", WORDS[*word]),
                        _ => WORDS[*word].to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let locations = (0..texts.len()).map(|part| format!("p{part}")).collect();
        (texts, locations)
    }

    fn as_parts<'a>(texts: &'a [String], locations: &'a [String]) -> Vec<TextPart<'a>> {
        texts
            .iter()
            .zip(locations)
            .map(|(text, location)| TextPart { location, text })
            .collect()
    }

    /// The best sentence as a walk over every sentence of every part in text order finds it,
    /// each sentence's tokens found by their place in the text.
    fn walked<'p>(
        parts: &'p [AnalyzedPart<'_>],
        weights: &HashMap<&str, f32>,
    ) -> Option<(&'p str, &'p str)> {
        let mut best: Option<(f32, &str, &str)> = None;
        for analyzed in parts {
            for range in &sentences(analyzed.part.text) {
                let sentence = &analyzed.part.text[range.clone()];
                let tokens: Vec<Token> = analyzed
                    .tokens
                    .iter()
                    .filter(|token| token.span.start >= range.start && token.span.start < range.end)
                    .cloned()
                    .collect();
                let score = sentence_score(sentence, &tokens, weights);
                if score > 0.0 && best.is_none_or(|(best, _, _)| score > best) {
                    best = Some((score, sentence, analyzed.part.location));
                }
            }
        }
        best.map(|(_, sentence, location)| (sentence, location))
    }

    /// Evidence as the plain reading of its definition: every query term (two-word ones as
    /// joined strings) in one map, every adjacent pair of words joined and looked up, every
    /// sentence walked.
    fn plainly(
        index: &CorpusIndex,
        query: &Query,
        base: &Query,
        parts: &[AnalyzedPart<'_>],
    ) -> Evidence {
        use crate::engine::index::pair_term;
        let weights: HashMap<&str, f32> = query
            .terms
            .iter()
            .map(|term| (term.term.as_str(), term.weight * index.idf_of(&term.term)))
            .collect();
        let mut matched: Vec<(String, String, f32)> = Vec::new();
        let mut phrases: Vec<(String, f32)> = Vec::new();
        for analyzed in parts {
            let text = analyzed.part.text;
            for token in &analyzed.tokens {
                if let Some(&weight) = weights.get(&*token.stem) {
                    let at = match matched
                        .iter()
                        .position(|(stem, _, _)| **stem == *token.stem)
                    {
                        Some(at) => at,
                        None => {
                            let surface = text[token.span.clone()].to_owned();
                            matched.push((token.stem.to_string(), surface, 0.0));
                            matched.len() - 1
                        }
                    };
                    let sum = &mut matched[at].2;
                    *sum += weight / (1.0 + *sum / weight.max(1e-6));
                }
            }
            for pair in analyzed.tokens.windows(2) {
                if pair[1].position != pair[0].position + 1 {
                    continue;
                }
                if let Some(&weight) = weights.get(pair_term(&pair[0].stem, &pair[1].stem).as_str())
                {
                    let surface = &text[pair[0].span.start..pair[1].span.end];
                    if !phrases
                        .iter()
                        .any(|(phrase, _)| phrase.eq_ignore_ascii_case(surface))
                    {
                        phrases.push((surface.to_owned(), weight));
                    }
                }
            }
        }
        matched.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        matched.truncate(MAX_TERMS);
        let top = matched.first().map_or(1.0, |term| term.2.max(1e-6));
        phrases.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        phrases.truncate(MAX_PHRASES);
        let (sentence, location) = walked(parts, &weights)
            .map(|(sentence, location)| (shorten(sentence), location.to_owned()))
            .unwrap_or_default();
        Evidence {
            facet_id: "facet".to_owned(),
            terms: matched
                .into_iter()
                .map(|(stem, surface, weight)| MatchedTerm {
                    from_strategy: base.weight_of(&stem) > 0.0,
                    term: surface,
                    weight: (weight / top * 1000.0).round() / 1000.0,
                })
                .collect(),
            phrases: phrases.into_iter().map(|(phrase, _)| phrase).collect(),
            sentence,
            location,
        }
    }

    proptest! {
        /// An explainer finds the words, phrases and sentence the plain reading finds: the
        /// two-word terms looked up by their words, the stems borrowed, the best sentence
        /// searched from the highest bound down.
        #[test]
        fn an_explainer_finds_what_the_plain_reading_finds(
            texts in prop::collection::vec(
                prop::collection::vec((0..WORDS.len(), 0u8..7), 0..40),
                1..6,
            ),
            singles in prop::collection::vec((0..WORDS.len(), 0u8..4), 0..8),
            pairs in prop::collection::vec((0..WORDS.len(), 0..WORDS.len(), 1u8..4), 0..6),
            strategist in prop::collection::vec(any::<bool>(), 14),
        ) {
            let analyzer = Analyzer::new();
            let (texts, locations) = written(&texts);
            let parts = as_parts(&texts, &locations);
            let analyzed = analyze(&analyzer, &parts);
            let stem = |word: usize| analyzer.stems(WORDS[word]).concat();
            let mut terms: Vec<QueryTerm> = singles
                .iter()
                .map(|(word, weight)| QueryTerm { term: stem(*word), weight: f32::from(*weight) })
                .collect();
            terms.extend(pairs.iter().map(|(first, second, weight)| QueryTerm {
                term: crate::engine::index::pair_term(&stem(*first), &stem(*second)),
                weight: f32::from(*weight),
            }));
            let query = Query { terms };
            let base = Query {
                terms: query
                    .terms
                    .iter()
                    .zip(&strategist)
                    .filter(|(_, own)| **own)
                    .map(|(term, _)| term.clone())
                    .collect(),
            };
            let index = CorpusIndex::new();
            let explained = Explainer::for_query(&index, "facet", &query, &base).explain(&analyzed);
            prop_assert_eq!(explained, plainly(&index, &query, &base, &analyzed));
        }
    }

    proptest! {
        /// Searching parts from the highest bound down finds the sentence a walk over every
        /// sentence finds, the first among equals included.
        #[test]
        fn the_bounded_search_finds_the_best_sentence(
            texts in prop::collection::vec(
                prop::collection::vec((0..WORDS.len(), 0u8..7), 0..40),
                1..8,
            ),
            weighted in prop::collection::vec((0..WORDS.len(), 0u8..4), 0..8),
        ) {
            let analyzer = Analyzer::new();
            let (texts, locations) = written(&texts);
            let parts = as_parts(&texts, &locations);
            let analyzed = analyze(&analyzer, &parts);
            let stems: Vec<String> = weighted
                .iter()
                .map(|(word, _)| analyzer.stems(WORDS[*word]).concat())
                .collect();
            let mut weights: HashMap<&str, f32> = HashMap::new();
            for (stem, (_, weight)) in stems.iter().zip(&weighted) {
                // Whole numbers make equal scores common, so that ties are tested too.
                weights.insert(stem.as_str(), f32::from(*weight));
            }
            let mut bounds = Vec::new();
            for (index, part) in analyzed.iter().enumerate() {
                let mut distinct: Vec<&str> = part
                    .tokens
                    .iter()
                    .map(|token| &*token.stem)
                    .filter(|stem| weights.contains_key(stem))
                    .collect();
                distinct.sort_unstable();
                distinct.dedup();
                let bound: f32 = distinct.iter().map(|stem| weights[stem].max(0.0)).sum();
                if bound > 0.0 {
                    bounds.push((bound, index));
                }
            }
            prop_assert_eq!(best_sentence(&analyzed, &weights, bounds), walked(&analyzed, &weights));
        }
    }
}
