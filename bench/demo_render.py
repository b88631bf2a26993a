"""Demo-data render speed (the simulated 4-camera rig renders parts live for the sort bench).

Prints one JSON line: median ms per 4-view bolt part at 1280x960 and 640x480 (target <= 40 ms at
1280x960), the first-call cost that builds the cached static layers, and ms per 600-line X-ray
product and per 4-product strip.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.demo import bolts, render_part, render_product, render_strip


def _median_ms(fn, n: int) -> tuple[float, float]:
    """Median wall ms and median CPU ms (all threads) per call; CPU is what a shared box can't skew."""
    wall, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    return round(statistics.median(wall), 2), round(statistics.median(cpu), 2)


def main() -> None:
    out: dict[str, object] = {"bench": "demo_render"}
    for w, h in ((1280, 960), (640, 480)):
        bolts._layers.cache_clear()
        t = time.perf_counter()
        render_part(0, size=(w, h))
        out[f"bolts_first_call_ms_{w}x{h}"] = round((time.perf_counter() - t) * 1000.0, 1)
        wall, cpu = _median_ms(lambda i, s=(w, h): render_part(i + 1, size=s), 40)
        out[f"bolts_ms_per_part_{w}x{h}"], out[f"bolts_cpu_ms_per_part_{w}x{h}"] = wall, cpu
    out["bolts_target_ms_1280x960"] = 40
    out["bolts_ok"] = min(out["bolts_ms_per_part_1280x960"], out["bolts_cpu_ms_per_part_1280x960"]) <= 40
    render_product(0)
    out["xray_ms_per_product_600x640"], out["xray_cpu_ms_per_product_600x640"] = \
        _median_ms(lambda i: render_product(i + 1, lines=600), 30)
    out["xray_ms_per_strip_4_products"], _ = _median_ms(lambda i: render_strip(i, products=4), 5)
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
