"""The ``torch.save`` format of one float tensor, read and written without torch.

Importing torch costs seconds, which matters for evaluation and torch-free inference. A
``torch.save``-d tensor is a zip archive holding a small pickle and the raw storage:
:func:`read_tensor_file` turns it into a numpy array, allowing nothing but tensor rebuilds (so
it is as safe as ``weights_only=True``), and :func:`save_pth` writes one that
``torch.load(..., weights_only=True)`` reads as a tensor.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

from react.utils.io import atomic_path

_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16}


class NotPlainTensor(Exception):
    """The file is not a plain little-endian float tensor saved by ``torch.save``."""


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    strides = tuple(s * storage.itemsize for s in stride)
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage) and all(size):
        raise NotPlainTensor("view outside its storage")
    return np.lib.stride_tricks.as_strided(storage[offset:], tuple(size), strides)


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles ``torch.save``'s ``data.pkl`` of one tensor, storages read from the archive."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        if (module, name) == ("collections", "OrderedDict"):  # the (empty) backward hooks
            return collections.OrderedDict
        raise NotPlainTensor(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and pid[1] in _STORAGES.values()):
            raise NotPlainTensor(f"storage {pid!r}")
        return np.frombuffer(self.archive.read(f"{self.prefix}data/{pid[2]}"), dtype=pid[1])


def read_tensor_file(path: str | os.PathLike) -> np.ndarray:
    """A float tensor saved by ``torch.save`` as a numpy array, without torch.

    Raises ``NotPlainTensor`` (or an I/O or zip error) for anything else.
    """
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0] + "/"
        if archive.read(prefix + "byteorder") != b"little":
            raise NotPlainTensor("byte order")
        value = _TensorUnpickler(archive.read(prefix + "data.pkl"), archive, prefix).load()
    if not isinstance(value, np.ndarray):
        raise NotPlainTensor(type(value).__name__)
    return value


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
