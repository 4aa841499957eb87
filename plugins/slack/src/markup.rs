//! Slack's message markup to plain text: mentions to @handles, channel links to #names, links to
//! their labels, special mentions to @here/@channel, `:emoji:` shortcodes to emoji, and the
//! three escaped characters Slack encodes (`&amp;`, `&lt;`, `&gt;`).

use crate::NameMap;

/// Names of users and channels by id.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub users: NameMap,
    pub channels: NameMap,
}

/// Plain text of a Slack message.
pub fn to_plain_text(text: &str, names: &Names) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        out.push_str(&entity(&after[..end], names));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let with_emoji = emoji(&out);
    with_emoji
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

/// One `<...>` entity.
fn entity(inner: &str, names: &Names) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        let name = label
            .map(str::to_owned)
            .or_else(|| names.users.get(user).cloned())
            .unwrap_or_else(|| user.to_owned());
        return format!("@{}", name.trim_start_matches('@'));
    }
    if let Some(channel) = target.strip_prefix('#') {
        let name = label
            .map(str::to_owned)
            .or_else(|| names.channels.get(channel).cloned())
            .unwrap_or_else(|| channel.to_owned());
        return format!("#{name}");
    }
    if let Some(special) = target.strip_prefix('!') {
        if let Some(label) = label {
            return label.to_owned();
        }
        let word = special.split('^').next().unwrap_or(special);
        return format!("@{word}");
    }
    match label {
        Some(label) if !label.is_empty() => label.to_owned(),
        _ => target.strip_prefix("mailto:").unwrap_or(target).to_owned(),
    }
}

/// `:shortcode:` to its emoji; custom emoji (no Unicode form) are dropped. Skin tones
/// (`:+1::skin-tone-2:`) are dropped with them.
fn emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(':') {
        let after = &rest[start + 1..];
        let end =
            after.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')));
        match end {
            Some(end) if end > 0 && after[end..].starts_with(':') => {
                let code = &after[..end];
                out.push_str(&rest[..start]);
                if let Some(found) = emojis::get_by_shortcode(code) {
                    out.push_str(found.as_str());
                } else if code.starts_with("skin-tone-") {
                    // A modifier of the emoji before it.
                } else if looks_like_time_or_ratio(code) {
                    out.push(':');
                    out.push_str(code);
                    out.push(':');
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// "10:30:45" is a time, not an emoji.
fn looks_like_time_or_ratio(code: &str) -> bool {
    code.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut names = Names::default();
        names.users.insert("U1".into(), "ada".into());
        names.channels.insert("C1".into(), "general".into());
        names
    }

    #[test]
    fn markup_becomes_plain_text() {
        let names = names();
        assert_eq!(to_plain_text("hi <@U1>!", &names), "hi @ada!");
        assert_eq!(to_plain_text("<@U2|grace> joined", &names), "@grace joined");
        assert_eq!(
            to_plain_text("see <#C1> and <#C2|random>", &names),
            "see #general and #random"
        );
        assert_eq!(
            to_plain_text(
                "read <https://x.test/a|the guide> or <https://y.test>",
                &names
            ),
            "read the guide or https://y.test"
        );
        assert_eq!(
            to_plain_text("<!here> <!channel>", &names),
            "@here @channel"
        );
        assert_eq!(
            to_plain_text("nice :+1: :thumbsup::skin-tone-2: :partyparrot:", &names),
            "nice 👍 👍"
        );
        assert_eq!(to_plain_text("a &amp; b &lt;3", &names), "a & b <3");
        assert_eq!(to_plain_text("at 10:30:45 ok", &names), "at 10:30:45 ok");
        assert_eq!(
            to_plain_text("mail <mailto:a@b.test|a@b.test>", &names),
            "mail a@b.test"
        );
    }
}
