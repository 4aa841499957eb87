//! A connector that breaks on purpose, for the tests of isolation mode. Its config picks how:
//!
//! - `ok`: emits `records` conversations (`b0`, `b1`, …) in batches of `batch_size`, each batch
//!   ended by a checkpoint `{"next": N}`; a read resumes after its state;
//! - `abort`, `segfault`, `hang`, `leak`, `garbage`: the first batch of a read is like `ok`;
//!   the second call of `read_next` then aborts the process, writes to an invalid address (a
//!   real SIGSEGV), sleeps forever ignoring cancels, allocates and touches memory without
//!   bound (up to `leak_cap_mb`, after which it fails, so that a missing memory ceiling shows up
//!   as a test failure rather than a starved machine), or returns bytes that are not protobuf
//!   through the ABI;
//! - `transient`: a read that starts without state fails with a transient error after its first
//!   batch; a read that resumes from a checkpoint behaves, so a host that retries succeeds;
//! - `noisy`: like `ok`, but prints junk on its standard output and a line on standard error in
//!   every batch.
//!
//! Two environment variables break the library before any config is seen, for the host's
//! start-up probe: `TRELLIS_BROKEN_LOAD` faults in the entry symbol (while the library is being
//! loaded) and `TRELLIS_BROKEN_SPEC` in `spec`. Their value says how: `abort`, `segfault`,
//! `hang` (sleeps forever), or `exit` (exits the process with status [`EXIT_STATUS`]); unset,
//! empty or anything else changes nothing. A test sets them for the process that loads the
//! library (a server, or the runner children of a probe).
//!
//! Only `garbage` needs the raw ABI: the library exports its own function table, the SDK's with
//! `read_open`, `read_next`, `read_close` and `buffer_free` wrapped. Never load it in a process
//! you care about, except in `ok`, `noisy` and `transient` modes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use trellis_plugin_sdk::abi::{
    TRELLIS_STATUS_OK, TrellisBuffer, TrellisConnectorV1, TrellisReader,
};
use trellis_plugin_sdk::prelude::*;

/// The connector.
#[derive(Debug, Default)]
pub struct BrokenConnector;

/// The config.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub mode: String,
    #[serde(default = "default_records")]
    pub records: u64,
    #[serde(default = "default_batch_size")]
    pub batch_size: u64,
    #[serde(default = "default_leak_cap_mb")]
    pub leak_cap_mb: u64,
}

fn default_records() -> u64 {
    10
}

fn default_batch_size() -> u64 {
    5
}

fn default_leak_cap_mb() -> u64 {
    4096
}

/// Names the fault of `spec` (see the crate's documentation).
pub const SPEC_FAULT: &str = "TRELLIS_BROKEN_SPEC";
/// Names the fault of loading, in the entry symbol (see the crate's documentation).
pub const LOAD_FAULT: &str = "TRELLIS_BROKEN_LOAD";
/// The exit status of the `exit` fault.
pub const EXIT_STATUS: i32 = 17;

/// Faults as the environment variable `variable` says, if it says anything this crate knows.
fn fault_from_env(variable: &str) {
    match std::env::var(variable).as_deref() {
        Ok("abort") => std::process::abort(),
        Ok("segfault") => segfault(),
        Ok("exit") => std::process::exit(EXIT_STATUS),
        Ok("hang") => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        _ => {}
    }
}

/// The one state slot.
pub const STATE_SLOT: &str = "conversations";

/// Where a read resumes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub next: u64,
}

impl Connector for BrokenConnector {
    type Config = Config;
    type Reader = BrokenReader;

