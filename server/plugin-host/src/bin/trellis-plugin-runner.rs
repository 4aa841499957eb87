//! `trellis-plugin-runner`: the child process an isolated source's connector plugin runs in. The
//! server starts one per instance and speaks to it over its standard input and output; see
//! `trellis_plugin_host::isolation`. Not meant to be run by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use trellis_plugin_host::isolation::runner::{RunnerOptions, run};

/// Runs one connector plugin for the Trellis server, answering its requests on standard input
/// and output.
#[derive(Debug, Parser)]
#[command(name = "trellis-plugin-runner", version)]
struct Args {
    /// The plugin library to load (one the server loaded from a configured plugin folder).
    #[arg(long)]
    library: PathBuf,
    /// The address-space limit of this process in MiB; 0 for none.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let code = run(&RunnerOptions {
        library: args.library,
        memory_mb: args.memory_mb,
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
