"""Folder replay: the contract's k-th-file rule, labels, broken files, end of replay."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from hardware.errors import CaptureError, HardwareError
from hardware.sources import SourceExhausted, make_source
from hardware.sources.folder import record


@pytest.fixture
def recorded(tmp_path):
    sim = make_source("sim:64x48", seed=5)
    sim.open()
    root = tmp_path / "run"
    record(sim, root, parts=4)
    sim.close()
    sim.open()  # the same parts again, to compare pixels and truth
    refs = [sim.capture() for _ in range(4)]
    sim.close()
    return root, refs


def test_replay_gives_the_recorded_parts_in_order_with_truth(recorded):
    root, refs = recorded
    src = make_source(f"folder:{root}")
    src.open()
    info = src.info()
    assert info.cameras == ["cam0", "cam1", "cam2", "cam3"] and info.details["parts"] == 4
    assert info.resolution == (64, 48) and info.details["labels"]
    for k, ref in enumerate(refs):
        cap = src.capture()
        assert cap.index == k
        for v, r in zip(cap.views, ref.views):
            np.testing.assert_array_equal(v, r)  # PNG is lossless, RGB order kept
        assert cap.truth["verdict"] == ref.truth["verdict"]
        assert int(cap.truth["defect_class"] or 0) == ref.truth["defect_class"]
    with pytest.raises(SourceExhausted):
        src.capture()
    src.close()


def test_kth_file_in_sorted_name_order(tmp_path):
    # files written in an order that differs from their sorted names
    for cam in ("b_cam", "a_cam"):
        (tmp_path / cam).mkdir()
        for name, value in (("p10.npy", 10), ("p02.npy", 2), ("p07.npy", 7)):
            np.save(tmp_path / cam / name, np.full((4, 6), value + (cam == "b_cam"), np.uint8))
    src = make_source(f"folder:{tmp_path}", loop=True)
    src.open()
    seen = [[int(v[0, 0]) for v in src.capture().views] for _ in range(4)]
    assert src.info().cameras == ["a_cam", "b_cam"]
    assert seen == [[2, 3], [7, 8], [10, 11], [2, 3]]  # loops back to the first part


def test_missing_and_corrupt_files_fail_that_part_only(recorded):
    root, refs = recorded
    (root / "cam2" / "000001.png").write_bytes(b"not a png at all")
    (root / "cam3" / "000003.png").unlink()
    src = make_source(f"folder:{root}")
    src.open()
    assert src.capture().index == 0
    with pytest.raises(CaptureError, match="corrupt"):
        src.capture()
    cap = src.capture()  # the part after the broken one is part 2, as the rule says
    assert cap.index == 2
    np.testing.assert_array_equal(cap.views[0], refs[2].views[0])
    with pytest.raises(CaptureError, match="cam3"):
        src.capture()


def test_labels_by_name_and_bad_folders(tmp_path):
    (tmp_path / "cam0").mkdir()
    np.save(tmp_path / "cam0" / "bolt_a.npy", np.zeros((4, 4), np.uint8))
    (tmp_path / "labels.csv").write_text("name,verdict,defect_class\nbolt_a.png,NG,2\n")
    src = make_source(f"folder:{tmp_path}", seed=7)  # a simulator's seed is ignored, not an error
    src.open()
    assert src.capture().truth["verdict"] == "NG"
    with pytest.raises(HardwareError, match="does not exist"):
        make_source(f"folder:{tmp_path / 'nope'}").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(HardwareError, match="no images"):
        make_source(f"folder:{tmp_path / 'empty'}").open()
    with pytest.raises(ValueError):
        make_source("folder:")


def test_replay_of_the_real_dataset_folder(bsdata):
    # bsdata: images/ (the camera), masks/ (PNG too, so it is chosen out), labels.csv image,label
    src = make_source(f"folder:{bsdata}", cameras="images")
    src.open()
    files = sorted((bsdata / "images").iterdir())
    rows = {}
    with (bsdata / "labels.csv").open() as fh:
        for row in csv.DictReader(fh):
            rows[row["image"].split("/")[-1]] = row["label"]
    for k in range(2):
        cap = src.capture()
        assert cap.cameras == ["images"] and cap.views[0].ndim == 3
        assert cap.truth["verdict"] == rows[files[k].name]
    with pytest.raises(HardwareError, match="no camera folder"):
        make_source(f"folder:{bsdata}", cameras=["nope"]).open()
