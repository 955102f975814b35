#!/usr/bin/env python3
"""lookalike against the fastest CPU runtimes, side by side in one run on this machine with the
same number of threads: ONNX Runtime (f32) and OpenVINO, both at its own default precision
(bf16 on CPUs that have it) and forced to f32. Run by a person, not by CI:

    pip install numpy onnx onnxruntime openvino pillow
    python3 scripts/onnx_peers.py [--threads 2] [--seconds 5] [--batches 1,16]
                                  [--lookalike target/release/lookalike] [--keep-onnx FILE]
                                  [--vgg16 WEIGHTS] [--vgg16-batches 1,8] [DIR]

The ONNX models are built here, without PyTorch. EfficientNet-Lite0 from the weights lookalike
ships (models/efficientnet-lite0.safetensors): BatchNorm folded into the convolutions as
lookalike does, ReLU6 as Clip, and TF "SAME" padding written into each Conv as static pads for
224 × 224 input. (Exporting the PyTorch reference instead traces its runtime padding into
dozens of Pad nodes that the runtimes cannot fuse, which would make them look slower than they
are.) With --vgg16, VGG16's convolutional features (what lookalike embeds with, mean-pooled to
512) from that safetensors file; speed does not depend on the values, so any VGG16 file will do.

The first lines name the CPU and the flags that decide which paths exist (AVX-512, bf16, AMX).
lookalike runs at `auto` (the fastest path it measured on this CPU, see the README's
"Precision"), at f32 and, where the CPU has it, at bf16; on a CPU with AMX, OpenVINO's bf16 is
also timed with AMX kept off (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16). The script prints images
per second for every runtime and batch size, the ratio of lookalike to each, the goals (auto at
least 1.25× OpenVINO's default, and at least 0.95× lookalike's own fastest path), and how far
each runtime's embeddings are from ONNX Runtime's f32 ones (cosine, on random input).

With DIR (a folder of photos), it also times the whole job end to end: `lookalike index
--no-cache DIR` from outside, against a Python pipeline that decodes with PIL on a thread pool
(resize the shorter side to 256, crop 224, as lookalike does) overlapped with ONNX Runtime on
batches of 32; the same with PIL's `draft` (libjpeg-turbo decoding a large JPEG at the smallest
of 1/2, 1/4 or 1/8 of its size that still covers 256, as PIL users do, or 512, the scale
lookalike keeps for fidelity); and the first feeding OpenVINO at its default precision. For camera-sized photos: `scripts/make_test_images.py --photos SEEDS DIR 200`.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "models", "efficientnet-lite0.safetensors")
# (repeats, kernel, stride, expansion, input channels, output channels) of each stage.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
SIDE = 224


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(meta["shape"]).copy()
    return out


class GraphBuilder:
    """Appends Lite0's layers to an ONNX graph, keeping track of the spatial size so that
    every "SAME" padding is a constant."""

    def __init__(self, weights):
        from onnx import helper
        self.helper = helper
        self.weights = weights
        self.nodes, self.initialisers = [], []
        self.side = SIDE
        self.count = 0

    def constant(self, name, array):
        from onnx import numpy_helper
        self.initialisers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def fresh(self, what):
        self.count += 1
        return f"{what}_{self.count}"

    def conv(self, x, conv_name, bn_name, stride=1, groups=1, relu6=True):
        w = self.weights[conv_name + ".weight"]
        scale = self.weights[bn_name + ".weight"] / np.sqrt(self.weights[bn_name + ".running_var"] + 1e-3)
        bias = self.weights[bn_name + ".bias"] - self.weights[bn_name + ".running_mean"] * scale
        kernel = w.shape[-1]
        out_side = math.ceil(self.side / stride)
        total = max((out_side - 1) * stride + kernel - self.side, 0)
        low, high = total // 2, total - total // 2
        self.side = out_side
        w_name = self.constant(self.fresh("w"), w * scale[:, None, None, None])
        b_name = self.constant(self.fresh("b"), bias)
        y = self.fresh("conv")
        self.nodes.append(self.helper.make_node(
            "Conv", [x, w_name, b_name], [y], strides=[stride, stride], group=groups,
            kernel_shape=[kernel, kernel], pads=[low, low, high, high]))
        if not relu6:
            return y
        clipped = self.fresh("relu6")
        self.nodes.append(self.helper.make_node("Clip", [y, "zero", "six"], [clipped]))
        return clipped

    def build(self):
        from onnx import TensorProto
        helper = self.helper
        self.constant("zero", np.array(0.0))
        self.constant("six", np.array(6.0))
        x = self.conv("input", "_conv_stem", "_bn0", stride=2)
        block = 0
        for repeats, kernel, stride, expansion, cin, cout in STAGES:
            for j in range(repeats):
                p = f"_blocks.{block}"
                inp, s = (cin, stride) if j == 0 else (cout, 1)
                h = self.conv(x, p + "._expand_conv", p + "._bn0") if expansion != 1 else x
                h = self.conv(h, p + "._depthwise_conv", p + "._bn1", stride=s, groups=inp * expansion)
                h = self.conv(h, p + "._project_conv", p + "._bn2", relu6=False)
                if s == 1 and inp == cout:
                    added = self.fresh("add")
                    self.nodes.append(helper.make_node("Add", [h, x], [added]))
                    h = added
                x = h
                block += 1
        x = self.conv(x, "_conv_head", "_bn1")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled_4d"]))
        self.nodes.append(helper.make_node("Flatten", ["pooled_4d"], ["pooled"]))
        graph = helper.make_graph(
            self.nodes, "efficientnet_lite0",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
            [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 1280])],
            self.initialisers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# Output channels of VGG16's convolutions, "M" for a 2×2 max-pool, and each convolution's index
# in torchvision's `features`.
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M"]
VGG16_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def vgg16_graph(weights):
    """VGG16's features, mean-pooled to 512 values per image, as lookalike embeds with it."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, initialisers, x, convs = [], [], "input", iter(VGG16_INDICES)
    for n, layer in enumerate(VGG16_LAYERS):
        y = f"layer_{n}"
        if layer == "M":
            nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[2, 2], strides=[2, 2]))
        else:
            index = next(convs)
            w, b = (f"features.{index}.{part}" for part in ("weight", "bias"))
            initialisers += [numpy_helper.from_array(weights[w], w), numpy_helper.from_array(weights[b], b)]
            nodes.append(helper.make_node("Conv", [x, w, b], [y + "_conv"], kernel_shape=[3, 3],
                                          pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [y + "_conv"], [y]))
        x = y
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled_4d"]))
    nodes.append(helper.make_node("Flatten", ["pooled_4d"], ["pooled"]))
    graph = helper.make_graph(
        nodes, "vgg16_features",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 512])],
        initialisers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def time_runs(run, batch, seconds):
    x = np.random.default_rng(0).standard_normal((batch, 3, SIDE, SIDE)).astype(np.float32)
    run(x)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < seconds:
        run(x)
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def onnxruntime_runner(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]


