"""Every format: export a project, import the export into a fresh project, compare everything."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fmt_helpers import assert_same, rich_project

from labeling.formats import FORMATS, export_project, get_format, import_into
from labeling.store import Project
from labeling.types import PartSource, Verdict, class_color


def _roundtrip(tmp_path, src: Project, fmt: str):
    rep = export_project(src, tmp_path / "out", fmt)
    assert rep.exported == len(src.parts()) and rep.files > rep.exported
    dst = Project.create(tmp_path / "dst.h5")
    report = import_into(dst, tmp_path / "out", fmt)
    assert report.errors == [] and report.imported == len(src.parts())
    return dst, report


@pytest.mark.parametrize("fmt", ["masks", "labelme", "coco"])
def test_full_roundtrip(tmp_path, fmt):
    src = rich_project(tmp_path / "src.h5")
    dst, report = _roundtrip(tmp_path, src, fmt)
    assert_same(src, dst)
    part = dst.parts()[0]
    assert part.source == PartSource.IMPORT and part.meta["file"].endswith(f"{part.name}.png")
    assert report.counts["verdicts"] == {"UNLABELED": 1, "OK": 2, "NG": 3}
    assert report.counts["masks"] == 2


def test_imagefolder_roundtrip(tmp_path):
    src = rich_project(tmp_path / "src.h5", masks=False)
    dst, _ = _roundtrip(tmp_path, src, "imagefolder")
    assert_same(src, dst)
    out = tmp_path / "out"
    assert (out / "OK" / "ok-plain.png").is_file() and (out / "NG" / "ng-noclass.png").is_file()
    assert (out / "NG" / "dent" / "ng-rgb.png").is_file()
    assert (out / "unlabeled" / "unlabeled-one.png").is_file()


def test_severstal_roundtrip(tmp_path):
    src = rich_project(tmp_path / "src.h5", severstal_safe=True)
    dst, _ = _roundtrip(tmp_path, src, "severstal")
    assert_same(src, dst)
    header = (tmp_path / "out" / "train.csv").read_text().splitlines()[0]
    assert header == "ImageId,ClassId,EncodedPixels"


def test_roundtrip_without_sidecar_learns_names(tmp_path):
    """Without okng_classes.json the names still come back (colours are the importer's)."""
    src = rich_project(tmp_path / "src.h5")
    export_project(src, tmp_path / "out", "coco")
    (tmp_path / "out" / "okng_classes.json").unlink()
    dst = Project.create(tmp_path / "dst.h5")
    import_into(dst, tmp_path / "out" / "annotations.json", "coco")
    assert_same(src, dst, colours=False)


def test_labelme_export_uses_polygons_and_falls_back_to_mask_shapes(tmp_path):
    src = rich_project(tmp_path / "src.h5")
    export_project(src, tmp_path / "out", "labelme")
    easy = json.loads((tmp_path / "out" / "labelme" / "ng-16bit.json").read_text())
    hard = json.loads((tmp_path / "out" / "labelme" / "ng-rgb.json").read_text())
    assert {s["shape_type"] for s in easy["shapes"]} == {"polygon"}
    assert {s["shape_type"] for s in hard["shapes"]} == {"mask"}  # hole + lone pixel
    assert easy["imagePath"] == "../images/ng-16bit.png" and easy["imageData"] is None
    assert not (tmp_path / "out" / "labelme" / "ok-plain.json").exists()  # OK needs no JSON


def test_export_refuses_non_empty_folder(tmp_path):
    src = rich_project(tmp_path / "src.h5")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_project(src, tmp_path / "out", "masks")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_export_to_named_csv(tmp_path):
    src = rich_project(tmp_path / "src.h5")
    export_project(src, tmp_path / "o" / "mine.csv", "masks")
    assert (tmp_path / "o" / "mine.csv").is_file() and (tmp_path / "o" / "images").is_dir()
    dst = Project.create(tmp_path / "dst.h5")
    assert import_into(dst, tmp_path / "o" / "mine.csv", "masks").imported == 6


def test_multi_view_parts_export_one_file_per_view(tmp_path):
    p = Project.create(tmp_path / "p.h5")
    views = [np.full((8, 8), i, np.uint8) for i in range(4)]
    p.add_part(views, name="bolt")
    p.set_label(p.part_ids()[0], Verdict.OK)
    rep = export_project(p, tmp_path / "out", "imagefolder")
    names = sorted(f.name for f in (tmp_path / "out" / "OK").iterdir())
    assert names == ["bolt__cam0.png", "bolt__cam1.png", "bolt__cam2.png", "bolt__cam3.png"]  # PART__CAMERA
    assert rep.exported == 1


def test_export_progress_and_stop(tmp_path):
    src = rich_project(tmp_path / "src.h5")
    seen = []
    rep = export_project(src, tmp_path / "a", "masks", progress=seen.append)
    assert (seen[-1].stage, seen[-1].done, seen[-1].total) == ("export", 6, 6) and not rep.stopped
    rep = export_project(src, tmp_path / "b", "masks", should_stop=lambda: True)
    assert rep.stopped and rep.exported == 0


def test_registry():
    assert sorted(FORMATS) == ["coco", "imagefolder", "labelme", "masks", "severstal"]
    assert get_format("COCO").name == "coco"
    with pytest.raises(ValueError, match="known: imagefolder, masks"):
        get_format("voc")
    for f in FORMATS.values():
        assert f.description and callable(f.read) and callable(f.write)


def test_a_sidecar_without_colours_gives_each_class_its_own(tmp_path):
    """A hand-written okng_classes.json that names the classes but not their colours: each class
    gets the palette's colour for its position, not one red for all (masks and per-class curves
    of different classes would look alike)."""
    src = rich_project(tmp_path / "src.h5")
    export_project(src, tmp_path / "out", "coco")
    side = tmp_path / "out" / "okng_classes.json"
    data = json.loads(side.read_text())
    for c in data["classes"]:
        c.pop("color")
    side.write_text(json.dumps(data))
    dst = Project.create(tmp_path / "dst.h5")
    import_into(dst, tmp_path / "out" / "annotations.json", "coco")
    assert_same(src, dst, colours=False)
    colours = [c.color for c in dst.settings.classes]
    assert len(colours) >= 2 and len(set(colours)) == len(colours)
    assert colours == [class_color(i) for i in range(len(colours))]
