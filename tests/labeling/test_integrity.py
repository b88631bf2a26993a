"""A project file that knows when it is damaged: real HDF5 files, damaged on disk."""
from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from labeling import journal
from labeling.h5io import ProjectDamaged, ProjectLocked
from labeling.integrity import check_project, salvage_project
from labeling.store import Project, ProjectError
from labeling.types import BOLT_CLASSES, Settings, Verdict


def _project(tmp_path, name="p.h5", parts=3):
    p = Project.create(tmp_path / name, Settings(name="t", classes=list(BOLT_CLASSES)))
    rng = np.random.default_rng(0)
    for k in range(parts):
        views = [rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in range(2)]
        mask = np.zeros((24, 32), np.uint8)
        mask[2:6, 3:9] = 1
        pid = p.add_part(views, cameras=["a", "b"], masks=[mask, None])
        p.set_label(pid, "NG" if k % 2 else "OK", 1 if k % 2 else 0)
    p.save_model("m1", {"arch": "tiny", "created": 1.0}, b"\x01\x02" * 500)
    return p


def _flip(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([b ^ 0x10]))


@pytest.mark.parametrize("cut", [0.5, 0.9, -1])
def test_a_truncated_file_is_named_damaged_not_locked(tmp_path, cut):
    p = _project(tmp_path)
    size = p.path.stat().st_size
    os.truncate(p.path, size - 1 if cut == -1 else int(size * cut))
    with pytest.raises(ProjectDamaged) as err:
        Project.open(p.path)
    msg = str(err.value)
    assert not isinstance(err.value, ProjectLocked)
    assert "p.h5" in msg and "truncated" in msg and "\n" not in msg


def test_flipped_pixels_are_caught_on_read_naming_the_part(tmp_path):
    p = _project(tmp_path)
    with h5py.File(p.path, "r") as f:
        ds = f["parts/2/v1/image"]
        assert ds.fletcher32
        off = ds.id.get_chunk_info(0).byte_offset
    _flip(p.path, off + 40)
    q = Project.open(p.path)
    q.read_image(1, 1)  # the other parts still read
    with pytest.raises(ProjectDamaged, match=r"part 2 view 1 pixels: checksum"):
        q.read_image(2, 1)
    with pytest.raises(ProjectDamaged, match="part 2 view 1"):
        q.read_views(2)
    rep = check_project(p.path)
    assert not rep.ok and rep.problems == [(f"part 2 ({q.part(2).name}) view 1 pixels: checksum mismatch "
                                           "or corrupt data: the stored bytes were changed")]


def test_a_foreign_journal_is_quarantined_never_replayed(tmp_path):
    a, b = _project(tmp_path, "a.h5"), _project(tmp_path, "b.h5")
    before = a.part(1).verdict
    # a change journalled in b but never applied, then its journal lands beside a
    journal.append(b.path, {"seq": 99, "op": "label", "part": 1, "time": 0.0,
                            "label": {"verdict": 2, "defect_class": 1,
                                      "user": {"name": "x", "role": "inspector"}}}, b.project_id)
    shutil.move(journal.journal_path(b.path), journal.journal_path(a.path))
    assert check_project(a.path).journal["state"] == "rejected"
    again = Project.open(a.path)
    assert again.part(1).verdict == before
    assert len(again.warnings) == 1 and "another project" in again.warnings[0]
    assert not journal.journal_path(a.path).exists()
    moved = [x.name for x in tmp_path.iterdir() if x.name.startswith("a.h5.journal.rejected-")]
    assert len(moved) == 1 and moved[0] in again.warnings[0]
    again.set_label(1, "NG", 1)  # and the project works on
    assert Project.open(a.path).part(1).verdict == Verdict.NG


@pytest.mark.parametrize("garble", ["flip", "garbage", "legacy"])
def test_a_damaged_or_unbound_journal_is_quarantined(tmp_path, garble):
    p = _project(tmp_path)
    rec = {"seq": 99, "op": "label", "part": 1, "time": 0.0,
           "label": {"verdict": 2, "defect_class": 1, "user": {"name": "x", "role": "inspector"}}}
    line = journal.seal(rec, p.project_id).encode()
    if garble == "flip":
        line = line.replace(b'"verdict":2', b'"verdict":1')  # valid JSON, wrong checksum
    elif garble == "garbage":
        line = b"\x00\xff\xfe not json\n"
    else:
        line = (json.dumps(rec) + "\n").encode()  # no project id: not bound to anything
    journal.journal_path(p.path).write_bytes(line)
    q = Project.open(p.path)
    assert q.part(1).verdict == Verdict.OK and len(q.warnings) == 1
    assert "journal not replayed" in q.warnings[0]


def test_a_record_for_a_missing_part_is_skipped_and_the_rest_applied(tmp_path):
    p = _project(tmp_path)
    base = {"op": "label", "time": 0.0,
            "label": {"verdict": 2, "defect_class": 1, "user": {"name": "x", "role": "inspector"}}}
    with h5py.File(p.path, "r") as f:
        seq = int(f.attrs["journal_seq"])
    journal.append(p.path, dict(base, seq=seq + 1, part=42), p.project_id)
    journal.append(p.path, dict(base, seq=seq + 2, part=1), p.project_id)
    q = Project.open(p.path)
    assert q.part(1).verdict == Verdict.NG
    assert len(q.warnings) == 1 and "part 42 is not in the file" in q.warnings[0]
    assert Project.open(p.path).warnings == []


