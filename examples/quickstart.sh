#!/usr/bin/env bash
# Trellis's main job on the embedded default, end to end: build, start the service on SQLite,
# load the example strategy and community, and show what Trellis recommends.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building trellis and its connector plugins"
connectors="template blog discourse mastodon slack bookmarks stackexchange"
cargo build --quiet -p trellis $(for c in $connectors; do printf -- '-p trellis-connector-%s ' "$c"; done)
trellis=target/debug/trellis

echo "==> fetching the embedding model for the semantic tier (skipped when already there)"
./scripts/fetch-model.sh >/dev/null || echo "    the model could not be fetched; Trellis runs lexical-only and says so below"

workdir=data/quickstart
rm -rf "$workdir" && mkdir -p "$workdir/plugins"
for c in $connectors; do
  cp "target/debug/libtrellis_connector_${c}.so" "$workdir/plugins/" 2>/dev/null \
    || cp "target/debug/libtrellis_connector_${c}.dylib" "$workdir/plugins/"
done
echo "==> starting the service (SQLite at $workdir/trellis.db, plugins from $workdir/plugins, logs in $workdir/server.log)"
TRELLIS__PLUGINS__DIRS="[\"$workdir/plugins\"]" \
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

echo; echo "==> the connector plugins the service loaded"
"$trellis" connectors list

echo; echo "==> the community (examples/community.jsonl), and the team blog synced through the blog plugin"
"$trellis" ingest examples/community.jsonl
"$trellis" sources create team-blog --connector blog --config '{"feeds": ["examples/team-blog.xml"]}' --name "Team blog"
"$trellis" sources sync team-blog

# With the semantic tier on, conversations are embedded in the background; wait until they are.
for _ in $(seq 1 600); do
  waiting=$("$trellis" health --json | python3 -c 'import json,sys; print(sum(w["pending_embeddings"] for w in json.load(sys.stdin)["workspaces"]))')
  [ "$waiting" = "0" ] && break
  sleep 0.5
done
"$trellis" health

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

echo; echo "==> which assets support a key message"
"$trellis" assets --facet dashboards-as-code --limit 3

echo; echo "==> who outside the community to bring in, and what to invite them with"
"$trellis" prospects --limit 3

echo; echo "==> which platform mix carries the strategic conversations, and where to put the effort"
"$trellis" mix

echo; echo "==> the next concrete actions per platform, each with its facet, why now and a draft"
"$trellis" plan --limit 5

echo; echo "==> the report for the example community"
"$trellis" report --out "$workdir/report"

echo; echo "done: the service at $addr stops as this script ends."
echo "open the report in a browser: $workdir/report/report.html (also report.md and report.json there)"
