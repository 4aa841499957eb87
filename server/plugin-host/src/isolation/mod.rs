//! Isolation mode: a source's plugin runs in a child process (`trellis-plugin-runner`) that loads
//! the library and answers the same protobuf messages as the C ABI, framed over its standard
//! input and output (see [`wire`]). Whatever the plugin does — abort, crash, leak, hang, answer
//! garbage — happens to the child: the host notices the end or the silence of the process, turns
//! it into an error that names the source and what happened, stops and reaps the child, and goes
//! on serving and syncing other sources.
//!
//! The host side here owns one child per instance. Answers are read by a thread per child into a
//! channel, so that every call can wait with a timeout; the child's standard error is read by
//! another thread, logged line by line (bounded) and kept as a short tail for error messages.

pub mod runner;
pub mod wire;

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;
use trellis_plugin_sdk::ConnectorError;
use trellis_plugin_sdk::abi::TRELLIS_STATUS_OK;
use trellis_plugin_sdk::host::HostError;
use trellis_plugin_sdk::pb::connector as proto;
use trellis_plugin_sdk::state::State;

use self::wire::{FrameError, Op};

/// The runner's file name, looked for next to the running executable.
pub const RUNNER_NAME: &str = "trellis-plugin-runner";

/// How isolated plugins are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationSettings {
    /// The runner executable.
    pub runner: PathBuf,
    /// How long one call (check, one batch of a read, ...) may take before the child is killed.
    pub call_timeout: Duration,
    /// The child's address-space ceiling in MiB; 0 for none.
    pub memory_mb: u64,
}

impl Default for IsolationSettings {
    fn default() -> Self {
        Self {
            runner: default_runner(),
            call_timeout: Duration::from_secs(120),
            memory_mb: 1024,
        }
    }
}

