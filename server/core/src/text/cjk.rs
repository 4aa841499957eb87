//! Words of the languages written without spaces (Chinese, Japanese) and of Korean, whose
//! space-separated words carry their grammatical particles.

use super::language::CharScript;
use jieba_rs::Jieba;
use std::ops::Range;
use std::sync::OnceLock;

/// jieba with its default dictionary (about 350,000 words, shipped in the crate), loaded the first
/// time a Chinese text is analysed: a workspace without Chinese never pays for it.
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// The words of a run of Han characters, as byte ranges of `run`: jieba's dictionary with its
/// HMM for words the dictionary lacks.
pub(crate) fn chinese_words(run: &str) -> Vec<Range<usize>> {
    jieba()
        .cut(run, true)
        .into_iter()
        .filter(|token| token.word.chars().any(char::is_alphabetic))
        .map(|token| token.byte_start..token.byte_end)
        .collect()
}

/// The words of a run of Japanese script (kanji and kana), as byte ranges of `run`. A kanji
/// run of one or two characters is a word; a longer one gives its overlapping bigrams (量子計算 →
/// 量子, 子計, 計算), which a query's bigrams match wherever the compound is split differently. A
/// katakana run is a word (loanwords: コンピュータ). Hiragana carries particles, auxiliaries and
/// inflections; without a dictionary it cannot be told from the rare word written in it alone,
/// so it is left out.
pub(crate) fn japanese_words(run: &str) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut chars = run.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let script = CharScript::of(c);
        let mut boundaries = vec![start];
        while let Some(&(at, next)) = chars.peek() {
            if CharScript::of(next) != script && !(script == CharScript::Katakana && next == 'ー')
            {
                break;
            }
            boundaries.push(at);
            chars.next();
        }
        let end = chars.peek().map_or(run.len(), |&(at, _)| at);
        boundaries.push(end);
        // `boundaries` holds the start of each character and the run's end.
        match script {
            CharScript::Katakana if boundaries.len() > 2 => words.push(start..end),
            CharScript::Han if boundaries.len() <= 3 => words.push(start..end),
            CharScript::Han => {
                words.extend(boundaries.windows(3).map(|pair| pair[0]..pair[2]));
            }
            _ => {}
        }
    }
    words
}

/// Korean particles (josa), longest first: a noun is written with them attached (한국의, 음악은).
#[rustfmt::skip]
const PARTICLES: &[&str] = &[
    "에서는", "에서도", "에게서", "으로는", "으로도", "이라는", "에서", "에게", "한테", "으로", "부터", "까지",
    "보다", "처럼", "라는", "이나", "이랑", "에는", "에도", "와는", "과는", "은", "는", "이",
    "가", "을", "를", "의", "에", "로", "와", "과", "도", "만", "랑",
];

/// A Korean word without its trailing particle, as a byte length of `word`. The particle comes
/// off only when at least two syllables remain, so that a short noun ending like one (나이,
/// "age") keeps its last syllable.
pub(crate) fn korean_stem_len(word: &str) -> usize {
    for particle in PARTICLES {
        if let Some(stem) = word.strip_suffix(particle)
            && stem.chars().count() >= 2
        {
            return stem.len();
        }
    }
    word.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|range| &text[range.clone()]).collect()
    }

    #[test]
    fn chinese_is_cut_into_dictionary_words() {
        let text = "韩国的流行音乐在全世界很受欢迎";
        let cut = words(text, &chinese_words(text));
        assert!(cut.contains(&"韩国"), "{cut:?}");
        assert!(
            cut.contains(&"流行音乐") || cut.contains(&"音乐"),
            "{cut:?}"
        );
        assert!(!cut.contains(&"国"), "{cut:?}");
        let text = "国内经济新闻";
        let cut = words(text, &chinese_words(text));
        assert!(cut.contains(&"国内") && cut.contains(&"经济"), "{cut:?}");
    }

    #[test]
    fn japanese_runs_give_kanji_bigrams_and_katakana_words() {
        let text = "量子コンピュータのプログラミングを勉強しています";
        let cut = words(text, &japanese_words(text));
        assert_eq!(cut, ["量子", "コンピュータ", "プログラミング", "勉強"]);
        let text = "量子計算";
        assert_eq!(words(text, &japanese_words(text)), ["量子", "子計", "計算"]);
    }

    #[test]
    fn korean_particles_come_off_when_a_word_remains() {
        for (word, stem) in [
            ("한국의", "한국"),
            ("음악은", "음악"),
            ("세계에서", "세계"),
            ("비빔밥에도", "비빔밥"),
            ("나이", "나이"),
            ("음악", "음악"),
        ] {
            assert_eq!(&word[..korean_stem_len(word)], stem);
        }
    }
}
