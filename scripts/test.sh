#!/usr/bin/env bash
# Runs every test of the repository: unit, property, snapshot, storage, end-to-end (the real
# binary over real gRPC), the evaluation against the baselines on the real dumps, and the
# Python, TypeScript and Go clients' suites against the real binary.
# The Python package bm25s (the independent BM25 baseline) is installed when missing; each
# client's script installs its own pinned dependencies (pip into a venv, npm ci, go modules).
set -euo pipefail
cd "$(dirname "$0")/.."

export TRELLIS_SHARED_DATA="${TRELLIS_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
if [ ! -d "$TRELLIS_SHARED_DATA" ]; then
  echo "note: no shared data at $TRELLIS_SHARED_DATA; tests that need the real dumps will say they are skipped"
fi

SECONDS=0
python=${TRELLIS_PYTHON:-python3}
if ! "$python" -c 'import bm25s' 2>/dev/null; then
  echo "==> [${SECONDS}s] installing the Python baseline (eval/requirements.txt)"
  "$python" -m pip install --quiet --disable-pip-version-check -r eval/requirements.txt
fi

# The semantic tier's tests compare the embedder with reference vectors: they need the model.
scripts/fetch-model.sh

# The end-to-end tests make cargo build every binary of the app (trellis, trellis-load) with the
# same features, so the clients below test the binary this checkout builds, never a stale one.
echo "==> [${SECONDS}s] cargo test (builds every test binary, then runs them)"
cargo test --workspace --locked
export TRELLIS_BIN="$PWD/target/debug/trellis"

# With a PostgreSQL database for tests (.ci/run starts one), the end-to-end tests run a second
# time with every server keeping its data there.
if [ -n "${TRELLIS_TEST_POSTGRES_URL:-}" ]; then
  echo "==> [${SECONDS}s] end-to-end tests again, on PostgreSQL"
  TRELLIS_TEST_STORAGE=postgres cargo test --workspace --locked --test e2e
fi

# Smoke runs of the benchmarks at a tiny size (the README says how to run them in full).
# `--workspace` keeps the feature set of the run above, so nothing is compiled twice.
echo "==> [${SECONDS}s] benchmarks at a tiny size"
TRELLIS_BENCH_SIZES=0.2% TRELLIS_BENCH_SAMPLE=3 cargo test --workspace --locked --bench people
TRELLIS_BENCH_PASSES=2 cargo test --workspace --locked --bench languages
target/debug/trellis-load --size 0.1%,0.2% --sample 3 --duration 1 --workloads suggest,match,mixed,soak \
  --report-every 0.5
if [ -n "${TRELLIS_TEST_POSTGRES_URL:-}" ]; then
  target/debug/trellis-load --size 0.1%,0.2% --sample 3 --duration 1 --workloads soak --report-every 0.5 \
    --storage postgres --postgres-url "$TRELLIS_TEST_POSTGRES_URL"
fi
for client in python typescript go; do
  echo "==> [${SECONDS}s] $client client"
  "clients/$client/test.sh"
done
