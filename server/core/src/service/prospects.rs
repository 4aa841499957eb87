//! Prospects through the service: the engine ranks people whose interests meet the strategy;
//! this module fetches what the answer quotes (their record, their writing, the conversation
//! and the asset to invite them with) and words the reasons and the draft invitation.

use super::people::{days_ago, quote_list, writing_parts};
use super::{Trellis, no_strategy};
use crate::domain::{Asset, Conversation, Millis, Person, RecordKey, WorkspaceId};
use crate::drafts::shorten;
use crate::engine::Evidence;
use crate::engine::prospects::{ProspectMatch, ProspectPool};
use crate::error::{CoreError, CoreResult};

/// Prospects whose answer quotes their own writing as evidence; the rest carry reasons only.
const EVIDENCE_FOR: usize = 10;
/// The longest draft invitation: it must fit a short post or a direct message anywhere.
pub const DRAFT_MAX_CHARS: usize = 280;

/// A person worth bringing in, with the evidence and what to invite them with.
#[derive(Debug, Clone, PartialEq)]
pub struct Prospect {
    pub key: RecordKey,
    /// The stored person record, when one was ingested.
    pub person: Option<Person>,
    pub member: bool,
    pub score: f32,
    pub convergence: f32,
    pub activity: f32,
    pub reach: u32,
    pub facet_id: String,
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub invitation: Invitation,
}

/// The conversation or asset most likely to draw a prospect in, and a draft message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invitation {
    pub conversation: Option<Conversation>,
    pub asset: Option<Asset>,
    pub draft_message: String,
}

impl Trellis {
    /// People outside the community (or everyone, with `include_members`) whose interests meet
    /// the strategy, or one facet of it, best first; at most `limit`.
    pub fn find_prospects(
        &self,
        workspace: &WorkspaceId,
        facet_id: Option<&str>,
        include_members: bool,
        as_of: Option<Millis>,
        limit: usize,
    ) -> CoreResult<Vec<Prospect>> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (_, strategy) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        if let Some(facet_id) = facet_id
            && strategy.facet(facet_id).is_none()
        {
            return Err(CoreError::NotFound {
                kind: "facet",
                id: facet_id.to_owned(),
            });
        }
        let strategy = strategy.clone();
        let pool = if include_members {
            ProspectPool::Everyone
        } else {
            ProspectPool::Outsiders
        };
        let now = engine.people_clock(as_of);
        // Prospects a team dismissed are not suggested again.
        let dismissed = engine.dismissed_prospects();
        let mut found_prospects =
            engine.find_prospects(facet_id, pool, as_of, limit + dismissed.len());
        found_prospects.retain(|found| !dismissed.contains(&found.person));
        found_prospects.truncate(limit);
        let mut prospects = Vec::new();
        for (position, found) in found_prospects.into_iter().enumerate() {
            let person = self.store.person(workspace, &found.person)?;
            let facet_name = strategy
                .facet(&found.facet_id)
                .map_or(found.facet_id.clone(), |facet| facet.name.clone());
            let words: Vec<String> = found
                .matched_terms
                .iter()
                .filter(|stem| !stem.contains(crate::engine::index::PAIR_JOINER))
                .map(|stem| engine.surface(stem).to_owned())
                .collect();
            let evidence = if position < EVIDENCE_FOR {
                let (conversations, posts) =
                    self.writing_of_all(workspace, &engine, &found.person)?;
                let parts = engine.analyze(&writing_parts(&conversations, &posts));
                engine
                    .explain(&found.facet_id, &parts)
                    .filter(|evidence| !evidence.sentence.is_empty())
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            };
            let choice = engine.invitation_for(&found, true);
            let conversation = match &choice.conversation {
                Some(key) => self.store.conversation(workspace, key)?,
                None => None,
            };
            let asset = match &choice.asset {
                Some(key) => self.store.asset(workspace, key)?,
                None => None,
            };
            let name = person
                .as_ref()
                .map(|person| person.display_name.trim())
                .filter(|name| !name.is_empty())
                .map(str::to_owned);
            let draft_message = draft_invitation(
                name.as_deref(),
                &words,
                &facet_name,
                conversation.as_ref(),
                asset.as_ref(),
            );
            prospects.push(Prospect {
                reasons: reasons(&found, &facet_name, &words, now),
                key: found.person,
                person,
                member: found.member,
                score: found.score,
                convergence: found.convergence,
                activity: found.activity,
                reach: found.reach,
                facet_id: found.facet_id,
                evidence,
                invitation: Invitation {
                    conversation,
                    asset,
                    draft_message,
                },
            });
        }
        Ok(prospects)
    }
}

