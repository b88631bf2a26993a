"""ONNX export of a stored model, verified against torch with onnxruntime."""
from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TrainingError
from .inference import LoadedModel

# Relative to the largest logit. A wrong graph (a layer missing, BatchNorm in training mode) is off
# by 1e-1 or more; kernel libraries differ by float rounding only. 1e-4 refused an honest export on
# a 16-core H100 host (torch 2.11, onnxruntime 1.30: 1.8e-3 on a one-epoch mobilenet_v3_small).
ATOL = 5e-3


def export_onnx(loaded: LoadedModel, out: str | Path, opset: int = 17, verify: bool = True,
                seed: int = 0) -> dict[str, Any]:
    """Write the model as ONNX (input `views`: N x 3 x h x w, output `logits`), check it equals torch."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Exported and verified on the CPU. A copy when the model lives on a GPU: moving the loaded
    # model itself left it on the CPU under a CUDA LoadedModel, whose next forward then failed
    # (seen on an H100 host: every ONNX Runtime fallback to torch broke torch too).
    model = (loaded.model if loaded.device.type == "cpu" else copy.deepcopy(loaded.model).to("cpu")).eval()
    h, w = loaded.input_size
    dummy = torch.zeros((1, 3, h, w))
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter needs no onnxscript (not installed); silence its notice.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (dummy,), buf, input_names=["views"], output_names=["logits"],
                              dynamic_axes={"views": {0: "n"}, "logits": {0: "n"}}, opset_version=opset,
                              dynamo=False)
    except Exception as exc:
        raise TrainingError(f"ONNX export of {loaded.arch} failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    data = buf.getvalue()
    report: dict[str, Any] = {"path": str(out), "bytes": len(data), "opset": opset, "input": [None, 3, h, w]}
    if verify:
        report.update(verify_onnx(data, model, (h, w), seed))
        if not report["equal"]:
            raise TrainingError(f"ONNX export differs from torch (max abs diff {report['max_abs_diff']:.2e}); "
                                "file not written")
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return report


def verify_onnx(data: bytes | str | Path, model: torch.nn.Module, input_size: tuple[int, int],
                seed: int = 0, n: int = 4) -> dict[str, Any]:
    """Run onnxruntime and torch on the same random batch; report the largest difference."""
    import onnxruntime as ort
    src = data if isinstance(data, bytes) else str(data)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3, *input_size)).astype(np.float32))
    with torch.inference_mode():
        ref = model.eval()(x).numpy()
    got = sess.run(["logits"], {"views": x.numpy()})[0]
    diff = float(np.max(np.abs(ref - got)))
    return {"max_abs_diff": diff, "equal": bool(diff <= ATOL * max(1.0, float(np.abs(ref).max()))),
            "verified_batch": n}
