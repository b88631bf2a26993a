"""A model's pruning lineage as a table: params / FLOPs / latency / held-out metric per model.

The X-ray wool study's Table III, from the cards alone (no torch, no re-measuring): the root's
figures are the ones its first pruning run measured (kept in each child's recipe as
``parent_figures``), every child's are its own. `okng models --lineage ID` prints it; the Train
view's Prune panel draws the same rows.
"""
from __future__ import annotations

from typing import Any

from .card import ModelCard


def lineage(cards: list[ModelCard], model_id: str) -> list[ModelCard]:
    """The model's root, then every descendant (depth first, oldest first): the whole family."""
    by_id = {c.id: c for c in cards}
    if model_id not in by_id:
        raise KeyError(model_id)
    root = by_id[model_id]
    seen = {root.id}
    while root.parent and root.parent in by_id and root.parent not in seen:
        root = by_id[root.parent]
        seen.add(root.id)
    kids: dict[str, list[ModelCard]] = {}
    for c in sorted(cards, key=lambda c: c.created):
        if c.parent:
            kids.setdefault(c.parent, []).append(c)
    out: list[ModelCard] = []

    def walk(c: ModelCard) -> None:
        out.append(c)
        for k in kids.get(c.id, []):
            if k not in out:
                walk(k)
    walk(root)
    return out


def _figures(card: ModelCard, cards: dict[str, ModelCard]) -> dict[str, Any]:
    if card.extra.get("figures"):
        return dict(card.extra["figures"])
    for c in cards.values():  # a child measured its parent before pruning it
        rec = c.extra.get("pruning") or {}
        if c.parent == card.id and rec.get("parent_figures"):
            return dict(rec["parent_figures"])
    return {}


def lineage_rows(cards: list[ModelCard], model_id: str, active: str | None = None) -> list[dict[str, Any]]:
    """One row per model of the family, with ratios against the root."""
    fam = lineage(cards, model_id)
    by_id = {c.id: c for c in cards}
    rows = []
    root_fig = _figures(fam[0], by_id)
    for c in fam:
        f = _figures(c, by_id)
        rec = c.extra.get("pruning") or {}
        test = c.metrics.get("test")
        row = {"id": c.id, "active": c.id == active, "parent": c.parent,
               "method": rec.get("method", "-") if rec else "-", "round": rec.get("round", 0),
               "rate": rec.get("rate"), "norm": rec.get("norm"), "params": f.get("params"),
               "flops": f.get("flops"), "latency_ms": f.get("latency_ms"),
               "val_balanced_accuracy": c.val.get("balanced_accuracy"),
               "test_balanced_accuracy": test.get("balanced_accuracy") if test else None}
        for k in ("params", "flops", "latency_ms"):
            a, b = root_fig.get(k), f.get(k)
            row[f"{k}_x"] = (a / b) if a and b else None  # how many times smaller / faster
        rows.append(row)
    return rows


def _num(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def lineage_table(cards: list[ModelCard], model_id: str, active: str | None = None) -> str:
    rows = lineage_rows(cards, model_id, active)
    idw = max(len(r["id"]) for r in rows) + 2
    head = (f"{'':2}{'id':<{idw}}{'method':<8}{'round':>6}{'params':>9}{'x':>6}{'FLOPs':>9}{'x':>6}"
            f"{'lat ms':>8}{'x':>6}{'val bal':>9}{'test bal':>9}")
    lines = [head]
    for r in rows:
        def x(k: str, r: dict[str, Any] = r) -> str:
            return "-" if r[k] is None else f"{r[k]:.1f}"

        def f3(v: Any) -> str:
            return "-" if v is None else f"{v:.3f}"
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(f"{'*' if r['active'] else ' ':2}{r['id']:<{idw}}{r['method']:<8}{r['round']:>6}"
                     f"{_num(r['params']):>9}{x('params_x'):>6}{_num(r['flops']):>9}{x('flops_x'):>6}"
                     f"{lat:>8}{x('latency_ms_x'):>6}{f3(r['val_balanced_accuracy']):>9}"
                     f"{f3(r['test_balanced_accuracy']):>9}")
    lines.append("x: times smaller / faster than the root; FLOPs are multiply-accumulates of one view; "
                 "latency: median CPU forward of a batch of views")
    return "\n".join(lines)