    fn spec(&self) -> Spec {
        fault_from_env(SPEC_FAULT);
        Spec {
            name: "broken".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: pb::PlatformKind::QaForum,
            description: "a connector that fails on purpose, for isolation tests".to_owned(),
            config_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["mode"],
                "additionalProperties": false,
                "properties": {
                    "mode": {"enum": ["ok", "abort", "segfault", "hang", "leak", "garbage", "transient", "noisy"]},
                    "records": {"type": "integer", "minimum": 0, "default": 10},
                    "batch_size": {"type": "integer", "minimum": 1, "default": 5},
                    "leak_cap_mb": {"type": "integer", "minimum": 1, "default": 4096}
                }
            }),
            streams: vec![stream("conversations", RecordKind::Conversation, "id")],
        }
    }

    fn check(&self, config: &Config) -> Result<String, ConnectorError> {
        Ok(format!("mode {}", config.mode))
    }

    fn open_read(
        &self,
        config: Config,
        state: State,
        _cancel: CancelToken,
    ) -> Result<BrokenReader, ConnectorError> {
        let position: Option<Position> = state.get(STATE_SLOT)?;
        Ok(BrokenReader {
            resumed: position.is_some(),
            position: position.unwrap_or_default(),
            config,
            batches: 0,
        })
    }
}

/// An open read.
#[derive(Debug)]
pub struct BrokenReader {
    config: Config,
    position: Position,
    resumed: bool,
    batches: u64,
}

impl Reader for BrokenReader {
    fn next_batch(&mut self) -> Result<Batch, ConnectorError> {
        self.batches += 1;
        if self.batches >= 2 {
            match self.config.mode.as_str() {
                "abort" => std::process::abort(),
                "segfault" => segfault(),
                "hang" => loop {
                    std::thread::sleep(Duration::from_secs(3600));
                },
                "leak" => return Err(leak(self.config.leak_cap_mb)),
                "transient" if !self.resumed => {
                    return Err(ConnectorError::transient(
                        "the platform is unavailable for a moment; retry later",
                    ));
                }
                _ => {}
            }
        }
        if self.config.mode == "noisy" {
            println!("noise on standard output that is not a frame \u{0}\u{1}\u{2}");
            eprintln!("broken connector: batch {} of a noisy read", self.batches);
        }
        let mut batch = Batch::new();
        let end = (self.position.next + self.config.batch_size).min(self.config.records);
        for n in self.position.next..end {
            batch.push(pb::Conversation {
                title: format!("broken thread {n}"),
                body: format!("how do we trace request {n} across services"),
                ..records::conversation(format!("b{n}"), pb::PlatformKind::QaForum)
            });
        }
        self.position.next = end;
        batch.checkpoint(STATE_SLOT, &self.position)?;
        if end >= self.config.records {
            batch.finish();
        }
        Ok(batch)
    }
}

#[allow(
    unsafe_code,
    reason = "the point of this mode: a real write to an invalid address"
)]
fn segfault() -> ! {
    let address = std::ptr::without_provenance_mut::<u64>(64);
    // SAFETY: none; this write faults on purpose (address 64 is never mapped).
    unsafe { address.write_volatile(0xdead) };
    unreachable!("the write above faults")
}

/// Allocates and touches memory until the process is stopped, or fails past `cap_mb`.
fn leak(cap_mb: u64) -> ConnectorError {
    const CHUNK: usize = 8 * 1024 * 1024;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0_u8; CHUNK];
        for page in chunk.iter_mut().step_by(4096) {
            *page = 1;
        }
        hoard.push(std::hint::black_box(chunk));
        let held_mb = (hoard.len() * CHUNK / (1024 * 1024)) as u64;
        if held_mb >= cap_mb {
            return ConnectorError::system(format!(
                "leaked {held_mb} MiB without being stopped: the host set no memory ceiling"
            ));
        }
    }
}

// -------------------------------------------------------------------------------------------
// The raw ABI, for the garbage mode.

const SDK_TABLE: TrellisConnectorV1 = trellis_plugin_sdk::export::table::<BrokenConnector>();

static TABLE: TrellisConnectorV1 = TrellisConnectorV1 {
    read_open: Some(read_open),
    read_next: Some(read_next),
    read_close: Some(read_close),
    buffer_free: Some(buffer_free),
    ..SDK_TABLE
};

/// Bytes that are not a protobuf message: a varint that never ends.
static GARBAGE: [u8; 16] = [0xff; 16];

/// Readers in garbage mode, with the number of `read_next` calls they had.
static GARBAGE_READERS: Mutex<Option<HashMap<usize, u64>>> = Mutex::new(None);

