//! Rows of the dump to records: what each attribute becomes, kept apart from the streaming and
//! the state so that it can be read (and tested) on its own.

use trellis_plugin_sdk::{pb, records};

use crate::dump::{Row, parse_time};

/// The platform name of the identities this connector makes.
pub const PLATFORM: &str = "stackexchange";

// The field limits every ingest path enforces (see the connector guide).
const TITLE_BYTES: usize = 1024;
const TEXT_BYTES: usize = 1 << 20;
const MAX_TAGS: usize = 64;
const ID_BYTES: usize = 256;

/// Tags from the dump's `<a><b>` form or the newer `|a|b|` form.
pub fn parse_tags(raw: &str) -> Vec<String> {
    raw.split(['<', '>', '|'])
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .take(MAX_TAGS)
        .map(|tag| clip(tag, TITLE_BYTES))
        .collect()
}

/// HTML (a post body, an `AboutMe`) as plain text: paragraphs and list items on their own lines,
/// link texts kept, markup gone, entities decoded.
pub fn plain_text(html: &str) -> String {
    if html.trim().is_empty() {
        return String::new();
    }
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .allow_width_overflow()
        .no_table_borders()
        .string_from_read(html.as_bytes(), 4000)
        // html2text refuses nothing that a browser would show; should it fail, keep the words.
        .unwrap_or_else(|_| html.to_owned());
    let mut text = String::with_capacity(rendered.len());
    for line in rendered.lines() {
        let line = line.trim_end();
        if line.is_empty() && (text.is_empty() || text.ends_with("\n\n")) {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    clip(text.trim(), TEXT_BYTES)
}

/// `text` cut to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// An id attribute (`OwnerUserId`, `UserId`) as an external id, or "" when absent.
fn id_attribute(row: &Row, name: &str) -> String {
    let value = row.text(name).trim();
    if value.is_empty() || value.len() > ID_BYTES {
        String::new()
    } else {
        value.to_owned()
    }
}

fn time_attribute(row: &Row, name: &str) -> Option<records::Timestamp> {
    row.get(name).and_then(parse_time)
}

fn score(row: &Row) -> u32 {
    row.text("Score")
        .trim()
        .parse::<i64>()
        .map_or(0, |score| u32::try_from(score.max(0)).unwrap_or(u32::MAX))
}

/// A user: a member of the community with a `stackexchange` identity, another one when their
/// website is a profile on a known platform, and their network account.
///
/// The display name is the handle, but it is not unique (a site has many Joes), so it is a plain
/// identity: what identifies the user is the profile URL of the site's user page.
pub fn person(row: &Row, id: i64, site_url: Option<&str>) -> pb::Person {
    let display_name = clip(row.text("DisplayName").trim(), TITLE_BYTES);
    let profile_url = site_url
        .map(|site| format!("{site}/users/{id}"))
        .unwrap_or_default();
    let mut identities = vec![records::identity(
        PLATFORM,
        clip(&display_name, ID_BYTES),
        profile_url,
    )];
    identities.extend(row.get("WebsiteUrl").and_then(website_identity));
    identities.extend(network_identity(row));
    pb::Person {
        display_name,
        bio: plain_text(row.text("AboutMe")),
        member: true,
        identities,
        created_at: time_attribute(row, "CreationDate"),
        ..records::person(id.to_string())
    }
}

/// The network account of a user (`AccountId`), the same for every site they joined, as its
/// profile page; `None` without one, or for the network's own accounts (ids below 1, such as
/// the Community bot), which have no page.
pub fn network_identity(row: &Row) -> Option<pb::Identity> {
    let account = row.text("AccountId").trim().parse::<i64>().ok()?;
    (account > 0).then(|| {
        records::identity(
            PLATFORM,
            "",
            format!("https://stackexchange.com/users/{account}"),
        )
    })
}

/// The identity a `WebsiteUrl` stands for, when it is a person's profile on a platform we know;
/// `None` for a home page, a project page or anything else.
pub fn website_identity(url: &str) -> Option<pb::Identity> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let plausible = |handle: &str| {
        !handle.is_empty()
            && handle.len() <= 100
            && handle
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let (platform, handle) = match (host, segments.as_slice()) {
        ("github.com", [user]) => ("github", (*user).to_owned()),
        ("gitlab.com", [user]) => ("gitlab", (*user).to_owned()),
        ("twitter.com" | "x.com" | "mobile.twitter.com", [user]) => {
            ("twitter", user.trim_start_matches('@').to_owned())
        }
        ("linkedin.com", ["in", user]) => ("linkedin", (*user).to_owned()),
        ("medium.com", [user]) if user.starts_with('@') => ("medium", user[1..].to_owned()),
        (_, [user]) if user.starts_with('@') && host.contains('.') => {
            // A fediverse profile: https://host/@name is @name@host.
            let name = &user[1..];
            if !plausible(name) {
                return None;
            }
            return Some(records::identity(
                "mastodon",
                format!("@{name}@{host}"),
                url.to_owned(),
            ));
        }
        _ => return None,
    };
    plausible(&handle).then(|| records::identity(platform, handle, url.to_owned()))
}

/// A question: an open (unless closed) Q&A conversation.
pub fn question(row: &Row, id: i64, site_url: Option<&str>) -> pb::Conversation {
    pb::Conversation {
        url: site_url
            .map(|site| format!("{site}/questions/{id}"))
            .unwrap_or_default(),
        title: clip(row.text("Title").trim(), TITLE_BYTES),
        body: plain_text(row.text("Body")),
        tags: parse_tags(row.text("Tags")),
        author: id_attribute(row, "OwnerUserId"),
        open: row
            .get("ClosedDate")
            .is_none_or(|closed| closed.trim().is_empty()),
        created_at: time_attribute(row, "CreationDate"),
        last_activity_at: time_attribute(row, "LastActivityDate"),
        ..records::conversation(id.to_string(), pb::PlatformKind::QaForum)
    }
}

/// An answer: a post of its question, replying to the question.
pub fn answer(row: &Row, id: i64, question: i64) -> pb::Post {
    pb::Post {
        author: id_attribute(row, "OwnerUserId"),
        parent: question.to_string(),
        created_at: time_attribute(row, "CreationDate"),
        text: plain_text(row.text("Body")),
        reactions: score(row),
        ..records::post(id.to_string(), question.to_string())
    }
}

/// The external id of comment `id`: comments number apart from posts, so they are prefixed.
pub fn comment_id(id: i64) -> String {
    format!("c{id}")
}

/// A comment: a post of the question, replying to the question or answer it was written on. Its
/// text is plain already (comments allow a little Markdown, no HTML).
pub fn comment(row: &Row, id: i64, post: u32, question: u32) -> pb::Post {
    pb::Post {
        author: id_attribute(row, "UserId"),
        parent: post.to_string(),
        created_at: time_attribute(row, "CreationDate"),
        text: clip(row.text("Text").trim(), TEXT_BYTES),
        reactions: score(row),
        ..records::post(comment_id(id), question.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_both_forms() {
        assert_eq!(parse_tags("<a><b-c>"), vec!["a", "b-c"]);
        assert_eq!(parse_tags("|a|b-c|"), vec!["a", "b-c"]);
        assert!(parse_tags("").is_empty());
    }

    #[test]
    fn html_becomes_plain_text() {
        let text = plain_text(
            "<p>I know that a <a href=\"https://x\">Turing machine</a> &amp; more.</p>\n\n<ul><li>one</li><li>two</li></ul>",
        );
        assert!(
            text.starts_with("I know that a Turing machine & more."),
            "{text}"
        );
        assert!(text.contains("one") && text.contains("two"), "{text}");
        assert!(!text.contains('<'), "{text}");
    }

    #[test]
    fn only_profiles_become_identities() {
        let github = website_identity("https://github.com/octocat").unwrap();
        assert_eq!(
            (github.platform.as_str(), github.handle.as_str()),
            ("github", "octocat")
        );
        let linkedin = website_identity("http://www.linkedin.com/in/jane-doe/").unwrap();
        assert_eq!(linkedin.handle, "jane-doe");
        let fediverse = website_identity("https://mathstodon.xyz/@qubit").unwrap();
        assert_eq!(fediverse.handle, "@qubit@mathstodon.xyz");
        assert_eq!(fediverse.profile_url, "https://mathstodon.xyz/@qubit");
        assert!(website_identity("https://example.org").is_none());
        assert!(website_identity("https://github.com/org/project").is_none());
        assert!(website_identity("https://jane.example.org/about").is_none());
        assert!(website_identity("not a url").is_none());
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }
}
