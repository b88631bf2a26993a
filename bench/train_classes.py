"""`bench/train.py --task classes`: a class model, okng's default against a plain torchvision loop.

Data: neu_det (six steel defect classes, no OK part) or the bolt demo (OK + its four defect
classes, generated). A held-out test set (20 % by class, seed 0) is never seen by either arm; the
rest is the train+val pool. Each arm gets the same wall-clock budget and runs side by side with
the other (subprocesses, one thread each), so the shared machine's load falls on both alike:

* okng: `okng train --task classes --budget B` as a user runs it (recipe auto: without ImageNet
  weights the scratch recipe, input size from the data, its own 15 % validation split, best
  validation epoch kept; no test split of its own: the bench holds the test parts out).
* plain: what a competent user writes from the torchvision references: resnet18 (every layer
  without ImageNet weights, the last block with them), 128 px letterboxed RGB inputs, Adam 1e-3
  wd 1e-4, class-weighted cross-entropy, per-sample h-flips, constant LR, best validation epoch
  kept on a 15 % stratified split of the same pool; a part takes the class of its most-NG view.

Test macro F1 per arm on the same parts; time to equal quality: when okng's validation macro F1
first reached the plain loop's best, divided by the plain loop's own time to it (aim <= 0.5).

    .venv/bin/python bench/train.py --task classes --data neu_det [--per-class 100] [--budget 180]
    .venv/bin/python bench/train.py --task classes --data bolts [--parts 160] [--budget 180]

Prints ONE JSON line on stdout (progress notes go to stderr).
"""
from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import EpochCurve, card_summary, note

NEU = ROOT.parent / "shared" / "data" / "neu_det"
if not NEU.exists():
    NEU = Path("/work/shared/data/neu_det")
ARCH, SIZE, BATCH, LR = "resnet18", 128, 32, 1e-3
TRAINABLE = ("layer4", "fc")


