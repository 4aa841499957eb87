//! The safe side of the contract: what a plugin author implements. A connector is a
//! [`Connector`] (spec, check, discover, open a read) whose reads are [`Reader`]s pulled batch by
//! batch. The export glue in [`crate::export`] turns an implementation into the C ABI; nothing
//! here is unsafe or knows about pointers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ConnectorError;
use crate::pb;
use crate::pb::connector::{BatchItem, RecordKind, StreamSpec, StreamState, batch_item, record};
use crate::state::State;

/// Who a connector is and what it takes. Returned by [`Connector::spec`].
#[derive(Debug, Clone)]
pub struct Spec {
    /// Lowercase, e.g. "blog"; the name sources refer to.
    pub name: String,
    /// The connector's own version; `env!("CARGO_PKG_VERSION")` is a good value.
    pub version: String,
    pub platform: pb::PlatformKind,
    /// One line for people choosing a connector.
    pub description: String,
    /// JSON Schema of the config object; the SDK validates every config against it before the
    /// connector sees it.
    pub config_schema: Value,
    /// The streams every read may produce.
    pub streams: Vec<StreamSpec>,
}

/// A stream named `name` of `kind` records, whose state follows `cursor_field`, keyed by the
/// record's external id.
pub fn stream(name: &str, kind: RecordKind, cursor_field: &str) -> StreamSpec {
    StreamSpec {
        name: name.to_owned(),
        kind: kind.into(),
        cursor_field: cursor_field.to_owned(),
        primary_key: vec!["external_id".to_owned()],
    }
}

/// Set by the host, from any thread, to stop a read. A reader that works for long inside
/// [`Reader::next_batch`] (a slow request, a big file) checks it and returns
/// [`ConnectorError::cancelled`]; the SDK also refuses to start a batch once it is set.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(cancelled)` once the host has cancelled, for use with `?` inside loops.
    pub fn check(&self) -> Result<(), ConnectorError> {
        if self.is_cancelled() {
            Err(ConnectorError::cancelled())
        } else {
            Ok(())
        }
    }
}

/// A connector. One value is created per plugin instance with `Default`; it may be called from
/// several threads, so keep per-read state in the [`Reader`].
pub trait Connector: Default + Send + Sync + 'static {
    /// The config, deserialized with serde after it passed the JSON Schema of the spec.
    type Config: DeserializeOwned;
    /// An open read.
    type Reader: Reader;

    fn spec(&self) -> Spec;

    /// Checks that the config works (the file exists, the credentials are accepted, the host
    /// answers). Returns a line for people, e.g. "readable, 120 records".
    fn check(&self, config: &Self::Config) -> Result<String, ConnectorError>;

    /// The streams this config can read. By default, the streams of the spec.
    fn discover(&self, config: &Self::Config) -> Result<Vec<StreamSpec>, ConnectorError> {
        let _ = config;
        Ok(self.spec().streams)
    }

    /// Opens a read that resumes after `state` (empty for a full read).
    fn open_read(
        &self,
        config: Self::Config,
        state: State,
        cancel: CancelToken,
    ) -> Result<Self::Reader, ConnectorError>;
}

/// An open read. The host pulls batches until one says it is the last.
pub trait Reader: Send + 'static {
    /// The next batch of records and checkpoints. Return [`Batch::last`] (possibly with items)
    /// when the read is complete; the host will not pull again.
    fn next_batch(&mut self) -> Result<Batch, ConnectorError>;
}

/// Records and checkpoints in the order they were produced.
///
/// The state rule: a checkpoint says "everything emitted before me is accounted for; resume
/// from here". Resuming from it must produce exactly the records after it: no gap, no duplicate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    items: Vec<BatchItem>,
    end: bool,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last batch of a read.
    pub fn last() -> Self {
        Self {
            items: Vec::new(),
            end: true,
        }
    }

    /// Marks this batch as the last.
    pub fn finish(&mut self) {
        self.end = true;
    }

    pub fn is_last(&self) -> bool {
        self.end
    }

    /// Appends a record, in the default stream of its kind ("people", "conversations", "posts",
    /// "assets") unless it was put in another with [`Record::in_stream`].
    pub fn push(&mut self, record: impl Into<Record>) {
        let record: Record = record.into();
        self.items.push(BatchItem {
            item: Some(batch_item::Item::Record(record.0)),
        });
    }

    /// Appends a checkpoint of `stream` with `state` serialized as JSON.
    pub fn checkpoint(
        &mut self,
        stream: &str,
        state: &impl Serialize,
    ) -> Result<(), ConnectorError> {
        let state_json = serde_json::to_string(state)?;
        self.items.push(BatchItem {
            item: Some(batch_item::Item::Checkpoint(StreamState {
                stream: stream.to_owned(),
                state_json,
            })),
        });
        Ok(())
    }

    /// Records in the batch (checkpoints not counted).
    pub fn record_count(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item.item, Some(batch_item::Item::Record(_))))
            .count()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_proto(self) -> pb::connector::ReadBatch {
        pb::connector::ReadBatch {
            items: self.items,
            end: self.end,
        }
    }
}

/// A record with the stream it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Record(pub pb::connector::Record);

impl Record {
    /// Puts the record in a stream other than the default of its kind.
    pub fn in_stream(mut self, stream: &str) -> Self {
        stream.clone_into(&mut self.0.stream);
        self
    }
}

macro_rules! record_from {
    ($type:ident, $variant:ident, $stream:literal) => {
        impl From<pb::$type> for Record {
            fn from(value: pb::$type) -> Self {
                Record(pb::connector::Record {
                    stream: $stream.to_owned(),
                    payload: Some(record::Payload::$variant(value)),
                })
            }
        }
    };
}

record_from!(Person, Person, "people");
record_from!(Conversation, Conversation, "conversations");
record_from!(Post, Post, "posts");
record_from!(Asset, Asset, "assets");
