"""Training on a Ray cluster: the same training session, run by one Ray task on the cluster.

The driver is this PC (the CLI, or the Train view's child process). It writes the dataset
snapshot (snapshot_file), connects to the cluster with Ray Client (``ray://HOST:10001``, which
``ray start --head`` opens: the PC need not be a node of the cluster), ships the snapshot's
bytes with ``ray.put`` and runs ``_train_on_node`` as a task: it checks the checksum, writes
the snapshot to a temporary file on the node and runs training.session.run_session on it, the
function a local run calls. Progress goes through a small actor (``_Relay``) that the driver
polls; a stop request goes the same way (the loop ends cleanly and stores nothing), with
``ray.cancel(force=True)`` when the task does not answer in time. The task returns the trained
weights and the card; the driver, alone, writes them into the project. Ray is a maintained
cluster engine: okng schedules nothing itself (one task, Ray places it; GPUs are asked for when
the cluster has them, and Ray hides them from tasks that did not ask).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.progress import Progress, ProgressFn, StopFn

from ..errors import TrainingError
from ..session import TrainSpec

CLIENT_PORT = 10001  # Ray Client's default port on the head (ray start --ray-client-server-port)
POLL_S = 0.25  # how often the driver collects progress
FLUSH_S = 0.5  # how often the task sends progress and looks for a stop request
STOP_GRACE_S = 60.0  # a stopped task that has not ended by then is killed (ray.cancel force)


@dataclass(frozen=True)
class RemoteSpec:
    """One training run on a Ray cluster (plain data: it is pickled to the view's child process).
    ``gpus`` None: one GPU when the cluster has one and the run's device is not "cpu"."""

    train: TrainSpec
    address: str
    gpus: float | None = None


def run_train(spec: TrainSpec | RemoteSpec, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> Any:
    """A training run where its spec says: this process (TrainSpec) or a Ray cluster (RemoteSpec)."""
    if isinstance(spec, RemoteSpec):
        return run_remote(spec, progress, should_stop)
    from ..session import run_session
    return run_session(spec, progress, should_stop)


def client_address(address: str) -> tuple[str, str, int]:
    """"HOST", "HOST:PORT" or "ray://HOST:PORT" -> (Ray Client URL, host, port)."""
    a = address.strip()
    a = a.removeprefix("ray://")
    host, sep, port = a.rpartition(":")
    if not sep:
        host, port = a, str(CLIENT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TrainingError(f"not a Ray cluster address: {address!r} (expected HOST or HOST:PORT, "
                            f"e.g. gpu-server or gpu-server:{CLIENT_PORT})")
    return f"ray://{host}:{port}", host, int(port)


def check_reachable(host: str, port: int, timeout: float = 5.0) -> None:
    """Fail in seconds, before any work, when nothing listens there (Ray Client itself retries
    for half a minute)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise TrainingError(
            f"no Ray cluster at {host}:{port} ({why}). On the server run `ray start --head` (its Ray "
            f"Client port is {CLIENT_PORT}) and let this PC reach that port") from None


class _Relay:
    """The actor between the task and the driver: progress out, the stop request in."""

    def __init__(self) -> None:
        self.items: list[Progress] = []
        self.stop = False

    def put(self, items: list[Progress]) -> None:
        self.items.extend(items)

    def take(self) -> list[Progress]:
        out, self.items = self.items, []
        return out

    def request_stop(self) -> None:
        self.stop = True

    def stopped(self) -> bool:
        return self.stop


class _Link:
    """The task's side of the relay: batches progress, polls the stop flag (both every FLUSH_S)."""

    def __init__(self, relay: Any) -> None:
        self.relay, self.buf, self.last, self.stop = relay, [], 0.0, False
        self.stage, self.polled = "", 0.0  # its own clock: frequent flushes must not starve the stop poll

    def progress(self, p: Progress) -> None:
        self.buf.append(p)
        # an epoch's end (its figures) goes at once; training steps in batches
        epoch_end = p.payload is not None and type(p.payload).__name__ != "TrainStep"
        if p.stage != self.stage or epoch_end or time.monotonic() - self.last >= FLUSH_S:
            self.stage = p.stage
            self.flush()

    def flush(self, wait: bool = False) -> None:
        """Send what is buffered; wait=True: until the relay holds it (the task's last report
        must be there before the driver sees the task end)."""
        if self.buf or wait:
            ref = self.relay.put.remote(self.buf)
            self.buf = []
            if wait:
                import ray
                ray.get(ref)
        self.last = time.monotonic()

    def should_stop(self) -> bool:
        if not self.stop and time.monotonic() - self.polled >= FLUSH_S:
            import ray
            self.flush()
            self.stop = bool(ray.get(self.relay.stopped.remote()))
            self.polled = time.monotonic()
        return self.stop


def _train_on_node(data: bytes, sha256: str, values: dict[str, Any], relay: Any) -> tuple[Any, bytes | None, dict]:
    """The Ray task: check the snapshot, train on it with the local session, return (result,
    weights or None, where it ran). The snapshot file lives only while the task runs."""
    from labeling.store import Project

    from ..session import run_session
    if hashlib.sha256(data).hexdigest() != sha256:
        raise TrainingError("the dataset snapshot arrived damaged (checksum mismatch)")
    link = _Link(relay)
    with tempfile.TemporaryDirectory(prefix="okng-remote-") as tmp:
        path = Path(tmp) / "snapshot.h5"
        path.write_bytes(data)
        res = run_session(TrainSpec(str(path), dict(values)), link.progress, link.should_stop)
        link.flush(wait=True)
        blob = None if res.cancelled or not res.model_id else Project.open(path, readonly=True).load_checkpoint(
            res.model_id)
    return res, blob, _node()


def _node() -> dict[str, Any]:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": socket.gethostname(), "gpu": gpu, "cpus": os.cpu_count()}


def run_remote(spec: RemoteSpec, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Any:
    """Train on the cluster and register the model in the project (training.loop.TrainResult,
    its card the stored one). A cancelled run stores nothing, as a local one."""
    from .snapshot_file import write_snapshot
    say = progress or (lambda p: None)
    stop = should_stop or (lambda: False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    url, host, port = client_address(spec.address)
    check_reachable(host, port)
    with tempfile.TemporaryDirectory(prefix="okng-snapshot-") as tmp:
        snap = write_snapshot(spec.train.project_path, Path(tmp) / "snapshot.h5", spec.train.values, say, stop)
        if snap is None:
            return _cancelled()
        data = Path(snap.path).read_bytes()
    say(Progress("connect", 0, None, f"connecting to the Ray cluster at {host}:{port}"))
    import ray
    _connect(ray, url, f"{host}:{port}")
    try:
        gpus = spec.gpus
        if gpus is None:
            wants = spec.train.values.get("device", "auto") != "cpu"
            gpus = 1 if wants and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        relay = ray.remote(num_cpus=0)(_Relay).remote()
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_train_on_node)
        say(Progress("submit", 0, None, f"sending the dataset snapshot ({snap.size / 1e6:.1f} MB, "
                                        f"{snap.parts} parts) to the cluster"))
        ref = task.remote(ray.put(data), snap.sha256, spec.train.values, relay)
        done = _follow(ray, ref, relay, say, stop)
    finally:
        ray.shutdown()
    if done is None:
        return _cancelled()
    res, blob, node = done
    if res.cancelled or blob is None:
        return res
    remote = {"address": f"{host}:{port}", "node": node, "snapshot_sha256": snap.sha256,
              "snapshot_bytes": snap.size, "gpus": gpus}
    say(Progress("register", 0, 1, "storing the model in the project"))
    out = register_remote(spec.train.project_path, res, blob, remote)
    say(Progress("register", 1, 1, f"model {out.model_id} stored"))
    return out


def _connect(ray: Any, url: str, where: str, tries: int = 3) -> None:
    """ray.init through Ray Client. The head starts a server process per client, and that
    start sometimes fails at once on a busy head (seen with Ray 2.60 on a loaded 2-core
    machine, its log empty): that one error is tried again."""
    for attempt in range(tries):
        try:
            ray.init(url, logging_level="WARNING", log_to_driver=False)
            return
        except Exception as exc:  # noqa: BLE001 - a version mismatch, a port that is not Ray Client...
            if "Starting Ray client server failed" in str(exc) and attempt + 1 < tries:
                ray.shutdown()
                time.sleep(1.0)
                continue
            raise TrainingError(f"could not connect to the Ray cluster at {where}: {exc}") from None


def _follow(ray: Any, ref: Any, relay: Any, say: ProgressFn, stop: StopFn) -> tuple | None:
    """Relay the task's progress until it ends; pass a stop request on (None: killed after it)."""
    asked: float | None = None
    while True:
        try:
            ready, _ = ray.wait([ref], timeout=POLL_S)
            for p in ray.get(relay.take.remote()):  # after the wait: a finished task's last reports too
                say(p)
            if ready:
                break
            if asked is None and stop():
                asked = time.monotonic()
                relay.request_stop.remote()
                say(Progress("cancel", 0, None, "stopping the run on the cluster"))
            if asked is not None and time.monotonic() - asked > STOP_GRACE_S:
                ray.cancel(ref, force=True)
                return None
        except KeyboardInterrupt:  # Ctrl+C at the terminal: stop the cluster's run too
            if asked is not None:
                ray.cancel(ref, force=True)
                return None
            asked = time.monotonic()
            relay.request_stop.remote()
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        raise TrainingError(f"training on the Ray cluster failed: {cause}") from None
    except ray.exceptions.RayError as exc:  # the worker died: out of memory, node lost...
        raise TrainingError(f"training on the Ray cluster failed: {str(exc).splitlines()[0]}") from None


def _cancelled() -> Any:
    from ..loop import TrainResult
    return TrainResult(None, {}, True, False)


def register_remote(project_path: str | Path, res: Any, blob: bytes, remote: dict[str, Any]) -> Any:
    """Store a model trained elsewhere in the project (the only write of a remote run): the
    weights must match the card's checksum; active when the project has no active model."""
    from labeling.store import Project

    from ..checkpoint import sha256
    card = res.card
    if card is None or sha256(blob) != card.checkpoint_sha256:
        raise TrainingError("the trained weights arrived damaged (checksum mismatch): nothing stored")
    card = dataclasses.replace(card, extra={**card.extra, "remote": remote})
    project = Project.open(project_path)
    if any(m.get("id") == card.id for m in project.models()):
        raise TrainingError(f"model {card.id} is already in the project")
    project.save_model(card.id, card.to_meta(), blob)
    activated = not project.active_model_id
    if activated:
        project.set_active_model(card.id)
    return dataclasses.replace(res, card=card, activated=activated)
