#!/usr/bin/env python3
"""A photo library of 100,000 pictures, and what lookalike costs on it. Run by a person, not
by CI:

    python3 scripts/library_bench.py make LIBRARY [--count 100000]
    python3 scripts/library_bench.py measure LIBRARY --cache CACHE [--binary B ...] [--gui]
    python3 scripts/library_bench.py measure LIBRARY --cache C1 --binary B1 --cache C2 --binary B2

`make` cuts COUNT different 320 x 240 photos from the photos that Debian's wallpaper packages
ship (lomiri-wallpapers-*, mate-backgrounds, plasma-workspace-wallpapers, palapeli-data): a
random box of 8-60 % of a source photo's width, turned a little or not, mirrored or not, its
light and colour moved a little, saved as JPEG at quality 80-92, a thousand to a folder.

`measure` runs each binary given (default target/release/lookalike) on the library, side by
side, sharing one index in CACHE (the builds compared must share its layout; the first
binary indexes it when CACHE is new, and that first indexing is timed), or with one --cache
per --binary, each in its own (copies of one index, for builds whose layouts differ), and
prints one table:
- first indexing (only when CACHE is new), and `index` of the unchanged library;
- `similar --no-scan` over the library, and `similar` with its folder scan;
- the SQLite index file's size;
- with --gui, the app from start to every tile ready (`--screenshot`), with its peak memory.
Times are wall-clock seconds of one run each (the best of --repeat runs), memory the peak
resident set from GNU time. Put the CPU's name beside the figures (it is printed first).

Needs: Pillow (make), GNU time (measure), and for --gui Xvfb.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCES = ["/usr/share/backgrounds", "/usr/share/wallpapers", "/usr/share/palapeli/collection"]
SIZE = (320, 240)


def source_photos():
    found = []
    for root in SOURCES:
        for dirpath, _, files in os.walk(root):
            for name in files:
                if name.lower().endswith((".jpg", ".jpeg", ".png")):
                    found.append(Path(dirpath) / name)
    return sorted(found)


def make(library: Path, count: int, seed: int):
    from PIL import Image, ImageEnhance, ImageOps

    photos = []
    for path in source_photos():
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((1600, 1600))
                if min(im.size) >= 400:
                    photos.append(im)
        except OSError:
            continue
    if not photos:
        sys.exit("no source photos: install lomiri-wallpapers-20.04, mate-backgrounds, ...")
    print(f"{len(photos)} source photos", flush=True)
    rng = random.Random(seed)
    started = time.monotonic()
    for i in range(count):
        folder = library / f"album{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        photo = rng.choice(photos)
        w, h = photo.size
        box_w = int(w * rng.uniform(0.08, 0.6))
        box_h = int(box_w * SIZE[1] / SIZE[0])
        box_h = min(box_h, h - 1)
        x, y = rng.randrange(0, w - box_w), rng.randrange(0, h - box_h)
        shot = photo.crop((x, y, x + box_w, y + box_h))
        if rng.random() < 0.3:
            shot = shot.rotate(rng.uniform(-6, 6), resample=Image.BILINEAR)
        if rng.random() < 0.5:
            shot = ImageOps.mirror(shot)
        shot = shot.resize(SIZE, Image.BILINEAR)
        shot = ImageEnhance.Brightness(shot).enhance(rng.uniform(0.8, 1.2))
        shot = ImageEnhance.Color(shot).enhance(rng.uniform(0.7, 1.3))
        shot.save(folder / f"photo{i:06d}.jpg", quality=rng.randint(80, 92))
        if (i + 1) % 10000 == 0:
            print(f"{i + 1} photos, {time.monotonic() - started:.0f} s", flush=True)


def timed(cmd, env=None):
    """Wall seconds, peak RSS (MB) and stdout of one run."""
    with tempfile.NamedTemporaryFile("r") as log:
        started = time.monotonic()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", log.name, *cmd],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        seconds = time.monotonic() - started
        if out.returncode != 0:
            raise SystemExit(f"failed ({out.returncode}): {' '.join(map(str, cmd))}")
        kb = int(log.read().strip().splitlines()[-1])
    return seconds, kb / 1024, out.stdout


def best(runs, cmd, env=None):
    results = [timed(cmd, env) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def cpu_name():
    text = open("/proc/cpuinfo").read()
    name = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
             if f in flags]
    return f"{name.group(1) if name else '?'}; {os.cpu_count()} cores; {' '.join(shown)}"


def measure(library: Path, caches, binaries, gui: bool, runs: int):
    print(f"CPU: {cpu_name()}")
    query = next(library.rglob("*.jpg"))
    rows = {}
    if len(caches) not in (1, len(binaries)):
        raise SystemExit("give one --cache for all builds, or one for each --binary")
    caches = caches * len(binaries) if len(caches) == 1 else caches
    for binary, folder in zip(binaries, caches):
        first = not (folder / "index.sqlite3").exists()
        folder.mkdir(parents=True, exist_ok=True)
        base = [binary]
        at = ["--cache-dir", str(folder)]
        col = rows.setdefault(binary, {})
        if first:
            s, mb, out = timed([*base, "index", "--json", str(library), *at])
            report = json.loads(out)
            col["first indexing"] = f"{s:.0f} s ({report['images'] / s:.0f} photos/s), {mb:.0f} MB"
        s, mb, _ = best(runs, [*base, "index", "--json", str(library), *at])
        col["index, unchanged"] = f"{s:.2f} s, {mb:.0f} MB"
        s, mb, _ = best(runs, [*base, "similar", str(query), "--in", str(library), "--no-scan",
                               "--top", "20", *at])
        col["similar --no-scan --top 20"] = f"{s:.2f} s, {mb:.0f} MB"
        s, mb, _ = best(runs, [*base, "similar", str(query), "--in", str(library), "--no-scan",
                               "--json", *at])
        col["similar --no-scan, every photo"] = f"{s:.2f} s, {mb:.0f} MB"
        s, mb, _ = best(runs, [*base, "similar", str(query), "--in", str(library), "--top", "20",
                               *at])
        col["similar with its scan"] = f"{s:.2f} s, {mb:.0f} MB"
        size = sum(f.stat().st_size for f in folder.glob("index.sqlite3*"))
        count = sum(1 for _ in library.rglob("*.jpg"))
        col["index file"] = f"{size / 2**30:.2f} GB ({size / count / 1024:.1f} KB a photo)"
        if gui:
            shot = folder / "screen.png"
            env = dict(os.environ, DISPLAY=os.environ.get("DISPLAY", ":78"))
            xvfb = None
            if "DISPLAY" not in os.environ:
                xvfb = subprocess.Popen(["Xvfb", ":78", "-screen", "0", "1400x900x24"],
                                        stderr=subprocess.DEVNULL)
                time.sleep(1)
            try:
                s, mb, _ = timed([*base, str(library), "--cache-dir", str(folder),
                                  "--screenshot", str(shot)], env)
                col["app: start to every tile ready"] = f"{s:.1f} s, {mb:.0f} MB"
            finally:
                if xvfb:
                    xvfb.kill()
    names = list(rows)
    keys = list(dict.fromkeys(k for col in rows.values() for k in col))
    print("| what | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for key in keys:
        print(f"| {key} | " + " | ".join(rows[b].get(key, "") for b in names) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("library", type=Path)
    m.add_argument("--count", type=int, default=100_000)
    m.add_argument("--seed", type=int, default=7)
    r = sub.add_parser("measure")
    r.add_argument("library", type=Path)
    # One index for every build, or one each (in --binary's order): a build that writes a
    # newer index layout than another reads would otherwise leave the older one nothing.
    r.add_argument("--cache", type=Path, action="append", required=True)
    r.add_argument("--binary", action="append", default=[])
    r.add_argument("--gui", action="store_true")
    r.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.command == "make":
        make(args.library, args.count, args.seed)
    else:
        measure(args.library, args.cache, args.binary or ["target/release/lookalike"], args.gui,
                args.repeat)


if __name__ == "__main__":
    main()
