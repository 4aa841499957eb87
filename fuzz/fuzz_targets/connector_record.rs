//! A record as a plugin hands it to the host, off the plugin boundary: decoded and converted
//! into a domain record, then validated, as the plugin host does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use trellis_core::domain::FieldLimits;
use trellis_plugin_sdk::pb::connector::ReadBatch;
use trellis_plugin_sdk::pb::connector::batch_item::Item;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = ReadBatch::decode(data) else {
        return;
    };
    for item in batch.items {
        if let Some(Item::Record(record)) = item.item
            && let Ok(record) = trellis_plugin_sdk::host::convert::record_to_core("fuzz", record)
        {
            let _ = record.validate(&FieldLimits::default());
        }
    }
});
