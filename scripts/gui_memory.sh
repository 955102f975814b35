#!/usr/bin/env bash
# Opens the real window on a big folder under Xvfb, scrolls through the whole grid while it
# indexes and after, then prints the app's peak RSS and its frame times while indexing and
# after.
# Run by a person, not by CI:
#
#   scripts/gui_memory.sh FOLDER [SECONDS] [-- ARGS...]
#
# ARGS go to lookalike, e.g. `-- --cache-dir DIR` for a library indexed into DIR
# (scripts/library_bench.py).
#
# Needs: Xvfb, xdotool, GNU time (Debian: xvfb xdotool time), and a release build.
set -euo pipefail
folder=${1:?usage: gui_memory.sh FOLDER [SECONDS]}
seconds=${2:-120}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
log=$(mktemp)
Xvfb :77 -screen 0 1400x900x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
export DISPLAY=:77
sleep 1
# The app prints its frame-time summary when it closes; --screenshot would quit as soon as
# indexing is done, so this run is closed by the script instead.
LOOKALIKE_FRAME_REPORT=1 /usr/bin/time -v target/release/lookalike "$folder" "$@" 2>"$log" &
app=$!
sleep 3
# Without a window manager the window has no keyboard focus until given it (Home, Ctrl+Q).
window=$(xdotool search --name '^lookalike$' | head -1 || true)
[ -n "$window" ] && xdotool windowfocus "$window" || true
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ] && kill -0 $app 2>/dev/null; do
  # Scroll down in bursts, then jump back to the top now and then, through the whole grid.
  xdotool mousemove 600 450 click --repeat 40 --delay 15 5 || true
  if [ $((RANDOM % 6)) -eq 0 ]; then xdotool key Home || true; xdotool click --repeat 200 --delay 2 4 || true; fi
  sleep 0.3
done
# Ctrl+Q closes the window as a person would, so that the app reports its frames after indexing.
xdotool key ctrl+q || true
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $app 2>/dev/null || break; sleep 1; done
kill -0 $app 2>/dev/null && kill -TERM $app
wait $app || true
grep -E "frame times|Maximum resident" "$log" || cat "$log"
