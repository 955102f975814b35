#!/usr/bin/env python3
"""Build a folder of pictures for measuring how well `lookalike duplicates` finds copies of
the same photo. Run by a person, not by CI.

    python3 scripts/make_duplicate_bench.py OUT_DIR [--originals 150] [--distractors 1000]
                                                    [--bursts 0] [--seed 1] [--photos DIR ...]
    lookalike duplicates OUT_DIR/images --json > groups.jsonl
    python3 scripts/eval_duplicates.py OUT_DIR/truth.json groups.jsonl

What it makes: OUT_DIR/images/img_00001.jpg ... (names shuffled, so they say nothing about
groups) holding
  * ORIGINALS photos, each with exactly 3 edited copies, the 3 edits drawn at random from:
    jpeg_low (re-saved at JPEG quality 20-40), downscale (to 30-60 % of the width and height),
    crop (75-90 % of the area, random position), brightness (30 % brighter or darker, recorded
    as "brighter" or "darker"), rotate (3-8 degrees either way, cropped so no border shows),
    caption (a solid bar of 10-15 % of the height with a line of text, added above or below
    the picture), png (the same picture saved as PNG), mirror (flipped left to right);
  * BURSTS (none unless asked for) groups of 3-6 shots of one scene, as a hand-held camera
    takes them moments apart: the shots are crops of one piece of a photo (see below), each
    shifted from the one before by 5-25 % of the width and height in a random direction, every
    two shots of a burst overlapping by 60-90 % (intersection over union of the framed areas,
    turning left aside), each shot with its own zoom (field of view 0.9-1.1 times the
    burst's), exposure (0.85-1.15 times the brightness), turn (up to 3 degrees either way), blur
    (Gaussian, radius 0-1.2 pixels) and sensor noise (sigma 0-5 levels); in half of the bursts a
    small patch of the same piece (the "subject", 8-14 % of the frame) moves across the scene
    from shot to shot. All shots of a burst have the same size. These are what the "scene"
    strictness of `lookalike duplicates` should group, and the "photo" strictness should not;
  * DISTRACTORS other pictures that have no copy.
and OUT_DIR/truth.json:
    {"groups": [[original, copy, copy, copy], ...],      original first, names as in images/
     "edits": {copy: edit name, ...},
     "sources": {file: "package:photo#piece", ...},      where each picture came from
     "kinds": {"photo": n, "generated": n}, "seed": n}
with, only when --bursts is above 0,
     "scenes": [[shot, shot, ...], ...],                  one list per burst, in shooting order
     "shots": {shot: {"box": [left, top, right, bottom], "zoom": z, "exposure": e,
                      "rotation": degrees, "blur": radius, "noise": sigma, "subject": bool}}
where "box" is the area the shot frames, before turning, in the pixels of its piece of the
source photo (so boxes of one burst can be compared), and "subject" says whether the burst has
a moving patch. "kinds" counts the pieces used, a burst counting once.

Where the pictures come from. There is no internet here beyond package registries, so the
script uses real photographs that packages ship, found at run time:
  * desktop wallpapers from Debian packages (only the ones that are photographs; the drawn or
    rendered wallpapers in the same packages are left out):
        apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds \\
                        plasma-workspace-wallpapers palapeli-data
    (14 + 1 + 12 + 11 photos of 1.3 to 20 megapixels, and 5 jigsaw-puzzle photos of about
    1 megapixel from palapeli-data)
  * the sample photos bundled inside two PyPI packages (astronaut, cat, coffee, rocket, ...;
    only files inside the wheel, never the ones those libraries download later):
        pip install scikit-image scikit-learn     (the script only reads their image files, so
                                                   `pip install --no-deps ...` is enough)
  * the project's own tests/data/seed-images (8 photos; the painting there is left out);
  * any folder given with --photos DIR (every .jpg/.jpeg/.png/.webp in it).
That is about 60 photos, far fewer than the 1,150 pictures wanted. So each photo is cut into
several pieces that share no pixels (a guillotine split of the frame, larger photos giving more
pieces), and each piece becomes one picture, scaled down to at most 800 pixels on its longer
side. Pieces that are nearly flat (clear sky, fog, black) are dropped: two such pieces from
different photos would look the same to anyone. Pieces of one photo are different pictures
but share light, colours and subject, like shots from one burst; truth.json's "sources" lets
the evaluation tell such look-alike siblings from unrelated pictures.
Only if the photos cannot give enough pieces are the rest filled with made-up pictures
(gradients, shapes and noise); the summary and truth.json say how many of each kind there are.
Originals take the large pieces first, bursts the largest pieces left after them (each burst
uses one whole piece of its own, so it shares no pixels with any other picture; its shots are
about 1/1.4 of the piece's width and height, in the camera aspect, 1:1, 4:3, 3:2 or 16:9,
nearest the piece's), distractors what is left: every burst asked for is one real-photo
distractor fewer (a made-up one fills in).
With all the sources above and the defaults that is about 1,010 photo pieces and 140 made-up
pictures (all of them distractors); the pictures are small, typically 300 x 450 pixels, and
the originals are taken from the larger pieces (340 pixels or more on the shorter side).
The script stops with a message naming the packages above if it finds no photo at all.

The same --seed on the same set of installed photos gives the same folder (the photos are
visited in the order of their paths, so the same folders too: a checkout or virtualenv in
another place can give another folder); --bursts 0 gives the same folder as a run from before
--bursts existed. At the end it
prints how long it took, how many pictures of each kind and from which package, and the size
of the folder: that is the quick sanity check.

Needs: Pillow and numpy (pip install pillow numpy).
"""
import argparse
import hashlib
import importlib.util
import io
import json
import math
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parent.parent
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

