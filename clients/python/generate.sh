#!/usr/bin/env bash
# Regenerates the Python stubs of proto/trellis/v1 into clients/python/src/trellis/v1 with buf and
# the pinned local generators. The output is committed; rerunning must change nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$here/install-generators.sh"
buf="$root/.ci/node_modules/.bin/buf"
if [ ! -x "$buf" ]; then
  npm ci --prefix "$root/.ci" --no-audit --no-fund --loglevel=error
fi
cd "$root"
# Everything generated under src/trellis goes first, so a proto removed or left out of the template
# leaves no stale module behind.
find clients/python/src/trellis -name '*_pb2*.py' -delete -o -name '*_pb2*.pyi' -delete
"$buf" generate --template clients/python/buf.gen.yaml
