//! The plugin host: finds connector plugins in the configured folders, checks their ABI before
//! any other call, keeps them loaded for the life of the process, and drives them: sources
//! (configured connector instances), checks, and syncs that store records through the core and
//! commit each checkpoint only after the records before it are stored. A source may run its
//! plugin in a child process instead ([`isolation`]), behind the same interface
//! ([`ConnectorInstance`]).
//!
//! Everything here is blocking on purpose: plugin calls are synchronous and may take long, so
//! they never run on the async runtime. The gRPC layer calls in from `spawn_blocking` or a
//! dedicated thread; the scheduler is a thread of its own.

mod instance;
pub mod isolation;
mod registry;
pub mod roots;
pub mod secrets;
mod sources;

pub use instance::{Canceller, ConnectorInstance, ReadSession};
pub use isolation::IsolationSettings;
pub use registry::{LoadedConnector, PluginRegistry, RefusedPlugin};
pub use roots::{Existence, FileRoots};
pub use secrets::{KeySettings, SecretKeys};
pub use sources::{
    LeasePolicy, RetryPolicy, SchedulerHandle, SealReport, SecretStatus, Sources, SyncProgress,
    default_holder,
};
/// The operator's outbound policy that [`Sources::with_egress`] hands every plugin.
pub use trellis_plugin_sdk::egress::EgressPolicy;
