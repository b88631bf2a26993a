"""The balanced sampler's draw: which training views an epoch sees, and how often.

`TrainConfig.sampler = "balanced"` (the scratch recipe's) draws each epoch's views with
replacement by these probabilities instead of a plain shuffle (loop._plan).
"""
from __future__ import annotations

import numpy as np


def balanced_p(targets: np.ndarray) -> np.ndarray:
    """OK and NG views 50/50, and within NG every defect class of a class model an equal share.

    A part is OK only when every view is, so OK keeps half the draws; an OK/NG split alone
    draws each defect class by its frequency (a class of 5 parts among 100 NG: 2.5 % of the
    draws, its rows in the loss as rare as in the data). A multilabel row is NG when it holds
    any class (its classes keep their own shares). Verdict targets: OK/NG 50/50 as before."""
    t = np.asarray(targets)
    if t.ndim == 1:
        cls = t.astype(np.int64)
    else:
        cls = (t.reshape(len(t), -1) > 0).any(axis=1).astype(np.int64)
    counts = np.bincount(cls).astype(np.float64)
    ng_classes = max(int(np.count_nonzero(counts[1:])), 1)
    share = np.where(np.arange(len(counts)) == 0, 0.5, 0.5 / ng_classes)
    if counts[0] == 0 or counts[1:].sum() == 0:  # one side absent: the present classes share it all
        share = share / share[counts > 0].sum()
    p = share[cls] / np.maximum(counts[cls], 1)
    return p / p.sum()
