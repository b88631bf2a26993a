"""Grad-CAM cost vs a plain forward+backward on the same batches (target: <= 1.3x).

Default: resnet18 (random init, 2 classes) at 224x224, batch 8, several batches. The plain
pass is what any training step does: forward, class score, loss.backward() into the
parameters. The Grad-CAM pass is training.explain.cam.gradcam at layer4 (the default target
layer), upsampled to the input. Both in eval mode, same batches, interleaved so drifting
machine load hits both alike; the figure is the ratio of the medians.

    .venv/bin/python bench/gradcam.py [--batches 6] [--batch 8] [--size 224] [--arch resnet18]
    .venv/bin/python bench/gradcam.py --demo-shortcut   # the real-model shortcut check

--demo-shortcut [--roi] builds a bolts demo project (planted jig/lighting shortcut, no ROI), trains a
small model from scratch, runs explain_dataset, and reports whether the shortcut alarm fires
and where its suggested ROI lies against the demo's known jig boxes and thread ROI. --roi
first crops every camera to the thread (the study's fix): the alarm should then stay quiet.

Prints ONE JSON line.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_gradcam(arch: str, size: int, batch: int, batches: int, threads: int | None, device: str) -> dict:
    import torch
    import torchvision

    from training.explain.cam import gradcam

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=2).to(dev).eval()
    layer = {"vgg16": "features.29"}.get(arch, "layer4" if arch.startswith("resnet") else "features")
    data = [torch.randn(batch, 3, size, size, device=dev) for _ in range(batches)]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def plain(x: torch.Tensor) -> None:
        model.zero_grad(set_to_none=True)
        model(x)[:, 1].sum().backward()

    def cam(x: torch.Tensor) -> None:
        gradcam(model, x, layer, 1, size=(size, size))

    def forward(x: torch.Tensor) -> None:
        with torch.no_grad():
            model(x)

    plain(data[0])  # warm-up (allocator, kernels)
    cam(data[0])
    times: dict = {plain: [], cam: [], forward: []}
    for i, x in enumerate(data):
        order = (plain, cam, forward) if i % 2 == 0 else (forward, cam, plain)
        for fn in order:
            sync()
            t0 = time.perf_counter()
            fn(x)
            sync()
            times[fn].append(time.perf_counter() - t0)
    mp, mc, mf = (statistics.median(times[f]) for f in (plain, cam, forward))
    return {"bench": "gradcam", "arch": arch, "input": size, "batch": batch, "batches": batches,
            "device": str(dev), "threads": torch.get_num_threads(),
            "plain_fwd_bwd_s_per_batch": round(mp, 4), "gradcam_s_per_batch": round(mc, 4),
            "forward_only_s_per_batch": round(mf, 4),
            "ratio": round(mc / mp, 3), "target_ratio": 1.3, "ok": mc / mp <= 1.3,
            "gradcam_views_per_s": round(batch / mc, 2)}


def demo_shortcut(parts: int, epochs: int, arch: str, threads: int | None, crop: bool = False,
                  keep: Path | None = None, layer: str | None = None) -> dict:
    import torch

    from labeling.demo import bolts
    from labeling.demo.build import make_demo_project
    from labeling.store import Project
    from training.config import AugmentConfig, TrainConfig
    from training.explain.dataset import explain_dataset
    from training.explain.recipe import CamRecipe
    from training.loop import train

    if threads:
        torch.set_num_threads(threads)
    size = (128, 96)
    with tempfile.TemporaryDirectory() as tmp:
        path = (keep or Path(tmp)) / "bolts.okng"
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        proj = make_demo_project(path, kind="bolts", parts=parts, size=size, overwrite=True)
        if crop:  # the study's fix: crop every camera to the coated thread
            for cam in proj.settings.cameras:
                proj.set_roi(cam, bolts.thread_roi(size))
        cfg = TrainConfig(arch=arch, freeze="scratch", epochs=epochs, batch_size=16, input_size=(96, 128),
                          augment=AugmentConfig.none(), device="cpu", num_threads=threads, patience=0)
        res = train(path, cfg)
        t_train = time.monotonic() - t0
        rep = explain_dataset(path, "active", CamRecipe(layer=layer), device="cpu")
        proj = Project.open(path, readonly=True)
        jig = bolts.render_part(0, 0, size).truth["jig_box"]  # [x, y, w, h] per view
    cams = proj.settings.cameras
    alarms = {a.camera: a for a in rep.shortcut}
    per_cam = {}
    for k, cam in enumerate(cams):
        a = alarms.get(cam)
        if a is None:
            continue
        jx, jy, jw, jh = jig[k]
        jc = (jx + jw / 2, jy + jh / 2)
        sug, reg = a.suggested_roi, a.region
        per_cam[cam] = {"flagged": a.flagged, "energy_share": a.energy_share, "mask_overlap": a.mask_overlap,
                        "region": reg, "jig_box": jig[k], "suggested_roi": sug,
                        "region_on_jig": reg is not None and _overlap(reg, jig[k]),
                        "roi_excludes_jig_centre": None if sug is None else not (
                            sug[0] <= jc[0] < sug[0] + sug[2] and sug[1] <= jc[1] < sug[1] + sug[3])}
    return {"bench": "gradcam-demo-shortcut", "parts": parts, "epochs": epochs, "arch": arch, "thread_roi_applied": crop, "layer": rep.layer,
            "val_balanced_accuracy": res.metrics.get("val", {}).get("balanced_accuracy"),
            "train_s": round(t_train, 1), "explain_s": round(rep.elapsed_s, 1),
            "iou_mean": rep.totals.iou.get("mean"), "energy_mean": rep.totals.energy.get("mean"),
            "pointing": rep.totals.pointing, "alarm": rep.shortcut_flagged,
            "thread_roi": bolts.thread_roi(size).to_list(), "cameras": per_cam}


def _overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--demo-shortcut", action="store_true")
    ap.add_argument("--parts", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--roi", action="store_true", help="with --demo-shortcut: train on the thread ROI (the fix)")
    ap.add_argument("--layer", default=None, help="with --demo-shortcut: Grad-CAM layer (default layer4)")
    ap.add_argument("--keep", type=Path, default=None, help="with --demo-shortcut: keep the project in this folder")
    a = ap.parse_args()
    if a.demo_shortcut:
        out = demo_shortcut(a.parts, a.epochs, a.arch, a.threads, a.roi, a.keep, a.layer)
    else:
        out = bench_gradcam(a.arch, a.size, a.batch, a.batches, a.threads, a.device)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
