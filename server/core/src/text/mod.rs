//! Text analysis: each text's language detected, then Unicode word segmentation (jieba for
//! Chinese, script runs for Japanese), case folding, the language's stop words and its Snowball
//! stemmer, with the byte offsets of every token kept so that evidence can quote the exact words and
//! sentence that matched.
//!
//! One analyzer serves documents and queries alike; a term only matches itself after both
//! sides went through the same steps.

mod cjk;
pub mod language;

pub use language::{Analysis, Detected, Language, detect};

use language::{CharScript, word_script};
use rust_stemmers::Stemmer;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use unicode_segmentation::UnicodeSegmentation;

/// The Snowball English stop word list, plus a few function words it leaves out.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "aren't",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "can't",
    "cannot",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "doing",
    "don't",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "hadn't",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "he'd",
    "he'll",
    "he's",
    "her",
    "here",
    "here's",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "how's",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "isn't",
    "it",
    "it's",
    "its",
    "itself",
    "let's",
    "me",
    "more",
    "most",
    "mustn't",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "ought",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "shan't",
    "she",
    "she'd",
    "she'll",
    "she's",
    "should",
    "shouldn't",
    "so",
    "some",
    "such",
    "than",
    "that",
    "that's",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "they'd",
    "they'll",
    "they're",
    "they've",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "wasn't",
    "we",
    "we'd",
    "we'll",
    "we're",
    "we've",
    "were",
    "weren't",
    "what",
    "what's",
    "when",
    "when's",
    "where",
    "where's",
    "which",
    "while",
    "who",
    "who's",
    "whom",
    "why",
    "why's",
    "will",
    "with",
    "won't",
    "would",
    "wouldn't",
    "you",
    "you'd",
    "you'll",
    "you're",
    "you've",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "also",
    "just",
    "may",
    "might",
    "must",
    "shall",
    "us",
    "via",
    "yet",
    "etc",
    "e.g",
    "i.e",
    "s",
    "t",
    "ll",
    "ve",
    "re",
    "d",
    "m",
];

fn stop_words() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
}

pub fn is_stop_word(word: &str) -> bool {
    stop_words().contains(word)
}

/// One analysed word: its stem, where it stands in the text, and its position among the
/// text's words (stop words count, so adjacency means adjacency in the original).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Shared with every other token of the same word this thread analyzed lately (see
    /// `STEMS`), so that a token costs no allocation of its own.
    pub stem: Arc<str>,
    pub span: Range<usize>,
    pub position: u32,
}

pub struct Analyzer {
    /// A Snowball stemmer for each language that has one.
    stemmers: HashMap<Language, Stemmer>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer(per language)")
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

/// Words whose stems a thread keeps per language before it starts afresh: about a MiB per
/// thread, which holds the common words of a language; the service runs requests on many threads.
const STEMS_KEPT: usize = 10_000;

thread_local! {
    /// Stems of words already seen by this thread, per language.
    static STEMS: RefCell<foldhash::HashMap<Language, foldhash::HashMap<String, Arc<str>>>> =
        RefCell::new(foldhash::HashMap::default());
}

/// The longest word kept; longer runs are base64, hashes or URLs and never carry meaning.
const MAX_WORD_BYTES: usize = 40;

impl Analyzer {
    pub fn new() -> Self {
        let stemmers = Language::all()
            .filter_map(|language| Some((language, Stemmer::create(language.stemmer()?))))
            .collect();
        Self { stemmers }
    }

    /// The content words of `text`, stemmed, in order, analysed in the language detected for
    /// the text (see [`language::detect`]); words in another script than that language's are
    /// analysed as their own script's language.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        self.tokens_in(text, detect(text).language)
    }

    /// The language detected for `text`, and its content words read in it.
    pub fn analyse(&self, text: &str) -> (Detected, Vec<Token>) {
        let detected = detect(text);
        (detected, self.tokens_in(text, detected.language))
    }

