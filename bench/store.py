"""Store benchmark: add a 4-view part, read a random view, open a 10,000-part project, size.

Prints one JSON line. Targets (issue 2): add <= 30 ms median (4 x 1280x960 gray), read one
random view <= 10 ms, open a 10,000-part project <= 1 s; file size per part vs raw pixels.
Images are textured like camera frames (smooth shading + noise), not constant, so the
compression figure means something.
"""
from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings


def frames(rng: np.random.Generator, n: int, shape=(960, 1280)) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    base = (96 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)).astype(np.float32)
    return [np.clip(base + rng.normal(0, 6, shape), 0, 255).astype(np.uint8) for _ in range(n)]


def main(parts: int = 200, big: int = 10_000) -> dict:
    rng = np.random.default_rng(0)
    pool = frames(rng, 8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        p = Project.create(path, Settings(classes=list(BOLT_CLASSES)))
        add_ms, add_cpu = [], []
        for i in range(parts):
            views = [pool[(i + k) % len(pool)] for k in range(4)]
            t0, c0 = time.perf_counter(), time.process_time()
            p.add_part(views)
            add_ms.append((time.perf_counter() - t0) * 1e3)
            add_cpu.append((time.process_time() - c0) * 1e3)
        ids = p.part_ids()
        read_ms = []
        for _ in range(200):
            pid = random.choice(ids)
            t0 = time.perf_counter()
            p.read_image(pid, random.randrange(4))
            read_ms.append((time.perf_counter() - t0) * 1e3)
        raw = parts * 4 * 960 * 1280
        size = path.stat().st_size

        # A 10,000-part project (small views; opening cost is index + audit trail, not pixels).
        bigpath = Path(tmp) / "big.h5"
        q = Project.create(bigpath, Settings(classes=list(BOLT_CLASSES)))
        tiny = [np.zeros((8, 8), np.uint8)] * 4
        t0 = time.perf_counter()
        for i in range(big):
            pid = q.add_part(tiny)
        build_s = time.perf_counter() - t0
        for pid in q.part_ids()[: big // 2]:
            q.set_label(pid, "NG" if pid % 3 else "OK", 1 if pid % 3 else 0)
        open_s, open_cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            Project.open(bigpath)
            open_s.append(time.perf_counter() - t0)
            open_cpu.append(time.process_time() - c0)
        label_ms = []
        for pid in q.part_ids()[:200]:
            t0 = time.perf_counter()
            q.set_label(pid, "OK")
            label_ms.append((time.perf_counter() - t0) * 1e3)
    return {
        "bench": "store",
        "add_part_4x1280x960_ms_median": round(statistics.median(add_ms), 2),
        "add_part_cpu_ms_median": round(statistics.median(add_cpu), 2),
        "add_part_ms_p95": round(sorted(add_ms)[int(0.95 * len(add_ms))], 2),
        "read_view_ms_median": round(statistics.median(read_ms), 2),
        "read_view_ms_p95": round(sorted(read_ms)[int(0.95 * len(read_ms))], 2),
        "open_10000_parts_s": round(statistics.median(open_s), 3),
        "open_10000_parts_cpu_s": round(statistics.median(open_cpu), 3),
        "open_with_labels": big // 2,
        "load_average_1m": round(__import__("os").getloadavg()[0], 1),
        "set_label_ms_median": round(statistics.median(label_ms), 2),
        "file_bytes_per_part": int(size / parts),
        "raw_bytes_per_part": int(raw / parts),
        "size_vs_raw": round(size / raw, 3),
        "build_10000_parts_s": round(build_s, 1),
        "targets": {"add_ms": 30, "read_ms": 10, "open_s": 1.0},
    }


if __name__ == "__main__":
    print(json.dumps(main()))
