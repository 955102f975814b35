#!/usr/bin/env bash
# Indexes a folder cold, then again with nothing changed, and prints both times and the ratio.
# Run by a person, not by CI:
#
#   scripts/index_bench.sh [FOLDER]      # default: 2,000 generated images in a temporary folder
#
# Needs: a release build (cargo build --release), and Pillow when generating images.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-}
if [ -z "$folder" ]; then
  folder=$(mktemp -d)
  python3 scripts/make_test_images.py "$folder" 2000
fi
cache=$(mktemp -d)
run() { target/release/lookalike index --json "$folder" --cache-dir "$cache"; }
cold=$(run)
warm=$(run)
python3 - "$cold" "$warm" <<'PY'
import json, sys
cold, warm = (json.loads(a) for a in sys.argv[1:3])
print(f"cold: {cold['images']} images in {cold['seconds']:.2f} s ({cold['images'] / cold['seconds']:.1f} img/s)")
print(f"warm: {warm['unchanged']} unchanged in {warm['seconds']:.3f} s")
print(f"ratio: {cold['seconds'] / warm['seconds']:.0f}x faster the second time")
PY
rm -rf "$cache"
