//! An `IngestRequest` off the wire: decoded, converted into a domain record, and validated
//! against the default field limits, as the Ingest service does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use trellis_core::domain::FieldLimits;
use trellis_grpc::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = pb::IngestRequest::decode(data) else {
        return;
    };
    if let Ok(record) = trellis_grpc::convert::record_from_pb(request) {
        let _ = record.validate(&FieldLimits::default());
    }
});
