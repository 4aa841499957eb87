#!/usr/bin/env bash
# Runs the Go client's suite against the real server. The suite starts `trellis serve` itself:
# TRELLIS_BIN, else target/debug/trellis, built with cargo when missing. go test fetches the
# module's dependencies from go.sum; nothing else is installed.
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -count=1 -race ./...
