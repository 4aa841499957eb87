//! Recording and listing feedback on suggestions (see `crate::feedback`).

use super::{Trellis, identity::now_millis, poisoned};
use crate::domain::{Millis, WorkspaceId};
use crate::error::{CoreError, CoreResult};
use crate::feedback::{self, Feedback, FeedbackCounts, FeedbackFilter};

/// What recording a call's feedback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFeedback {
    /// Each feedback's id, in the order given (derived where none was).
    pub ids: Vec<String>,
    /// New ids, and ids that replaced earlier feedback.
    pub recorded: u64,
    pub replaced: u64,
}

/// A page of feedback, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackPage {
    pub feedback: Vec<Feedback>,
    /// Where the next page starts (the last item's time and id); `None` on the last page.
    pub next: Option<(Millis, String)>,
    pub counts: FeedbackCounts,
}

impl Trellis {
    /// Validates and stores feedback (all of it, or none when any is invalid), then applies it
    /// to the workspace's engine. Feedback without a time happened now.
    pub fn record_feedback(
        &self,
        workspace: &WorkspaceId,
        mut items: Vec<Feedback>,
    ) -> CoreResult<RecordedFeedback> {
        feedback::validate_all(&mut items)?;
        // One call naming an id twice would leave only its last record: say so instead.
        let mut seen = std::collections::HashSet::new();
        for (index, item) in items.iter().enumerate() {
            if !seen.insert(item.id.as_str()) {
                return Err(CoreError::invalid(
                    format!("feedback[{index}].id"),
                    format!(
                        "{:?} appears earlier in the same call; give each feedback its own id",
                        item.id
                    ),
                ));
            }
        }
        let now = now_millis();
        for item in &mut items {
            item.recorded_at = now;
        }
        let engine = self.engine(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let replaced = self.store.put_feedback(workspace, &items)?;
        match self.store.change_log() {
            Some(log) => {
                self.catch_up(log, workspace)?;
            }
            None => engine.write().map_err(poisoned)?.apply_feedback(&items),
        }
        Ok(RecordedFeedback {
            recorded: items.len() as u64 - replaced,
            replaced,
            ids: items.into_iter().map(|item| item.id).collect(),
        })
    }

    /// A page of a workspace's feedback, newest first, starting after `after`.
    pub fn list_feedback(
        &self,
        workspace: &WorkspaceId,
        filter: &FeedbackFilter,
        after: Option<(Millis, String)>,
        limit: usize,
    ) -> CoreResult<FeedbackPage> {
        self.engine(workspace)?;
        let limit = limit.max(1);
        let mut feedback = self.store.list_feedback(
            workspace,
            filter,
            after.as_ref().map(|(at, id)| (*at, id.as_str())),
            limit + 1,
        )?;
        let more = feedback.len() > limit;
        feedback.truncate(limit);
        let next = more
            .then(|| feedback.last().map(|last| (last.at, last.id.clone())))
            .flatten();
        Ok(FeedbackPage {
            feedback,
            next,
            counts: self.store.feedback_counts(workspace)?,
        })
    }
}
