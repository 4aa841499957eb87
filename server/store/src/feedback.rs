//! Feedback rows of the SQLite store (migration 0009): the suggestion's filterable parts as
//! columns, the whole record as JSON beside them.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::feedback::{Feedback, FeedbackCounts, FeedbackFilter};

fn body_of(row: &Row<'_>, index: usize) -> rusqlite::Result<Feedback> {
    let text = row.get_ref(index)?.as_str()?;
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
    })
}

/// Inserts or replaces each feedback under its id; returns how many ids were there already.
pub(crate) fn put_feedback(
    connection: &Connection,
    workspace: &WorkspaceId,
    feedback: &[Feedback],
) -> rusqlite::Result<u64> {
    let mut replaced = 0;
    let mut exists =
        connection.prepare_cached("SELECT 1 FROM feedback WHERE workspace = ?1 AND id = ?2")?;
    let mut upsert = connection.prepare_cached(
        "INSERT INTO feedback (workspace, id, kind, outcome, at, recorded_at, person_source,
             person_external_id, conversation_source, conversation_external_id, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (workspace, id) DO UPDATE SET kind = excluded.kind,
             outcome = excluded.outcome, at = excluded.at, recorded_at = excluded.recorded_at,
             person_source = excluded.person_source,
             person_external_id = excluded.person_external_id,
             conversation_source = excluded.conversation_source,
             conversation_external_id = excluded.conversation_external_id, body = excluded.body",
    )?;
    for item in feedback {
        if exists
            .query_row(params![workspace.as_str(), item.id], |_| Ok(()))
            .optional()?
            .is_some()
        {
            replaced += 1;
        }
        let body = serde_json::to_string(item)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        upsert.execute(params![
            workspace.as_str(),
            item.id,
            item.kind.as_str(),
            item.outcome.as_str(),
            item.at,
            item.recorded_at,
            item.person.as_ref().map(|key| &key.source),
            item.person.as_ref().map(|key| &key.external_id),
            item.conversation.as_ref().map(|key| &key.source),
            item.conversation.as_ref().map(|key| &key.external_id),
            body,
        ])?;
    }
    Ok(replaced)
}

/// Every feedback of a workspace, oldest first, a page at a time.
pub(crate) fn scan_feedback(
    connection: &Connection,
    workspace: &WorkspaceId,
    visit: &mut dyn FnMut(Feedback) -> trellis_core::error::CoreResult<()>,
) -> trellis_core::error::CoreResult<()> {
    const PAGE: i64 = 5_000;
    let mut after: Option<(Millis, String)> = None;
    loop {
        let page: Vec<Feedback> = {
            let mut statement = connection
                .prepare_cached(
                    "SELECT body FROM feedback WHERE workspace = ?1
                       AND (?2 IS NULL OR (at, id) > (?2, ?3))
                     ORDER BY at, id LIMIT ?4",
                )
                .map_err(crate::sqlite::storage_error("reading feedback"))?;
            let rows = statement
                .query_map(
                    params![
                        workspace.as_str(),
                        after.as_ref().map(|(at, _)| *at),
                        after.as_ref().map(|(_, id)| id.as_str()),
                        PAGE
                    ],
                    |row| body_of(row, 0),
                )
                .map_err(crate::sqlite::storage_error("reading feedback"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(crate::sqlite::storage_error("reading feedback"))?
        };
        let full = page.len() as i64 == PAGE;
        if let Some(last) = page.last() {
            after = Some((last.at, last.id.clone()));
        }
        for item in page {
            visit(item)?;
        }
        if !full {
            return Ok(());
        }
    }
}

pub(crate) fn list_feedback(
    connection: &Connection,
    workspace: &WorkspaceId,
    filter: &FeedbackFilter,
    before: Option<(Millis, &str)>,
    limit: usize,
) -> rusqlite::Result<Vec<Feedback>> {
    connection
        .prepare_cached(
            "SELECT body FROM feedback WHERE workspace = ?1
               AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR (person_source = ?3 AND person_external_id = ?4))
               AND (?5 IS NULL OR (conversation_source = ?5 AND conversation_external_id = ?6))
               AND (?7 IS NULL OR (at, id) < (?7, ?8))
             ORDER BY at DESC, id DESC LIMIT ?9",
        )?
        .query_map(
            params![
                workspace.as_str(),
                filter.kind.map(|kind| kind.as_str()),
                filter.person.as_ref().map(|key| &key.source),
                filter.person.as_ref().map(|key| &key.external_id),
                filter.conversation.as_ref().map(|key| &key.source),
                filter.conversation.as_ref().map(|key| &key.external_id),
                before.map(|(at, _)| at),
                before.map(|(_, id)| id),
                i64::try_from(limit).unwrap_or(i64::MAX),
            ],
            |row| body_of(row, 0),
        )?
        .collect()
}

pub(crate) fn feedback_counts(
    connection: &Connection,
    workspace: &WorkspaceId,
) -> rusqlite::Result<FeedbackCounts> {
    let mut counts = FeedbackCounts::default();
    let rows = connection
        .prepare_cached(
            "SELECT outcome, count(*) FROM feedback WHERE workspace = ?1 GROUP BY outcome",
        )?
        .query_map(params![workspace.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (outcome, count) in rows {
        counts.add_stored(&outcome, u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}
