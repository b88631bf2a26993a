"""A model's cameras against a source's or the parts' (training/cameras.py): a name or count
mismatch stops live sort and prediction with a clear error, an explicit map makes the model's
ROIs apply to the mapped cameras. Real project files, real folder sources, the built-in PLC
simulator on 127.0.0.1."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from sortkit import wait_for

from app.cli import main
from hardware.sort.session import SessionSpec, run_session
from hardware.sort.summary import SortStarted
from labeling.store import Project
from labeling.types import BOLT_CLASSES, ROI, Label, Settings, Verdict
from training.backbones import get_backbone
from training.cameras import CameraMismatch, match_cameras, parse_camera_map
from training.card import ModelCard
from training.checkpoint import sha256, to_bytes
from training.inference import load_model
from training.predict import predict_parts

ROIS = {"cam0": [2, 2, 20, 16], "cam1": [4, 4, 16, 12], "cam2": [0, 0, 24, 20]}


def _project_with_model(path: Path, cameras: list[str]) -> Path:
    """A project of parts on `cameras` and a stored (untrained) model that knows those cameras
    and their ROIs, made active."""
    proj = Project.create(path, Settings(name="cams", cameras=list(cameras), classes=list(BOLT_CLASSES)))
    rng = np.random.default_rng(0)
    for i in range(2):
        views = [rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in cameras]
        proj.add_part(views, cameras=list(cameras), label=Label(Verdict.OK))
    spec = get_backbone("mobilenet_v3_small")
    torch.manual_seed(0)
    data = to_bytes(spec.build(2), spec.name, 2)
    card = ModelCard("m-cams", spec.name, input_size=(32, 32), rois={c: ROIS[c] for c in cameras if c in ROIS},
                     cameras=list(cameras), target_layer=spec.target_layer, checkpoint_sha256=sha256(data))
    proj.save_model(card.id, card.to_meta(), data)
    proj.set_active_model(card.id)
    return path


def _folder(root: Path, cameras: list[str], n: int = 3) -> Path:
    import cv2
    rng = np.random.default_rng(1)
    for cam in cameras:
        (root / cam).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            cv2.imwrite(str(root / cam / f"part_{k:03d}.png"), rng.integers(0, 255, (24, 32), dtype=np.uint8))
    return root


def test_match_cameras_rules():
    model = ["cam0", "cam1", "cam2", "cam3"]
    assert match_cameras("m", model, model) == {c: c for c in model}
    with pytest.raises(CameraMismatch, match=r"trained on 4 camera\(s\) cam0, cam1, cam2, cam3; the source has 3: "
                                             r"Viky-0, Viky-1, Viky-2") as err:
        match_cameras("m", model, ["Viky-0", "Viky-1", "Viky-2"])
    assert "ROIs would not be applied" in str(err.value) and "Viky-0=cam0" in str(err.value)
    three = {"Viky-0": "cam0", "Viky-1": "cam1", "Viky-2": "cam2"}
    with pytest.raises(CameraMismatch, match="no view from cam3"):  # the count still differs
        match_cameras("m", model, list(three), three)
    assert match_cameras("m", model[:3], list(three), three) == three
    assert match_cameras("m", model, ["cam1"], exact=False) == {"cam1": "cam1"}  # parts: a subset is fine
    with pytest.raises(CameraMismatch, match="does not know"):
        match_cameras("m", model, ["Viky-0"], {"Viky-0": "cam9"})
    with pytest.raises(CameraMismatch, match="does not have"):
        match_cameras("m", model, model, {"Viky-7": "cam0"})
    with pytest.raises(CameraMismatch, match="two of"):
        match_cameras("m", model[:2], ["a", "b"], {"a": "cam0", "b": "cam0"})
    assert match_cameras("m", [], ["anything"]) == {"anything": "anything"}  # an old card knew none
    assert parse_camera_map(" Viky-0=cam0, Viky-1=cam1 ") == {"Viky-0": "cam0", "Viky-1": "cam1"}
    with pytest.raises(ValueError, match="SOURCE=MODEL"):
        parse_camera_map("Viky-0")


def test_prediction_on_parts_from_other_cameras_stops_or_maps(tmp_path):
    path = _project_with_model(tmp_path / "p.okng", ["cam0", "cam1"])
    proj = Project.open(path)
    foreign = proj.add_part([np.zeros((24, 32), np.uint8)], cameras=["Viky-0"])
    with pytest.raises(CameraMismatch, match="Viky-0 unknown to the model"):
        predict_parts(path, "active", parts=[foreign], heatmaps=False, device="cpu")
    assert not Project.open(path, readonly=True).predictions(foreign)  # nothing was stored
    out = predict_parts(path, "active", parts=[foreign], heatmaps=False, device="cpu",
                        camera_map={"Viky-0": "cam1"})
    assert out["predicted"] == 1
    loaded = load_model(path, "active", device="cpu")
    loaded.check_cameras(["Viky-0"], {"Viky-0": "cam1"}, exact=False)
    _, geom = loaded.preprocess(np.zeros((24, 32), np.uint8), "Viky-0")
    assert geom.roi == ROI(*ROIS["cam1"])  # the mapped camera's ROI, not the whole frame
    assert main(["predict", str(path), "--parts", str(foreign), "--no-heatmaps", "--redo"]) == 1
    assert main(["predict", str(path), "--parts", str(foreign), "--no-heatmaps", "--redo", "--json",
                 "--map-cameras", "Viky-0=cam0"]) == 0


def test_sort_session_refuses_a_source_with_other_cameras(tmp_path, capsys):
    path = _project_with_model(tmp_path / "s.okng", ["cam0", "cam1", "cam2"])
    folder = _folder(tmp_path / "run", ["Viky-0", "Viky-1", "Viky-2"])
    spec = SessionSpec(str(path), None, f"folder:{folder}", threads=1, period=0.05)
    reports: list = []
    with pytest.raises(CameraMismatch, match="Viky-0, Viky-1, Viky-2"):
        run_session(spec, reports.append, lambda: False)
    assert not any(isinstance(r.payload, SortStarted) for r in reports)  # stopped before sorting
    mapped = SessionSpec(str(path), None, f"folder:{folder}", threads=1, period=0.05,
                         camera_map=(("Viky-0", "cam0"), ("Viky-1", "cam1"), ("Viky-2", "cam2")))
    halt = threading.Event()
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("summary", run_session(mapped, reports.append, halt.is_set)),
                         daemon=True)
    t.start()
    wait_for(lambda: any(isinstance(r.payload, SortStarted) for r in reports), what="a mapped run starts")
    halt.set()
    t.join(30)
    assert "summary" in out
    # the CLI says the same, and maps the same way
    assert main(["sort", str(path), "--source", f"folder:{folder}", "--parts", "1", "--json"]) == 1
    assert "--map-cameras" in capsys.readouterr().err
    assert main(["sort", str(path), "--source", f"folder:{folder}", "--parts", "1", "--json",
                 "--map-cameras", "Viky-0=cam0,Viky-1=cam1,Viky-2=cam2"]) == 0