# Debian packages: (package, folder, photo file names). Only the photographs are listed.
APT_PHOTOS = [
    ("lomiri-wallpapers-16.04", "/usr/share/backgrounds", [
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg",
        "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"]),
    ("lomiri-wallpapers-20.04", "/usr/share/backgrounds", ["Kleiber_by_Lukas_Baubkus.jpg"]),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature", [
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
        "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"]),
    ("palapeli-data", "/usr/share/palapeli/collection", [
        "castle-maintenon.jpg", "cincinnati-bridge.jpg", "citrus-fruits.jpg",
        "european-honey-bee.jpg", "panther-chameleon-female.jpg"]),
]
# Plasma keeps each wallpaper in its own folder, in several sizes: the largest one is used.
PLASMA_FOLDER = "/usr/share/wallpapers"
PLASMA_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                 "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
# PyPI packages: (package, module, folder inside it, photo file names). motorcycle_right is
# left out: it is the other half of a stereo pair with motorcycle_left, nearly the same picture.
PIP_PHOTOS = [
    ("scikit-image", "skimage", "data", [
        "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
        "hubble_deep_field.jpg", "motorcycle_left.png", "rocket.jpg"]),
    ("scikit-learn", "sklearn", "datasets/images", ["china.jpg", "flower.jpg"]),
]
SEED_FOLDER = REPO / "tests" / "data" / "seed-images"
SEED_LEFT_OUT = {"style.jpg"}  # a painting, not a photo

INSTALL_HINT = ("apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds "
                "plasma-workspace-wallpapers palapeli-data\n"
                "    pip install scikit-image scikit-learn   (or give a folder of photos with --photos)")

MAX_SIDE = 800           # longest side of a picture made from a piece
MIN_PIECE_SIDE = 240     # shortest side of a piece, in the photo's own pixels
MIN_ORIGINAL_SIDE = 360  # originals come from pieces at least this big, see assign_roles()
MIN_DETAIL = 3.0         # mean brightness step between neighbouring pixels, see detail()
BURST_SHOTS = (3, 6)     # shots per burst, both ends included
BURST_MARGIN = 1.4       # a burst's piece is this much larger than its shots, room to move
BURST_ASPECTS = [1.0, 4 / 3, 3 / 2, 16 / 9]  # long : short side of the shots
EDITS = ["jpeg_low", "downscale", "crop", "brightness", "rotate", "caption", "png", "mirror"]
# --edits hard: what other people's copies go through, on top of the mild ones above.
HARD_EDITS = EDITS + ["crop_half", "rotate_wide", "quarter_turn", "border", "letterbox", "framed",
                      "grey", "tint", "watermark", "jpeg_heavy", "tiny"]
CAPTIONS = ["Summer 2019", "Best day ever!", "Happy birthday Anna", "Our trip to the coast",
            "Look at this!", "Family weekend", "Good morning", "Throwback Thursday",
            "Missing this place", "Sunday walk"]


# ---------------------------------------------------------------- finding the photos

def find_photos(extra_folders):
    """Return [(label, path)] of every source photo found on this machine, in a fixed order."""
    found = []
    for package, folder, names in APT_PHOTOS:
        found += [(f"{package}:{n}", Path(folder) / n) for n in names if (Path(folder) / n).is_file()]
    for name in PLASMA_PHOTOS:
        largest = largest_plasma_image(Path(PLASMA_FOLDER) / name / "contents" / "images")
        if largest:
            found.append((f"plasma-workspace-wallpapers:{name}", largest))
    for package, module, folder, names in PIP_PHOTOS:
        base = module_folder(module)
        if base:
            found += [(f"{package}:{n}", base / folder / n) for n in names if (base / folder / n).is_file()]
    if SEED_FOLDER.is_dir():
        found += [(f"seed-images:{p.name}", p) for p in sorted(SEED_FOLDER.iterdir())
                  if p.suffix.lower() in PHOTO_SUFFIXES and p.name not in SEED_LEFT_OUT]
    for folder in extra_folders:
        found += [(f"{folder}:{p.name}", p) for p in sorted(Path(folder).iterdir())
                  if p.suffix.lower() in PHOTO_SUFFIXES]
    return without_repeats(found)


