"""The inference runtime of a model: torch, or ONNX Runtime from the model's own ONNX export.

On a line PC without a GPU, ONNX Runtime runs the same network several times faster than torch
eager (mobilenet_v3_small, four 224 px views: 5.5 ms against 30 ms, issue 15). A model's card
says which runtime it wants (``card.runtime``); ``with_runtime(loaded, project_path)`` returns
the LoadedModel itself for "torch", or an ``OrtModel`` that has the same interface (prepare_batch,
logits, ng_scores, predict_views: everything live sort and prediction call) and differs only in
the forward.

Before an ONNX file is used it is checked against torch on STORED parts of the project (their
views preprocessed exactly as live sort does): logits within tolerance AND the same verdict on
every view; otherwise the model runs on torch and the reason is reported. The verified file is
cached next to the project (``<project>.onnx/<model id>-<checksum>.onnx``): exported once per
checkpoint, a changed checkpoint gets a new file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TrainingError
from .inference import LoadedModel, batch_slices, run_sliced

RUNTIMES = ("torch", "onnxruntime")
CHECK_PARTS = 8  # stored parts compared before an ONNX file is trusted
LOGIT_ATOL = 1e-3


def cache_path(project_path: str | Path, card: Any) -> Path:
    p = Path(project_path)
    return p.with_name(p.name + ".onnx") / f"{card.id}-{(card.checkpoint_sha256 or 'nosha')[:12]}.onnx"


def ort_session(path: str | Path | bytes, threads: int | None = None) -> Any:
    """A CPU InferenceSession with a fixed, small thread pool (the sort process shares 2 cores
    with its log writer and the PLC link: ORT's default of one spinning thread per core starves
    them)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or max(1, torch.get_num_threads()))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    src = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


class OrtModel:
    """A LoadedModel whose forward runs on ONNX Runtime (CPU); everything else is the model's.

    Every entry point that runs the network is defined HERE (logits, probabilities, ng_scores,
    predict_views): one left to __getattr__ would be the LoadedModel's bound method, which calls
    the LoadedModel's own torch logits, and live sort (hardware.sort.models.TimedModel calls
    `probabilities`) would silently run torch while reporting onnxruntime.
    """

    runtime = "onnxruntime"

    def __init__(self, loaded: LoadedModel, session: Any, onnx_path: Path) -> None:
        self.loaded = loaded
        self.session = session
        self.onnx_path = onnx_path
        self.runs = 0  # forwards (tests prove the forward really went through ONNX Runtime)
        self.intra_op = _intra_op(session)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loaded, name)

    def logits(self, batch: Any) -> torch.Tensor:
        # torch.Tensor.numpy() shares memory: the batch preprocessed into a tensor goes to ORT
        # without a copy (ascontiguousarray is a no-op on a contiguous batch).
        x = batch.numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch, dtype=np.float32)
        x = np.ascontiguousarray(x)
        self.runs += 1
        return torch.from_numpy(np.concatenate(run_sliced(self._run, x, self.chunks(len(x)))))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"views": x})[0]

    def chunks(self, n_views: int) -> int:
        """Slices of a part's batch run at once (training.inference.batch_slices: a session of one
        intra-op thread, live sort's layout, runs them on the caller and the preprocessing
        helpers, each call releasing the GIL)."""
        return batch_slices(n_views, self.intra_op)

    def probabilities(self, batch: Any) -> np.ndarray:
        """(N, outputs) probabilities by the model's task, from ONNX Runtime's logits."""
        return self.loaded.probabilities_of(self.logits(batch))

    def ng_scores(self, batch: Any) -> np.ndarray:
        return self.loaded.task.view_scores(self.probabilities(batch), self.loaded.thresholds)[0]

    def predict_views(self, images: Any, cameras: Any) -> Any:
        if len(images) == 0 or len(images) != len(cameras):
            return self.loaded.predict_views(images, cameras)  # its own clear error
        batch, geoms = self.loaded.prepare_batch(images, cameras)
        return self.loaded.decide_probs(self.probabilities(batch), geoms)


