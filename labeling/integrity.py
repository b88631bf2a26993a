"""Verify a project file end to end, and copy what is readable out of a damaged one.

`check_project` reads every object a user cares about (part index, audit trail, every view's
pixels and mask with their fletcher32 checksums, every model, the journal) and reports each
problem as one line naming the part, view or model. `salvage_project` copies every readable
part, label, mask and model into a fresh file and lists what was lost.

A truncated file is opened through a copy padded back to the length HDF5 expects: objects
written before the cut usually sit early in the file and read fine; what lay past the cut
fails on access and is listed. Neither function changes the damaged file or its journal.

Both are long jobs (`fn(spec..., progress, should_stop) -> report`), and neither raises on
damage it can describe: a diagnostic that crashes on the damage it should report is useless.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import journal, logtail
from .h5io import ProjectDamaged, ProjectError, transaction, truncation
from .progress import Progress, ProgressFn, StopFn, never_stop, no_progress
from .store import FORMAT, Project
from .types import PartSource, Settings


def _why(exc: BaseException) -> str:
    low = str(exc).lower()
    if "checksum" in low or "fletcher" in low or "filter returned failure" in low:
        return "checksum mismatch or corrupt data: the stored bytes were changed"
    if isinstance(exc, KeyError):
        return "missing from the file"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unreadable ({type(exc).__name__}: {text})"[:200]


SALVAGED_TORN = "the kept rows are copied"


@dataclass
class CheckReport:
    """What `okng check` found; `ok` is True only when nothing is damaged or lost."""

    path: str
    ok: bool = True
    opened: bool = False
    truncated: dict[str, int] | None = None
    parts: int = 0
    views: int = 0
    masks: int = 0
    models: int = 0
    events: int = 0
    datasets: int = 0
    checksummed: int = 0          # datasets with a fletcher32 filter (older files: none)
    unreferenced_groups: int = 0  # an interrupted add_part leaves one: harmless
    journal: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SalvageReport:
    """What `okng salvage` copied into the new file and what it could not."""

    source: str
    dest: str
    parts: int = 0
    views: int = 0
    masks: int = 0
    labels: int = 0
    events: int = 0
    models: int = 0
    journal_records: int = 0
    lost: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def open_readable(path: Path) -> Iterator[tuple[h5py.File, dict[str, int] | None]]:
    """The file for reading, through a zero-padded copy when it was cut short.

    Yields (file, None) or (file, {"have": bytes, "want": bytes}); ProjectDamaged when even
    that does not open (header destroyed)."""
    path = Path(path)
    with ExitStack() as stack:
        try:
            f = stack.enter_context(transaction(path, "r"))
        except ProjectDamaged as exc:
            cut = truncation(exc.__cause__) if exc.__cause__ is not None else None
            if cut is None:
                raise
        else:
            yield f, None
            return
    have, want = cut
    with tempfile.TemporaryDirectory(prefix="okng-salvage-") as tmp:
        padded = Path(tmp) / path.name
        shutil.copyfile(path, padded)
        os.truncate(padded, want)
        try:
            f = h5py.File(padded, "r")
        except OSError as exc:
            raise ProjectDamaged(f"{path.name}: damaged project file (truncated: {have:,} of {want:,} "
                                 f"bytes present; unreadable even padded: {_why(exc)})") from exc
        try:
            yield f, {"have": have, "want": want}
        finally:
            f.close()


def _part_ids(f: h5py.File, rows: dict[int, dict[str, Any]]) -> list[int]:
    ids = set(rows)
    try:
        ids |= {int(k) for k in f["parts"] if k.isdigit()}
    except Exception:  # noqa: BLE001 - a damaged group index: the part index still names parts
        return sorted(ids)
    return sorted(ids)


def _view_names(g: h5py.Group) -> list[str]:
    return sorted((k for k in g if k.startswith("v") and k[1:].isdigit()), key=lambda k: int(k[1:]))


def _read_rows(f: h5py.File, project: str, group: str, name: str, what: str, problems: list[str],
               torn_outcome: str) -> list[dict[str, Any]]:
    """A log's rows; damage is a line in `problems`. A last chunk torn by a writer killed
    mid-append is named as such (not as changed bytes), with its verified rows kept:
    `torn_outcome` says what becomes of them."""
    try:
        rows, torn = logtail.read_log(f[group], name, what)
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError("a row is not a record")
        if torn is not None:
            problems.append(torn.message(project, torn_outcome))
        return rows
    except Exception as exc:  # noqa: BLE001 - any damage is reported, not raised
        problems.append(f"{what}: {_why(exc)}")
        return []


def _read_logs(f: h5py.File, path: Path, problems: list[str],
               torn_outcome: str) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """The part index by id and the audit trail, as check and salvage both read them. `path` is
    the project's own (a truncated file is read through a padded copy of another name)."""
    rows = {int(r["id"]): r for r in _read_rows(f, path.name, "index", "parts", "part index", problems,
                                                 torn_outcome) if isinstance(r.get("id"), int)}
    events = _read_rows(f, path.name, "events", "log", "audit trail of labels, reviews and masks", problems,
                        torn_outcome)
    return rows, events


