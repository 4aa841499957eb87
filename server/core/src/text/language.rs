//! Which language a text is written in, and how Trellis analyses each language.
//!
//! Detection is `whatlang`'s (trigram statistics per script, 69 languages). A text's language
//! decides how its words in that language's script are stemmed and which stop words drop; a
//! word in another script (a Russian name in a German post, a Chinese phrase in an English one)
//! is analysed as its own script's language (see [`Language::for_script`]). Detection is a pure
//! function of the text, so a document and a query that quote the same words always analyse
//! them alike.

use rust_stemmers::Algorithm;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use whatlang::{Lang, Script};

/// A language Trellis can tell apart. Its code is ISO 639-1 where one exists (`en`, `zh`,
/// `pt`), ISO 639-3 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(Lang);

/// Languages sort by code, so that lists of them read the same every time.
impl Ord for Language {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl PartialOrd for Language {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How the words of a language are found and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    /// Words folded to lower case, the language's stop words dropped, and reduced to their
    /// Snowball stem.
    Stemmed,
    /// Chinese: runs of Han characters cut into words by jieba's dictionary and HMM.
    SegmentedChinese,
    /// Japanese: kanji runs as overlapping character bigrams (as Lucene's CJK analyser does; no
    /// dictionary analyser ships its dictionary in a crate here), katakana runs as whole words,
    /// hiragana (particles and inflections) left out.
    SegmentedJapanese,
    /// Korean: space-separated words with their trailing particle taken off, stop words dropped.
    Korean,
    /// Words folded to lower case and the language's stop words dropped where a list exists; no
    /// stemmer covers the language, so inflected forms stay apart.
    Words,
    /// Written without spaces between words and no segmenter for it here (Thai, Lao, Khmer,
    /// Burmese): stored and counted, but its words do not enter the index.
    NotAnalysed,
}

impl Analysis {
    /// What a reader is told about it.
    pub fn describe(self) -> &'static str {
        match self {
            Analysis::Stemmed => "Snowball stemming and stop words",
            Analysis::SegmentedChinese => "jieba word segmentation and stop words",
            Analysis::SegmentedJapanese => {
                "kanji bigrams and katakana words (no dictionary analyser; hiragana left out)"
            }
            Analysis::Korean => "words with particles taken off, and stop words",
            Analysis::Words => "words and stop words, without stemming",
            Analysis::NotAnalysed => "not analysed: written without spaces, and no segmenter",
        }
    }

    /// Whether the language's words enter the index at all.
    pub fn is_analysed(self) -> bool {
        self != Analysis::NotAnalysed
    }
}

/// ISO 639-1 codes of whatlang's languages (ISO 639-3 is whatlang's own `code()`).
const ISO_639_1: &[(Lang, &str)] = &[
    (Lang::Epo, "eo"),
    (Lang::Eng, "en"),
    (Lang::Rus, "ru"),
    (Lang::Cmn, "zh"),
    (Lang::Spa, "es"),
    (Lang::Por, "pt"),
    (Lang::Ita, "it"),
    (Lang::Ben, "bn"),
    (Lang::Fra, "fr"),
    (Lang::Deu, "de"),
    (Lang::Ukr, "uk"),
    (Lang::Kat, "ka"),
    (Lang::Ara, "ar"),
    (Lang::Hin, "hi"),
    (Lang::Jpn, "ja"),
    (Lang::Heb, "he"),
    (Lang::Yid, "yi"),
    (Lang::Pol, "pl"),
    (Lang::Amh, "am"),
    (Lang::Jav, "jv"),
    (Lang::Kor, "ko"),
    (Lang::Nob, "nb"),
    (Lang::Dan, "da"),
    (Lang::Swe, "sv"),
    (Lang::Fin, "fi"),
    (Lang::Tur, "tr"),
    (Lang::Nld, "nl"),
    (Lang::Hun, "hu"),
    (Lang::Ces, "cs"),
    (Lang::Ell, "el"),
    (Lang::Bul, "bg"),
    (Lang::Bel, "be"),
    (Lang::Mar, "mr"),
    (Lang::Kan, "kn"),
    (Lang::Ron, "ro"),
    (Lang::Slv, "sl"),
    (Lang::Hrv, "hr"),
    (Lang::Srp, "sr"),
    (Lang::Mkd, "mk"),
    (Lang::Lit, "lt"),
    (Lang::Lav, "lv"),
    (Lang::Est, "et"),
    (Lang::Tam, "ta"),
    (Lang::Vie, "vi"),
    (Lang::Urd, "ur"),
    (Lang::Tha, "th"),
    (Lang::Guj, "gu"),
    (Lang::Uzb, "uz"),
    (Lang::Pan, "pa"),
    (Lang::Aze, "az"),
    (Lang::Ind, "id"),
    (Lang::Tel, "te"),
    (Lang::Pes, "fa"),
    (Lang::Mal, "ml"),
    (Lang::Ori, "or"),
    (Lang::Mya, "my"),
    (Lang::Nep, "ne"),
    (Lang::Sin, "si"),
    (Lang::Khm, "km"),
    (Lang::Tuk, "tk"),
    (Lang::Aka, "ak"),
    (Lang::Zul, "zu"),
    (Lang::Sna, "sn"),
    (Lang::Afr, "af"),
    (Lang::Lat, "la"),
    (Lang::Slk, "sk"),
    (Lang::Cat, "ca"),
    (Lang::Tgl, "tl"),
    (Lang::Hye, "hy"),
    (Lang::Cym, "cy"),
];