    /// The content words of `text` read as written in `language`.
    pub fn tokens_in(&self, text: &str, language: Language) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut lowered = String::new();
        let mut position = 0u32;
        let mut words = text.unicode_word_indices().peekable();
        while let Some((offset, word)) = words.next() {
            let script = word_script(word);
            if script.is_cjk() {
                // Unicode makes each ideograph and kana a word of its own: the run they form
                // together is what gets segmented.
                let mut end = offset + word.len();
                let mut kana = script != CharScript::Han;
                while let Some(&(next, following)) = words.peek() {
                    let following_script = word_script(following);
                    if next != end || !following_script.is_cjk() {
                        break;
                    }
                    kana |= following_script != CharScript::Han;
                    end = next + following.len();
                    words.next();
                }
                let run = &text[offset..end];
                let run_language = if kana || language == Language::JAPANESE {
                    Language::JAPANESE
                } else {
                    Language::CHINESE
                };
                let ranges = if run_language == Language::JAPANESE {
                    cjk::japanese_words(run)
                } else {
                    cjk::chinese_words(run)
                };
                for range in ranges {
                    let word = &run[range.clone()];
                    if !run_language.is_stop_word(word) {
                        tokens.push(Token {
                            stem: self.stem(run_language, word),
                            span: offset + range.start..offset + range.end,
                            position,
                        });
                    }
                    position = position.saturating_add(1);
                }
                continue;
            }
            let at = position;
            position = position.saturating_add(1);
            if word.len() > MAX_WORD_BYTES || script == CharScript::Unspaced {
                continue;
            }
            let mut word_language = language.for_script(script);
            // A lone letter of another script is a symbol (α, ω in an English formula), not a
            // word of that script's language: it keeps the text's language, as before.
            if word_language != language && word.chars().nth(1).is_none() {
                word_language = language;
            }
            let word = if script == CharScript::Hangul {
                &word[..cjk::korean_stem_len(word)]
            } else {
                word
            };
            lowered.clear();
            let ascii = word.is_ascii();
            if ascii {
                lowered.push_str(word);
                lowered.make_ascii_lowercase();
            } else {
                lowered.extend(word.chars().flat_map(char::to_lowercase));
            }
            // Typographic apostrophes fold to the ASCII one so that "don’t" is a stop word too.
            let folded: Cow<'_, str> = if !ascii && lowered.contains('\u{2019}') {
                Cow::Owned(lowered.replace('\u{2019}', "'"))
            } else {
                Cow::Borrowed(&lowered)
            };
            if word_language.is_stop_word(&folded) || !folded.chars().any(char::is_alphanumeric) {
                continue;
            }
            // Pure numbers other than years carry little topical weight and flood the vocabulary.
            if folded.chars().all(|c| c.is_ascii_digit()) && folded.len() != 4 {
                continue;
            }
            let base = if word_language == Language::ENGLISH {
                folded.strip_suffix("'s").unwrap_or(&folded)
            } else {
                &folded
            };
            tokens.push(Token {
                stem: self.stem(word_language, base),
                span: offset..offset + word.len(),
                position: at,
            });
        }
        tokens
    }

    /// The stem of a lower-cased word in `language` (the word itself where the language has no
    /// stemmer). Stems are kept per thread: a text repeats its words, and a word's stem never
    /// changes.
    fn stem(&self, language: Language, word: &str) -> Arc<str> {
        STEMS.with(|stems| {
            let mut stems = stems.borrow_mut();
            let stems = stems.entry(language).or_default();
            if let Some(stem) = stems.get(word) {
                return stem.clone();
            }
            let stem: Arc<str> = match self.stemmers.get(&language) {
                Some(stemmer) => Arc::from(stemmer.stem(word)),
                None => Arc::from(word),
            };
            if stems.len() >= STEMS_KEPT {
                stems.clear();
            }
            stems.insert(word.to_owned(), stem.clone());
            stem
        })
    }

    /// Stems only, for queries and indexing.
    pub fn stems(&self, text: &str) -> Vec<String> {
        self.tokens(text)
            .into_iter()
            .map(|token| token.stem.to_string())
            .collect()
    }
}

