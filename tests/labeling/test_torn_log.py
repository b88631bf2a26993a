"""A log (part index, audit trail) whose last chunk a killed writer tore: real HDF5 files.

Appending to a log rewrites its last 64 KiB chunk in place; a writer killed by SIGKILL inside
that write leaves the chunk's first pages new and the rest, with the checksum, old (Linux stops
a buffered write between pages for a fatal signal). `_killed_mid_append` makes that file by
hand, deterministically: the real append, then the chunk spliced from its bytes before and after.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from labeling import journal
from labeling.h5io import ProjectDamaged
from labeling.integrity import check_project, salvage_project
from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings, Verdict


def _project(path: Path, n: int = 4) -> Project:
    p = Project.create(path, Settings(classes=list(BOLT_CLASSES), cameras=["cam0"]))
    for i in range(n):
        pid = p.add_part([np.full((24, 32), i, np.uint8)])
        p.set_label(pid, Verdict.OK, comment=f"first {pid}")
    return p


def _last_chunk(path: Path, log: str) -> tuple[int, int, bytes, int]:
    """(file offset, first row, raw bytes: data then fletcher32, extent) of `log`'s last chunk."""
    with h5py.File(path, "r") as f:
        ds = f[log]
        step = ds.chunks[0]
        first = (ds.shape[0] - 1) // step * step
        info = ds.id.get_chunk_info_by_coord((first,))
        return info.byte_offset, first, bytes(ds.id.read_direct_chunk((first,))[1]), ds.shape[0]


def _killed_mid_append(path: Path, log: str, append: Callable[[], object], extent: str,
                       written: float = 0.5) -> dict:
    """Leave `path` as a writer killed while HDF5 rewrote `log`'s last chunk for `append()`.

    The chunk is new up to `written` of the appended row and old after it (zeros, then the old
    checksum: 1.0 is the whole row with only the checksum's page unwritten). extent "old": every other byte as before the append (HDF5 writes raw chunks
    before the metadata that points past them, so this is the usual case); "new": as after it.
    Returns the appended row."""
    before = path.read_bytes()
    off, first, old, n_old = _last_chunk(path, log)
    append()
    off_after, first_after, new, n_new = _last_chunk(path, log)
    row = json.loads(new[n_old - first:n_new - first])
    assert (off_after, first_after) == (off, first)  # rewritten in place, as the kill found it
    cut = (n_old - first) + int((n_new - n_old) * written)
    if extent == "old":
        path.write_bytes(before)
    with open(path, "r+b") as fh:
        fh.seek(off)
        fh.write(new[:cut] + old[cut:])
    with h5py.File(path, "r") as f, pytest.raises(OSError):
        f[log][()]  # the tear is real: the log fails its checksum
    return row


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reopens_clean(path: Path) -> Project:
    again = Project.open(path)
    assert again.warnings == []
    with h5py.File(path, "r") as f:
        f["index/parts"][()], f["events/log"][()]  # every checksum holds
    rep = check_project(path)
    assert rep.ok, rep.problems
    return again


@pytest.mark.parametrize(("extent", "written", "chunks"),
                         [("old", 0.5, 1), ("new", 0.5, 1), ("new", 1.0, 1), ("old", 0.5, 2)])
