//! The blog connector's feed parsers (RSS 0.9x/1.0/2.0, Atom, JSON Feed, WordPress WXR): one
//! feed file of any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_blog::BlogConnector;

fuzz_target!(|data: &[u8]| {
    let feed = trellis_fuzz::put("feed", data);
    trellis_fuzz::drain::<BlogConnector>(serde_json::json!({"feeds": [feed], "batch_size": 7}));
});
