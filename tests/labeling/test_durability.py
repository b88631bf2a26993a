"""Durability and concurrency of the project store with real processes.

kill -9 in a burst of writes must lose nothing that was acknowledged, and a reader process
(a training job) must see consistent snapshots while another process keeps labelling.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from labeling.store import Project
from labeling.types import BOLT_CLASSES, Settings, Verdict

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from labeling.store import Project
    from labeling.types import User, Role
    p = Project.open(sys.argv[1])
    ids = p.part_ids()
    user = User("burst", Role.INSPECTOR)
    k = 0
    while True:
        pid = ids[k % len(ids)]
        verdict = "NG" if k % 2 else "OK"
        if k % 5 == 4:
            m = np.zeros((24, 32), np.uint8); m[k % 24, :] = 1
            p.set_mask(pid, 0, m, user=user)
            print(f"MASK {pid} {k}", flush=True)
        p.set_label(pid, verdict, 1 if verdict == "NG" else 0, user=user, comment=str(k))
        print(f"ACK {pid} {k}", flush=True)
        if k % 7 == 6:
            new = p.add_part([np.full((24, 32), k % 256, np.uint8)], name=f"burst-{k}")
            print(f"PART {new} {k}", flush=True)
        k += 1
""")


def _project(path: Path, n: int = 6) -> Project:
    p = Project.create(path, Settings(classes=list(BOLT_CLASSES), cameras=["cam0"]))
    for i in range(n):
        p.add_part([np.full((24, 32), i, np.uint8)])
    return p


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("acks_before_kill", [5, 23, 61])
def test_kill_9_in_a_burst_loses_no_acknowledged_write(tmp_path, acks_before_kill):
    path = tmp_path / "burst.h5"
    _project(path)
    proc = _spawn(WRITER, str(path))
    acked: list[tuple[int, int]] = []
    masks: dict[int, int] = {}  # part -> iteration of its last acknowledged mask
    parts: list[tuple[int, int]] = []

    def take(line: str) -> None:
        kind, a, b = line.split()
        if kind == "ACK":
            acked.append((int(a), int(b)))
        elif kind == "MASK":
            masks[int(a)] = int(b)
        else:
            parts.append((int(a), int(b)))

    try:
        while len(acked) < acks_before_kill:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            take(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # Everything the writer printed before the kill was acknowledged too.
    for line in proc.stdout.read().splitlines():
        if line.count(" ") == 2:
            take(line)
    p = Project.open(path)  # must open; replays a journalled change if the kill hit an apply
    comments = {(pid, int(lab.comment)) for pid in p.part_ids() for lab in p.label_history(pid)}
    assert set(acked) <= comments
    for pid, k in masks.items():
        mask = p.read_mask(pid, 0)
        full_rows = [int(r) for r in np.flatnonzero(mask.all(axis=1))] if mask is not None else []
        # The acknowledged mask, or the part's next mask write (k + 30) if the kill fell between
        # its return and its acknowledgement line: never an older one, never a torn one.
        assert full_rows in ([k % 24], [(k + 30) % 24]), (pid, k, full_rows)
    for pid, k in parts:
        assert p.part(pid).name == f"burst-{k}"
        assert (p.read_image(pid, 0) == k % 256).all()
    # and the file keeps working after the crash
    pid = p.part_ids()[0]
    p.set_label(pid, Verdict.NG, 2)
    assert Project.open(path).part(pid).label.defect_class == 2


READER = textwrap.dedent("""
    import sys, time
    from labeling.store import Project
    deadline = time.time() + float(sys.argv[2])
    snapshots = 0
    last = -1
    # until N snapshots are taken and the writer's labels have shown up in one of them
    while (snapshots < int(sys.argv[3]) or last <= 0) and time.time() < deadline:
        p = Project.open(sys.argv[1], readonly=True)
        labelled = sum(len(p.label_history(pid)) for pid in p.part_ids())
        assert labelled >= last, (labelled, last)   # snapshots never go back in time
        last = labelled
        for pid in p.part_ids():
            img = p.read_image(pid, 0)
            assert img.shape == (24, 32)
        snapshots += 1
    print(snapshots, last, flush=True)
""")


def test_reader_process_sees_consistent_snapshots_while_writer_labels(tmp_path):
    path = tmp_path / "shared.h5"
    _project(path, 12)
    writer = _spawn(WRITER, str(path))
    # Five full snapshots, however slow the machine (the 120 s cap only bounds a hang).
    reader = _spawn(READER, str(path), "120", "5")
    try:
        out, err = reader.communicate(timeout=180)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert reader.returncode == 0, err
    snapshots, labelled = (int(v) for v in out.split())
    assert snapshots >= 5
    assert labelled > 0  # the reader saw the writer's labels arrive
    # the writer was not blocked out either: it acknowledged labels during the run
    assert Project.open(path).events()
