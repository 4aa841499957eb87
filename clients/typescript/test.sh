#!/usr/bin/env bash
# Runs the TypeScript client's suite against the real server: installs the pinned packages
# (npm ci, which also builds dist/), compiles the tests and examples, and runs them with the
# Node test runner. The server binary is TRELLIS_BIN, else <repo>/target/debug/trellis, which is
# built first when missing. The server loads the template connector (plugins/template) from
# TRELLIS_PLUGIN_DIR, a folder holding libtrellis_connector_template.so; without it the suite
# copies that library from next to the binary or from <repo>/target/debug (or its deps/), built
# with `cargo build -p trellis-connector-template` when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

npm ci --no-audit --no-fund --silent
export TRELLIS_BIN="${TRELLIS_BIN:-$root/target/debug/trellis}"
if [ ! -x "$TRELLIS_BIN" ]; then
  (cd "$root" && cargo build --bin trellis)
fi
rm -rf build
node_modules/.bin/tsc -p tsconfig.test.json
node --test build/test/*.test.js
