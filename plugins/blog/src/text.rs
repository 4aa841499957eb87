//! Text clean-up shared by feeds and exports: HTML to plain text (html2text), limits the core
//! enforces (titles 1 KiB, texts 1 MiB, ids 256 bytes), and hashed e-mail addresses.

use sha2::{Digest, Sha256};

/// Longest title the core accepts, in bytes.
pub const MAX_TITLE: usize = 1024;
/// Longest body or post text the core accepts, in bytes.
pub const MAX_TEXT: usize = 1024 * 1024;
/// Longest external id kept as is; longer ones are hashed.
const MAX_ID: usize = 200;

/// Plain text of an HTML fragment, paragraphs kept as blank lines, links without decoration.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return collapse(html);
    }
    let text = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.to_owned());
    collapse(&text)
}

/// Trims every line and drops runs of blank lines.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

/// `text` cut to at most `limit` bytes at a character boundary.
pub fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Lowercase hex sha256.
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// sha256 of the trimmed, lowercased address; empty for an empty one.
pub fn email_sha256(email: &str) -> String {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        String::new()
    } else {
        sha256_hex(&email)
    }
}

/// An external id `prefix:value`, hashed when `value` is too long to be an id.
pub fn external_id(prefix: &str, value: &str) -> String {
    if value.len() > MAX_ID {
        format!("{prefix}:sha256:{}", sha256_hex(value))
    } else {
        format!("{prefix}:{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        let text = html_to_text(
            "<p>Hello <b>world</b> &amp; <a href=\"https://x.test\">friends</a></p><p>Next</p>",
        );
        assert_eq!(text, "Hello world & friends\n\nNext");
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo".to_owned(), 2), "h");
    }

    #[test]
    fn emails_are_hashed_trimmed_and_lowercased() {
        assert_eq!(email_sha256(" A@B.test "), email_sha256("a@b.test"));
        assert_eq!(email_sha256("a@b.test").len(), 64);
    }
}
