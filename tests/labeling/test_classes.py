"""Several classes per part, the class editor and its audit trail, old projects opening."""
from __future__ import annotations

import json

import numpy as np
import pytest

from labeling import classes as ce
from labeling.h5io import append_json, transaction
from labeling.store import Project, ProjectError
from labeling.types import BOLT_CLASSES, Label, Role, Settings, User, Verdict

ANA = User("ana", Role.INSPECTOR)
LEE = User("lee", Role.LAB_EXPERT)


def _project(tmp_path) -> Project:
    return Project.create(tmp_path / "p.h5", Settings(name="bolts", classes=list(BOLT_CLASSES)))


def _part(p: Project, mask_value: int = 0) -> int:
    img = np.zeros((16, 16), np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[2:6, 2:6] = mask_value
    return p.add_part([img, img], cameras=["cam0", "cam1"], masks=[mask if mask_value else None, None])


def test_label_holds_several_classes_main_first(tmp_path):
    p = _project(tmp_path)
    pid = _part(p)
    lab = p.set_label(pid, "NG", ["short coating", 1, "short coating"], user=ANA)
    assert lab.classes == (3, 1) and lab.defect_class == 3
    again = Project.open(p.path)
    assert again.part(pid).label.classes == (3, 1)
    assert again.stats()["defect_classes"] == {"short coating": 1, "insufficient coating": 1}
    p.set_label(pid, "NG", 2, user=ANA)  # one class, as before
    assert Project.open(p.path).part(pid).label.classes == (2,)
    assert [h.classes for h in p.label_history(pid)] == [(3, 1), (2,)]
    with pytest.raises(ProjectError, match="out of range"):
        p.set_label(pid, "NG", [1, 9])
    with pytest.raises(ProjectError, match="only goes with an NG"):
        p.set_label(pid, "OK", [1, 2])


def test_label_record_derives_one_field_from_the_other():
    assert Label(Verdict.NG, 2).classes == (2,)
    assert Label(Verdict.NG, classes=(4, 1)).defect_class == 4
    assert Label(Verdict.NG, 1, classes=(3, 1)).classes == (1, 3)  # defect_class is the main one
    assert Label.from_dict(Label(Verdict.NG, classes=(2, 3)).to_dict()).classes == (2, 3)


def test_project_in_the_old_layout_opens(tmp_path):
    """A file written before multi-class labels: label events without "classes", classes without
    "retired". Written with h5py directly, the way the old store wrote it."""
    p = _project(tmp_path)
    pid = _part(p)
    old_settings = {"name": "old", "kind": "multi-camera", "cameras": ["cam0", "cam1"],
                    "classes": [{"name": c.name, "color": c.color, "hotkey": c.hotkey} for c in BOLT_CLASSES],
                    "rois": {}, "extra": {}}
    with transaction(p.path, "a") as f:
        f.attrs["settings"] = json.dumps(old_settings)
        append_json(f["events"], "log", [{"op": "label", "part": pid, "time": 1.0, "seq": 1,
                                          "label": {"verdict": 2, "defect_class": 4, "user": {"name": "ana"},
                                                    "time": 1.0, "comment": ""}}])
        f.attrs["journal_seq"] = 1
    q = Project.open(p.path)
    assert q.part(pid).label.classes == (4,) and q.part(pid).label.defect_class == 4
    assert not any(c.retired for c in q.settings.classes)
    q.set_label(pid, "NG", [4, 2], user=ANA)  # and it takes new multi-class labels
    assert Project.open(p.path).part(pid).label.classes == (4, 2)
    # A class that is not retired is written without the key, as an older okng wrote it.
    assert "retired" not in Project.open(p.path).settings.to_dict()["classes"][0]


def test_add_rename_recolour_hotkey_are_audited(tmp_path):
    p = _project(tmp_path)
    new = ce.add_class(p, "rust", user=LEE)
    assert new.hotkey == "5" and len(p.settings.classes) == 5
    ce.rename_class(p, "rust", "corrosion", user=LEE)
    ce.recolor_class(p, 5, "#00FF00", user=LEE)
    ce.set_hotkey(p, "corrosion", "9", user=LEE)
    q = Project.open(p.path)
    c = q.settings.classes[4]
    assert (c.name, c.color, c.hotkey) == ("corrosion", "#00ff00", "9")
    changes = [e["change"] for e in q.events() if e["op"] == "settings"]
    assert [ch["action"] for ch in changes] == ["add", "rename", "recolor", "hotkey"]
    assert changes[1]["before"] == {"name": "rust"} and changes[1]["after"] == {"name": "corrosion"}
    assert all(e["user"]["name"] == "lee" for e in q.events() if e["op"] == "settings")
    with pytest.raises(ProjectError, match="already a defect class"):
        ce.add_class(p, "No Coating")
    with pytest.raises(ProjectError, match="already 'insufficient coating'"):
        ce.set_hotkey(p, "corrosion", "1")
    with pytest.raises(ProjectError, match="#rrggbb"):
        ce.recolor_class(p, 1, "red")
    with pytest.raises(ProjectError, match="unknown defect class"):
        ce.rename_class(p, "rust", "x")


def test_merge_moves_labels_and_masks_then_retires(tmp_path):
    p = _project(tmp_path)
    a = _part(p, mask_value=2)  # "no coating" painted
    p.set_label(a, "NG", [2, 4], user=ANA)
    b = _part(p, mask_value=3)
    p.set_label(b, "NG", 3, user=ANA)
    c = _part(p, mask_value=2)
    p.set_label(c, "NG", [1, 2], user=ANA)  # merges into a class it already holds
    res = ce.merge_classes(p, "no coating", "insufficient coating", user=LEE)
    assert (res.labels, res.masks) == (2, 2)
    q = Project.open(p.path)
    assert q.part(a).label.classes == (1, 4)
    assert q.part(c).label.classes == (1,)
    assert q.part(b).label.classes == (3,)
    assert set(np.unique(q.read_mask(a, 0))) == {0, 1}
    assert set(np.unique(q.read_mask(b, 0))) == {0, 3}
    assert q.settings.classes[1].retired and q.settings.classes[1].hotkey == ""
    assert len(q.label_history(a)) == 2  # the old label stays in the history
    assert "merged into" in q.part(a).label.comment and q.part(a).label.user == LEE
    merge = [e["change"] for e in q.events() if e["op"] == "settings"][-1]
    assert merge["action"] == "merge" and merge["into"] == "insufficient coating"
    with pytest.raises(ProjectError, match="retired"):
        q.set_label(b, "NG", "no coating")
    table = {r.name: r for r in ce.class_table(q)}
    assert table["insufficient coating"].parts == 2 and table["no coating"].parts == 0


def test_retired_class_stays_on_parts_that_hold_it(tmp_path):
    p = _project(tmp_path)
    pid = _part(p)
    p.set_label(pid, "NG", [1, 4])
    ce.retire_class(p, 4)
    p.set_label(pid, "NG", [4, 1], comment="main class swapped")  # held already: allowed
    other = _part(p)
    with pytest.raises(ProjectError, match="retired"):
        p.set_label(other, "NG", 4)
    ce.restore_class(p, 4)
    p.set_label(other, "NG", 4)
    with pytest.raises(ProjectError, match="itself"):
        ce.merge_classes(p, 1, "insufficient coating")


def test_cli_classes_edits_and_lists(tmp_path, capsys):
    from app.cli import main
    p = _project(tmp_path)
    pid = _part(p, mask_value=4)
    p.set_label(pid, "NG", [4, 1])
    assert main(["classes", str(p.path), "add", "rust", "--color", "#aa5500", "--user", "lee"]) == 0
    assert main(["classes", str(p.path), "merge", "foreign substance", "rust", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["merge"]["labels"] == 1 and out["merge"]["masks"] == 1
    rows = {r["name"]: r for r in out["classes"]}
    assert rows["rust"]["parts"] == 1 and rows["foreign substance"]["retired"]
    assert main(["classes", str(p.path), "list"]) == 0
    assert "(retired)" in capsys.readouterr().out
    assert main(["classes", str(p.path), "rename", "rust"]) == 1  # usage, one clear line
    assert "rename CLASS NEW_NAME" in capsys.readouterr().err
    assert Project.open(p.path).part(pid).label.classes == (5, 1)
