//! The Discourse connector reading saved API responses: the latest-topics listing and the post
//! stream of topic 11, as two files of one input (see `trellis_fuzz::parts`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_discourse::DiscourseConnector;

fuzz_target!(|data: &[u8]| {
    let [topics, posts] = trellis_fuzz::parts::<2>(data);
    trellis_fuzz::put("forum/example.org-forum-topics-2024-05-04.json", topics);
    trellis_fuzz::put("forum/example.org-forum-post-11-2024-05-04.json", posts);
    trellis_fuzz::drain::<DiscourseConnector>(serde_json::json!({
        "base_url": "https://forum.example.org",
        "saved_dir": trellis_fuzz::scratch().join("forum"),
        "batch_size": 7,
    }));
});
