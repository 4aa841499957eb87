//! A `PutStrategyRequest` off the wire: decoded, its workspace checked, its strategy converted
//! into the domain and validated, as the Strategy service does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use trellis_grpc::pb;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = pb::PutStrategyRequest::decode(data) else {
        return;
    };
    let _ = trellis_grpc::convert::workspace(&request.workspace);
    if let Ok(strategy) = trellis_grpc::convert::strategy_from_pb(request.strategy) {
        let _ = strategy.validate();
    }
});
