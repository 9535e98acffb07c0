"""The diffusers hook and the behaviour under threads."""

import threading

import numpy as np
import pytest
from PIL import Image

import hallmark
from hallmark.integrations.diffusers import Watermarker
from conftest import photo


def nchw(*arrays: np.ndarray) -> np.ndarray:
    """Images as diffusers holds them before post-processing: NCHW float in [-1, 1]."""
    return np.stack([a.astype(np.float32) / 255 * 2 - 1 for a in arrays]).transpose(0, 3, 1, 2)


def to_u8(x: np.ndarray) -> np.ndarray:
    """diffusers' post-processing: [-1, 1] -> uint8 HWC."""
    return np.clip(np.round((x.transpose(1, 2, 0) / 2 + 0.5) * 255), 0, 255).astype(np.uint8)


def test_watermarker_marks_nchw_batches_as_diffusers_passes_them(keys, coffee):
    rocket = np.asarray(Image.open(photo("p03_rocket_640x427.png")).convert("RGB"))[:400, :600]
    batch = nchw(coffee, rocket)
    wm = Watermarker(keys)
    out = wm.apply_watermark(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert len(wm.last_payloads) == 2 and all(wm.last_payloads)
    for i in range(2):
        d = hallmark.image.detect(to_u8(out[i]), keys)
        assert d.detected and d.payload == wm.last_payloads[i]
    # The unmarked batch reads nothing.
    assert not hallmark.image.detect(to_u8(batch[0]), keys).detected


def test_watermarker_fixed_payload_small_images_and_other_layouts(keys, coffee):
    wm = Watermarker(keys, payload="feedfacecafebeef")
    small = nchw(coffee[:200, :200])
    same = wm.apply_watermark(small)
    assert np.array_equal(same, small) and wm.last_payloads == [None]
    # NHWC float in [0, 1] (output_type="np") and uint8.
    f = coffee.astype(np.float32)[None] / 255
    out = wm.apply_watermark(f)
    assert out.shape == f.shape and out.dtype == np.float32
    u8 = np.clip(np.round(out[0] * 255), 0, 255).astype(np.uint8)
    assert hallmark.image.detect(u8, keys).payload == "feedfacecafebeef"
    out8 = wm.apply_watermark(coffee)
    assert out8.dtype == np.uint8 and hallmark.image.detect(out8, keys).payload == "feedfacecafebeef"
    # A list of PIL images, as some pipelines return.
    pil = wm.apply_watermark([Image.fromarray(coffee)])
    assert isinstance(pil, list) and isinstance(pil[0], Image.Image)
    assert hallmark.image.detect(pil[0], keys).payload == "feedfacecafebeef"
    with pytest.raises(ValueError):
        wm.apply_watermark(np.zeros((5,), np.float32))


def test_heavy_calls_release_the_gil(keys):
    """While one thread stamps, another Python thread keeps running: the native call does
    not hold the GIL."""
    data = photo("p06_seeding_1920x1080.jpg").read_bytes()
    s = hallmark.Stamper(keys)
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks[0]
        st = s.stamp(data)
        during = ticks[0] - before
    finally:
        stop.set()
        t.join()
    assert st.watermark_readable
    # With the GIL held for the whole call, the spinner could not have run at all.
    assert during > 1000, during


def test_threads_share_one_stamper(keys):
    s = hallmark.Stamper(keys)
    data = photo("p02_coffee_600x400.png").read_bytes()
    results = {}

    def work(i):
        results[i] = s.stamp(data, payload=f"{i:016x}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1, 2, 3]
    for i, st in results.items():
        assert hallmark.verify(st.data, keys=keys).watermark["payload"] == f"{i:016x}"