def _journal_state(path: Path, project_id: str) -> dict[str, Any]:
    size = journal.size(path)
    if not size:
        return {"state": "none"}
    try:
        recs = journal.verify(path, project_id)
    except journal.JournalRejected as exc:
        return {"state": "rejected", "bytes": size, "reason": str(exc)}
    return {"state": "pending", "bytes": size, "records": len(recs)}


def check_project(path: str | Path, progress: ProgressFn = no_progress,
                  should_stop: StopFn = never_stop) -> CheckReport:
    """Read everything in `path` once and report what is damaged (the file is not changed)."""
    path = Path(path)
    rep = CheckReport(str(path))
    if not path.exists():
        rep.problem(f"{path.name}: no such file")
        return rep
    try:
        with open_readable(path) as (f, cut):
            rep.opened = True
            if cut is not None:
                rep.truncated = cut
                rep.problem(f"file truncated: {cut['have']:,} of {cut['want']:,} bytes present")
            _check_file(f, path, rep, progress, should_stop)
    except ProjectError as exc:
        rep.problem(str(exc))
    except Exception as exc:  # noqa: BLE001 - HDF5 can fail anywhere in a damaged file
        rep.problem(f"{path.name}: {_why(exc)}")
    return rep


def _check_file(f: h5py.File, path: Path, rep: CheckReport, progress: ProgressFn, should_stop: StopFn) -> None:
    problems: list[str] = []
    if f.attrs.get("okng_format") != FORMAT:
        rep.problem("not an okng project (okng_format attribute missing or wrong)")
    try:
        Settings.from_dict(json.loads(f.attrs["settings"]))
    except Exception as exc:  # noqa: BLE001
        rep.problem(f"project settings: {_why(exc)}")
    project_id = str(f.attrs.get("project_id", ""))
    rows, events = _read_logs(f, path, problems, logtail.UNREPAIRED)
    rep.events = len(events)
    ids = _part_ids(f, rows)
    for k, pid in enumerate(ids):
        if should_stop():
            problems.append("check stopped before the end")
            break
        progress(Progress("check", k, len(ids), f"part {pid}"))
        row = rows.get(pid)
        if row is None:
            rep.unreferenced_groups += 1
            continue
        rep.parts += 1
        bad: list[tuple[int, str, str]] = []
        for v in range(len(row.get("views", []))):
            for name in ("image", "mask"):
                try:
                    g = f[f"parts/{pid}/v{v}"]
                    if name == "mask" and "mask" not in g:
                        continue
                    _read_counted(g[name], rep)
                    rep.views += name == "image"
                    rep.masks += name == "mask"
                except Exception as exc:  # noqa: BLE001
                    bad.append((v, "pixels" if name == "image" else "mask", _why(exc)))
                    if name == "image":
                        break  # its mask is then beside the point
        problems.extend(_part_lines(pid, row, bad))
    for mid in _model_ids(f, problems):
        try:
            g = f["models"][mid]
            json.loads(g.attrs["meta"])
            _read_counted(g["checkpoint"], rep)
            rep.models += 1
        except Exception as exc:  # noqa: BLE001
            problems.append(f"model {mid}: {_why(exc)}")
    rep.journal = _journal_state(path, project_id)
    if rep.journal["state"] == "rejected":
        problems.append(f"journal: {rep.journal['reason']} (the next writable open moves it aside)")
    for p in problems:
        rep.problem(p)
    progress(Progress("check", len(ids), len(ids), "done"))