fn garbage_readers() -> std::sync::MutexGuard<'static, Option<HashMap<usize, u64>>> {
    GARBAGE_READERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The plugin's entry symbol: the SDK's table with the read functions wrapped.
#[allow(
    unsafe_code,
    reason = "the exported, unmangled entry symbol of the plugin ABI"
)]
#[unsafe(no_mangle)]
pub extern "C" fn trellis_connector_v1(
    host_abi_major: u16,
    host_abi_minor: u16,
) -> *const TrellisConnectorV1 {
    fault_from_env(LOAD_FAULT);
    trellis_plugin_sdk::export::entry(&TABLE, host_abi_major, host_abi_minor)
}

fn is_garbage_request(request: &[u8]) -> bool {
    use prost::Message as _;
    pb::connector::ReadRequest::decode(request)
        .ok()
        .and_then(|request| serde_json::from_str::<serde_json::Value>(&request.config_json).ok())
        .is_some_and(|config| config["mode"] == "garbage")
}

#[allow(
    unsafe_code,
    reason = "a wrapper of the SDK's read_open, with its contract"
)]
unsafe extern "C" fn read_open(
    instance: *mut trellis_plugin_sdk::abi::TrellisInstance,
    request: *const u8,
    request_len: usize,
    out_reader: *mut *mut TrellisReader,
    out_error: *mut TrellisBuffer,
) -> i32 {
    let open = SDK_TABLE.read_open.expect("the SDK's table is complete");
    // SAFETY: the host's arguments, passed on unchanged under the same contract.
    let status = unsafe { open(instance, request, request_len, out_reader, out_error) };
    let bytes = if request.is_null() || request_len == 0 {
        &[][..]
    } else {
        // SAFETY: the host's request bytes live for this call (ABI contract).
        unsafe { std::slice::from_raw_parts(request, request_len) }
    };
    if status == TRELLIS_STATUS_OK && is_garbage_request(bytes) {
        // SAFETY: on OK the SDK wrote the new reader to the host's out-pointer.
        let reader = unsafe { *out_reader } as usize;
        garbage_readers()
            .get_or_insert_with(HashMap::new)
            .insert(reader, 0);
    }
    status
}

#[allow(
    unsafe_code,
    reason = "a wrapper of the SDK's read_next that breaks its contract"
)]
unsafe extern "C" fn read_next(reader: *mut TrellisReader, out: *mut TrellisBuffer) -> i32 {
    let calls = garbage_readers()
        .as_mut()
        .and_then(|readers| readers.get_mut(&(reader as usize)))
        .map(|calls| {
            *calls += 1;
            *calls
        });
    if calls.is_some_and(|calls| calls >= 2) {
        // SAFETY: `out` is the host's writable buffer (ABI contract); GARBAGE is static and
        // never freed (see buffer_free).
        unsafe {
            out.write(TrellisBuffer {
                data: GARBAGE.as_ptr().cast_mut(),
                len: GARBAGE.len(),
            });
        }
        return TRELLIS_STATUS_OK;
    }
    let next = SDK_TABLE.read_next.expect("the SDK's table is complete");
    // SAFETY: the host's arguments, passed on unchanged.
    unsafe { next(reader, out) }
}

#[allow(
    unsafe_code,
    reason = "a wrapper of the SDK's read_close, with its contract"
)]
unsafe extern "C" fn read_close(reader: *mut TrellisReader) {
    if let Some(readers) = garbage_readers().as_mut() {
        readers.remove(&(reader as usize));
    }
    let close = SDK_TABLE.read_close.expect("the SDK's table is complete");
    // SAFETY: the host's reader, closed once.
    unsafe { close(reader) }
}

#[allow(
    unsafe_code,
    reason = "a wrapper of the SDK's buffer_free, with its contract"
)]
unsafe extern "C" fn buffer_free(buffer: TrellisBuffer) {
    if std::ptr::eq(buffer.data.cast_const(), GARBAGE.as_ptr()) {
        return;
    }
    let free = SDK_TABLE.buffer_free.expect("the SDK's table is complete");
    // SAFETY: a buffer the SDK allocated, given back once.
    unsafe { free(buffer) }
}
