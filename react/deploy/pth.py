"""Write a float32 array as a ``.pth`` file that ``torch.load(..., weights_only=True)`` reads as a
tensor, without torch: the zip layout and pickle opcodes of ``torch.save`` written by hand."""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np

from react.utils.io import atomic_path


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def tensor_pickle(shape: tuple[int, ...]) -> bytes:
    """Protocol-2 pickle of ``torch._utils._rebuild_tensor_v2`` over storage ``"0"`` (float32, cpu)."""
    numel = int(np.prod(shape))
    strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
    storage = b"(" + _str("storage") + _global("torch", "FloatStorage") + _str("0") + _str("cpu")
    storage += _int(numel) + b"tQ"  # TUPLE, BINPERSID
    args = storage + _int(0) + _tuple(shape) + _tuple(strides) + b"\x89"  # NEWFALSE: requires_grad
    args += _global("collections", "OrderedDict") + b")R"  # OrderedDict(): no backward hooks
    return b"\x80\x02" + _global("torch._utils", "_rebuild_tensor_v2") + b"(" + args + b"tR."


def save_pth(array: np.ndarray, target: str | os.PathLike) -> None:
    """Write ``array`` (cast to little-endian float32) to ``target`` atomically."""
    data = np.ascontiguousarray(array, dtype="<f4")
    with atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("archive/data.pkl", tensor_pickle(tuple(data.shape)))
            archive.writestr("archive/byteorder", "little")
            archive.writestr("archive/data/0", data.tobytes())
            archive.writestr("archive/version", "3\n")
