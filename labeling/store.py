"""The project store: one HDF5 file per project.

Layout (version 1)::

    /                      attrs: okng_format, okng_version, settings (JSON), journal_seq,
                                  active_model
    /index/parts           JSON lines in a uint8 dataset, one row per part (id, name, created,
                           source, views, meta)
    /events/log            JSON lines in a uint8 dataset, append-only audit trail: label,
                           review, mask, prediction, delete, settings events (old values are
                           never overwritten)
    /parts/<id>/v<k>/image chunked, lzf-compressed pixels (uint8/uint16, gray or RGB)
    /parts/<id>/v<k>/mask  uint8 class index (0 = background), same H x W as the image
    /models/<id>           attrs meta (JSON); dataset checkpoint (uint8 bytes)

Durability: see journal.py (small changes are journalled and fsync'd before they are applied)
and h5io.py (every operation is one open-write-flush-close transaction, so nothing is lost when
the process dies between operations, and other processes can read consistent snapshots).
A new part's pixels are written before its index row, so an interrupted add_part leaves at most
an unreferenced group, never a half part. A log chunk torn by a writer killed mid-append is read
as far as its checksum proves and repaired by the next writable open (logtail.py).
"""
from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import journal, logtail, masktools
from .h5io import ProjectDamaged, ProjectError, append_json, damaged_message, transaction, write_array
from .types import (
    ROI,
    SYSTEM_USER,
    Label,
    LabelCheck,
    Part,
    PartSource,
    Prediction,
    Review,
    ReviewStatus,
    Settings,
    User,
    Verdict,
    ViewInfo,
)

FORMAT = "okng-project"
VERSION = 1
Listener = Callable[[dict[str, Any]], None]
log = logging.getLogger(__name__)
# ProjectError and ProjectDamaged live in h5io (the lowest layer raises them); importable here.
__all__ = ["Project", "ProjectDamaged", "ProjectError", "iter_labeled"]


