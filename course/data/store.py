"""Where the data sets live and how their files are written and read.

Each data set is two files under ``datasets/``:

- ``NAME.npz``: the integer arrays (a zip of ``.npy`` files; ``numpy.load`` reads it).
  Every piece's notes are stored back to back; ``note_offsets[i]:note_offsets[i+1]``
  selects piece ``i``.
- ``NAME.json``: the index: one line per piece (identifier, title, split, source file, ...),
  the build settings, the pieces that were dropped and why, and a sha256 of every array.

The zip is written entry by entry with a fixed date and fixed flags, so the same arrays
always give the same bytes (``numpy.savez_compressed`` stamps the current time).

Lesson: 01_music_as_data
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_path, atomic_write

__all__ = ["datasets_dir", "split_of", "SPLITS", "write_arrays", "read_arrays", "array_sha256",
           "write_index", "read_index", "file_sha256"]

SPLITS = ("train", "valid", "test")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # the earliest date a zip entry can carry


def datasets_dir() -> Path:
    """The folder holding the data set files.

    ``$COURSE_DATASETS`` when set, else ``datasets/`` at the root of the repository
    that this package was installed from (``pip install -e .``).
    """
    env = os.environ.get("COURSE_DATASETS", "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "datasets"


def split_of(key: str) -> str:
    """The split (``"train"``, ``"valid"`` or ``"test"``) that a piece belongs to, 80/10/10.

    The split depends only on ``key`` (a piece identifier or, for folk tunes, a normalised
    title): the first 8 bytes of its SHA-256 as a number, modulo 100; below 80 is train,
    below 90 valid, the rest test. (Python's ``hash()`` changes from run to run; this does not.)

    Lesson: 03_melody_lstm
    """
    h = int.from_bytes(hashlib.sha256(str(key).encode("utf-8")).digest()[:8], "big") % 100
    return "train" if h < 80 else ("valid" if h < 90 else "test")


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order, little-endian)."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_arrays(path: Path, arrays: dict) -> None:
    """Write named arrays as a deterministic ``.npz`` (deflate-compressed, fixed dates, sorted names)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), version=(1, 0), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3            # the same on every OS
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def read_arrays(path: Path) -> dict:
    """Read every array of an ``.npz`` into memory (read-only arrays)."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"Cannot read the data file {path}: {e}. Rebuild it with `python -m course data build`.") from None
    for a in out.values():
        a.setflags(write=False)
    return out


def write_index(path: Path, index: dict) -> None:
    """Write the JSON index: readable, one piece (or dropped piece, or array) per line, UTF-8, no timestamps."""

    def one(v) -> str:
        return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))

    lines = ["{"]
    keys = list(index)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = index[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            body = ",\n".join("  " + one(v) for v in value)
            lines.append(f"{one(key)}: [\n{body}\n]{comma}")
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            body = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in value.items())
            lines.append(f"{one(key)}: {{\n{body}\n}}{comma}")
        else:
            lines.append(f"{one(key)}: {one(value)}{comma}")
    lines.append("}")
    atomic_write(path, "\n".join(lines) + "\n")


def read_index(path: Path) -> dict:
    """Read a JSON index written by :func:`write_index`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read the data index {path}: {e}. Rebuild it with `python -m course data build`.") from None
