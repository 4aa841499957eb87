//! Identity: people merged across platforms (by hand, or by resolution on strong evidence),
//! merges undone, and people forgotten for good.
//!
//! Resolution merges on its own only on an identifier that names one person: an e-mail hash, a
//! profile URL, a CRM id, or a handle its connector marks unique on its platform. A name shared
//! on one platform is no evidence (several people are called Joe on every forum), and a name
//! shared across platforms is only a hint. Merges made by earlier, looser rules are found and
//! undone by [`Trellis::review_automatic_merges`].
//!
//! Merges and forgetting change whom every record belongs to, so instead of patching the
//! in-memory engine they are recorded in the store and the workspace's engine is rebuilt from
//! it: one code path, the same as start-up, and nothing to get subtly wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Trellis, poisoned};
use crate::domain::{Forgotten, Merge, Millis, Person, Record, RecordKey, WorkspaceId};
use crate::engine::Engine;
use crate::engine::people::{LookupKey, lookup_keys, platform_name};
use crate::error::{CoreError, CoreResult};
use crate::store::Store;

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

/// How much a shared key says, on its own, that two people are one, and in what words; `None`
/// for a handle, which says something only with the platforms it is on (`handle_evidence`).
/// Only identifiers that name one person (an e-mail address, a profile page, a CRM id, a handle
/// its platform reserves to one account) reach [`AUTO_MERGE`] alone.
fn evidence_of(key: &LookupKey) -> Option<(f32, String)> {
    match key {
        LookupKey::EmailSha256(_) => {
            Some((0.99, "the same e-mail address (compared hashed)".into()))
        }
        LookupKey::ProfileUrl(url) => Some((0.95, format!("the same profile URL ({url})"))),
        LookupKey::UniqueHandle(platform, handle) => Some((
            0.9,
            format!("the same handle @{handle} on {platform}, where it names one account only"),
        )),
        LookupKey::CrmId(id) => Some((0.97, format!("the same CRM id ({id})"))),
        LookupKey::Handle(_) => None,
    }
}

/// What one handle found on both sides says, from the platforms each side has it on.
///
/// On two different platforms it is a hint that adds to other evidence but never merges alone:
/// anyone can take a name. On one platform it is no evidence at all unless the platform reserves
/// it to one account (then `evidence_of` counted it already): several people share a display
/// name, and a user name unique inside one forum or chat workspace is another person's in the
/// next one. It is still named, so a reader of the merge sees it was not overlooked.
fn handle_evidence(
    handle: &str,
    ours: &BTreeSet<String>,
    theirs: &BTreeSet<String>,
    unique_on: &BTreeSet<&str>,
) -> Option<(f32, String)> {
    let ours_elsewhere = ours.iter().find(|platform| !theirs.contains(*platform));
    let our_platform = ours_elsewhere.or_else(|| ours.iter().next())?;
    if let Some(their_platform) = theirs.iter().find(|platform| *platform != our_platform) {
        return Some((
            0.5,
            format!("the same handle @{handle} on {our_platform} and {their_platform}"),
        ));
    }
    if unique_on.contains(our_platform.as_str()) {
        return None;
    }
    Some((
        0.0,
        format!(
            "the same handle @{handle} on {our_platform}, not known to be unique there (not evidence)"
        ),
    ))
}

/// Each handle of some records (as `LookupKey::handle` writes it) with the platforms it is on;
/// identities without a platform are left out: a shared name is a hint only across platforms,
/// and theirs is unknown.
fn handles_by_platform(people: &[Person]) -> BTreeMap<String, BTreeSet<String>> {
    let mut handles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for identity in people.iter().flat_map(|person| &person.identities) {
        let platform = platform_name(&identity.platform);
        if let (LookupKey::Handle(handle), false) =
            (LookupKey::handle(&identity.handle), platform.is_empty())
            && !handle.is_empty()
        {
            handles.entry(handle).or_default().insert(platform);
        }
    }
    handles
}

/// Combines independent pieces of evidence: each one leaves less room for doubt.
fn combined(confidences: &[f32]) -> f32 {
    1.0 - confidences
        .iter()
        .fold(1.0f32, |doubt, confidence| doubt * (1.0 - confidence))
}

