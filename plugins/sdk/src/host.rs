//! The host side of the C ABI: loading a plugin library, the version handshake, and safe
//! wrappers around every call. Used by the server's plugin host and by the conformance kit, so
//! that both drive plugins the same way.
//!
//! The unsafe surface: opening a library (its initialisers run), calling its entry symbol,
//! reading its function table, calling through it with buffers we own, and reading the buffers it
//! returns before handing them back to its `buffer_free`. Libraries are leaked on purpose: a
//! plugin is never unloaded, because code or thread-locals of it may still be referenced.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost::Message;

use crate::abi::{
    TRELLIS_ABI_MAJOR, TRELLIS_ABI_MINOR, TRELLIS_ENTRY_SYMBOL, TRELLIS_STATUS_OK,
    TrellisAbiHeader, TrellisBuffer, TrellisConnectorEntry, TrellisConnectorV1, TrellisInstance,
    TrellisReader,
};
use crate::error::ConnectorError;
use crate::pb::connector as proto;
use crate::state::State;

pub mod convert;

/// Why a plugin could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The library could not be opened or has no entry symbol.
    #[error("cannot load plugin {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    /// The library's ABI does not match this host's; nothing else was called.
    #[error("plugin {path} refused: {reason}")]
    Abi { path: PathBuf, reason: String },
    /// The plugin answered with an error.
    #[error(transparent)]
    Plugin(#[from] ConnectorError),
    /// The plugin answered something that does not follow the protocol.
    #[error("plugin protocol: {0}")]
    Protocol(String),
}

impl HostError {
    /// The plugin's typed error, when that is what this is.
    pub fn connector_error(&self) -> Option<&ConnectorError> {
        match self {
            HostError::Plugin(error) => Some(error),
            _ => None,
        }
    }
}

/// A loaded plugin library whose ABI was checked.
#[derive(Debug)]
pub struct Plugin {
    path: PathBuf,
    entry: TrellisConnectorEntry,
    table: TrellisConnectorV1,
}

/// Checks the table returned by an entry symbol for a host of `host_major`, and copies the
/// fields that fit in both the plugin's and this host's version of it.
///
/// # Safety
/// `table` must be null or point to at least `size_of::<TrellisAbiHeader>()` readable bytes, and
/// to `struct_size` readable bytes as its header reports.
pub unsafe fn read_table(
    table: *const TrellisConnectorV1,
    host_major: u16,
) -> Result<TrellisConnectorV1, String> {
    if table.is_null() {
        return Err(format!(
            "it does not speak ABI major version {host_major} (its entry symbol returned null); rebuild it against trellis-plugin-sdk with ABI {host_major}"
        ));
    }
    // SAFETY: non-null, and every table version starts with the header (caller's guarantee).
    let header = unsafe { table.cast::<TrellisAbiHeader>().read_unaligned() };
    if header.abi_major != host_major {
        return Err(format!(
            "its function table is ABI {}.{}, this host speaks ABI {host_major}.x; rebuild the plugin against a matching trellis-plugin-sdk",
            header.abi_major, header.abi_minor
        ));
    }
    let known = size_of::<TrellisConnectorV1>();
    let reported = usize::try_from(header.struct_size).unwrap_or(usize::MAX);
    if reported < size_of::<TrellisAbiHeader>() {
        return Err(format!(
            "its function table reports a size of {reported} bytes, smaller than its own header"
        ));
    }
    let mut copy = MaybeUninit::<TrellisConnectorV1>::zeroed();
    // SAFETY: we copy min(reported, known) bytes: readable on the plugin's side by the caller's
    // guarantee, writable on ours. Every field is an integer or an Option of a function pointer,
    // for which all-zero bytes are valid (None), so the fields the plugin did not report stay None.
    let table = unsafe {
        std::ptr::copy_nonoverlapping(
            table.cast::<u8>(),
            copy.as_mut_ptr().cast::<u8>(),
            reported.min(known),
        );
        copy.assume_init()
    };
    let required = [
        ("instance_new", table.instance_new.is_some()),
        ("instance_free", table.instance_free.is_some()),
        ("spec", table.spec.is_some()),
        ("check", table.check.is_some()),
        ("discover", table.discover.is_some()),
        ("read_open", table.read_open.is_some()),
        ("read_next", table.read_next.is_some()),
        ("read_cancel", table.read_cancel.is_some()),
        ("read_close", table.read_close.is_some()),
        ("buffer_free", table.buffer_free.is_some()),
    ];
    if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
        return Err(format!(
            "its function table (ABI {}.{}, {reported} bytes) lacks the required function {name}",
            header.abi_major, header.abi_minor
        ));
    }
    Ok(table)
}