def largest_plasma_image(folder):
    """The largest of Plasma's WIDTHxHEIGHT.jpg files in folder, or None."""
    sizes = []
    for p in folder.glob("*") if folder.is_dir() else []:
        m = re.fullmatch(r"(\d+)x(\d+)", p.stem)
        if m and p.suffix.lower() in PHOTO_SUFFIXES:
            sizes.append((int(m[1]) * int(m[2]), p))
    return max(sizes)[1] if sizes else None


def module_folder(module):
    """Folder of an installed Python package, without importing it (only its files are read)."""
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec and spec.origin else None


def without_repeats(found):
    """Drop a photo whose file is byte for byte one found before (say, the same wallpaper
    shipped twice), so that no two sources are secretly the same photo."""
    seen, kept = set(), []
    for label, path in found:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append((label, path))
    return kept


def open_rgb(path):
    with Image.open(path) as img:
        return img.convert("RGB")


# ---------------------------------------------------------------- cutting photos into pieces

def plan_pieces(sources, wanted, rng):
    """Cut every photo into pieces sharing no pixels, about `wanted` pieces in all, shared
    out by photo area. Return [(label, path, box)] of the pieces that are not flat."""
    sizes = {}
    for label, path in sources:
        with Image.open(path) as img:
            sizes[label] = img.size
    total_area = sum(w * h for w, h in sizes.values())
    pieces = []
    for label, path in sources:
        w, h = sizes[label]
        share = max(1, round(wanted * w * h / total_area))
        boxes = split_frame(w, h, share, rng)
        photo = open_rgb(path)
        pieces += [(label, path, box) for box in boxes if detail(photo.crop(box)) >= MIN_DETAIL]
    return pieces


def split_frame(width, height, count, rng):
    """Split a width x height frame into up to `count` boxes (left, top, right, bottom) that
    do not overlap: the largest box is cut in two across its longer side, again and again,
    while both halves keep at least MIN_PIECE_SIDE pixels on each side."""
    boxes, done = [(0, 0, width, height)], []
    while boxes and len(boxes) + len(done) < count:
        boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        left, top, right, bottom = boxes.pop()
        w, h = right - left, bottom - top
        long_side = max(w, h)
        cut = round(long_side * rng.uniform(0.35, 0.65))
        if min(cut, long_side - cut, min(w, h)) < MIN_PIECE_SIDE:
            done.append((left, top, right, bottom))
        elif w >= h:
            boxes += [(left, top, left + cut, bottom), (left + cut, top, right, bottom)]
        else:
            boxes += [(left, top, right, top + cut), (left, top + cut, right, bottom)]
    return sorted(boxes + done)


def detail(img):
    """How much is going on in a picture: the mean brightness step between neighbouring
    pixels of a 128-pixel thumbnail. Clear sky, fog or a blurred background score 1 to 3,
    a kite in the sky or a far mountain range 3 to 4, grass or foliage 10 or more."""
    thumb = img.convert("L")
    thumb.thumbnail((128, 128))
    a = np.asarray(thumb, dtype=np.float32)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def picture_from_piece(photo, box, rng):
    piece = photo.crop(box)
    longest = max(piece.size)
    target = rng.randint(560, MAX_SIDE)
    if longest > target:
        scale = target / longest
        piece = piece.resize((max(1, round(piece.width * scale)), max(1, round(piece.height * scale))),
                             Image.LANCZOS)
    return piece


# ---------------------------------------------------------------- made-up pictures (last resort)

