//! Feedback rows of the PostgreSQL store (migration 0009), as the SQLite store keeps them.

use postgres::GenericClient;
use postgres::Row;
use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::feedback::{Feedback, FeedbackCounts, FeedbackFilter};

use super::Doing;

fn body_of(row: &Row) -> CoreResult<Feedback> {
    let text: &str = row.get(0);
    serde_json::from_str(text).map_err(|error| {
        CoreError::Storage(format!("a feedback row holds unreadable JSON: {error}"))
    })
}

/// Inserts or replaces each feedback under its id; returns how many ids were there already.
pub(super) fn put_feedback(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    feedback: &[Feedback],
) -> CoreResult<u64> {
    let mut replaced = 0;
    for item in feedback {
        let body = serde_json::to_string(item)
            .map_err(|error| CoreError::Internal(format!("serializing feedback: {error}")))?;
        // `xmax = 0` only for a row this statement inserted: an update sets it.
        let row = client
            .query_one(
                "INSERT INTO feedback (workspace, id, kind, outcome, at, recorded_at, person_source,
                     person_external_id, conversation_source, conversation_external_id, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::json)
                 ON CONFLICT (workspace, id) DO UPDATE SET kind = excluded.kind,
                     outcome = excluded.outcome, at = excluded.at,
                     recorded_at = excluded.recorded_at, person_source = excluded.person_source,
                     person_external_id = excluded.person_external_id,
                     conversation_source = excluded.conversation_source,
                     conversation_external_id = excluded.conversation_external_id,
                     body = excluded.body
                 RETURNING (xmax = 0)",
                &[
                    &workspace.as_str(),
                    &item.id,
                    &item.kind.as_str(),
                    &item.outcome.as_str(),
                    &item.at,
                    &item.recorded_at,
                    &item.person.as_ref().map(|key| key.source.as_str()),
                    &item.person.as_ref().map(|key| key.external_id.as_str()),
                    &item.conversation.as_ref().map(|key| key.source.as_str()),
                    &item.conversation.as_ref().map(|key| key.external_id.as_str()),
                    &body,
                ],
            )
            .doing("recording feedback")?;
        if !row.get::<_, bool>(0) {
            replaced += 1;
        }
    }
    Ok(replaced)
}

/// Every feedback of a workspace, oldest first, a page at a time.
pub(super) fn scan_feedback(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    visit: &mut dyn FnMut(Feedback) -> CoreResult<()>,
) -> CoreResult<()> {
    const PAGE: i64 = 5_000;
    let mut after: Option<(Millis, String)> = None;
    loop {
        let rows = client
            .query(
                "SELECT body::text FROM feedback WHERE workspace = $1
                   AND ($2::bigint IS NULL OR (at, id) > ($2, $3::text))
                 ORDER BY at, id LIMIT $4",
                &[
                    &workspace.as_str(),
                    &after.as_ref().map(|(at, _)| *at),
                    &after.as_ref().map(|(_, id)| id.as_str()),
                    &PAGE,
                ],
            )
            .doing("reading feedback")?;
        let full = rows.len() as i64 == PAGE;
        for row in &rows {
            let item = body_of(row)?;
            after = Some((item.at, item.id.clone()));
            visit(item)?;
        }
        if !full {
            return Ok(());
        }
    }
}

pub(super) fn list_feedback(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    filter: &FeedbackFilter,
    before: Option<(Millis, &str)>,
    limit: usize,
) -> CoreResult<Vec<Feedback>> {
    client
        .query(
            "SELECT body::text FROM feedback WHERE workspace = $1
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR (person_source = $3 AND person_external_id = $4::text))
               AND ($5::text IS NULL
                    OR (conversation_source = $5 AND conversation_external_id = $6::text))
               AND ($7::bigint IS NULL OR (at, id) < ($7, $8::text))
             ORDER BY at DESC, id DESC LIMIT $9",
            &[
                &workspace.as_str(),
                &filter.kind.map(|kind| kind.as_str()),
                &filter.person.as_ref().map(|key| key.source.as_str()),
                &filter.person.as_ref().map(|key| key.external_id.as_str()),
                &filter.conversation.as_ref().map(|key| key.source.as_str()),
                &filter
                    .conversation
                    .as_ref()
                    .map(|key| key.external_id.as_str()),
                &before.map(|(at, _)| at),
                &before.map(|(_, id)| id),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .doing("listing feedback")?
        .iter()
        .map(body_of)
        .collect()
}

pub(super) fn feedback_counts(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
) -> CoreResult<FeedbackCounts> {
    let mut counts = FeedbackCounts::default();
    for row in client
        .query(
            "SELECT outcome, count(*) FROM feedback WHERE workspace = $1 GROUP BY outcome",
            &[&workspace.as_str()],
        )
        .doing("counting feedback")?
    {
        counts.add_stored(row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or(0));
    }
    Ok(counts)
}
