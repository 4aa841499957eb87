//! Evidence: which words and phrases of a text matched a facet, and the sentence that matched
//! best. Scores without reasons are not answers; this is where the reasons come from.

// Looked up once per word of the text: a fast hash, seeded per process.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::sync::OnceLock;

use super::index::{CorpusIndex, PAIR_JOINER};
use super::model::Query;
use crate::text::{Analyzer, Token, link_spans, readable, sentences, word_count, written_words};

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
    /// The words of its prose: a link's words (scheme, host, path) and words written as code or
    /// file names are not among them.
    tokens: Vec<Token>,
    /// Where its links stand.
    links: Vec<Range<usize>>,
    /// Sentences, in order: found when an explanation first looks for its best sentence in
    /// this part, which most parts of a long thread never need.
    sentences: OnceLock<Vec<Sentence>>,
}

/// A sentence of a part: where it stands, which of the part's tokens it holds, and how many
/// words it has (what its score is divided by), found once for every query that reads it.
#[derive(Debug, Clone)]
struct Sentence {
    range: Range<usize>,
    tokens: Range<usize>,
    words: usize,
    /// Whether it reads as prose worth quoting: not a quotation of someone else (`>`), not
    /// mostly a link, and with at least [`PROSE_WORDS`] words besides its links.
    prose: bool,
}

/// The fewest words outside links that a quoted sentence has: fewer is a label, a signature or
/// a bare link with a caption.
const PROSE_WORDS: usize = 4;

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
                    let text = &self.part.text[range.clone()];
                    let words = word_count(text);
                    let prose = is_prose(text, range.start, &self.links);
                    Sentence {
                        range,
                        tokens: first..next,
                        words,
                        prose,
                    }
                })
                .collect()
        })
    }
}

pub(crate) fn analyze<'a>(analyzer: &Analyzer, parts: &[TextPart<'a>]) -> Vec<AnalyzedPart<'a>> {
    parts
        .iter()
        .map(|part| {
            let links = link_spans(part.text);
            let mut tokens = analyzer.tokens(part.text);
            tokens.retain(|token| {
                !in_links(&links, token.span.start)
                    && !looks_like_code(&part.text[token.span.clone()])
            });
            AnalyzedPart {
                part: *part,
                tokens,
                links,
                sentences: OnceLock::new(),
            }
        })
        .collect()
}

/// Whether the byte at `at` is inside one of `links` (sorted, disjoint).
fn in_links(links: &[Range<usize>], at: usize) -> bool {
    let index = links.partition_point(|link| link.end <= at);
    links.get(index).is_some_and(|link| link.start <= at)
}

/// A word written as a name in code or on disk: a file name (`compost.css`), an identifier
/// (`max_len`, `apa.taba1`), a path. Evidence never names one as what matched.
fn looks_like_code(word: &str) -> bool {
    word.contains(['.', '/', '_', '@', ':', '\\', '=', '#'])
}

/// Whether the sentence at `start` in its part (with the part's `links`) reads as prose: not a
/// quotation, not mostly links, with enough words of its own.
fn is_prose(sentence: &str, start: usize, links: &[Range<usize>]) -> bool {
    if sentence.starts_with('>') {
        return false;
    }
    let end = start + sentence.len();
    let words_in = |text: &str| {
        text.split_whitespace()
            .filter(|word| word.chars().any(char::is_alphabetic))
            .map(written_words)
            .sum::<usize>()
    };
    // Words are counted between the links (a link ends a word), links' bytes apart.
    let (mut words, mut linked, mut at) = (0usize, 0usize, start);
    for link in links
        .iter()
        .filter(|link| link.end > start && link.start < end)
    {
        let (from, to) = (link.start.max(start), link.end.min(end));
        if from > at {
            words += words_in(&sentence[at - start..from - start]);
        }
        linked += to - from;
        at = to.max(at);
    }
    if at < end {
        words += words_in(&sentence[at - start..]);
    }
    words >= PROSE_WORDS && linked * 2 <= sentence.len()
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
    /// The community's most common words (stems): never named as what matched, and a sentence
    /// made mostly of them is a remark about the site, not evidence (see [`CommonWords`]).
    common: Option<Arc<CommonWords>>,
}

