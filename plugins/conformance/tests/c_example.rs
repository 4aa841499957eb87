//! The connector written in C (plugins/c-example), compiled here with the system C compiler
//! against the generated header only, passes the conformance kit: the contract is not tied to
//! one compiler. The panic rule is skipped (C cannot panic); every other rule runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use trellis_conformance::{Options, Outcome, library_file_name, run};

fn compile(out_dir: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let library = out_dir.join(library_file_name("trellis_c_example"));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let output = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-I",
        ])
        .arg(root.join("plugins/sdk/include"))
        .arg(root.join("plugins/c-example/connector.c"))
        .arg("-o")
        .arg(&library)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the C compiler {compiler:?}: {error}"));
    assert!(
        output.status.success(),
        "the C example does not compile:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    library
}

#[test]
fn the_c_connector_passes_the_kit() {
    let dir = tempfile::tempdir().unwrap();
    let library = compile(dir.path());
    let report = run(&Options::new(&library, r#"{"count": 95}"#));
    println!("{report}");
    assert!(report.passed(), "{report}");
    let Some(Outcome::Passed(read)) = report.outcome("full read") else {
        panic!("{report}");
    };
    assert!(
        read.starts_with("95 valid records, 10 checkpoints"),
        "{read}"
    );
    assert!(
        matches!(report.outcome("panic"), Some(Outcome::Skipped(_))),
        "{report}"
    );
    for rule in [
        "version refusal",
        "check bad config",
        "resume",
        "final state",
        "cancel",
    ] {
        assert!(
            matches!(report.outcome(rule), Some(Outcome::Passed(_))),
            "{rule}: {report}"
        );
    }
}
