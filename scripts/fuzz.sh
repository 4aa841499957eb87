#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, nightly Rust), each for a while.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default: 20 s, every target
#
# TRELLIS_FUZZ_BUILD adds cargo-fuzz build options: `.ci/run` sets `--dev --sanitizer none`, an
# unoptimised build with debug assertions (arithmetic overflow panics, so it is caught) and
# without AddressSanitizer, which takes 6 min 35 s of CPU against 12 min 40 s optimised without
# the sanitizer and 15 min 22 s with it, on two cores; it runs fewer inputs per second, which a
# ten-second smoke run can spare. The parsers are safe Rust: panics, timeouts and memory blow-ups
# are caught either way. Without it, targets build as cargo-fuzz builds them by default
# (optimised, AddressSanitizer), as a long hunt should.
#
# Each target starts from its corpus kept in the repo (fuzz/corpus/TARGET), plus seeds assembled
# here from the connectors' own test fixtures; new interesting inputs are added to the corpus
# (minimise it with `cargo +nightly fuzz cmin TARGET` before committing). A crash, a panic, a
# timeout or a blow-up in memory fails the run and leaves the input in fuzz/artifacts/TARGET;
# turn it into a regression test beside the code it broke, fix it, and keep the input in the
# corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

# Seeds from the fixtures: multi-file inputs join their files with the separator line that
# trellis_fuzz::parts splits on.
seeds=fuzz/target/seeds
rm -rf "$seeds"
sep=$'\n--next file--\n'
join() { local first=1; for file in "$@"; do [ $first -eq 1 ] || printf '%s' "$sep"; cat "$file"; first=0; done; }
seed() { mkdir -p "$seeds/$1"; }
seed blog_feed; cp plugins/blog/tests/fixtures/* "$seeds/blog_feed/"
seed bookmarks_file; cp plugins/bookmarks/tests/fixtures/* "$seeds/bookmarks_file/"
seed discourse_saved
forum=plugins/discourse/tests/fixtures/forum
join "$forum/example.org-forum-topics-2024-05-04.json" "$forum/example.org-forum-post-11-2024-05-04.json" >"$seeds/discourse_saved/forum"
seed mastodon_outbox
join plugins/mastodon/tests/fixtures/archive/actor.json plugins/mastodon/tests/fixtures/archive/outbox.json >"$seeds/mastodon_outbox/archive"
seed slack_export
export_dir=plugins/slack/tests/fixtures/export
join "$export_dir/users.json" "$export_dir/channels.json" "$export_dir/general/2024-05-01.json" >"$seeds/slack_export/export"
seed stackexchange_dump
mini=plugins/stackexchange/tests/fixtures/mini
join "$mini/Users.xml" "$mini/Posts.xml" "$mini/Comments.xml" >"$seeds/stackexchange_dump/mini"
seed strategy_toml; cp examples/strategy.toml "$seeds/strategy_toml/"
seed api_ingest; seed api_strategy; seed connector_record

failed=()
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds} s"
  mkdir -p "fuzz/corpus/$target"
  # shellcheck disable=SC2086 # the build options are words
  if ! cargo +nightly fuzz run ${TRELLIS_FUZZ_BUILD:-} --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "$seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "== every target ran ${seconds} s without a crash"
