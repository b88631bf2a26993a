"""Import and export formats: a registry by name plus one shared import/export driver.

    report = import_into(project, "data/bsdata", "labelme")  # limits=ImportLimits(...) to change the defaults
    export_project(project, "out/", "coco")

Adding a format is one module with a class (name, description, main_file, read, write) and one
entry in FORMATS; validation, class handling, duplicates and store writes live in engine.py.
"""
from __future__ import annotations

from .base import CLASSES_FILE, Format, FormatError, ImportItem, ItemError
from .coco import CocoFormat
from .engine import (
    DestinationNotEmpty,
    ExportReport,
    ImportReport,
    export_project,
    import_into,
)
from .imagefolder import ImageFolderFormat
from .labelme import LabelmeFormat
from .masks import MasksFormat
from .safety import ImportLimits
from .severstal import SeverstalFormat

FORMATS: dict[str, Format] = {f.name: f for f in (
    ImageFolderFormat(), MasksFormat(), LabelmeFormat(), CocoFormat(), SeverstalFormat())}


def get_format(name: str) -> Format:
    """The format registered as `name`; ValueError lists the known ones."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown format {name!r} (known: {', '.join(FORMATS)})") from None


__all__ = ["CLASSES_FILE", "FORMATS", "DestinationNotEmpty", "ExportReport", "Format", "FormatError", "ImportItem",
           "ImportLimits", "ImportReport", "ItemError", "export_project", "get_format", "import_into"]
