#!/usr/bin/env bash
# Proves lookalike on machines unlike the one it is developed on, with Debian's emulators:
#
#   1. x86-64 without AVX-512 (qemu-x86_64 -cpu Haswell: AVX2 and FMA; -cpu Nehalem: SSE4
#      only): every kernel test and the command-line checks on both, a share of the model
#      parity tests, so that every dispatch branch of the kernels runs somewhere (the
#      AVX-512 and bf16 ones run natively);
#   2. ARM64 Linux (aarch64-unknown-linux-gnu, run by qemu-aarch64): built with the app's
#      window and the command line, then the command-line checks and the window itself on a
#      virtual screen (Xvfb), drawn by Debian's arm64 Mesa;
#   3. Windows (x86_64-pc-windows-gnu, built with MinGW-w64, run by wine): built with the app's
#      window and the command line, then the command-line checks, the index in the folder the
#      README names, a file named 太陽花.jpg, and the window itself on a virtual screen (Xvfb).
#
# The command-line checks compare each build with the native one on the tutorial's images:
# `classify` gives every image the same top-1 label, `similar` the same order, and `index` run
# twice serves everything from the index the second time.
#
#   scripts/cross_check.sh [x86|arm64|windows ...]     (default: all three; as root, it
#                                                       installs what it needs with apt-get)
#
# The Windows and ARM64 programs are built with the `cross` profile (Cargo.toml): release at
# opt-level 1, which builds in less time; the release workflow builds them fully optimised.
#
# It prints each check and the time it took, and fails on the first problem. `.ci/run` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(x86 arm64 windows)
seeds=tests/data/seed-images
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- what it needs -------------------------------------------------------------------------
need_packages=()
command -v qemu-x86_64-static >/dev/null || need_packages+=(qemu-user-static)
command -v aarch64-linux-gnu-gcc >/dev/null || need_packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v x86_64-w64-mingw32-gcc >/dev/null || need_packages+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null || need_packages+=(wine64)
command -v nasm >/dev/null || need_packages+=(nasm)
command -v xvfb-run >/dev/null || need_packages+=(xvfb xauth)
# Reads the Windows window's screenshot; Debian's own Python, whatever python3 is on PATH.
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need_packages+=(python3-pil)
# The ARM64 window runs on Debian's own arm64 libraries (multiarch): its loader and C library,
# X11, Mesa's software OpenGL, and fontconfig, through which it finds the system's fonts (for
# names in scripts its own fonts lack).
arm64_window_packages=(libc6:arm64 libgl1:arm64 libegl1:arm64 libgl1-mesa-dri:arm64
  libx11-6:arm64 libx11-xcb1:arm64 libxcursor1:arm64 libxrandr2:arm64 libxi6:arm64
  libxkbcommon-x11-0:arm64 libfontconfig1:arm64)