def openvino_runner(path, threads, batch, precision):
    import openvino as ov
    core = ov.Core()
    model = core.read_model(path)
    model.reshape([batch, 3, SIDE, SIDE])
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", config)
    chosen = compiled.get_property("INFERENCE_PRECISION_HINT")
    request = compiled.create_infer_request()
    return (lambda x: request.infer({0: x})[compiled.output(0)]), chosen.get_type_name()


def lookalike_rates(binary, threads, batches, seconds, precision, extra=()):
    """lookalike's own `bench` of the forward pass: {batch: images per second}, and the
    precision it says it ran."""
    out = subprocess.run(
        [binary, "bench", "--json", "--threads", str(threads), "--sort-items", "0",
         "--precision", precision, "--batches", ",".join(map(str, batches)),
         "--seconds", str(seconds), *extra],
        check=True, capture_output=True, text=True).stdout
    rates, ran = {}, precision
    for line in out.splitlines():
        words = json.loads(line).get("what", "").split()
        if words[:1] == ["forward"] and len(words) == 5:
            ran = words[2]
            rates[int(words[4])] = json.loads(line)["images_per_second"]
    return rates, ran


def check_against_reference(run):
    """The built model on the repository's synthetic input, against the reference model's
    pooled features for it (tests/data/lite0-synthetic-input.json): proof that the ONNX graph
    is the same network."""
    with open(os.path.join(ROOT, "tests", "data", "lite0-synthetic-input.json")) as f:
        expected = np.array(json.load(f)["pooled_1280"], dtype=np.float32)
    c, h, w = np.meshgrid(np.arange(3), np.arange(SIDE), np.arange(SIDE), indexing="ij")
    x = (((c * SIDE * SIDE + h * SIDE + w) % 251) - 125).astype(np.float32)[None] / 128.0
    got = run(x)[0]
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