def test_a_torn_audit_trail_tail_is_salvaged_and_the_acknowledged_label_replayed(tmp_path, extent, written,
                                                                                  chunks):
    path = tmp_path / "p.h5"
    p = _project(path)
    if chunks == 2:  # the first chunk verifies and is kept whole
        p.set_label(4, Verdict.OK, comment="x" * 70_000)
    before = {pid: p.part(pid).label for pid in p.part_ids()}
    event = _killed_mid_append(path, "events/log", lambda: p.set_label(2, Verdict.NG, 2, comment="acked"),
                               extent, written)
    # The killed writer had fsync'd this record (acknowledged); the real append's checkpoint
    # then deleted the journal, so put its line back: the event is the record less its seal.
    journal.append(path, event, p.project_id)

    digest = _digest(path)
    ro = Project.open(path, readonly=True)  # a training job: salvaged rows in memory, no write
    assert _digest(path) == digest
    assert {pid: ro.part(pid).label for pid in ro.part_ids()} == before
    assert len(ro.warnings) == 1 and "audit trail (/events/log)" in ro.warnings[0]
    assert "tore its last chunk" in ro.warnings[0] and "unchanged" in ro.warnings[0]

    rw = Project.open(path)  # repairs the log, then replays the journal into it
    assert rw.part(2).label.verdict == Verdict.NG and rw.part(2).label.comment == "acked"
    assert len(rw.warnings) == 1 and "repaired and the journal replayed (record " in rw.warnings[0]
    again = _reopens_clean(path)
    assert [lab.comment for lab in again.label_history(2)] == ["first 2", "acked"]  # no duplicate
    assert {pid: again.part(pid).label for pid in again.part_ids() if pid != 2} == \
        {pid: lab for pid, lab in before.items() if pid != 2}
    again.set_label(3, Verdict.NG, 1, comment="after")
    assert Project.open(path).part(3).label.comment == "after"


@pytest.mark.parametrize("extent", ["old", "new"])
def test_a_torn_part_index_tail_loses_only_the_unacknowledged_part(tmp_path, extent):
    path = tmp_path / "p.h5"
    p = _project(path)
    labels = {pid: p.part(pid).label for pid in p.part_ids()}
    _killed_mid_append(path, "index/parts", lambda: p.add_part([np.full((24, 32), 9, np.uint8)]), extent)

    digest = _digest(path)
    ro = Project.open(path, readonly=True)
    assert _digest(path) == digest
    assert {pid: ro.part(pid).label for pid in ro.part_ids()} == labels
    assert len(ro.warnings) == 1 and "part index (/index/parts)" in ro.warnings[0]

    rw = Project.open(path)
    assert {pid: rw.part(pid).label for pid in rw.part_ids()} == labels
    assert len(rw.warnings) == 1 and "repaired" in rw.warnings[0]
    new = rw.add_part([np.full((24, 32), 7, np.uint8)])
    assert new not in labels
    again = _reopens_clean(path)
    assert sorted(again.part_ids()) == sorted([*labels, new])
    assert (again.read_image(new, 0) == 7).all()


def test_a_project_kept_open_across_another_writers_killed_append_repairs_on_its_next_write(tmp_path):
    """The window keeps its Project open while a CLI import or a second window is killed mid-append:
    its next label or part repairs the torn logs and replays the journal, instead of failing every
    write with "damaged project" until the file is reopened."""
    path = tmp_path / "p.h5"
    window = _project(path)
    other = Project.open(path)
    event = _killed_mid_append(path, "events/log", lambda: other.set_label(2, Verdict.NG, 2, comment="acked"), "old")
    journal.append(path, event, other.project_id)  # the killed writer's fsync'd record (see above)
    window.set_label(3, Verdict.NG, 1, comment="window")
    assert window.part(3).label.comment == "window"
    assert len(window.warnings) == 1 and "repaired and the journal replayed (record " in window.warnings[0]

    _killed_mid_append(path, "index/parts", lambda: other.add_part([np.full((24, 32), 9, np.uint8)]), "new")
    new = window.add_part([np.full((24, 32), 7, np.uint8)])
    assert len(window.warnings) == 2 and "part index (/index/parts)" in window.warnings[1]
    again = _reopens_clean(path)
    assert [lab.comment for lab in again.label_history(2)] == ["first 2", "acked"]
    assert again.part(3).label.comment == "window"
    assert sorted(again.part_ids()) == [1, 2, 3, 4, new] and (again.read_image(new, 0) == 7).all()


