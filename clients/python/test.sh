#!/usr/bin/env bash
# Runs the Python client's checks: ruff (format and lint) and mypy --strict over the client, its
# tests and examples, then the pytest suite against the real `trellis serve` (TRELLIS_BIN, or
# target/debug/trellis, which is built with cargo when it is missing). The server loads the
# template connector (plugins/template) from TRELLIS_PLUGIN_DIR, a folder holding
# libtrellis_connector_template.so; without it the suite copies that library from next to the
# binary or from target/debug (or target/debug/deps), built with
# `cargo build -p trellis-connector-template` when missing. Installs the pinned tools and the
# client (editable) into clients/python/.venv on first use. Arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements-dev.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$stamp" "$here/requirements-dev.txt" 2>/dev/null \
  || ! cmp -s "$venv/.pyproject.toml" "$here/pyproject.toml" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements-dev.txt" -e "$here"
  cp "$here/requirements-dev.txt" "$stamp"
  cp "$here/pyproject.toml" "$venv/.pyproject.toml"
fi
if [ -z "${TRELLIS_BIN:-}" ] && [ ! -x "$root/target/debug/trellis" ]; then
  (cd "$root" && cargo build --bin trellis)
fi
cd "$here"
"$venv/bin/ruff" format --check --quiet .
"$venv/bin/ruff" check --quiet .
"$venv/bin/mypy"
"$venv/bin/pytest" "$@"