def _read_counted(ds: h5py.Dataset, rep: CheckReport) -> None:
    """Read a whole dataset (its checksums are verified on read) and count it."""
    rep.datasets += 1
    rep.checksummed += int(bool(ds.fletcher32))
    ds[()]


def _model_ids(f: h5py.File, lines: list[str]) -> list[str]:
    """The stored models' ids; none, and a line in `lines`, when the models group is unreadable."""
    try:
        return list(f["models"].keys()) if "models" in f else []
    except Exception as exc:  # noqa: BLE001
        lines.append(f"models: {_why(exc)}")
        return []


def _part_lines(pid: int, row: dict[str, Any], bad: list[tuple[int, str, str]]) -> list[str]:
    """One line per part and reason: 'part 3 (bolts-00002) views 0, 1, 2, 3 pixels: missing'."""
    by: dict[tuple[str, str], list[int]] = {}
    for v, what, why in bad:
        by.setdefault((what, why), []).append(v)
    label = f"part {pid} ({row.get('name', '')})"
    return [f"{label} view{'s' if len(vs) > 1 else ''} {', '.join(map(str, vs))} {what}: {why}"
            for (what, why), vs in by.items()]


def salvage_project(path: str | Path, dest: str | Path, progress: ProgressFn = no_progress,
                    should_stop: StopFn = never_stop) -> SalvageReport:
    """Copy every readable part (pixels, masks, labels, reviews, predictions) and model of
    `path` into the new project `dest`; the report lists what was lost, one line each."""
    path, dest = Path(path), Path(dest)
    if not path.exists():
        raise ProjectError(f"{path}: no such project file")
    if dest.exists():
        raise ProjectError(f"{dest} already exists: salvage writes a new file")
    if dest.resolve() == path.resolve():
        raise ProjectError("salvage needs a new file, not the damaged one")
    rep = SalvageReport(str(path), str(dest))
    with open_readable(path) as (f, cut):
        if cut is not None:
            rep.lost.append(f"file truncated: {cut['have']:,} of {cut['want']:,} bytes present; "
                            f"whatever lay past the cut")
        try:
            settings = Settings.from_dict(json.loads(f.attrs["settings"]))
        except Exception as exc:  # noqa: BLE001
            settings = Settings()
            rep.lost.append(f"project settings (defaults used): {_why(exc)}")
        new = Project.create(dest, settings)
        rows, events = _read_logs(f, path, rep.lost, SALVAGED_TORN)
        by_part: dict[int, list[dict[str, Any]]] = {}
        for ev in events:
            if isinstance(ev.get("part"), int):
                by_part.setdefault(ev["part"], []).append(ev)
        ids = _part_ids(f, rows)
        remap: dict[int, int] = {}
        for k, pid in enumerate(ids):
            if should_stop():
                rep.lost.append(f"salvage stopped: parts from {pid} on not copied")
                break
            progress(Progress("salvage", k, len(ids), f"part {pid}"))
            new_pid = _copy_part(f, new, pid, rows.get(pid), rep)
            if new_pid is not None:
                remap[pid] = new_pid
                for ev in by_part.get(pid, []):
                    _copy_event(new, ev, new_pid, rep)
        _copy_pending_journal(path, f, new, remap, rep)
        _copy_models(f, new, rep)
    progress(Progress("salvage", len(ids), len(ids), "done"))
    return rep