/// How sure the records of two people make it that they are one person, and why, strongest
/// reason first. The one judgement of identity: resolution on ingest, merges asked for by hand
/// and the review of past automatic merges all read it.
pub(crate) fn evidence_between(ours: &[Person], theirs: &[Person]) -> (f32, Vec<String>) {
    let keys = |people: &[Person]| -> BTreeSet<LookupKey> {
        people.iter().flat_map(lookup_keys).collect()
    };
    let (our_keys, their_keys) = (keys(ours), keys(theirs));
    let shared: Vec<&LookupKey> = our_keys.intersection(&their_keys).collect();
    let unique_on = |wanted: &str| -> BTreeSet<&str> {
        shared
            .iter()
            .filter_map(|key| match key {
                LookupKey::UniqueHandle(platform, handle) if handle == wanted => {
                    Some(platform.as_str())
                }
                _ => None,
            })
            .collect()
    };
    let mut pieces: Vec<(f32, String)> = shared.iter().filter_map(|key| evidence_of(key)).collect();
    let their_handles = handles_by_platform(theirs);
    for (handle, our_platforms) in handles_by_platform(ours) {
        if let Some(their_platforms) = their_handles.get(&handle) {
            pieces.extend(handle_evidence(
                &handle,
                &our_platforms,
                their_platforms,
                &unique_on(&handle),
            ));
        }
    }
    pieces.sort_by(|a, b| b.0.total_cmp(&a.0));
    let confidences: Vec<f32> = pieces.iter().map(|(confidence, _)| *confidence).collect();
    (
        combined(&confidences),
        pieces.into_iter().map(|(_, reason)| reason).collect(),
    )
}

/// The stored person records of everyone merged into `person` (author-only keys have none).
fn person_records(
    engine: &Engine,
    store: &dyn Store,
    workspace: &WorkspaceId,
    person: &RecordKey,
) -> CoreResult<Vec<Person>> {
    let mut people = Vec::new();
    for key in engine.people().records_of(person) {
        people.extend(store.person(workspace, &key)?);
    }
    Ok(people)
}

fn merge_id(target: &RecordKey, others: &[RecordKey], now: Millis) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    target.hash(&mut hasher);
    others.hash(&mut hasher);
    now.hash(&mut hasher);
    format!("merge-{:016x}", hasher.finish())
}

