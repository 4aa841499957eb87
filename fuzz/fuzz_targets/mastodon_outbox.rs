//! The Mastodon connector reading an ActivityPub archive: the actor and the outbox, as two
//! files of one input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_connector_mastodon::MastodonConnector;

fuzz_target!(|data: &[u8]| {
    let [actor, outbox] = trellis_fuzz::parts::<2>(data);
    trellis_fuzz::put("archive/actor.json", actor);
    trellis_fuzz::put("archive/outbox.json", outbox);
    trellis_fuzz::drain::<MastodonConnector>(serde_json::json!({
        "archive_dir": trellis_fuzz::scratch().join("archive"),
        "batch_size": 7,
    }));
});