def cosine_to(reference, other):
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.linalg.norm(other, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def time_peers(path, args, batches, probe, lookalike_extra=()):
    """{batch: {runtime: images per second}} and {runtime: cosines to ONNX Runtime f32}.
    lookalike goes first, before the runtimes start threads that could linger."""
    results = {b: {} for b in batches}
    fidelity = {}
    if os.path.exists(args.lookalike):
        # Every path this CPU has: bf16 is refused (and skipped) where it is missing.
        for precision in ["auto", "f32", "bf16"]:
            try:
                rates, ran = lookalike_rates(args.lookalike, args.threads, batches, args.seconds,
                                             precision, lookalike_extra)
            except subprocess.CalledProcessError:
                continue
            for b, rate in rates.items():
                results[b][f"lookalike {precision} ({ran})"] = rate
    else:
        print(f"({args.lookalike} not found: build it with cargo build --release)", file=sys.stderr)
    ort_run = onnxruntime_runner(path, args.threads)
    reference = ort_run(probe)
    for b in batches:
        results[b]["ONNX Runtime f32"] = time_runs(ort_run, b, args.seconds)
    for label, precision in [("OpenVINO default", None), ("OpenVINO f32", "f32")]:
        for b in batches:
            run, chosen = openvino_runner(path, args.threads, b, precision)
            results[b][f"{label} ({chosen})"] = time_runs(run, b, args.seconds)
        run, chosen = openvino_runner(path, args.threads, len(probe), precision)
        fidelity[f"{label} ({chosen})"] = cosine_to(reference, run(probe))
    if "amx_bf16" in cpu_flags():
        # OpenVINO's bf16 kept off AMX, to show what the tiles are worth. oneDNN reads the
        # limit once per process, so each batch is timed in a child.
        for b in batches:
            results[b]["OpenVINO bf16 without AMX"] = openvino_in_child(path, args, b)
    return results, fidelity


def openvino_in_child(path, args, batch):
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX512_CORE_BF16")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--openvino-child", path,
                          str(args.threads), str(batch), str(args.seconds)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def print_machine():
    """The CPU's name and the flags that decide which paths exist, as the first lines."""
    name = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
              "amx_bf16", "amx_int8"]
    flags = cpu_flags()
    print(f"CPU: {name}, {os.cpu_count()} cores")
    print("flags: " + " ".join(f if f in flags else f"-{f}" for f in wanted) + "  (- = missing)")


