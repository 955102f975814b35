#!/usr/bin/env python3
"""Side-by-side speed of lookalike and the equivalent PyTorch pipeline, in one run, on this
machine, with the same number of threads. Run by a person, not by CI:

    python3 scripts/peer_bench.py [--threads 2] [--seconds 5] [--lookalike target/release/lookalike]
                                  [--vgg16 WEIGHTS] [DIR]

With --vgg16, the VGG16 convolutional features (what lookalike embeds with) are timed too, at
batch 1 and 8, against torchvision's `vgg16().features`; any VGG16 safetensors file will do
(a features-only one is enough), since speed does not depend on the values.

PyTorch runs EfficientNet-Lite0 with the same weights (read from models/ without torch's own
loader) and the same conventions (TF "SAME" padding, BatchNorm eps 1e-3, ReLU6), twice: with
BatchNorm folded into the convolutions as lookalike does (the stricter peer), and as the
shipped reference in ../shared/reference-tools runs it, with BatchNorm as its own op. The folder
pipeline is what a tutorial user runs: PIL decode, resize and crop, batches of 50; it is
compared with `lookalike bench`'s end to end and with a whole `lookalike index --no-cache` run
timed from outside. Thumbnails are compared with PIL's `Image.thumbnail` on as many threads.
The ratios are printed, then lookalike's other figures (decoding, the similarity sort).

Needs: torch, numpy, pillow.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from onnx_peers import STAGES, read_safetensors as read_numpy_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_safetensors(path):
    """The weights as torch tensors (onnx_peers.py reads them with numpy alone)."""
    return {name: torch.from_numpy(array) for name, array in read_numpy_weights(path).items()}


def same_pad(x, k, s):
    ih, iw = x.shape[-2:]
    ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
    pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class Lite0(torch.nn.Module):
    """EfficientNet-Lite0 with BatchNorm folded into the convolutions, as a fair peer."""

    def __init__(self, sd):
        super().__init__()
        self.layers = []

        def conv(name, bn, stride=1, groups=1):
            w = sd[name + ".weight"]
            scale = sd[bn + ".weight"] / torch.sqrt(sd[bn + ".running_var"] + 1e-3)
            bias = sd[bn + ".bias"] - sd[bn + ".running_mean"] * scale
            return (w * scale[:, None, None, None]).contiguous(), bias, stride, groups, w.shape[-1]

        self.stem = conv("_conv_stem", "_bn0", 2)
        self.blocks = []
        b = 0
        for r, k, s, e, cin, cout in STAGES:
            for j in range(r):
                p = f"_blocks.{b}"
                inp = cin if j == 0 else cout
                stride = s if j == 0 else 1
                expand = conv(p + "._expand_conv", p + "._bn0") if e != 1 else None
                dw = conv(p + "._depthwise_conv", p + "._bn1", stride, inp * e)
                project = conv(p + "._project_conv", p + "._bn2")
                self.blocks.append((expand, dw, project, stride == 1 and inp == cout))
                b += 1
        self.head = conv("_conv_head", "_bn1")
        self.fc = (sd["_fc.weight"], sd["_fc.bias"])

    @staticmethod
    def apply(x, layer, relu6=True):
        w, bias, stride, groups, k = layer
        if k > 1:
            x = same_pad(x, k, stride)
        x = F.conv2d(x, w, bias, stride=stride, groups=groups)
        return F.relu6(x) if relu6 else x

    @torch.no_grad()
    def forward(self, x):
        x = self.apply(x, self.stem)
        for expand, dw, project, skip in self.blocks:
            h = self.apply(x, expand) if expand else x
            h = self.apply(h, dw)
            h = self.apply(h, project, relu6=False)
            x = h + x if skip else h
        x = self.apply(x, self.head)
        pooled = x.mean(dim=(2, 3))
        return pooled, F.linear(pooled, *self.fc)


def preprocess(path):
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    x = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    return (x - 127.0) / 128.0


def shipped_reference(weights):
    """The reference implementation as shipped in ../shared/reference-tools (BatchNorm as its
    own op, as the tutorial's model runs), on the same weights; None where it is not present."""
    tools = os.path.join(ROOT, "..", "shared", "reference-tools")
    if not os.path.exists(os.path.join(tools, "lite0_ref.py")):
        return None
    sys.path.insert(0, tools)
    import lite0_ref
    reference = object.__new__(lite0_ref.Lite0)
    reference.sd, reference.padding = weights, "same"
    return reference.features


def time_forward(model, batch, seconds):
    x = torch.randn(batch, 3, 224, 224)
    model(x)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < seconds:
        model(x)
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def time_folder(model, folder):
    files = list_images(folder)
    start = time.perf_counter()
    done = 0
    for i in range(0, len(files), 50):
        batch = []
        for f in files[i:i + 50]:
            try:
                batch.append(preprocess(f))
            except Exception as e:  # a tutorial pipeline skips what PIL cannot read
                print(f"skipped {f}: {e}", file=sys.stderr)
        if batch:
            model(torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous())
            done += len(batch)
    return done, time.perf_counter() - start


def time_thumbnails(folder, threads):
    """PIL's own thumbnail path, on `threads` threads (PIL lets go of the GIL while decoding):
    `Image.thumbnail` asks libjpeg-turbo for a reduced decode of big JPEGs, just as lookalike
    does, then resizes and saves a 256-pixel JPEG."""
    from concurrent.futures import ThreadPoolExecutor
    import io

    def one(path):
        try:
            im = ImageOps.exif_transpose(Image.open(path))
            im.thumbnail((256, 256), Image.BILINEAR)
            im.convert("RGB").save(io.BytesIO(), "JPEG", quality=85)
            return 1
        except Exception:
            return 0

    files = list_images(folder)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = sum(pool.map(one, files))
    return done / (time.perf_counter() - start)


def list_images(folder):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                  if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)


