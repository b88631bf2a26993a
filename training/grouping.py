"""Which imported part field a split groups by when the user does not say (`--group-by auto`).

A dataset often holds several pictures of one physical item: KolektorSDD has eight photos of each
commutator (its `item` column), an X-ray scan is cut into crops, a lab shoots one bolt from two
sides into two parts. Split part by part, an item's pictures land on both sides and the test
figures reward the model for recognising the item, not the defect. So where the parts carry a
field named for the item (GROUP_FIELDS), the split groups by it unless the user says otherwise.

Matched by name, never by statistics: KolektorSDD's image `height` column also repeats across
parts (45 values over 381 parts) without naming an item, and its `fold` column (3 values) would
leave too few groups to split.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

AUTO = "auto"  # the CLI's default: resolve with auto_group_by
NONE = "none"  # the CLI's word for "each part alone"
# Field names (case-insensitive, first match wins) that say which physical item a part shows.
GROUP_FIELDS = ("item", "item_id", "serial", "serial_number", "specimen", "sample", "group")


def suggest(fields: Iterable[str]) -> str | None:
    """The field of `fields` to group by, or None."""
    by_name = {f.casefold(): f for f in fields}
    return next((by_name[g] for g in GROUP_FIELDS if g in by_name), None)


def auto_group_by(project_path: str | Path, warm_start: str | None = None) -> tuple[str | None, str]:
    """The field a run groups its split by when not told, and one line saying why ('' when
    there is nothing to say). A warm start keeps its parent's grouping: the child inherits the
    parent's split (training.splits.inherit_split), which a new grouping would contradict."""
    from labeling.h5io import ProjectError
    from labeling.store import Project

    from .card import read_card
    project = Project.open(project_path, readonly=True)
    if warm_start:
        try:
            parent = read_card(project, warm_start).split or {}
        except ProjectError:  # no such model: the run itself says so
            return None, ""
        field = parent.get("group_by") or None
        return field, (f"split grouped by {field!r} as its parent {warm_start}'s" if field else "")
    parts = [p for p in project.parts() if p.fields]
    field = suggest({k for p in parts for k in p.fields})
    if field is None:
        return None, ""
    values = {p.fields.get(field) for p in parts} - {None, ""}
    with_value = sum(p.fields.get(field) not in (None, "") for p in parts)
    return field, (f"split grouped by the parts' {field!r} field ({with_value} parts, {len(values)} values): "
                   f"pictures of one {field} stay on one side, so the test figures are not flattered by items "
                   f"seen in training (--group-by none splits part by part)")


def resolve(value: str | None, project_path: str | Path, warm_start: str | None = None) -> tuple[str | None, str]:
    """A --group-by value (a field, AUTO or NONE; None reads as NONE) as the field to group by or
    None, and the line saying why auto chose it ('' otherwise)."""
    if value in (None, "", NONE):
        return None, ""
    if value == AUTO:
        return auto_group_by(project_path, warm_start)
    return value, ""
