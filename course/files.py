"""Writing files so that a reader never sees half of one: the one atomic-write helper of the course.

Every file the course writes (data sets, MIDI, checkpoints, notebooks, gradebooks) goes through
:func:`atomic_write` or :func:`atomic_path`: the bytes go to a hidden temporary file in the same
folder, which then replaces the target in one step (``os.replace``), so an interrupted write leaves
the old file, never a truncated one.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "atomic_path"]


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
