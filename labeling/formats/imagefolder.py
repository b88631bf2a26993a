"""`imagefolder`: one folder per verdict (OK/, NG/, unlabeled/) or per defect class.

A folder named like a verdict (OK, NG, good, bad, ...) gives that verdict; any other folder is a
defect class and its images are NG with that class (also inside NG/: NG/scratch/a.png).
Multi-view parts go by the file-name rule: OK/PART__CAMERA.png is view CAMERA of part PART when
CAMERA is a camera of the project or of okng_classes.json (base.view_name); export names every
view of a multi-view part that way. Cameras, ROIs and class colours travel in okng_classes.json.
What the format cannot hold: masks and part fields; images, parts, cameras, verdicts and classes
round-trip.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from ..store import Project
from ..types import Verdict
from .base import (
    ExportJob,
    FormatError,
    ImportItem,
    ItemError,
    ReadResult,
    image_files,
    read_image,
    rel,
)


def _verdict(name: str) -> Verdict | None:
    try:
        return Verdict.parse(name)
    except ValueError:
        return None


class ImageFolderFormat:
    name = "imagefolder"
    description = "OK/ and NG/ folders, or one folder per defect class (NG with that class)"
    main_file = None

    def read(self, src: Path) -> ReadResult:
        if not src.is_dir():
            raise FormatError(f"{src}: imagefolder needs a folder with OK/ NG/ or class folders")
        for path in image_files(src):
            parts = Path(rel(path, src)).parts[:-1]
            if not parts:
                yield ItemError(rel(path, src), "image is not inside an OK/, NG/ or class folder")
                continue
            verdict = _verdict(parts[0])
            cls: str | None = None
            if verdict is None:
                verdict, cls = Verdict.NG, parts[0]
            elif verdict == Verdict.NG and len(parts) > 1:
                cls = parts[1]
            yield ImportItem(file=rel(path, src), path=path, verdict=verdict, defect_class=cls,
                             load_image=partial(read_image, path, rel(path, src)))

    def write(self, project: Project, dest: Path, job: ExportJob) -> None:
        for part, view, stem in job.views():
            label = part.label
            if label is None or label.verdict == Verdict.UNLABELED:
                folder = "unlabeled"
            elif label.verdict == Verdict.OK:
                folder = "OK"
            elif label.defect_class:
                folder = f"NG/{job.safe(job.class_name(label.defect_class))}"
            else:
                folder = "NG"
            job.save_image(f"{folder}/{stem}.png", project.read_image(part.id, view))
        job.save_classes()
