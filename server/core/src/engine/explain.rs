//! Evidence: which words and phrases of a text matched a facet, and the sentence that matched
//! best. Scores without reasons are not answers; this is where the reasons come from.

// Looked up once per word of the text: a fast hash, seeded per process.
use foldhash::{HashMap, HashMapExt};

use std::ops::Range;

use super::index::{CorpusIndex, is_pair_term, pair_term};
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
    /// Sentence ranges, in order.
    sentences: Vec<Range<usize>>,
}

pub(crate) fn analyze<'a>(analyzer: &Analyzer, parts: &[TextPart<'a>]) -> Vec<AnalyzedPart<'a>> {
    parts
        .iter()
        .map(|part| AnalyzedPart {
            part: *part,
            tokens: analyzer.tokens(part.text),
            sentences: sentences(part.text),
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

pub(crate) fn explain(
    index: &CorpusIndex,
    facet_id: &str,
    query: &Query,
    base: &Query,
    parts: &[AnalyzedPart<'_>],
) -> Evidence {
    let weights: HashMap<&str, f32> = query
        .terms
        .iter()
        .map(|term| (term.term.as_str(), term.weight * index.idf_of(&term.term)))
        .collect();
    // stem -> (first surface form, total contribution)
    let mut matched: HashMap<String, (String, f32)> = HashMap::new();
    let mut phrases: Vec<(String, f32)> = Vec::new();
    let mut best_sentence: Option<(f32, &str, &str)> = None;
    for analyzed in parts {
        let (part, tokens) = (&analyzed.part, &analyzed.tokens);
        for token in tokens {
            if let Some(weight) = weights.get(token.stem.as_str()) {
                let entry = matched
                    .entry(token.stem.clone())
                    .or_insert_with(|| (part.text[token.span.clone()].to_owned(), 0.0));
                // Repeats add less and less, as in BM25.
                entry.1 += weight / (1.0 + entry.1 / weight.max(1e-6));
            }
        }
        for pair in tokens.windows(2) {
            if pair[1].position != pair[0].position + 1 {
                continue;
            }
            let term = pair_term(&pair[0].stem, &pair[1].stem);
            if let Some(weight) = weights.get(term.as_str()) {
                let surface = &part.text[pair[0].span.start..pair[1].span.end];
                if !phrases
                    .iter()
                    .any(|(phrase, _)| phrase.eq_ignore_ascii_case(surface))
                {
                    phrases.push((surface.to_owned(), *weight));
                }
            }
        }
        // Sentences and tokens are both in text order: one walk pairs them.
        let mut next = 0;
        for range in &analyzed.sentences {
            let sentence = &part.text[range.clone()];
            while next < tokens.len() && tokens[next].span.start < range.start {
                next += 1;
            }
            let mut seen: Vec<&str> = Vec::new();
            let mut score = 0.0;
            while next < tokens.len() && tokens[next].span.start < range.end {
                let token = &tokens[next];
                next += 1;
                if seen.contains(&token.stem.as_str()) {
                    continue;
                }
                if let Some(weight) = weights.get(token.stem.as_str()) {
                    seen.push(token.stem.as_str());
                    score += weight;
                }
            }
            // Long sentences match more words by length alone; a mild penalty keeps the
            // quote to the point.
            let words = sentence.split_whitespace().count().max(1) as f32;
            let score = score / (1.0 + words / 40.0);
            if score > 0.0 && best_sentence.is_none_or(|(best, _, _)| score > best) {
                best_sentence = Some((score, sentence, part.location));
            }
        }
    }
    let mut terms: Vec<(String, String, f32)> = matched
        .into_iter()
        .filter(|(stem, _)| !is_pair_term(stem))
        .map(|(stem, (surface, weight))| (stem, surface, weight))
        .collect();
    terms.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(MAX_TERMS);
    let top = terms.first().map_or(1.0, |term| term.2.max(1e-6));
    phrases.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    phrases.truncate(MAX_PHRASES);
    let (sentence, location) = best_sentence
        .map(|(_, sentence, location)| (shorten(sentence), location.to_owned()))
        .unwrap_or_default();
    Evidence {
        facet_id: facet_id.to_owned(),
        terms: terms
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