/// Where links stand in `text`: URLs with or without a scheme (`http://…`, `www.…`,
/// `example.org/page`) and e-mail addresses, as byte ranges in text order. Their words are not
/// prose: evidence neither quotes them as what a person writes about nor counts them as the
/// words a sentence matched.
pub fn link_spans(text: &str) -> Vec<Range<usize>> {
    // Most texts have no dot followed by a letter and no '@': nothing to look for.
    if !text.contains(['.', '@']) {
        return Vec::new();
    }
    let mut finder = linkify::LinkFinder::new();
    finder.url_must_have_scheme(false);
    finder
        .links(text)
        .map(|link| link.start()..link.end())
        .collect()
}

/// What a link is shown as in a quoted sentence: its host without `www.` (a link's own words
/// are a path, a query and a scheme, not something a person said); an e-mail address becomes
/// "an address".
pub fn link_label(link: &str) -> String {
    if link.contains('@') && !link.contains('/') {
        return "(an address)".to_owned();
    }
    let without_scheme = link.split_once("://").map_or(link, |(_, rest)| rest);
    let host = without_scheme
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or(without_scheme);
    let host = host.strip_prefix("www.").unwrap_or(host);
    format!("(a link to {host})")
}

/// `text` as a reader should see it quoted: each link replaced by what it points at (see
/// [`link_label`]), white space collapsed.
pub fn readable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut at = 0;
    for link in link_spans(text) {
        shown.push_str(&text[at..link.start]);
        shown.push_str(&link_label(&text[link.clone()]));
        at = link.end;
    }
    shown.push_str(&text[at..]);
    shown.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a word as written reads as a word a person would name as an interest: letters only
/// (an apostrophe or a hyphen inside), at least three of them in alphabets with letters that
/// short, and not written as code (`getValue`). Host names, file names (`compost.css`), numbers
/// and identifiers (`apa.taba1`, `max_len`) are not.
pub fn is_displayable_word(word: &str) -> bool {
    let mut letters = 0usize;
    let mut previous_lower = false;
    let mut ideographic = false;
    for c in word.chars() {
        if c.is_alphabetic() {
            if c.is_uppercase() && previous_lower {
                return false;
            }
            previous_lower = c.is_lowercase();
            ideographic |= !c.is_lowercase() && !c.is_uppercase();
            letters += 1;
        } else if matches!(c, '\'' | '\u{2019}' | '-') {
            previous_lower = false;
        } else {
            return false;
        }
    }
    letters >= 3 || (ideographic && letters >= 1)
}

/// The language of a conversation-like text: its title and opening text read together, since a
/// title alone is often too short to tell.
pub fn language_of(title: &str, body: &str) -> Language {
    // Detection reads a sample of the start: the body beyond it is not copied.
    let mut end = body.len().min(language::DETECTION_SAMPLE_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let mut text = String::with_capacity(title.len() + end + 2);
    text.push_str(title);
    text.push_str(".\n");
    text.push_str(&body[..end]);
    detect(&text).language
}

/// How many words `text` has as a reader counts them: its space-separated words, where a run
/// of Chinese or Japanese (written without spaces) counts a word per two characters, about the
/// length of a word there.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().map(written_words).sum()
}

/// The words one space-separated piece of text holds (see [`word_count`]).
pub fn written_words(piece: &str) -> usize {
    let cjk = piece
        .chars()
        .filter(|c| CharScript::of(*c).is_cjk())
        .count();
    if cjk == 0 { 1 } else { cjk.div_ceil(2) }
}

/// Words listed in a title: "a and b" in English, "a、b" in Chinese and Japanese (the
/// ideographic comma), "a, b" in the other languages, whose "and" Trellis does not write.
pub fn join_words(words: &[String]) -> String {
    let all = |test: fn(&String) -> bool| !words.is_empty() && words.iter().all(test);
    let separator = if all(|word| word.chars().any(|c| CharScript::of(c).is_cjk())) {
        "、"
    } else if all(|word| word.is_ascii()) {
        " and "
    } else {
        ", "
    };
    words.join(separator)
}

