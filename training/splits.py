"""The one place parts are split: train / validation / test, stratified, by part or by group.

Why three sets: the best epoch and the operating threshold are chosen on the validation parts,
so the validation figures are optimistic; the TEST parts take no part in any choice and give
the figures a plant can expect (the headline everywhere). Splits are by part (the views of one
part never straddle two sets) and, with ``group_by``, by group: parts sharing a field value
(``part.fields["item"]``: crops of one scan, photos of one physical item) land on one side of
every split, as the X-ray study kept one crop per source scan.

Stratified by verdict (a group's verdict is NG when any of its parts is NG), or by class index
for a class task (a group takes its highest class), and deterministic by seed. ``kfold`` splits what is left after the test set is held out: k-fold keeps an outer
test set.

A warm-started child inherits its parent's split (``inherit_split``): a fresh draw would put some of
the parent's training parts into the child's test set, and the child, which starts from the
parent's weights, has learnt them: its test figures would leak.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import TrainingError


@dataclass(frozen=True)
class PartSplit:
    """Part positions (into the snapshot's parts) of each set, each sorted."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def ids(self, part_ids: Sequence[int]) -> dict[str, list[int]]:
        """The split as part ids (what the model card stores)."""
        return {name: sorted(int(part_ids[int(i)]) for i in getattr(self, name))
                for name in ("train", "val", "test")}


KFOLD_TRIES = 50  # draws of the round robin before kfold gives up on a fold per class


def _groups(n: int, groups: Sequence[object] | None) -> np.ndarray:
    """Group index per part; a part without a group value is a group of its own."""
    keys: dict[object, int] = {}
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = None if groups is None else groups[i]
        key = ("part", i) if g is None or g == "" else ("value", g)
        out[i] = keys.setdefault(key, len(keys))
    return out


def _take(order: list[int], sizes: np.ndarray, want: int, keep: int) -> list[int]:
    """Groups from the front of `order` until they hold >= want parts, leaving >= keep groups."""
    taken, held = [], 0
    while order and held < want and len(order) > keep:
        g = order.pop(0)
        taken.append(g)
        held += int(sizes[g])
    return taken


def split_parts(targets: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                groups: Sequence[object] | None = None) -> PartSplit:
    """Stratified train/val/test part positions; a group never straddles two sets.

    Each verdict with enough groups keeps at least one group in every set (train first, then
    validation, then test); a verdict with too few groups for a test share gives none to it.
    """
    targets = np.asarray(targets, dtype=np.int64)
    gid = _groups(len(targets), groups)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    sizes = np.bincount(gid, minlength=n_groups)
    g_target = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(g_target, gid, targets)
    rng = np.random.default_rng(seed)
    val_g: list[int] = []
    test_g: list[int] = []
    for c in np.unique(g_target):
        order = [int(g) for g in np.flatnonzero(g_target == c)]
        rng.shuffle(order)
        n_parts = int(sizes[order].sum())
        if test_fraction > 0:
            want = max(1, round(n_parts * test_fraction))
            test_g += _take(order, sizes, want, keep=2)
        want = max(1, round(n_parts * val_fraction))
        val_g += _take(order, sizes, want, keep=1)
    in_val, in_test = np.isin(gid, val_g), np.isin(gid, test_g)
    idx = np.arange(len(targets))
    return PartSplit(idx[~in_val & ~in_test], idx[in_val], idx[in_test])


def kfold(targets: np.ndarray, k: int, seed: int, groups: Sequence[object] | None = None,
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, val) splits of the given parts, stratified by verdict, groups kept whole;
    every part is validated exactly once, and every fold validates every verdict (or class).

    Counted at the part level, not by each group's worst verdict: a KolektorSDD commutator holds
    one cracked photo among eight, so every item is an NG group and a group-level count found no
    OK group at all, although every fold gets OK photos."""
    targets = np.asarray(targets, dtype=np.int64)
    gid = _groups(len(targets), groups)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    g_target = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(g_target, gid, targets)
    # Only the classes present count: a class task's targets are class indices (0 = OK) and a
    # class nobody labelled is no reason to refuse.
    values = np.unique(targets)
    holding = np.array([np.unique(gid[targets == v]).size for v in values], dtype=np.int64)
    if len(values) < 2 or holding.min() < k:
        what = "groups" if groups is not None else "parts"
        if values.size and values.max() > 1:
            have = ", ".join(f"{'OK' if v == 0 else f'class {v}'}: {c}" for v, c in zip(values, holding))
            raise TrainingError(f"{k}-fold cross-validation needs at least {k} {what} of each verdict or class "
                                f"outside the test split (have {have})")
        full = dict(zip(values.tolist(), holding.tolist()))
        raise TrainingError(f"{k}-fold cross-validation needs at least {k} {what} of each verdict "
                            f"outside the test split (have {full.get(0, 0)} OK, {full.get(1, 0)} NG)")
    rng = np.random.default_rng(seed)
    idx = np.arange(len(targets))
    for _ in range(KFOLD_TRIES):
        # Round robin over the groups, stratum by stratum (each group's worst verdict), the
        # count running on across strata so that the folds come out the same size.
        order = np.concatenate([rng.permutation(np.flatnonzero(g_target == c)) for c in np.unique(g_target)])
        fold_of_group = np.empty(n_groups, dtype=np.int64)
        fold_of_group[order] = np.arange(n_groups) % k
        fold_of = fold_of_group[gid]
        if all(np.unique(targets[fold_of == f]).size == values.size for f in range(k)):
            return [(idx[fold_of != f], idx[fold_of == f]) for f in range(k)]
    raise TrainingError(f"no {k}-fold split of these groups validates every verdict or class in every fold: "
                        f"fewer folds, or more groups of the rare classes")


def check_split(split: PartSplit, targets: np.ndarray) -> list[str]:
    """Warnings for a split too small to judge a model by (said on the card and the CLI)."""
    out = []
    for name in ("val", "test"):
        pos = getattr(split, name)
        if name == "test" and len(pos) == 0:
            continue
        have = set(np.minimum(np.asarray(targets)[pos], 1).tolist())  # a class index > 0 is NG
        if have != {0, 1}:
            out.append(f"the {'validation' if name == 'val' else 'test'} split holds "
                       f"{'no parts' if not have else 'only ' + ('NG' if 1 in have else 'OK') + ' parts'}: "
                       "its balanced accuracy and AUC mean little (label more parts)")
    return out


def inherit_split(parent: Mapping[str, Any], parent_id: str, part_ids: Sequence[int], targets: np.ndarray,
                  val_fraction: float, test_fraction: float, seed: int,
                  groups: Sequence[object] | None = None, group_by: str | None = None) -> PartSplit:
    """A warm-started child's split: each part of the parent's split stays in its set.

    `parent` is the parent card's split record (part ids per set, group_by, ...). Parts labelled
    since are split afresh by `split_parts` (they never trained the parent); a new part whose group
    already has parts in a set joins that set. Refused (TrainingError) when the parent kept no
    split or grouped by another field, since neither lets the parent's parts be placed safely."""
    if not all(isinstance(parent.get(k), list) for k in ("train", "val", "test")):
        raise TrainingError(f"warm start from {parent_id}: its card keeps no train/val/test split (trained "
                            "before okng stored one), so the child's test parts could be ones the parent "
                            "trained on; train without --warm-start, or retrain the parent first")
    if (parent.get("group_by") or None) != (group_by or None):
        raise TrainingError(f"warm start from {parent_id} needs --group-by {parent.get('group_by') or '(none)'}, "
                            "as the parent's split kept those groups whole")
    set_of = {int(pid): name for name in ("train", "val", "test") for pid in parent[name]}
    names = [set_of.get(int(pid)) for pid in part_ids]
    if groups is not None:  # a group that has a set already keeps all its parts there
        group_set = {g: n for g, n in zip(groups, names) if n is not None and g not in (None, "")}
        names = [n or (group_set.get(g) if g not in (None, "") else None) for g, n in zip(groups, names)]
    new = np.array([i for i, n in enumerate(names) if n is None], dtype=np.int64)
    if len(new):
        fresh = split_parts(np.asarray(targets)[new], val_fraction, test_fraction, seed,
                            None if groups is None else [groups[int(i)] for i in new])
        for name in ("train", "val", "test"):
            for i in getattr(fresh, name):
                names[int(new[int(i)])] = name
    idx = np.arange(len(part_ids))
    pick = np.asarray(names, dtype=object)
    return PartSplit(idx[pick == "train"], idx[pick == "val"], idx[pick == "test"])


# What a split field may say (case and spaces ignored): the names in use in public datasets.
SET_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
             "dev": "val", "test": "test", "testing": "test"}