def test_check_names_a_torn_tail_and_salvage_keeps_its_verified_rows(tmp_path):
    """`okng check` says what happened (a killed append, repaired by the next writable open),
    not "the stored bytes were changed"; `okng salvage` copies the rows the checksum proves."""
    path = tmp_path / "p.h5"
    p = _project(path)
    before = {pid: p.part(pid).label for pid in p.part_ids()}
    _killed_mid_append(path, "events/log", lambda: p.set_label(2, Verdict.NG, 2, comment="torn"), "old")
    digest = _digest(path)

    rep = check_project(path)
    assert not rep.ok and len(rep.problems) == 1, rep.problems
    assert rep.problems[0].startswith("p.h5: audit trail of labels, reviews and masks (/events/log): ")
    assert "tore its last chunk" in rep.problems[0]
    assert "next opened for writing" in rep.problems[0] and "bytes were changed" not in rep.problems[0]
    assert rep.parts == 4 and rep.events == len(Project.open(path, readonly=True).events())
    assert _digest(path) == digest

    out = salvage_project(path, tmp_path / "copy.h5")
    assert out.parts == 4 and out.labels == 4, out.lost
    assert len(out.lost) == 1 and "the kept rows are copied" in out.lost[0]
    copy = Project.open(tmp_path / "copy.h5")
    assert [copy.part(pid).label.comment for pid in copy.part_ids()] == [lab.comment for lab in before.values()]
    assert _digest(path) == digest


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([b ^ 0x10]))


def _stays_damaged(path: Path) -> None:
    digest = _digest(path)
    for readonly in (True, False):
        with pytest.raises(ProjectDamaged, match="checksum"):
            Project.open(path, readonly=readonly)
    assert _digest(path) == digest  # nothing was "repaired" over real damage
    rep = check_project(path)
    assert not rep.ok and any("stored bytes were changed" in line for line in rep.problems), rep.problems


def test_a_bad_chunk_before_the_last_stays_damaged(tmp_path):
    path = tmp_path / "p.h5"
    p = _project(path)
    p.set_label(1, Verdict.NG, 1, comment="x" * 70_000)  # the audit trail spans two chunks
    p.set_label(2, Verdict.NG, 1)
    with h5py.File(path, "r") as f:
        assert f["events/log"].id.get_num_chunks() == 2
        off = f["events/log"].id.get_chunk_info_by_coord((0,)).byte_offset
    _flip(path, off + 100)
    _stays_damaged(path)


def test_a_flipped_byte_in_an_old_row_of_the_last_chunk_stays_damaged(tmp_path):
    """Not a torn append: no prefix of the chunk matches its checksum, so nothing is kept
    (keeping the rows that still parse would launder the flipped byte into a fresh checksum)."""
    path = tmp_path / "p.h5"
    _project(path)
    off, _, raw, _ = _last_chunk(path, "events/log")
    _flip(path, off + raw.index(b'"verdict":1') + len('"verdict":'))  # still JSON, another verdict
    _stays_damaged(path)


def test_a_part_group_left_by_an_interrupted_add_part_is_not_reused(tmp_path):
    """add_part writes pixels before the index row and next_part_id: killed between, it leaves
    an unreferenced group at the next id. The next add_part gets that id; the leftover's mask
    and extra views must not surface as the new part's."""
    path = tmp_path / "p.h5"
    p = _project(path, n=2)
    with h5py.File(path, "a") as f:  # what the killed add_part left: 2 views, a mask on view 0
        nxt = int(f.attrs["next_part_id"])
        g = f["parts"].create_group(str(nxt))
        for k in range(2):
            g.create_group(f"v{k}").create_dataset("image", data=np.full((24, 32), 99, np.uint8))
        g["v0"].create_dataset("mask", data=np.ones((24, 32), np.uint8))
    p = Project.open(path)
    pid = p.add_part([np.full((24, 32), 7, np.uint8)])
    assert pid == nxt
    again = Project.open(path, readonly=True)
    assert again.read_mask(pid, 0) is None and not again.part(pid).views[0].has_mask
    assert int(again.read_image(pid, 0).max()) == 7
    with h5py.File(path, "r") as f:
        assert list(f["parts"][str(pid)]) == ["v0"]
