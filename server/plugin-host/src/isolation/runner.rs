//! The runner: the body of `trellis-plugin-runner`, the child process an isolated source's plugin
//! runs in. It loads one library with the SDK's loader (the same handshake as in the host),
//! creates one instance, and answers the host's frames (see [`super::wire`]) until its standard
//! input ends. Whatever the plugin does to this process — abort, crash, leak, hang — the host
//! sees as the end or the silence of this process, and stays up.
//!
//! Before the plugin is loaded, the runner:
//! - caps its own address space (`RLIMIT_AS`), so a leaking plugin fails an allocation and dies
//!   instead of growing until the machine's out-of-memory killer picks a victim;
//! - asks to be killed when the host goes away (`PR_SET_PDEATHSIG` on Linux), so that a plugin
//!   stuck in a call is not left behind by a host killed with SIGKILL;
//! - keeps the protocol's pipes to itself: the plugin's standard output goes to standard error
//!   (which the host captures) and its standard input reads nothing, so a plugin that prints
//!   cannot corrupt the frames; the protocol's own descriptors are close-on-exec, so processes
//!   the plugin starts do not inherit them.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use trellis_plugin_sdk::ConnectorError;
use trellis_plugin_sdk::abi::TRELLIS_STATUS_OK;
use trellis_plugin_sdk::host::{HostError, Instance, Plugin, ReadSession};
use trellis_plugin_sdk::pb::connector as proto;
use trellis_plugin_sdk::state::State;

use super::wire::{self, FrameError, Op};

/// What the runner is told on its command line.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The library the host's registry loaded from a configured plugin folder.
    pub library: PathBuf,
    /// The address-space ceiling in MiB; 0 for none.
    pub memory_mb: u64,
}

/// A status the ABI does not use: the runner's own protocol error (a frame it cannot serve). The
/// host treats it like a system error and stops the runner.
pub const STATUS_RUNNER_ERROR: i32 = 100;

/// Runs the runner over this process's standard input and output; returns the exit code.
pub fn run(options: &RunnerOptions) -> i32 {
    if let Err(problem) = prepare(options) {
        eprintln!("trellis-plugin-runner: {problem}");
        return 2;
    }
    let (input, output) = match protocol_pipes() {
        Ok(pipes) => pipes,
        Err(problem) => {
            eprintln!("trellis-plugin-runner: {problem}");
            return 2;
        }
    };
    serve(
        &options.library,
        &mut BufReader::new(input),
        &mut BufWriter::new(output),
    )
}

#[cfg(target_os = "linux")]
fn die_with_parent() -> Result<(), String> {
    let host = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|error| format!("cannot ask to die with the host (prctl): {error}"))?;
    // The host may have gone just before the call above: then we were handed to another parent.
    if nix::unistd::getppid() != host {
        return Err("the host is gone".to_owned());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent() -> Result<(), String> {
    Ok(())
}

fn prepare(options: &RunnerOptions) -> Result<(), String> {
    die_with_parent()?;
    #[cfg(unix)]
    if options.memory_mb > 0 {
        use nix::sys::resource::{Resource, setrlimit};
        let bytes = options.memory_mb.saturating_mul(1024 * 1024);
        setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(|error| {
            format!(
                "cannot set the memory limit of {} MiB (setrlimit RLIMIT_AS): {error}",
                options.memory_mb
            )
        })?;
    }
    Ok(())
}

/// Moves the protocol off file descriptors 0 and 1: returns private copies of them, then points
/// 0 at /dev/null and 1 at standard error, where whatever the plugin prints ends up.
#[cfg(unix)]
fn protocol_pipes() -> Result<(File, File), String> {
    use std::os::fd::AsFd as _;
    // Duplicated close-on-exec: a process the plugin starts must not hold the protocol's pipes
    // open, or the host would not see this process end.
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| format!("cannot keep the request pipe: {error}"))?;
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| format!("cannot keep the answer pipe: {error}"))?;
    let null =
        File::open("/dev/null").map_err(|error| format!("cannot open /dev/null: {error}"))?;
    nix::unistd::dup2_stdin(&null)
        .map_err(|error| format!("cannot detach standard input: {error}"))?;
    nix::unistd::dup2_stdout(std::io::stderr())
        .map_err(|error| format!("cannot send standard output to standard error: {error}"))?;
    Ok((File::from(input), File::from(output)))
}

