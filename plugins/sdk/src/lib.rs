//! The Trellis connector SDK: everything a plugin author needs, and the only crate they need.
//!
//! A connector is a shared library (`crate-type = ["cdylib"]`) that implements [`Connector`]
//! and exports it with one line:
//!
//! ```ignore
//! trellis_plugin_sdk::export_connector!(MyConnector);
//! ```
//!
//! What crosses the library boundary is fixed by [`abi`] (a versioned `#[repr(C)]` table of
//! `extern "C"` functions, also published as the C header `include/trellis_connector.h`) and by
//! the protobuf messages of `proto/trellis/connector/v1/connector.proto` ([`pb::connector`]).
//! The SDK turns that into a safe trait: configs arrive validated against the connector's JSON
//! Schema and deserialized, panics become errors, cancellation is a token.
//!
//! The SDK has no async runtime. A connector that talks HTTP turns on the `http` feature and
//! fetches with `http::agent`, a blocking ureq agent held to the operator's outbound policy
//! ([`egress`]: no loopback, private or link-local address unless allowed, checked after DNS and
//! on every redirect). With the `host` feature the crate also
//! carries the host side ([`host`]): loading a plugin, the ABI handshake, and safe wrappers
//! around every call — used by the server's plugin host and by the conformance kit.

pub mod abi;
pub mod connector;
pub mod egress;
pub mod error;
#[allow(
    unsafe_code,
    reason = "the plugin side of the C ABI: raw pointers in, raw pointers out; every use is documented there"
)]
pub mod export;
#[cfg(feature = "host")]
#[allow(
    unsafe_code,
    reason = "loading a shared library and calling through its function table; every use is documented there"
)]
pub mod host;
#[cfg(feature = "http")]
pub mod http;
pub mod records;
pub mod schema;
pub mod state;

pub use connector::{Batch, CancelToken, Connector, Reader, Record, Spec, stream};
pub use error::{ConnectorError, ErrorKind};
pub use schema::{ConfigSchema, PathField, SecretField};
pub use state::State;

/// The generated protobuf types: the record payloads of `trellis.v1` and the plugin protocol of
/// `trellis.connector.v1`.
#[allow(missing_debug_implementations, reason = "generated code")]
pub mod pb {
    /// `trellis.v1`: the records (people, conversations, posts, assets) and their references.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/trellis.v1.rs"));
    }
    /// `trellis.connector.v1`: the messages of the plugin protocol.
    pub mod connector {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/trellis.connector.v1.rs"));
        }
        pub use v1::*;
    }
    pub use v1::*;
}

/// What a connector's code usually needs, in one import.
pub mod prelude {
    pub use crate::connector::{Batch, CancelToken, Connector, Reader, Record, Spec, stream};
    pub use crate::error::{ConnectorError, ErrorKind};
    pub use crate::pb;
    pub use crate::pb::connector::{RecordKind, StreamSpec};
    pub use crate::records;
    pub use crate::state::State;
}
