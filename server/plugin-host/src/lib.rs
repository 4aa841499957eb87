//! The plugin host: finds connector plugins in the configured folders, checks their ABI before
//! any other call, keeps them loaded for the life of the process, and drives them: sources
//! (configured connector instances), checks, and syncs that store records through the core and
//! commit each checkpoint only after the records before it are stored.
//!
//! Everything here is blocking on purpose: plugin calls are synchronous and may take long, so
//! they never run on the async runtime. The gRPC layer calls in from `spawn_blocking` or a
//! dedicated thread; the scheduler is a thread of its own.

mod registry;
mod sources;

pub use registry::{LoadedConnector, PluginRegistry};
pub use sources::{
    LeasePolicy, RetryPolicy, SchedulerHandle, Sources, SyncProgress, default_holder,
};
