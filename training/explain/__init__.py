"""Explainability: the Grad-CAM family and its agreement with the inspectors' masks.

    cam.py        gradcam / guided_backprop / guided_gradcam / layer_names (pure functions)
    recipe.py     CamRecipe: every choice that moves a heatmap, stored with each result
    agreement.py  IoU, energy in mask, pointing game, centroid/spread, per-class summary (numpy)
    shortcut.py   the shortcut alarm and its suggested ROI (numpy)
    dataset.py    explain_dataset over a project -> ExplainReport
    overlay.py    PNG overlays (view + heatmap + mask contour)
    heatmaps.py   the one stored heatmap convention (full-image frame, 0..255) and its reader
    session.py    the Explain mode's work for the window's Workers, and run_session

Importing this package does not import torch; the submodules that need it do.
"""
from __future__ import annotations

from training.explain.recipe import CamRecipe

__all__ = ["CamRecipe"]