/// Identity resolution over a stored batch: people whose records share strong evidence with
/// someone already known are merged into them. Candidates are those who share an identifier
/// that can be enough alone; the evidence is then read from both people's records, every record
/// merged into them included. Merges once undone are never made again.
pub(super) fn resolve(
    engine: &Engine,
    store: &dyn Store,
    workspace: &WorkspaceId,
    batch: &[Record],
    now: Millis,
) -> CoreResult<Vec<Merge>> {
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
        let candidates: BTreeSet<RecordKey> = lookup_keys(person)
            .iter()
            .filter(|key| evidence_of(key).is_some())
            .flat_map(|key| engine.people().find(key))
            .filter(|other| *other != own)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let ours = person_records(engine, store, workspace, &own)?;
        for other in candidates {
            if engine.was_unmerged(&own, &other) || merged_now.contains(&other) {
                continue;
            }
            let theirs = person_records(engine, store, workspace, &other)?;
            let (confidence, reasons) = evidence_between(&ours, &theirs);
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

/// People as a run of merges leaves them: each record's group of records.
#[derive(Debug, Default)]
struct Groups {
    group_of: HashMap<RecordKey, usize>,
    members: Vec<Vec<RecordKey>>,
}

impl Groups {
    fn members(&self, key: &RecordKey) -> Vec<RecordKey> {
        match self.group_of.get(key) {
            Some(&group) => self.members[group].clone(),
            None => vec![key.clone()],
        }
    }

    fn group(&mut self, key: &RecordKey) -> usize {
        if let Some(&group) = self.group_of.get(key) {
            return group;
        }
        self.members.push(vec![key.clone()]);
        self.group_of.insert(key.clone(), self.members.len() - 1);
        self.members.len() - 1
    }

    fn join(&mut self, a: &RecordKey, b: &RecordKey) {
        let (kept, joining) = (self.group(a), self.group(b));
        if kept == joining {
            return;
        }
        let moved = std::mem::take(&mut self.members[joining]);
        for key in &moved {
            self.group_of.insert(key.clone(), kept);
        }
        self.members[kept].extend(moved);
    }
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
                let (confidence, evidence) = evidence_between(
                    &person_records(&engine, &*self.store, workspace, &other)?,
                    &person_records(&engine, &*self.store, workspace, &target)?,
                );
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

    /// Judges every automatic merge that holds again, with today's rules, and returns those the
    /// rules would not make (an earlier version merged people who only shared a display name on
    /// one platform); with `apply`, undoes them as [`Self::unmerge_people`] does: they stay in
    /// the audit trail, marked undone, and are never made again.
    ///
    /// Merges are replayed in the order they were made, each judged on the records its two sides
    /// held at that point of the replay, merges by hand and those kept included: a merge that
    /// only held through an undone one (the third "Joe" of a chain) is undone too. A merge whose
    /// records are gone (their people were forgotten) is left as it is.
    pub fn review_automatic_merges(
        &self,
        workspace: &WorkspaceId,
        apply: bool,
    ) -> CoreResult<Vec<Merge>> {
        self.engine(workspace)?;
        let _gate = self.write_gate.lock().map_err(poisoned)?;
        let mut groups = Groups::default();
        let mut records: HashMap<RecordKey, Option<Person>> = HashMap::new();
        let mut people_of = |keys: Vec<RecordKey>| -> CoreResult<Vec<Person>> {
            let mut people = Vec::new();
            for key in keys {
                if !records.contains_key(&key) {
                    let person = self.store.person(workspace, &key)?;
                    records.insert(key.clone(), person);
                }
                people.extend(records[&key].clone());
            }
            Ok(people)
        };
        let mut rejected = Vec::new();
        for merge in self.store.merges(workspace)? {
            if merge.undone_at.is_some() {
                continue;
            }
            if merge.automatic {
                let ours = people_of(groups.members(&merge.target))?;
                let mut holds = true;
                for other in &merge.others {
                    let theirs = people_of(groups.members(other))?;
                    if !ours.is_empty()
                        && !theirs.is_empty()
                        && evidence_between(&ours, &theirs).0 < AUTO_MERGE
                    {
                        holds = false;
                    }
                }
                if !holds {
                    rejected.push(merge);
                    continue;
                }
            }
            for other in &merge.others {
                groups.join(&merge.target, other);
            }
        }
        if !apply || rejected.is_empty() {
            return Ok(rejected);
        }
        let now = now_millis();
        for merge in &mut rejected {
            if let Some(undone) = self.store.undo_merge(workspace, &merge.id, now)? {
                tracing::info!(
                    workspace = %workspace,
                    merge_id = %undone.id,
                    target = %undone.target,
                    others = ?undone.others.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    reasons = ?undone.reasons,
                    "undid an automatic merge that today's identity rules would not make"
                );
                *merge = undone;
            }
        }
        tracing::info!(workspace = %workspace, undone = rejected.len(), "reviewed the automatic merges");
        self.rebuild(workspace)?;
        Ok(rejected)
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

    /// A page of [`Trellis::merge_history`]: at most `limit` merges after `after` (the time
    /// and id of the last merge of the previous page), and whether more follow. A merge made or
    /// undone between two pages never makes a page repeat or skip one already listed.
    pub fn merge_history_page(
        &self,
        workspace: &WorkspaceId,
        person: Option<&RecordKey>,
        active_only: bool,
        after: Option<(Millis, &str)>,
        limit: usize,
    ) -> CoreResult<(Vec<Merge>, bool)> {
        let mut page: Vec<Merge> = self
            .merge_history(workspace, person, active_only)?
            .into_iter()
            .filter(|merge| {
                after.is_none_or(|(time, id)| (merge.created_at, merge.id.as_str()) < (time, id))
            })
            .take(limit.saturating_add(1))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Identity;

    fn person(source: &str, id: &str, identities: Vec<Identity>) -> Person {
        Person {
            key: RecordKey::new(source, id),
            identities,
            ..Person::default()
        }
    }

    fn identity(platform: &str, handle: &str, profile_url: &str) -> Identity {
        Identity {
            platform: platform.into(),
            handle: handle.into(),
            profile_url: profile_url.into(),
            ..Identity::default()
        }
    }

    /// A StackExchange user as the connector maps them: the display name as the handle (not
    /// unique), the site's profile page as the profile URL.
    fn stackexchange_user(id: &str, name: &str) -> Person {
        person(
            "se",
            id,
            vec![identity(
                "stackexchange",
                name,
                &format!("https://ai.stackexchange.com/users/{id}"),
            )],
        )
    }

    #[test]
    fn a_display_name_shared_on_one_platform_is_no_evidence_and_says_so() {
        let (confidence, reasons) = evidence_between(
            &[stackexchange_user("106", "Joe")],
            &[stackexchange_user("3302", "Joe")],
        );
        assert_eq!(confidence, 0.0);
        assert_eq!(
            reasons,
            ["the same handle @joe on stackexchange, not known to be unique there (not evidence)"]
        );
    }

    #[test]
    fn four_joes_merged_into_each_other_are_no_evidence_for_a_fifth() {
        let chain: Vec<Person> = ["1", "2", "3", "4"]
            .iter()
            .map(|id| stackexchange_user(id, "Joe"))
            .collect();
        let (confidence, _) = evidence_between(&chain, &[stackexchange_user("5", "joe")]);
        assert!(confidence < AUTO_MERGE, "{confidence}");
    }

    #[test]
    fn a_profile_url_or_a_handle_its_platform_reserves_is_evidence_enough() {
        let se = |id: &str| {
            person(
                "se",
                id,
                vec![identity(
                    "stackexchange",
                    "Joe",
                    "https://stackexchange.com/users/42",
                )],
            )
        };
        let (confidence, reasons) = evidence_between(&[se("1")], &[se("2")]);
        assert!(confidence >= AUTO_MERGE, "{confidence}");
        assert_eq!(
            reasons[0],
            "the same profile URL (stackexchange.com/users/42)"
        );

        let acct = |source: &str, unique: bool| {
            person(
                source,
                "a",
                vec![Identity {
                    handle_unique: unique,
                    ..identity("Mastodon", "@ana@example.social", "")
                }],
            )
        };
        let (confidence, reasons) =
            evidence_between(&[acct("archive", true)], &[acct("rest", true)]);
        assert!(confidence >= AUTO_MERGE, "{confidence}");
        assert_eq!(
            reasons,
            ["the same handle @ana@example.social on mastodon, where it names one account only"]
        );
        // Both connectors must vouch for the handle: one that does not (an older version, a
        // handle claimed on a profile) leaves it a name.
        let (confidence, _) = evidence_between(&[acct("archive", true)], &[acct("rest", false)]);
        assert_eq!(confidence, 0.0);
    }

    #[test]
    fn a_handle_on_two_platforms_is_a_hint_named_with_both_platforms() {
        let (confidence, reasons) = evidence_between(
            &[person(
                "se",
                "1",
                vec![identity("stackexchange", "qubit", "")],
            )],
            &[person("gh", "2", vec![identity("github", "qubit", "")])],
        );
        assert_eq!(confidence, 0.5);
        assert_eq!(
            reasons,
            ["the same handle @qubit on stackexchange and github"]
        );
        assert!(confidence < AUTO_MERGE);
    }

    #[test]
    fn evidence_adds_up_strongest_first() {
        let hash = "a".repeat(64);
        let (confidence, reasons) = evidence_between(
            &[person(
                "forum",
                "1",
                vec![Identity {
                    email_sha256: hash.clone(),
                    ..identity("forum", "sam", "")
                }],
            )],
            &[person(
                "chat",
                "2",
                vec![Identity {
                    email_sha256: hash,
                    ..identity("slack", "sam", "")
                }],
            )],
        );
        assert!(confidence > 0.99, "{confidence}");
        assert_eq!(
            reasons,
            [
                "the same e-mail address (compared hashed)",
                "the same handle @sam on forum and slack"
            ]
        );
    }

    #[test]
    fn a_unique_handle_without_a_platform_is_refused() {
        let record = Record::Person(person(
            "forum",
            "1",
            vec![Identity {
                handle_unique: true,
                ..identity("", "sam", "")
            }],
        ));
        let violations = record
            .validate(&crate::domain::FieldLimits::default())
            .unwrap_err();
        assert_eq!(violations[0].field, "identities[0].handle_unique");
    }
}