def print_goals(results):
    """The goals lookalike holds itself to: auto at least 1.25× OpenVINO's default, and never
    below 0.95× its own fastest path."""
    for b, row in results.items():
        auto = next((r for n, r in row.items() if n.startswith("lookalike auto")), None)
        own = [r for n, r in row.items() if n.startswith("lookalike")]
        openvino = next((r for n, r in row.items() if n.startswith("OpenVINO default")), None)
        if auto is None or openvino is None:
            continue
        print(f"  batch {b:<3} auto / OpenVINO default {auto / openvino:.2f}× (goal 1.25×), "
              f"auto / lookalike's fastest path {auto / max(own):.2f}× (goal 0.95×)")


def print_table(title, results, fidelity):
    print(title)
    for b, row in results.items():
        mine = {name: rate for name, rate in row.items() if name.startswith("lookalike")}
        for name, rate in row.items():
            ratios = "" if name.startswith("lookalike") else "   " + "  ".join(
                f"{m.split()[1]}: {r / rate:.2f}×" for m, r in mine.items())
            print(f"  batch {b:<3} {name:<28} {rate:8.1f}{ratios}")
    print("goals:")
    print_goals(results)
    print("cosine of each runtime's embeddings to ONNX Runtime f32 (random inputs):")
    for name, cosines in fidelity.items():
        print(f"  {name:<28} min {cosines.min():.5f}  median {np.median(cosines):.5f}")


def lite0_table(args, tmp):
    import onnx
    model = GraphBuilder(read_safetensors(WEIGHTS)).build()
    onnx.checker.check_model(model)
    path = args.keep_onnx or os.path.join(tmp, "lite0.onnx")
    onnx.save(model, path)
    error, scale = check_against_reference(onnxruntime_runner(path, args.threads))
    print(f"ONNX model against the reference's pooled features: largest difference {error:.2e} "
          f"(values up to {scale:.2f})")
    if error > 1e-3 * max(scale, 1.0):
        sys.exit("the ONNX model does not match the reference; not timing it")
    probe = np.random.default_rng(1).standard_normal((16, 3, SIDE, SIDE)).astype(np.float32)
    batches = [int(b) for b in args.batches.split(",")]
    results, fidelity = time_peers(path, args, batches, probe)
    print_table(f"EfficientNet-Lite0 forward at {SIDE}×{SIDE}, {args.threads} threads, images per "
                "second (ratios: lookalike's rate over the runtime's):", results, fidelity)
    return path


def vgg16_table(args, tmp):
    import onnx
    path = os.path.join(tmp, "vgg16.onnx")
    onnx.save(vgg16_graph(read_safetensors(args.vgg16)), path, save_as_external_data=True)
    probe = np.random.default_rng(2).standard_normal((4, 3, SIDE, SIDE)).astype(np.float32)
    batches = [int(b) for b in args.vgg16_batches.split(",")]
    results, fidelity = time_peers(path, args, batches, probe,
                                   ["--model", "vgg16", "--weights", args.vgg16])
    print_table(f"VGG16 features at {SIDE}×{SIDE}, {args.threads} threads, images per second:",
                results, fidelity)