#[cfg(not(unix))]
fn protocol_pipes() -> Result<(File, File), String> {
    Err("isolation mode needs a Unix system".to_owned())
}

fn answer(output: &mut impl Write, status: i32, message: &[u8]) -> bool {
    wire::write_frame(output, &status.to_le_bytes(), message).is_ok()
}

fn answer_error(output: &mut impl Write, error: &HostError) -> bool {
    let (status, message) = match error {
        HostError::Plugin(error) => (error.kind.status(), error.to_proto()),
        // The plugin broke the protocol (an answer that does not decode) or could not load: a
        // runner error, after which the host stops this process.
        HostError::Protocol(problem) => (
            STATUS_RUNNER_ERROR,
            ConnectorError::system(problem.clone()).to_proto(),
        ),
        other => (
            STATUS_RUNNER_ERROR,
            ConnectorError::system(other.to_string()).to_proto(),
        ),
    };
    answer(output, status, &message.encode_to_vec())
}

fn reply<M: Message>(output: &mut impl Write, outcome: Result<M, HostError>) -> bool {
    match outcome {
        Ok(message) => answer(output, TRELLIS_STATUS_OK, &message.encode_to_vec()),
        Err(error) => answer_error(output, &error),
    }
}

fn decode<M: Message + Default>(bytes: &[u8], op: Op) -> Result<M, HostError> {
    M::decode(bytes).map_err(|error| {
        HostError::Protocol(format!(
            "the host's {} request does not decode: {error}",
            op.name()
        ))
    })
}

/// Loads the library, says whether that worked (the first answer frame), then serves requests
/// until the input ends. Returns the exit code.
pub fn serve(library: &Path, input: &mut impl std::io::Read, output: &mut impl Write) -> i32 {
    let instance = match Plugin::load(library).and_then(|plugin| plugin.instance()) {
        Ok(instance) => {
            if !answer(output, TRELLIS_STATUS_OK, wire::PROTOCOL) {
                return 0;
            }
            instance
        }
        Err(error) => {
            answer_error(output, &error);
            return 3;
        }
    };
    let mut session: Option<ReadSession> = None;
    loop {
        let frame = match wire::read_frame(input) {
            Ok(frame) => frame,
            Err(FrameError::End) => return 0,
            Err(error) => {
                eprintln!("trellis-plugin-runner: {error}");
                return 4;
            }
        };
        let Some((&op, message)) = frame.split_first() else {
            eprintln!("trellis-plugin-runner: an empty request frame");
            return 4;
        };
        let Some(op) = Op::from_byte(op) else {
            eprintln!("trellis-plugin-runner: unknown operation {op}");
            return 4;
        };
        let delivered = match op {
            Op::Spec => reply(output, instance.spec()),
            Op::Check => reply(
                output,
                decode::<proto::CheckRequest>(message, op)
                    .and_then(|request| instance.check(&request.config_json))
                    .map(|message| proto::CheckResponse { message }),
            ),
            Op::Discover => reply(
                output,
                decode::<proto::DiscoverRequest>(message, op)
                    .and_then(|request| instance.discover(&request.config_json))
                    .map(|streams| proto::DiscoverResponse { streams }),
            ),
            Op::ReadOpen => {
                session = None;
                let opened = open(&instance, message);
                match opened {
                    Ok(opened) => {
                        session = Some(opened);
                        answer(output, TRELLIS_STATUS_OK, &[])
                    }
                    Err(error) => answer_error(output, &error),
                }
            }
            Op::ReadNext => match session.as_mut() {
                Some(open) => match open.next_batch() {
                    Ok(batch) => reply(
                        output,
                        Ok::<_, HostError>(batch.unwrap_or(proto::ReadBatch {
                            items: Vec::new(),
                            end: true,
                        })),
                    ),
                    Err(error) => answer_error(output, &error),
                },
                None => answer_error(
                    output,
                    &HostError::Protocol("read_next without an open reader".to_owned()),
                ),
            },
            Op::ReadClose => {
                session = None;
                answer(output, TRELLIS_STATUS_OK, &[])
            }
        };
        if !delivered {
            // The host closed its end: nobody is listening any more.
            return 0;
        }
    }
}

fn open(instance: &Instance, message: &[u8]) -> Result<ReadSession, HostError> {
    let request: proto::ReadRequest = decode(message, Op::ReadOpen)?;
    let mut state = State::new();
    for stream in &request.states {
        state.set(&stream.stream, &stream.state_json);
    }
    instance.read(&request.config_json, &state)
}
