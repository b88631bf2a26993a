"""bench/train.py --real: okng's default `okng train --budget` against a plain torchvision loop
given the same minutes, on a real defect set read from its labels.csv (issue 11).

Split 70/15/15 by group (kolektorsdd: `item`; bsdata: the capture), from bench/recipe_scratch
(the same split every issue-11 bench uses). Both arms train on the SAME train rows, pick their
best epoch on the SAME val rows (okng reads the split from the pool's "split" column:
`okng train --split-field split`) and are scored on the SAME test images (balanced accuracy
per image, threshold 0.5). The two arms run side by side, one thread each, so the shared
machine's load falls on both alike.

"Time to quality": seconds from its training start until an arm's validation balanced accuracy
first reached the plain loop's final (best-epoch) validation balanced accuracy, both read on
the same validation images. The plain loop's best validation epoch is the maximum of a noisy
curve (bsdata: 0.57-0.98 from one epoch to the next), so the bench also times the question on
images that chose nothing ("test time"): every epoch of both arms is kept and scored on the
test images after the clock; an arm's delivered model at an epoch is its best on validation
so far, and the time is when that model first reached the plain loop's final test figure.

With --seeds (e.g. 0,1,2) the comparison is repeated: seed k draws a new group split (other
test items) AND both arms' initialisation and sampling, so one record says how often and by how
much okng wins, not what one draw of 8 NG test images gave (kolektorsdd's test figure moves in
steps of 6 points per missed NG image).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data") if not (ROOT.parent / "shared" / "data").exists() else ROOT.parent / "shared" / "data"
PLAIN_SIDE = 224  # torchvision's classification default: what a plain loop resizes to
sys.path.insert(0, str(ROOT / "bench"))
from _common import EpochCurve, balanced_accuracy, cam_agreement, card_summary, note, score_test_project


def split_rows(data: str, seed: int = 0) -> tuple[list[dict[str, str]], list[str]]:
    from recipe_scratch import _group, read_rows, split_groups
    rows = read_rows(data)
    for r in rows:
        r["_group"] = _group(data, r)
    return rows, split_groups(rows, data, seed)


def _csv(rows: list[dict[str, str]], data: str, path: Path, sets: list[str] | None = None) -> Path:
    """A masks-format CSV of these rows (absolute paths), one part per image (every kolektorsdd
    item holds an NG section, so parts by item would all be NG), with each row's set of the
    group split in a "split" column when given."""
    seen: dict[str, int] = {}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "mask", "part", "camera"] + (["split"] if sets is not None else []))
        for i, r in enumerate(rows):
            k = seen.get(r["_group"], 0)
            seen[r["_group"]] = k + 1
            mask = str(DATA / data / r["mask"]) if r.get("mask") else ""
            w.writerow([str(DATA / data / r["image"]), r["label"], mask, f"{r['_group']}/{k}", "v0"]
                       + ([sets[i]] if sets is not None else []))
    return path


def make_projects(data: str, workdir: Path, seed: int = 0) -> tuple[Path, Path, dict[str, int], int, int]:
    """(pool project of the train+val rows, test project, test part name -> 1 for NG, pool rows,
    pool rows the importer dropped as duplicates) from the group split of `seed`."""
    from labeling.formats import ImportLimits, import_into
    from labeling.store import Project
    rows, split = split_rows(data, seed)
    pool = [r for r, s in zip(rows, split) if s != "test"]
    pool_sets = [s for s in split if s != "test"]
    test = [r for r, s in zip(rows, split) if s == "test"]
    proj = Project.create(workdir / f"{data}.okng")
    # The CSVs sit in a temp folder and name the shared images by absolute path.
    limits = ImportLimits(allow_outside=True)
    rep = import_into(proj, _csv(pool, data, workdir / "pool.csv", pool_sets), "masks", limits=limits)
    # KolektorSDD holds 16 pictures identical across items: the importer keeps the first only.
    bad = [e for e in rep.errors if "duplicate" not in e[1]]
    assert not bad, bad[:3]
    tproj = Project.create(workdir / f"{data}-test.okng")
    import_into(tproj, _csv(test, data, workdir / "test.csv"), "masks", limits=limits)
    label, seen = {}, {}  # part name (as _csv names it) -> the row's label
    for r in test:
        k = seen.get(r["_group"], 0)
        seen[r["_group"]] = k + 1
        label[f"{r['_group']}/{k}"] = int(r["label"] == "NG")
    return proj.path, tproj.path, label, len(pool), len(rep.errors)


def okng_arm(data: str, budget_s: float, workdir: Path, seed: int = 0, overrides: dict | None = None) -> dict:
    from training.session import TrainSpec, run_session
    pool, test, label, n_pool, dropped = make_projects(data, workdir, seed)
    curve = EpochCurve(digits=3)  # time_to compares at the plain curve's 3 decimals
    # The bench holds its test rows out by group itself (both arms score the same images), so
    # okng's own test split would only take training parts away; train and val are the plain
    # loop's rows, read from the pool's "split" column.
    with epoch_states() as states:
        res = run_session(TrainSpec(str(pool), {"budget_s": budget_s, "num_threads": 1, "test_fraction": 0.0,
                                                "split_field": "split", "seed": seed, **(overrides or {})}), curve)
    curve.count_probe(res.card)
    scored = score_test_project(pool, res.model_id, test, label, [st for st, _ in states])
    scored.update(cam_agreement(pool, res.model_id, test))
    return {**scored, **card_summary(res, curve), "n_pool": n_pool, "pool_duplicates_dropped": dropped,
            "kept_test_curve": kept_test_curve(curve.rounded(), [k for _, k in states],
                                               scored.pop("states_test_balanced_accuracy"))}


@contextlib.contextmanager
def epoch_states() -> Iterator[list[tuple[dict, tuple]]]:
    """Every epoch's weights and selection key, as training.loop validates them: its first
    `evaluate` on the validation parts after each epoch (copied outside okng's figures; the copy
    takes ~30 ms of its budget, as the plain loop's copies take of its)."""
    from training import loop
    real, states, seen = loop.evaluate, [], set()

    def spy(run, parts, *a, **k):  # type: ignore[no-untyped-def]
        rep = real(run, parts, *a, **k)
        if parts is run.val_parts and run.epochs_done not in seen:
            seen.add(run.epochs_done)
            states.append((copy.deepcopy(run.model.state_dict()), loop._selection_key(run.snap.task, rep)))
        return rep
    loop.evaluate = spy
    try:
        yield states
    finally:
        loop.evaluate = real


def kept_test_curve(curve: list[list[float]], keys: list, tests: list[float]) -> list[list[float]]:
    """(seconds, test balanced accuracy of the model the run would deliver if it ended there: the
    best epoch on validation so far, ties to the earlier) per epoch. The test figures never chose
    anything: they say when an arm's delivered model reached a quality, on unselected images."""
    out, best, best_test = [], None, 0.0
    for (t, _), key, test in zip(curve, keys, tests):
        if best is None or key > best:
            best, best_test = key, test
        out.append([t, best_test])
    return out


def plain_arm(data: str, budget_s: float, seed: int = 0) -> dict:
    """What a competent user writes from the torchvision references, from random init (no weights
    here): resnet18, every layer, 224x224 RGB resize, Adam 1e-3 wd 1e-4, balanced class weights,
    per-sample h-flips, constant LR, best validation epoch kept."""
    import cv2
    import torch
    import torchvision
    rows, split = split_rows(data, seed)
    split = np.asarray(split)
    x = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(DATA / data / r["image"]), cv2.IMREAD_COLOR),
                                          cv2.COLOR_BGR2RGB), (PLAIN_SIDE, PLAIN_SIDE), interpolation=cv2.INTER_AREA)
                  for r in rows])
    y = np.array([int(r["label"] == "NG") for r in rows])
    tr, va, te = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def tensors(idx: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(x[idx]).permute(0, 3, 1, 2).float() / 255 - mean) / std

    def predict(idx: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return torch.cat([model(tensors(idx[i:i + 64])).argmax(1) for i in range(0, len(idx), 64)]).numpy()

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    counts = np.bincount(y[tr], minlength=2)
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor(len(tr) / (2 * np.maximum(counts, 1)), dtype=torch.float32))
    rng = np.random.default_rng(seed)
    curve, best, best_state, secs, states = [], -1.0, None, [], []
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget_s:
        te0 = time.monotonic()
        model.train()
        perm = tr[rng.permutation(len(tr))]
        for i in range(0, len(perm) - 1, 32):
            if time.monotonic() - t0 >= budget_s:
                break
            b = perm[i:i + 32]
            xb = tensors(b)
            flip = torch.from_numpy(rng.random(len(b)) < 0.5).view(-1, 1, 1, 1)
            loss = crit(model(torch.where(flip, xb.flip(3), xb)), torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        secs.append(time.monotonic() - te0)
        ba = balanced_accuracy(y[va], predict(va))
        curve.append((time.monotonic() - t0, ba))
        note({"plain_epoch": len(curve), "t": round(curve[-1][0], 1), "val": round(ba, 3)})
        states.append(copy.deepcopy(model.state_dict()))
        if ba > best:
            best, best_state = ba, states[-1]
    # Each epoch's test figure, after the clock (kept_test_curve: when its delivered model got there).
    tests = []
    for st in states:
        model.load_state_dict(st)
        tests.append(round(balanced_accuracy(y[te], predict(te)), 4))
    model.load_state_dict(best_state)
    pred = predict(te)
    return {"test_balanced_accuracy": round(balanced_accuracy(y[te], pred), 4),
            "test_ng_recall": round(float(np.mean(pred[y[te] == 1] == 1)), 4), "val_best": round(best, 4),
            "curve": [[round(t, 1), round(a, 3)] for t, a in curve], "epochs": len(curve),
            "kept_test_curve": kept_test_curve([[round(t, 1), a] for t, a in curve], [(a,) for _, a in curve], tests),
            "s_per_epoch": round(float(np.mean(secs)), 1), "n_test": len(te), "n_train": len(tr)}


def time_to(curve: list[list[float]], target: float) -> float | None:
    """First time a curve reached target. The curves are stored at 3 decimals and val_best at 4:
    compared at the curve's precision (at 4, the plain loop never "reached" its own best)."""
    return next((t for t, a in curve if a >= round(target, 3)), None)


def time_to_test(curve: list[list[float]], target: float) -> float | None:
    """First time a kept_test_curve reached target (both at 4 decimals: one test image is >= 0.003)."""
    return next((t for t, a in curve if a >= target - 1e-9), None)


def run_both(data: str, budget_s: float, seed: int = 0) -> dict:
    """Both arms side by side (subprocesses, one thread each); one JSON record."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = {arm: subprocess.Popen([sys.executable, str(ROOT / "bench" / "train.py"), "--real", data,
                                    "--arm", arm, "--budget", str(budget_s), "--seeds", str(seed)],
                                   stdout=subprocess.PIPE, env=env, text=True) for arm in ("okng", "plain")}
    res = {arm: json.loads(p.communicate()[0].strip().splitlines()[-1]) for arm, p in procs.items()}
    ok, plain = res["okng"], res["plain"]
    target = plain["val_best"]
    t_ok, t_plain = time_to(ok["curve"], target), time_to(plain["curve"], target)
    return {"bench": "train", "mode": "real", "data": data, "budget_s": budget_s, "threads_per_arm": 1, "seed": seed,
            "okng_test_balanced_accuracy": ok["test_balanced_accuracy"],
            "plain_test_balanced_accuracy": plain["test_balanced_accuracy"],
            "plain_val_best": target, "okng_time_to_plain_val_best_s": t_ok, "plain_time_to_its_val_best_s": t_plain,
            "time_ratio": None if t_ok is None or not t_plain else round(t_ok / t_plain, 3), "ratio_target": 0.5,
            # The same question on images that chose nothing: when each arm's delivered model (its
            # best epoch on validation so far) first reached the plain loop's final test figure.
            **test_timing(ok, plain),
            "okng": ok, "plain": plain, "load_1min": os.getloadavg()[0]}


def test_timing(ok: dict, plain: dict) -> dict:
    target = plain["test_balanced_accuracy"]
    t_ok, t_plain = time_to_test(ok["kept_test_curve"], target), time_to_test(plain["kept_test_curve"], target)
    return {"okng_time_to_plain_test_s": t_ok, "plain_time_to_its_test_s": t_plain,
            "test_time_ratio": None if t_ok is None or not t_plain else round(t_ok / t_plain, 3)}


def run_seeds(data: str, budget_s: float, seeds: list[int]) -> dict:
    """run_both once per seed (one after the other) and what the repeats say together. One seed
    gives run_both's record unchanged."""
    if len(seeds) == 1:
        return run_both(data, budget_s, seeds[0])
    runs = []
    for seed in seeds:
        runs.append(run_both(data, budget_s, seed))
        note({"seed": seed, "okng": runs[-1]["okng_test_balanced_accuracy"],
              "plain": runs[-1]["plain_test_balanced_accuracy"], "time_ratio": runs[-1]["time_ratio"],
              "test_time_ratio": runs[-1]["test_time_ratio"]})
    ok = np.array([r["okng_test_balanced_accuracy"] for r in runs])
    plain = np.array([r["plain_test_balanced_accuracy"] for r in runs])
    ratios = [r["time_ratio"] for r in runs]
    known = [x for x in ratios if x is not None]
    return {"bench": "train", "mode": "real", "data": data, "budget_s": budget_s, "threads_per_arm": 1,
            "seeds": seeds, "okng_test_balanced_accuracy_mean": round(float(ok.mean()), 4),
            "okng_test_balanced_accuracy_std": round(float(ok.std(ddof=1)), 4),
            "plain_test_balanced_accuracy_mean": round(float(plain.mean()), 4),
            "plain_test_balanced_accuracy_std": round(float(plain.std(ddof=1)), 4),
            "okng_wins": int((ok > plain).sum()), "ties": int((ok == plain).sum()), "plain_wins": int((ok < plain).sum()),
            # None: okng never reached the plain loop's quality in that seed (left out of the median)
            "time_ratios": ratios, "time_ratio_median": round(float(np.median(known)), 3) if known else None,
            "time_ratio_target": 0.5, "test_time_ratios": [r["test_time_ratio"] for r in runs],
            "per_seed": [{k: r[k] for k in ("seed", "okng_test_balanced_accuracy", "plain_test_balanced_accuracy",
                                            "plain_val_best", "okng_time_to_plain_val_best_s",
                                            "plain_time_to_its_val_best_s", "time_ratio", "okng_time_to_plain_test_s",
                                            "plain_time_to_its_test_s", "test_time_ratio", "load_1min")}
                         | {"okng_ng_recall": r["okng"]["test_ng_recall"], "plain_ng_recall": r["plain"]["test_ng_recall"],
                            "okng_epochs": r["okng"]["epochs"], "plain_epochs": r["plain"]["epochs"],
                            "okng_flips_only_from_epoch_2": bool(r["okng"].get("augment_why")),
                            "n_test": r["okng"]["n_test"]} for r in runs]}


def run_arm(data: str, arm: str, budget_s: float, seed: int = 0, overrides: dict | None = None) -> dict:
    import torch
    torch.set_num_threads(1)
    if arm == "plain":
        return plain_arm(data, budget_s, seed)
    with tempfile.TemporaryDirectory(prefix="okng-bench-real-") as d:
        return {**okng_arm(data, budget_s, Path(d), seed, overrides), "overrides": overrides or {}}