def photo_input(path, draft=None):
    """One photo as lookalike's Lite0 wants it: shorter side to 256 (antialiased bilinear),
    centre 224 crop, (x - 127) / 128, CHW. With `draft` (a shorter side), a JPEG is decoded by
    libjpeg-turbo at the smallest of 1/2, 1/4 or 1/8 of its size that still covers it (PIL's
    `draft`): 256 is what PIL users do, 512 what lookalike does (twice what the resize needs,
    for fidelity)."""
    from PIL import Image, ImageOps
    with Image.open(path) as image:
        if draft:
            scale = draft / min(image.size)
            image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image = ImageOps.exif_transpose(image).convert("RGB")
        scale = 256 / min(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.BILINEAR)
        left, top = (image.width - SIDE) // 2, (image.height - SIDE) // 2
        image = image.crop((left, top, left + SIDE, top + SIDE))
        return ((np.asarray(image, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1)


def python_pipeline(files, run, threads, batch=32, draft=None):
    """Decodes on a pool of `threads` while the runtime works on the previous batch."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        chunks = [files[i:i + batch] for i in range(0, len(files), batch)]
        submit = lambda chunk: [pool.submit(photo_input, f, draft) for f in chunk]
        pending = submit(chunks[0]) if chunks else []
        for n in range(len(chunks)):
            inputs = np.stack([p.result() for p in pending])
            pending = submit(chunks[n + 1]) if n + 1 < len(chunks) else []
            run(inputs)
    return time.perf_counter() - start


def photo_files(folder):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
                  if os.path.splitext(name)[1].lower() in {".jpg", ".jpeg", ".png"})


def best_of(runs, measure):
    """The shortest of `runs` timings: the first warms the file cache."""
    return min(measure() for _ in range(runs))


def lookalike_end_to_end(args):
    """Whole `lookalike index --no-cache` runs, timed from outside. Run before any other
    runtime is loaded: their idle threads would take the CPU from it."""
    def run(precision):
        start = time.perf_counter()
        subprocess.run([args.lookalike, "index", "--no-cache", "--threads", str(args.threads),
                        "--precision", precision, args.dir], check=True, capture_output=True)
        return time.perf_counter() - start
    if not os.path.exists(args.lookalike):
        return {}
    return {f"lookalike index --no-cache ({p})": best_of(2, lambda: run(p)) for p in ["auto", "f32"]}


def end_to_end(args, lite0_path, times):
    files = photo_files(args.dir)
    print(f"End to end on {len(files)} photos in {args.dir}, {args.threads} threads, seconds "
          "(best of two runs):")
    ort = onnxruntime_runner(lite0_path, args.threads)
    times["PIL + ONNX Runtime f32"] = best_of(2, lambda: python_pipeline(files, ort, args.threads))
    times["PIL draft 256 + ONNX Runtime f32"] = best_of(
        2, lambda: python_pipeline(files, ort, args.threads, draft=256))
    times["PIL draft 512 + ONNX Runtime f32"] = best_of(
        2, lambda: python_pipeline(files, ort, args.threads, draft=512))
    openvino = openvino_runner(lite0_path, args.threads, 32, None)[0]
    padded = lambda x: openvino(np.concatenate([x, np.zeros((32 - len(x), *x.shape[1:]), np.float32)]))
    times["PIL draft 256 + OpenVINO default"] = best_of(
        2, lambda: python_pipeline(files, padded, args.threads, draft=256))
    mine = {name: t for name, t in times.items() if name.startswith("lookalike")}
    for name, seconds in times.items():
        ratios = "" if name.startswith("lookalike") else "   " + "  ".join(
            f"{m.split('(')[1][:-1]}: {seconds / t:.2f}× faster" for m, t in mine.items())
        print(f"  {name:<40} {seconds:7.2f} s  ({len(files) / seconds:6.1f} img/s){ratios}")


def openvino_child(path, threads, batch, seconds):
    run, _ = openvino_runner(path, int(threads), int(batch), "bf16")
    print(time_runs(run, int(batch), float(seconds)))


def main():
    if sys.argv[1:2] == ["--openvino-child"]:
        return openvino_child(*sys.argv[2:6])
    print_machine()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--lookalike", default=os.path.join(ROOT, "target", "release", "lookalike"))
    parser.add_argument("--keep-onnx", help="also save the Lite0 ONNX model here")
    parser.add_argument("--vgg16", help="a VGG16 safetensors file: time VGG16's features too")
    parser.add_argument("--vgg16-batches", default="1,8")
    parser.add_argument("dir", nargs="?", help="a folder of photos to time end to end")
    args = parser.parse_args()
    times = lookalike_end_to_end(args) if args.dir else {}
    with tempfile.TemporaryDirectory() as tmp:
        lite0_path = lite0_table(args, tmp)
        if args.vgg16:
            vgg16_table(args, tmp)
        if args.dir:
            end_to_end(args, lite0_path, times)


if __name__ == "__main__":
    main()
