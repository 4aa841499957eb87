//! The `trellis` binary: the service (`serve`), the client commands community managers use,
//! and the evaluation harness (`eval`).

mod cli;
mod cli_assets;
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
