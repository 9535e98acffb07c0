#!/usr/bin/env python3
"""Speed of the Python package against the Rust underneath (issue 19's targets).

1. Stamping a 1920x1080 JPEG from bytes: Python's overhead over the Rust call, i.e. the
   wall time of `Stamper.stamp` minus the time spent inside the native stamp (which the
   native code measures and returns). Target: <= 5% of the Rust call.
2. `LogitsProcessor` at a 50k vocabulary, batch 1: the time one call adds per generated
   token (numpy in and out; torch too when installed). Target: <= 0.5 ms.

Run it against a release build:

    pip install ./crates/hallmark-py      # release
    python3 crates/hallmark-py/bench/bench.py

Prints one line per measure and a JSON summary. Medians over repeated runs; seeded.
"""

import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

import hallmark
from hallmark.text import LogitsProcessor

ROOT = pathlib.Path(__file__).resolve().parents[3]


def bench_stamp(keys, runs=15):
    data = (ROOT / "testdata" / "photos" / "p06_seeding_1920x1080.jpg").read_bytes()
    s = hallmark.Stamper(keys, model="bench")
    s.stamp(data)  # warm up
    walls, natives = [], []
    for i in range(runs):
        t = time.perf_counter()
        st = s.stamp(data, payload=f"{i:016x}")
        walls.append(time.perf_counter() - t)
        natives.append(st.seconds)
    overhead = [w - n for w, n in zip(walls, natives)]
    return {
        "stamp_1080p_wall_ms": 1e3 * statistics.median(walls),
        "stamp_1080p_rust_ms": 1e3 * statistics.median(natives),
        "stamp_1080p_python_overhead_ms": 1e3 * statistics.median(overhead),
        "stamp_1080p_python_overhead_pct": 100 * statistics.median(overhead) / statistics.median(natives),
    }


def bench_threads(keys, n=6):
    """Stamping n 1080p images on one thread, then on two sharing one Stamper: with the GIL
    released, two threads use two cores."""
    import threading

    data = (ROOT / "testdata" / "photos" / "p06_seeding_1920x1080.jpg").read_bytes()
    s = hallmark.Stamper(keys)
    t = time.perf_counter()
    for _ in range(n):
        s.stamp(data)
    one = time.perf_counter() - t

    def work(k):
        for _ in range(k):
            s.stamp(data)

    threads = [threading.Thread(target=work, args=(n // 2,)) for _ in range(2)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = time.perf_counter() - t
    return {"stamp_1080p_images_per_s_1_thread": n / one, "stamp_1080p_images_per_s_2_threads": n / two}


def bench_processor(keys, scheme, vocab=50_000, steps=300, kind="numpy"):
    rng = np.random.default_rng(0)
    proc = LogitsProcessor(keys, vocab, scheme=scheme)
    ids = rng.integers(0, vocab, size=(1, 8))
    times = []
    torch = sys.modules.get("torch")
    for _ in range(steps):
        scores = rng.gumbel(size=(1, vocab)).astype(np.float32)
        s_in, i_in = scores, ids
        if kind == "torch":
            s_in, i_in = torch.from_numpy(scores), torch.from_numpy(ids)
        t = time.perf_counter()
        out = proc(i_in, s_in)
        times.append(time.perf_counter() - t)
        out = out.numpy() if kind == "torch" else out
        nxt = int(np.argmax(out[0]))
        ids = np.concatenate([ids, [[nxt]]], axis=1)
    return 1e3 * statistics.median(times)


def main():
    with tempfile.TemporaryDirectory() as d:
        keys = hallmark.Keys.generate(os.path.join(d, "keys"))
        res = bench_stamp(keys)
        print(
            f"stamp 1920x1080 JPEG: {res['stamp_1080p_wall_ms']:.1f} ms from Python, "
            f"{res['stamp_1080p_rust_ms']:.1f} ms in Rust: overhead "
            f"{res['stamp_1080p_python_overhead_ms']:.2f} ms ({res['stamp_1080p_python_overhead_pct']:.2f}%)"
        )
        res.update(bench_threads(keys))
        print(
            f"stamp 1080p, {os.cpu_count()} cores: {res['stamp_1080p_images_per_s_1_thread']:.2f} images/s on one thread, "
            f"{res['stamp_1080p_images_per_s_2_threads']:.2f} on two"
        )
        kinds = ["numpy"]
        try:
            import torch  # noqa: F401

            kinds.append("torch")
        except ImportError:
            pass
        for scheme in ("gumbel", "kgw", "robust"):
            for kind in kinds:
                ms = bench_processor(keys, scheme, kind=kind)
                res[f"processor_50k_{scheme}_{kind}_ms"] = ms
                print(f"LogitsProcessor, 50k vocabulary, batch 1, {scheme}, {kind}: {ms:.3f} ms per step")
        print(json.dumps(res))


if __name__ == "__main__":
    main()