def field_split(project_path: Any, config: Any, part_ids: Sequence[int], targets: np.ndarray,
                groups: Sequence[object] | None) -> PartSplit:
    """A fixed split read from a part field (config.split_field, e.g. the "split" column of an
    import): a lab's agreed validation and test parts, or a benchmark's published split, so two
    runs or two tools are judged on the same parts. A part without a value is split afresh (as a
    warm start places new parts); a value that names no set is an error, never a silent draw."""
    from labeling.store import Project
    field = str(config.split_field)
    parts = Project.open(project_path, readonly=True).parts()
    raw = {p.id: str(p.fields.get(field) or "").strip() for p in parts}
    values = [raw.get(int(pid), "") for pid in part_ids]
    bad = sorted({v for v in values if v and v.lower() not in SET_NAMES})
    if bad:
        raise TrainingError(f"split field {field!r}: {', '.join(repr(b) for b in bad[:5])} name no set "
                            f"(expected train, val or test)")
    record: dict[str, Any] = {"train": [], "val": [], "test": [], "group_by": config.group_by}
    for pid, v in zip(part_ids, values):
        if v:
            record[SET_NAMES[v.lower()]].append(int(pid))
    if not any(record[k] for k in ("train", "val", "test")):
        known = sorted({k for p in parts for k in p.fields})
        raise TrainingError(f"no labelled part has a field {field!r} to split by "
                            f"(fields of the parts: {', '.join(known) or 'none'})")
    return inherit_split(record, f"split field {field!r}", part_ids, targets, config.val_fraction,
                         config.test_fraction, config.seed, groups, config.group_by)


def draw_split(project_path: Any, config: Any, part_ids: Sequence[int], targets: np.ndarray,
               groups: Sequence[object] | None) -> PartSplit:
    """The split a training run uses (config: a TrainConfig): its parent's for a warm start, the
    parts' own for a split field, else a fresh stratified draw."""
    if config.split_field:
        return field_split(project_path, config, part_ids, targets, groups)
    if not config.warm_start:
        return split_parts(targets, config.val_fraction, config.test_fraction, config.seed, groups)
    from labeling.store import Project

    from .card import read_card
    parent = read_card(Project.open(project_path, readonly=True), config.warm_start)
    return inherit_split(parent.split, parent.id, part_ids, targets, config.val_fraction, config.test_fraction,
                         config.seed, groups, config.group_by)