def _check_image(img: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.uint16):
        raise ProjectError(f"{what}: pixel type {img.dtype} not supported (uint8 or uint16)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ProjectError(f"{what}: shape {img.shape} is neither gray (H,W) nor RGB (H,W,3)")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ProjectError(f"{what}: empty image")
    return np.ascontiguousarray(img)


def _image_compression(img: np.ndarray) -> tuple[str | None, int | None]:
    """lzf (+shuffle) for 16-bit X-ray; none for 8-bit photos.

    Measured: sensor noise makes 8-bit camera frames nearly incompressible losslessly (lzf
    kept 99.7 % of the bytes) while costing most of add_part's time; 16-bit strips with the
    byte-shuffle filter do shrink.
    """
    return ("lzf", None) if img.dtype == np.uint16 else (None, None)


class Project:
    """A project file. Cheap to keep open: no HDF5 handle is held between calls."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.settings = Settings()
        self.active_model_id: str | None = None
        self._parts: dict[int, Part] = {}
        self._events: list[dict[str, Any]] = []
        self._listeners: list[Listener] = []
        # Model metadata read with the index: the window's slots (status bar, model lists) ask
        # for it and must not open the HDF5 file. A model another process saved since is read
        # on demand; reload() refreshes everything.
        self._model_metas: dict[str, dict[str, Any]] = {}
        self.project_id = ""
        # What opening or replaying had to leave out (a rejected journal, a record for a
        # missing part): one line each, also logged as warnings.
        self.warnings: list[str] = []

    # ---------------------------------------------------------------- open / create
    @classmethod
    def create(cls, path: str | Path, settings: Settings | None = None, overwrite: bool = False) -> Project:
        path = Path(path)
        if path.exists() and not overwrite:
            raise ProjectError(f"{path} already exists (use overwrite to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        journal.truncate(path)
        with transaction(path, "w") as f:
            f.attrs["okng_format"] = FORMAT
            f.attrs["okng_version"] = VERSION
            f.attrs["settings"] = json.dumps((settings or Settings()).to_dict())
            f.attrs["journal_seq"] = 0
            f.attrs["active_model"] = ""
            f.attrs["project_id"] = uuid.uuid4().hex
            f.create_group("parts")
            f.create_group("index")
            f.create_group("events")
            f.create_group("models")
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> Project:
        path = Path(path)
        if not path.exists():
            raise ProjectError(f"{path}: no such project file")
        if not h5py.is_hdf5(path):
            raise ProjectError(f"{path}: not an HDF5 file (is it an okng project?)")
        proj = cls(path, readonly)
        if not readonly:
            proj._replay_journal()
        proj.reload()
        return proj

    def reload(self) -> None:
        """Re-read index and events (e.g. after another process wrote).

        The new caches are built aside and swapped in at the end, so a thread reading this
        handle meanwhile sees the old state or the new one, never a half-filled part table
        (in the window only the store-writer thread reloads; Workers read).
        """
        try:
            with transaction(self.path, "r") as f:
                if f.attrs.get("okng_format") != FORMAT:
                    raise ProjectError(f"{self.path}: HDF5 file is not an okng project")
                if int(f.attrs.get("okng_version", 0)) > VERSION:
                    raise ProjectError(f"{self.path}: written by a newer okng (format "
                                       f"{int(f.attrs['okng_version'])}); please upgrade")
                settings = Settings.from_dict(json.loads(f.attrs["settings"]))
                active = str(f.attrs.get("active_model", "")) or None
                project_id = str(f.attrs.get("project_id", ""))
                rows, torn_index = logtail.read_log(f["index"], "parts", "part index")
                events, torn_events = logtail.read_log(f["events"], "log", "audit trail")
                metas = {k: dict(json.loads(g.attrs["meta"]), id=k) for k, g in f.get("models", {}).items()}
        except ProjectError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ProjectDamaged(damaged_message(self.path, exc)) from exc
        try:
            fresh = self._fresh(rows, events, settings, active)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise ProjectDamaged(damaged_message(self.path, ValueError(
                f"unreadable part index or audit trail: {type(exc).__name__} {exc}"))) from exc
        for torn in (torn_index, torn_events):  # a writer killed mid-append; said once per handle
            text = torn.message(self.path.name, logtail.UNREPAIRED) if torn else ""
            if text and text not in self.warnings:
                self._warn(text)
        self._parts, self._events, self._model_metas = fresh._parts, fresh._events, metas
        self.settings, self.active_model_id = fresh.settings, fresh.active_model_id
        self.project_id = project_id

    def _fresh(self, rows: list[dict[str, Any]], events: list[dict[str, Any]], settings: Settings,
               active: str | None) -> Project:
        """New caches built aside from the rows read (KeyError/TypeError... on a damaged index)."""
        fresh = Project(self.path, self.readonly)
        fresh.settings, fresh.active_model_id = settings, active
        # ViewInfo is immutable and most parts share camera/shape/dtype: intern them, which
        # keeps opening a 10,000-part project cheap.
        interned: dict[tuple, ViewInfo] = {}
        sources = {s.value: s for s in PartSource}
        for row in rows:
            views = []
            for i, v in enumerate(row["views"]):
                key = (i, v["camera"], tuple(v["shape"]), v["dtype"])
                views.append(interned.get(key) or interned.setdefault(key, ViewInfo(*key)))
            fresh._parts[row["id"]] = Part(
                id=row["id"], name=row.get("name", ""), created=row["created"],
                source=sources[row.get("source", "capture")], views=views, meta=row.get("meta", {}))
        for ev in events:
            fresh._apply_event_to_cache(ev)
        return fresh

    def snapshot(self, part_ids: Iterable[int] = ()) -> Project:
        """A read-only handle holding copies of these parts, the settings and the model metadata
        (no file access: cheap in a GUI slot). For a Worker thread that reads a few parts' pixels
        while the window's handle keeps changing; it never sees those changes."""
        snap = Project(self.path, readonly=True)
        snap.settings = copy.deepcopy(self.settings)
        snap.active_model_id = self.active_model_id
        snap._parts = {int(i): copy.deepcopy(self.part(i)) for i in part_ids}
        snap._model_metas = copy.deepcopy(self._model_metas)
        return snap

    # ---------------------------------------------------------------- listeners
    def add_listener(self, fn: Listener) -> None:
        """fn(event) after every change made through this object (Qt models adapt this)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, event: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            fn(event)

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.part_ids())

    def part_ids(self) -> list[int]:
        # list(): the GUI's writer thread may add a part while another thread iterates.
        return [pid for pid, p in list(self._parts.items()) if not p.meta.get("deleted")]

    def parts(self, include_deleted: bool = False) -> list[Part]:
        return [p for p in list(self._parts.values()) if include_deleted or not p.meta.get("deleted")]

    def part(self, part_id: int) -> Part:
        try:
            return self._parts[int(part_id)]
        except KeyError:
            raise ProjectError(f"no part {part_id} in {self.path.name}") from None

    def _view_path(self, part_id: int, view: int) -> str:
        p = self.part(part_id)
        if not 0 <= view < len(p.views):
            raise ProjectError(f"part {part_id} has {len(p.views)} views, not view {view}")
        return f"parts/{part_id}/v{view}"

    def _unreadable(self, what: str, exc: BaseException) -> ProjectDamaged:
        low = str(exc).lower()
        why = ("checksum mismatch or corrupt data: the stored bytes were changed"
               if "checksum" in low or "fletcher" in low or "filter returned failure" in low
               else "missing from the file" if isinstance(exc, KeyError) else f"unreadable: {exc}")
        return ProjectDamaged(f"{self.path.name}: {what}: {why}; `okng check` lists what is readable")

    def read_image(self, part_id: int, view: int = 0, roi: ROI | None = None) -> np.ndarray:
        """Pixels of one view (or of an ROI of it: only the chunks it touches are read)."""
        key = self._view_path(part_id, view)
        with transaction(self.path, "r") as f:
            try:
                ds = f[key]["image"]
                if roi is None:
                    return ds[()]
                r = roi.clip(ds.shape[1], ds.shape[0])
                return ds[r.y:r.y + r.h, r.x:r.x + r.w]
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                raise self._unreadable(f"part {part_id} view {view} pixels", exc) from exc

    def read_mask(self, part_id: int, view: int = 0) -> np.ndarray | None:
        key = self._view_path(part_id, view)
        with transaction(self.path, "r") as f:
            try:
                g = f[key]
                return g["mask"][()] if "mask" in g else None
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                raise self._unreadable(f"part {part_id} view {view} mask", exc) from exc

    def read_proposal(self, part_id: int, view: int = 0) -> tuple[np.ndarray, str] | None:
        """A segmentation model's proposed mask of a view and the model's id (None: no proposal).

        Kept apart from the inspector's mask ("mask"): a proposal becomes a mask only when
        someone accepts it (set_mask), so a model never writes over what a person drew."""
        key = self._view_path(part_id, view)
        with transaction(self.path, "r") as f:
            g = f[key]
            return (g["proposal"][()], str(g["proposal"].attrs.get("model", ""))) if "proposal" in g else None

    def read_views(self, part_id: int) -> list[np.ndarray]:
        p = self.part(part_id)
        out = []
        with transaction(self.path, "r") as f:
            for i in range(len(p.views)):
                try:
                    out.append(f[f"parts/{part_id}/v{i}/image"][()])
                except (OSError, KeyError, ValueError, RuntimeError) as exc:
                    raise self._unreadable(f"part {part_id} view {i} pixels", exc) from exc
        return out

    def events(self, part_id: int | None = None) -> list[dict[str, Any]]:
        """The audit trail (all parts, or one), oldest first."""
        return [e for e in list(self._events) if part_id is None or e.get("part") == part_id]

    def label_history(self, part_id: int) -> list[Label]:
        return [Label.from_dict(e["label"]) for e in self.events(part_id) if e["op"] == "label"]

    def review_history(self, part_id: int) -> list[Review]:
        return [Review.from_dict(e["review"]) for e in self.events(part_id) if e["op"] == "review"]

    def predictions(self, part_id: int) -> list[Prediction]:
        return [Prediction.from_dict(e["prediction"]) for e in self.events(part_id) if e["op"] == "prediction"]

    # ---------------------------------------------------------------- adding parts
    def add_part(self, images: Sequence[np.ndarray], *, cameras: Sequence[str] | None = None,
                 name: str = "", source: PartSource | str = PartSource.CAPTURE,
                 masks: Sequence[np.ndarray | None] | None = None, meta: dict[str, Any] | None = None,
                 label: Label | None = None, user: User = SYSTEM_USER, part_id: int | None = None) -> int:
        """Store a part with its views (and optional masks/label); returns its id.

        `user` is recorded in the audit trail for the masks that come with the part. `part_id`
        keeps an id given by the caller (a training snapshot keeps the project's ids, so the model
        card it yields names the project's parts); it must be unused."""
        self._writable()
        if len(images) == 0:
            raise ProjectError("a part needs at least one view")
        imgs = [_check_image(im, f"view {i}") for i, im in enumerate(images)]
        cams = list(cameras) if cameras is not None else [
            self.settings.cameras[i] if i < len(self.settings.cameras) else f"cam{i}" for i in range(len(imgs))]
        if len(cams) != len(imgs):
            raise ProjectError(f"{len(imgs)} views but {len(cams)} camera names")
        mlist = list(masks) if masks is not None else [None] * len(imgs)
        for i, m in enumerate(mlist):
            if m is not None:
                mlist[i] = self._check_mask(m, imgs[i].shape[:2], f"view {i}")
        source = PartSource(source)
        with transaction(self.path, "a") as f:
            for text in logtail.repair_and_replay(f, self.path):  # another writer's torn append
                self._warn(text)
            nxt = int(f.attrs.get("next_part_id", 1))
            pid = nxt if part_id is None else int(part_id)
            if part_id is not None and (pid < 1 or str(pid) in f["parts"] or pid in self._parts):
                raise ProjectError(f"part id {pid} is taken")
            if part_id is None and str(pid) in f["parts"]:
                # Left by an add_part killed before its index row (or before next_part_id was
                # flushed): never shown, so dropped, not reused; its mask or extra views would
                # otherwise surface as this new part's.
                del f["parts"][str(pid)]
            g = f["parts"].require_group(str(pid))
            for i, img in enumerate(imgs):
                vg = g.require_group(f"v{i}")
                write_array(vg, "image", img, *_image_compression(img))
                if mlist[i] is not None:
                    write_array(vg, "mask", mlist[i], "lzf")
            row = {"id": pid, "name": name or f"part-{pid:06d}", "created": time.time(),
                   "source": source.value, "meta": meta or {},
                   "views": [{"camera": c, "shape": list(im.shape), "dtype": str(im.dtype)}
                             for c, im in zip(cams, imgs)]}
            # The index row makes the part visible: written last.
            append_json(f["index"], "parts", [row])
            f.attrs["next_part_id"] = max(nxt, pid + 1)
        self._parts[pid] = Part(pid, row["name"], row["created"], source,
                                [ViewInfo(i, c, tuple(im.shape), str(im.dtype), mlist[i] is not None)
                                 for i, (c, im) in enumerate(zip(cams, imgs))], meta=row["meta"])
        for i, m in enumerate(mlist):
            if m is not None:
                self._commit({"op": "mask", "part": pid, "view": i, "user": user.to_dict(),
                              "has_mask": True})
        if label is not None:
            self._commit({"op": "label", "part": pid, "label": label.to_dict()})
        self._notify({"op": "part_added", "part": pid})
        return pid

    # ---------------------------------------------------------------- journalled changes
    def set_label(self, part_id: int, verdict: Verdict | str | int,
                  defect_class: int | str | Sequence[int | str] = 0,
                  user: User = SYSTEM_USER, comment: str = "") -> Label:
        """Label a part; the previous label stays in the history. Durable on return.

        defect_class is one class (1-based index or name) or several (a list, the main one
        first). A retired class takes no new labels (a part that holds one may keep it)."""
        held = self.part(part_id).label
        verdict = Verdict.parse(verdict)
        refs = [defect_class] if isinstance(defect_class, (int, str)) else list(defect_class)
        classes = [self._class_ref(r, held.classes if held else ()) for r in refs]
        classes = [c for c in classes if c]
        if verdict != Verdict.NG and classes:
            raise ProjectError("a defect class only goes with an NG verdict")
        label = Label(verdict, classes[0] if classes else 0, user, time.time(), comment, tuple(classes))
        self._commit({"op": "label", "part": int(part_id), "label": label.to_dict()})
        return label

    def _class_ref(self, ref: int | str, held: Sequence[int] = ()) -> int:
        """1-based index of a class given by index or name (0 / "" = none); checked."""
        if isinstance(ref, str):
            ref = ref.strip()
            # A name unknown raises KeyError naming the known ones.
            ref = int(ref) if ref.isdigit() else self.settings.class_index(ref) if ref else 0
        n = len(self.settings.classes)
        if not 0 <= int(ref) <= n:
            raise ProjectError(f"defect class {ref} out of range 0..{n}")
        if ref and int(ref) not in held and self.settings.classes[int(ref) - 1].retired:
            raise ProjectError(f"defect class {self.settings.classes[int(ref) - 1].name!r} is retired")
        return int(ref)

    def set_mask(self, part_id: int, view: int, mask: np.ndarray | None, user: User = SYSTEM_USER) -> None:
        """Replace a view's mask (None clears it). Durable on return."""
        self._view_path(part_id, view)
        rec: dict[str, Any] = {"op": "mask", "part": int(part_id), "view": int(view),
                               "user": user.to_dict(), "has_mask": mask is not None}
        if mask is not None:
            shape = self.part(part_id).views[view].shape[:2]
            mask = self._check_mask(mask, shape, f"part {part_id} view {view}")
            rec["pixels"] = journal.encode_array(mask)
        if self.part(part_id).views[view].disagreement is not None:  # a proposal to measure against
            prop = self.read_proposal(part_id, view)
            rec["disagreement"] = masktools.disagreement(mask, prop[0] if prop else None)
        self._commit(rec)

    def set_proposal(self, part_id: int, view: int, mask: np.ndarray, model_id: str) -> None:
        """Store a model's proposed class-index mask for a view (replacing its previous one)."""
        self._view_path(part_id, view)
        shape = self.part(part_id).views[view].shape[:2]
        mask = self._check_mask(mask, shape, f"part {part_id} view {view} proposal")
        self._commit({"op": "proposal", "part": int(part_id), "view": int(view), "model": str(model_id),
                      "pixels": journal.encode_array(mask),
                      "disagreement": masktools.disagreement(self.read_mask(part_id, view), mask)})

    def set_review(self, part_id: int, status: ReviewStatus | str, comment: str = "",
                   user: User = SYSTEM_USER) -> Review:
        self.part(part_id)
        review = Review(ReviewStatus(status), comment, user, time.time())
        self._commit({"op": "review", "part": int(part_id), "review": review.to_dict()})
        return review

    def add_prediction(self, part_id: int, prediction: Prediction) -> None:
        self.part(part_id)
        self._commit({"op": "prediction", "part": int(part_id), "prediction": prediction.to_dict()})

    def set_label_checks(self, findings: dict[int, LabelCheck], run: str = "",
                         user: User = SYSTEM_USER) -> None:
        """Record one out-of-fold label check: its findings replace the previous check's (a part
        not listed has no finding any more). One event, so the audit trail shows each run."""
        for pid in findings:
            self.part(pid)
        self._commit({"op": "label_check", "run": run, "user": user.to_dict(),
                      "findings": {str(k): v.to_dict() for k, v in findings.items()}})

    def delete_part(self, part_id: int, user: User = SYSTEM_USER) -> None:
        """Hide a part; its pixels and history stay in the file (audit)."""
        self.part(part_id)
        self._commit({"op": "delete", "part": int(part_id), "user": user.to_dict()})

    def update_settings(self, settings: Settings, user: User = SYSTEM_USER,
                        change: dict[str, Any] | None = None) -> None:
        """Replace the settings; `change` (what was done, e.g. a class merged) is kept with the
        event in the audit trail."""
        rec: dict[str, Any] = {"op": "settings", "settings": settings.to_dict(), "user": user.to_dict()}
        if change:
            rec["change"] = change
        self._commit(rec)

    def set_roi(self, camera: str, roi: ROI | None, user: User = SYSTEM_USER) -> None:
        s = Settings.from_dict(self.settings.to_dict())
        if roi is None:
            s.rois.pop(camera, None)
        else:
            s.rois[camera] = roi
        self.update_settings(s, user)

    def _check_mask(self, mask: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != tuple(shape[:2]):
            raise ProjectError(f"{what}: mask is {mask.shape[1]}x{mask.shape[0]}, image is {shape[1]}x{shape[0]}")
        if mask.dtype != np.uint8:
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise ProjectError(f"{what}: mask values must be class indices 0..255")
            mask = mask.astype(np.uint8)
        top = int(mask.max()) if mask.size else 0
        if top > len(self.settings.classes) and not (top == 255 and not self.settings.classes):
            raise ProjectError(f"{what}: mask uses class {top} but the project has "
                               f"{len(self.settings.classes)} defect classes")
        return np.ascontiguousarray(mask)

    def _writable(self) -> None:
        if self.readonly:
            raise ProjectError(f"{self.path.name} is open read-only")

    def commit_copied(self, record: dict[str, Any]) -> None:
        """Journal and apply a change record copied from another project (salvage: an audit
        event or an acknowledged journal record), keeping its user and time."""
        self._commit(record)

    def _commit(self, record: dict[str, Any]) -> None:
        """Journal (fsync) then apply one change, inside one exclusive transaction."""
        self._writable()
        record.setdefault("time", time.time())
        with transaction(self.path, "a") as f:
            for text in logtail.repair_and_replay(f, self.path):
                self._warn(text)
            seq = int(f.attrs.get("journal_seq", 0)) + 1
            record["seq"] = seq
            journal.append(self.path, record, self._ensure_id(f))
            journal.apply_record(f, record)
            f.attrs["journal_seq"] = seq
            journal.checkpoint(f, self.path)
        event = journal.event_of(record)
        self._apply_event_to_cache(event)
        self._notify(event)

    def _replay_journal(self) -> None:
        for text in logtail.replay_repairing(self.path):
            self._warn(text)

    def _ensure_id(self, f: h5py.File) -> str:
        """The project id journal records are bound to (files older than ids get one now)."""
        pid = str(f.attrs.get("project_id", ""))
        if not pid:
            pid = uuid.uuid4().hex
            f.attrs["project_id"] = pid
        self.project_id = pid
        return pid

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        log.warning("%s", text)

    def _apply_event_to_cache(self, ev: dict[str, Any]) -> None:
        self._events.append(ev)
        self.settings, self.active_model_id = journal.apply_event(
            ev, self._parts, self.settings, self.active_model_id)

    # ---------------------------------------------------------------- models
    def save_model(self, model_id: str, meta: dict[str, Any], checkpoint: bytes) -> None:
        """Store a trained model (checkpoint bytes + JSON metadata) inside the project."""
        self._writable()
        with transaction(self.path, "a") as f:
            models = f.require_group("models")
            if model_id in models:
                del models[model_id]
            g = models.create_group(model_id)
            g.create_dataset("checkpoint", data=np.frombuffer(checkpoint, dtype=np.uint8),
                             chunks=True, fletcher32=True)
            g.attrs["meta"] = json.dumps(meta)
        self._model_metas[model_id] = dict(json.loads(json.dumps(meta)), id=model_id)
        self._notify({"op": "model_saved", "model": model_id})

    def models(self) -> list[dict[str, Any]]:
        with transaction(self.path, "r") as f:
            out = [dict(json.loads(g.attrs["meta"]), id=k) for k, g in f.get("models", {}).items()]
        return sorted(out, key=lambda m: m.get("created", 0.0))

    def model_meta(self, model_id: str) -> dict[str, Any]:
        """A model's metadata (a copy): from the cache when this handle has seen the model."""
        cached = self._model_metas.get(model_id)
        if cached is not None:
            return json.loads(json.dumps(cached))
        with transaction(self.path, "r") as f:
            if model_id not in f.get("models", {}):
                raise ProjectError(f"no model {model_id!r} in {self.path.name}")
            return dict(json.loads(f["models"][model_id].attrs["meta"]), id=model_id)

    def load_checkpoint(self, model_id: str) -> bytes:
        with transaction(self.path, "r") as f:
            if model_id not in f.get("models", {}):
                raise ProjectError(f"no model {model_id!r} in {self.path.name}")
            try:
                return f["models"][model_id]["checkpoint"][()].tobytes()
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                raise self._unreadable(f"model {model_id} checkpoint", exc) from exc

    def set_active_model(self, model_id: str | None, user: User = SYSTEM_USER) -> None:
        if model_id is not None:
            self.model_meta(model_id)
        self._commit({"op": "active_model", "model": model_id or "", "user": user.to_dict()})

    # ---------------------------------------------------------------- summaries
    def stats(self) -> dict[str, Any]:
        parts = self.parts()
        by_verdict = {v.name: 0 for v in Verdict}
        by_class: dict[str, int] = {}
        for p in parts:
            by_verdict[p.verdict.name] += 1
            for c in p.label.classes if p.label else ():  # a multi-class part counts in each class
                cname = self.settings.classes[c - 1].name if c <= len(self.settings.classes) else str(c)
                by_class[cname] = by_class.get(cname, 0) + 1
        reviews = {s.value: sum(1 for p in parts if p.review and p.review.status == s) for s in ReviewStatus}
        return {
            "path": str(self.path), "name": self.settings.name, "kind": self.settings.kind.value,
            "cameras": self.settings.cameras, "classes": [c.name for c in self.settings.classes],
            "parts": len(parts), "views": sum(len(p.views) for p in parts),
            "labels": by_verdict, "defect_classes": by_class,
            "masks": sum(1 for p in parts for v in p.views if v.has_mask),
            "parts_with_mask": sum(1 for p in parts if any(v.has_mask for v in p.views)),
            "reviews": reviews, "predictions": sum(1 for e in self._events if e["op"] == "prediction"),
            "active_model": self.active_model_id,
            "file_bytes": self.path.stat().st_size,
        }


def iter_labeled(project: Project, verdicts: Iterable[Verdict] = (Verdict.OK, Verdict.NG)) -> list[Part]:
    wanted = set(verdicts)
    return [p for p in project.parts() if p.verdict in wanted]
