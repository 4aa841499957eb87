//! Identity: people merged across platforms (by hand, or by resolution on strong evidence),
//! merges undone, and people forgotten for good.
//!
//! Merges and forgetting change whom every record belongs to, so instead of patching the
//! in-memory engine they are recorded in the store and the workspace's engine is rebuilt from
//! it: one code path, the same as start-up, and nothing to get subtly wrong.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Trellis, poisoned};
use crate::domain::{Forgotten, Merge, Millis, Record, RecordKey, WorkspaceId};
use crate::engine::Engine;
use crate::engine::people::{LookupKey, lookup_keys};
use crate::error::{CoreError, CoreResult};

/// Evidence at or above which identity resolution merges on its own.
pub const AUTO_MERGE: f32 = 0.9;

pub(super) fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_millis() as Millis)
}

/// A record as it may be stored once its people are forgotten: a forgotten person's own record
/// is dropped; what they wrote keeps its place in the thread, without text or author.
pub(super) fn redact(record: Record, forgotten: &HashSet<RecordKey>) -> Option<Record> {
    if forgotten.is_empty() {
        return Some(record);
    }
    let by_forgotten = |source: &str, author: &Option<String>| {
        author
            .as_ref()
            .is_some_and(|author| forgotten.contains(&RecordKey::new(source, author.clone())))
    };
    match record {
        Record::Person(person) if forgotten.contains(&person.key) => None,
        Record::Post(mut post) if by_forgotten(&post.key.source, &post.author) => {
            post.text.clear();
            post.author = None;
            Some(Record::Post(post))
        }
        Record::Conversation(mut conversation)
            if by_forgotten(&conversation.key.source, &conversation.author) =>
        {
            conversation.title.clear();
            conversation.body.clear();
            conversation.author = None;
            Some(Record::Conversation(conversation))
        }
        other => Some(other),
    }
}

/// How much a shared key says that two records are one person, and in what words.
fn evidence_of(key: &LookupKey) -> Option<(f32, String)> {
    match key {
        LookupKey::EmailSha256(_) => {
            Some((0.99, "the same e-mail address (compared hashed)".into()))
        }
        LookupKey::ProfileUrl(url) => Some((0.95, format!("the same profile URL ({url})"))),
        LookupKey::PlatformHandle(platform, handle) => {
            Some((0.9, format!("the same handle @{handle} on {platform}")))
        }
        LookupKey::CrmId(id) => Some((0.97, format!("the same CRM id ({id})"))),
        // A handle alone, across platforms, is a hint, not evidence: anyone can take a name.
        LookupKey::Handle(handle) => Some((
            0.5,
            format!("the same handle @{handle} on different platforms"),
        )),
    }
}

/// Combines independent pieces of evidence: each one leaves less room for doubt.
fn combined(confidences: &[f32]) -> f32 {
    1.0 - confidences
        .iter()
        .fold(1.0f32, |doubt, confidence| doubt * (1.0 - confidence))
}

/// The evidence that `a` and `b` are one person, from the keys they share.
fn shared_evidence(engine: &Engine, keys: &[LookupKey], other: &RecordKey) -> (f32, Vec<String>) {
    let mut confidences = Vec::new();
    let mut reasons = Vec::new();
    for key in keys {
        if engine.people().find(key).contains(other)
            && let Some((confidence, reason)) = evidence_of(key)
        {
            confidences.push(confidence);
            reasons.push(reason);
        }
    }
    (combined(&confidences), reasons)
}

fn merge_id(target: &RecordKey, others: &[RecordKey], now: Millis) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut hasher);
    others.hash(&mut hasher);
    now.hash(&mut hasher);
    format!("merge-{:016x}", hasher.finish())
}

/// Identity resolution over a stored batch: people whose records share strong evidence with
/// someone already known are merged into them. Merges once undone are never made again.
pub(super) fn resolve(engine: &Engine, batch: &[Record], now: Millis) -> CoreResult<Vec<Merge>> {
    let mut merges = Vec::new();
    let mut merged_now: HashSet<RecordKey> = HashSet::new();
    for record in batch {
        let Record::Person(person) = record else {
            continue;
        };
        let Some(own) = engine.people().canonical(&person.key).cloned() else {
            continue;
        };
        if merged_now.contains(&own) {
            continue;
        }
        let keys = lookup_keys(person);
        let candidates: BTreeSet<RecordKey> = keys
            .iter()
            .filter(|key| !matches!(key, LookupKey::Handle(_)))
            .flat_map(|key| engine.people().find(key))
            .filter(|other| *other != own)
            .collect();
        for other in candidates {
            if engine.was_unmerged(&own, &other) || merged_now.contains(&other) {
                continue;
            }
            let (confidence, reasons) = shared_evidence(engine, &keys, &other);
            if confidence < AUTO_MERGE {
                continue;
            }
            // The smaller key stays the person's key, so replaying the same records always
            // makes the same merges.
            let (target, joining) = if other < own {
                (other, own.clone())
            } else {
                (own.clone(), other)
            };
            merged_now.insert(joining.clone());
            merges.push(Merge {
                id: merge_id(&target, std::slice::from_ref(&joining), now),
                target,
                others: vec![joining],
                confidence,
                reasons,
                automatic: true,
                created_at: now,
                undone_at: None,
            });
            break;
        }
    }
    Ok(merges)
}

