//! The bookmarks connector's parsers (Netscape HTML, Pinboard and Delicious JSON, Pocket and
//! Instapaper CSV): one export of any bytes, its format detected from the content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_bookmarks::BookmarksConnector;

fuzz_target!(|data: &[u8]| {
    let file = trellis_fuzz::put("bookmarks", data);
    trellis_fuzz::drain::<BookmarksConnector>(serde_json::json!({
        "owner": "fuzz",
        "files": [{"path": file}],
        "batch_size": 7,
    }));
});
