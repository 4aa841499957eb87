#!/usr/bin/env bash
# Trellis's main job on the embedded default, end to end: build, start the service on SQLite,
# load the example strategy and community, and show what Trellis recommends.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building trellis"
cargo build --quiet --bin trellis
trellis=target/debug/trellis

workdir=data/quickstart
rm -rf "$workdir" && mkdir -p "$workdir"
echo "==> starting the service (SQLite at $workdir/trellis.db, logs in $workdir/server.log)"
"$trellis" serve --listen 127.0.0.1:0 --db "$workdir/trellis.db" >"$workdir/server.out" 2>"$workdir/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  addr=$(sed -n 's/^trellis listening on //p' "$workdir/server.out")
  [ -n "$addr" ] && break
  kill -0 $server 2>/dev/null || { cat "$workdir/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start; see $workdir/server.log"; exit 1; }
export TRELLIS_ADDR=$addr
"$trellis" health

echo; echo "==> the strategy (examples/strategy.toml)"
"$trellis" strategy put examples/strategy.toml

echo; echo "==> the community (examples/community.jsonl)"
"$trellis" ingest examples/community.jsonl

echo; echo "==> which conversations connect to the strategy, and which to nourish now"
"$trellis" conversations top --limit 5

echo; echo "==> how a new text connects to the strategy"
"$trellis" score --title "Traces stop at our message queue" \
  --text "We added OpenTelemetry to every service but the trace breaks when a message goes through the queue. Which headers carry the context?"

echo; echo "==> does the community's mission serve the strategy?"
"$trellis" audit --mission "A place where engineers learn to see inside their systems with traces, and help each other during outages."

echo; echo "==> who should be brought into a conversation (members first, with reasons)"
"$trellis" participants --conversation forum:t2 --limit 3

echo; echo "==> which discussions a member should join, and which topics they could start"
"$trellis" suggest --person forum:u-ana --limit 3

echo; echo "==> a CRM asks about one of its contacts by CRM id"
"$trellis" people match --crm-id crm-1002 --suggestions 2

echo; echo "done: the service ran at $addr; stop it with Ctrl-C or let this script end it."
