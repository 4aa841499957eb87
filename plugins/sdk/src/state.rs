//! Per-stream state. The host stores, for each stream, the JSON of the last committed
//! checkpoint and hands all of them back when the next read opens; the connector alone knows
//! what is inside (a cursor, a file offset, an ETag).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::error::ConnectorError;
use crate::pb::connector::StreamState;

/// The saved state of every stream of a source; empty on a full read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    streams: BTreeMap<String, String>,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_proto(states: Vec<StreamState>) -> Self {
        Self {
            streams: states
                .into_iter()
                .map(|state| (state.stream, state.state_json))
                .collect(),
        }
    }

    pub fn to_proto(&self) -> Vec<StreamState> {
        self.streams
            .iter()
            .map(|(stream, state_json)| StreamState {
                stream: stream.clone(),
                state_json: state_json.clone(),
            })
            .collect()
    }

    /// Sets the raw JSON state of a stream (what committing a checkpoint does).
    pub fn set(&mut self, stream: &str, state_json: &str) {
        self.streams
            .insert(stream.to_owned(), state_json.to_owned());
    }

    /// The raw JSON state of a stream.
    pub fn raw(&self, stream: &str) -> Option<&str> {
        self.streams.get(stream).map(String::as_str)
    }

    /// The state of `stream` parsed as `T`, or `None` when the stream has none yet. A state that
    /// does not parse is a config error: the saved state belongs to another version or
    /// connector, and a full refresh fixes it.
    pub fn get<T: DeserializeOwned>(&self, stream: &str) -> Result<Option<T>, ConnectorError> {
        let Some(raw) = self.streams.get(stream) else {
            return Ok(None);
        };
        serde_json::from_str(raw).map(Some).map_err(|error| {
            ConnectorError::config(
                "state",
                format!(
                    "the saved state of stream {stream:?} does not parse ({error}); run a full refresh of the source"
                ),
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.streams
            .iter()
            .map(|(stream, state)| (stream.as_str(), state.as_str()))
    }
}
