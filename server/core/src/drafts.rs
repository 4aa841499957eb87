//! Draft text that fits where it is posted: one small table of limits per platform kind, and
//! the few rules that keep a draft inside them.
//!
//! A limit is either the platform's own (a public network's 500 characters, a Q&A forum's
//! 150-character titles) or, where the platform allows far more, what a *short* post should
//! stay under so people read it to the end. Drafts are shortened at a word boundary with an
//! ellipsis; a link is never cut: it either stays whole or the draft is built around it.

use crate::domain::PlatformKind;

/// What a draft must fit on one kind of platform. Counts are in characters (Unicode scalar
/// values), which is how the platforms count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformLimits {
    /// The longest post the platform accepts.
    pub post_chars: usize,
    /// The longest post Trellis drafts there: a short post is read to the end.
    pub short_post_chars: usize,
    /// The longest title of a new discussion; 0 where discussions have no title.
    pub title_chars: usize,
    /// Tags an item may carry; 0 where there are none.
    pub max_tags: usize,
    /// The longest tag.
    pub tag_chars: usize,
}

impl PlatformKind {
    /// The limits drafts for this kind of platform respect.
    pub fn limits(self) -> PlatformLimits {
        match self {
            // Blog platforms take posts of any length; a link post stays short.
            PlatformKind::Blog => PlatformLimits {
                post_chars: 100_000,
                short_post_chars: 600,
                title_chars: 100,
                max_tags: 10,
                tag_chars: 30,
            },
            // Business networks cap posts at a few thousand characters.
            PlatformKind::PrivateNetwork => PlatformLimits {
                post_chars: 3_000,
                short_post_chars: 600,
                title_chars: 200,
                max_tags: 5,
                tag_chars: 40,
            },
            // Mastodon's default: 500 characters, hashtags included.
            PlatformKind::PublicNetwork => PlatformLimits {
                post_chars: 500,
                short_post_chars: 500,
                title_chars: 0,
                max_tags: 4,
                tag_chars: 30,
            },
            // A bookmark: a title, a short note and a handful of tags.
            PlatformKind::Bookmarking => PlatformLimits {
                post_chars: 255,
                short_post_chars: 255,
                title_chars: 255,
                max_tags: 8,
                tag_chars: 30,
            },
            // StackExchange: titles up to 150 characters, at most five tags of 35.
            PlatformKind::QaForum => PlatformLimits {
                post_chars: 30_000,
                short_post_chars: 600,
                title_chars: 150,
                max_tags: 5,
                tag_chars: 35,
            },
            // Chat messages may run to thousands of characters; a short one is read.
            PlatformKind::Chat => PlatformLimits {
                post_chars: 4_000,
                short_post_chars: 400,
                title_chars: 0,
                max_tags: 0,
                tag_chars: 0,
            },
        }
    }
}

/// Whether a whitespace-separated word is a link, which must never be cut.
pub fn is_link(word: &str) -> bool {
    word.starts_with("https://") || word.starts_with("http://")
}

/// `text` in at most `max` characters: whole when it fits, else cut at the last word boundary
/// that fits, with an ellipsis. A cut never falls inside a link: a link that does not fit whole
/// is left out with the words after it.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    // Room for the ellipsis.
    let budget = max - 1;
    let mut kept = String::new();
    let mut kept_chars = 0;
    for word in text.split_whitespace() {
        let word_chars = word.chars().count();
        let needed = word_chars + usize::from(!kept.is_empty());
        if kept_chars + needed > budget {
            if kept.is_empty() && !is_link(word) {
                // A single word longer than the room: the only cut that can be made.
                kept = word.chars().take(budget).collect();
            }
            break;
        }
        if !kept.is_empty() {
            kept.push(' ');
        }
        kept.push_str(word);
        kept_chars += needed;
    }
    let kept = kept
        .trim_end_matches([',', ';', ':', '-', '—', '('])
        .trim_end();
    if kept.is_empty() {
        return String::new();
    }
    format!("{kept}…")
}

