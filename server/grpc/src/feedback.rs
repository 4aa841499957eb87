//! `FeedbackService`: what became of suggestions (see `trellis_core::feedback`).

use tonic::{Request, Response, Status};
use trellis_core::domain::{Millis, RecordKey};
use trellis_core::feedback::{Feedback, FeedbackFilter, Outcome, SuggestionKind};

use crate::convert;
use crate::error::bad_field;
use crate::pb;
use crate::services::{Api, now_millis};

/// Feedback a page holds when the request does not say.
const DEFAULT_PAGE: usize = 100;

fn kind_from_pb(value: i32, field: &str) -> Result<SuggestionKind, Status> {
    match pb::SuggestionKind::try_from(value) {
        Ok(pb::SuggestionKind::Discussion) => Ok(SuggestionKind::Discussion),
        Ok(pb::SuggestionKind::Participant) => Ok(SuggestionKind::Participant),
        Ok(pb::SuggestionKind::Asset) => Ok(SuggestionKind::Asset),
        Ok(pb::SuggestionKind::Prospect) => Ok(SuggestionKind::Prospect),
        Ok(pb::SuggestionKind::Action) => Ok(SuggestionKind::Action),
        Ok(pb::SuggestionKind::Unspecified) | Err(_) => Err(bad_field(
            field,
            "is unspecified or unknown; use DISCUSSION, PARTICIPANT, ASSET, PROSPECT or ACTION",
        )),
    }
}

fn kind_to_pb(kind: SuggestionKind) -> pb::SuggestionKind {
    match kind {
        SuggestionKind::Discussion => pb::SuggestionKind::Discussion,
        SuggestionKind::Participant => pb::SuggestionKind::Participant,
        SuggestionKind::Asset => pb::SuggestionKind::Asset,
        SuggestionKind::Prospect => pb::SuggestionKind::Prospect,
        SuggestionKind::Action => pb::SuggestionKind::Action,
    }
}

fn outcome_from_pb(value: i32, field: &str) -> Result<Outcome, Status> {
    match pb::FeedbackOutcome::try_from(value) {
        Ok(pb::FeedbackOutcome::Shown) => Ok(Outcome::Shown),
        Ok(pb::FeedbackOutcome::Accepted) => Ok(Outcome::Accepted),
        Ok(pb::FeedbackOutcome::Dismissed) => Ok(Outcome::Dismissed),
        Ok(pb::FeedbackOutcome::Done) => Ok(Outcome::Done),
        Ok(pb::FeedbackOutcome::Unspecified) | Err(_) => Err(bad_field(
            field,
            "is unspecified or unknown; use SHOWN, ACCEPTED, DISMISSED or DONE",
        )),
    }
}

fn outcome_to_pb(outcome: Outcome) -> pb::FeedbackOutcome {
    match outcome {
        Outcome::Shown => pb::FeedbackOutcome::Shown,
        Outcome::Accepted => pb::FeedbackOutcome::Accepted,
        Outcome::Dismissed => pb::FeedbackOutcome::Dismissed,
        Outcome::Done => pb::FeedbackOutcome::Done,
    }
}

/// A record reference that may be left out.
fn optional_key(value: Option<&pb::RecordRef>, field: &str) -> Result<Option<RecordKey>, Status> {
    match value {
        None => Ok(None),
        Some(value) if value.source.is_empty() && value.external_id.is_empty() => Ok(None),
        Some(value) => convert::record_key(Some(value), field).map(Some),
    }
}

fn feedback_from_pb(item: pb::Feedback, field: &str, now: Millis) -> Result<Feedback, Status> {
    Ok(Feedback {
        id: item.id,
        kind: kind_from_pb(item.kind, &format!("{field}.kind"))?,
        outcome: outcome_from_pb(item.outcome, &format!("{field}.outcome"))?,
        person: optional_key(item.person.as_ref(), &format!("{field}.person"))?,
        conversation: optional_key(item.conversation.as_ref(), &format!("{field}.conversation"))?,
        asset: optional_key(item.asset.as_ref(), &format!("{field}.asset"))?,
        action: (!item.action.is_empty()).then_some(item.action),
        at: convert::time_field(&format!("{field}.at"), item.at.as_ref())?.unwrap_or(now),
        recorded_at: now,
        actor: item.actor,
        note: item.note,
    })
}

