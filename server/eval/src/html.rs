//! HTML stripping for post bodies and `AboutMe` fields.
//!
//! The protocol only says "HTML stripped", so the rule is the simplest one that anybody can
//! re-implement and that reproduces the published baselines: every `<...>` tag becomes a space,
//! then HTML entities are decoded, then runs of whitespace collapse to one space. Code blocks and
//! link texts are kept as text: they carry the words people search with.

/// Strips tags, decodes entities and collapses whitespace.
pub fn strip_html(html: &str) -> String {
    let mut without_tags = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let Some(close_offset) = rest[open..].find('>') else {
            // An unclosed `<` is text, as in "a < b".
            break;
        };
        without_tags.push_str(&rest[..open]);
        without_tags.push(' ');
        rest = &rest[open + close_offset + 1..];
    }
    without_tags.push_str(rest);
    let decoded = html_escape::decode_html_entities(&without_tags);
    collapse_whitespace(&decoded)
}

/// Collapses every run of whitespace to a single space and trims both ends.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_spaces_and_entities_decode() {
        assert_eq!(
            strip_html("<p>a&amp;b</p><p>c&lt;d &quot;e&quot;</p>"),
            "a&b c<d \"e\""
        );
        assert_eq!(strip_html("x<br/>y"), "x y");
    }

    #[test]
    fn unclosed_angle_bracket_is_text() {
        assert_eq!(strip_html("if a < b then"), "if a < b then");
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(strip_html("\n\n<p>one\n two</p>\n"), "one two");
    }
}
