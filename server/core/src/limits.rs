//! The limits on what callers may send besides records (whose limits are
//! [`crate::domain::FieldLimits`]): strategies, merges, sources. One place, so each refusal names
//! the field and the limit the same way, and `docs/limits.md` lists them all.

use crate::error::Violation;

/// Characters of a strategy's name, a facet's name, a source's display name.
pub const NAME_CHARS: usize = 200;
/// Topics a strategy may exclude; each is a phrase.
pub const EXCLUSIONS: usize = 200;
/// Characters of one exclusion.
pub const EXCLUSION_CHARS: usize = 200;
/// Characters of a merge's reason (kept in the audit trail).
pub const MERGE_REASON_CHARS: usize = 1_000;
/// People one merge may join into its target.
pub const MERGE_OTHERS: usize = 100;
/// Bytes of all the text of one strategy (names, mission, descriptions, keywords, examples,
/// exclusions): every version is kept, and a page of versions must fit in one message.
pub const STRATEGY_TEXT_BYTES: usize = 1024 * 1024;
/// Bytes of one page of a list answer; a page holds fewer items rather than more bytes (at
/// least one item).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of a source's config, as JSON.
pub const SOURCE_CONFIG_BYTES: usize = 64 * 1024;

/// Whether `c` shows nothing: a control character, or a format character such as a zero-width
/// space or joiner, a direction mark, a soft hyphen, a byte-order mark or a Hangul filler.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}')
}

/// `text` without its invisible characters and surrounding white space: what a reader sees.
pub fn visible(text: &str) -> String {
    text.chars()
        .filter(|c| !is_invisible(*c))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Checks a name: something visible, at most `max` characters. `what` says what to write, for
/// the refusal of an empty one.
pub fn check_name(violations: &mut Vec<Violation>, field: &str, value: &str, what: &str) {
    if visible(value).is_empty() {
        violations.push(Violation::new(
            field,
            if value.is_empty() {
                format!("is empty; {what}")
            } else {
                format!("shows nothing (only spaces, control or zero-width characters); {what}")
            },
        ));
    }
    check_chars(violations, field, value, NAME_CHARS);
}

/// Checks that `value` is at most `max` characters.
pub fn check_chars(violations: &mut Vec<Violation>, field: &str, value: &str, max: usize) {
    let count = value.chars().count();
    if count > max {
        violations.push(Violation::new(
            field,
            format!("is {count} characters; the limit is {max}, shorten it"),
        ));
    }
}

/// Checks that a list has at most `max` items.
pub fn check_items(violations: &mut Vec<Violation>, field: &str, count: usize, max: usize) {
    if count > max {
        violations.push(Violation::new(
            field,
            format!("has {count} items; the limit is {max}, keep the {max} that matter most"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_names_are_refused_and_visible_ones_kept() {
        for name in [
            "",
            "   ",
            "\u{200B}\u{200D}",
            "\u{FEFF}\t",
            "\u{202E}\u{2066}",
        ] {
            let mut violations = Vec::new();
            check_name(&mut violations, "name", name, "name it");
            assert_eq!(violations.len(), 1, "{name:?}");
            assert_eq!(violations[0].field, "name");
        }
        for name in ["Quantum", "量子", "Zoë", "a\u{200D}b"] {
            let mut violations = Vec::new();
            check_name(&mut violations, "name", name, "name it");
            assert!(violations.is_empty(), "{name:?}: {violations:?}");
        }
    }

    #[test]
    fn lengths_count_characters_and_name_the_limit() {
        let mut violations = Vec::new();
        check_chars(&mut violations, "reason", &"é".repeat(10), 10);
        assert!(violations.is_empty());
        check_chars(&mut violations, "reason", &"é".repeat(11), 10);
        assert!(violations[0].description.contains("limit is 10"));
        check_items(&mut violations, "exclusions", 201, EXCLUSIONS);
        assert_eq!(violations[1].field, "exclusions");
    }
}