fn reasons(found: &ProspectMatch, facet_name: &str, words: &[String], now: Millis) -> Vec<String> {
    let mut reasons = Vec::new();
    let shown: Vec<String> = words.iter().take(5).cloned().collect();
    if shown.is_empty() {
        reasons.push(format!(
            "their interests meet \"{facet_name}\" (convergence {:.2})",
            found.convergence
        ));
    } else {
        reasons.push(format!(
            "their interests meet \"{facet_name}\" (convergence {:.2}): they write about {}",
            found.convergence,
            quote_list(&shown)
        ));
    }
    match (found.contributions, found.last_active) {
        (0, _) => reasons.push("known from their profile only: no writing seen yet".to_owned()),
        (count, Some(last)) => reasons.push(format!(
            "{count} contribution{}, the latest {}",
            if count == 1 { "" } else { "s" },
            days_ago(now, last)
        )),
        (count, None) => reasons.push(format!(
            "{count} contribution{}",
            if count == 1 { "" } else { "s" }
        )),
    }
    if found.reach > 0 {
        reasons.push(format!(
            "took part in {} conversation{}",
            found.reach,
            if found.reach == 1 { "" } else { "s" }
        ));
    }
    reasons.push(match (found.member, found.known) {
        (true, _) => "already a member of the community".to_owned(),
        (false, true) => "not a member of the community yet".to_owned(),
        (false, false) => {
            "known only from what they wrote: no person record says they are a member".to_owned()
        }
    });
    reasons
}

/// A short invitation in plain words: what they write about, and the conversation (or else the
/// asset) that should make them curious, with its link. Never longer than [`DRAFT_MAX_CHARS`];
/// a long title is shortened, never the link.
pub fn draft_invitation(
    name: Option<&str>,
    words: &[String],
    facet_name: &str,
    conversation: Option<&Conversation>,
    asset: Option<&Asset>,
) -> String {
    let greeting = match name {
        Some(name) => format!("Hi {name}"),
        None => "Hi".to_owned(),
    };
    let topic = match words {
        [] => facet_name.to_owned(),
        [one] => one.clone(),
        [one, two, ..] => format!("{one} and {two}"),
    };
    let (lead, title, url) = match (conversation, asset) {
        (Some(conversation), _) => (
            "we are discussing",
            conversation.title.as_str(),
            conversation.url.as_str(),
        ),
        (None, Some(asset)) => ("you may like", asset.title.as_str(), asset.url.as_str()),
        (None, None) => {
            return shorten(
                &format!(
                    "{greeting}, you write about {topic}. We talk about {facet_name} in our community and would love to hear from you."
                ),
                DRAFT_MAX_CHARS,
            );
        }
    };
    let head = format!("{greeting}, you write about {topic}: {lead} \"");
    let tail = if url.is_empty() {
        "\". Join us?".to_owned()
    } else {
        format!("\" {url}")
    };
    let room = DRAFT_MAX_CHARS.saturating_sub(head.chars().count() + tail.chars().count());
    if room < 12 {
        // Nothing sensible fits around the title: the link alone, after a short greeting.
        return shorten(&format!("{greeting}, {lead} {url}"), DRAFT_MAX_CHARS);
    }
    format!("{head}{}{tail}", shorten(title.trim(), room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(title: &str, url: &str) -> Conversation {
        Conversation {
            title: title.to_owned(),
            url: url.to_owned(),
            ..Conversation::default()
        }
    }

    #[test]
    fn a_draft_names_the_person_their_words_and_the_conversation_with_its_link() {
        let draft = draft_invitation(
            Some("Ada"),
            &["qubits".to_owned(), "noise".to_owned(), "gates".to_owned()],
            "Error correction",
            Some(&conversation(
                "Why do surface codes win?",
                "https://q.example/1",
            )),
            None,
        );
        assert_eq!(
            draft,
            "Hi Ada, you write about qubits and noise: we are discussing \"Why do surface codes win?\" https://q.example/1"
        );
    }

    #[test]
    fn a_long_title_is_shortened_and_the_link_is_kept_whole() {
        let title = "word ".repeat(200);
        let url = "https://q.example/a/very/long/path/to/the/thread/12345";
        let draft = draft_invitation(
            None,
            &[],
            "Error correction",
            Some(&conversation(&title, url)),
            None,
        );
        assert!(draft.chars().count() <= DRAFT_MAX_CHARS, "{draft}");
        assert!(draft.ends_with(url), "{draft}");
        assert!(draft.contains('…'), "{draft}");
        assert!(draft.starts_with("Hi, you write about Error correction"));
    }

    #[test]
    fn without_a_conversation_the_asset_is_offered_and_without_either_the_facet() {
        let asset = Asset {
            title: "A field guide".to_owned(),
            url: "https://blog.example/guide".to_owned(),
            ..Asset::default()
        };
        let draft = draft_invitation(
            Some("Bo"),
            &["lasers".to_owned()],
            "Optics",
            None,
            Some(&asset),
        );
        assert_eq!(
            draft,
            "Hi Bo, you write about lasers: you may like \"A field guide\" https://blog.example/guide"
        );
        let bare = draft_invitation(Some("Bo"), &[], "Optics", None, None);
        assert!(bare.contains("Optics"), "{bare}");
        assert!(bare.chars().count() <= DRAFT_MAX_CHARS);
    }

    #[test]
    fn a_huge_name_still_gives_a_draft_within_the_limit() {
        let name = "N".repeat(400);
        let draft = draft_invitation(
            Some(&name),
            &[],
            "Optics",
            Some(&conversation("Title", "https://q.example/1")),
            None,
        );
        assert!(draft.chars().count() <= DRAFT_MAX_CHARS, "{}", draft.len());
    }
}