def lookalike_bench(binary, threads, seconds, folder):
    cmd = [binary, "bench", "--json", "--threads", str(threads), "--seconds", str(seconds), "--batches", "1,16"]
    if folder:
        cmd.append(folder)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def lookalike_index(binary, threads, folder):
    """Images per second of a cold `lookalike index --no-cache`, timed from outside: process
    start and model load included."""
    start = time.perf_counter()
    out = subprocess.run([binary, "index", "--no-cache", "--json", "--threads", str(threads), folder],
                         capture_output=True, text=True).stdout
    seconds = time.perf_counter() - start
    return json.loads(out)["images"] / seconds


def vgg16_rows(args):
    """(name, lookalike img/s, PyTorch img/s) for VGG16's conv features at batch 1 and 8."""
    import torchvision
    features = torchvision.models.vgg16().features.eval()
    rows = []
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        with torch.no_grad():
            features(x)
            runs, start = 0, time.perf_counter()
            while runs < 2 or time.perf_counter() - start < args.seconds:
                features(x)
                runs += 1
        theirs = runs * batch / (time.perf_counter() - start)
        cmd = [args.lookalike, "bench", "--json", "--model", "vgg16", "--weights", args.vgg16,
               "--threads", str(args.threads), "--seconds", str(args.seconds), "--batches", str(batch)]
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[0])
        rows.append((f"VGG16 features, batch {batch}", row["images_per_second"], theirs))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--lookalike", default=os.path.join(ROOT, "target/release/lookalike"))
    ap.add_argument("--vgg16", help="a VGG16 safetensors file, to time VGG16 too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights = read_safetensors(os.path.join(ROOT, "models/efficientnet-lite0.safetensors"))
    model = Lite0(weights)
    peer = {f"forward lite0 batch {b}": time_forward(model, b, args.seconds) for b in (1, 16)}
    reference = shipped_reference(weights)
    if reference:
        for b in (1, 16):
            peer[f"forward lite0 batch {b} vs shipped reference"] = time_forward(reference, b, args.seconds)
    ours = {}
    for row in lookalike_bench(args.lookalike, args.threads, args.seconds, args.dir):
        key = "end to end" if row["what"].startswith("end to end") else row["what"]
        ours[key] = row.get("images_per_second") or row.get("milliseconds")
    if args.dir:
        done, seconds = time_folder(model, args.dir)
        peer["end to end"] = done / seconds
        peer["index --no-cache, wall clock"] = peer["end to end"]
        ours["index --no-cache, wall clock"] = lookalike_index(args.lookalike, args.threads, args.dir)
        print(f"PyTorch pipeline: {done} images in {seconds:.1f} s", file=sys.stderr)
        peer["decode + thumbnail"] = time_thumbnails(args.dir, args.threads)
    print(f"{'work':<44} {'lookalike':>12} {'PyTorch ' + torch.__version__ + ' / PIL':>24} {'ratio':>7}")
    rows = [(key, ours.get(key.split(" vs ")[0], float("nan")), theirs) for key, theirs in peer.items()]
    if args.vgg16:
        rows += vgg16_rows(args)
    for key, mine, theirs in rows:
        print(f"{key:<44} {mine:>8.1f} img/s {theirs:>18.1f} img/s {mine / theirs:>6.2f}x")
    for key, value in ours.items():
        if key.startswith("similarity sort"):
            print(f"{key:<44} {value:>8.1f} ms")
        elif key.startswith("decode") and key not in peer:
            print(f"{key:<44} {value:>8.1f} img/s")

if __name__ == "__main__":
    main()
