//! The C header is generated from `src/abi.rs`: this test regenerates it and fails when the
//! checked-in `include/trellis_connector.h` differs. Run with `TRELLIS_BLESS=1` to rewrite it.

use std::path::PathBuf;

#[test]
fn the_checked_in_header_matches_the_rust_definitions() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/abi.rs"))
        .generate()
        .expect("the header generates")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = crate_dir.join("include/trellis_connector.h");
    if std::env::var_os("TRELLIS_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("the header is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/trellis_connector.h is out of date with src/abi.rs; regenerate it with \
         TRELLIS_BLESS=1 cargo test -p trellis-plugin-sdk --test header"
    );
}
