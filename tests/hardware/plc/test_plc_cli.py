"""`okng plc-sim` in a subprocess: listens on loopback, prints its counters as JSON on exit."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from plc_helpers import wait_for

from hardware.plc.client import PlcClient

ROOT = Path(__file__).resolve().parents[3]


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "plc-sim", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_plc_sim_prints_counters_on_sigterm():
    proc = _spawn("--port", "0", "--rate", "20")
    try:
        line = proc.stderr.readline()               # "listening on 127.0.0.1:PORT ..."
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        port = int(m.group(1))
        with PlcClient("127.0.0.1", port) as client:
            assert wait_for(lambda: client.read_plc_block().trig_seq >= 3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    counters = json.loads(out.strip().splitlines()[-1])
    assert counters["port"] == port and counters["triggers"] >= 3
    for key in ("passed", "rejected", "rejected_by_watchdog", "answered_late", "missed", "errors",
                "answered"):
        assert key in counters
    assert counters["passed"] == 0                   # nobody answered: positive release


def test_plc_sim_parts_limit_and_bad_options():
    proc = _spawn("--port", "0", "--rate", "50", "--parts", "4", "--travel", "0.05")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    c = json.loads(out.strip().splitlines()[-1])
    assert c["triggers"] == 4 and c["rejected"] == 4 and c["in_flight"] == 0
    bad = _spawn("--port", "0", "--plc-base", "0", "--pc-base", "2")
    out, err = bad.communicate(timeout=30)
    assert bad.returncode == 1 and "overlap" in err and "Traceback" not in err


def test_only_loopback_is_quiet():
    from app.cli.plc import _is_loopback
    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.0.10")
    assert not _is_loopback("plc.example")
