from __future__ import annotations

import numpy as np
import pytest

from labeling.store import Project, ProjectError
from labeling.types import (
    BOLT_CLASSES,
    ROI,
    PartSource,
    Prediction,
    ProjectKind,
    ReviewStatus,
    Role,
    Settings,
    User,
    Verdict,
)

INSPECTOR = User("ana", Role.INSPECTOR)
EXPERT = User("lee", Role.LAB_EXPERT)


def _settings() -> Settings:
    return Settings(name="bolts", classes=list(BOLT_CLASSES))


def _views(seed: int = 0, n: int = 4, shape=(48, 64)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, shape, dtype=np.uint8) for _ in range(n)]


def test_create_add_read_roundtrip(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    views = _views()
    pid = p.add_part(views, source=PartSource.CAPTURE, meta={"trig": 7})
    again = Project.open(tmp_path / "p.h5")
    part = again.part(pid)
    assert [v.camera for v in part.views] == ["cam0", "cam1", "cam2", "cam3"]
    assert part.meta == {"trig": 7}
    assert part.verdict == Verdict.UNLABELED
    for i, v in enumerate(views):
        np.testing.assert_array_equal(again.read_image(pid, i), v)
    np.testing.assert_array_equal(again.read_image(pid, 1, ROI(10, 5, 20, 7)), views[1][5:12, 10:30])


def test_uint16_rgb_and_long_strip(tmp_path):
    p = Project.create(tmp_path / "p.h5", Settings(kind=ProjectKind.LINE_SCAN, cameras=["xray"]))
    strip = (np.arange(640 * 20000, dtype=np.uint32) % 65536).astype(np.uint16).reshape(20000, 640)
    rgb = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    a = p.add_part([strip])
    b = p.add_part([rgb], cameras=["color"])
    q = Project.open(tmp_path / "p.h5", readonly=True)
    np.testing.assert_array_equal(q.read_image(a), strip)
    assert q.read_image(a).dtype == np.uint16
    np.testing.assert_array_equal(q.read_image(b), rgb)
    assert q.part(b).views[0].shape == (30, 40, 3)


def test_labels_keep_history_and_reviews(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    pid = p.add_part(_views())
    p.set_label(pid, "NG", "no coating", user=INSPECTOR)
    p.set_label(pid, Verdict.OK, user=INSPECTOR, comment="was glare")
    p.set_review(pid, ReviewStatus.REJECTED, "coating gap visible on cam2", user=EXPERT)
    q = Project.open(tmp_path / "p.h5")
    hist = q.label_history(pid)
    assert [h.verdict for h in hist] == [Verdict.NG, Verdict.OK]
    assert hist[0].defect_class == 2 and hist[0].user == INSPECTOR
    assert q.part(pid).verdict == Verdict.OK
    assert q.part(pid).review.status == ReviewStatus.REJECTED
    assert q.part(pid).review.user.role == Role.LAB_EXPERT
    assert [e["op"] for e in q.events(pid)] == ["label", "label", "review"]


def test_masks_validate_and_persist(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    pid = p.add_part(_views())
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 5:9] = 3
    p.set_mask(pid, 2, m, user=INSPECTOR)
    with pytest.raises(ProjectError, match="mask is 10x10"):
        p.set_mask(pid, 2, np.zeros((10, 10), np.uint8))
    with pytest.raises(ProjectError, match="class 9"):
        p.set_mask(pid, 2, np.full((48, 64), 9, np.uint8))
    q = Project.open(tmp_path / "p.h5")
    np.testing.assert_array_equal(q.read_mask(pid, 2), m)
    assert q.read_mask(pid, 0) is None
    assert q.part(pid).views[2].has_mask
    p.set_mask(pid, 2, None)
    assert Project.open(tmp_path / "p.h5").read_mask(pid, 2) is None


def test_bad_input_is_rejected_clearly(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    with pytest.raises(ProjectError, match="float"):
        p.add_part([np.zeros((4, 4), np.float32)])
    with pytest.raises(ProjectError, match="no part 99"):
        p.set_label(99, "OK")
    pid = p.add_part(_views())
    with pytest.raises(ValueError, match="unknown verdict"):
        p.set_label(pid, "MAYBE")
    with pytest.raises(KeyError, match="unknown defect class"):
        p.set_label(pid, "NG", "rust")
    with pytest.raises(ProjectError, match="only goes with an NG"):
        p.set_label(pid, "OK", 1)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ProjectError, match="not an HDF5"):
        Project.open(tmp_path / "junk.h5")
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "p.h5")
    assert len(Project.open(tmp_path / "p.h5")) == 1


def test_predictions_models_active(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    pid = p.add_part(_views())
    p.add_prediction(pid, Prediction("m1", Verdict.NG, (0.1, 0.9, 0.2, 0.3), 0.9, 2))
    p.save_model("m1", {"arch": "resnet18", "created": 1.0}, b"\x00\x01weights")
    p.set_active_model("m1")
    q = Project.open(tmp_path / "p.h5")
    assert q.part(pid).prediction.scores == (0.1, 0.9, 0.2, 0.3)
    assert q.active_model_id == "m1"
    assert q.load_checkpoint("m1") == b"\x00\x01weights"
    assert q.models()[0]["arch"] == "resnet18"
    with pytest.raises(ProjectError, match="no model"):
        q.set_active_model("nope")


def test_listener_and_delete(tmp_path):
    p = Project.create(tmp_path / "p.h5", _settings())
    seen = []
    p.add_listener(seen.append)
    pid = p.add_part(_views())
    p.set_label(pid, "OK")
    p.delete_part(pid)
    assert [e["op"] for e in seen] == ["part_added", "label", "delete"]
    assert len(Project.open(tmp_path / "p.h5")) == 0


def test_journal_replays_unapplied_change(tmp_path):
    """A change journalled but not applied (killed in between) is applied on next open."""
    from labeling import journal
    p = Project.create(tmp_path / "p.h5", _settings())
    pid = p.add_part(_views())
    journal.append(p.path, {"seq": 1, "op": "label", "part": pid, "time": 0.0,
                            "label": {"verdict": 2, "defect_class": 1, "user": {"name": "ana", "role": "inspector"}}},
                   p.project_id)
    with open(journal.journal_path(p.path), "ab") as fh:  # torn, unacknowledged write
        fh.write(b'{"seq": 2, "op": "lab')
    q = Project.open(tmp_path / "p.h5")
    assert q.part(pid).verdict == Verdict.NG
    assert len(q.label_history(pid)) == 1
    assert not journal.journal_path(p.path).exists()
