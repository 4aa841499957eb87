//! The plugin side of the C ABI: `extern "C"` functions, generic over a [`Connector`], that the
//! [`export_connector!`](crate::export_connector) macro puts in the plugin's static function table.
//!
//! This is one of the two modules of the SDK allowed to use `unsafe` (the other is the host's
//! loader). The unsafe surface is: reading the caller's request bytes, turning the opaque
//! instance and reader pointers back into the boxes this module created, writing output
//! pointers, and freeing buffers this module allocated. Every function is wrapped in
//! `catch_unwind`: a panic never unwinds into the host; it becomes a system error and poisons the
//! instance (and its readers), whose later calls all fail.
//!
//! What the host puts in a config for the plugin ([`HostSettings`], under [`egress::HOST_KEY`])
//! is taken out before the config is validated, and its egress policy is made current for the
//! call (and for every batch of a read), where `http::agent` finds it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message;
use serde_json::Value;

use crate::abi::{
    TRELLIS_ABI_MAJOR, TRELLIS_ABI_MINOR, TRELLIS_STATUS_OK, TrellisBuffer, TrellisConnectorV1,
    TrellisInstance, TrellisReader,
};
use crate::connector::{CancelToken, Connector, Reader};
use crate::egress::{self, EgressPolicy, HostSettings};
use crate::error::ConnectorError;
use crate::pb::connector as proto;
use crate::schema::ConfigSchema;
use crate::state::State;

/// The config key through which the conformance kit asks a plugin built with the
/// `conformance-hooks` feature to panic: its value names the call that panics, one of `check`,
/// `discover`, `read_open`, `read_next`. The key is removed from the config before validation.
/// Without the feature the key is an ordinary (and usually refused) config field.
pub const CONFORMANCE_PANIC_KEY: &str = "__trellis_conformance_panic";

/// The function table of a connector, built at compile time.
pub const fn table<C: Connector>() -> TrellisConnectorV1 {
    TrellisConnectorV1 {
        struct_size: size_of::<TrellisConnectorV1>() as u32,
        abi_major: TRELLIS_ABI_MAJOR,
        abi_minor: TRELLIS_ABI_MINOR,
        instance_new: Some(instance_new::<C>),
        instance_free: Some(instance_free::<C>),
        spec: Some(spec::<C>),
        check: Some(check::<C>),
        discover: Some(discover::<C>),
        read_open: Some(read_open::<C>),
        read_next: Some(read_next::<C>),
        read_cancel: Some(read_cancel::<C>),
        read_close: Some(read_close::<C>),
        buffer_free: Some(buffer_free),
    }
}

/// The body of the entry symbol: the table when the host speaks our major version, else null.
pub fn entry(
    table: &'static TrellisConnectorV1,
    host_abi_major: u16,
    _host_abi_minor: u16,
) -> *const TrellisConnectorV1 {
    if host_abi_major == TRELLIS_ABI_MAJOR {
        table
    } else {
        std::ptr::null()
    }
}

/// Exports a [`Connector`] as a plugin: defines the entry symbol `trellis_connector_v1`.
/// The crate must be a `cdylib`. Use it once per library:
///
/// ```ignore
/// trellis_plugin_sdk::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        static TRELLIS_CONNECTOR_TABLE: $crate::abi::TrellisConnectorV1 =
            $crate::export::table::<$connector>();

        /// The plugin's entry symbol: see `trellis_plugin_sdk::abi`.
        #[allow(
            unsafe_code,
            reason = "the one exported, unmangled entry symbol of the plugin ABI"
        )]
        #[unsafe(no_mangle)]
        pub extern "C" fn trellis_connector_v1(
            host_abi_major: u16,
            host_abi_minor: u16,
        ) -> *const $crate::abi::TrellisConnectorV1 {
            $crate::export::entry(&TRELLIS_CONNECTOR_TABLE, host_abi_major, host_abi_minor)
        }
    };
}

struct Compiled {
    spec: proto::SpecResponse,
    schema: ConfigSchema,
}

struct InstanceState<C: Connector> {
    connector: C,
    compiled: OnceLock<Result<Compiled, ConnectorError>>,
    poisoned: Arc<AtomicBool>,
}

struct ReaderState<R: Reader> {
    reader: Mutex<R>,
    cancel: CancelToken,
    /// The host's egress policy, current again during every batch.
    egress: EgressPolicy,
    poisoned: Arc<AtomicBool>,
    finished: AtomicBool,
    #[cfg_attr(not(feature = "conformance-hooks"), allow(dead_code))]
    panic_on_next: bool,
}