/// The words a community uses everywhere, whatever the subject: its most frequent stems by
/// how many conversations use them and by how often they are written. Learned from each
/// community's own text, they hold its meta vocabulary (answer, question, thanks, edit) and the
/// function words of its language, which no fixed list has for every platform.
#[derive(Debug, Clone, Default)]
pub struct CommonWords {
    stems: HashSet<String>,
    /// The median topicality of the community's words (see [`topicality`]): a word below it
    /// is a word of style there, never named as an interest or a reason.
    topicality_floor: f64,
}

impl CommonWords {
    pub fn new(stems: impl IntoIterator<Item = String>, topicality_floor: f64) -> Self {
        Self {
            stems: stems.into_iter().collect(),
            topicality_floor,
        }
    }

    pub fn topicality_floor(&self) -> f64 {
        self.topicality_floor
    }

    pub fn contains(&self, stem: &str) -> bool {
        self.stems.contains(stem)
    }

    pub fn len(&self) -> usize {
        self.stems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stems.is_empty()
    }
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
            common: None,
        }
    }

    /// Tells the community's common words apart (see [`CommonWords`]).
    pub fn with_common_words(mut self, common: Arc<CommonWords>) -> Self {
        self.common = (!common.is_empty()).then_some(common);
        self
    }

    fn is_common(&self, stem: &str) -> bool {
        self.common
            .as_ref()
            .is_some_and(|common| common.contains(stem))
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
        let best_sentence = best_sentence(parts, weights, bounds, &|stem| self.is_common(stem));
        let mut terms: Vec<(&str, &str, f32)> = matched
            .into_iter()
            .filter(|(stem, _)| !self.is_common(stem))
            .map(|(stem, (surface, weight))| (stem, surface, weight))
            .collect();
        terms.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(b.0)));
        terms.truncate(MAX_TERMS);
        let top = terms.first().map_or(1.0, |term| term.2.max(1e-6));
        phrases.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        phrases.truncate(MAX_PHRASES);
        let (sentence, location) = best_sentence
            .map(|(sentence, location)| (shorten(&readable(sentence)), location.to_owned()))
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
///
/// Only prose is quoted (see [`Sentence::prose`]), and not a remark about the site: a sentence
/// whose words are mostly the community's common words (`common`), which also count a quarter
/// of their weight, as they say little about the subject.
fn best_sentence<'p>(
    parts: &'p [AnalyzedPart<'_>],
    weights: &HashMap<&str, f32>,
    mut bounds: Vec<(f32, usize)>,
    common: &dyn Fn(&str) -> bool,
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
            if !sentence.prose {
                continue;
            }
            let tokens = &analyzed.tokens[sentence.tokens.clone()];
            let ordinary = tokens.iter().filter(|token| common(&token.stem)).count();
            if !tokens.is_empty() && ordinary * 2 > tokens.len() {
                continue;
            }
            let score = words_score(tokens, sentence.words, weights, common);
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
    words_score(tokens, word_count(sentence), weights, &|_| false)
}

/// How well a sentence matches: the weights of the distinct words it matched, with a mild
/// penalty for length (long sentences match more words by length alone), to keep the quote to the
/// point. `tokens` are the sentence's, `words` how many words it has.
fn words_score(
    tokens: &[Token],
    words: usize,
    weights: &HashMap<&str, f32>,
    common: &dyn Fn(&str) -> bool,
) -> f32 {
    let mut seen: Vec<&str> = Vec::new();
    let mut score = 0.0;
    for token in tokens {
        if seen.contains(&&*token.stem) {
            continue;
        }
        if let Some(weight) = weights.get(&*token.stem) {
            seen.push(&*token.stem);
            score += if common(&token.stem) {
                weight * 0.25
            } else {
                *weight
            };
        }
    }
    score / (1.0 + words.max(1) as f32 / 40.0)
}