fn feedback_to_pb(item: Feedback) -> pb::Feedback {
    pb::Feedback {
        id: item.id,
        kind: kind_to_pb(item.kind).into(),
        outcome: outcome_to_pb(item.outcome).into(),
        person: item.person.as_ref().map(convert::record_ref),
        conversation: item.conversation.as_ref().map(convert::record_ref),
        asset: item.asset.as_ref().map(convert::record_ref),
        action: item.action.unwrap_or_default(),
        at: Some(convert::timestamp(item.at)),
        actor: item.actor,
        note: item.note,
        recorded_at: Some(convert::timestamp(item.recorded_at)),
    }
}

/// A page token: where the previous page ended, as `<time>:<id>`.
fn page_start(token: &str) -> Result<Option<(Millis, String)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse::<Millis>().ok()?, id.to_owned())))
        .map(Some)
        .ok_or_else(|| {
            bad_field(
                "page_token",
                "is not a token this server issued; pass next_page_token unchanged",
            )
        })
}

#[tonic::async_trait]
impl pb::feedback_service_server::FeedbackService for Api {
    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn record_feedback(
        &self,
        request: Request<pb::RecordFeedbackRequest>,
    ) -> Result<Response<pb::RecordFeedbackResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let now = now_millis();
        let items = request
            .feedback
            .into_iter()
            .enumerate()
            .map(|(index, item)| feedback_from_pb(item, &format!("feedback[{index}]"), now))
            .collect::<Result<Vec<_>, Status>>()?;
        let recorded = self
            .blocking(move |trellis| trellis.record_feedback(&workspace, items))
            .await?;
        Ok(Response::new(pb::RecordFeedbackResponse {
            ids: recorded.ids,
            recorded: u32::try_from(recorded.recorded).unwrap_or(u32::MAX),
            replaced: u32::try_from(recorded.replaced).unwrap_or(u32::MAX),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn list_feedback(
        &self,
        request: Request<pb::ListFeedbackRequest>,
    ) -> Result<Response<pb::ListFeedbackResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, DEFAULT_PAGE, "limit")?;
        let filter = FeedbackFilter {
            kind: match request.kind {
                0 => None,
                kind => Some(kind_from_pb(kind, "kind")?),
            },
            person: optional_key(request.person.as_ref(), "person")?,
            conversation: optional_key(request.conversation.as_ref(), "conversation")?,
        };
        let after = page_start(&request.page_token)?;
        let page = self
            .blocking(move |trellis| trellis.list_feedback(&workspace, &filter, after, limit))
            .await?;
        Ok(Response::new(pb::ListFeedbackResponse {
            next_page_token: page
                .next
                .map(|(at, id)| format!("{at}:{id}"))
                .unwrap_or_default(),
            feedback: page.feedback.into_iter().map(feedback_to_pb).collect(),
            counts: Some(pb::FeedbackCounts {
                shown: page.counts.shown,
                accepted: page.counts.accepted,
                dismissed: page.counts.dismissed,
                done: page.counts.done,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_is_the_time_and_id_it_ends_at_and_anything_else_is_refused() {
        assert_eq!(page_start("").unwrap(), None);
        assert_eq!(
            page_start("1700000000000:fb-00ab").unwrap(),
            Some((1_700_000_000_000, "fb-00ab".to_owned()))
        );
        assert_eq!(
            page_start("-5:id:with:colons").unwrap(),
            Some((-5, "id:with:colons".to_owned()))
        );
        let refused = page_start("garbage").unwrap_err();
        assert!(refused.message().contains("page_token"), "{refused:?}");
    }

    #[test]
    fn an_unspecified_kind_or_outcome_names_its_field() {
        let item = pb::Feedback {
            outcome: pb::FeedbackOutcome::Accepted.into(),
            ..Default::default()
        };
        let refused = feedback_from_pb(item, "feedback[4]", 0).unwrap_err();
        assert!(
            refused.message().contains("feedback[4].kind"),
            "{refused:?}"
        );
        let item = pb::Feedback {
            kind: pb::SuggestionKind::Prospect.into(),
            ..Default::default()
        };
        let refused = feedback_from_pb(item, "feedback[0]", 0).unwrap_err();
        assert!(
            refused.message().contains("feedback[0].outcome"),
            "{refused:?}"
        );
    }
}