impl TrellisBuffer {
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return TrellisBuffer {
                data: std::ptr::null_mut(),
                len: 0,
            };
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        TrellisBuffer {
            data: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn poisoned_error() -> ConnectorError {
    ConnectorError::system(
        "this plugin instance is poisoned by an earlier panic; the host must create a new instance",
    )
}

/// Runs `call` unless `poisoned`, catching panics (which poison), and turns the outcome into a
/// status code and the bytes of the answer or of the error.
fn guarded(
    poisoned: Option<&AtomicBool>,
    call: impl FnOnce() -> Result<Vec<u8>, ConnectorError>,
) -> (i32, Vec<u8>) {
    if poisoned.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
        let error = poisoned_error();
        return (error.kind.status(), error.to_proto().encode_to_vec());
    }
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(bytes)) => (TRELLIS_STATUS_OK, bytes),
        Ok(Err(error)) => (error.kind.status(), error.to_proto().encode_to_vec()),
        Err(payload) => {
            if let Some(flag) = poisoned {
                flag.store(true, Ordering::SeqCst);
            }
            let error = ConnectorError::system(format!(
                "the plugin panicked: {}; the instance is poisoned",
                panic_message(payload.as_ref())
            ));
            (error.kind.status(), error.to_proto().encode_to_vec())
        }
    }
}

/// Writes `bytes` to `out` when the caller gave somewhere to write them.
fn write_out(out: *mut TrellisBuffer, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    // SAFETY: `out` is non-null and, by the ABI contract, points to a writable TrellisBuffer
    // owned by the caller for the duration of the call.
    unsafe { out.write(TrellisBuffer::from_vec(bytes)) };
}

/// The caller's request bytes, borrowed for the call.
///
/// # Safety
/// `request` must be null or point to `len` readable bytes that live until the call returns.
unsafe fn request_bytes<'a>(request: *const u8, len: usize) -> &'a [u8] {
    if request.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller (the ABI contract).
    unsafe { std::slice::from_raw_parts(request, len) }
}

/// The instance behind an opaque pointer created by `instance_new::<C>`.
///
/// # Safety
/// `instance` must be null or a live pointer returned by `instance_new::<C>` of this plugin.
unsafe fn instance_ref<'a, C: Connector>(
    instance: *mut TrellisInstance,
) -> Option<&'a InstanceState<C>> {
    // SAFETY: guaranteed by the caller; only shared references are ever made.
    unsafe { instance.cast::<InstanceState<C>>().as_ref() }
}

/// The reader behind an opaque pointer created by `read_open::<C>`.
///
/// # Safety
/// `reader` must be null or a live pointer returned by `read_open::<C>` of this plugin.
unsafe fn reader_ref<'a, C: Connector>(
    reader: *mut TrellisReader,
) -> Option<&'a ReaderState<C::Reader>> {
    // SAFETY: guaranteed by the caller; only shared references are ever made, so `read_cancel`
    // on another thread never aliases a mutable borrow.
    unsafe { reader.cast::<ReaderState<C::Reader>>().as_ref() }
}

fn null_handle(what: &str) -> (i32, Vec<u8>) {
    let error = ConnectorError::system(format!("the host passed a null {what}"));
    (error.kind.status(), error.to_proto().encode_to_vec())
}

