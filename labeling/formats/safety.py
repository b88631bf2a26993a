"""Limits and guards for reading sources nobody here prepared: sizes, paths, and errors in words.

Import sources are hostile input: a 390 KB PNG can declare 20000x20000 pixels, a JSON can nest
100,000 deep, a CSV can name `../../etc/passwd` or hold a NUL byte, a symlink can loop. Every such
thing must become one line about one file, decided before anything large is allocated.

The limits of the running import live in a context variable (set by engine.import_into): the
decoders that need them (read_image, a labelme mask shape, a polygon) sit several calls below the
format code, and threading a parameter through every lazy loader would touch every format for no
gain. A call outside an import sees the defaults.
"""
from __future__ import annotations

import binascii
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path

import cv2


class FormatError(ValueError):
    """A problem with one source file; becomes one line in ImportReport.errors."""


@dataclass(frozen=True)
class ImportLimits:
    """What an import accepts; each has a CLI flag (okng import --max-pixels ...)."""

    max_pixels: int = 64_000_000  # per view (8000x8000); 20000x20000 would be 0.4-2.4 GB in memory
    min_side: int = 2  # a 1x1 or 1xN "image" is an export glitch, not a part
    max_polygon_points: int = 100_000  # per polygon; rasterising is linear, this bounds one file's time
    max_text_bytes: int = 1 << 30  # a JSON/CSV is read whole; json.loads needs ~10x its size
    allow_outside: bool = False  # files a source names outside its folder (../, absolute paths)

    def __post_init__(self) -> None:
        for name in ("max_pixels", "min_side", "max_polygon_points", "max_text_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"import limit {name} must be at least 1")


@dataclass(frozen=True)
class _Context:
    limits: ImportLimits
    root: Path | None  # the source folder, resolved: files must lie inside it


_DEFAULT = _Context(ImportLimits(), None)
_CURRENT: ContextVar[_Context | None] = ContextVar("okng_import_context", default=None)


def _context() -> _Context:
    return _CURRENT.get() or _DEFAULT


def limits() -> ImportLimits:
    return _context().limits


@contextmanager
def importing(lim: ImportLimits, src: Path) -> Iterator[None]:
    """Apply `lim` and confine files to the folder of `src` for the calls inside."""
    token = _CURRENT.set(_Context(lim, source_root(src)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def source_root(src: Path) -> Path | None:
    """The folder an import is confined to: the source folder, or the folder of the source file
    (its parent when that is COCO's annotations/ folder, whose images sit beside it)."""
    root = Path(os.path.abspath(src))
    if root.is_file():
        root = root.parent
        if root.name == "annotations":
            root = root.parent
    return root


def resolve(path: Path) -> Path:
    """path.resolve(), with a symlink loop or a NUL byte as a FormatError instead of a crash."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # Python 3.11: "Symlink loop from ..."
        raise FormatError("symbolic link loop") from None
    except ValueError:
        raise FormatError("file name contains a NUL byte") from None
    except OSError as exc:
        raise FormatError(f"cannot resolve the path ({exc.strerror or exc})") from None


def path_key(path: Path) -> str:
    """The resolved path as a duplicate key; a path that cannot be resolved keys as given."""
    try:
        return str(resolve(path))
    except FormatError:
        return os.path.abspath(str(path).replace("\x00", "\\0"))


def check_path(path: Path) -> Path:
    """The resolved path, if the running import may read it.

    Confinement is by the path as the source names it (`../x.png`, `/etc/x.png`, after
    normalising): a symbolic link someone placed inside the source folder is their layout (a data
    set linked in from a share) and is followed; a name written into a labels file is not trusted."""
    real = resolve(path)
    ctx = _context()
    if ctx.root is not None and not ctx.limits.allow_outside:
        named = Path(os.path.normpath(os.path.abspath(path)))
        if not named.is_relative_to(ctx.root):
            raise FormatError("lies outside the source folder (import with --allow-outside to allow it)")
    return real


def read_text(path: Path) -> str:
    """A JSON/CSV file as text, refused by its size before it is read."""
    cap = limits().max_text_bytes
    try:
        real = check_path(path)
        size = real.stat().st_size
        if size > cap:
            raise FormatError(f"file is {size / 1e6:.0f} MB, over the {cap / 1e6:.0f} MB limit for JSON/CSV")
        return real.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FormatError("file not found") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise FormatError(f"cannot read file ({exc.strerror or exc})") from None


def check_pixels(w: int, h: int, kind: str = "image") -> None:
    """Refuse a view by its declared size: too many pixels, or too small to be a part."""
    lim = limits()
    if w * h > lim.max_pixels:
        raise FormatError(f"{kind} is {w}x{h} = {w * h / 1e6:.0f} Mpixels, over the limit of "
                          f"{lim.max_pixels / 1e6:g} Mpixels (--max-pixels)")
    if min(w, h) < lim.min_side:
        raise FormatError(f"{kind} is {w}x{h}, smaller than the minimum of {lim.min_side} pixels a side "
                          "(--min-side)")


def with_limits(**kw: object) -> ImportLimits:
    return replace(limits(), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ errors in words
_INT = re.compile(r"invalid literal for int\(\) with base \d+: (.*)$", re.DOTALL)
_FLOAT = re.compile(r"could not convert string to float: (.*)$", re.DOTALL)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, in words: no "Incorrect padding", no parser internals."""
    if isinstance(exc, FormatError):
        text = str(exc)
    elif isinstance(exc, binascii.Error):
        text = "invalid base64 data"
    elif isinstance(exc, RecursionError):
        text = "nested too deeply to read"
    elif isinstance(exc, MemoryError):
        text = "too large to load into memory"
    elif isinstance(exc, OverflowError):
        text = "a number in it is too large"
    elif isinstance(exc, UnicodeError):
        text = "text that is not valid UTF-8"
    elif isinstance(exc, cv2.error):
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        detail = re.sub(r"^.*error: \(-?\d+:?([^)]*)\)\s*", r"\1: ", detail).strip(": ")
        text = f"the image decoder failed ({detail[:120]})" if detail else "the image decoder failed"
    elif isinstance(exc, ValueError) and (m := _INT.search(str(exc))):
        text = f"{m.group(1)[:40]} is not a whole number"
    elif isinstance(exc, ValueError) and (m := _FLOAT.search(str(exc))):
        text = f"{m.group(1)[:40]} is not a number"
    elif isinstance(exc, KeyError):
        text = f"missing entry {exc}"
    elif isinstance(exc, (TypeError, AttributeError, IndexError)):
        text = f"unexpected structure ({exc})"
    elif isinstance(exc, OSError):
        text = f"cannot read file ({exc.strerror or exc})"
    else:
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, ValueError):
            text = f"unexpected error ({type(exc).__name__}: {text})"
    return " ".join(text.split())


def printable(name: str) -> str:
    """A file name as it can be shown: control characters (a NUL byte, a newline) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def one_line(file: str, message: str) -> str:
    """The message for `file` without the file's name in front again, on one line."""
    msg = " ".join(str(message).split())
    names = [n for n in {file, Path(file).name, str(Path(file))} if n]
    changed = True
    while changed:
        changed = False
        for n in names:
            if msg.startswith(n + ": "):
                msg, changed = msg[len(n) + 2:], True
    return msg or "unreadable"
