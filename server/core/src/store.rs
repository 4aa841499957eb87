//! The storage contract. Core owns these traits so that the engine's callers can persist and
//! reload everything without core knowing which database is underneath; `trellis-store`
//! implements them for SQLite and PostgreSQL.
//!
//! A store that several replicas share also keeps a [`ChangeLog`]: every committed write of a
//! workspace, numbered without gaps in commit order, so that each replica can bring its
//! in-memory engine up to date with writes another replica made.

use serde::{Deserialize, Serialize};

use crate::domain::{
    Asset, Conversation, Forgotten, Merge, Millis, Person, Post, Record, RecordKey, WorkspaceId,
};
use crate::engine::semantic::Embedded;
use crate::error::CoreResult;
use crate::feedback::{Feedback, FeedbackCounts, FeedbackFilter};
use crate::strategy::{Strategy, StrategyVersion};

/// What an upsert did, with the version it replaced so that indexes can apply the difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted<T> {
    Inserted,
    Updated { previous: T },
    Unchanged,
}

/// How much of a thread is read: posts in order while their texts add up to no more than the
/// budget, each counted as at least one byte so that empty posts are not free; the first post
/// always, however long.
#[derive(Debug, Clone, Copy)]
pub struct TextBudget {
    bytes: usize,
    read: usize,
}

impl TextBudget {
    pub fn new(bytes: usize) -> Self {
        Self { bytes, read: 0 }
    }

    /// Whether the next post, with `text_bytes` of text, is read; it is counted either way.
    pub fn admits(&mut self, text_bytes: usize) -> bool {
        let first = self.read == 0;
        self.read = self.read.saturating_add(text_bytes.max(1));
        first || self.read <= self.bytes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorpusCounts {
    pub people: u64,
    pub conversations: u64,
    pub posts: u64,
    pub assets: u64,
}

/// A page of a listing: the items and the token of the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub trait Store: Send + Sync + 'static {
    /// The workspaces that exist; the default one always does.
    fn workspaces(&self) -> CoreResult<Vec<WorkspaceId>>;
    fn ensure_workspace(&self, workspace: &WorkspaceId) -> CoreResult<()>;

    /// Stores a new strategy version and returns its number (1, 2, …).
    fn put_strategy(
        &self,
        workspace: &WorkspaceId,
        strategy: &Strategy,
        now: i64,
    ) -> CoreResult<StrategyVersion>;
    /// The latest version, or the given one.
    fn strategy(
        &self,
        workspace: &WorkspaceId,
        version: Option<u32>,
    ) -> CoreResult<Option<StrategyVersion>>;
    /// Versions newest first.
    fn strategy_versions(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        before: Option<u32>,
    ) -> CoreResult<Vec<StrategyVersion>>;

    /// Upserts a batch in one transaction; results are in input order.
    fn upsert_records(
        &self,
        workspace: &WorkspaceId,
        records: &[Record],
    ) -> CoreResult<Vec<Upserted<Record>>>;

    fn conversation(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<Option<Conversation>>;
    /// A conversation's posts, oldest first; equal or unknown times (unknown first) in the order
    /// they were first stored.
    fn posts_of(&self, workspace: &WorkspaceId, conversation: &RecordKey) -> CoreResult<Vec<Post>>;
    /// The first posts of a conversation, in the order of `posts_of`, that a [`TextBudget`] of
    /// `text_bytes` admits: what quoting a thread needs, without reading the rest of a long one.
    fn opening_posts(
        &self,
        workspace: &WorkspaceId,
        conversation: &RecordKey,
        text_bytes: usize,
    ) -> CoreResult<Vec<Post>>;
    fn person(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Person>>;
    /// Records a merge.
    fn put_merge(&self, workspace: &WorkspaceId, merge: &Merge) -> CoreResult<()>;
    /// Marks a merge undone; `None` when there is no such merge or it was undone already.
    fn undo_merge(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> CoreResult<Option<Merge>>;
    /// Every merge of a workspace, undone ones too, oldest first.
    fn merges(&self, workspace: &WorkspaceId) -> CoreResult<Vec<Merge>>;
    /// In one transaction: deletes the person records of `people`, blanks the text and author of
    /// everything they wrote, and remembers their keys so later ingests drop them again.
    fn forget_people(
        &self,
        workspace: &WorkspaceId,
        people: &[RecordKey],
        now: Millis,
    ) -> CoreResult<Forgotten>;
    /// The keys of everyone forgotten in a workspace.
    fn forgotten(&self, workspace: &WorkspaceId) -> CoreResult<Vec<RecordKey>>;
    /// People in insertion order after the position `after` (0 for the start), only members or
    /// only non-members when `member` is set; each with its position, for the next page.
    fn list_people(
        &self,
        workspace: &WorkspaceId,
        member: Option<bool>,
        after: i64,
        limit: usize,
    ) -> CoreResult<Vec<(i64, Person)>>;
    /// What a person wrote in their own source, newest first: conversations they opened and
    /// their posts, up to `limit` of each.
    fn writing_of(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
        limit: usize,
    ) -> CoreResult<(Vec<Conversation>, Vec<Post>)>;
    fn asset(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Asset>>;

    /// Every person, conversation and post of a workspace (people first, then conversations, then
    /// posts, each kind in insertion order), for rebuilding indexes at
    /// start-up. Calls `visit` once per record; stops at the first error.
    fn scan_corpus(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Record) -> CoreResult<()>,
    ) -> CoreResult<()>;

    /// Every asset of a workspace, in insertion order, for rebuilding the asset index at
    /// start-up. Calls `visit` once per asset; stops at the first error.
    fn scan_assets(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Asset) -> CoreResult<()>,
    ) -> CoreResult<()>;

    fn counts(&self, workspace: &WorkspaceId) -> CoreResult<CorpusCounts>;

    /// Stores embeddings of one model of conversations or of assets (`of`), replacing earlier
    /// ones of the same records; in one transaction. Vectors of a record that no longer exists
    /// are dropped.
    fn put_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        embeddings: &[crate::engine::semantic::Embedding],
    ) -> CoreResult<()>;
    /// Every stored embedding of one model of one kind in a workspace, for rebuilding at
    /// start-up.
    fn scan_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        visit: &mut dyn FnMut(crate::engine::semantic::Embedding) -> CoreResult<()>,
    ) -> CoreResult<()>;

    /// Records feedback in one transaction, each under its id (replacing what that id said
    /// before); returns how many ids were already there.
    fn put_feedback(&self, workspace: &WorkspaceId, feedback: &[Feedback]) -> CoreResult<u64>;
    /// Every feedback of a workspace, oldest first (by time, then id).
    fn scan_feedback(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Feedback) -> CoreResult<()>,
    ) -> CoreResult<()>;
    /// Feedback a filter admits, newest first (by time, then id, both descending), strictly
    /// before `before` (time, id) when given; at most `limit`.
    fn list_feedback(
        &self,
        workspace: &WorkspaceId,
        filter: &FeedbackFilter,
        before: Option<(Millis, &str)>,
        limit: usize,
    ) -> CoreResult<Vec<Feedback>>;
    /// A workspace's feedback counted by outcome.
    fn feedback_counts(&self, workspace: &WorkspaceId) -> CoreResult<FeedbackCounts>;

