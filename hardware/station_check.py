"""Check a station's cameras and PLC before they are saved: open, read once, close, say what was seen.

Plain functions (no Qt) for the Station dialog's Test buttons (run in a Worker: a GenICam producer
or a PLC across the network can take seconds to answer). Each returns a dict with "ok" and one
sentence, "text", for the person at the station; a failure is that sentence, never an exception.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any

from labeling.progress import ProgressFn, StopFn

SIM_RESOLUTION = (640, 480)  # the window's simulated cameras (the rig's preview size)


def source_options(spec: str, seed: int = 0) -> dict[str, Any]:
    """The options a UI opens `spec` with: the simulators take a size and a seed, a real source
    neither (folder/opencv/genicam refuse options they do not know)."""
    scheme = spec.strip().partition(":")[0].lower()
    if scheme == "sim" and ":" not in spec:
        return {"resolution": SIM_RESOLUTION, "seed": seed}
    return {"seed": seed} if scheme == "sim" else {}


def check_source(spec: str, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict[str, Any]:
    """Open the source, grab one part, close it: its cameras, size and the time the grab took."""
    from hardware.sources import make_source
    spec = spec.strip()
    if not spec:
        return {"ok": False, "text": "No source given (e.g. sim, folder:/data/run1, genicam:/opt/producer.cti)."}
    try:
        src = make_source(spec, **source_options(spec))
        src.open()
    except Exception as exc:  # noqa: BLE001 - any open failure is the answer
        return {"ok": False, "text": f"Could not open {spec}: {exc}"}
    try:
        info = src.info()
        t0 = time.monotonic()
        cap = src.capture(timeout=5.0)
        ms = (time.monotonic() - t0) * 1000
        shapes = sorted({"x".join(str(d) for d in v.shape[1::-1]) for v in cap.views})  # W x H
        cams = ", ".join(info.cameras)
        return {"ok": True, "cameras": list(info.cameras), "resolution": list(info.resolution),
                "text": f"{len(info.cameras)} camera(s) ({cams}), views {', '.join(shapes)} px; "
                        f"one part grabbed in {ms:.0f} ms."}
    except Exception as exc:  # noqa: BLE001 - opened but no part: say so
        return {"ok": False, "text": f"{spec} opened but grabbed no part: {exc}"}
    finally:
        with contextlib.suppress(Exception):  # closing after a failure: the failure is the answer
            src.close()


def check_plc(spec: str, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict[str, Any]:
    """Connect to HOST:PORT, read the PLC block twice 300 ms apart: is its heartbeat moving?"""
    from hardware.errors import PlcError
    from hardware.plc.client import PlcClient, parse_endpoint
    spec = spec.strip()
    if spec in ("", "sim"):
        return {"ok": True, "text": "The built-in PLC simulator (no line attached): it starts with the window."}
    try:
        host, port = parse_endpoint(spec)
    except (ValueError, PlcError) as exc:
        return {"ok": False, "text": f"PLC address: {exc}"}
    client = PlcClient(host, port)
    try:
        if not client.ensure_connected():
            return {"ok": False, "text": f"No Modbus TCP answer from {host}:{port}."}
        first = client.read_plc_block()
        time.sleep(0.3)  # the contract: PLC_HEARTBEAT moves at least every 100 ms
        second = client.read_plc_block()
    except Exception as exc:  # noqa: BLE001 - a refused read is the answer
        return {"ok": False, "text": f"{host}:{port} connected but the PLC block could not be read: {exc}"}
    finally:
        client.close()
    alive = second.heartbeat != first.heartbeat
    text = (f"{host}:{port}: PLC block read, TRIG_SEQ {second.trig_seq}, PART_ID {second.part_id}; "
            + ("PLC_HEARTBEAT is moving." if alive else
               "⚠ PLC_HEARTBEAT did not move in 300 ms: the PLC program is not running its side of the contract."))
    return {"ok": alive, "text": text, "trig_seq": second.trig_seq}