/// `trellis-plugin-runner` next to the running executable (where cargo and packages put it).
pub fn default_runner() -> PathBuf {
    let name = format!("{RUNNER_NAME}{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Lines of a child's standard error logged at most; the rest are only kept in the tail.
const LOGGED_LINES: usize = 200;
/// Bytes of a child's standard error kept for error messages.
const TAIL_BYTES: usize = 8 * 1024;
/// How long a child gets to exit on its own once its input is closed, or to be reaped.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The end of a child's standard error.
#[derive(Debug, Default)]
struct StderrTail {
    bytes: VecDeque<u8>,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(TAIL_BYTES);
        self.bytes.drain(..excess);
    }

    fn text(&self) -> String {
        let (front, back) = self.bytes.as_slices();
        let mut bytes = front.to_vec();
        bytes.extend_from_slice(back);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The last lines of `text`, at most `max` characters, for an error message.
fn last_words(text: &str, max: usize) -> String {
    // A Rust panic or abort may add a backtrace; the message before it is what says why.
    let text = text.split("stack backtrace:").next().unwrap_or(text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut words = lines[lines.len().saturating_sub(3)..].join(" | ");
    if words.chars().count() > max {
        let skip = words.chars().count() - max;
        words = format!("…{}", words.chars().skip(skip).collect::<String>());
    }
    words
}

/// One running child: its pipes, its reader threads, and what became of it.
struct Process {
    /// Who the child runs for, in log fields and thread names: a source id, or `probe`.
    label: String,
    /// Who the child runs for, in error messages: `source "id"`, or `library lib….so` (a probe).
    subject: String,
    settings: IsolationSettings,
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    answers: Mutex<Receiver<Result<Vec<u8>, FrameError>>>,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_reader: Mutex<Option<JoinHandle<()>>>,
    cancelled: AtomicBool,
    /// Set once the child is dead or stopped: every later call fails with it.
    ended: Mutex<Option<HostError>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn copy_error(error: &HostError) -> HostError {
    match error {
        HostError::Plugin(error) => HostError::Plugin(error.clone()),
        other => HostError::Protocol(match other {
            HostError::Protocol(text) => text.clone(),
            other => other.to_string(),
        }),
    }
}

#[cfg(unix)]
fn signal_of(status: &ExitStatus) -> Option<(String, &'static str)> {
    use std::os::unix::process::ExitStatusExt as _;
    let number = status.signal()?;
    let name = nix::sys::signal::Signal::try_from(number).map_or_else(
        |_| format!("signal {number}"),
        |signal| signal.as_str().to_owned(),
    );
    let meaning = match name.as_str() {
        "SIGSEGV" => "an invalid memory access",
        "SIGBUS" => "a bus error",
        "SIGABRT" => "it aborted",
        "SIGILL" => "an illegal instruction",
        "SIGFPE" => "an arithmetic fault",
        "SIGKILL" => "it was killed",
        "SIGTERM" => "it was terminated",
        _ => "a fatal signal",
    };
    Some((name, meaning))
}

#[cfg(not(unix))]
fn signal_of(_status: &ExitStatus) -> Option<(String, &'static str)> {
    None
}

impl Process {
    fn spawn(
        library: &Path,
        label: &str,
        subject: &str,
        settings: &IsolationSettings,
    ) -> Result<Self, HostError> {
        let mut child = Command::new(&settings.runner)
            .arg("--library")
            .arg(library)
            .arg("--memory-mb")
            .arg(settings.memory_mb.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| {
                HostError::Plugin(ConnectorError::system(format!(
                    "cannot start the plugin runner {} for {subject} ({error}); install {RUNNER_NAME} next to the trellis binary or set plugins.runner",
                    settings.runner.display()
                )))
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, answers) = std::sync::mpsc::channel();
        let reader_name = format!("plugin-answers-{label}");
        let spawned = std::thread::Builder::new()
            .name(reader_name)
            .spawn(move || {
                let mut stdout = BufReader::with_capacity(64 * 1024, stdout);
                loop {
                    let frame = wire::read_frame(&mut stdout);
                    let stop = frame.is_err();
                    if sender.send(frame).is_err() || stop {
                        return;
                    }
                }
            });
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let stderr_reader = {
            let tail = Arc::clone(&tail);
            let label = label.to_owned();
            std::thread::Builder::new()
                .name(format!("plugin-stderr-{label}"))
                .spawn(move || read_stderr(stderr, &tail, &label))
        };
        let (Ok(_), Ok(stderr_reader)) = (spawned, stderr_reader) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HostError::Plugin(ConnectorError::system(format!(
                "cannot start the threads that read the plugin process of {subject}"
            ))));
        };
        tracing::debug!(source = %label, pid = child.id(), library = %library.display(), "plugin process started");
        Ok(Self {
            label: label.to_owned(),
            subject: subject.to_owned(),
            settings: settings.clone(),
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            answers: Mutex::new(answers),
            stderr: tail,
            stderr_reader: Mutex::new(Some(stderr_reader)),
            cancelled: AtomicBool::new(false),
            ended: Mutex::new(None),
        })
    }

    /// Waits for the child's first frame: whether it loaded the library.
    fn ready(&self) -> Result<(), HostError> {
        let (status, message) = self.receive("loading the library")?;
        if status == TRELLIS_STATUS_OK && message == wire::PROTOCOL {
            return Ok(());
        }
        if status == TRELLIS_STATUS_OK {
            self.stop();
            return Err(self.fail(HostError::Protocol(format!(
                "the plugin runner {} speaks {:?}, and this server speaks {:?}; install the trellis-plugin-runner built with this trellis",
                self.settings.runner.display(),
                String::from_utf8_lossy(&message),
                String::from_utf8_lossy(wire::PROTOCOL)
            ))));
        }
        Err(self.fail(self.error_of(status, &message, "loading the library")))
    }

    /// Sends one request and waits (bounded) for its answer: (status, message).
    fn call(&self, op: Op, request: &[u8]) -> Result<(i32, Vec<u8>), HostError> {
        if let Some(error) = lock(&self.ended).as_ref() {
            return Err(copy_error(error));
        }
        let written = match lock(&self.stdin).as_mut() {
            Some(stdin) => wire::write_frame(stdin, &[op as u8], request).is_ok(),
            None => false,
        };
        if !written {
            // The child closed its input: it is gone or going.
            return Err(self.died(op.name()));
        }
        self.receive(op.name())
    }

    fn receive(&self, what: &str) -> Result<(i32, Vec<u8>), HostError> {
        let answer = lock(&self.answers).recv_timeout(self.settings.call_timeout);
        match answer {
            Ok(Ok(frame)) => match wire::split_answer(&frame) {
                Ok((status, message)) => Ok((status, message.to_vec())),
                Err(error) => Err(self.broke_protocol(what, &error.to_string())),
            },
            Ok(Err(FrameError::End | FrameError::Truncated(_)))
            | Err(RecvTimeoutError::Disconnected) => Err(self.died(what)),
            Ok(Err(error)) => Err(self.broke_protocol(what, &error.to_string())),
            Err(RecvTimeoutError::Timeout) => {
                let error = HostError::Plugin(ConnectorError::system(format!(
                    "the plugin process of {} did not answer {what} within {} s (plugins.isolated_call_timeout_seconds); it was stopped{}",
                    self.subject,
                    self.settings.call_timeout.as_secs_f64(),
                    self.last_words_suffix(),
                )));
                self.stop();
                Err(self.fail(error))
            }
        }
    }

    fn last_words_suffix(&self) -> String {
        let words = last_words(&lock(&self.stderr).text(), 600);
        if words.is_empty() {
            String::new()
        } else {
            format!("; its last output: {words}")
        }
    }

    /// Records `error` as the end of this child (logged once) and returns it.
    fn fail(&self, error: HostError) -> HostError {
        let mut ended = lock(&self.ended);
        if ended.is_none() {
            tracing::warn!(source = %self.label, %error, "plugin process stopped");
            *ended = Some(copy_error(&error));
        }
        error
    }

    fn broke_protocol(&self, what: &str, problem: &str) -> HostError {
        self.stop();
        self.fail(HostError::Protocol(format!(
            "the plugin process of {} answered {what} with bytes that are not a valid frame ({problem}); it was stopped",
            self.subject
        )))
    }

    /// Kills and reaps the child.
    fn stop(&self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Waits (bounded) for a child that stopped answering to exit, then says how it ended.
    fn died(&self, what: &str) -> HostError {
        let status = self.reap();
        self.finish_stderr();
        if self.cancelled.load(Ordering::SeqCst) {
            return self.fail(HostError::Plugin(ConnectorError::cancelled()));
        }
        let stderr = lock(&self.stderr).text();
        let out_of_memory = stderr.contains("memory allocation of")
            || stderr.contains("out of memory")
            || stderr.contains("Cannot allocate memory");
        let how = match status.as_ref().and_then(signal_of) {
            Some((name, meaning)) => format!("died with signal {name} ({meaning})"),
            None => match status.and_then(|status| status.code()) {
                Some(code) => format!("exited with status {code}"),
                None => "ended in an unknown way".to_owned(),
            },
        };
        let message = if out_of_memory && self.settings.memory_mb > 0 {
            format!(
                "the plugin process of {} ran out of memory during {what} (its limit is {} MiB; raise plugins.isolated_memory_mb if the connector needs more) and {how}{}",
                self.subject,
                self.settings.memory_mb,
                self.last_words_suffix()
            )
        } else {
            format!(
                "the plugin process of {} {how} during {what}{}",
                self.subject,
                self.last_words_suffix()
            )
        };
        self.fail(HostError::Plugin(ConnectorError::system(message)))
    }

    fn reap(&self) -> Option<ExitStatus> {
        let mut child = lock(&self.child);
        let until = Instant::now() + EXIT_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
                Err(_) => return None,
            }
        }
    }

    /// Lets the standard-error reader take the last bytes (bounded: a grandchild may hold the
    /// pipe open).
    fn finish_stderr(&self) {
        let Some(reader) = lock(&self.stderr_reader).take() else {
            return;
        };
        let until = Instant::now() + Duration::from_millis(500);
        while !reader.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _ = lock(&self.child).kill();
    }

    /// The error a non-OK answer stands for.
    fn error_of(&self, status: i32, message: &[u8], what: &str) -> HostError {
        let decoded = (!message.is_empty())
            .then(|| proto::ConnectorError::decode(message).ok())
            .flatten();
        if status == runner::STATUS_RUNNER_ERROR {
            let problem = decoded.map_or_else(|| "no message".to_owned(), |error| error.message);
            self.stop();
            return self.fail(HostError::Protocol(format!(
                "the plugin process of {} failed {what}: {problem}; it was stopped",
                self.subject
            )));
        }
        HostError::Plugin(ConnectorError::from_proto(status, decoded))
    }

    /// The answer to `op` decoded as `M`, or the error it stands for.
    fn request<M: Message + Default>(&self, op: Op, request: &[u8]) -> Result<M, HostError> {
        let (status, message) = self.call(op, request)?;
        if status != TRELLIS_STATUS_OK {
            return Err(self.error_of(status, &message, op.name()));
        }
        M::decode(message.as_slice()).map_err(|error| {
            self.stop();
            self.fail(HostError::Protocol(format!(
                "the plugin process of {} answered {} with bytes that do not decode ({error}); it was stopped",
                self.subject,
                op.name()
            )))
        })
    }
}

fn read_stderr(stderr: impl Read, tail: &Mutex<StderrTail>, label: &str) {
    let mut stderr = BufReader::new(stderr);
    let mut chunk = [0_u8; 4096];
    let mut line = Vec::new();
    let mut logged = 0;
    loop {
        let read = match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        lock(tail).push(&chunk[..read]);
        for &byte in &chunk[..read] {
            if byte != b'\n' && line.len() < 4096 {
                line.push(byte);
                continue;
            }
            if byte == b'\n' {
                if logged < LOGGED_LINES {
                    tracing::info!(source = %label, line = %String::from_utf8_lossy(&line), "plugin process output");
                } else if logged == LOGGED_LINES {
                    tracing::info!(source = %label, "plugin process output: further lines are not logged");
                }
                logged += 1;
                line.clear();
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Closing its input tells a healthy runner to exit; one that does not is killed. Either
        // way it is reaped here: no zombie outlives its instance.
        lock(&self.stdin).take();
        let _ = self.reap();
        self.finish_stderr();
    }
}

/// A connector instance living in a child process.
#[derive(Clone)]
pub struct IsolatedInstance {
    process: Arc<Process>,
}

impl std::fmt::Debug for IsolatedInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedInstance")
            .field("source", &self.process.label)
            .finish_non_exhaustive()
    }
}

impl IsolatedInstance {
    /// Starts a runner for `library` (a path the registry loaded from a configured folder) on
    /// behalf of source `label`, and waits until it has loaded the library.
    pub fn start(
        library: &Path,
        label: &str,
        settings: &IsolationSettings,
    ) -> Result<Self, HostError> {
        let subject = format!("source {label:?}");
        let process = Arc::new(Process::spawn(library, label, &subject, settings)?);
        process.ready()?;
        Ok(Self { process })
    }

    /// Reads the spec of `library` in a runner of its own, stopped right after: the registry's
    /// start-up probe. A library that crashes, hangs or answers garbage while it loads or in its
    /// `spec` takes down only that runner, and the error says which library and how (signal,
    /// exit status, timeout).
    pub fn probe_spec(
        library: &Path,
        settings: &IsolationSettings,
    ) -> Result<proto::SpecResponse, HostError> {
        let name = library.file_name().map_or_else(
            || library.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let subject = format!("library {name}");
        let process = Arc::new(Process::spawn(library, "probe", &subject, settings)?);
        process.ready()?;
        Self { process }.spec()
    }

    pub fn spec(&self) -> Result<proto::SpecResponse, HostError> {
        self.process.request(Op::Spec, &[])
    }

    pub fn check(&self, config_json: &str) -> Result<String, HostError> {
        let request = proto::CheckRequest {
            config_json: config_json.to_owned(),
        };
        let answer: proto::CheckResponse =
            self.process.request(Op::Check, &request.encode_to_vec())?;
        Ok(answer.message)
    }

    pub fn discover(&self, config_json: &str) -> Result<Vec<proto::StreamSpec>, HostError> {
        let request = proto::DiscoverRequest {
            config_json: config_json.to_owned(),
        };
        let answer: proto::DiscoverResponse = self
            .process
            .request(Op::Discover, &request.encode_to_vec())?;
        Ok(answer.streams)
    }

    pub fn read(&self, config_json: &str, state: &State) -> Result<IsolatedRead, HostError> {
        let request = proto::ReadRequest {
            config_json: config_json.to_owned(),
            states: state.to_proto(),
        };
        let _: () = self
            .process
            .request::<()>(Op::ReadOpen, &request.encode_to_vec())?;
        Ok(IsolatedRead {
            process: Arc::clone(&self.process),
            finished: false,
        })
    }
}

/// An open read in a child process.
pub struct IsolatedRead {
    process: Arc<Process>,
    finished: bool,
}

impl std::fmt::Debug for IsolatedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedRead")
            .field("source", &self.process.label)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl IsolatedRead {
    pub fn next_batch(&mut self) -> Result<Option<proto::ReadBatch>, HostError> {
        if self.finished {
            return Ok(None);
        }
        let batch: proto::ReadBatch = self.process.request(Op::ReadNext, &[])?;
        if batch.end {
            self.finished = true;
        }
        Ok(Some(batch))
    }

    pub fn canceller(&self) -> IsolatedCanceller {
        IsolatedCanceller(Arc::clone(&self.process))
    }
}

/// Cancels an isolated read from any thread by killing its child; the read then ends with a
/// cancelled error, as an in-process read does.
#[derive(Clone)]
pub struct IsolatedCanceller(Arc<Process>);

impl std::fmt::Debug for IsolatedCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IsolatedCanceller")
    }
}

impl IsolatedCanceller {
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut tail = StderrTail::default();
        tail.push(&vec![b'a'; TAIL_BYTES]);
        tail.push(b"\nthe end\n");
        assert_eq!(tail.bytes.len(), TAIL_BYTES);
        assert!(tail.text().ends_with("the end\n"));
    }

    #[test]
    fn last_words_are_the_last_lines_bounded() {
        assert_eq!(
            last_words("one\n\ntwo\nthree\nfour\n", 100),
            "two | three | four"
        );
        let long = last_words(&"x".repeat(1000), 10);
        assert_eq!(long.chars().count(), 11);
        assert!(long.starts_with('…'));
        assert_eq!(last_words("", 10), "");
        assert_eq!(
            last_words(
                "memory allocation of 8 bytes failed\nstack backtrace:\n  0: main\n",
                100
            ),
            "memory allocation of 8 bytes failed"
        );
    }
}
