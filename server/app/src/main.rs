//! The `trellis` binary: the service (`serve`), the client commands community managers use,
//! and the evaluation harness (`eval`).

mod cli;
mod cli_assets;
mod cli_feedback;
mod cli_mix;
mod cli_model;
mod cli_people;
mod cli_plan;
mod cli_prospects;
mod config;
mod dense;
mod eval;
mod jsonl;
mod keys_cli;
mod report;
mod serve;
mod sources_cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    #[cfg(unix)]
    if !args.is_service() {
        // Rust ignores SIGPIPE, so a print to a closed pipe would panic; a command's output
        // piped into `head` ends the command quietly instead, as it would any Unix tool.
        // SAFETY: set before any other thread starts; the default action needs no handler.
        #[allow(
            unsafe_code,
            reason = "restoring a signal's default action, before any thread starts"
        )]
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    // The engine's parallel work runs on rayon's global pool. Started lazily, its threads would
    // carry the name of whichever thread first used it, which misleads profiles and `top -H`.
    if let Err(error) = rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("trellis-rayon-{index}"))
        .build_global()
    {
        eprintln!("error: cannot start the worker threads: {error}");
        return std::process::ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
