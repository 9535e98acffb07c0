"""The image watermark alone, on pixels: for pipelines that keep images as arrays (the
diffusers hook in :mod:`hallmark.integrations.diffusers` is built on these)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from . import _native
from ._convert import from_raw, is_pil, key_path, read_path, rgb_array, to_raw

__all__ = ["embed", "detect", "Detection"]


def embed(image: Any, key: Any, payload: Optional[str] = None, *, check: bool = True) -> Any:
    """Embeds the watermark carrying ``payload`` (16 hex digits; random when None) into an
    ``HxWx3`` ``uint8`` array or a PIL image, and returns the same kind. ``key`` is a
    :class:`hallmark.Keys`, a keys folder or a key file. With ``check`` (the default) the
    mark is read back and checked against a WebP q50 round trip, and re-embedded stronger
    where needed, as ``hallmark stamp`` does."""
    marked, _ = embed_with_report(image, key, payload, check=check)
    return marked


def embed_with_report(image: Any, key: Any, payload: Optional[str] = None, *, check: bool = True):
    """:func:`embed`, also returning what the embedding did (``payload``, ``psnr``,
    ``readable``, ``survives_webp``, ``reinforced``)."""
    a = rgb_array(image)
    raw, w, h = to_raw(a)
    out, info = _native.image_embed(raw, w, h, key_path(key), payload, check)
    marked = from_raw(out, w, h)
    if is_pil(image):
        from PIL import Image  # only when a PIL image came in

        marked = Image.fromarray(marked)
    return marked, json.loads(info)


@dataclass(frozen=True)
class Detection:
    """The outcome of looking for the mark: "not marked" is a value, not an error."""

    detected: bool
    payload: Optional[str]
    p_value: float
    bit_errors: Optional[int]
    sync_score: float
    attempts: int
    key_id: str
    millis: float
    transform: Optional[Dict[str, Any]] = None
    #: Where the mark is, when detected (``fraction``, ``location``, ``boxes``, ``grid``,
    #: ``cell_px``): a composite reads as partly marked.
    regions: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def detect(image: Any, key: Any) -> Detection:
    """Looks for the watermark of ``key`` in an ``HxWx3`` ``uint8`` array, a PIL image,
    encoded bytes or a path."""
    if isinstance(image, (bytes, bytearray, memoryview)) or isinstance(image, (str,)) or hasattr(image, "__fspath__"):
        data = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else read_path(image)
        raw, w, h, _ = _native.decode_rgb(data)
    else:
        raw, w, h = to_raw(rgb_array(image))
    d = json.loads(_native.image_detect(raw, w, h, key_path(key)))
    return Detection(**{k: d.get(k) for k in Detection.__dataclass_fields__})


