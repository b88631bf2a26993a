"""Which of a model's cameras a view comes from: checked before any sort run or prediction.

A model keeps per-camera ROIs and was trained on views of named cameras. Run on a source whose
cameras have other names (cam0..cam3 vs Viky-0..2), its ROI lookup by name finds nothing and
whole frames go in — the shortcut the ROI was drawn to remove — with no error anywhere. So a
name or count mismatch stops the run with a clear error, unless the user maps the source's
cameras onto the model's explicitly (`--map-cameras Viky-0=cam0,Viky-1=cam1`).

No torch import: the CLI and the views check cheaply.
"""
from __future__ import annotations

from collections.abc import Sequence

from .errors import TrainingError


class CameraMismatch(TrainingError):
    """The source's (or parts') cameras are not the model's, and no map says how they match."""


def parse_camera_map(text: str | None) -> dict[str, str]:
    """'Viky-0=cam0,Viky-1=cam1' -> {'Viky-0': 'cam0', 'Viky-1': 'cam1'} ({} for None or '')."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"--map-cameras: {item!r} is not SOURCE=MODEL (e.g. Viky-0=cam0)")
        if src.strip() in out:
            raise ValueError(f"--map-cameras: {src.strip()!r} is mapped twice")
        out[src.strip()] = dst.strip()
    return out


def _suggest(source: Sequence[str], model: Sequence[str]) -> str:
    pairs = [f"{s}={m}" for s, m in zip(source, model)]
    return ",".join(pairs) or "SOURCE=MODEL,..."


def match_cameras(model_id: str, model_cameras: Sequence[str], cameras: Sequence[str],
                  mapping: dict[str, str] | None = None, exact: bool = True, what: str = "the source",
                  ) -> dict[str, str]:
    """Source camera -> model camera for every camera given; CameraMismatch when they differ.

    exact (a sort source): the mapped cameras must be the model's, same names and same count.
    Otherwise (project parts to predict, maybe a subset): each mapped camera must be one of the
    model's. A model that recorded no cameras (an old card without ROIs) accepts any names.
    """
    mapping = dict(mapping or {})
    model = list(model_cameras)
    cams = list(dict.fromkeys(cameras))
    stray = sorted(set(mapping) - set(cams))
    if stray:
        raise CameraMismatch(f"camera map names {', '.join(stray)}, which {what} does not have "
                             f"(its cameras: {', '.join(cams) or 'none'})")
    if model:
        wrong = sorted(set(mapping.values()) - set(model))
        if wrong:
            raise CameraMismatch(f"camera map targets {', '.join(wrong)}, which model {model_id} does not know "
                                 f"(its cameras: {', '.join(model)})")
    mapped = [mapping.get(c, c) for c in cams]
    if len(set(mapped)) != len(mapped):
        raise CameraMismatch(f"camera map sends two of {what}'s cameras to one model camera: {mapping}")
    if not model:
        return {c: m for c, m in zip(cams, mapped)}
    unknown = [c for c, m in zip(cams, mapped) if m not in model]
    missing = [m for m in model if m not in mapped] if exact else []
    if unknown or missing or (exact and len(mapped) != len(model)):
        hint = _suggest([c for c in cams if c not in mapping] or cams, [m for m in model if m not in mapped] or model)
        raise CameraMismatch(
            f"model {model_id} was trained on {len(model)} camera(s) {', '.join(model)}; {what} has "
            f"{len(cams)}: {', '.join(cams)}"
            + (f" ({', '.join(unknown)} unknown to the model)" if unknown else "")
            + (f" (no view from {', '.join(missing)})" if missing else "")
            + ". Its per-camera ROIs would not be applied and whole frames would go in. Map the cameras "
              f"explicitly ({hint}: --map-cameras of okng sort / predict, the camera map of the Live-sort "
              "view) or train a model on these cameras")
    return {c: m for c, m in zip(cams, mapped)}
