"""The core runs without Qt: every module of labeling/, training/ and hardware/ imports, and the
CLI works, in a process where PyQt6 and pyqtgraph cannot be imported at all."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PyQt6", "pyqtgraph"):
                raise ImportError(f"{name} is blocked: the core must not import Qt")
    sys.meta_path.insert(0, Block())
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], check=False, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_core_packages_import_without_qt():
    code = textwrap.dedent("""
        import importlib, pkgutil
        names = []
        for pkg in ("labeling", "training", "hardware", "resources"):
            mod = importlib.import_module(pkg)
            names.append(pkg)
            for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
                importlib.import_module(info.name)
                names.append(info.name)
        print(len(names))
    """)
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) >= 5


def test_blocker_really_blocks_qt():
    res = _run("import PyQt6.QtCore")
    assert res.returncode != 0 and "blocked" in res.stderr


def test_cli_runs_without_qt(tmp_path):
    code = textwrap.dedent("""
        import sys
        from app.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    res = _run(code, "--help")
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout and "info" in res.stdout
    from labeling.store import Project
    Project.create(tmp_path / "p.h5")
    res = _run(code, "info", str(tmp_path / "p.h5"), "--json")
    assert res.returncode == 0, res.stderr
    assert '"parts":0' in res.stdout


def test_child_entry_points_run_with_qt_blocked_in_every_process(tmp_path):
    """Training and pre-labeling run in child processes (app.child.in_child): those import no
    Qt. The blocker is a sitecustomize, so it is in force in this process, in the fork server
    and in the children it starts, and a child importing PyQt6 fails the run."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK)
    code = textwrap.dedent("""
        import sys
        from app.child import in_child
        from hardware.sort.session import run_session as sort_session  # the live-sort child
        from labeling.demo import make_demo_project
        from training.predict_session import PredictSpec, run_session as predict_session
        from training.session import TrainSpec, run_session
        path = make_demo_project(sys.argv[1], "bolts", parts=12, size=(64, 48)).path
        values = {"arch": "mobilenet_v3_small", "freeze": "scratch", "epochs": 1, "batch_size": 16,
                  "input_size": (32, 32), "augment": ["hflip"], "num_threads": 1}
        res = in_child(run_session, TrainSpec(str(path), values))
        assert res.model_id and res.card.arch == "mobilenet_v3_small", res
        out = in_child(predict_session, PredictSpec(str(path)))
        assert out["predicted"] == 12, out
        assert not any(m.split(".")[0] in ("PyQt6", "pyqtgraph") for m in sys.modules)
        print("ok", res.model_id)
    """)
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.h5")], check=False, capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("ok ")