/// The Snowball stemmers `rust-stemmers` ships, by language.
const STEMMERS: &[(Lang, Algorithm)] = &[
    (Lang::Ara, Algorithm::Arabic),
    (Lang::Dan, Algorithm::Danish),
    (Lang::Nld, Algorithm::Dutch),
    (Lang::Eng, Algorithm::English),
    (Lang::Fin, Algorithm::Finnish),
    (Lang::Fra, Algorithm::French),
    (Lang::Deu, Algorithm::German),
    (Lang::Ell, Algorithm::Greek),
    (Lang::Hun, Algorithm::Hungarian),
    (Lang::Ita, Algorithm::Italian),
    (Lang::Nob, Algorithm::Norwegian),
    (Lang::Por, Algorithm::Portuguese),
    (Lang::Ron, Algorithm::Romanian),
    (Lang::Rus, Algorithm::Russian),
    (Lang::Spa, Algorithm::Spanish),
    (Lang::Swe, Algorithm::Swedish),
    (Lang::Tam, Algorithm::Tamil),
    (Lang::Tur, Algorithm::Turkish),
];

/// How much of a text detection reads: a few hundred characters tell a language as well as the
/// whole, and a long post should not cost more to detect than to analyse.
pub(crate) const DETECTION_SAMPLE_BYTES: usize = 1_000;

/// The script of one character, as far as analysis cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharScript {
    Latin,
    Cyrillic,
    Greek,
    Han,
    Hiragana,
    Katakana,
    Hangul,
    /// Thai, Lao, Khmer and Burmese: no spaces between words.
    Unspaced,
    Other,
}

impl CharScript {
    pub(crate) fn of(c: char) -> CharScript {
        match c as u32 {
            0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF => CharScript::Latin,
            0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => {
                CharScript::Cyrillic
            }
            0x370..=0x3FF | 0x1F00..=0x1FFF => CharScript::Greek,
            0x3040..=0x309F => CharScript::Hiragana,
            // The prolonged sound mark (ー) belongs with katakana, where it is written.
            0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => CharScript::Katakana,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => {
                CharScript::Han
            }
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F => {
                CharScript::Hangul
            }
            0xE00..=0xEFF | 0x1000..=0x109F | 0x1780..=0x17FF | 0x19E0..=0x19FF => {
                CharScript::Unspaced
            }
            _ => CharScript::Other,
        }
    }

    /// Han, kana: the scripts written without spaces that analysis segments itself.
    pub(crate) fn is_cjk(self) -> bool {
        matches!(
            self,
            CharScript::Han | CharScript::Hiragana | CharScript::Katakana
        )
    }
}

/// The script of a word: that of its first letter.
pub(crate) fn word_script(word: &str) -> CharScript {
    word.chars()
        .find(|c| c.is_alphabetic())
        .map_or(CharScript::Other, CharScript::of)
}

impl Language {
    pub const ENGLISH: Language = Language(Lang::Eng);
    pub const CHINESE: Language = Language(Lang::Cmn);
    pub const JAPANESE: Language = Language(Lang::Jpn);
    pub const KOREAN: Language = Language(Lang::Kor);
    pub const RUSSIAN: Language = Language(Lang::Rus);

    /// Every language detection can name.
    pub fn all() -> impl Iterator<Item = Language> {
        Lang::all().iter().map(|lang| Language(*lang))
    }