def generated_picture(rng):
    """Gradient, a few shapes and sensor-like noise: used only when photos run out."""
    w, h = rng.choice([(640, 480), (480, 640), (800, 533), (600, 600)])
    top = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = Image.fromarray(np.broadcast_to(top + (bottom - top) * t, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(4, 14)):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(10, min(w, h) // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x - r, y - r // 2, x + r, y + r], fill=colour)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- the edits

def edit(img, name, rng):
    """Apply one of EDITS. Return (picture, file format, JPEG quality, name to record); the
    brightness edit is recorded as "brighter" or "darker"."""
    if name == "jpeg_low":
        return img, "JPEG", rng.randint(20, 40), name
    if name == "downscale":
        scale = rng.uniform(0.30, 0.60)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        return img.resize(size, Image.LANCZOS), "JPEG", 90, name
    if name == "crop":
        side = math.sqrt(rng.uniform(0.75, 0.90))
        w, h = round(img.width * side), round(img.height * side)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        return img.crop((x, y, x + w, y + h)), "JPEG", 90, name
    if name == "brightness":
        factor = rng.choice([0.7, 1.3])
        recorded = "brighter" if factor > 1 else "darker"
        return ImageEnhance.Brightness(img).enhance(factor), "JPEG", 90, recorded
    if name == "rotate":
        return rotated(img, rng.uniform(3, 8) * rng.choice([-1, 1])), "JPEG", 90, name
    if name == "caption":
        return captioned(img, rng), "JPEG", 90, name
    if name == "png":
        return img, "PNG", None, name
    if name == "mirror":
        return img.transpose(Image.FLIP_LEFT_RIGHT), "JPEG", 90, name
    return hard_edit(img, name, rng)


def hard_edit(img, name, rng):
    """The edits only --edits hard makes."""
    if name == "crop_half":
        side = math.sqrt(rng.uniform(0.45, 0.70))
        w, h = round(img.width * side), round(img.height * side)
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
        return img.crop((x, y, x + w, y + h)), "JPEG", 90, name
    if name == "rotate_wide":
        return rotated(img, rng.uniform(5, 14) * rng.choice([-1, 1])), "JPEG", 90, name
    if name == "quarter_turn":
        turn = rng.choice([Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270])
        return img.transpose(turn), "JPEG", 90, name
    if name in ("border", "letterbox"):
        colour = tuple(rng.randrange(256) for _ in range(3)) if name == "border" else (0, 0, 0)
        if name == "border":
            pad = round(min(img.size) * rng.uniform(0.04, 0.12))
            size, at = (img.width + 2 * pad, img.height + 2 * pad), (pad, pad)
        else:
            tall = rng.random() < 0.5
            grow = rng.uniform(1.15, 1.5)
            size = (img.width, round(img.height * grow)) if tall else (round(img.width * grow), img.height)
            at = ((size[0] - img.width) // 2, (size[1] - img.height) // 2)
        canvas = Image.new("RGB", size, colour)
        canvas.paste(img, at)
        return canvas, "JPEG", 90, name
    if name == "framed":
        return in_window(img, rng), "JPEG", 90, name
    if name == "grey":
        return img.convert("L").convert("RGB"), "JPEG", 90, name
    if name == "tint":
        r, g, b = (np.asarray(img, dtype=np.float32)[..., c] for c in range(3))
        gains = [rng.uniform(0.7, 1.3) for _ in range(3)]
        lift = rng.uniform(0, 40)
        out = np.stack([lift + r * gains[0], lift + g * gains[1], lift + b * gains[2]], -1)
        return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), "JPEG", 90, name
    if name == "watermark":
        return watermarked(img, rng), "JPEG", 90, name
    if name == "jpeg_heavy":
        return img, "JPEG", rng.randint(12, 30), name
    if name == "tiny":
        scale = rng.uniform(0.2, 0.34)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        return img.resize(size, Image.BILINEAR), "JPEG", 90, name
    raise ValueError(name)


def in_window(img, rng):
    """The picture in a grey window with a title bar and a line of text, as in a screenshot."""
    grow_w, grow_h = rng.uniform(1.2, 1.7), rng.uniform(1.25, 1.6)
    canvas = Image.new("RGB", (round(img.width * grow_w), round(img.height * grow_h)), (232, 232, 236))
    draw = ImageDraw.Draw(canvas)
    bar = max(14, canvas.height // 14)
    draw.rectangle([0, 0, canvas.width, bar], fill=(60, 64, 72))
    draw.text((bar, bar // 2), rng.choice(CAPTIONS), fill="white", font=caption_font(bar // 2), anchor="lm")
    x = rng.randint(0, canvas.width - img.width)
    y = rng.randint(bar + 2, max(bar + 2, canvas.height - img.height))
    canvas.paste(img, (x, y))
    return canvas


def watermarked(img, rng):
    """Half-transparent text over a corner or the middle."""
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = caption_font(max(10, img.width // rng.randint(8, 14)))
    x, y = rng.uniform(0.05, 0.5) * img.width, rng.uniform(0.1, 0.85) * img.height
    draw.text((x, y), rng.choice(["(c) photo", "SAMPLE", "my photos"]), font=font,
              fill=(255, 255, 255, rng.randint(90, 170)))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def rotated(img, degrees):
    """Turn the picture and cut away the corners that would show a border."""
    w, h = (int(side) for side in inner_rectangle(img.width, img.height, math.radians(degrees)))
    turned = img.rotate(degrees, resample=Image.BICUBIC)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return turned.crop((left, top, left + w, top + h))


def inner_rectangle(w, h, angle):
    """Largest upright rectangle inside a w x h rectangle turned by angle (radians)."""
    sin_a, cos_a = abs(math.sin(angle)), abs(math.cos(angle))
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2 * sin_a * cos_a * long_side:
        x = short_side / 2
        return (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a


def captioned(img, rng):
    """Add a solid bar of 10-15 % of the height above or below, with a line of text on it."""
    bar = max(12, round(img.height * rng.uniform(0.10, 0.15)))
    bar_colour = rng.choice(["white", "black", "#202830"])
    text_colour = "black" if bar_colour == "white" else "white"
    canvas = Image.new("RGB", (img.width, img.height + bar), bar_colour)
    on_top = rng.random() < 0.5
    canvas.paste(img, (0, bar if on_top else 0))
    draw = ImageDraw.Draw(canvas)
    font = caption_font(round(bar * 0.55))
    y = (0 if on_top else img.height) + bar // 2
    draw.text((bar // 3, y), rng.choice(CAPTIONS), fill=text_colour, font=font, anchor="lm")
    return canvas


def caption_font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow older than 10.1 has only a small bitmap font
        return ImageFont.load_default()


# ---------------------------------------------------------------- writing the folder

def assign_roles(pieces, originals, distractors, bursts=0):
    """Return [(role, piece)] for every picture (or burst) to write, role "original", "burst"
    or "distractor", piece None for a made-up picture. Originals come first from the pieces
    big enough to stay recognisable when a copy is downscaled to 30 %, bursts next from the
    largest pieces left (their shots are smaller than the piece); the smallest pieces are
    the ones left over."""
    def short_side(piece):
        left, top, right, bottom = piece[2]
        return min(right - left, bottom - top)
    ordered = sorted(pieces, key=lambda piece: short_side(piece) < MIN_ORIGINAL_SIDE)  # keeps the shuffle
    # Bursts take the largest pieces the originals left, as their shots are smaller than the piece.
    for_bursts = sorted(ordered[originals:], key=short_side, reverse=True)[:bursts]
    ordered = ordered[:originals] + for_bursts + [p for p in ordered[originals:] if p not in for_bursts]
    ordered += [None] * max(0, originals + bursts + distractors - len(ordered))
    return ([("original", piece) for piece in ordered[:originals]]
            + [("burst", piece) for piece in ordered[originals:originals + bursts]]
            + [("distractor", piece)
               for piece in ordered[originals + bursts:originals + bursts + distractors]])


def save(img, path_without_suffix, fmt, quality):
    suffix = ".png" if fmt == "PNG" else ".jpg"
    path = path_without_suffix.with_suffix(suffix)
    if fmt == "PNG":
        img.save(path, "PNG")
    else:
        img.save(path, "JPEG", quality=quality)
    return path.name


def reopened(img, quality):
    """The original as a person has it: decoded from the JPEG file that was written."""
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def build(out_dir, originals, distractors, seed, extra_folders, bursts=0):
    rng = random.Random(seed)
    sources = find_photos(extra_folders)
    if not sources:
        sys.exit("No source photos found. Install some, for example:\n    " + INSTALL_HINT)
    wanted = originals + distractors
    # Ask for more pieces than needed: the flat ones are dropped.
    pieces = plan_pieces(sources, round(wanted * 1.6), rng)
    rng.shuffle(pieces)
    jobs = assign_roles(pieces, originals, distractors, bursts)
    generated = sum(1 for _, piece in jobs if piece is None)
    if generated:
        print(f"warning: the photos gave only {len(pieces)} usable pieces; "
              f"{generated} made-up pictures fill the rest", file=sys.stderr)
    # How many shots each burst gets, known now so that all file names can be shuffled together.
    shot_counts = [rng.randint(*BURST_SHOTS) for role, _ in jobs if role == "burst"]
    file_count = len(jobs) - len(shot_counts) + sum(shot_counts) + 3 * originals
    names = [f"img_{i:05d}" for i in range(1, file_count + 1)]
    rng.shuffle(names)  # handed out in turn, so a name says nothing about its group

    images = Path(out_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    truth = {"groups": [], "edits": {}, "sources": {}, "seed": seed}
    if shot_counts:
        truth.update(scenes=[], shots={})
    shots = {}  # job index of a burst: its number of shots
    for index, (role, _) in enumerate(jobs):
        if role == "burst":
            shots[index] = shot_counts[len(shots)]
    by_photo = {}  # written photo by photo, so that each source photo is decoded once
    for index, (role, piece) in enumerate(jobs):
        by_photo.setdefault(piece[1] if piece else None, []).append(index)
    for path, indices in sorted(by_photo.items(), key=lambda kv: str(kv[0])):
        photo = open_rgb(path) if path else None
        for index in indices:
            role, piece = jobs[index]
            if role == "burst":
                write_burst(piece, photo, shots[index], images, names, truth, rng)
            else:
                write_job(role, piece, photo, images, names, truth, rng)
    truth["kinds"] = {"photo": len(jobs) - generated, "generated": generated}
    truth["groups"].sort()
    if shot_counts:
        truth["scenes"].sort()
    (Path(out_dir) / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


EDIT_RULES = {"edits": EDITS, "two": False, "step_aside": False}


def copy_edit_names(rng):
    """The edits of an original's 3 copies: one each, or with --two-edits two different ones."""
    edits = EDIT_RULES["edits"]
    if EDIT_RULES["two"]:
        return [rng.sample(edits, 2) for _ in range(3)]
    return [[name] for name in rng.sample(edits, 3)]


def write_job(role, piece, photo, images, names, truth, rng):
    """Write one picture (and, for an original, its 3 copies) and record it in truth."""
    if piece:
        label, _, box = piece
        img, source = picture_from_piece(photo, box, rng), f"{label}#{box[0]},{box[1]}"
    else:
        img, source = generated_picture(rng), "generated"
    if role == "distractor":
        fmt = "PNG" if rng.random() < 0.1 else "JPEG"
        name = save(img, images / names.pop(), fmt, rng.randint(85, 95))
        truth["sources"][name] = source
        return
    quality = rng.randint(88, 95)
    original = save(img, images / names.pop(), "JPEG", quality)
    truth["sources"][original] = source
    group = [original]
    base = reopened(img, quality)
    for edit_names in copy_edit_names(rng):
        copy_img, fmt, copy_quality, edit_name = base, "JPEG", 90, []
        for name in edit_names:
            if fmt == "PNG" or copy_quality != 90:  # a re-encoding edit goes last
                copy_img = reopened(copy_img, copy_quality) if fmt == "JPEG" else copy_img
            copy_img, fmt, copy_quality, recorded = edit(copy_img, name, rng)
            edit_name.append(recorded)
        edit_name = "+".join(edit_name)
        copy = save(copy_img, images / names.pop(), fmt, copy_quality)
        truth["edits"][copy] = edit_name
        truth["sources"][copy] = source
        group.append(copy)
    truth["groups"].append(group)


# ---------------------------------------------------------------- bursts

def write_burst(piece, photo, count, images, names, truth, rng):
    """Write `count` shots of one scene, cut from one piece only, and record them in truth."""
    if piece:
        label, _, box = piece
        region, source = photo.crop(box), f"{label}#{box[0]},{box[1]}"
    else:
        region, source = generated_picture(rng), "generated"
    # The shots' size: the widest box of the usual camera aspect nearest the piece's that
    # leaves BURST_MARGIN of room.
    shape = max(region.size) / min(region.size)
    aspect = min(BURST_ASPECTS, key=lambda a: abs(math.log(a / shape)))
    if region.width < region.height:
        aspect = 1 / aspect
    base_w = min(region.width / BURST_MARGIN, region.height / BURST_MARGIN * aspect)
    base_h = base_w / aspect
    # Work at the size the shots are saved at (never larger than the piece), so that the
    # small zoom and turn below need no further downscaling.
    scale = min(1.0, rng.randint(560, MAX_SIDE) / max(base_w, base_h))
    work = region.resize((max(1, round(region.width * scale)), max(1, round(region.height * scale))),
                         Image.LANCZOS) if scale < 1 else region
    out_size = (max(1, round(base_w * scale)), max(1, round(base_h * scale)))
    frames = burst_frames(work.size, out_size, count, rng)
    subject = moving_subject(work, out_size, count, rng) if rng.random() < 0.5 else None
    quality = rng.randint(85, 95)  # one camera, one setting
    scene = []
    for index, (cx, cy, zoom, degrees) in enumerate(frames):
        scene_now = work
        if subject:
            scene_now = work.copy()
            patch, mask, positions = subject
            scene_now.paste(patch, positions[index], mask)
        shot = framed(scene_now, out_size, cx, cy, zoom, degrees)
        if EDIT_RULES["step_aside"]:
            shot = seen_from_aside(shot, rng)
        exposure, blur, noise = rng.uniform(0.85, 1.15), rng.uniform(0, 1.2), rng.uniform(0, 5)
        shot = developed(shot, exposure, blur, noise, rng)
        name = save(shot, images / names.pop(), "JPEG", quality)
        half_w, half_h = zoom * out_size[0] / 2 / scale, zoom * out_size[1] / 2 / scale
        truth["shots"][name] = {
            "box": [round(v, 1) for v in (cx / scale - half_w, cy / scale - half_h,
                                          cx / scale + half_w, cy / scale + half_h)],
            "zoom": round(zoom, 3), "exposure": round(exposure, 3), "rotation": round(degrees, 2),
            "blur": round(blur, 2), "noise": round(noise, 2), "subject": subject is not None}
        truth["sources"][name] = source
        scene.append(name)
    truth["scenes"].append(scene)


def seen_from_aside(shot, rng):
    """The shot as a camera a step aside sees it: the scene's plane at a slight angle, each
    corner of the frame moved by 2-8 % of the size (bursts made with --step-aside)."""
    w, h = shot.size
    k = rng.uniform(0.02, 0.08)
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [(x + rng.uniform(-k, k) * w, y + rng.uniform(-k, k) * h) for x, y in corners]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(corners, moved):  # output (x, y) samples input (u, v)
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y]); rhs.append(v)
    coeffs = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return shot.transform((w, h), Image.PERSPECTIVE, tuple(coeffs), Image.BICUBIC)


def burst_frames(work_size, out_size, count, rng):
    """Where each shot of a burst points: [(centre x, centre y, zoom, degrees)] in the pixels
    of `work_size`. Each shot moves 5-25 % of the frame from the one before in a random
    direction; every two shots overlap by 60-90 % (intersection over union); every shot,
    turned, stays inside the piece. Drawn again until all of that holds."""
    width, height = work_size
    out_w, out_h = out_size
    for _ in range(1000):
        frames, cx, cy = [], 0.0, 0.0
        while len(frames) < count:
            for _ in range(200):
                zoom, degrees = rng.uniform(0.9, 1.1), rng.uniform(-3, 3)
                if frames:
                    step, angle = rng.uniform(0.05, 0.25), rng.uniform(0, 2 * math.pi)
                    x, y = cx + step * out_w * math.cos(angle), cy + step * out_h * math.sin(angle)
                else:  # the first shot: anywhere it fits
                    x, y = rng.uniform(0, width), rng.uniform(0, height)
                frame = (x, y, zoom, degrees)
                if (inside(frame, out_size, work_size)
                        # a hair inside 60-90 %, so that rounding in truth.json stays inside
                        and all(0.601 <= overlap(frame, other, out_size) <= 0.899 for other in frames)):
                    frames.append(frame)
                    cx, cy = x, y
                    break
            else:
                break  # stuck: start the burst again
        if len(frames) == count:
            return frames
    raise RuntimeError(f"cannot fit a burst of {count} shots of {out_size} in {work_size}")


def inside(frame, out_size, work_size):
    """Whether the turned frame keeps 2 pixels clear of the piece's edges (room for bicubic)."""
    cx, cy, zoom, degrees = frame
    half_w, half_h = zoom * out_size[0] / 2, zoom * out_size[1] / 2
    cos_a, sin_a = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    reach_x, reach_y = half_w * cos_a + half_h * sin_a, half_w * sin_a + half_h * cos_a
    return (reach_x + 2 <= cx <= work_size[0] - reach_x - 2
            and reach_y + 2 <= cy <= work_size[1] - reach_y - 2)


def overlap(a, b, out_size):
    """Intersection over union of the areas two frames show, turning left aside."""
    def box(frame):
        cx, cy, zoom, _ = frame
        return (cx - zoom * out_size[0] / 2, cy - zoom * out_size[1] / 2,
                cx + zoom * out_size[0] / 2, cy + zoom * out_size[1] / 2)
    (al, at, ar, ab), (bl, bt, br, bb) = box(a), box(b)
    cross = max(0.0, min(ar, br) - max(al, bl)) * max(0.0, min(ab, bb) - max(at, bt))
    return cross / ((ar - al) * (ab - at) + (br - bl) * (bb - bt) - cross)


def framed(scene, out_size, cx, cy, zoom, degrees):
    """The out_size picture a camera centred on (cx, cy), turned by degrees, with a field of
    view zoom times out_size, sees of the scene."""
    out_w, out_h = out_size
    cos_a, sin_a = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # PIL maps each output pixel (x, y) to the scene point (a x + b y + c, d x + e y + f).
    a, b, d, e = zoom * cos_a, -zoom * sin_a, zoom * sin_a, zoom * cos_a
    c = cx - a * out_w / 2 - b * out_h / 2
    f = cy - d * out_w / 2 - e * out_h / 2
    return scene.transform(out_size, Image.AFFINE, (a, b, c, d, e, f), resample=Image.BICUBIC)


def moving_subject(work, out_size, count, rng):
    """A small patch of the piece and where it is pasted in each shot: (patch, soft round mask,
    [(left, top)]), moving in a straight line across the middle of the scene."""
    side = max(8, round(max(out_size) * rng.uniform(0.08, 0.14)))
    side = min(side, work.width // 2, work.height // 2)
    left, top = rng.randrange(work.width - side + 1), rng.randrange(work.height - side + 1)
    patch = work.crop((left, top, left + side, top + side))
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse([side * 0.1, side * 0.1, side * 0.9, side * 0.9], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(side * 0.06))
    step = rng.uniform(0.04, 0.10) * out_size[0]
    angle = rng.uniform(0, 2 * math.pi)
    x = work.width / 2 - side / 2 + rng.uniform(-0.2, 0.2) * out_size[0]
    y = work.height / 2 - side / 2 + rng.uniform(-0.2, 0.2) * out_size[1]
    start = -(count - 1) / 2  # the path is centred on (x, y)
    positions = [(round(x + (start + i) * step * math.cos(angle)),
                  round(y + (start + i) * step * math.sin(angle))) for i in range(count)]
    return patch, mask, positions


def developed(shot, exposure, blur, noise, rng):
    """Exposure, a little blur and sensor noise: what differs between shots of one burst."""
    if blur > 0.05:
        shot = shot.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(shot, dtype=np.float32) * exposure
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, noise, pixels.shape)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- the sanity check

def print_summary(out_dir, truth, seconds):
    """How long it took, what kinds of pictures were made and from where, and the size."""
    files = list((Path(out_dir) / "images").iterdir())
    size = sum(f.stat().st_size for f in files)
    copies = len(truth["edits"])
    scenes, shots = truth.get("scenes", []), truth.get("shots", {})
    originals = {group[0] for group in truth["groups"]}
    print(f"wrote {len(files)} pictures to {out_dir}/images in {seconds:.0f} s, {size / 2**20:.0f} MiB")
    print(f"  {len(originals)} originals with {copies} copies, "
          f"{len(files) - len(originals) - copies - len(shots)} distractors"
          + (f", {len(scenes)} bursts with {len(shots)} shots" if scenes else ""))
    print(f"  made from photo pieces: {truth['kinds']['photo']}, made-up: {truth['kinds']['generated']}"
          " (originals" + (", distractors and bursts, each counted once" if scenes else " and distractors")
          + "; copies follow their original)")
    made_up = Counter("original" if name in originals else "distractor"
                      for name, source in truth["sources"].items()
                      if source == "generated" and name not in truth["edits"] and name not in shots)
    made_up["burst"] = sum(1 for scene in scenes if truth["sources"][scene[0]] == "generated")
    print(f"  of which made-up: {made_up['original']} originals, {made_up['distractor']} distractors"
          + (f", {made_up['burst']} bursts" if scenes else ""))
    if scenes:
        sizes = Counter(len(scene) for scene in scenes)
        print("  shots per burst: " + ", ".join(f"{n} shots {sizes[n]}" for n in sorted(sizes))
              + f"; bursts with a moving subject: "
              f"{sum(1 for scene in scenes if shots[scene[0]]['subject'])}")
    not_copies = [source for name, source in truth["sources"].items()
                  if name not in truth["edits"] and name not in shots]
    pictures = Counter(source.split(":")[0] for source in not_copies)
    photos = Counter(photo.split(":")[0] for photo in {source.split("#")[0] for source in not_copies})
    print("  pictures (not counting copies and shots) per package, and the source photos they were cut from:")
    for package, count in pictures.most_common():
        cut_from = "" if package == "generated" else f" from {photos[package]} photos"
        print(f"    {count:5d}{cut_from:>16}  {package}")
    per_edit = Counter(truth["edits"].values())
    print("  copies per edit: " + ", ".join(f"{edit} {n}" for edit, n in sorted(per_edit.items())))
    if scenes:
        per_package = Counter(truth["sources"][scene[0]].split(":")[0] for scene in scenes)
        print("  bursts per package: " + ", ".join(f"{p} {n}" for p, n in per_package.most_common()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--originals", type=int, default=150, help="photos that get 3 copies each")
    parser.add_argument("--distractors", type=int, default=1000, help="pictures with no copy")
    parser.add_argument("--bursts", type=int, default=0,
                        help="groups of 3-6 shots of one scene, for the \"scene\" strictness")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--edits", choices=["mild", "hard"], default="mild",
                        help="hard adds crops to half, wide and quarter turns, borders, letterbox, "
                             "frames, grey, tints, watermarks, heavy JPEG and tiny copies")
    parser.add_argument("--two-edits", action="store_true", help="every copy gets two edits")
    parser.add_argument("--step-aside", action="store_true",
                        help="burst shots also see the scene at a slight angle, as from a step aside")
    parser.add_argument("--photos", action="append", default=[], metavar="DIR",
                        help="another folder of real photos to cut pieces from")
    args = parser.parse_args()
    images = Path(args.out_dir) / "images"
    if images.is_dir() and any(images.iterdir()):
        sys.exit(f"{images} is not empty: give a new folder, so that old pictures do not mix in")
    EDIT_RULES.update(edits=HARD_EDITS if args.edits == "hard" else EDITS, two=args.two_edits,
                      step_aside=args.step_aside)
    started = time.monotonic()
    truth = build(args.out_dir, args.originals, args.distractors, args.seed, args.photos, args.bursts)
    print_summary(args.out_dir, truth, time.monotonic() - started)


if __name__ == "__main__":
    main()
