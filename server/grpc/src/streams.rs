//! Reading a client's stream while its handler works: a handler that stops reading while it
//! stores a batch or waits for its answers to be taken lets the client's messages pile up in
//! HTTP/2 as small DATA frames, and past a budget the HTTP/2 layer ends the whole connection
//! (`GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"`), every other call on it too. So a stream is
//! read on a task of its own, into a queue its handler drains, and what bounds that queue says
//! so: bytes for `Ingest` (the reader waits, the client's window fills, nothing is lost), contacts
//! awaiting their answers for `MatchPeople` (the stream is ended with a clear error, because a
//! client that never reads its answers would otherwise hold the reader forever).
//!
//! Every message read also spends one of the key's streamed messages per second
//! ([`crate::auth::MessageBudget`]), so a stream is slowed to the key's rate, not refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use crate::auth::{self, MessageBudget};

/// A message read ahead of its handler, holding its share of the read-ahead bytes until the
/// handler is done with it.
pub(crate) struct ReadAhead<T> {
    pub message: T,
    _bytes: OwnedSemaphorePermit,
}

/// Reads `incoming` on a task of its own, at most `max_bytes` (encoded) ahead of the handler,
/// which receives the messages in order and, when the stream breaks off, its status last.
pub(crate) fn read_ahead<T>(
    mut incoming: Streaming<T>,
    budget: Option<MessageBudget>,
    max_bytes: usize,
) -> mpsc::Receiver<Result<ReadAhead<T>, Status>>
where
    T: prost::Message + Send + 'static,
{
    let max_bytes = u32::try_from(max_bytes).unwrap_or(u32::MAX).max(1);
    let room = Arc::new(Semaphore::new(max_bytes as usize));
    // The bytes bound the queue; the channel only needs to hold what they allow.
    let (sender, receiver) = mpsc::channel(4096);
    tokio::spawn(async move {
        while let Some(next) = incoming.next().await {
            let message = match next {
                Ok(message) => message,
                Err(status) => {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            auth::spend(&budget).await;
            let cost = u32::try_from(message.encoded_len())
                .unwrap_or(u32::MAX)
                .clamp(1, max_bytes);
            let Ok(bytes) = Arc::clone(&room).acquire_many_owned(cost).await else {
                return;
            };
            let item = ReadAhead {
                message,
                _bytes: bytes,
            };
            if sender.send(Ok(item)).await.is_err() {
                // The handler is gone (it failed, or the call was cancelled).
                return;
            }
        }
    });
    receiver
}

/// Contacts read and not yet answered, counted between the reader and the answering task of one
/// `MatchPeople` stream.
#[derive(Clone, Default)]
pub(crate) struct Awaiting(Arc<AtomicUsize>);

impl Awaiting {
    /// Counts one more contact read; false once `limit` are already waiting.
    fn admit(&self, limit: usize) -> bool {
        self.0.fetch_add(1, Ordering::AcqRel) < limit
    }

    /// `answered` contacts had their answers handed on.
    pub(crate) fn answered(&self, answered: usize) {
        self.0.fetch_sub(answered, Ordering::AcqRel);
    }
}

/// Reads `incoming` on a task of its own, never waiting for the answers: at most `limit`
/// messages may wait for theirs (counted by `awaiting`); one more ends the stream with
/// RESOURCE_EXHAUSTED after the answers to those before it. The receiver gets the messages in
/// order and, when the stream ends early, the status last.
pub(crate) fn read_unanswered<T>(
    mut incoming: Streaming<T>,
    budget: Option<MessageBudget>,
    awaiting: Awaiting,
    limit: usize,
) -> mpsc::UnboundedReceiver<Result<T, Status>>
where
    T: Send + 'static,
{
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(next) = incoming.next().await {
            let stop = next.is_err();
            if next.is_ok() {
                auth::spend(&budget).await;
                if !awaiting.admit(limit) {
                    let _ = sender.send(Err(Status::resource_exhausted(format!(
                        "more than {limit} contacts were sent without their answers being read; read the answers while sending (the Python, TypeScript and Go clients do, keeping at most {} in flight), or send fewer at once",
                        crate::services::MATCH_IN_FLIGHT_HINT
                    ))));
                    // Dropping the stream lets HTTP/2 discard what the client sends on.
                    return;
                }
            }
            if sender.send(next).is_err() || stop {
                return;
            }
        }
    });
    receiver
}
