//! Supporting assets through the service: resolves the context (a facet of the current
//! strategy, a stored conversation with its replies, or a text), ranks the asset index, and
//! dresses each hit with its stored record, passage, evidence and reasons in plain words.

use super::{Trellis, no_strategy};
use crate::domain::{Asset, RecordKey, WorkspaceId};
use crate::engine::Evidence;
use crate::engine::assets::Meaning;
use crate::error::{CoreError, CoreResult};
use crate::text::sentences;

/// What the assets should support.
#[derive(Debug, Clone, PartialEq)]
pub enum AssetTarget {
    /// A facet of the current strategy, by id (a key message, typically).
    Facet(String),
    /// A stored conversation: its title, body and replies.
    Conversation(RecordKey),
    /// A text that is not stored.
    Text { title: String, body: String },
}

/// One asset that supports the context, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportingAsset {
    pub asset: Asset,
    /// In [0, 1): 0.5 is where the collection's clearest matches for this context begin.
    pub score: f32,
    /// The sentence of the asset that supports the context, exactly as written in it.
    pub passage: String,
    pub reasons: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// Matched terms named in a reason.
const REASON_TERMS: usize = 5;

impl Trellis {
    /// Assets that support `target`, best first, at most `limit`; only the organisation's own
    /// when `own_only`.
    pub fn find_supporting_assets(
        &self,
        workspace: &WorkspaceId,
        target: &AssetTarget,
        own_only: bool,
        limit: usize,
    ) -> CoreResult<Vec<SupportingAsset>> {
        // A text is embedded before the engine is read: the model takes far longer than
        // ranking, and a writer must not wait for it.
        let text_vector = match target {
            AssetTarget::Text { title, body } => self.embed_text(title, body),
            _ => None,
        };
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        let (context, facet_name) = match target {
            AssetTarget::Facet(facet_id) => {
                let (_, strategy) = engine.strategy().ok_or_else(|| no_strategy(workspace))?;
                let facet = strategy
                    .facet(facet_id)
                    .ok_or_else(|| CoreError::NotFound {
                        kind: "facet",
                        id: facet_id.clone(),
                    })?;
                let context = engine
                    .facet_asset_context(facet_id)
                    .ok_or_else(|| no_strategy(workspace))?;
                (context, Some(facet.name.clone()))
            }
            AssetTarget::Conversation(key) => {
                let (conversation, posts) = self.conversation(workspace, key)?;
                let replies: Vec<&str> = posts.iter().map(|post| post.text.as_str()).collect();
                let context = engine.conversation_asset_context(&conversation, &replies);
                (context, None)
            }
            AssetTarget::Text { title, body } => {
                if title.trim().is_empty() && body.trim().is_empty() {
                    return Err(CoreError::invalid(
                        "text",
                        "is empty; give the title or the body of the text to support",
                    ));
                }
                (
                    engine.text_asset_context(title, body, &[], text_vector),
                    None,
                )
            }
        };
        // Assets dismissed for this conversation are not suggested for it again.
        let dismissed = match target {
            AssetTarget::Conversation(key) => engine.dismissed_assets(key),
            _ => Default::default(),
        };
        let mut ranked = engine.rank_assets(&context, own_only, limit + dismissed.len());
        ranked.retain(|hit| !dismissed.contains(&hit.key));
        ranked.truncate(limit);
        let mut found = Vec::with_capacity(ranked.len());
        for hit in ranked {
            // An asset the store no longer has is skipped rather than shown half-known.
            let Some(asset) = self.store.asset(workspace, &hit.key)? else {
                continue;
            };
            let explanation = engine.explain_asset(&context, &asset);
            let mut reasons = reasons(&asset, &explanation.evidence, facet_name.as_deref());
            if let Some(meaning) = hit.meaning {
                reasons.insert(
                    0,
                    meaning_reason(meaning, hit.raw > 0.0, facet_name.as_deref()),
                );
            }
            // Found by meaning alone, no sentence shares its words: its opening, which is
            // what the meaning was read from, stands as the passage.
            let passage = if explanation.passage.is_empty() && hit.meaning.is_some() {
                opening_sentence(&asset)
            } else {
                explanation.passage
            };
            found.push(SupportingAsset {
                asset,
                score: hit.score,
                passage,
                reasons,
                evidence: vec![explanation.evidence],
            });
        }
        Ok(found)
    }
}

