"""`bench/train.py --task classes`: a class model, okng against the plain torchvision loop.

Data: neu_det (six steel defect classes, 300 images each, no OK part) or the bolt demo (OK + its
four defect classes, generated). Both sides get the same parts, the same train/val split (okng's
own stratified split, seed 0), the same backbone, input size, freeze policy, optimizer and
learning rate, and the same wall-clock time; a held-out test set (20 % by class, never seen by
either) gives the final test macro F1. Time to equal quality: when okng's validation macro F1
first reaches the plain loop's final one, divided by the plain loop's own time to it (aim <= 0.5).

    .venv/bin/python bench/train.py --task classes --data neu_det [--per-class 100] [--epochs 8]
    .venv/bin/python bench/train.py --task classes --data bolts [--parts 160] [--epochs 8]

okng trains first (`--epochs`, its default machinery); the plain loop then gets exactly okng's
wall-clock time.

Prints ONE JSON line on stdout (progress notes go to stderr).
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "data" / "neu_det"
ARCH, FREEZE, SIZE, BATCH, LR = "resnet18", "last-block", 128, 32, 1e-3
TRAINABLE = ("layer4", "fc")


def _note(d: dict) -> None:
    print(json.dumps(d), file=sys.stderr, flush=True)


def neu_parts(per_class: int, seed: int) -> tuple[list[str], list[tuple[np.ndarray, int]]]:
    """(class names, [(gray image, 1-based class)]): per_class images of each class."""
    import cv2
    with open(NEU / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["defect_class"] for r in rows})
    rng = np.random.default_rng(seed)
    out = []
    for k, name in enumerate(names, start=1):
        mine = [r for r in rows if r["defect_class"] == name]
        for r in rng.permutation(len(mine))[:per_class]:
            out.append((cv2.imread(str(NEU / mine[int(r)]["image"]), cv2.IMREAD_GRAYSCALE), k))
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
    from labeling.types import DefectClass, Label, PartSource, Settings, Verdict
    if path.exists():
        path.unlink()
    views = items[0][0] if isinstance(items[0][0], list) else [items[0][0]]
    cams = [f"cam{i}" for i in range(len(views))]
    proj = Project.create(path, Settings(name=path.stem, cameras=cams,
                                         classes=[DefectClass(n, "#ff0000", str(i + 1)) for i, n in enumerate(names)]))
    for img, cls in items:
        imgs = img if isinstance(img, list) else [img]
        label = Label(Verdict.NG, cls) if cls else Label(Verdict.OK)
        proj.add_part(imgs, cameras=cams, source=PartSource.IMPORT, label=label)
    return path


def macro_f1(y: np.ndarray, pred: np.ndarray, n: int) -> float:
    """okng's macro F1 (task_metrics: over the classes that occur), for both sides."""
    from training.task_metrics import multiclass_report
    return float(multiclass_report(y, np.eye(n)[pred], [str(i) for i in range(n)], ok_index=None)["macro_f1"])


