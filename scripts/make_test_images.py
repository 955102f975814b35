#!/usr/bin/env python3
"""Write N varied JPEG photos-to-be (gradients, shapes, noise) into a folder, for measuring
lookalike on big folders. Run by a person, not by CI.

    python3 scripts/make_test_images.py OUT_DIR N [WIDTH HEIGHT]
    python3 scripts/make_test_images.py --photos SEED_DIR OUT_DIR N [WIDTH HEIGHT]

The second form makes camera-sized photos (default 4000×3000, 12 megapixels) from real ones:
each seed photo is enlarged and given sensor-like noise, so that the files are as large and as
slow to decode as a phone's (about 3–5 MB at quality 92).

Needs: Pillow (and numpy for --photos).
"""
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter


def picture(rng, width, height):
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(rng.randrange(3, 12)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(10, max(11, min(width, height) // 3))
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            draw.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=colour)
    return img.filter(ImageFilter.GaussianBlur(rng.choice([0, 1, 2])))


def main(out, count, width=640, height=480):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1234)
    for i in range(count):
        w, h = (width, height) if rng.random() < 0.7 else (height, width)
        picture(rng, w, h).save(os.path.join(out, f"img{i:05d}.jpg"), quality=88)


def photos(seeds, out, count, width=4000, height=3000):
    import numpy as np

    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1234)
    names = sorted(n for n in os.listdir(seeds) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    for i in range(count):
        seed = Image.open(os.path.join(seeds, names[i % len(names)])).convert("RGB")
        big = np.asarray(seed.resize((width, height), Image.BICUBIC), dtype=np.float32)
        big += rng.normal(0, 5, big.shape).astype(np.float32)
        picture = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
        picture.save(os.path.join(out, f"photo{i:04d}.jpg"), quality=92)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--photos":
        photos(sys.argv[2], sys.argv[3], int(sys.argv[4]), *map(int, sys.argv[5:7]))
        sys.exit()
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:5]))
