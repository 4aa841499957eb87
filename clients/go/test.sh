#!/usr/bin/env bash
# Runs the Go client's suite against the real server. The suite starts `trellis serve` itself:
# TRELLIS_BIN, else target/debug/trellis of the repository, built with cargo when missing. The
# server loads the template connector (plugins/template) from TRELLIS_PLUGIN_DIR, a folder holding
# libtrellis_connector_template.so; without it the suite copies that library from next to the
# binary or from target/debug (or its deps/), built with
# `cargo build -p trellis-connector-template` when missing. go test
# fetches the module's dependencies (pinned by go.sum); nothing else is installed. The race
# detector is on where cgo can build it.
set -euo pipefail
cd "$(dirname "$0")"
race=()
if [ "$(go env CGO_ENABLED)" = 1 ] && command -v "$(go env CC)" >/dev/null 2>&1; then
  race=(-race)
fi
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted; run gofmt -w clients/go" >&2
  exit 1
fi
go vet ./...
go test -count=1 "${race[@]}" ./...