if [[ " ${parts[*]} " == *" arm64 "* ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  for package in "${arm64_window_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
      || need_packages+=("$package")
  done
fi
if [ ${#need_packages[@]} -gt 0 ]; then
  apt-get update -q && apt-get install -y -q "${need_packages[@]}"
fi
for target in aarch64-unknown-linux-gnu x86_64-pc-windows-gnu; do
  rustup target list --installed | grep -q "^$target\$" || rustup target add "$target"
done

# Any one emulated run: seconds to a few minutes here (7 minutes at most seen, on the slowest
# host); the limit turns a hang into a failure that names the step, not CI's own timeout.
emulated_limit=1200

step() { echo "== $*"; step_start=$(date +%s); }
done_step() { echo "   ok ($(( $(date +%s) - step_start )) s)"; }

# ---- the native answers everything else is compared with ---------------------------------
# The build `cargo test` makes (nothing to build after it), always of the code checked here.
cargo build --bin lookalike
native=target/debug/lookalike
"$native" classify --json "$seeds"/* >"$work/native-classify.json"
"$native" similar --json --cache-dir "$work/native-index" "$seeds/Tiger.jpg" --in "$seeds" \
  >"$work/native-similar.json"

# Compares a build's answers with the native ones. $1: a name for messages; the rest: how to
# run that build.
cli_checks() {
  local name=$1; shift
  local out="$work/$name"
  mkdir -p "$out"
  # The network runs twice (the first index and classify): `similar` ranks what the index holds.
  "$@" index --json --cache-dir "$out/index" "$seeds" >"$out/index-first.json"
  "$@" index --json --cache-dir "$out/index" "$seeds" >"$out/index-second.json"
  "$@" similar --json --cache-dir "$out/index" "$seeds/Tiger.jpg" --in "$seeds" >"$out/similar.json"
  "$@" classify --json "$seeds"/* >"$out/classify.json"
  python3 - "$work" "$name" <<'PY'
import json, os, sys
work, name = sys.argv[1], sys.argv[2]
def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]
def top1(path):
    # By file name: a Windows build may write its paths with backslashes.
    return {os.path.basename(r["file"].replace("\\", "/")): r["top"][0]["class"] for r in lines(path)}
def order(path):
    return [os.path.basename(r["file"].replace("\\", "/")) for r in lines(path)]
native, here = top1(f"{work}/native-classify.json"), top1(f"{work}/{name}/classify.json")
assert len(native) == 9 and here == native, f"{name}: top-1 labels differ: {here} != {native}"
assert "太陽花.jpg" in here, f"{name}: the file named 太陽花.jpg is missing: {sorted(here)}"
a, b = order(f"{work}/native-similar.json"), order(f"{work}/{name}/similar.json")
assert a == b, f"{name}: similar orders differ: {b} != {a}"
first = lines(f"{work}/{name}/index-first.json")[0]
second = lines(f"{work}/{name}/index-second.json")[0]
assert first["new"] == 9 and not first["failed"], f"{name}: first index: {first}"
assert second["unchanged"] == 9 and second["new"] == 0, f"{name}: second index: {second}"
print(f"   {name}: 9 top-1 labels, the similar order and a second index served from the first "
      f"({first['seconds']:.2f} s, then {second['seconds']:.2f} s)")
PY
}

# Opens the window of a build on a virtual screen (Xvfb) in the app's own screenshot mode: it
# indexes the tutorial's images, searches by Tiger3.jpg, saves what the window shows and
# quits. The picture must be a whole window with the thumbnails in it. $1: a name for
# messages; the rest: how to run that build.
window_check() {
  local name=$1; shift
  local png="$work/$name-window.png" log="$work/$name-window.log"
  timeout 600 xvfb-run -a -s "-screen 0 1400x900x24" "$@" "$seeds" --select Tiger3.jpg \
    --screenshot "$png" 2>"$log" || { cat "$log" >&2; exit 1; }
  grep -q "saved screenshot" "$log" || { cat "$log" >&2; exit 1; }
  /usr/bin/python3 - "$png" <<'PY'
import sys
from PIL import Image
window = Image.open(sys.argv[1])
assert window.mode == "RGBA", f"expected 8-bit RGBA, got {window.mode}"
w, h = window.size
assert w >= 800 and h >= 600, f"the window is {w}x{h}"
# The thumbnails are photographs: a window that drew only its frame, or nothing, has a few
# dozen colours; this one has tens of thousands.
colours = len(set(window.convert("RGB").getdata()))
assert colours > 5000, f"the window shows {colours} colours: no thumbnails"
print(f"   the window drew {w}x{h} pixels with {colours} colours (thumbnails shown)")
PY
}

# ---- 1. x86-64 without AVX-512 ------------------------------------------------------------
x86() {
  # The test build `cargo test` makes, listed without building anything new where it exists.
  local bins
  bins=$(cargo test --no-run --test kernels --test model_parity --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["target"]["name"], m["executable"])')
  local kernels model_parity
  kernels=$(awk '$1 == "kernels" {print $2}' <<<"$bins")
  model_parity=$(awk '$1 == "model_parity" {print $2}' <<<"$bins")
  # How fast qemu emulates AVX2 depends on the host: all of model_parity took over 7 minutes
  # as Haswell on an Intel Xeon host and 56 s on an AMD EPYC one (Nehalem: 164 s and 113 s),
  # a first `index` of the 9 images 249 s and 11 s. So that a cold CI run stays under an hour
  # on either, each CPU runs every kernel test and the command-line checks, and a share of the
  # parity tests: Haswell the reference's own input through the whole network, Nehalem every
  # tutorial image's label and embedding.
  local -A parity_test=(
    [Haswell]=synthetic_input_matches_reference_pooled_features_and_logits
    [Nehalem]=every_seed_image_matches_reference_label_and_embedding
  )
  for cpu in Haswell Nehalem; do
    step "x86-64 as $cpu: kernel tests (every test)"
    emulate "$cpu" "$kernels" --test-threads 2 -q
    done_step
    step "x86-64 as $cpu: model parity, ${parity_test[$cpu]}"
    emulate "$cpu" "$model_parity" --test-threads 2 -q "${parity_test[$cpu]}"
    done_step
    step "x86-64 as $cpu: command line"
    cli_checks "x86-$cpu" emulate "$cpu" target/debug/lookalike
    done_step
  done
}

# Runs an x86-64 program on an emulated CPU, without qemu's notes on CPU features it cannot
# emulate (hle, rtm, …, which nothing here uses).
emulate() {
  local cpu=$1; shift
  timeout "$emulated_limit" qemu-x86_64-static -cpu "$cpu" "$@" 2> >(grep -v "TCG doesn't support" >&2)
}

# ---- 2. ARM64 Linux -----------------------------------------------------------------------
arm64() {
  step "ARM64: build with the window and the command line (no HEIC/AVIF: no libheif for ARM64 here)"
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
    cargo build --profile cross --target aarch64-unknown-linux-gnu --no-default-features --features gui,cli,postgres
  done_step
  step "ARM64 under qemu: command line"
  # The C library the program was linked against. Without LD_LIBRARY_PATH the loader from
  # /usr/aarch64-linux-gnu would find the host's own arm64 libc in /lib/aarch64-linux-gnu
  # first where one is installed (multiarch), and a loader and libc of two builds hang.
  cli_checks arm64 timeout "$emulated_limit" qemu-aarch64-static -L /usr/aarch64-linux-gnu \
    -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib \
    target/aarch64-unknown-linux-gnu/cross/lookalike
  done_step
  step "ARM64 under qemu: the window, on a virtual screen (Xvfb)"
  # Here the loader and every library are the host's arm64 ones (-L /), Mesa's among them.
  window_check arm64 qemu-aarch64-static -L / -E LIBGL_ALWAYS_SOFTWARE=1 \
    target/aarch64-unknown-linux-gnu/cross/lookalike --cache-dir "$work/arm64-window-index"
  done_step
}

# ---- 3. Windows ---------------------------------------------------------------------------
windows() {
  step "Windows: build with the window and the command line (no HEIC/AVIF: no libheif)"
  cargo build --profile cross --target x86_64-pc-windows-gnu --no-default-features --features gui,cli,postgres
  done_step
  # Run from a folder of its own, beside the stand-in for the one system library that Debian's
  # wine 8 lacks (see scripts/wine/bcryptprimitives.c).
  local exe="$work/windows-build/lookalike.exe"
  mkdir -p "$work/windows-build"
  cp target/x86_64-pc-windows-gnu/cross/lookalike.exe "$exe"
  x86_64-w64-mingw32-gcc -shared -O2 -o "$work/windows-build/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c scripts/wine/bcryptprimitives.def -ladvapi32
  export WINEPREFIX="$work/wine" WINEDEBUG=-all
  # Debian puts the 64-bit loader outside PATH.
  local wine
  wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
  step "Windows under wine: command line"
  cli_checks windows timeout "$emulated_limit" "$wine" "$exe"
  done_step
  step "Windows under wine: the index where the README says (%LOCALAPPDATA%\\lookalike\\cache)"
  timeout "$emulated_limit" "$wine" "$exe" index "$seeds" >/dev/null
  local cache
  cache=$(find "$WINEPREFIX/drive_c/users" -path '*AppData/Local/lookalike/cache' -type d | head -n 1)
  [ -n "$cache" ] && [ -n "$(ls -A "$cache")" ] || { echo "no index under %LOCALAPPDATA%\\lookalike\\cache" >&2; exit 1; }
  echo "   the index is in ${cache#"$WINEPREFIX/"}"
  done_step
  step "Windows under wine: the window, on a virtual screen (Xvfb)"
  # The wine session the command line started has no screen, so it ends first and a new one
  # starts on Xvfb's.
  "$(command -v wineserver || echo /usr/lib/wine/wineserver64)" -k 2>/dev/null || true
  window_check windows "$wine" "$exe"
  done_step
}

for part in "${parts[@]}"; do
  "$part"
done
echo "== every cross check passed"