def test_an_old_file_without_ids_or_checksums_still_opens_and_replays(tmp_path):
    """Files written before project ids and fletcher32: their pixels read, their journal replays."""
    p = _project(tmp_path, parts=1)
    img = p.read_image(1, 0)
    with h5py.File(p.path, "a") as f:
        del f.attrs["project_id"]
        g = f["parts/1/v0"]
        del g["image"]
        g.create_dataset("image", data=img, chunks=(24, 32))  # no checksum, as older files
    with h5py.File(p.path, "r") as f:
        seq = int(f.attrs["journal_seq"])
    journal.append(p.path, {"seq": seq + 1, "op": "label", "part": 1, "time": 0.0,
                            "label": {"verdict": 2, "defect_class": 1,
                                      "user": {"name": "x", "role": "inspector"}}})  # legacy line
    q = Project.open(p.path)
    assert q.part(1).verdict == Verdict.NG and q.warnings == []
    np.testing.assert_array_equal(q.read_image(1, 0), img)
    q.set_label(1, "OK")  # the file gets its id now
    assert Project.open(p.path).project_id
    rep = check_project(p.path)
    assert rep.ok and rep.checksummed == rep.datasets - 1


def test_check_reports_a_healthy_project(tmp_path):
    p = _project(tmp_path)
    rep = check_project(p.path)
    assert rep.ok and rep.problems == []
    assert (rep.parts, rep.views, rep.masks, rep.models) == (3, 6, 3, 1)
    assert rep.checksummed == rep.datasets == 10
    assert rep.journal == {"state": "none"}


def test_salvage_copies_what_is_readable_and_lists_what_was_lost(tmp_path):
    p = _project(tmp_path, parts=4)
    p.set_review(3, "accepted")
    with h5py.File(p.path, "r") as f:
        off = f["parts/2/v0/image"].id.get_chunk_info(0).byte_offset
    _flip(p.path, off + 5)
    rep = salvage_project(p.path, tmp_path / "new.h5")
    assert rep.parts == 3 and rep.models == 1 and rep.labels == 3
    assert len(rep.lost) == 1 and "part 2" in rep.lost[0] and "checksum" in rep.lost[0]
    new = Project.open(tmp_path / "new.h5")
    names = {q.name: q for q in new.parts()}
    old = Project.open(p.path)
    for pid in (1, 3, 4):
        src = old.part(pid)
        dst = names[src.name]
        assert dst.verdict == src.verdict and dst.label.user == src.label.user
        for v in range(2):
            np.testing.assert_array_equal(new.read_image(dst.id, v), old.read_image(pid, v))
            a, b = new.read_mask(dst.id, v), old.read_mask(pid, v)
            assert (a is None and b is None) or np.array_equal(a, b)
    assert names[old.part(3).name].review is not None
    assert new.load_checkpoint("m1") == old.load_checkpoint("m1")
    assert check_project(tmp_path / "new.h5").ok
    with pytest.raises(ProjectError, match="already exists"):
        salvage_project(p.path, tmp_path / "new.h5")


def test_salvage_of_a_truncated_file_keeps_the_parts_before_the_cut(tmp_path):
    p = _project(tmp_path, parts=6)
    os.truncate(p.path, int(p.path.stat().st_size * 0.6))
    rep = check_project(p.path)
    assert not rep.ok and rep.truncated and rep.problems[0].startswith("file truncated")
    out = salvage_project(p.path, tmp_path / "new.h5")
    assert out.lost[0].startswith("file truncated")
    assert check_project(tmp_path / "new.h5").ok
    assert out.parts == len(Project.open(tmp_path / "new.h5"))


def test_cli_check_and_salvage(tmp_path, capsys):
    from app.cli import main
    p = _project(tmp_path)
    assert main(["check", str(p.path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["parts"] == 3
    with h5py.File(p.path, "r") as f:
        off = f["parts/1/v1/image"].id.get_chunk_info(0).byte_offset
    _flip(p.path, off)
    assert main(["check", str(p.path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("p.h5: 1 problem") and "part 1" in out[1]
    assert main(["salvage", str(p.path), str(tmp_path / "s.h5")]) == 0
    out = capsys.readouterr().out
    assert "2 parts" in out and "lost: 1" in out
    os.truncate(p.path, 100)
    assert main(["info", str(p.path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged project file" in err[0] and "truncated" in err[0]


def test_a_file_held_by_another_process_is_still_reported_locked(tmp_path):
    """The lock test got narrower (HDF5's own lock message): a real lock must still be one."""
    import subprocess
    import sys

    from labeling.h5io import transaction
    p = _project(tmp_path, parts=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import h5py,sys; f=h5py.File(sys.argv[1],'a'); print('held', flush=True); "
         "sys.stdin.readline()"), str(p.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectLocked, match="held by another process"), transaction(p.path, "r", timeout=0.2):
            pass
    finally:
        holder.stdin.close()
        holder.wait(10)
    with transaction(p.path, "r") as f:
        assert "parts" in f