    /// ISO 639-1 where one exists, ISO 639-3 otherwise.
    pub fn code(self) -> &'static str {
        ISO_639_1
            .iter()
            .find(|(lang, _)| *lang == self.0)
            .map_or_else(|| self.0.code(), |(_, code)| code)
    }

    /// The language's name in English.
    pub fn name(self) -> &'static str {
        self.0.eng_name()
    }

    /// A language from a platform's tag: ISO 639-1 or 639-3, with a region or script after a
    /// hyphen or underscore (`pt-BR`, `zh_Hant`), in any case. `no` reads as Norwegian Bokmål.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let primary = match primary.as_str() {
            "no" | "nn" => "nb",
            "zho" | "chi" => "cmn",
            other => other,
        };
        if let Some((lang, _)) = ISO_639_1.iter().find(|(_, code)| *code == primary) {
            return Some(Language(*lang));
        }
        Lang::from_code(primary).map(Language)
    }

    /// How this language's words are analysed.
    pub fn analysis(self) -> Analysis {
        match self.0 {
            Lang::Cmn => Analysis::SegmentedChinese,
            Lang::Jpn => Analysis::SegmentedJapanese,
            Lang::Kor => Analysis::Korean,
            Lang::Tha | Lang::Khm | Lang::Mya => Analysis::NotAnalysed,
            lang if STEMMERS.iter().any(|(stemmed, _)| *stemmed == lang) => Analysis::Stemmed,
            _ => Analysis::Words,
        }
    }

    pub(crate) fn stemmer(self) -> Option<Algorithm> {
        STEMMERS
            .iter()
            .find(|(lang, _)| *lang == self.0)
            .map(|(_, algorithm)| *algorithm)
    }

    /// Whether `word` (lower-cased) is one of this language's stop words. English keeps the
    /// Snowball list Trellis has always used; the others are the stopwords-iso lists.
    pub(crate) fn is_stop_word(self, word: &str) -> bool {
        if self == Language::ENGLISH {
            return super::is_stop_word(word);
        }
        stop_words_by_language()
            .get(&self)
            .is_some_and(|words| words.contains(word))
    }

    /// The script this language's words are written in, where it has one script of its own.
    fn script(self) -> Option<CharScript> {
        match self.0 {
            Lang::Cmn => Some(CharScript::Han),
            Lang::Jpn => None,
            Lang::Kor => Some(CharScript::Hangul),
            Lang::Rus
            | Lang::Ukr
            | Lang::Bel
            | Lang::Bul
            | Lang::Srp
            | Lang::Mkd
            | Lang::Uzb
            | Lang::Tuk => Some(CharScript::Cyrillic),
            Lang::Ell => Some(CharScript::Greek),
            Lang::Tha | Lang::Khm | Lang::Mya => Some(CharScript::Unspaced),
            lang if lang_script(lang) == Some(Script::Latin) => Some(CharScript::Latin),
            _ => Some(CharScript::Other),
        }
    }

    /// The language a word in `script` is analysed as, within a text in this language: this
    /// language where it is written in that script, otherwise the script's most used language
    /// (English for Latin, Russian for Cyrillic).
    pub(crate) fn for_script(self, script: CharScript) -> Language {
        if self.script() == Some(script) {
            return self;
        }
        match script {
            CharScript::Latin => Language::ENGLISH,
            CharScript::Cyrillic => Language::RUSSIAN,
            CharScript::Greek => Language(Lang::Ell),
            CharScript::Han => Language::CHINESE,
            CharScript::Hiragana | CharScript::Katakana => Language::JAPANESE,
            CharScript::Hangul => Language::KOREAN,
            CharScript::Unspaced | CharScript::Other => self,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

fn lang_script(lang: Lang) -> Option<Script> {
    static SCRIPTS: OnceLock<HashMap<Lang, Script>> = OnceLock::new();
    SCRIPTS
        .get_or_init(|| {
            // whatlang names the languages of each script; a language written in several (Serbian)
            // keeps the first it is listed under.
            let mut scripts = HashMap::new();
            for script in Script::all() {
                for lang in script.langs() {
                    scripts.entry(*lang).or_insert(*script);
                }
            }
            scripts
        })
        .get(&lang)
        .copied()
}

fn stop_words_by_language() -> &'static HashMap<Language, HashSet<&'static str>> {
    static WORDS: OnceLock<HashMap<Language, HashSet<&'static str>>> = OnceLock::new();
    WORDS.get_or_init(|| {
        Language::all()
            .filter_map(|language| {
                let code = match language.code() {
                    "nb" => "no",
                    code => code,
                };
                let words = stop_words::lookup(code)?;
                Some((language, words.iter().copied().collect()))
            })
            .collect()
    })
}

/// What detection found for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub language: Language,
    /// Whether the text said so: English by its function words, another language by whatlang's
    /// sure guess (for Latin letters, backed by that language's function words). Otherwise the
    /// script's most used language stands in (English for Latin, Russian for Cyrillic), which
    /// is also what a text without any letters reads as.
    pub reliable: bool,
}

/// The language of `text` (its first [`DETECTION_SAMPLE_BYTES`]).
pub fn detect(text: &str) -> Detected {
    let mut end = text.len().min(DETECTION_SAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let sample = &text[..end];
    if reads_as_english(sample) {
        return Detected {
            language: Language::ENGLISH,
            reliable: true,
        };
    }
    let Some(info) = whatlang::detect(sample) else {
        return Detected {
            language: Language::ENGLISH,
            reliable: false,
        };
    };
    let language = Language(info.lang());
    let reliable = info.is_reliable();
    if info.script() == Script::Latin && language != Language::ENGLISH {
        // Trigram statistics alone misread technical English ("sampling keeps too few traces
        // and context propagation breaks" reads as French, sure of it) and short titles
        // ("Composing multiple quantum circuits in single quantum program" reads as Latin).
        // Function words decide: the guess stands when the text has at least two of its
        // function words and more of them than English ones, or, for a language without a
        // list of them, when whatlang is sure and the text has no English ones either.
        let (english, theirs) = function_words(sample, language);
        let listed = stop_words_by_language().contains_key(&language);
        let guess_stands =
            (theirs >= 2 && theirs > english) || (reliable && !listed && english == 0);
        return Detected {
            language: if guess_stands {
                language
            } else {
                Language::ENGLISH
            },
            reliable: guess_stands || english > theirs,
        };
    }
    if reliable {
        return Detected {
            language,
            reliable: true,
        };
    }
    // Unsure between languages of one script: the script decides.
    let language = match info.script() {
        Script::Cyrillic => Language::RUSSIAN,
        _ => language,
    };
    Detected {
        language,
        reliable: false,
    }
}

/// The fewest words a text needs before its share of English function words alone tells it.
const ENGLISH_SHARE_MIN_WORDS: usize = 6;

/// Whether at least a quarter of the words of `sample` are English function words: English
/// prose has 40-50% of them, technical English 20-35%, while other languages written in Latin
/// letters share few with English ("a", "no", "in", "do": under 10% in Portuguese, the most).
/// Most English texts are told so without the trigram statistics, which cost many times the
/// analysis itself; the rest go to them.
fn reads_as_english(sample: &str) -> bool {
    use unicode_segmentation::UnicodeSegmentation;
    let (mut words, mut english) = (0usize, 0usize);
    let mut lowered = String::new();
    for word in sample.unicode_words() {
        words += 1;
        if !word.is_ascii() {
            continue;
        }
        lowered.clear();
        lowered.push_str(word);
        lowered.make_ascii_lowercase();
        english += usize::from(Language::ENGLISH.is_stop_word(&lowered));
    }
    words >= ENGLISH_SHARE_MIN_WORDS && english * 4 >= words
}

/// How many of the words of `text` are English function words, and how many are function words
/// of `other`; a word that is one in both languages counts for neither.
fn function_words(text: &str, other: Language) -> (usize, usize) {
    use unicode_segmentation::UnicodeSegmentation;
    let (mut english, mut theirs) = (0usize, 0usize);
    let mut lowered = String::new();
    // Single letters are left out: in technical text they are variables and symbols ("G", "c"),
    // which some languages' lists hold as words.
    for word in text
        .unicode_words()
        .filter(|word| word.chars().nth(1).is_some())
    {
        lowered.clear();
        lowered.extend(word.chars().flat_map(char::to_lowercase));
        let in_english = Language::ENGLISH.is_stop_word(&lowered);
        let in_theirs = other.is_stop_word(&lowered);
        match (in_english, in_theirs) {
            (true, false) => english += 1,
            (false, true) => theirs += 1,
            _ => {}
        }
    }
    (english, theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages_by_their_text() {
        for (text, code) in [
            (
                "Quantum circuits are decomposed into native gates before they run.",
                "en",
            ),
            (
                "¿Cómo puedo reciclar los envases de plástico en casa sin que se contaminen?",
                "es",
            ),
            (
                "Wie kann man Kunststoffverpackungen zu Hause recyceln, ohne dass sie verschmutzen?",
                "de",
            ),
            (
                "Как правильно сортировать пластиковые отходы дома, чтобы их переработали?",
                "ru",
            ),
            ("韩国的流行音乐在全世界都很受欢迎，很多年轻人喜欢听。", "zh"),
            ("量子コンピュータのプログラミングを勉強しています。", "ja"),
            ("한국의 대중음악은 전 세계에서 인기가 많습니다.", "ko"),
        ] {
            let detected = detect(text);
            assert_eq!(detected.language.code(), code, "{text}");
        }
    }

    #[test]
    fn technical_english_is_not_taken_for_french() {
        let text = "Our distributed tracing drops spans between services; sampling keeps too few \
                    traces and context propagation breaks.";
        assert_eq!(
            whatlang::detect_lang(text),
            Some(Lang::Fra),
            "trigrams alone misread it"
        );
        assert_eq!(detect(text).language, Language::ENGLISH);
        // A French text stays French.
        let text = "Nous perdons des traces entre les services : l'échantillonnage en garde trop \
                    peu et la propagation du contexte se rompt.";
        assert_eq!(detect(text).language.code(), "fr");
    }

    #[test]
    fn english_prose_is_told_by_its_function_words_and_others_are_not() {
        assert!(reads_as_english(
            "How do you sort plastic packaging at home so that the recycling plant takes it?"
        ));
        for text in [
            "Como separar as embalagens de plástico em casa para que a usina as recicle? Não sei o que fazer com elas.",
            "Wie kann man die Kunststoffverpackungen zu Hause recyceln, ohne dass sie verschmutzen? Das ist was ich will.",
            "In mijn buurt is er geen gele container. Hoe scheiden jullie het plastic thuis om het te recyclen?",
            "Qubit gates",
        ] {
            assert!(!reads_as_english(text), "{text}");
        }
    }

    #[test]
    fn a_short_title_is_read_by_its_function_words() {
        assert_eq!(
            detect("¿Dónde reciclar envases de plástico?")
                .language
                .code(),
            "es"
        );
        assert_eq!(detect("Why do qubits die").language, Language::ENGLISH);
        assert_eq!(
            detect("Composing multiple quantum circuits in single quantum program in QISKit")
                .language,
            Language::ENGLISH
        );
        assert_eq!(
            detect("Distributed tracing spans lost across services").language,
            Language::ENGLISH
        );
    }

    #[test]
    fn unsure_latin_text_reads_as_english() {
        let detected = detect("Qubit gates");
        assert_eq!(detected.language, Language::ENGLISH);
        assert_eq!(detect("").language, Language::ENGLISH);
        assert_eq!(detect("12345 !!!").language, Language::ENGLISH);
    }

    #[test]
    fn platform_tags_name_languages() {
        assert_eq!(Language::from_tag("pt-BR").map(Language::code), Some("pt"));
        assert_eq!(
            Language::from_tag("zh_Hant").map(Language::code),
            Some("zh")
        );
        assert_eq!(Language::from_tag("JA").map(Language::code), Some("ja"));
        assert_eq!(Language::from_tag("deu").map(Language::code), Some("de"));
        assert_eq!(Language::from_tag("no").map(Language::code), Some("nb"));
        assert_eq!(Language::from_tag("xx"), None);
    }

    #[test]
    fn every_language_says_how_it_is_analysed() {
        assert_eq!(Language::ENGLISH.analysis(), Analysis::Stemmed);
        assert_eq!(Language::RUSSIAN.analysis(), Analysis::Stemmed);
        assert_eq!(Language::CHINESE.analysis(), Analysis::SegmentedChinese);
        assert_eq!(
            Language::from_tag("pl").unwrap().analysis(),
            Analysis::Words
        );
        assert_eq!(
            Language::from_tag("th").unwrap().analysis(),
            Analysis::NotAnalysed
        );
        for language in Language::all() {
            assert!(!language.analysis().describe().is_empty());
            assert!(
                Language::from_tag(language.code()) == Some(language),
                "{language}"
            );
        }
    }

    #[test]
    fn words_in_another_script_take_that_scripts_language() {
        let german = Language::from_tag("de").unwrap();
        assert_eq!(german.for_script(CharScript::Latin), german);
        assert_eq!(german.for_script(CharScript::Cyrillic), Language::RUSSIAN);
        assert_eq!(
            Language::RUSSIAN.for_script(CharScript::Latin),
            Language::ENGLISH
        );
        assert_eq!(
            Language::ENGLISH.for_script(CharScript::Han),
            Language::CHINESE
        );
        assert_eq!(
            Language::CHINESE.for_script(CharScript::Katakana),
            Language::JAPANESE
        );
    }
}
