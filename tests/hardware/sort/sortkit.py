"""Helpers of the sort engine tests: free ports, a deterministic classifier, a PLC peer.

The PLC peer is the third-party pyModbusTCP server; the test itself plays the PLC by writing
PLC_HEARTBEAT/TRIG_SEQ/PART_ID into its data bank and reading the PC block back.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def brightness_classifier(threshold: float = 0.5):
    """A real torch module deciding by mean brightness: NG iff a view's mean > threshold."""
    import torch
    from torch import nn

    from hardware.sort.classifier import TorchViewClassifier

    class MeanNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 1, bias=False)
            with torch.no_grad():
                self.conv.weight.fill_(1.0 / 3.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.conv(x).mean(dim=(1, 2, 3)) - threshold).unsqueeze(1) * 40.0

    return TorchViewClassifier(MeanNet(), input_size=(24, 32), mean=(0, 0, 0), std=(1, 1, 1),
                               model_id="mean-brightness")


class PlcPeer:
    """pyModbusTCP server on a free loopback port; the test drives the PLC block by hand."""

    def __init__(self) -> None:
        from pyModbusTCP.server import ModbusServer
        self.port = free_port()
        self.server = ModbusServer(host="127.0.0.1", port=self.port, no_block=True)
        self.server.start()
        self.bank = self.server.data_bank
        self._stop = threading.Event()
        self._hb = 0
        self._frozen = False
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        # PLC_HEARTBEAT every 50 ms, like a PLC scan task would.
        while not self._stop.wait(0.05):
            if self._frozen:
                continue
            self._hb = (self._hb + 1) & 0xFFFF
            self.bank.set_holding_registers(0, [self._hb])

    def freeze_heartbeat(self, frozen: bool) -> None:
        self._frozen = frozen

    def trigger(self, seq: int, part_id: int) -> None:
        self.bank.set_holding_registers(1, [seq & 0xFFFF, part_id >> 16, part_id & 0xFFFF])

    def pc_block(self) -> list[int]:
        return list(self.bank.get_holding_registers(10, 8))

    def result(self) -> tuple[int, int, int, int, int]:
        """(RESULT_SEQ, PART_ID_ECHO, VERDICT, CONFIDENCE, DEFECT_CLASS)."""
        r = self.pc_block()
        return r[1], (r[2] << 16) | r[3], r[4], r[5], r[6]

    def status(self) -> int:
        return self.pc_block()[7]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.server.stop()


def write_folder(root: Path, n_parts: int, bright: dict[int, int]) -> Path:
    """DIR/cam0..cam3/part_XXX.png; part k is bright (mean > 0.5) on view bright[k] only."""
    import cv2
    rng = np.random.default_rng(1)
    for cam in range(4):
        d = root / f"cam{cam}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n_parts):
            level = 200 if bright.get(k) == cam else 40
            img = np.clip(rng.normal(level, 10, (24, 32)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"part_{k:03d}.png"), img)
    return root


def sort_folder_against_peer(project, peer, loaded, timed, folder: Path, n: int, model_id: str | None = None):
    """Run the engine with `timed` over the n parts of `folder` against the PLC `peer`; check that
    each answer (echo, verdict, confidence) is what `loaded` alone decides for that part. The summary."""
    import cv2

    from hardware.sort import SortConfig, SortEngine
    from hardware.sources import make_source
    cams = ["cam0", "cam1", "cam2", "cam3"]
    expected = [loaded.predict_views([cv2.imread(str(folder / c / f"part_{k:03d}.png"), 0) for c in cams], cams)
                for k in range(n)]
    source = make_source(f"folder:{folder}")
    source.open()
    engine = SortEngine(project, timed, source, SortConfig(plc_port=peer.port, poll_period=0.002))
    if model_id is not None:
        assert engine.model_id == model_id
    engine.start(parts=n)
    wait_for(lambda: engine.snapshot()["plc"].get("resyncs", 0) >= 1, what="resync")
    for k in range(n):
        peer.trigger(k + 1, 40 + k)
        wait_for(lambda k=k: peer.result()[0] == k + 1, what=f"answer {k + 1}")
        _, echo, verdict, conf, _ = peer.result()
        assert echo == 40 + k and verdict == int(expected[k].verdict)
        assert conf == round(expected[k].confidence * 1000)
    s = engine.join(10)
    assert s.triggers == n and s.errors == 0
    return s
