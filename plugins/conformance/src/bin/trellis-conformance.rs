//! `trellis-conformance`: runs the conformance kit against a connector plugin library and prints
//! a pass/fail report. Exits 0 when every rule passed (skips allowed), 1 when one failed, 2 when
//! the inputs could not be read.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Checks a Trellis connector plugin against the plugin contract.
#[derive(Debug, Parser)]
#[command(name = "trellis-conformance", version)]
struct Args {
    /// The plugin library, e.g. target/debug/libtrellis_connector_template.so.
    #[arg(long, value_name = "LIBRARY")]
    plugin: PathBuf,
    /// A JSON file with a config that works (the check must accept it, the read must produce
    /// records).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A JSON file with a config the plugin must refuse with a config error; by default one is
    /// derived from the schema.
    #[arg(long, value_name = "FILE")]
    bad_config: Option<PathBuf>,
    /// Resume from at most this many checkpoints (spread over the read); all by default.
    #[arg(long, value_name = "N")]
    max_resumes: Option<usize>,
    /// How long a cancelled read may take to stop, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    cancel_bound_ms: u64,
    /// The source id to key records with.
    #[arg(long, default_value = "conformance")]
    source: String,
    /// Let the plugin reach loopback, private and link-local addresses (a development server
    /// on localhost), as a server with `[egress] allow_private = true` would.
    #[arg(long)]
    allow_private_network: bool,
    /// An address, network or host name the plugin may reach although it is private, as in
    /// `[egress] allow`; may be repeated.
    #[arg(long, value_name = "HOST")]
    allow: Vec<String>,
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = (|| -> anyhow::Result<trellis_conformance::Options> {
        let mut options =
            trellis_conformance::Options::new(&args.plugin, read(&args.config, "config")?);
        options.bad_config_json = args
            .bad_config
            .as_ref()
            .map(|path| read(path, "bad config"))
            .transpose()?;
        options.max_resumes = args.max_resumes.unwrap_or(usize::MAX);
        options.cancel_bound = Duration::from_millis(args.cancel_bound_ms);
        options.source.clone_from(&args.source);
        options.egress = trellis_plugin_sdk::egress::EgressPolicy {
            allow_private: args.allow_private_network,
            allow: args.allow.clone(),
        };
        options
            .egress
            .checked()
            .map_err(|problem| anyhow::anyhow!("--allow: {problem}"))?;
        Ok(options)
    })();
    let options = match options {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let report = trellis_conformance::run(&options);
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
