#!/usr/bin/env python3
"""A second, independent generator of edited copies and of several shots of one place, for
measuring the `photo` level of `lookalike duplicates` on copies it was never tuned on. Run
by a person, not by CI.

    python3 scripts/make_copy_bench.py OUT_DIR --set one|two|shots [--originals 150]
                                       [--distractors 1000] [--places 100] [--seed 7]
    lookalike duplicates OUT_DIR/images --json > groups.jsonl
    python3 scripts/eval_duplicates.py OUT_DIR/truth.json groups.jsonl

scripts/make_duplicate_bench.py is the generator the photo level is tuned on. This one is
kept apart: its numbers are reported, never tuned on. Its rules differ on purpose:
  * every edit is made by ImageMagick's `convert` (its own resampling, JPEG encoder, fonts
    and colour handling), not by Pillow;
  * the edits and their ranges are its own (below), several of which the tuning generator
    does not make at all: turns that leave their corners showing, the blurred-background
    square of social apps, a photo on a web page, a diagonal watermark across the middle,
    sharpening, a contrast curve, a hue shift, crops that change the shape;
  * the pictures are cut from the photos at other places and sizes (square-ish windows at
    random, not a guillotine split).

Sets:
  one    ORIGINALS photos with 3 copies, each made by one edit;
  two    the same, each copy made by two different edits one after the other;
  shots  PLACES places with 3-5 shots each, as a person walking about takes them: each shot
         frames the place from a step aside (a perspective change of 4-12 % at the corners,
         the frame moved by 10-35 %, zoom 0.8-1.25), with its own exposure, white balance and
         noise. No copies: every pair the photo level groups here is a false pair.
plus DISTRACTORS pictures with no copy (all sets).

truth.json has the keys scripts/eval_duplicates.py reads: "groups" ([original, copies...]),
"edits" ({copy: "edit" or "edit+edit"}), "sources", and for the shots set "scenes" (one list
per place). Needs: ImageMagick 6 (`convert`), the DejaVu fonts, Pillow and numpy.
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_duplicate_bench as tuning  # only for finding the installed photos  # noqa: E402

FONTS = ["DejaVu-Sans", "DejaVu-Serif-Bold", "DejaVu-Sans-Mono", "DejaVu-Sans-Condensed-Oblique"]
WORDS = ["holiday", "mum", "look", "sunset", "2021", "wow", "trip", "best", "view", "friends",
         "weekend", "#nofilter", "amazing", "home", "walk", "lake", "summer", "memories"]
EDITS = ["caption", "crop", "turn", "turn_open", "quarter", "mirror", "square_blur", "border",
         "web_page", "grey", "hue", "sepia", "watermark", "jpeg", "small", "sharpen_contrast"]


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def magick(src, dst, args):
    done = subprocess.run(["convert", str(src), *[str(a) for a in args], str(dst)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"convert failed on {src} with {args}: {done.stderr}")


def edit_args(name, size, rng):
    """ImageMagick arguments for one edit of a picture of `size` (w, h)."""
    w, h = size
    if name == "caption":
        bar = int(h * rng.uniform(0.08, 0.2))
        colour = rng.choice(["white", "black", "#ffe9a8", "#1d3557"])
        ink = "white" if colour in ("black", "#1d3557") else "black"
        side = rng.choice(["north", "south"])
        return ["-background", colour, "-gravity", side, "-splice", f"0x{bar}",
                "-font", rng.choice(FONTS), "-pointsize", max(8, int(bar * 0.5)), "-fill", ink,
                "-annotate", "+0+%d" % (bar // 4), words(rng, rng.randint(2, 5))]
    if name == "crop":
        fw, fh = rng.uniform(0.6, 0.95), rng.uniform(0.6, 0.95)
        if fw * fh > 0.9:
            fw = fh = 0.8
        cw, ch = int(w * fw), int(h * fh)
        return ["-crop", f"{cw}x{ch}+{rng.randint(0, w - cw)}+{rng.randint(0, h - ch)}", "+repage"]
    if name == "turn":
        angle = rng.uniform(2, 15) * rng.choice([-1, 1])
        keep = 0.7
        return ["-distort", "SRT", f"{angle:.2f}", "-gravity", "center",
                "-crop", f"{int(w * keep)}x{int(h * keep)}+0+0", "+repage"]
    if name == "turn_open":
        angle = rng.uniform(2, 15) * rng.choice([-1, 1])
        return ["-background", rng.choice(["white", "black", "#808080"]), "-rotate", f"{angle:.2f}"]
    if name == "quarter":
        return ["-rotate", rng.choice(["90", "180", "270"])]
    if name == "mirror":
        return [rng.choice(["-flop", "-flop", "-flip"])]
    if name == "square_blur":
        s = max(w, h)
        return ["(", "+clone", "-resize", f"{s}x{s}^", "-gravity", "center", "-extent", f"{s}x{s}",
                "-blur", "0x12", ")", "+swap", "-gravity", "center", "-composite"]
    if name == "border":
        pad = rng.randint(3, 15)
        colour = rng.choice(["white", "black", "#c0c0c0", "#402020"])
        if rng.random() < 0.5:
            return ["-bordercolor", colour, "-border", f"{pad}%"]
        tall = rng.random() < 0.5  # letterbox or pillarbox to another shape
        ew, eh = (w, int(h * rng.uniform(1.2, 1.6))) if tall else (int(w * rng.uniform(1.2, 1.6)), h)
        return ["-background", colour, "-gravity", "center", "-extent", f"{ew}x{eh}"]
    if name == "web_page":
        pw, ph = int(w * rng.uniform(1.3, 1.8)), int(h * rng.uniform(1.3, 1.7))
        x, y = rng.randint(0, pw - w), rng.randint(int(0.1 * ph), ph - h)
        return ["-background", "#f4f4f4", "-gravity", "northwest", "-extent", f"{pw}x{ph}-{x}-{y}",
                "-fill", "#2b2b2b", "-font", rng.choice(FONTS), "-pointsize", max(10, ph // 30),
                "-annotate", "+%d+%d" % (pw // 20, max(12, ph // 25)), words(rng, 4),
                "-fill", "#3366cc", "-draw", f"rectangle 0,0 {pw},{max(4, ph // 60)}"]
    if name == "grey":
        return rng.choice([["-colorspace", "Gray"], ["-modulate", "100,0"]])
    if name == "hue":
        return ["-modulate", f"{rng.randint(85, 115)},{rng.randint(40, 170)},{rng.randint(70, 130)}"]
    if name == "sepia":
        return ["-sepia-tone", f"{rng.randint(60, 90)}%"]
    if name == "watermark":
        return ["-gravity", "center", "-font", rng.choice(FONTS), "-pointsize", max(12, w // 9),
                "-fill", "rgba(255,255,255,0.45)", "-annotate", f"{rng.randint(-35, 35)}x{rng.randint(-35, 35)}+0+0",
                rng.choice(["© PHOTO", "SAMPLE", "my.blog", "DO NOT COPY"])]
    if name == "jpeg":
        return ["-quality", rng.randint(8, 30)]
    if name == "small":
        return ["-resize", f"{rng.uniform(18, 35):.0f}%"]
    if name == "sharpen_contrast":
        return ["-unsharp", "0x2+1.5+0", "-sigmoidal-contrast", f"{rng.uniform(3, 7):.1f}x50%"]
    raise ValueError(name)


def make_copy(src, dst, names, rng, tmp):
    """Apply the edits in `names` one after the other, writing the last as JPEG (or PNG)."""
    current = src
    for i, name in enumerate(names):
        size = Image.open(current).size
        last = i == len(names) - 1
        out = dst if last else Path(tmp) / f"step{i}.png"
        args = edit_args(name, size, rng)
        if last and name != "jpeg" and dst.suffix == ".jpg":
            args += ["-quality", rng.randint(80, 95)]
        magick(current, out, args)
        current = out


def windows(photo_size, count, rng):
    """Square-ish windows at random places of a photo, not overlapping one another."""
    w, h = photo_size
    found = []
    for _ in range(count * 60):
        if len(found) == count:
            break
        side = rng.uniform(0.2, 0.45) * min(w, h)
        aspect = rng.choice([1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3])
        bw, bh = int(side * aspect ** 0.5), int(side / aspect ** 0.5)
        if bw >= w or bh >= h or min(bw, bh) < 200:
            continue
        x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
        box = (x, y, x + bw, y + bh)
        if all(box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1] for o in found):
            found.append(box)
    return found


def pictures(sources, wanted, rng, min_side=200):
    """(PIL image, source label) cut from the installed photos, up to `wanted`."""
    out = []
    order = list(sources)
    rng.shuffle(order)
    per_photo = max(1, 3 * wanted // max(1, len(order)))
    for label, path in order:
        photo = tuning.open_rgb(path)
        for box in windows(photo.size, per_photo, rng):
            piece = photo.crop(box)
            piece.thumbnail((720, 720), Image.LANCZOS)
            if min(piece.size) >= min_side and tuning.detail(piece) >= tuning.MIN_DETAIL:
                out.append((piece, f"{label}#{box[0]},{box[1]}"))
    rng.shuffle(out)
    # Originals (taken first) from the larger pictures, so that a copy at a fifth of the size
    # is still a picture.
    out.sort(key=lambda p: -min(p[0].size) if min(p[0].size) >= 300 else 0)
    return out[:wanted]


def shot(piece, rng):
    """ImageMagick arguments for one shot of a place from a step aside."""
    w, h = piece.size
    sw, sh = int(w * 0.62), int(h * 0.62)
    zoom = rng.uniform(0.8, 1.25)
    cw, ch = min(w, int(sw / zoom)), min(h, int(sh / zoom))
    cx = rng.randint(0, w - cw)
    cy = rng.randint(0, h - ch)
    k = rng.uniform(0.04, 0.12)
    jitter = lambda s: int(rng.uniform(-k, k) * s)  # noqa: E731
    corners = [(0, 0), (cw, 0), (cw, ch), (0, ch)]
    pairs = " ".join(f"{x},{y} {x + jitter(cw)},{y + jitter(ch)}" for x, y in corners)
    return ["-crop", f"{cw}x{ch}+{cx}+{cy}", "+repage", "-virtual-pixel", "mirror",
            "-distort", "Perspective", pairs, "-resize", f"{sw}x{sh}!",
            "-modulate", f"{rng.randint(85, 115)},{rng.randint(90, 110)},100",
            "-channel", "B", "-evaluate", "multiply", f"{rng.uniform(0.92, 1.08):.3f}", "+channel",
            "-attenuate", f"{rng.uniform(0.2, 0.8):.2f}", "+noise", "Gaussian",
            "-quality", rng.randint(85, 95)]


def build(out_dir, which, originals, distractors, places, seed):
    rng = random.Random(seed)
    sources = [(label, path) for label, path in tuning.find_photos([])]
    if not sources:
        sys.exit("No source photos found. Install some, for example:\n    " + tuning.INSTALL_HINT)
    images = Path(out_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    makers = places if which == "shots" else originals
    pool = pictures(sources, makers + distractors, rng)
    copies_each = 0 if which == "shots" else 3
    shot_counts = [rng.randint(3, 5) for _ in range(makers)] if which == "shots" else []
    total = len(pool) + copies_each * makers + sum(shot_counts) - (makers if shot_counts else 0)
    names = [f"p{i:05d}" for i in range(total)]
    rng.shuffle(names)
    truth = {"groups": [], "edits": {}, "sources": {}, "seed": seed, "generator": "make_copy_bench"}
    if which == "shots":
        truth["scenes"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (piece, source) in enumerate(pool):
            src = Path(tmp) / "piece.png"
            piece.save(src)
            if index >= makers:
                name = names.pop() + ".jpg"
                magick(src, images / name, ["-quality", rng.randint(85, 95)])
                truth["sources"][name] = source
            elif which == "shots":
                scene = []
                for _ in range(shot_counts[index]):
                    name = names.pop() + ".jpg"
                    magick(src, images / name, shot(piece, rng))
                    truth["sources"][name] = source
                    scene.append(name)
                truth["scenes"].append(scene)
            else:
                original = names.pop() + ".jpg"
                magick(src, images / original, ["-quality", rng.randint(88, 95)])
                truth["sources"][original] = source
                group = [original]
                for edit_names in copy_edits(which, rng):
                    name = names.pop() + (".png" if rng.random() < 0.1 else ".jpg")
                    make_copy(images / original, images / name, edit_names, rng, tmp)
                    truth["edits"][name] = "+".join(edit_names)
                    truth["sources"][name] = source
                    group.append(name)
                truth["groups"].append(group)
    (Path(out_dir) / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def copy_edits(which, rng):
    """Three copies' edits: one each, or two different ones each."""
    if which == "one":
        return [[e] for e in rng.sample(EDITS, 3)]
    return [rng.sample(EDITS, 2) for _ in range(3)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--set", dest="which", choices=["one", "two", "shots"], required=True)
    parser.add_argument("--originals", type=int, default=150)
    parser.add_argument("--distractors", type=int, default=1000)
    parser.add_argument("--places", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    truth = build(args.out_dir, args.which, args.originals, args.distractors, args.places, args.seed)
    print(f"wrote {len(truth['sources'])} pictures: {len(truth['groups'])} originals with "
          f"{len(truth['edits'])} copies, {len(truth.get('scenes', []))} places")


if __name__ == "__main__":
    main()
