//! The Slack connector reading a workspace export folder: users, channels, and one day of one
//! channel, as three files of one input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_slack::SlackConnector;

fuzz_target!(|data: &[u8]| {
    let [users, channels, day] = trellis_fuzz::parts::<3>(data);
    trellis_fuzz::put("export/users.json", users);
    trellis_fuzz::put("export/channels.json", channels);
    trellis_fuzz::put("export/general/2024-05-01.json", day);
    trellis_fuzz::drain::<SlackConnector>(serde_json::json!({
        "path": trellis_fuzz::scratch().join("export"),
        "batch_size": 7,
    }));
});
