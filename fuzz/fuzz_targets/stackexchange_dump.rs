//! The StackExchange connector's dump parser: Users.xml, Posts.xml and Comments.xml, as three
//! files of one input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_stackexchange::StackExchangeConnector;

fuzz_target!(|data: &[u8]| {
    let [users, posts, comments] = trellis_fuzz::parts::<3>(data);
    trellis_fuzz::put("dump/Users.xml", users);
    trellis_fuzz::put("dump/Posts.xml", posts);
    trellis_fuzz::put("dump/Comments.xml", comments);
    trellis_fuzz::drain::<StackExchangeConnector>(serde_json::json!({
        "path": trellis_fuzz::scratch().join("dump"),
        "batch_size": 7,
    }));
});