impl Plugin {
    /// Loads the library at `path` and performs the handshake before any other call: the entry
    /// symbol is asked for ABI major [`TRELLIS_ABI_MAJOR`], and its table is checked. The library
    /// is never unloaded, even when refused (its initialisers already ran).
    pub fn load(path: &Path) -> Result<Arc<Plugin>, HostError> {
        let load_error = |reason: String| HostError::Load {
            path: path.to_owned(),
            reason,
        };
        // SAFETY: opening a library runs its initialisers; loading only from folders an operator
        // configured is what makes that acceptable (the caller's policy).
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|error| load_error(error.to_string()))?;
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: the symbol's type is fixed by the ABI; a library exporting this name with
        // another type is not a Trellis plugin and breaks the contract.
        let entry: TrellisConnectorEntry = unsafe {
            *library
                .get::<TrellisConnectorEntry>(TRELLIS_ENTRY_SYMBOL)
                .map_err(|error| {
                    load_error(format!(
                        "it has no entry symbol trellis_connector_v1 ({error}); is it a Trellis connector?"
                    ))
                })?
        };
        // SAFETY: the entry symbol returns null or a static table (ABI contract).
        let table = unsafe {
            read_table(
                entry(TRELLIS_ABI_MAJOR, TRELLIS_ABI_MINOR),
                TRELLIS_ABI_MAJOR,
            )
        }
        .map_err(|reason| HostError::Abi {
            path: path.to_owned(),
            reason,
        })?;
        Ok(Arc::new(Plugin {
            path: path.to_owned(),
            entry,
            table,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ABI version of the plugin's table.
    pub fn abi_version(&self) -> (u16, u16) {
        (self.table.abi_major, self.table.abi_minor)
    }

    /// Asks the entry symbol for another ABI major version, as a host of that version would;
    /// `Err` says why the table would be refused. Used by the conformance kit to check that a
    /// plugin refuses a version it does not speak.
    pub fn handshake(&self, host_major: u16, host_minor: u16) -> Result<(), String> {
        // SAFETY: as in `load`.
        unsafe { read_table((self.entry)(host_major, host_minor), host_major) }.map(|_| ())
    }

    /// Creates an instance of the connector.
    pub fn instance(self: &Arc<Self>) -> Result<Instance, HostError> {
        let instance_new = self.table.instance_new.expect("checked by read_table");
        let mut raw: *mut TrellisInstance = std::ptr::null_mut();
        let mut error = TrellisBuffer {
            data: std::ptr::null_mut(),
            len: 0,
        };
        // SAFETY: both out-pointers are valid for writes for the call.
        let status = unsafe { instance_new(&mut raw, &mut error) };
        let error_bytes = self.take(error);
        if status != TRELLIS_STATUS_OK {
            return Err(self.error(status, &error_bytes));
        }
        if raw.is_null() {
            return Err(HostError::Protocol(
                "instance_new returned OK without an instance".to_owned(),
            ));
        }
        Ok(Instance {
            inner: Arc::new(InstanceInner {
                plugin: Arc::clone(self),
                raw,
                calls: Mutex::new(()),
            }),
        })
    }

    /// Copies a buffer the plugin returned and hands it back to the plugin.
    fn take(&self, buffer: TrellisBuffer) -> Vec<u8> {
        if buffer.data.is_null() {
            return Vec::new();
        }
        // SAFETY: a non-null buffer from the plugin holds `len` readable bytes until freed.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.data, buffer.len) }.to_vec();
        let buffer_free = self.table.buffer_free.expect("checked by read_table");
        // SAFETY: the buffer came from this plugin and is freed once, here.
        unsafe { buffer_free(buffer) };
        bytes
    }

    fn error(&self, status: i32, bytes: &[u8]) -> HostError {
        let message = (!bytes.is_empty())
            .then(|| proto::ConnectorError::decode(bytes).ok())
            .flatten();
        HostError::Plugin(ConnectorError::from_proto(status, message))
    }

    fn answer<M: Message + Default>(
        &self,
        status: i32,
        bytes: &[u8],
        what: &str,
    ) -> Result<M, HostError> {
        if status != TRELLIS_STATUS_OK {
            return Err(self.error(status, bytes));
        }
        M::decode(bytes).map_err(|error| {
            HostError::Protocol(format!("the plugin's {what} does not decode: {error}"))
        })
    }
}

struct InstanceInner {
    plugin: Arc<Plugin>,
    raw: *mut TrellisInstance,
    /// Calls on one instance are serialised: the ABI lets a plugin assume one thread at a time.
    calls: Mutex<()>,
}

// SAFETY: the ABI lets an instance be used from any thread, one at a time; `calls` serialises.
unsafe impl Send for InstanceInner {}
// SAFETY: as above: every call through `raw` holds `calls`.
unsafe impl Sync for InstanceInner {}

impl Drop for InstanceInner {
    fn drop(&mut self) {
        let instance_free = self
            .plugin
            .table
            .instance_free
            .expect("checked by read_table");
        // SAFETY: the instance is live, and no reader of it remains (readers hold an Arc to us).
        unsafe { instance_free(self.raw) };
    }
}

/// A connector instance. After a panic inside the plugin every call fails; create another.
#[derive(Clone)]
pub struct Instance {
    inner: Arc<InstanceInner>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.inner.plugin.path)
            .finish_non_exhaustive()
    }
}

fn empty_buffer() -> TrellisBuffer {
    TrellisBuffer {
        data: std::ptr::null_mut(),
        len: 0,
    }
}

impl Instance {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.inner.plugin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn spec(&self) -> Result<proto::SpecResponse, HostError> {
        let plugin = &self.inner.plugin;
        let spec = plugin.table.spec.expect("checked by read_table");
        let mut out = empty_buffer();
        let status = {
            let _guard = self.lock();
            // SAFETY: a live instance and a writable out-buffer.
            unsafe { spec(self.inner.raw, &mut out) }
        };
        let bytes = plugin.take(out);
        plugin.answer(status, &bytes, "spec")
    }

