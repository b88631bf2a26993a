"""A real Ray head on 127.0.0.1 for the remote-training tests, and its complete removal.

Started with `ray start --head --block` in a session of its own; every process it starts
inherits a marker in its environment, so teardown kills exactly those processes, by id (not
`ray stop --force`, which kills every Ray process of the user on the machine: another
engineer's, a real cluster's), and checks that none is left.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "OKNG_TEST_RAY_HEAD"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Head:
    proc: subprocess.Popen
    client_port: int
    mark: str
    temp_dir: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"


def start_head(timeout: float = 60.0) -> Head:
    port, client = free_port(), free_port()
    mark = uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="okray-", dir="/tmp")  # short: Ray's socket paths are limited
    env = {**os.environ, MARK: mark, "RAY_USAGE_STATS_ENABLED": "0", "OKNG_HOME": temp_dir,
           # keep every address on 127.0.0.1 (Ray otherwise swaps it for the machine's IP)
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           # grpc's fork handlers in the head's client proxy: its per-client server failed to
           # start now and then on a loaded machine (an empty log); without them it did not
           "GRPC_ENABLE_FORK_SUPPORT": "0",
           # Ray's OOM killer watches the whole machine's memory, which other jobs on a shared test
           # machine fill: it killed this test's small worker at 95 %. Off for the test head.
           "RAY_memory_monitor_refresh_ms": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    cmd = [ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--ray-client-server-port", str(client), "--num-cpus", "1", "--num-gpus", "0",
           "--disable-usage-stats", "--include-dashboard=false", "--temp-dir", temp_dir,
           "--object-store-memory", str(128 * 1024 * 1024)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    head = Head(proc, client, mark, temp_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_head(head)
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", client), 0.5).close()
            return head
        except OSError:
            time.sleep(0.3)
    stop_head(head)
    raise RuntimeError("the Ray head did not open its client port in time")


def marked_pids(mark: str) -> list[int]:
    """The processes whose environment holds this head's marker (those it started)."""
    out = []
    needle = f"{MARK}={mark}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def stop_head(head: Head, timeout: float = 20.0) -> list[int]:
    """Kill the head's process group, then any process it started elsewhere; the pids still
    alive after `timeout` (none expected)."""
    try:
        os.killpg(head.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    head.proc.wait(timeout)
    deadline = time.monotonic() + timeout
    left = marked_pids(head.mark)
    while left and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        left = [p for p in marked_pids(head.mark) if not _zombie(p)]
    shutil.rmtree(head.temp_dir, ignore_errors=True)
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
