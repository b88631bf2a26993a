"""Confident learning over out-of-fold probabilities finds labels flipped on purpose."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.label_issues import (
    class_thresholds,
    confident_joint,
    find_label_issues,
    fold_ids,
    out_of_fold,
)

K = 4


def _blobs(n_per: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four overlapping Gaussian blobs in 6-D: a model gets most, not all, right."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.2, (K, 6))
    x = np.concatenate([rng.normal(c, 1.0, (n_per, 6)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(K), n_per)
    return x, y


def _flip(y: np.ndarray, frac: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.choice(y.size, int(frac * y.size), replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, K, idx.size)) % K  # always another class
    return noisy, np.sort(idx)


def _softmax_regression(x: np.ndarray, y: np.ndarray):
    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        torch.manual_seed(0)
        model = torch.nn.Linear(x.shape[1], K)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
        for _ in range(150):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(x[test])), 1).numpy()
    return fit_predict


def _precision_recall(found: list[int], truth: np.ndarray) -> tuple[float, float]:
    hit = len(set(found) & set(truth.tolist()))
    return hit / max(len(found), 1), hit / max(truth.size, 1)


def test_flipped_labels_are_found_out_of_fold():
    x, y = _blobs()
    noisy, flipped = _flip(y, 0.10)
    probs = out_of_fold(len(y), 5, _softmax_regression(x, noisy), labels=noisy)
    assert not np.isnan(probs).any() and np.allclose(probs.sum(1), 1, atol=1e-5)
    issues = find_label_issues(noisy, probs)
    precision, recall = _precision_recall([r.index for r in issues], flipped)
    print(f"label issues: precision {precision:.2f} recall {recall:.2f} ({len(issues)} flagged, {flipped.size} flipped)")
    assert precision >= 0.7 and recall >= 0.6
    right = [r for r in issues if r.index in set(flipped.tolist())]
    assert np.mean([r.suggested == y[r.index] for r in right]) >= 0.8  # and says what they should be
    assert [r.self_confidence for r in issues] == sorted(r.self_confidence for r in issues)


@pytest.mark.parametrize("method", ["both", "confident_joint", "prune_by_noise_rate"])
def test_methods_on_synthetic_probabilities(method):
    """A model right 85 % of the time on clean labels, labels 8 % flipped."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, 1000)
    noisy, flipped = _flip(y, 0.08, seed=4)
    logits = rng.normal(0, 1.0, (y.size, K))
    logits[np.arange(y.size), y] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    precision, recall = _precision_recall([r.index for r in find_label_issues(noisy, probs, method)], flipped)
    assert precision >= 0.6 and recall >= 0.6, (method, precision, recall)


def test_clean_labels_give_few_issues_and_the_joint_is_calibrated():
    rng = np.random.default_rng(5)
    y = rng.integers(0, K, 400)
    logits = rng.normal(0, 0.5, (y.size, K))
    logits[np.arange(y.size), y] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert len(find_label_issues(y, probs)) <= 4
    cj = confident_joint(y, probs)
    assert np.allclose(cj.sum(1), np.bincount(y, minlength=K))
    assert np.isinf(class_thresholds(np.zeros(4, int), np.full((4, 2), 0.5))[1])


def test_folds_are_stratified_and_checked():
    y = np.repeat([0, 1, 2], [30, 12, 6])
    ids = fold_ids(len(y), 3, y)
    for c in range(3):
        assert set(ids[y == c]) == {0, 1, 2}
    with pytest.raises(ValueError, match="folds 2 or more"):
        fold_ids(10, 1)
    with pytest.raises(ValueError, match="labels must be"):
        find_label_issues([0, 5], np.full((2, 3), 1 / 3))
