"""Conversions between what Python callers hold (bytes, paths, PIL images, numpy arrays,
torch tensors) and what the native module takes (bytes). Nothing here imports PIL or torch:
an object is recognised by its type's module, so neither needs to be installed."""

from __future__ import annotations

import os
from typing import Any, Tuple

import numpy as np

from . import _native
from .errors import InputError


def module_of(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def is_torch(x: Any) -> bool:
    return module_of(x) == "torch"


def is_pil(x: Any) -> bool:
    return module_of(x) == "PIL"


def read_path(path: "str | os.PathLike[str]") -> bytes:
    return _native.read_input(os.fspath(path))


def rgb_array(x: Any) -> np.ndarray:
    """An ``HxWx3`` ``uint8`` array from a PIL image or an array; raises InputError for
    anything else."""
    if is_pil(x):
        return np.asarray(x.convert("RGB"))
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"expected an HxWx3 image array, got shape {a.shape}", "invalid_input")
    if a.dtype != np.uint8:
        raise InputError(f"expected dtype uint8, got {a.dtype}", "invalid_input")
    return np.ascontiguousarray(a)


def to_raw(a: np.ndarray) -> Tuple[bytes, int, int]:
    return a.tobytes(), int(a.shape[1]), int(a.shape[0])


def from_raw(raw: bytes, width: int, height: int) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()


def encoded(x: Any, fmt: "str | None" = None) -> Tuple[bytes, "str | None"]:
    """Encoded image bytes from bytes, a path, a PIL image or an array; for pixels, the
    format to encode them in (default PNG) is returned as None-safe."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x), fmt
    if isinstance(x, (str, os.PathLike)):
        return read_path(x), fmt
    a = rgb_array(x)
    raw, w, h = to_raw(a)
    return _native.encode_rgb(raw, w, h, fmt or "png"), fmt


def key_path(key: Any) -> str:
    """A watermark key given as a Keys object, a keys folder or a key file."""
    d = getattr(key, "dir", None)
    if d is not None:
        return os.fspath(d)
    if isinstance(key, (str, os.PathLike)):
        return os.fspath(key)
    raise TypeError(f"a key is a hallmark.Keys, a keys folder or a key file, not {type(key).__name__}")
