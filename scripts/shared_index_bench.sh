#!/usr/bin/env bash
# The shared index against the embedded one, and two indexers on one folder at once. Run by a
# person, not by CI, through the throwaway server:
#
#   scripts/test_postgres.sh scripts/shared_index_bench.sh [FOLDER]
#
# Default folder: 2,000 generated images. Prints the time of a cold `index` into SQLite, into
# PostgreSQL, and of two `index` processes started together into PostgreSQL, with how many
# images each embedded and how many rows and vectors the library holds afterwards.
# Needs: a release build (cargo build --release), and Pillow when generating images.
set -euo pipefail
cd "$(dirname "$0")/.."
db="${LOOKALIKE_TEST_POSTGRES:?run this through scripts/test_postgres.sh}"
folder=${1:-}
if [ -z "$folder" ]; then
  folder=$(mktemp -d)
  python3 scripts/make_test_images.py "$folder" 2000
fi
work=$(mktemp -d)
lookalike=target/release/lookalike
now() { date +%s.%N; }

start=$(now)
$lookalike index --json "$folder" --cache-dir "$work/cache" >"$work/sqlite.json"
sqlite=$(python3 -c "print($(now) - $start)")
start=$(now)
$lookalike index --json "$folder" --db "$db" --library one >"$work/one.json"
one=$(python3 -c "print($(now) - $start)")
start=$(now)
$lookalike index --json "$folder" --db "$db" --library two >"$work/a.json" &
$lookalike index --json "$folder" --db "$db" --library two >"$work/b.json" &
wait
pair=$(python3 -c "print($(now) - $start)")
$lookalike cache info --json --db "$db" --library two >"$work/info.json"

python3 - "$work" "$sqlite" "$one" "$pair" <<'PY'
import json, sys
work, sqlite, one, pair = sys.argv[1], *map(float, sys.argv[2:5])
read = lambda name: json.load(open(f"{work}/{name}.json"))
n = read("sqlite")["images"]
print(f"{n} images, cold:")
print(f"  SQLite, one indexer:      {sqlite:6.1f} s  ({n / sqlite:5.1f} img/s)")
print(f"  PostgreSQL, one indexer:  {one:6.1f} s  ({n / one:5.1f} img/s, {one / sqlite:.2f}x SQLite's time)")
a, b, info = read("a"), read("b"), read("info")
print(f"  PostgreSQL, two at once:  {pair:6.1f} s  ({n / pair:5.1f} img/s)")
print(f"    embedded {a['new']} + {b['new']} = {a['new'] + b['new']}, served from the index {a['unchanged']} + {b['unchanged']}")
print(f"    each reported {a['images']} and {b['images']} images")
print(f"    library holds {info['files']} rows; vectors: {info['embeddings_by_model']}")
PY
rm -rf "$work"