impl<C: Connector> InstanceState<C> {
    fn compiled(&self) -> Result<&Compiled, ConnectorError> {
        self.compiled
            .get_or_init(|| {
                let spec = self.connector.spec();
                let schema = ConfigSchema::new(&spec.config_schema).map_err(|problem| {
                    ConnectorError::system(format!("connector {}: {problem}", spec.name))
                })?;
                Ok(Compiled {
                    spec: proto::SpecResponse {
                        name: spec.name,
                        version: spec.version,
                        platform: spec.platform.into(),
                        config_schema_json: spec.config_schema.to_string(),
                        streams: spec.streams,
                        description: spec.description,
                        conformance_hooks: cfg!(feature = "conformance-hooks"),
                    },
                    schema,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses, validates and deserializes a config, after taking out what the host put in it
    /// ([`HostSettings`] under [`egress::HOST_KEY`]). Returns the config, the call named by the
    /// conformance panic hook, if any, and the host's settings (the defaults when it sent
    /// none).
    fn config(&self, config_json: &str) -> Result<Parsed<C::Config>, ConnectorError> {
        let mut value: Value = serde_json::from_str(config_json).map_err(|error| {
            ConnectorError::config("", format!("the config is not valid JSON: {error}"))
        })?;
        let host = HostSettings::take(&mut value)
            .map_err(ConnectorError::system)?
            .unwrap_or_default();
        let hook = value.as_object_mut().and_then(hook_of);
        self.compiled()?.schema.validate(&value)?;
        let config = serde_json::from_value(value).map_err(|error| {
            ConnectorError::config(
                "",
                format!("the config does not fit the connector: {error}"),
            )
        })?;
        Ok(Parsed { config, hook, host })
    }
}

/// A config as a call gets it.
struct Parsed<T> {
    config: T,
    hook: Option<String>,
    host: HostSettings,
}

#[cfg(feature = "conformance-hooks")]
fn hook_of(object: &mut serde_json::Map<String, Value>) -> Option<String> {
    match object.remove(CONFORMANCE_PANIC_KEY)? {
        Value::String(call) => Some(call),
        _ => None,
    }
}

#[cfg(not(feature = "conformance-hooks"))]
fn hook_of(_object: &mut serde_json::Map<String, Value>) -> Option<String> {
    None
}

fn panic_if_hooked(hook: Option<&str>, call: &str) {
    if cfg!(feature = "conformance-hooks") && hook == Some(call) {
        panic!("conformance hook: a panic was requested in {call}");
    }
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ConnectorError> {
    M::decode(bytes).map_err(|error| {
        ConnectorError::system(format!(
            "the host sent a {what} that does not decode: {error}"
        ))
    })
}

unsafe extern "C" fn instance_new<C: Connector>(
    out_instance: *mut *mut TrellisInstance,
    out_error: *mut TrellisBuffer,
) -> i32 {
    let mut created: *mut TrellisInstance = std::ptr::null_mut();
    let (status, bytes) = guarded(None, || {
        let state = InstanceState {
            connector: C::default(),
            compiled: OnceLock::new(),
            poisoned: Arc::new(AtomicBool::new(false)),
        };
        created = Box::into_raw(Box::new(state)).cast::<TrellisInstance>();
        Ok(Vec::new())
    });
    if !out_instance.is_null() {
        // SAFETY: non-null, and by the ABI contract a writable pointer slot of the caller.
        unsafe { out_instance.write(created) };
    } else if !created.is_null() {
        // Nobody can ever free it otherwise.
        // SAFETY: `created` came from Box::into_raw just above and was never shared.
        drop(unsafe { Box::from_raw(created.cast::<InstanceState<C>>()) });
    }
    write_out(out_error, bytes);
    status
}

unsafe extern "C" fn instance_free<C: Connector>(instance: *mut TrellisInstance) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by the ABI contract, a live instance of this plugin, freed once.
        drop(unsafe { Box::from_raw(instance.cast::<InstanceState<C>>()) });
    }));
}

unsafe extern "C" fn spec<C: Connector>(
    instance: *mut TrellisInstance,
    out: *mut TrellisBuffer,
) -> i32 {
    // SAFETY: the ABI contract.
    let Some(state) = (unsafe { instance_ref::<C>(instance) }) else {
        let (status, bytes) = null_handle("instance");
        write_out(out, bytes);
        return status;
    };
    let (status, bytes) = guarded(Some(&state.poisoned), || {
        Ok(state.compiled()?.spec.encode_to_vec())
    });
    write_out(out, bytes);
    status
}

unsafe extern "C" fn check<C: Connector>(
    instance: *mut TrellisInstance,
    request: *const u8,
    request_len: usize,
    out: *mut TrellisBuffer,
) -> i32 {
    // SAFETY: the ABI contract.
    let (state, request) = unsafe {
        (
            instance_ref::<C>(instance),
            request_bytes(request, request_len),
        )
    };
    let Some(state) = state else {
        let (status, bytes) = null_handle("instance");
        write_out(out, bytes);
        return status;
    };
    let (status, bytes) = guarded(Some(&state.poisoned), || {
        let request: proto::CheckRequest = decode(request, "CheckRequest")?;
        let Parsed { config, hook, host } = state.config(&request.config_json)?;
        let _egress = egress::enter(host.egress);
        panic_if_hooked(hook.as_deref(), "check");
        let message = state.connector.check(&config)?;
        Ok(proto::CheckResponse { message }.encode_to_vec())
    });
    write_out(out, bytes);
    status
}

unsafe extern "C" fn discover<C: Connector>(
    instance: *mut TrellisInstance,
    request: *const u8,
    request_len: usize,
    out: *mut TrellisBuffer,
) -> i32 {
    // SAFETY: the ABI contract.
    let (state, request) = unsafe {
        (
            instance_ref::<C>(instance),
            request_bytes(request, request_len),
        )
    };
    let Some(state) = state else {
        let (status, bytes) = null_handle("instance");
        write_out(out, bytes);
        return status;
    };
    let (status, bytes) = guarded(Some(&state.poisoned), || {
        let request: proto::DiscoverRequest = decode(request, "DiscoverRequest")?;
        let Parsed { config, hook, host } = state.config(&request.config_json)?;
        let _egress = egress::enter(host.egress);
        panic_if_hooked(hook.as_deref(), "discover");
        let streams = state.connector.discover(&config)?;
        Ok(proto::DiscoverResponse { streams }.encode_to_vec())
    });
    write_out(out, bytes);
    status
}

unsafe extern "C" fn read_open<C: Connector>(
    instance: *mut TrellisInstance,
    request: *const u8,
    request_len: usize,
    out_reader: *mut *mut TrellisReader,
    out_error: *mut TrellisBuffer,
) -> i32 {
    // SAFETY: the ABI contract.
    let (state, request) = unsafe {
        (
            instance_ref::<C>(instance),
            request_bytes(request, request_len),
        )
    };
    let Some(state) = state else {
        let (status, bytes) = null_handle("instance");
        write_out(out_error, bytes);
        return status;
    };
    if out_reader.is_null() {
        let (status, bytes) = null_handle("reader slot");
        write_out(out_error, bytes);
        return status;
    }
    let mut created: *mut TrellisReader = std::ptr::null_mut();
    let (status, bytes) = guarded(Some(&state.poisoned), || {
        let request: proto::ReadRequest = decode(request, "ReadRequest")?;
        let Parsed { config, hook, host } = state.config(&request.config_json)?;
        let _egress = egress::enter(host.egress.clone());
        panic_if_hooked(hook.as_deref(), "read_open");
        let cancel = CancelToken::new();
        let reader =
            state
                .connector
                .open_read(config, State::from_proto(request.states), cancel.clone())?;
        let reader_state = ReaderState {
            reader: Mutex::new(reader),
            cancel,
            egress: host.egress,
            poisoned: Arc::clone(&state.poisoned),
            finished: AtomicBool::new(false),
            panic_on_next: hook.as_deref() == Some("read_next"),
        };
        created = Box::into_raw(Box::new(reader_state)).cast::<TrellisReader>();
        Ok(Vec::new())
    });
    // SAFETY: checked non-null above; a writable slot of the caller by the ABI contract.
    unsafe { out_reader.write(created) };
    write_out(out_error, bytes);
    status
}

unsafe extern "C" fn read_next<C: Connector>(
    reader: *mut TrellisReader,
    out: *mut TrellisBuffer,
) -> i32 {
    // SAFETY: the ABI contract.
    let Some(state) = (unsafe { reader_ref::<C>(reader) }) else {
        let (status, bytes) = null_handle("reader");
        write_out(out, bytes);
        return status;
    };
    let (status, bytes) = guarded(Some(&state.poisoned), || {
        if state.finished.load(Ordering::SeqCst) {
            return Ok(proto::ReadBatch {
                items: Vec::new(),
                end: true,
            }
            .encode_to_vec());
        }
        state.cancel.check()?;
        if state.panic_on_next {
            panic_if_hooked(Some("read_next"), "read_next");
        }
        let mut reader = state.reader.lock().map_err(|_| poisoned_error())?;
        let _egress = egress::enter(state.egress.clone());
        let batch = reader.next_batch()?;
        if batch.is_last() {
            state.finished.store(true, Ordering::SeqCst);
        }
        Ok(batch.into_proto().encode_to_vec())
    });
    write_out(out, bytes);
    status
}

unsafe extern "C" fn read_cancel<C: Connector>(reader: *mut TrellisReader) {
    // SAFETY: the ABI contract; only the atomic flag is touched, through a shared reference.
    if let Some(state) = unsafe { reader_ref::<C>(reader) } {
        state.cancel.cancel();
    }
}

unsafe extern "C" fn read_close<C: Connector>(reader: *mut TrellisReader) {
    if reader.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by the ABI contract, a live reader of this plugin, closed once, with no other
        // call on it in flight.
        drop(unsafe { Box::from_raw(reader.cast::<ReaderState<C::Reader>>()) });
    }));
}

unsafe extern "C" fn buffer_free(buffer: TrellisBuffer) {
    if buffer.data.is_null() {
        return;
    }
    // SAFETY: by the ABI contract the buffer came from `TrellisBuffer::from_vec` of this plugin
    // (a boxed slice of exactly `len` bytes) and is freed once.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len)) });
}