/// How close an asset is in meaning, in words, read against the collection.
fn meaning_reason(meaning: Meaning, shares_words: bool, facet_name: Option<&str>) -> String {
    let what = match facet_name {
        Some(name) => format!("\"{name}\""),
        None => "the context".to_owned(),
    };
    let cosine = meaning.cosine;
    if meaning.relevance < 0.05 {
        // Only an asset found by its words is offered this far by meaning.
        return format!(
            "found by its words; in meaning no closer to {what} than most of the collection (cosine {cosine:.2})"
        );
    }
    let standing = if meaning.relevance >= 0.5 {
        "among the collection's closest"
    } else {
        "closer than most of the collection"
    };
    let words = if shares_words {
        ""
    } else {
        ", though it shares none of its telling words"
    };
    format!("close in meaning to {what} (cosine {cosine:.2}, {standing}){words}")
}

/// The first sentence of an asset's text (or its title), cut as passages are.
fn opening_sentence(asset: &Asset) -> String {
    for text in [&asset.text, &asset.title] {
        if let Some(range) = sentences(text).into_iter().next() {
            let sentence = text[range].trim();
            return match sentence.char_indices().nth(MAX_OPENING_CHARS) {
                Some((cut, _)) => format!("{}…", sentence[..cut].trim_end()),
                None => sentence.to_owned(),
            };
        }
    }
    String::new()
}

/// Longest opening quoted for an asset found by meaning alone.
const MAX_OPENING_CHARS: usize = 300;

fn reasons(asset: &Asset, evidence: &Evidence, facet_name: Option<&str>) -> Vec<String> {
    let mut reasons = Vec::new();
    let terms: Vec<&str> = evidence
        .terms
        .iter()
        .take(REASON_TERMS)
        .map(|term| term.term.as_str())
        .collect();
    if !terms.is_empty() {
        let list = terms.join(", ");
        reasons.push(match facet_name {
            Some(name) => format!("speaks to \"{name}\" with {list}"),
            None => format!("shares the context's telling words: {list}"),
        });
    }
    if !evidence.phrases.is_empty() {
        let quoted: Vec<String> = evidence
            .phrases
            .iter()
            .map(|phrase| format!("\"{phrase}\""))
            .collect();
        reasons.push(format!("uses the phrases {}", quoted.join(", ")));
    }
    if asset.own {
        reasons.push("published by the organisation itself".to_owned());
    }
    match asset.bookmark_count {
        0 => {}
        1 => reasons.push("bookmarked once".to_owned()),
        count => reasons.push(format!("bookmarked {count} times")),
    }
    match asset.share_count {
        0 => {}
        1 => reasons.push("shared once".to_owned()),
        count => reasons.push(format!("shared {count} times")),
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closeness_in_meaning_is_said_as_it_stands_against_the_collection() {
        let close = Meaning {
            cosine: 0.71,
            relevance: 0.8,
        };
        assert_eq!(
            meaning_reason(close, false, None),
            "close in meaning to the context (cosine 0.71, among the collection's closest), though it shares none of its telling words"
        );
        let middling = Meaning {
            cosine: 0.4,
            relevance: 0.2,
        };
        assert_eq!(
            meaning_reason(middling, true, Some("Quiet alerts")),
            "close in meaning to \"Quiet alerts\" (cosine 0.40, closer than most of the collection)"
        );
        let far = Meaning {
            cosine: 0.1,
            relevance: 0.01,
        };
        assert_eq!(
            meaning_reason(far, true, None),
            "found by its words; in meaning no closer to the context than most of the collection (cosine 0.10)"
        );
    }

    #[test]
    fn the_opening_quoted_is_the_first_sentence_cut_at_a_bound() {
        let mut asset = Asset {
            title: "A title".into(),
            text: "First sentence here. Second one.".into(),
            ..Asset::default()
        };
        assert_eq!(opening_sentence(&asset), "First sentence here.");
        asset.text = "é".repeat(MAX_OPENING_CHARS + 50);
        let opening = opening_sentence(&asset);
        assert_eq!(opening.chars().count(), MAX_OPENING_CHARS + 1);
        assert!(opening.ends_with('…'));
        asset.text = String::new();
        assert_eq!(opening_sentence(&asset), "A title");
    }
}