    /// Makes everything committed durable (checkpoints the log); called at shutdown.
    fn flush(&self) -> CoreResult<()>;

    /// The change log, for a store several replicas share; `None` for a store one process
    /// owns (SQLite), whose writes the service applies to its engine directly.
    fn change_log(&self) -> Option<&dyn ChangeLog> {
        None
    }
}

/// One committed write of a workspace, as the replicas that did not make it need to see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The write's place in the workspace's log: 1, 2, … in commit order, without gaps while
    /// the log is whole (pruning and forgetting people cut its head).
    pub seq: u64,
    pub at: Millis,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// Records that were inserted or changed, each with the stored version it replaced, in the
    /// order they were written. Unchanged records are left out.
    Records(Vec<RecordChange>),
    /// A new strategy version.
    Strategy { version: u32 },
    /// Merges or forgotten people changed whom records belong to: reload the workspace.
    Reload,
    /// Embeddings of one model, of conversations or (`of`) of assets; changes logged before
    /// assets had vectors read as conversations'.
    Embeddings {
        model: String,
        #[serde(default)]
        of: Embedded,
        embeddings: Vec<crate::engine::semantic::Embedding>,
    },
    /// Feedback recorded (new, or replacing feedback with the same id).
    Feedback(Vec<Feedback>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordChange {
    pub record: Record,
    pub previous: Option<Record>,
}

/// The log of committed writes of a store several replicas share.
pub trait ChangeLog: Send + Sync {
    /// The position of a workspace's latest change, its log's head: 0 before its first write,
    /// and never lower after pruning. One row to read, so a replica can ask it often.
    fn head(&self, workspace: &WorkspaceId) -> CoreResult<u64>;

    /// Every workspace with its log's head, in one read: what a follower asks each interval to
    /// learn whether there is anything to apply.
    fn heads(&self) -> CoreResult<Vec<(WorkspaceId, u64)>>;

    /// The changes of a workspace after position `after`, oldest first, at most `limit`.
    fn changes_after(
        &self,
        workspace: &WorkspaceId,
        after: u64,
        limit: usize,
    ) -> CoreResult<Vec<Change>>;

    /// Runs `load` over one consistent snapshot of the workspace (nothing committed later is
    /// visible through the store it is given) and returns the log position that snapshot
    /// includes: the changes after it are exactly those the snapshot does not show.
    fn snapshot(
        &self,
        workspace: &WorkspaceId,
        load: &mut dyn FnMut(&dyn Store) -> CoreResult<()>,
    ) -> CoreResult<u64>;

    /// Drops the changes committed before `before`, in every workspace; returns how many. A
    /// replica that had not read them yet reloads its workspace from a snapshot instead.
    fn prune(&self, before: Millis) -> CoreResult<u64>;
}
