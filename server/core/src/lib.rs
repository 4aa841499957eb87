//! The Trellis core: the domain model, text analysis, and the engine that scores conversations
//! against an organisation's strategy.
//!
//! This crate is pure Rust on purpose. It knows nothing of gRPC, SQL or plugin loading: the
//! service crates translate their inputs into these types, call the engine, and translate back.
//! That keeps the engine testable on its own, benchmarkable without a server, and reusable by
//! every storage backend. Storage is reached through the [`store`] traits, which this crate owns
//! and the storage crates implement.

pub mod domain;
pub mod drafts;
pub mod engine;
pub mod error;
pub mod feedback;
pub mod keys;
pub mod limits;
pub mod semantic;
pub mod service;
pub mod sources;
pub mod store;
pub mod strategy;
pub mod text;

pub use error::{CoreError, Violation};
