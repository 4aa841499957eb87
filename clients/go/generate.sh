#!/usr/bin/env bash
# Regenerates the Go stubs in clients/go/gen from proto/: installs the pinned plugins, then runs buf
# with this folder's template from the repository root. Regenerating an unchanged API changes nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

"$here/install-generators.sh"
cd "$root"
if [ ! -x .ci/node_modules/.bin/buf ]; then
  npm ci --prefix .ci --silent --no-audit --no-fund
fi
.ci/node_modules/.bin/buf generate --template clients/go/buf.gen.yaml
