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