/// Sentences of `text` with their byte ranges, trimmed, empty ones dropped. Line breaks end a
/// sentence too (Unicode treats them as paragraph separators), which suits titles and list items
/// that have no full stop.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    text.split_sentence_bound_indices()
        .filter_map(|(offset, sentence)| {
            let trimmed = sentence.trim();
            if trimmed.is_empty() {
                return None;
            }
            let begin = offset + (sentence.len() - sentence.trim_start().len());
            Some(begin..begin + trimmed.len())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept stems are the stemmer's: before the thread's store fills, after it starts afresh,
    /// and for a word seen for the first time.
    #[test]
    fn kept_stems_are_the_stemmers_stems() {
        use rust_stemmers::Algorithm;
        let analyzer = Analyzer::new();
        let stemmer = Stemmer::create(Algorithm::English);
        let text = "Running runners ran; the connections connected quickly, generously";
        let expected: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty() && !is_stop_word(&word.to_lowercase()))
            .map(|word| stemmer.stem(&word.to_lowercase()).into_owned())
            .collect();
        assert_eq!(analyzer.stems(text), expected);
        assert_eq!(analyzer.stems(text), expected, "read from the kept stems");
        let flood: String = (0..STEMS_KEPT + 10)
            .map(|n| format!("flooding{n}words "))
            .collect();
        assert_eq!(analyzer.stems(&flood).len(), STEMS_KEPT + 10);
        assert_eq!(
            analyzer.stems(text),
            expected,
            "after the kept stems started afresh"
        );
    }

    #[test]
    fn stems_fold_case_and_drop_stop_words() {
        let analyzer = Analyzer::new();
        assert_eq!(
            analyzer.stems("The Circuits are DECOMPOSED into gates, aren’t they?"),
            ["circuit", "decompos", "gate"]
        );
    }

    fn stems_of(text: &str) -> Vec<String> {
        Analyzer::new().stems(text)
    }

    #[test]
    fn chinese_is_read_as_words_without_function_characters() {
        let stems = stems_of("我今天在首尔听了韩国的流行音乐，我是一个歌迷。");
        assert!(stems.iter().any(|stem| stem.contains("韩国")), "{stems:?}");
        assert!(stems.iter().any(|stem| stem.contains("音乐")), "{stems:?}");
        for function in ["的", "我", "了", "是", "一", "在", "国", "韩"] {
            assert!(
                !stems.iter().any(|stem| stem == function),
                "{function} in {stems:?}"
            );
        }
        // Domestic economic news shares no word with Korean pop music: 国 alone is not a word.
        let news = stems_of("国内经济新闻：央行宣布降息，股市上涨。");
        let music = stems_of("韩国流行音乐");
        assert!(
            !news.iter().any(|stem| music.contains(stem)),
            "{news:?} against {music:?}"
        );
    }

    #[test]
    fn japanese_and_korean_are_read_as_words() {
        let stems = stems_of("量子コンピュータのプログラミングを勉強しています。");
        assert_eq!(stems, ["量子", "コンピュータ", "プログラミング", "勉強"]);
        let stems = stems_of("한국의 대중음악은 전 세계에서 인기가 많습니다.");
        for word in ["한국", "대중음악", "세계", "인기"] {
            assert!(
                stems.iter().any(|stem| stem == word),
                "{word} not in {stems:?}"
            );
        }
    }

    #[test]
    fn european_languages_use_their_own_stemmer_and_stop_words() {
        let spanish =
            stems_of("¿Cómo puedo reciclar los envases de plástico en casa sin que se contaminen?");
        assert!(
            !spanish
                .iter()
                .any(|stem| ["los", "de", "en", "que", "se"].contains(&stem.as_str())),
            "{spanish:?}"
        );
        assert_eq!(
            stems_of("Reciclamos los envases de plástico cada semana en nuestra casa."),
            stems_of("Reciclamos los envases de plástico cada semana en nuestra casa.")
        );
        let recycle =
            stems_of("Los vecinos reciclan envases y plásticos de la comunidad cada semana.");
        assert!(
            spanish
                .iter()
                .any(|stem| recycle.contains(stem) && stem.starts_with("envas")),
            "{spanish:?} / {recycle:?}"
        );
        let german = stems_of(
            "Wie kann man die Kunststoffverpackungen zu Hause recyceln, ohne dass sie verschmutzen?",
        );
        assert!(
            german.contains(&"kunststoffverpack".to_owned()),
            "{german:?}"
        );
        assert!(
            !german
                .iter()
                .any(|stem| ["die", "zu", "sie", "dass"].contains(&stem.as_str())),
            "{german:?}"
        );
        let russian =
            stems_of("Как правильно сортировать пластиковые отходы дома, чтобы их переработали?");
        let russian_again =
            stems_of("Сортировка пластикового мусора и отходов: советы для дома и работы.");
        assert!(
            russian
                .iter()
                .any(|stem| stem.starts_with("пластиков") && russian_again.contains(stem)),
            "{russian:?} / {russian_again:?}"
        );
        assert!(
            !russian
                .iter()
                .any(|stem| ["как", "их", "чтобы"].contains(&stem.as_str())),
            "{russian:?}"
        );
    }

    #[test]
    fn each_script_run_is_read_in_its_own_language() {
        let stems = stems_of(
            "Our quantum computing meetup in Shanghai discussed 量子计算 and circuits with the community.",
        );
        assert!(stems.contains(&"circuit".to_owned()), "{stems:?}");
        assert!(
            stems
                .iter()
                .any(|stem| stem == "量子" || stem == "量子计算"),
            "{stems:?}"
        );
    }

    #[test]
    fn unspaced_scripts_are_not_scored_as_noise() {
        assert!(stems_of("ภาษาไทยเขียนติดกันโดยไม่มีช่องว่างระหว่างคำ").is_empty());
    }

    #[test]
    fn spans_point_at_the_original_words() {
        let analyzer = Analyzer::new();
        let text = "Qubits décohèrent quickly";
        let tokens = analyzer.tokens(text);
        assert_eq!(&text[tokens[1].span.clone()], "décohèrent");
        assert_eq!(tokens[2].position, 2);
    }

    #[test]
    fn links_are_found_with_or_without_a_scheme_and_shown_by_their_host() {
        let text = "Garden weeds http://www.homecompostingmadeeasy.com/weeds.html and see \
                    compost.css.cornell.edu or mail me@example.org.";
        let links: Vec<&str> = link_spans(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            links,
            [
                "http://www.homecompostingmadeeasy.com/weeds.html",
                "compost.css.cornell.edu",
                "me@example.org"
            ]
        );
        assert_eq!(
            readable(text),
            "Garden weeds (a link to homecompostingmadeeasy.com) and see (a link to \
             compost.css.cornell.edu) or mail (an address)."
        );
        assert!(link_spans("No links here. Just prose.").is_empty());
    }

    #[test]
    fn displayable_words_are_words() {
        for word in ["compost", "Worms", "don't", "well-being", "NASA", "量子"] {
            assert!(is_displayable_word(word), "{word}");
        }
        for word in [
            "apa.taba1",
            "compost.css",
            "http",
            "co2",
            "2013",
            "max_len",
            "getValue",
            "ab",
            "a/b",
        ] {
            if word == "http" {
                // A word on its own: only a link's position says it is not prose.
                assert!(is_displayable_word(word));
                continue;
            }
            assert!(!is_displayable_word(word), "{word}");
        }
    }

    #[test]
    fn words_are_counted_in_scripts_without_spaces_too() {
        assert_eq!(word_count("Quantum gates, decomposed.  Twice"), 4);
        assert_eq!(word_count("我下个月要去首尔看演唱会。"), 6);
        assert_eq!(word_count("量子コンピュータ is fun"), 6);
    }

    #[test]
    fn words_are_listed_as_their_language_lists_them() {
        let words = |list: &[&str]| {
            list.iter()
                .map(|word| (*word).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            join_words(&words(&["compost", "worms"])),
            "compost and worms"
        );
        assert_eq!(join_words(&words(&["韩国", "演唱会"])), "韩国、演唱会");
        assert_eq!(join_words(&words(&["韩国", "K-pop"])), "韩国, K-pop");
        assert_eq!(
            join_words(&words(&["квантовых", "компьютеров"])),
            "квантовых, компьютеров"
        );
    }

    #[test]
    fn sentences_split_on_stops_and_line_breaks() {
        let text = "First one. Second one?\n\nA heading\nstill heading";
        let parts: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            parts,
            ["First one.", "Second one?", "A heading", "still heading"]
        );
    }
}
