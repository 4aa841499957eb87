//! What every fuzz target shares: a scratch folder per fuzzing process for the files a
//! connector reads, and a driver that reads a connector to its end through the same `Connector`
//! contract the plugin host uses, converting every record into the domain as the host does.
//!
//! A target passes when nothing panics, nothing hangs (libFuzzer's `-timeout`) and no reader
//! runs on forever: bad input must come back as an error, never as a crash.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trellis_plugin_sdk::host::convert::record_to_core;
use trellis_plugin_sdk::pb::connector::batch_item::Item;
use trellis_plugin_sdk::{CancelToken, Connector, Reader, State};

/// Batches after which a reader that has not ended counts as running on forever.
const MAX_BATCHES: usize = 100_000;

/// This process's scratch folder, removed when the process ends normally.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder"))
        .path()
}

/// Writes `bytes` to `relative` under the scratch folder (creating folders) and returns the
/// full path.
pub fn put(relative: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a scratch subfolder");
    }
    std::fs::write(&path, bytes).expect("a scratch file");
    path
}

/// Splits a fuzz input into `N` files at the separator line `\n--next file--\n`; parts the
/// input does not have are empty.
pub fn parts<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    const SEPARATOR: &[u8] = b"\n--next file--\n";
    let mut parts = [&data[..0]; N];
    let mut rest = data;
    for (index, part) in parts.iter_mut().enumerate() {
        if index + 1 == N {
            *part = rest;
            break;
        }
        match rest
            .windows(SEPARATOR.len())
            .position(|window| window == SEPARATOR)
        {
            Some(at) => {
                *part = &rest[..at];
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                *part = rest;
                rest = &rest[..0];
            }
        }
    }
    parts
}

/// Reads connector `C` with `config` from the start to its end, converting every record as the
/// host does. Errors (a config the connector refuses, input it cannot read) end the read; they
/// are the right answer to bad input.
pub fn drain<C: Connector>(config: serde_json::Value) {
    let Ok(config) = serde_json::from_value::<C::Config>(config) else {
        return;
    };
    let Ok(mut reader) = C::default().open_read(config, State::new(), CancelToken::new()) else {
        return;
    };
    for _ in 0..MAX_BATCHES {
        let Ok(batch) = reader.next_batch() else {
            return;
        };
        let last = batch.is_last();
        for item in batch.into_proto().items {
            if let Some(Item::Record(record)) = item.item {
                let _ = record_to_core("fuzz", record);
            }
        }
        if last {
            return;
        }
    }
    panic!("the reader did not end after {MAX_BATCHES} batches");
}