def _intra_op(session: Any) -> int | None:
    try:
        return int(session.get_session_options().intra_op_num_threads)
    except (AttributeError, TypeError, ValueError):  # a session without options (a test double)
        return None


@dataclass
class RuntimeCheck:
    """How the ONNX file compared with torch on stored parts."""

    parts: int
    views: int
    max_abs_diff: float
    same_verdicts: bool
    ok: bool


def check_on_parts(loaded: LoadedModel, session: Any, project_path: str | Path, n_parts: int = CHECK_PARTS) -> RuntimeCheck:
    """Compare torch and ONNX Runtime on stored parts (the model's held-out parts first)."""
    from labeling.store import Project
    proj = Project.open(project_path, readonly=True)
    ids = [i for i in loaded.card.val_part_ids if i in set(proj.part_ids())] or proj.part_ids()
    ids = ids[:n_parts]
    worst, same, views = 0.0, True, 0
    ort_model = OrtModel(loaded, session, Path())
    for pid in ids:
        part = proj.part(pid)
        images = proj.read_views(pid)
        cams = [v.camera for v in part.views][:len(images)]
        batch, _geoms = loaded.prepare_batch(images, cams)
        ref, got = loaded.logits(batch).numpy(), ort_model.logits(batch).numpy()
        worst = max(worst, float(np.max(np.abs(ref - got))))
        # the model's own rule on both (its task: a class model's defect class must agree too)
        a = loaded.decide_probs(loaded.probabilities_of(torch.from_numpy(ref)))
        b = loaded.decide_probs(loaded.probabilities_of(torch.from_numpy(got)))
        same = same and (a.verdict, a.defect_class) == (b.verdict, b.defect_class)
        views += len(images)
    ok = bool(ids) and same and worst <= LOGIT_ATOL
    return RuntimeCheck(len(ids), views, worst, same, ok)


def with_runtime(loaded: LoadedModel, project_path: str | Path, runtime: str | None = None,
                 threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, info) on the runtime the card (or `runtime`) asks for; info says what was used
    and why ("runtime", "runtime_note", "onnx_check")."""
    want = runtime or getattr(loaded.card, "runtime", "torch") or "torch"
    if want not in RUNTIMES:
        raise TrainingError(f"unknown runtime {want!r} (expected {', '.join(RUNTIMES)})")
    if want == "torch":
        return loaded, {"runtime": "torch"}
    if loaded.device.type != "cpu":
        # ONNX Runtime runs on the CPU here (ort_session); torch on the GPU is the faster of the
        # two (resnet18, four views: 5 ms on an H100), and its TF32 convolutions would not pass
        # the float32 check below anyway.
        return loaded, {"runtime": "torch", "runtime_note": f"ONNX Runtime not used: the model runs on "
                                                            f"{loaded.device.type.upper()} (ONNX Runtime only "
                                                            "on the CPU here)"}
    path = cache_path(project_path, loaded.card)
    try:
        if not path.exists():
            from .onnx_export import export_onnx
            export_onnx(loaded, path)  # verified on a random batch before it is written
        session = ort_session(path, threads)
        check = check_on_parts(loaded, session, project_path)
    except Exception as exc:  # noqa: BLE001 - any failure falls back to torch, said loudly
        return loaded, {"runtime": "torch", "runtime_note": f"ONNX Runtime not used: {type(exc).__name__}: "
                                                            f"{str(exc)[:200]}"}
    info = {"onnx_check": check.__dict__, "onnx_path": str(path)}
    if not check.ok:
        return loaded, {**info, "runtime": "torch",
                        "runtime_note": f"ONNX Runtime not used: differs from torch on stored parts "
                                        f"(max |logit diff| {check.max_abs_diff:.2e}, same verdicts "
                                        f"{check.same_verdicts}, {check.parts} parts)"}
    return OrtModel(loaded, session, path), {**info, "runtime": "onnxruntime"}
