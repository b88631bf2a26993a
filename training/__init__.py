"""okng training room: backbones, data, train/evaluate loops, metrics, registry, inference.

Headless (no Qt). Heavy modules import torch; `training.errors` and `training.config` do not.
"""
