#!/usr/bin/env bash
# Regenerates src/gen from proto/ (and google/rpc/error_details.proto) with the buf CLI pinned in
# .ci/package.json and the local protoc-gen-es pinned in package-lock.json. Regenerating an
# unchanged API changes nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

"$here/install-generators.sh"
cd "$root"
if [ ! -x .ci/node_modules/.bin/buf ]; then
  npm ci --prefix .ci --silent --no-audit --no-fund
fi
.ci/node_modules/.bin/buf generate --template clients/typescript/buf.gen.yaml
