"""Decoding untrusted image files: size from the header first, decoder warnings as errors.

Two things OpenCV's imdecode does not do for us:

* It allocates whatever the header declares (up to 2^30 pixels) before it finds out that the
  data is short, so a 390 KB PNG declaring 20000x20000 costs 1.2 GB. `header_size` reads width
  and height from the PNG/JPEG/BMP/TIFF header, so the view is refused before any decoding.
* libjpeg reports corrupt scan data ("Corrupt JPEG data: 12 extraneous bytes", "Premature end of
  JPEG file") only as a warning printed straight to the C stderr, and imdecode returns an image
  with the damage painted grey. Nothing in OpenCV's Python API exposes these warnings, and the
  alternatives are no better (scikit-image reads through imageio/Pillow, which also accepts
  truncated JPEGs; checking for the EOI marker misses damage in the middle and rejects valid files
  with trailing bytes). So the decode runs with file descriptor 2 pointed at a temporary file
  (under a lock: one decode at a time): what libjpeg/libpng/libtiff print is read back, the
  lines that mean damage become a FormatError, harmless chatter (a libpng iCCP profile warning)
  is dropped, and nothing spills onto the user's terminal.
"""
from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from .safety import FormatError, check_pixels

# Decoder messages that mean the pixels are not what the file holds.
_DAMAGE = ("corrupt jpeg data", "premature end of jpeg", "invalid sos parameters", "bogus marker",
           "libpng error", "read error", "crc error", "unexpected end", "decompression error",
           "not a jpeg file", "improper call", "huffman")
_LOCK = threading.Lock()
_SINK: list = []  # the reused temporary file that fd 2 points at while decoding


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a PNG, JPEG, BMP or TIFF header; None if not found."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM" and len(data) >= 26:
            dib = struct.unpack("<I", data[14:18])[0]
            if dib == 12:
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker == 0xDA or seg < 2:
            return None
        i += 2 + seg
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    e = "<" if data[:2] == b"II" else ">"
    off = struct.unpack(e + "I", data[4:8])[0]
    count = struct.unpack(e + "H", data[off:off + 2])[0]
    found: dict[int, int] = {}
    for k in range(min(count, 4096)):
        entry = data[off + 2 + 12 * k: off + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(e + "HH", entry[:4])
        if tag in (256, 257):
            found[tag] = struct.unpack(e + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


@contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Point fd 2 at a temporary file; the yielded list gets what was written there."""
    out: list[str] = []
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield out  # no usable fd 2 (a windowed app): nothing to capture, nothing can spill
            return
        if not _SINK:
            _SINK.append(tempfile.TemporaryFile())  # noqa: SIM115 - reused for the process's life
        sink = _SINK[0]
        sink.seek(0)
        sink.truncate()
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read(65536).decode("utf-8", "replace"))


def decode(data: bytes, flags: int, what: str) -> np.ndarray:
    """imdecode with the header's size checked first and decoder damage reports as errors."""
    size = header_size(data)
    try:
        if size is not None:
            check_pixels(*size)
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from None
    with _quiet_stderr() as said:
        try:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:
            img = None
    if img is None:
        raise FormatError(f"{what}: cannot decode image (corrupt or unsupported file)")
    # OpenCV's own log lines ("[ WARN:0@...] ...") only echo what failed; the codecs' lines say why.
    lines = [ln.strip() for ln in "".join(said).splitlines() if ln.strip() and not ln.lstrip().startswith("[")]
    damage = next((ln for ln in lines if any(d in ln.lower() for d in _DAMAGE)), "")
    if damage:
        raise FormatError(f"{what}: damaged image data ({damage[:100]})")
    if size is None:
        try:
            check_pixels(img.shape[1], img.shape[0])
        except FormatError as exc:
            raise FormatError(f"{what}: {exc}") from None
    return img