def _copy_part(f: h5py.File, new: Project, pid: int, row: dict[str, Any] | None, rep: SalvageReport) -> int | None:
    name = (row or {}).get("name") or f"part {pid}"
    if row is None:
        # Pixels without an index row: an interrupted add_part (never acknowledged), or an index
        # lost to damage. Copied only when the index itself is unreadable... we cannot tell the
        # two apart, so keep the pixels: a user can delete a stray part, not recreate a lost one.
        try:
            views = _view_names(f["parts"][str(pid)])
        except Exception as exc:  # noqa: BLE001
            rep.lost.append(f"part {pid}: {_why(exc)}")
            return None
        if not views:
            return None
        row = {"views": [{"camera": f"cam{i}"} for i in range(len(views))], "meta": {}}
        name = f"recovered-{pid}"
    images, masks = [], []
    for v in range(len(row.get("views", []))):
        g = f"parts/{pid}/v{v}"
        try:
            images.append(f[g]["image"][()])
        except Exception as exc:  # noqa: BLE001
            rep.lost.append(f"part {pid} ({name}): view {v} pixels {_why(exc)}; part not copied")
            return None
        try:
            masks.append(f[g]["mask"][()] if "mask" in f[g] else None)
        except Exception as exc:  # noqa: BLE001
            masks.append(None)
            rep.lost.append(f"part {pid} ({name}): view {v} mask {_why(exc)}")
    if not images:
        rep.lost.append(f"part {pid} ({name}): no views")
        return None
    cams = [str(v.get("camera", f"cam{i}")) for i, v in enumerate(row["views"])]
    source = row.get("source", "capture")
    source = source if source in {s.value for s in PartSource} else "capture"
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    meta = dict(meta, salvaged_from=pid)
    try:
        new_pid = new.add_part(images, cameras=cams, name=str(name), source=source, masks=masks, meta=meta)
    except ProjectError as exc:
        # A mask the project's classes do not allow: keep the pixels, say the masks are gone.
        try:
            new_pid = new.add_part(images, cameras=cams, name=str(name), source=source, meta=meta)
        except ProjectError:
            rep.lost.append(f"part {pid} ({name}): {exc}")
            return None
        rep.lost.append(f"part {pid} ({name}): masks not copied ({exc})")
        masks = []
    rep.parts += 1
    rep.views += len(images)
    rep.masks += sum(m is not None for m in masks)
    return new_pid


_PART_OPS = ("label", "review", "prediction", "delete")


def _copy_event(new: Project, ev: dict[str, Any], new_pid: int, rep: SalvageReport) -> None:
    """Copy one audit-trail event of a copied part (masks came with the part's pixels)."""
    if ev.get("op") not in _PART_OPS:
        return
    rec = {k: v for k, v in ev.items() if k not in ("seq", "pid", "crc")}
    rec["part"] = new_pid
    try:
        new.commit_copied(rec)  # the event keeps its user and time
    except Exception as exc:  # noqa: BLE001 - a malformed event is one lost line, not a crash
        rep.lost.append(f"part {ev.get('part')}: {ev.get('op')} event {_why(exc)}")
        return
    rep.events += 1
    rep.labels += ev["op"] == "label"


def _copy_pending_journal(path: Path, f: h5py.File, new: Project, remap: dict[int, int], rep: SalvageReport) -> None:
    """Acknowledged changes still in the journal (killed before they were applied)."""
    if not journal.size(path):
        return
    try:
        recs = journal.verify(path, str(f.attrs.get("project_id", "")))
    except journal.JournalRejected as exc:
        rep.lost.append(f"journal not copied: {exc}")
        return
    done = int(f.attrs.get("journal_seq", 0))
    for rec in recs:
        if int(rec.get("seq", 0)) <= done or rec.get("op") not in (*_PART_OPS, "mask"):
            continue
        old = rec.get("part")
        if old not in remap:
            rep.lost.append(f"journal record {rec.get('seq')} ({rec.get('op')}): part {old} not copied")
            continue
        out = {k: v for k, v in rec.items() if k not in ("seq", "pid", "crc")}
        out["part"] = remap[old]
        try:
            new.commit_copied(out)
            rep.journal_records += 1
        except Exception as exc:  # noqa: BLE001
            rep.lost.append(f"journal record {rec.get('seq')} ({rec.get('op')}): {_why(exc)}")


def _copy_models(f: h5py.File, new: Project, rep: SalvageReport) -> None:
    active = str(f.attrs.get("active_model", ""))
    for mid in _model_ids(f, rep.lost):
        try:
            g = f["models"][mid]
            meta = json.loads(g.attrs["meta"])
            blob = np.asarray(g["checkpoint"][()], dtype=np.uint8).tobytes()
        except Exception as exc:  # noqa: BLE001
            rep.lost.append(f"model {mid}: {_why(exc)}")
            continue
        new.save_model(mid, meta, blob)
        rep.models += 1
        if mid == active:
            new.set_active_model(mid)
