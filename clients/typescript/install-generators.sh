#!/usr/bin/env bash
# Installs the TypeScript generator (protoc-gen-es, pinned in package-lock.json) and the
# google.rpc protos it reads, locally in clients/typescript/node_modules. Idempotent: does
# nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")"

pinned=$(node -p 'require("./package-lock.json").packages["node_modules/@bufbuild/protoc-gen-es"].version')
installed=$(node_modules/.bin/protoc-gen-es --version 2>/dev/null || true)
if [ "$installed" = "protoc-gen-es v$pinned" ] && [ -f node_modules/google-proto-files/google/rpc/error_details.proto ]; then
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --silent