/// A word or two-word phrase that distinguishes a person's writing from their community's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Distinctive {
    /// The stem, or two stems joined by the index's pair joiner.
    pub stem: String,
    /// As the person writes it most often.
    pub surface: String,
    /// Dunning's log-likelihood ratio (G²) of their use of it against the community's.
    pub score: f32,
    /// How often they wrote it.
    pub count: u32,
}

/// The fewest times, and in the fewest of a person's texts, a word must be written to be one
/// of their interests: a word used once is an accident, not an interest.
const MIN_INTEREST_COUNT: u32 = 2;
const MIN_INTEREST_TEXTS: u32 = 2;

/// What distinguishes the writing in `parts` (one person's) from the whole collection of
/// `index`: every word and adjacent pair of words written at least [`MIN_INTEREST_COUNT`] times
/// in [`MIN_INTEREST_TEXTS`] texts, scored by Dunning's log-likelihood ratio (G²) of its rate
/// there against its rate in the rest of the community, kept only where the person uses it
/// more and the ratio is significant ([`SIGNIFICANT_INTEREST`]). Words that are not words (see
/// [`crate::text::is_displayable_word`]), link parts, the community's `common` words and its
/// words of style (see [`topicality`]) are never interests. Best first; at most `limit`, a
/// phrase standing in for the words it is made of. With `fill`, someone who wrote too little
/// for that many is described by what they did write, after the significant ones: words they
/// use more than the community, however few times.
pub(crate) fn distinctive(
    index: &CorpusIndex,
    common: &CommonWords,
    parts: &[AnalyzedPart<'_>],
    phrases: bool,
    limit: usize,
    fill: bool,
) -> Vec<Distinctive> {
    /// A word's or phrase's uses: how often, in how many texts, and its surface forms as
    /// written (slices of the texts; the first few kept), so that counting allocates nothing
    /// per word.
    #[derive(Default)]
    struct Tally<'t> {
        count: u32,
        texts: u32,
        last_text: usize,
        surfaces: Vec<(&'t str, u32)>,
    }
    fn note<'t>(tally: &mut Tally<'t>, text: usize, surface: &'t str) {
        tally.count += 1;
        if tally.texts == 0 || tally.last_text != text {
            tally.texts += 1;
            tally.last_text = text;
        }
        if let Some((_, count)) = tally
            .surfaces
            .iter_mut()
            .find(|(known, _)| known.eq_ignore_ascii_case(surface))
        {
            *count += 1;
        } else if tally.surfaces.len() < 8 {
            tally.surfaces.push((surface, 1));
        }
    }
    let mut tallies: HashMap<Cow<'_, str>, Tally<'_>> = HashMap::new();
    let mut words = 0u64;
    // Parts at the same location (a conversation's title and body) are one text.
    let mut number = 0usize;
    let mut location: Option<&str> = None;
    for analyzed in parts {
        if location != Some(analyzed.part.location) {
            number += 1;
            location = Some(analyzed.part.location);
        }
        let text = analyzed.part.text;
        let kept: Vec<&Token> = analyzed
            .tokens
            .iter()
            .filter(|token| crate::text::is_displayable_word(&text[token.span.clone()]))
            .collect();
        words += analyzed.tokens.len() as u64;
        for token in &kept {
            if common.contains(&token.stem) {
                continue;
            }
            let tally = tallies.entry(Cow::Borrowed(&*token.stem)).or_default();
            note(tally, number, &text[token.span.clone()]);
        }
        for pair in kept.windows(2).filter(|_| phrases) {
            let (first, second) = (pair[0], pair[1]);
            if second.position != first.position + 1
                || (common.contains(&first.stem) && common.contains(&second.stem))
            {
                continue;
            }
            let key = super::index::pair_term(&first.stem, &second.stem);
            let surface = &text[first.span.start..second.span.end];
            note(tallies.entry(Cow::Owned(key)).or_default(), number, surface);
        }
    }
    if words == 0 {
        return Vec::new();
    }
    let person = words as f64;
    let rest = (collection_words(index) - person).max(1.0);
    let many_texts = number >= 2;
    // (whether it has the evidence an interest needs, the candidate)
    let mut scored: Vec<(bool, Distinctive)> = tallies
        .into_iter()
        .filter_map(|(stem, tally)| {
            let enough = tally.count >= MIN_INTEREST_COUNT
                && (!many_texts || tally.texts >= MIN_INTEREST_TEXTS);
            if !enough && !fill {
                return None;
            }
            let pair = super::index::is_pair_term(&stem);
            let weight = if pair { super::index::PAIR_WEIGHT } else { 1.0 };
            let community = index
                .term_id(&stem)
                .map_or(0.0, |id| f64::from(index.cf(id) / weight));
            let own = f64::from(tally.count);
            let others = (community - own).max(0.0);
            if own / person <= others / rest {
                return None;
            }
            let score = log_likelihood(own, person, others, rest);
            let enough = enough && score >= SIGNIFICANT_INTEREST;
            if !enough && !fill {
                return None;
            }
            // A phrase is judged by its words: one of them must be about something.
            let topical = stem
                .split(PAIR_JOINER)
                .map(|word| topicality(index, word))
                .fold(0.0f64, f64::max);
            if topical < common.topicality_floor() {
                return None;
            }
            let score = score as f32;
            let surface = tally
                .surfaces
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(surface, _)| shown(surface))?;
            Some((
                enough,
                Distinctive {
                    stem: stem.into_owned(),
                    surface,
                    score,
                    count: tally.count,
                },
            ))
        })
        .collect();
    scored.sort_by(|(enough_a, a), (enough_b, b)| {
        enough_b
            .cmp(enough_a)
            .then_with(|| b.score.total_cmp(&a.score))
            .then_with(|| a.stem.cmp(&b.stem))
    });
    let mut chosen: Vec<Distinctive> = Vec::with_capacity(limit);
    for (_, candidate) in scored {
        if chosen.len() >= limit {
            break;
        }
        let covered = |stem: &str| {
            chosen.iter().any(|kept| {
                kept.stem == stem || kept.stem.split(PAIR_JOINER).any(|word| word == stem)
            })
        };
        match candidate.stem.split_once(PAIR_JOINER) {
            // A phrase whose words are both named already adds nothing.
            Some((first, second)) if covered(first) && covered(second) => continue,
            Some((first, second)) => {
                // The phrase says more than its words: it takes their place.
                chosen.retain(|kept| kept.stem != first && kept.stem != second);
            }
            None if covered(&candidate.stem) => continue,
            None => {}
        }
        chosen.push(candidate);
    }
    chosen
}

