"""Writing files so that a reader never sees half of one: the one atomic-write helper of the course.

Every file the course writes (data sets, MIDI, checkpoints, notebooks, gradebooks) goes through
:func:`atomic_write` or :func:`atomic_path`: the bytes go to a hidden temporary file in the same
folder, which then replaces the target in one step (``os.replace``), so an interrupted write leaves
the old file, never a truncated one. :func:`create_new` is the same for files that must never
replace anything (a student's workspace, backups): it refuses when the file already exists.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "atomic_path", "create_new"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to; on success it replaces ``path`` (folders are created).

    For writers that want a file name (``torch.save``, ``zipfile``)::

        with atomic_path(out) as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding`` with ``\\n`` line ends) to ``path`` atomically."""
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
    return Path(path)


def create_new(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path``, which must not exist yet: never replaces a file (``FileExistsError``).

    The bytes go to a temporary file that is then hard-linked as ``path`` in one step, so a reader
    never sees half a file and a file that appeared meanwhile is left alone. Where hard links are not
    supported, the file is created exclusively (``"xb"``) and written.
    """
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        tmp.write_bytes(raw)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:                       # a file system without hard links
            with open(path, "xb") as f:
                f.write(raw)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
