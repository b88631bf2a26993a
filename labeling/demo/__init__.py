"""Deterministic, seeded demo data: coated bolts on a 4-camera rig and X-ray mineral-wool strips.

`make_demo_project` is in labeling.demo.build (imports the store); the generators here are pure.
"""
from __future__ import annotations

from .bolts import BoltPart, render_part, thread_roi
from .xray import XrayStrip, render_product, render_product_truth, render_strip

__all__ = [
    "BoltPart",
    "XrayStrip",
    "make_demo_project",
    "render_part",
    "render_product",
    "render_product_truth",
    "render_strip",
    "thread_roi",
]


def make_demo_project(*args, **kwargs):
    from .build import make_demo_project as _make

    return _make(*args, **kwargs)


make_demo_project.__doc__ = "Create a labelled demo project (see labeling.demo.build.make_demo_project)."