/// `text` followed by `link`, in at most `max` characters: the text is shortened to leave room
/// for the whole link. Without a link, the text alone, shortened.
pub fn with_link(text: &str, link: &str, max: usize) -> String {
    let link = link.trim();
    if link.is_empty() {
        return shorten(text, max);
    }
    let link_chars = link.chars().count();
    if link_chars >= max {
        // Nothing else fits: the link alone, whole, or nothing if even it does not.
        return if link_chars == max {
            link.to_owned()
        } else {
            String::new()
        };
    }
    let room = max - link_chars - 1;
    let head = shorten(text, room);
    if head.is_empty() {
        link.to_owned()
    } else {
        format!("{head} {link}")
    }
}

/// Tags as platforms take them: lowercase words joined by '-', each within the tag length, no
/// duplicates, in the order given, at most the platform's count.
pub fn fit_tags<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    limits: &PlatformLimits,
) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    if limits.max_tags == 0 || limits.tag_chars == 0 {
        return tags;
    }
    for candidate in candidates {
        let words: Vec<String> = candidate
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        // Whole words only: a tag that does not fit keeps its leading words.
        let mut tag = String::new();
        for word in words {
            let extra = word.chars().count() + usize::from(!tag.is_empty());
            if tag.chars().count() + extra > limits.tag_chars {
                break;
            }
            if !tag.is_empty() {
                tag.push('-');
            }
            tag.push_str(&word);
        }
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
        if tags.len() == limits.max_tags {
            break;
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_keeps_short_posts_within_what_it_accepts() {
        for kind in PlatformKind::ALL {
            let limits = kind.limits();
            assert!(limits.short_post_chars <= limits.post_chars, "{kind:?}");
            assert!(limits.short_post_chars >= 200, "{kind:?}");
        }
        assert_eq!(PlatformKind::PublicNetwork.limits().post_chars, 500);
        assert_eq!(PlatformKind::QaForum.limits().title_chars, 150);
        assert_eq!(PlatformKind::Chat.limits().max_tags, 0);
    }

    #[test]
    fn text_that_fits_is_kept_whole() {
        assert_eq!(shorten("  a short text ", 20), "a short text");
        assert_eq!(shorten("exactly ten", 11), "exactly ten");
    }

    #[test]
    fn long_text_is_cut_at_a_word_boundary_with_an_ellipsis() {
        let text = "observability as code keeps dashboards reviewed";
        let short = shorten(text, 25);
        assert_eq!(short, "observability as code…");
        assert!(short.chars().count() <= 25);
        // Punctuation left dangling at the cut goes.
        assert_eq!(shorten("tracing, sampling and spans", 12), "tracing…");
    }

    #[test]
    fn a_cut_never_falls_inside_a_link() {
        let text = "read this https://example.org/a/rather/long/path and more";
        let short = shorten(text, 30);
        assert_eq!(short, "read this…");
        assert!(!short.contains("https"));
    }

    #[test]
    fn a_link_is_kept_whole_and_the_text_gives_way() {
        let link = "https://forum.example/t/1";
        let text = "How do I find which service causes a latency spike every evening?";
        let draft = with_link(text, link, 60);
        assert!(draft.chars().count() <= 60, "{draft}");
        assert!(draft.ends_with(link), "{draft}");
        assert!(draft.starts_with("How do I find"), "{draft}");
        assert!(draft.contains('…'), "{draft}");
        assert_eq!(with_link("short", link, 200), format!("short {link}"));
        assert_eq!(with_link(text, link, 25), link);
        assert_eq!(with_link(text, link, 10), "");
        assert_eq!(with_link(text, "", 20), shorten(text, 20));
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        let text = "é".repeat(30);
        let short = shorten(&format!("{text} {text}"), 40);
        assert_eq!(short.chars().count(), 31);
    }

    #[test]
    fn tags_are_normalised_deduplicated_and_capped() {
        let limits = PlatformLimits {
            post_chars: 255,
            short_post_chars: 255,
            title_chars: 255,
            max_tags: 3,
            tag_chars: 14,
        };
        let tags = fit_tags(
            [
                "OpenTelemetry",
                "context propagation",
                "opentelemetry",
                "very long tag words",
                "kafka",
                "extra",
            ],
            &limits,
        );
        assert_eq!(tags, ["opentelemetry", "context", "very-long-tag"]);
        assert!(fit_tags(["a"], &PlatformKind::Chat.limits()).is_empty());
    }
}
