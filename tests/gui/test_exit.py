"""The window exits cleanly: start offscreen on a project, close, rc 0 (no segfault at exit).

In a child process, as a user runs it: PyQt's atexit handler used to delete the Qt objects left
and segfault mid-walk (rc 139) unless the process left with os._exit; app.teardown deletes them
in order first."""
from __future__ import annotations

import os
import subprocess
import sys

from labeling.demo import make_demo_project

DRIVER = """
import sys
from PyQt6.QtCore import QTimer
import app.main as m
build = m.build
def closing_build(*a, **k):
    app, ctx, win = build(*a, **k)
    QTimer.singleShot(1500, win.close)
    return app, ctx, win
m.build = closing_build
sys.exit(m.run(sys.argv[1], rig=False))
"""


def test_window_start_and_close_exits_zero(tmp_path):
    path = make_demo_project(tmp_path / "exit.h5", "bolts", parts=4, size=(64, 48)).path
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", DRIVER, str(path)], env=env, check=False,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Fatal Python error" not in r.stderr
