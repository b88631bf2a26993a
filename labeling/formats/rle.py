"""Run-length encodings: COCO (counts, and its compressed string form) and Kaggle Severstal.

Both run down columns (column-major, Fortran order). COCO counts alternate background and
foreground runs starting with background; Severstal lists 1-based "start length" pairs.
"""
from __future__ import annotations

import numpy as np

from .base import FormatError


def _runs(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts (0-based, column-major) and lengths of the foreground runs."""
    flat = np.asarray(region, bool).ravel(order="F")
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2] - edges[0::2]


def coco_encode(region: np.ndarray) -> dict:
    """Uncompressed COCO RLE of a boolean (H, W) region."""
    h, w = region.shape
    starts, lengths = _runs(region)
    counts: list[int] = []
    pos = 0
    for s, n in zip(starts.tolist(), lengths.tolist()):
        counts += [s - pos, n]
        pos = s + n
    if pos < h * w:
        counts.append(h * w - pos)
    return {"size": [h, w], "counts": counts}


def _whole(values: object, what: str) -> list[int]:
    """Python ints of a list of counts: floats, bools, strings and NaN are refused, not cast."""
    if not isinstance(values, list):
        raise FormatError(f"{what} must be a list of whole numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                raise FormatError(f"{what} holds {v!r}: counts must be whole numbers, not decimals")
            raise FormatError(f"{what} holds {str(v)[:20]!r}, not a whole number")
        out.append(v)
    return out


def coco_decode(rle: dict, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) region of a COCO RLE (counts as a list or a compressed string).

    Counts are checked as Python integers before numpy sees them: 4 x 2^62 would wrap an int64
    sum past the length check and make np.repeat write out of bounds."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise FormatError("RLE segmentation needs 'size' and 'counts'")
    size = _whole(rle["size"], "RLE size")
    counts = rle["counts"]
    if len(size) != 2:
        raise FormatError(f"RLE size needs height and width, got {len(size)} values")
    if tuple(size) != tuple(shape):
        raise FormatError(f"RLE size {size[1]}x{size[0]} but the image is {shape[1]}x{shape[0]}")
    n = size[0] * size[1]
    if isinstance(counts, str):
        if len(counts) > 14 * (n + 1):
            raise FormatError("compressed RLE string is longer than any mask of this size")
        counts = coco_string_decode(counts)
    else:
        counts = _whole(counts, "RLE counts")
    if len(counts) > n + 1:
        raise FormatError(f"RLE has {len(counts)} counts, more than the {n} pixels of the image")
    if any(c < 0 for c in counts):
        raise FormatError("RLE has a negative count")
    if sum(counts) > n:
        raise FormatError("RLE counts run past the image")
    arr = np.asarray(counts, dtype=np.int64)
    values = np.zeros(len(arr), bool)
    values[1::2] = True
    flat = np.repeat(values, arr)
    flat = np.concatenate([flat, np.zeros(n - flat.size, bool)])
    return flat.reshape(size[1], size[0]).T


def coco_string_decode(s: str) -> list[int]:
    """COCO's compressed counts: 5 bits per character (offset 48), 0x20 = more, sign-extended,
    counts after the second stored as differences to the count two before."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise FormatError("compressed RLE string ends in the middle of a number")
            if k >= 13:  # 65 bits: no count of a real mask needs more
                raise FormatError("compressed RLE holds a number too large for any mask")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise FormatError(f"compressed RLE has an invalid character {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_string_encode(counts: list[int]) -> str:
    """Inverse of coco_string_decode."""
    out = []
    for i, cnt in enumerate(counts):
        x = cnt - counts[i - 2] if i > 2 else cnt
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def severstal_encode(region: np.ndarray) -> str:
    """'start length' pairs, 1-based, column-major."""
    starts, lengths = _runs(region)
    return " ".join(f"{s + 1} {n}" for s, n in zip(starts.tolist(), lengths.tolist()))


def severstal_decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    tokens = str(text).split()
    if len(tokens) > 2 * h * w:
        raise FormatError(f"EncodedPixels has {len(tokens)} numbers, more than a {w}x{h} image can need")
    bad = next((t for t in tokens if not (t.isascii() and t.isdigit())), None)  # no sign, no decimals, ASCII digits only
    if bad is not None:
        raise FormatError(f"EncodedPixels holds {bad[:20]!r}, not a whole number (expected 'start length' pairs)")
    if any(len(t) > 12 for t in tokens):
        raise FormatError(f"EncodedPixels runs past a {w}x{h} image (a number with more than 12 digits)")
    nums = np.array([int(t) for t in tokens], dtype=np.int64)
    if nums.size % 2:
        raise FormatError("EncodedPixels needs 'start length' pairs (odd number of values)")
    starts, lengths = nums[0::2] - 1, nums[1::2]
    if nums.size and (starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > h * w):
        raise FormatError(f"EncodedPixels runs past a {w}x{h} image (wrong image or wrong size)")
    flat = np.zeros(h * w + 1, np.int32)
    np.add.at(flat, starts, 1)
    np.add.at(flat, starts + lengths, -1)
    return (np.cumsum(flat[:-1]) > 0).reshape(w, h).T