impl Trellis {
    /// Merges `others` into `target`, with the evidence found and the caller's reason.
    pub fn merge_people(
        &self,
        workspace: &WorkspaceId,
        target: &RecordKey,
        others: &[RecordKey],
        reason: &str,
    ) -> CoreResult<Merge> {
        if others.is_empty() {
            return Err(CoreError::invalid(
                "others",
                "is empty; name the records to merge into the target",
            ));
        }
        let mut violations = Vec::new();
        crate::limits::check_chars(
            &mut violations,
            "reason",
            reason,
            crate::limits::MERGE_REASON_CHARS,
        );
        crate::limits::check_items(
            &mut violations,
            "others",
            others.len(),
            crate::limits::MERGE_OTHERS,
        );
        if !violations.is_empty() {
            return Err(CoreError::Invalid(violations));
        }
        if crate::limits::visible(reason).is_empty() {
            return Err(CoreError::invalid(
                "reason",
                "is empty; say why these records are one person, for the audit trail",
            ));
        }
        let engine = self.engine(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let merge = {
            let engine = Self::read(&engine)?;
            let resolve = |key: &RecordKey, field: &str| {
                engine.people().canonical(key).cloned().ok_or_else(|| {
                    CoreError::invalid(
                        field,
                        format!("{key} is not a known person; ingest them first or check the id"),
                    )
                })
            };
            let target = resolve(target, "target")?;
            let mut joining = Vec::new();
            let mut confidences = Vec::new();
            let mut reasons = vec![format!("merged by request: {}", reason.trim())];
            for (index, other) in others.iter().enumerate() {
                let field = format!("others[{index}]");
                let other = resolve(other, &field)?;
                if other == target {
                    return Err(CoreError::invalid(
                        field,
                        format!("{other} is already the target person"),
                    ));
                }
                if joining.contains(&other) {
                    return Err(CoreError::invalid(
                        field,
                        format!(
                            "{other} is named twice (or is the same person as one named before); name each person once"
                        ),
                    ));
                }
                let keys = match self.store.person(workspace, &other)? {
                    Some(person) => lookup_keys(&person),
                    None => Vec::new(),
                };
                let (confidence, evidence) = shared_evidence(&engine, &keys, &target);
                confidences.push(confidence);
                reasons.extend(evidence);
                joining.push(other);
            }
            // A merge asked for by a person with no shared keys rests on their word alone.
            let evidence = confidences.iter().copied().fold(f32::INFINITY, f32::min);
            let confidence = if evidence.is_finite() && evidence > 0.0 {
                evidence
            } else {
                0.5
            };
            let now = now_millis();
            Merge {
                id: merge_id(&target, &joining, now),
                target,
                others: joining,
                confidence,
                reasons,
                automatic: false,
                created_at: now,
                undone_at: None,
            }
        };
        self.store.put_merge(workspace, &merge)?;
        self.rebuild(workspace)?;
        Ok(merge)
    }

    /// Undoes a merge: its records are people of their own again.
    pub fn unmerge_people(&self, workspace: &WorkspaceId, merge_id: &str) -> CoreResult<Merge> {
        if merge_id.trim().is_empty() {
            return Err(CoreError::invalid(
                "merge_id",
                "is empty; give the id MergePeople returned",
            ));
        }
        self.engine(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let merge = self
            .store
            .undo_merge(workspace, merge_id, now_millis())?
            .ok_or_else(|| CoreError::NotFound {
                kind: "active merge",
                id: merge_id.to_owned(),
            })?;
        self.rebuild(workspace)?;
        Ok(merge)
    }

    /// The merges of a workspace, undone ones too: the audit trail.
    pub fn merges(&self, workspace: &WorkspaceId) -> CoreResult<Vec<Merge>> {
        self.engine(workspace)?;
        self.store.merges(workspace)
    }

    /// The audit trail of merges, newest first; only those that joined `person` when given,
    /// only those still holding when `active_only`.
    pub fn merge_history(
        &self,
        workspace: &WorkspaceId,
        person: Option<&RecordKey>,
        active_only: bool,
    ) -> CoreResult<Vec<Merge>> {
        let mut merges: Vec<Merge> = self
            .merges(workspace)?
            .into_iter()
            .filter(|merge| {
                person.is_none_or(|person| merge.target == *person || merge.others.contains(person))
            })
            .filter(|merge| !active_only || merge.undone_at.is_none())
            .collect();
        merges.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(merges)
    }

    /// Removes a person's personal data and the text they wrote, under every record merged
    /// into them, for good: later ingests of them are dropped or blanked.
    pub fn forget_person(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
    ) -> CoreResult<Forgotten> {
        let engine = self.engine(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let records =
            {
                let engine = Self::read(&engine)?;
                let canonical = engine.people().canonical(person).cloned().ok_or_else(|| {
                    CoreError::NotFound {
                        kind: "person",
                        id: person.to_string(),
                    }
                })?;
                engine.people().records_of(&canonical)
            };
        let forgotten = self
            .store
            .forget_people(workspace, &records, now_millis())?;
        self.rebuild(workspace)?;
        Ok(forgotten)
    }
}