/// A word or phrase as shown: its words lower-cased unless written as an acronym (`NASA`),
/// one space between them.
fn shown(surface: &str) -> String {
    surface
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}' || c == '-'))
        .filter(|word| !word.is_empty())
        .map(|word| {
            let acronym = word.chars().filter(|c| c.is_uppercase()).count() >= 2
                && !word.chars().any(char::is_lowercase);
            if acronym {
                word.to_owned()
            } else {
                word.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many words the collection holds: its weighted length counts each word once and each
/// adjacent pair at [`PAIR_WEIGHT`](super::index::PAIR_WEIGHT).
fn collection_words(index: &CorpusIndex) -> f64 {
    (index.total_length() / (1.0 + f64::from(super::index::PAIR_WEIGHT))).max(1.0)
}

/// Dunning's log-likelihood ratio of a word written `a` times in `n1` words against `c` times
/// in `n2`.
fn log_likelihood(a: f64, n1: f64, c: f64, n2: f64) -> f64 {
    let total = n1 + n2;
    let expected_a = n1 * (a + c) / total;
    let expected_c = n2 * (a + c) / total;
    let mut g = 0.0;
    if a > 0.0 {
        g += a * (a / expected_a).ln();
    }
    if c > 0.0 {
        g += c * (c / expected_c).ln();
    }
    2.0 * g
}

/// The words of `parts` (one text, such as a thread) that join it to a person, best first:
/// those among the person's distinctive words (`interests`, stem to G², each significant) that
/// the text uses more than the community does, scored by the geometric mean of the person's G²
/// and the text's (the same log-likelihood ratio of the text's use of the word against the
/// community's); named as the text writes them. At most `limit`.
pub(crate) fn joining_words(
    index: &CorpusIndex,
    common: &CommonWords,
    interests: &HashMap<String, f32>,
    parts: &[AnalyzedPart<'_>],
    limit: usize,
) -> Vec<(String, String)> {
    let mut found: HashMap<&str, (String, u32)> = HashMap::new();
    let mut words = 0u64;
    for analyzed in parts {
        let text = analyzed.part.text;
        words += analyzed.tokens.len() as u64;
        for token in &analyzed.tokens {
            let Some((stem, _)) = interests.get_key_value(&*token.stem) else {
                continue;
            };
            let surface = &text[token.span.clone()];
            if !crate::text::is_displayable_word(surface) {
                continue;
            }
            found
                .entry(stem.as_str())
                .or_insert_with(|| (surface.to_lowercase(), 0))
                .1 += 1;
        }
    }
    let length = words.max(1) as f64;
    let rest = (collection_words(index) - length).max(1.0);
    let mut scored: Vec<(f32, &str, String)> = found
        .into_iter()
        .filter_map(|(stem, (surface, count))| {
            let own = f64::from(count);
            let community = index
                .term_id(stem)
                .map_or(0.0, |id| f64::from(index.cf(id)));
            let others = (community - own).max(0.0);
            if own / length <= others / rest {
                return None;
            }
            let here = log_likelihood(own, length, others, rest);
            let person = f64::from(interests.get(stem).copied().unwrap_or(0.0).max(0.0));
            let topical = topicality(index, stem);
            if topical < common.topicality_floor() {
                return None;
            }
            let topical = 1.0 + topical;
            Some((((here * person).sqrt() * topical) as f32, stem, surface))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(limit)
        .map(|(_, stem, surface)| (stem.to_owned(), surface))
        .collect()
}

/// How much a word is about something: its residual IDF (Church and Gale), the bits by which
/// the conversations using it are fewer than if its occurrences fell at random (Poisson). A
/// subject's words come in bursts ("worm" five times in the thread about worms); a word of style
/// ("understand", "personally") is spread one at a time over many threads and scores about 0.
/// A word too rare to tell (in fewer than [`TOPICALITY_MIN_CONVERSATIONS`]) counts as topical.
pub(crate) fn topicality(index: &CorpusIndex, stem: &str) -> f64 {
    let Some(id) = index.term_id(stem) else {
        return 1.0;
    };
    let df = f64::from(index.df(id));
    let documents = index.len() as f64;
    if df < f64::from(TOPICALITY_MIN_CONVERSATIONS) || documents < 1.0 {
        return 1.0;
    }
    let expected = 1.0 - (-f64::from(index.cf(id)) / documents).exp();
    ((documents / df).log2() + expected.max(1e-12).log2()).clamp(0.0, 3.0)
}

pub(crate) const TOPICALITY_MIN_CONVERSATIONS: u32 = 5;

/// The log-likelihood ratio above which a person's higher rate of a word is not chance: the χ²
/// critical value at p = 0.001 with one degree of freedom.
const SIGNIFICANT_INTEREST: f64 = 10.83;

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
                if !is_prose(sentence, range.start, &analyzed.links) {
                    continue;
                }
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
            prop_assert_eq!(
                best_sentence(&analyzed, &weights, bounds, &|_| false),
                walked(&analyzed, &weights)
            );
        }
    }

    /// Evidence quotes prose: not a bare link with a caption, not a quotation, and links in the
    /// sentence quoted are shown by their host; a link's words never count as matched.
    #[test]
    fn evidence_quotes_prose_and_shows_links_by_their_host() {
        let index = CorpusIndex::new();
        let query = Query {
            terms: vec![
                QueryTerm {
                    term: "compost".into(),
                    weight: 1.0,
                },
                QueryTerm {
                    term: "weed".into(),
                    weight: 1.0,
                },
            ],
        };
        let text = "Garden weeds http://www.compostweeds.com/weeds.html\n\
                    > Compost weeds quoted from someone else, at length here.\n\
                    Weeds go in a hot compost pile, see compostweeds.com for why.";
        let analyzer = Analyzer::new();
        let parts = analyze(
            &analyzer,
            &[TextPart {
                location: "body",
                text,
            }],
        );
        let evidence = Explainer::for_query(&index, "facet", &query, &query).explain(&parts);
        assert_eq!(
            evidence.sentence,
            "Weeds go in a hot compost pile, see (a link to compostweeds.com) for why."
        );
        assert!(
            evidence.terms.iter().all(|term| !term.term.contains('.')),
            "{:?}",
            evidence.terms
        );
    }

    /// A person's interests are the words they use far more than their community, with a floor
    /// of evidence; words of every thread (common words) are never among them.
    #[test]
    fn interests_are_what_sets_a_person_apart() {
        let analyzer = Analyzer::new();
        let mut index = CorpusIndex::new();
        let community = [
            "How do I start a compost pile in a small garden, thanks for any answer",
            "Which answer is right about solar panels on a flat roof, thanks",
            "A question about insulation and the answer I got, thanks",
            "My answer about heat pumps in winter, thanks for reading",
            "Rainwater barrels for the garden: a question, thanks",
        ];
        // Enough of the community that six uses of a word it never writes stand out.
        for (number, text) in community.iter().cycle().take(20).enumerate() {
            let mut bag = super::super::index::TermBag::default();
            bag.add_tokens(&analyzer.tokens(text), 1.0);
            index.apply(
                &crate::domain::RecordKey::new("forum", number.to_string()),
                None,
                Some(&bag),
            );
        }
        let writing = [
            "Red wiggler worms eat kitchen scraps; worms like it damp. Thanks, see my answer.",
            "Feed the worms slowly: worms drown in a wet bin. Thanks for the question.",
            "A worm bin on the balcony works, the worms stay warm. Thanks.",
            "Once, a rhubarb leaf.",
        ];
        let parts: Vec<TextPart<'_>> = writing
            .iter()
            .enumerate()
            .map(|(number, text)| TextPart {
                location: ["a", "b", "c", "d"][number],
                text,
            })
            .collect();
        let parts = analyze(&analyzer, &parts);
        let common = CommonWords::new(["thank".to_owned(), "answer".to_owned()], 0.0);
        let interests = distinctive(&index, &common, &parts, true, 5, false);
        let shown: Vec<&str> = interests.iter().map(|term| term.surface.as_str()).collect();
        assert_eq!(shown.first(), Some(&"worms"), "{interests:?}");
        assert!(
            !shown.contains(&"thanks") && !shown.contains(&"answer"),
            "{shown:?}"
        );
        assert!(!shown.contains(&"rhubarb"), "written once: {shown:?}");
        let joined: HashMap<String, f32> = interests
            .iter()
            .map(|term| (term.stem.clone(), term.score))
            .collect();
        let thread = analyze(
            &analyzer,
            &[TextPart {
                location: "title",
                text: "Can worms live in a bin on a cold balcony?",
            }],
        );
        let words = joining_words(&index, &common, &joined, &thread, 3);
        assert_eq!(
            words.first().map(|(_, surface)| surface.as_str()),
            Some("worms")
        );
    }
}
