//! Generates the Rust types of the plugin protocol (`proto/trellis/connector/v1`) and of the
//! record payloads it reuses (`proto/trellis/v1/ingest.proto`) with protox and prost-build:
//! no system protoc, no tonic — a plugin never needs a gRPC stack.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let descriptors = protox::compile(
        [proto_root.join("trellis/connector/v1/connector.proto")],
        [&proto_root],
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("trellis").display()
    );
    Ok(())
}
