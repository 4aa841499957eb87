//! The gRPC edge of Trellis: generated code, the services, conversion between protobuf and
//! domain types, and the single mapping of core errors to gRPC statuses.
//!
//! Handlers here stay thin on purpose: validate and convert at the edge, call
//! [`trellis_core::service::Trellis`], convert back. Blocking work (SQLite, scoring) runs on
//! the blocking pool so that the async runtime keeps serving.

pub mod auth;
pub mod convert;
pub mod error;
mod feedback;
mod services;
mod sources;
mod streams;

pub use services::{Api, ApiSettings};
pub use sources::SourceApi;

/// The generated protobuf types and service stubs of `trellis.v1`.
#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("trellis.v1");

    /// The encoded descriptors of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/trellis_descriptor.bin"));
}
