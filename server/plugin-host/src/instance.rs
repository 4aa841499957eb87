//! One interface over the two ways a connector runs: loaded in this process (the SDK's
//! [`Instance`]) or in a child process ([`IsolatedInstance`], for sources with `isolated` set).
//! Syncs and checks drive a [`ConnectorInstance`] and never ask which one it is; both answer with
//! the same messages and the same typed errors, so retries and checkpoints behave the same.

use trellis_plugin_sdk::State;
use trellis_plugin_sdk::host::{self, HostError, Instance};
use trellis_plugin_sdk::pb::connector as proto;

use crate::isolation::{IsolatedCanceller, IsolatedInstance, IsolatedRead, IsolationSettings};
use crate::registry::LoadedConnector;

/// A connector instance, in this process or in a child process.
#[derive(Debug, Clone)]
pub enum ConnectorInstance {
    InProcess(Instance),
    Isolated(IsolatedInstance),
}

impl ConnectorInstance {
    /// An instance of `connector`: in a child process started with `isolation` on behalf of
    /// source `label` when given, else in this process. A child only ever runs the library the
    /// registry loaded (and checked) from a configured folder.
    pub fn open(
        connector: &LoadedConnector,
        isolation: Option<(&IsolationSettings, &str)>,
    ) -> Result<Self, HostError> {
        Ok(match isolation {
            None => ConnectorInstance::InProcess(connector.instance()?),
            Some((settings, label)) => ConnectorInstance::Isolated(IsolatedInstance::start(
                connector.plugin.path(),
                label,
                settings,
            )?),
        })
    }

    pub fn spec(&self) -> Result<proto::SpecResponse, HostError> {
        match self {
            ConnectorInstance::InProcess(instance) => instance.spec(),
            ConnectorInstance::Isolated(instance) => instance.spec(),
        }
    }

    pub fn check(&self, config_json: &str) -> Result<String, HostError> {
        match self {
            ConnectorInstance::InProcess(instance) => instance.check(config_json),
            ConnectorInstance::Isolated(instance) => instance.check(config_json),
        }
    }

    pub fn discover(&self, config_json: &str) -> Result<Vec<proto::StreamSpec>, HostError> {
        match self {
            ConnectorInstance::InProcess(instance) => instance.discover(config_json),
            ConnectorInstance::Isolated(instance) => instance.discover(config_json),
        }
    }

    /// Opens a read resuming after `state`.
    pub fn read(&self, config_json: &str, state: &State) -> Result<ReadSession, HostError> {
        Ok(match self {
            ConnectorInstance::InProcess(instance) => {
                ReadSession::InProcess(instance.read(config_json, state)?)
            }
            ConnectorInstance::Isolated(instance) => {
                ReadSession::Isolated(instance.read(config_json, state)?)
            }
        })
    }
}

/// An open read: pull batches until `None`.
#[derive(Debug)]
pub enum ReadSession {
    InProcess(host::ReadSession),
    Isolated(IsolatedRead),
}

impl ReadSession {
    /// The next batch, or `None` once the plugin sent its last batch.
    pub fn next_batch(&mut self) -> Result<Option<proto::ReadBatch>, HostError> {
        match self {
            ReadSession::InProcess(session) => session.next_batch(),
            ReadSession::Isolated(session) => session.next_batch(),
        }
    }

    /// A handle that cancels this read from another thread.
    pub fn canceller(&self) -> Canceller {
        match self {
            ReadSession::InProcess(session) => Canceller::InProcess(session.canceller()),
            ReadSession::Isolated(session) => Canceller::Isolated(session.canceller()),
        }
    }
}

/// Cancels a read from any thread: through the ABI's `read_cancel` in this process, by killing
/// the child of an isolated one.
#[derive(Debug, Clone)]
pub enum Canceller {
    InProcess(host::Canceller),
    Isolated(IsolatedCanceller),
}

impl Canceller {
    pub fn cancel(&self) {
        match self {
            Canceller::InProcess(canceller) => canceller.cancel(),
            Canceller::Isolated(canceller) => canceller.cancel(),
        }
    }
}