    fn request<M: Message + Default>(
        &self,
        function: crate::abi::TrellisCallFn,
        request: &impl Message,
        what: &str,
    ) -> Result<M, HostError> {
        let plugin = &self.inner.plugin;
        let function = function.expect("checked by read_table");
        let request = request.encode_to_vec();
        let mut out = empty_buffer();
        let status = {
            let _guard = self.lock();
            // SAFETY: a live instance, request bytes that outlive the call, a writable out-buffer.
            unsafe { function(self.inner.raw, request.as_ptr(), request.len(), &mut out) }
        };
        let bytes = plugin.take(out);
        plugin.answer(status, &bytes, what)
    }

    /// Checks a config; the answer is the connector's line for people.
    pub fn check(&self, config_json: &str) -> Result<String, HostError> {
        let answer: proto::CheckResponse = self.request(
            self.inner.plugin.table.check,
            &proto::CheckRequest {
                config_json: config_json.to_owned(),
            },
            "check answer",
        )?;
        Ok(answer.message)
    }

    pub fn discover(&self, config_json: &str) -> Result<Vec<proto::StreamSpec>, HostError> {
        let answer: proto::DiscoverResponse = self.request(
            self.inner.plugin.table.discover,
            &proto::DiscoverRequest {
                config_json: config_json.to_owned(),
            },
            "discover answer",
        )?;
        Ok(answer.streams)
    }

