"""A drop-in for diffusers' invisible watermarker.

    from hallmark.integrations.diffusers import Watermarker
    pipe.watermark = Watermarker(keys)          # keys: hallmark.Keys, a keys folder or key file
    image = pipe(prompt).images[0]              # carries the watermark; `hallmark verify` finds it

diffusers calls ``pipe.watermark.apply_watermark(images)`` on NCHW float tensors in
[-1, 1] before post-processing; this does the same, returning the same type, shape, dtype
and device. numpy arrays (NCHW in [-1, 1], or NHWC in [0, 1] or uint8) and lists of PIL
images work too. Like diffusers' own watermarker, images under 256 pixels wide are left
alone (too small for a robust mark).
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

import numpy as np

from .. import image as _image
from .._convert import is_pil, is_torch, key_path

__all__ = ["Watermarker"]


class Watermarker:
    """Embeds hallmark's watermark into every image a pipeline produces. ``payload`` fixes
    the 64-bit ID (16 hex digits); by default each image gets a fresh random one, and the
    IDs of the last call are in :attr:`last_payloads` (record them: they link an image back
    to its generation). ``check`` reads each mark back and reinforces it where needed
    (slower; off by default, as a pipeline's images are fresh and textured)."""

    min_width = 256

    def __init__(self, keys: Any, payload: Optional[str] = None, *, check: bool = False) -> None:
        self._key = key_path(keys)
        self.payload = payload
        self.check = check
        self.last_payloads: List[Optional[str]] = []

    def _mark(self, hwc_u8: np.ndarray) -> np.ndarray:
        if hwc_u8.shape[1] < self.min_width:
            self.last_payloads.append(None)
            return hwc_u8
        marked, info = _image.embed_with_report(hwc_u8, self._key, self.payload, check=self.check)
        self.last_payloads.append(info["payload"])
        return marked

    def apply_watermark(self, images: Any) -> Any:
        self.last_payloads = []
        if isinstance(images, list):
            return [self._apply_one_pil(im) if is_pil(im) else self.apply_watermark(im) for im in images]
        if is_pil(images):
            return self._apply_one_pil(images)
        if is_torch(images):
            torch = sys.modules["torch"]
            arr = images.detach().to("cpu", dtype=torch.float32).numpy()
            out = self._apply_nchw(arr)
            return torch.from_numpy(out).to(device=images.device, dtype=images.dtype)
        arr = np.asarray(images)
        if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
            return self._apply_nchw(arr.astype(np.float32)).astype(arr.dtype)
        if arr.ndim in (3, 4) and arr.shape[-1] == 3:
            batch = arr if arr.ndim == 4 else arr[None]
            if arr.dtype == np.uint8:
                out = np.stack([self._mark(np.ascontiguousarray(b)) for b in batch])
            else:
                out = batch.copy()
                for i, b in enumerate(batch):
                    if b.shape[1] < self.min_width:
                        self.last_payloads.append(None)
                        continue
                    u8 = np.clip(np.round(b.astype(np.float32) * 255), 0, 255).astype(np.uint8)
                    out[i] = (self._mark(u8).astype(np.float32) / 255).astype(arr.dtype)
            return out if arr.ndim == 4 else out[0]
        raise ValueError(f"apply_watermark takes NCHW tensors or arrays, NHWC arrays or PIL images, not shape {arr.shape}")

    def _apply_one_pil(self, im: Any) -> Any:
        from PIL import Image

        return Image.fromarray(self._mark(np.asarray(im.convert("RGB"))))

    def _apply_nchw(self, arr: np.ndarray) -> np.ndarray:
        # [-1, 1] NCHW -> uint8 NHWC, as diffusers' post-processing rounds it.
        hwc = np.transpose(arr, (0, 2, 3, 1))
        u8 = np.clip(np.round((hwc / 2 + 0.5) * 255), 0, 255).astype(np.uint8)
        out = np.empty_like(arr)
        for i in range(arr.shape[0]):
            if u8[i].shape[1] < self.min_width or u8[i].shape[2] != 3:
                self.last_payloads.append(None)
                out[i] = arr[i]
                continue
            m = self._mark(np.ascontiguousarray(u8[i]))
            out[i] = np.transpose(m.astype(np.float32) / 255 * 2 - 1, (2, 0, 1))
        return out