def plain_loop(trainval: Path, test_items: list, n_out: int, budget_s: float, seed: int = 0) -> dict:
    """The torchvision references' loop written plainly: resnet18 last-block, Adam, balanced CE,
    per-sample h-flips, letterboxed inputs, no feature caching, constant lr; every view is a
    sample with its part's class; a part takes the class of its most-NG view, as okng does."""
    import torch
    import torchvision

    from labeling.store import Project
    from training.data import preprocess_view
    from training.snapshot import stratified_split
    from training.weights import find_pretrained
    t0 = time.monotonic()
    torch.manual_seed(seed)
    proj = Project.open(trainval, readonly=True)
    parts = proj.parts()
    y = np.array([p.label.defect_class for p in parts])
    tr, va = stratified_split(y, 0.2, seed)  # okng's split of the same parts

    def inputs(images: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([preprocess_view(im, None, (SIZE, SIZE))[0] for im in images])
    x = [inputs(proj.read_views(p.id)) for p in parts]
    model = torchvision.models.resnet18(num_classes=n_out)
    state, _ = find_pretrained("resnet18")
    if state is not None:
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    for name, prm in model.named_parameters():
        prm.requires_grad = name.startswith(TRAINABLE)
    frozen = [m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and not n.startswith(TRAINABLE)]
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
    curve = []
    while time.monotonic() - t0 < budget_s:
        model.train()
        for m in frozen:
            m.eval()
        order = rng.permutation(len(views))
        for s in range(0, len(order), BATCH):
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
        _note({"plain_epoch": len(curve), "t": round(curve[-1][0], 1), "val_macro_f1": round(f1, 4)})
    final = curve[-1][1]
    test_y = np.array([c for _, c in test_items])
    test_x = [inputs(img if isinstance(img, list) else [img]) for img, _ in test_items]
    return {"final_val_macro_f1": final, "time_to_final_s": round(next(t for t, a in curve if a >= final), 1),
            "epochs": len(curve), "test_macro_f1": macro_f1(test_y, predict(test_x), n_out),
            "pretrained": state is not None, "curve": [[round(t, 1), round(a, 4)] for t, a in curve]}


def okng_run(trainval: Path, test_items: list, epochs: int, limit_s: float) -> dict:
    """okng's training of a classes model (its own caching, schedule, epoch choice), `epochs`
    epochs; the plain loop then gets the same wall-clock."""
    from labeling.store import Project
    from training.config import TrainConfig
    from training.inference import load_model
    from training.loop import train
    t0 = time.monotonic()
    curve = []

    def progress(p) -> None:
        if p.stage == "eval":
            e = p.payload
            curve.append((time.monotonic() - t0, float(e.val_macro_f1)))
            _note({"okng_epoch": e.epoch, "t": round(curve[-1][0], 1), "val_macro_f1": round(curve[-1][1], 4)})

    # Same architecture, freeze, input, optimizer and lr as the plain loop.
    cfg = TrainConfig(task="classes", arch=ARCH, freeze=FREEZE, input_size=SIZE, batch_size=BATCH, lr=LR,
                      epochs=epochs, patience=0, seed=0)
    res = train(trainval, cfg, progress, lambda: time.monotonic() - t0 > limit_s)
    out = {"final_val_macro_f1": curve[-1][1] if curve else None, "epochs": len(curve),
           "total_s": round(time.monotonic() - t0, 1), "cancelled": res.cancelled,
           "stored_val_macro_f1": None if res.cancelled else res.metrics["val"]["macro_f1"],
           "curve": [[round(t, 1), round(a, 4)] for t, a in curve], "_curve": curve}
    if res.cancelled:
        out["test_macro_f1"] = None
        return out
    loaded = load_model(Project.open(trainval, readonly=True), res.model_id, "cpu")
    n = len(loaded.class_names)
    pred = []
    for img, _ in test_items:
        imgs = img if isinstance(img, list) else [img]
        dec = loaded.predict_views(imgs, [f"cam{i}" for i in range(len(imgs))])
        pred.append(dec.defect_class if dec.verdict.name == "NG" else 0)
    out["test_macro_f1"] = macro_f1(np.array([c for _, c in test_items]), np.array(pred), n)
    return out


def run(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.data == "neu_det":
        names, items = neu_parts(args.per_class, 0)
    else:
        names, items = bolt_parts(args.parts, 0, work)
    classes = np.array([c for _, c in items])
    rest, test = split_test(classes, 0.2, 0)
    trainval = make_project(work / f"{args.data}-trainval.okng", names, [items[int(i)] for i in rest])
    test_items = [items[int(i)] for i in test]
    n_out = len(names) + 1
    okng = okng_run(trainval, test_items, args.epochs, args.limit)
    budget = okng["total_s"]  # equal wall-clock: the plain loop trains as long as okng took
    plain = plain_loop(trainval, test_items, n_out, budget)
    curve = okng.pop("_curve")
    t_ok = next((round(t, 1) for t, a in curve if a >= plain["final_val_macro_f1"]), None)
    okng["time_to_plain_final_s"] = t_ok
    return {"bench": "train_classes", "data": args.data, "classes": names, "parts": len(items),
            "train_val_parts": len(rest), "test_parts": len(test), "budget_s": budget,
            "arch": ARCH, "freeze": FREEZE, "input": SIZE, "threads": args.threads,
            "plain": plain, "okng": okng,
            "time_to_equal_quality_ratio": None if t_ok is None else round(t_ok / max(plain["time_to_final_s"], 1e-9), 3),
            "test_macro_f1": {"plain": plain["test_macro_f1"], "okng": okng["test_macro_f1"]}}