    /// Opens a read resuming after `state`.
    pub fn read(&self, config_json: &str, state: &State) -> Result<ReadSession, HostError> {
        let plugin = &self.inner.plugin;
        let read_open = plugin.table.read_open.expect("checked by read_table");
        let request = proto::ReadRequest {
            config_json: config_json.to_owned(),
            states: state.to_proto(),
        }
        .encode_to_vec();
        let mut reader: *mut TrellisReader = std::ptr::null_mut();
        let mut error = empty_buffer();
        let status = {
            let _guard = self.lock();
            // SAFETY: a live instance, request bytes that outlive the call, writable out-pointers.
            unsafe {
                read_open(
                    self.inner.raw,
                    request.as_ptr(),
                    request.len(),
                    &mut reader,
                    &mut error,
                )
            }
        };
        let error_bytes = plugin.take(error);
        if status != TRELLIS_STATUS_OK {
            return Err(plugin.error(status, &error_bytes));
        }
        if reader.is_null() {
            return Err(HostError::Protocol(
                "read_open returned OK without a reader".to_owned(),
            ));
        }
        Ok(ReadSession {
            reader: Arc::new(ReaderInner {
                instance: Arc::clone(&self.inner),
                raw: reader,
            }),
            finished: false,
        })
    }
}

struct ReaderInner {
    instance: Arc<InstanceInner>,
    raw: *mut TrellisReader,
}

// SAFETY: the ABI lets a reader move between threads; `read_next` is only called through
// `&mut ReadSession`, and `read_cancel` is the one function the ABI allows concurrently.
unsafe impl Send for ReaderInner {}
// SAFETY: as above.
unsafe impl Sync for ReaderInner {}

impl Drop for ReaderInner {
    fn drop(&mut self) {
        let read_close = self
            .instance
            .plugin
            .table
            .read_close
            .expect("checked by read_table");
        // SAFETY: a live reader, closed once, with no call in flight (we are its last owner).
        unsafe { read_close(self.raw) };
    }
}

/// An open read: pull batches until `None`.
pub struct ReadSession {
    reader: Arc<ReaderInner>,
    finished: bool,
}

impl std::fmt::Debug for ReadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSession")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ReadSession {
    /// The next batch, or `None` once the plugin sent its last batch.
    pub fn next_batch(&mut self) -> Result<Option<proto::ReadBatch>, HostError> {
        if self.finished {
            return Ok(None);
        }
        let plugin = &self.reader.instance.plugin;
        let read_next = plugin.table.read_next.expect("checked by read_table");
        let mut out = empty_buffer();
        // SAFETY: a live reader, used by this thread only (we hold &mut self), and a writable
        // out-buffer.
        let status = unsafe { read_next(self.reader.raw, &mut out) };
        let bytes = plugin.take(out);
        let batch: proto::ReadBatch = plugin.answer(status, &bytes, "batch")?;
        if batch.end {
            self.finished = true;
        }
        Ok(Some(batch))
    }

    /// A handle that cancels this read from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.reader))
    }
}

/// Cancels a read from any thread. Keeps the reader open until dropped.
#[derive(Clone)]
pub struct Canceller(Arc<ReaderInner>);

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canceller")
    }
}

impl Canceller {
    pub fn cancel(&self) {
        let read_cancel = self
            .0
            .instance
            .plugin
            .table
            .read_cancel
            .expect("checked by read_table");
        // SAFETY: a live reader (we hold it open); the ABI allows read_cancel from any thread
        // while read_next runs.
        unsafe { read_cancel(self.0.raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(major: u16, size: u32) -> TrellisConnectorV1 {
        TrellisConnectorV1 {
            struct_size: size,
            abi_major: major,
            ..crate::export::table::<NoConnector>()
        }
    }

    #[derive(Default)]
    struct NoConnector;

    impl crate::Connector for NoConnector {
        type Config = serde_json::Value;
        type Reader = NoReader;
        fn spec(&self) -> crate::Spec {
            unreachable!("never called by these tests")
        }
        fn check(&self, _config: &Self::Config) -> Result<String, ConnectorError> {
            Ok(String::new())
        }
        fn open_read(
            &self,
            _config: Self::Config,
            _state: State,
            _cancel: crate::CancelToken,
        ) -> Result<NoReader, ConnectorError> {
            Ok(NoReader)
        }
    }

    struct NoReader;

    impl crate::Reader for NoReader {
        fn next_batch(&mut self) -> Result<crate::Batch, ConnectorError> {
            Ok(crate::Batch::last())
        }
    }

    #[test]
    fn a_table_of_this_major_is_accepted() {
        let full = table(1, size_of::<TrellisConnectorV1>() as u32);
        // SAFETY: a live table.
        assert!(unsafe { read_table(&full, 1) }.is_ok());
    }

    #[test]
    fn an_unknown_major_is_refused_before_anything_else() {
        let other = table(2, size_of::<TrellisConnectorV1>() as u32);
        // SAFETY: a live table.
        let error = unsafe { read_table(&other, 1) }.unwrap_err();
        assert!(error.contains("ABI 2.0"), "{error}");
        // SAFETY: null is allowed.
        let error = unsafe { read_table(std::ptr::null(), 1) }.unwrap_err();
        assert!(
            error.contains("does not speak ABI major version 1"),
            "{error}"
        );
    }

    #[test]
    fn only_the_reported_size_is_read() {
        // A plugin of an older minor version that stops before buffer_free: the field is not
        // read (it would be Some in the source table) and the table is refused as incomplete.
        let size = std::mem::offset_of!(TrellisConnectorV1, buffer_free) as u32;
        let short = table(1, size);
        // SAFETY: a live table, larger than the size it reports.
        let error = unsafe { read_table(&short, 1) }.unwrap_err();
        assert!(error.contains("buffer_free"), "{error}");
    }
}
