#!/usr/bin/env bash
# Installs the pinned Python code generators (grpcio-tools with its protoc, mypy-protobuf) into
# clients/python/.venv-gen, once: rerunning with the same pins does nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-gen"
stamp="$venv/.requirements-gen.txt"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements-gen.txt"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-gen.txt"
cp "$here/requirements-gen.txt" "$stamp"
