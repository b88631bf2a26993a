"""Rigs the benches share (imported as `_common`: a bench runs as a script from this folder).

RingSource: sim parts rendered up front and replayed, so a sort bench measures the sort loop and
the PLC link, not the simulator's rendering. add_tiles: 224 px bsdata tiles (NG centred on a
pitting pixel of the mask, OK anywhere) for the training benches. note, balanced_accuracy,
score_test_project, EpochCurve and card_summary: the figures every training bench reports, taken
one way (a held-out test project scored per view; okng's validation curve; the card's recipe).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TILE = 224


class RingSource:
    """`n` captures of an opened source, replayed in a ring (frames already in the camera buffers
    at trigger time, as with hardware-triggered cameras)."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner = inner
        self.caps = [inner.capture(timeout=60.0) for _ in range(n)]
        self.k = 0

    def open(self) -> None:
        pass

    def capture(self, timeout: float = 1.0) -> Any:
        cap = self.caps[self.k % len(self.caps)]
        self.k += 1
        return cap

    def close(self) -> None:
        self.inner.close()

    def info(self) -> Any:
        info = self.inner.info()
        info.name = "sim-ring"
        return info


def add_tiles(proj: Any, data: Path, order: Sequence[tuple[str, dict[str, str]]], rng: np.random.Generator,
              tile: int = TILE) -> None:
    """One part per (verdict, labels.csv row): a tile x tile crop, NG centred on a random defect pixel."""
    import cv2

    from labeling.types import Label, PartSource, Verdict
    for verdict, r in order:
        img = cv2.cvtColor(cv2.imread(str(data / r["image"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        if verdict == "NG":
            m = cv2.imread(str(data / r["mask"]), cv2.IMREAD_GRAYSCALE)
            ys, xs = np.nonzero(m)
            k = int(rng.integers(0, len(ys)))
            cy, cx = int(ys[k]), int(xs[k])
        else:
            cy, cx = int(rng.integers(tile // 2, h - tile // 2)), int(rng.integers(tile // 2, w - tile // 2))
        y0 = int(np.clip(cy - tile // 2, 0, h - tile))
        x0 = int(np.clip(cx - tile // 2, 0, w - tile))
        proj.add_part([np.ascontiguousarray(img[y0:y0 + tile, x0:x0 + tile])], cameras=["cam0"],
                      name=Path(r["image"]).stem, source=PartSource.IMPORT, label=Label(Verdict.parse(verdict)))


def note(obj: dict) -> None:
    """A progress line on stderr (stdout carries the one JSON line of figures)."""
    print(json.dumps(obj), file=sys.stderr, flush=True)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall of OK (0) and NG (1)."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1)]))


def cam_agreement(project: Any, model_id: str, test_project: Any) -> dict:
    """Does the model look at the defect? Grad-CAM of `project`'s model on every NG view of
    `test_project` with a mask (the explain view's figures): mean energy inside the mask, that
    energy over the mask's share of the view (1: no better than a flat map; a crack covers
    0.1-0.8 % of a KolektorSDD view, so raw energy is small even on target), the pointing-game
    hit rate within 5 % of the view's diagonal (a 7x7 map's peak is a cell, not a pixel) and the
    IoU of the highlight."""
    from labeling.store import Project
    from training.explain.dataset import explain_loaded
    from training.inference import load_model
    t0 = time.monotonic()
    try:
        tp = Project.open(test_project, readonly=True)
        ng = [p for p in tp.parts() if p.verdict.name == "NG" and any(v.has_mask for v in p.views)]
        h, w = tp.read_image(ng[0].id, 0).shape[:2] if ng else (0, 0)
        # 5 % of the diagonal (not the product's half-a-cell default) keeps the README's figures comparable
        rep = explain_loaded(tp, load_model(project, model_id, device="cpu"), model_id, parts=[p.id for p in ng],
                             tolerance=0.05 * float(np.hypot(h, w)))
    except Exception as exc:  # noqa: BLE001 - a bench figure, not the run's outcome
        return {"cam_error": f"{type(exc).__name__}: {exc}"[:300]}
    rows = [r for r in rep.rows if r.energy is not None]
    hits = [r.pointing for r in rows if r.pointing is not None]
    return {"cam_views": len(rows),
            "cam_energy_in_mask": round(float(np.mean([r.energy for r in rows])), 4) if rows else None,
            "cam_energy_over_area": round(float(np.mean([r.lift for r in rows if r.lift is not None])), 2)
            if rows else None,
            "cam_pointing_5pct": round(sum(hits) / len(hits), 4) if hits else None,
            "cam_iou": round(float(np.mean([r.iou for r in rows if r.iou is not None])), 4) if rows else None,
            "cam_s": round(time.monotonic() - t0, 1)}


def score_test_project(project: Any, model_id: str, test_project: Any, label: dict[str, int],
                       states: Sequence[dict] = ()) -> dict:
    """A model of `project` on every view of `test_project` (threshold 0.5, per view; `label`:
    part name -> 1 for NG): test balanced accuracy, NG recall, number of views. With `states`
    (state dicts of the same network, e.g. one per epoch), also each one's test balanced
    accuracy ("states_test_balanced_accuracy"), the test views prepared once."""
    from labeling.store import Project
    from training.inference import load_model
    loaded = load_model(project, model_id, device="cpu")
    tp = Project.open(test_project, readonly=True)
    y, batches = [], []
    for p in tp.parts():
        for k, v in enumerate(p.views):
            batches.append(loaded.prepare_batch([tp.read_image(p.id, k)], [v.camera])[0])
            y.append(label[p.name])
    yy = np.asarray(y)

    def predict() -> np.ndarray:
        return (np.asarray([float(loaded.ng_scores(b)[0]) for b in batches]) >= 0.5).astype(int)
    pred = predict()
    out = {"test_balanced_accuracy": round(balanced_accuracy(yy, pred), 4),
           "test_ng_recall": round(float(np.mean(pred[yy == 1])), 4), "n_test": len(yy)}
    if states:
        per = []
        for st in states:
            loaded.model.load_state_dict(st)
            per.append(round(balanced_accuracy(yy, predict()), 4))
        out["states_test_balanced_accuracy"] = per
    return out


class EpochCurve:
    """A training run's progress callback: (seconds since training started, validation figure)
    per epoch, each noted on stderr."""

    def __init__(self, metric: str = "val_balanced_accuracy", digits: int = 4) -> None:
        self.metric, self.digits = metric, digits
        self.points: list[tuple[float, float]] = []
        self._t0: float | None = None

    def __call__(self, p: Any) -> None:
        if p.stage == "train" and self._t0 is None:
            self._t0 = time.monotonic()
        if p.stage == "eval":
            t = time.monotonic() - (self._t0 if self._t0 is not None else time.monotonic())
            self.points.append((t, float(getattr(p.payload, self.metric))))
            note({"okng_epoch": p.payload.epoch, "t": round(t, 1), self.metric: round(self.points[-1][1], 4)})

    def count_probe(self, card: Any) -> None:
        """Count the side probe's seconds (training.side_probe: before the run's clock starts, but the
        user waited) in every point's time."""
        seconds = float(card.extra.get("recipe", {}).get("side_probe_s") or 0.0)
        self.points = [(t + seconds, a) for t, a in self.points]

    def best(self) -> float | None:
        return round(max(a for _, a in self.points), 4) if self.points else None

    def rounded(self) -> list[list[float]]:
        return [[round(t, 1), round(a, self.digits)] for t, a in self.points]


def card_summary(res: Any, curve: EpochCurve) -> dict:
    """What an okng arm reports of its run: the curve, epochs, best epoch and the recipe's choices."""
    card = res.card
    secs = [h.seconds for h in card.history]
    return {"val_best": curve.best(), "curve": curve.rounded(), "epochs": len(card.history),
            "best_epoch": card.best_epoch, "s_per_epoch": round(float(np.mean(secs)), 1) if secs else None,
            "train_s": round(res.seconds, 1), "input_size": list(card.input_size), "freeze": card.freeze,
            "recipe": card.extra.get("recipe", {}).get("name"), "gray_stem": card.config.get("gray_stem"),
            "bf16": card.config.get("bf16"), "batch_size": card.config.get("batch_size"),
            "ema_epochs": card.config.get("ema_epochs"),
            "side_why": card.extra.get("recipe", {}).get("side_why"),  # the budget fitted the side
            "side_probe_s": card.extra.get("recipe", {}).get("side_probe_s"),
            "augment_why": card.extra.get("recipe", {}).get("augment_why"),  # the short-run rule fired
            "mask_guide": card.extra.get("recipe", {}).get("mask_guide"),
            "train_loss": [round(h.loss, 3) for h in card.history],
            "parts": {k: len(card.split.get(k) or []) for k in ("train", "val", "test")}}
