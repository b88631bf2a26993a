"""A four-camera demo project exported and re-imported in every format comes back the same
(parts, cameras, labels, classes and colours, masks, ROIs), as far as the format can hold it."""
from __future__ import annotations

import numpy as np
import pytest

from app.cli import main
from labeling.demo.build import make_demo_project
from labeling.formats import export_project, import_into
from labeling.store import Project
from labeling.types import ROI, Verdict


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "bolts.h5"
    p = make_demo_project(path, kind="bolts", parts=16, seed=3, size=(48, 40))
    p.set_roi("cam0", ROI(4, 5, 30, 20))
    p.set_roi("cam2", ROI(0, 2, 40, 36))
    pid = p.part_ids()[1]
    p.set_label(pid, Verdict.UNLABELED)  # an unlabeled part too
    return p


def _state(p: Project, masks: str) -> dict:
    out = {}
    for part in p.parts():
        views = []
        for v, info in enumerate(part.views):
            m = p.read_mask(part.id, v)
            if masks == "painted":  # severstal: only class pixels exist in the format
                m = m if m is not None and m.any() else None
            views.append((info.camera, p.read_image(part.id, v).tobytes(),
                          None if masks == "none" or m is None else m.tobytes()))
        label = (part.verdict, part.label.defect_class if part.label else 0)
        out[part.name] = (views, label)
    return out


@pytest.mark.parametrize("fmt", ["masks", "labelme", "coco", "imagefolder", "severstal"])
def test_four_camera_round_trip(tmp_path, demo, fmt):
    export_project(demo, tmp_path / "out", fmt)
    dst = Project.create(tmp_path / "dst.h5")  # default settings: the sidecar's cameras win
    report = import_into(dst, tmp_path / "out", fmt)
    assert report.errors == [] and report.imported == 16 and report.counts["views"] == 64
    assert dst.settings.cameras == demo.settings.cameras == ["cam0", "cam1", "cam2", "cam3"]
    assert dst.settings.rois == demo.settings.rois
    assert dst.settings.classes == demo.settings.classes  # names, order, colours, hotkeys
    masks = {"imagefolder": "none", "severstal": "painted"}.get(fmt, "all")
    a, b = _state(demo, masks), _state(dst, masks)
    assert sorted(a) == sorted(b)
    for name in a:
        assert [v[:2] for v in a[name][0]] == [v[:2] for v in b[name][0]], name  # cameras, pixels
        assert [v[2] for v in a[name][0]] == [v[2] for v in b[name][0]], name  # masks
        if fmt != "severstal":
            assert a[name][1] == b[name][1], name
    if fmt == "severstal":  # verdicts follow the masks: only the unlabeled part changes
        changed = [n for n in a if a[n][1] != b[n][1]]
        assert changed == [demo.parts()[1].name]


def test_cli_round_trip_into_a_new_project(tmp_path, demo, capsys):
    """`okng export` then `okng import` into a project the CLI creates (it starts with cam0 only)."""
    assert main(["export", str(demo.path), str(tmp_path / "out"), "--format", "coco"]) == 0
    assert main(["import", str(tmp_path / "new.h5"), str(tmp_path / "out"), "--format", "coco"]) == 0
    new = Project.open(tmp_path / "new.h5")
    assert new.settings.cameras == ["cam0", "cam1", "cam2", "cam3"] and new.settings.rois == demo.settings.rois
    assert len(new) == 16 and all(len(p.views) == 4 for p in new.parts())
    assert (tmp_path / "new.import-report.json").is_file()


def test_views_of_one_part_are_atomic(tmp_path):
    """One bad view keeps its whole part out; the other parts go in."""
    from fmt_helpers import write_png
    d = tmp_path / "s"
    rows = ["image,label,part,camera"]
    for part in ("a", "b"):
        for cam in ("top", "side"):
            write_png(d / f"{part}_{cam}.png", np.full((6, 8), 9, np.uint8))
            rows.append(f"{part}_{cam}.png,OK,{part},{cam}")
    (d / "b_side.png").write_bytes(b"not a png")
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, d, "masks")
    assert r.imported == 1 and r.skipped == 2 and len(r.errors) == 1
    assert "b_side.png" in r.errors[0][1] and "cannot decode" in r.errors[0][1]
    (part,) = p.parts()
    assert part.name == "a" and [v.camera for v in part.views] == ["top", "side"]
    assert r.added_cameras == ["top", "side"] and p.settings.cameras[-2:] == ["top", "side"]


def test_file_name_rule_needs_a_known_camera(tmp_path):
    """x__cam1.png groups (cam1 is a camera of the project); img__001.png stays a part of its own."""
    from fmt_helpers import write_png
    d = tmp_path / "s" / "OK"
    for k, name in enumerate(("bolt__cam0", "bolt__cam1", "img__001")):
        write_png(d / f"{name}.png", np.full((4, 4), k, np.uint8))  # distinct: a copy is a duplicate
    p = Project.create(tmp_path / "p.h5")
    r = import_into(p, tmp_path / "s", "imagefolder")
    assert r.imported == 2 and not r.errors
    by_name = {x.name: [v.camera for v in x.views] for x in p.parts()}
    assert by_name == {"bolt": ["cam0", "cam1"], "img__001": ["cam0"]}


def test_a_part_named_like_a_view_keeps_its_name(tmp_path):
    p = Project.create(tmp_path / "p.h5")
    p.add_part([np.zeros((4, 4), np.uint8)], name="x__cam1")
    export_project(p, tmp_path / "out", "imagefolder")
    assert (tmp_path / "out" / "unlabeled" / "x__cam1__cam0.png").is_file()
    q = Project.create(tmp_path / "q.h5")
    import_into(q, tmp_path / "out", "imagefolder")
    assert [(x.name, [v.camera for v in x.views]) for x in q.parts()] == [("x__cam1", ["cam0"])]


@pytest.mark.parametrize("fmt", ["masks", "labelme", "coco"])
def test_part_fields_round_trip(tmp_path, fmt):
    p = Project.create(tmp_path / "p.h5")
    p.add_part([np.zeros((4, 4), np.uint8)], name="a", meta={"fields": {"item": "kos07", "fold": "1"}})
    p.set_label(p.part_ids()[0], Verdict.OK)
    export_project(p, tmp_path / "out", fmt)
    q = Project.create(tmp_path / "q.h5")
    assert import_into(q, tmp_path / "out", fmt).imported == 1
    assert q.parts()[0].fields == {"item": "kos07", "fold": "1"}


def test_reimporting_a_multi_view_export_finds_every_view_a_duplicate(tmp_path, demo):
    export_project(demo, tmp_path / "out", "masks")
    q = Project.create(tmp_path / "q.h5")
    assert import_into(q, tmp_path / "out", "masks").imported == 16
    again = import_into(q, tmp_path / "out", "masks")
    assert again.imported == 0 and len(again.errors) == 16 and again.skipped == 64
    assert all("already in the project" in m for _, m in again.errors) and len(q) == 16


def test_line_scan_project_round_trips_its_kind_and_camera(tmp_path):
    src = make_demo_project(tmp_path / "x.h5", kind="xray", parts=3, size=(32, 16))
    export_project(src, tmp_path / "out", "coco")
    q = Project.create(tmp_path / "q.h5")
    assert import_into(q, tmp_path / "out", "coco").imported == 3
    assert (q.settings.kind, q.settings.cameras) == (src.settings.kind, ["xray"])
    assert [v.camera for x in q.parts() for v in x.views] == ["xray"] * 3
