#!/usr/bin/env bash
# Regenerates the client stubs of every language from proto/ with the buf CLI and each
# ecosystem's standard generators (installed locally, at pinned versions, by each client's
# install-generators.sh). The generated code is committed; CI runs this and fails if anything
# changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .ci/node_modules/.bin/buf ]; then
  npm ci --prefix .ci --silent --no-audit --no-fund
fi
for client in python typescript go; do
  echo "==> generating the $client client"
  "clients/$client/generate.sh"
done
