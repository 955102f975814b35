#!/usr/bin/env python3
"""Expected VGG16 outputs from torchvision, for the Rust parity test. Run by a developer, not
by CI (it needs torch and torchvision):

    python3 scripts/vgg16_reference.py tests/data/vgg16-reference.json

torchvision's `vgg16()` gets weights defined by a formula that the Rust test computes too
(see `formula` below), so no 553 MB file is ever committed. The script writes the raw (not
normalised) 512-d embedding, the mean over height and width of `features(x)`, and the 1000
logits, for the formula-defined input `x[0,c,h,w] = (((c*224*224 + h*224 + w) mod 251) - 125) / 128`.
Computed in float64, so the reference itself carries no float32 rounding.

Random weights make embeddings of different images nearly parallel, so the test compares the
raw vectors element by element; cosine alone would prove little.
"""
import json
import math
import sys

import numpy as np
import torch
import torchvision

# Tensor names in the timm `vgg16.tv_in1k` layout, with torchvision's module for each.
CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def formula(n, ordinal, fan_in, is_bias):
    """Element i of tensor number `ordinal`: a multiplicative hash of i, scaled by the fan-in."""
    i = np.arange(n, dtype=np.uint64)
    salt = np.uint64(ordinal * 1000003 + 12345)
    h = ((i * np.uint64(2654435761) + salt) % np.uint64(2**32)).astype(np.float64) / 2.0**32
    if is_bias:
        return (h - 0.5) * 0.02
    return (h - 0.5) * 2.0 * math.sqrt(6.0 / fan_in)


def named_tensors(model):
    """(timm name, torchvision parameter) in the order the Rust test numbers them."""
    out = []
    for idx in CONVS:
        conv = model.features[idx]
        out += [(f"features.{idx}.weight", conv.weight), (f"features.{idx}.bias", conv.bias)]
    out += [("pre_logits.fc1.weight", model.classifier[0].weight), ("pre_logits.fc1.bias", model.classifier[0].bias),
            ("pre_logits.fc2.weight", model.classifier[3].weight), ("pre_logits.fc2.bias", model.classifier[3].bias),
            ("head.fc.weight", model.classifier[6].weight), ("head.fc.bias", model.classifier[6].bias)]
    return out


def main(out_path):
    model = torchvision.models.vgg16().double().eval()
    with torch.no_grad():
        for ordinal, (name, param) in enumerate(named_tensors(model)):
            is_bias = name.endswith("bias")
            fan_in = 1 if is_bias else int(np.prod(param.shape[1:]))
            values = formula(param.numel(), ordinal, fan_in, is_bias).astype(np.float32).astype(np.float64)
            param.copy_(torch.from_numpy(values.reshape(param.shape)))
        x = ((torch.arange(3 * 224 * 224, dtype=torch.float64) % 251) - 125) / 128
        x = x.reshape(1, 3, 224, 224)
        maps = model.features(x)
        embedding = maps.mean(dim=(2, 3))[0]
        logits = model(x)[0]
    with open(out_path, "w") as f:
        json.dump({
            "input": "NCHW [1,3,224,224], x[0,c,h,w] = (((c*224*224 + h*224 + w) mod 251) - 125) / 128",
            "weights": "element i of tensor k (timm order): h = ((i*2654435761 + k*1000003 + 12345) mod 2^32) / 2^32; "
                       "weight = (h - 0.5) * 2 * sqrt(6 / fan_in), bias = (h - 0.5) * 0.02; rounded to float32",
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "embedding_512": [float(v) for v in embedding],
            "logits_1000": [float(v) for v in logits],
        }, f)
    print(f"wrote {out_path}: embedding max {embedding.abs().max():.4g}, logits max {logits.abs().max():.4g}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/vgg16-reference.json")