def neu_parts(per_class: int, seed: int, boxes: bool = False) -> tuple[list[str], list[tuple]]:
    """(class names, [(gray image, 1-based class)]): per_class images of each class; with
    `boxes`, [(gray image, class, mask)] where the mask fills the image's annotated boxes (neu_det
    has boxes, not masks: what an inspector's rectangle tool would draw)."""
    import cv2
    with open(NEU / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    box_rows: dict[str, list[dict[str, str]]] = {}
    with open(NEU / "boxes.csv", newline="") as f:
        for b in csv.DictReader(f):
            box_rows.setdefault(b["image"], []).append(b)
    names = sorted({r["defect_class"] for r in rows})
    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    for k, name in enumerate(names, start=1):
        mine = [r for r in rows if r["defect_class"] == name]
        for r in rng.permutation(len(mine))[:per_class]:
            row = mine[int(r)]
            img = cv2.imread(str(NEU / row["image"]), cv2.IMREAD_GRAYSCALE)
            if not boxes:
                out.append((img, k))
                continue
            mask = np.zeros(img.shape, np.uint8)
            for b in box_rows.get(row["image"], []):
                # painted with the part's class (a mask's value is its class: training.snapshot)
                mask[int(b["ymin"]):int(b["ymax"]) + 1, int(b["xmin"]):int(b["xmax"]) + 1] = k
            out.append((img, k, mask))
    return names, out


def bolt_parts(parts: int, seed: int, work: Path) -> tuple[list[str], list[tuple[list[np.ndarray], int]]]:
    """The bolt demo's parts (the generator's labels): four views each, class 0 = OK."""
    from labeling.demo import make_demo_project
    proj = make_demo_project(work / "bolts-source.okng", "bolts", parts=parts, seed=seed, size=(320, 240),
                             overwrite=True)
    names = [c.name for c in proj.settings.classes]
    return names, [(proj.read_views(p.id), p.label.defect_class if p.label else 0) for p in proj.parts()]


def split_test(classes: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from training.snapshot import stratified_split
    rest, test = stratified_split(classes, frac, seed + 1000)
    return rest, test


def make_project(path: Path, names: list[str], items: list, ok_name: str = "OK") -> Path:
    from labeling.store import Project
    from labeling.types import DefectClass, Label, PartSource, Settings, Verdict, class_color
    if path.exists():
        path.unlink()
    views = items[0][0] if isinstance(items[0][0], list) else [items[0][0]]
    cams = [f"cam{i}" for i in range(len(views))]
    proj = Project.create(path, Settings(name=path.stem, cameras=cams,
                                         classes=[DefectClass(n, class_color(i), str(i + 1)) for i, n in enumerate(names)]))
    for img, cls, *mask in items:
        imgs = img if isinstance(img, list) else [img]
        label = Label(Verdict.NG, cls) if cls else Label(Verdict.OK)
        proj.add_part(imgs, cameras=cams, source=PartSource.IMPORT, label=label, masks=mask or None)
    return path


def macro_f1(y: np.ndarray, pred: np.ndarray, n: int) -> float:
    """okng's macro F1 (task_metrics: over the classes that occur), for both sides."""
    from training.task_metrics import multiclass_report
    return float(multiclass_report(y, np.eye(n)[pred], [str(i) for i in range(n)], ok_index=None)["macro_f1"])


def _read_test(path: Path) -> list[tuple[list[np.ndarray], int]]:
    from labeling.store import Project
    proj = Project.open(path, readonly=True)
    return [(proj.read_views(p.id), p.label.defect_class if p.label else 0) for p in proj.parts()]


def _names(args) -> tuple[str, str]:
    """The work folder's project names: box-masked neu_det projects apart from the plain ones."""
    tag = f"{args.data}-boxes" if getattr(args, "box_masks", False) else args.data
    return f"{tag}-trainval.okng", f"{tag}-test.okng"


def plain_arm(trainval: Path, test: Path, budget_s: float, seed: int = 0) -> dict:
    import torch
    import torchvision

    from labeling.store import Project
    from training.data import preprocess_view
    from training.snapshot import stratified_split
    from training.weights import find_pretrained
    torch.manual_seed(seed)
    proj = Project.open(trainval, readonly=True)
    parts = proj.parts()
    n_out = len(proj.settings.classes) + 1
    y = np.array([p.label.defect_class for p in parts])
    tr, va = stratified_split(y, 0.15, seed)

    def inputs(images: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([preprocess_view(im, None, (SIZE, SIZE))[0] for im in images])
    x = [inputs(proj.read_views(p.id)) for p in parts]
    model = torchvision.models.resnet18(num_classes=n_out)
    state, _ = find_pretrained("resnet18")
    frozen = []
    if state is not None:  # ImageNet features: fine-tune the last block, as okng's auto does
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
        for name, prm in model.named_parameters():
            prm.requires_grad = name.startswith(TRAINABLE)
        frozen = [m for n, m in model.named_modules()
                  if isinstance(m, torch.nn.BatchNorm2d) and not n.startswith(TRAINABLE)]
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=LR, weight_decay=1e-4)
    counts = np.bincount(y[tr], minlength=n_out).astype(float)
    w = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
    views = [(i, k) for i in tr for k in range(len(x[i]))]
    rng = np.random.default_rng(seed)

    def predict(batches: list[torch.Tensor]) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for xb in batches:
                p = torch.softmax(model(xb), 1).numpy()
                out.append(int(p[int(np.argmax(1 - p[:, 0]))].argmax()))
        return np.array(out)
    curve, best, best_state = [], -1.0, None
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget_s:
        model.train()
        for m in frozen:
            m.eval()
        order = rng.permutation(len(views))
        for s in range(0, len(order), BATCH):
            if time.monotonic() - t0 >= budget_s:
                break
            b = [views[int(j)] for j in order[s:s + BATCH]]
            xb = torch.stack([x[i][k] for i, k in b])
            flip = torch.from_numpy(rng.random(len(b)) < 0.5).view(-1, 1, 1, 1)
            xb = torch.where(flip, xb.flip(3), xb)
            loss = crit(model(xb), torch.as_tensor([int(y[i]) for i, _ in b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        f1 = macro_f1(y[va], predict([x[int(i)] for i in va]), n_out)
        curve.append((time.monotonic() - t0, f1))
        note({"plain_epoch": len(curve), "t": round(curve[-1][0], 1), "val_macro_f1": round(f1, 4)})
        if f1 > best:
            best, best_state = f1, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    items = _read_test(test)
    test_y = np.array([c for _, c in items])
    return {"val_best": round(best, 4), "time_to_best_s": round(next(t for t, a in curve if a >= best), 1),
            "epochs": len(curve), "test_macro_f1": round(macro_f1(test_y, predict([inputs(v) for v, _ in items]), n_out), 4),
            "pretrained": state is not None, "input": [SIZE, SIZE],
            "curve": [[round(t, 1), round(a, 4)] for t, a in curve]}


def okng_arm(trainval: Path, test: Path, budget_s: float, overrides: dict | None = None) -> dict:
    """okng's default `okng train --task classes --budget B` (the session the CLI runs), with
    TrainConfig values over the defaults when given (A/B runs: --okng-config)."""
    from labeling.store import Project
    from training.inference import load_model
    from training.session import TrainSpec, run_session
    curve = EpochCurve("val_macro_f1")
    res = run_session(TrainSpec(str(trainval), {"task": "classes", "budget_s": budget_s, "num_threads": 1,
                                                "test_fraction": 0.0, **(overrides or {})}), curve)
    curve.count_probe(res.card)
    loaded = load_model(Project.open(trainval, readonly=True), res.model_id, "cpu")
    n = len(loaded.class_names)
    items = _read_test(test)
    pred = []
    for imgs, _ in items:
        dec = loaded.predict_views(imgs, [f"cam{i}" for i in range(len(imgs))])
        pred.append(dec.defect_class if dec.verdict.name == "NG" else 0)
    return {**card_summary(res, curve),
            "test_macro_f1": round(macro_f1(np.array([c for _, c in items]), np.array(pred), n), 4)}


def prepare(args) -> tuple[Path, Path, dict]:
    """The train+val pool and the test parts as two projects in the work folder (built once)."""
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    trainval, test = (work / n for n in _names(args))
    if args.data == "neu_det":
        names, items = neu_parts(args.per_class, 0, getattr(args, "box_masks", False))
    else:
        names, items = bolt_parts(args.parts, 0, work)
    classes = np.array([it[1] for it in items])
    rest, held = split_test(classes, 0.2, 0)
    make_project(trainval, names, [items[int(i)] for i in rest])
    make_project(test, names, [items[int(i)] for i in held])
    return trainval, test, {"classes": names, "parts": len(items), "train_val_parts": len(rest),
                            "test_parts": len(held)}


def run(args) -> dict:
    work = Path(args.workdir)
    trainval, test = (work / n for n in _names(args))
    if args.arm != "both":
        import torch
        torch.set_num_threads(1)
        if args.arm == "okng":
            if not trainval.exists():  # an A/B run started alone: build the projects first
                trainval, test, _ = prepare(args)
            return okng_arm(trainval, test, args.budget, args.okng_config)
        return plain_arm(trainval, test, args.budget)
    trainval, test, info = prepare(args)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, str(ROOT / "bench" / "train.py"), "--task", "classes", "--data", args.data,
           "--budget", str(args.budget), "--workdir", str(work)]
    procs = {arm: subprocess.Popen([*cmd, "--arm", arm], stdout=subprocess.PIPE, env=env, text=True)
             for arm in ("okng", "plain")}
    res = {arm: json.loads(p.communicate()[0].strip().splitlines()[-1]) for arm, p in procs.items()}
    ok, plain = res["okng"], res["plain"]
    target = plain["val_best"]
    t_ok = next((t for t, a in ok["curve"] if a >= target), None)
    return {"bench": "train_classes", "data": args.data, **info, "budget_s": args.budget, "threads_per_arm": 1,
            "test_macro_f1": {"okng": ok["test_macro_f1"], "plain": plain["test_macro_f1"]},
            "plain_val_best": target, "okng_time_to_plain_val_best_s": t_ok,
            "plain_time_to_its_val_best_s": plain["time_to_best_s"],
            "time_to_equal_quality_ratio": None if t_ok is None else round(t_ok / max(plain["time_to_best_s"], 1e-9), 3),
            "ratio_target": 0.5, "okng": ok, "plain": plain}
