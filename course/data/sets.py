"""Loading the data sets: pieces as :class:`~course.music.Music`, piano rolls, melody tokens.

Everything is read from the committed files under ``datasets/`` (see ``datasets/README.md``);
nothing parses the music21 corpus, so loading takes a fraction of a second.

Lesson: 00_welcome
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..music import MelodyVocab, Music, Part
from ..music.pianoroll import PIANO_HIGH, PIANO_LOW
from .store import SPLITS, datasets_dir, read_arrays, read_index

__all__ = ["names", "load", "pianorolls", "melody_tokens", "melody_vocab", "Pieces", "describe"]

_NAMES = ("chorales", "folk")
_CACHE: dict = {}


def names() -> list[str]:
    """The data sets: ``["chorales", "folk"]``. Lesson: 00_welcome"""
    return list(_NAMES)


class _Store:
    """One data set's index and arrays, read once and shared (read-only)."""

    def __init__(self, name: str, folder: Path):
        self.name = name
        self.index = read_index(folder / f"{name}.json")
        self.arrays = read_arrays(folder / f"{name}.npz")
        self.pieces = self.index["pieces"]
        self.offsets = self.arrays["note_offsets"]
        if len(self.offsets) != len(self.pieces) + 1:
            raise DataError(f"{folder / name}.npz and .json disagree on the number of pieces; "
                            "rebuild them with `python -m course data build`.")
        self.split = np.array([p["split"] for p in self.pieces])
        self.parts = tuple(Part(name=n) for n in self.index["parts"])
        self.spq = int(self.index["steps_per_quarter"])
        self.qpm = float(self.index["qpm"])
        self.seconds_per_step = 60.0 / self.qpm / self.spq

    def notes(self, i: int) -> dict:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {k: self.arrays[k][a:b] for k in ("pitch", "start", "end", "part")}

    def music(self, i: int) -> Music:
        p, n = self.pieces[i], self.notes(i)
        title = p["id"] if self.name == "chorales" else (p["title"] or p["id"])
        return Music.from_arrays(n["pitch"], n["start"] * self.seconds_per_step, n["end"] * self.seconds_per_step,
                                 velocity=np.full(len(n["pitch"]), int(self.index["velocity"])), part=n["part"],
                                 qpm=self.qpm, time_signature=tuple(p["time_signature"]), parts=self.parts,
                                 title=title, steps_per_quarter=self.spq, pickup=p.get("pickup", 0) / self.spq)


def _store(name: str) -> _Store:
    if name not in _NAMES:
        raise DataError(f"There is no data set {name!r}; the data sets are: {', '.join(_NAMES)}.")
    folder = datasets_dir()
    files = [folder / f"{name}.json", folder / f"{name}.npz"]
    missing = [f for f in files if not f.exists()]
    if missing:
        raise DataError(f"The data set {name!r} is missing: {missing[0]} does not exist. The files come with the "
                        "course repository (datasets/); install the course from a clone with `pip install -e .`, "
                        "set COURSE_DATASETS to the folder holding them, or rebuild them with "
                        "`python -m course data build`.")
    key = (name, str(folder))
    stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    cached = _CACHE.get(key)
    if cached is None or cached[0] != stamp:
        cached = (stamp, _Store(name, folder))
        _CACHE[key] = cached
    return cached[1]


def _select(store: _Store, split: str) -> np.ndarray:
    if split == "all":
        return np.arange(len(store.pieces))
    if split not in SPLITS:
        raise DataError(f"There is no split {split!r}; choose one of: {', '.join(SPLITS)} (or 'all').")
    return np.flatnonzero(store.split == split)


class Pieces(Sequence):
    """The pieces of one split: ``len()``, indexing, slicing and iteration give :class:`Music` objects.

    Each ``Music`` is built when it is asked for (from the stored note arrays), so a
    ``Pieces`` is cheap to make and to slice. ``pieces["bwv269"]`` picks a piece by its id.

    Attributes:
        name: the data set (``"chorales"`` or ``"folk"``).
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        ids: the pieces' identifiers (``"bwv269"``, ``"oneills1850/1046"``), in order.
        titles: their titles.
        info: the index entry of each piece (a dict: id, split, title, source, bwv, ...).

    Lesson: 00_welcome
    """

    def __init__(self, store: _Store, split: str, rows: np.ndarray):
        self._store = store
        self._rows = np.asarray(rows, dtype=np.int64)
        self.name = store.name
        self.split = split
        self.ids = [store.pieces[i]["id"] for i in self._rows.tolist()]
        self.titles = [store.pieces[i]["title"] for i in self._rows.tolist()]

    @property
    def info(self) -> list[dict]:
        return [dict(self._store.pieces[i]) for i in self._rows.tolist()]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Pieces(self._store, self.split, self._rows[i])
        if isinstance(i, str):
            if i not in self.ids:
                raise DataError(f"There is no piece {i!r} in {self.name}/{self.split}.")
            i = self.ids.index(i)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Pieces are indexed by a whole number, an id or a slice, not {type(i).__name__}.")
        n = len(self._rows)
        if not -n <= i < n:
            raise IndexError(f"{self.name}/{self.split} has {n} pieces; there is no piece {i}.")
        return self._store.music(int(self._rows[i]))

    def __iter__(self):
        for row in self._rows.tolist():
            yield self._store.music(row)

    def notes(self, i: int) -> dict:
        """Piece ``i``'s notes as arrays: ``pitch``, ``start``, ``end`` (16th-note steps), ``part``."""
        return {k: v.copy() for k, v in self._store.notes(int(self._rows[i])).items()}

    def __repr__(self) -> str:
        return f"<{self.name} {self.split}: {len(self)} pieces>"


def load(name: str, split: str = "train") -> Pieces:
    """The pieces of one split of a data set, as :class:`Music` objects made on demand.

    Args:
        name: ``"chorales"`` (Bach chorales: 4 parts named Soprano, Alto, Tenor, Bass) or
            ``"folk"`` (monophonic folk tunes: 1 part).
        split: ``"train"``, ``"valid"``, ``"test"`` (or ``"all"``).

    Every ``Music`` has ``qpm=120`` and ``steps_per_quarter=4`` (note times lie on a
    16th-note grid of 0.125 s steps); see ``datasets/README.md`` for the sources.

    Raises:
        DataError: unknown name or split (the message lists the valid ones), or missing files.

    Lesson: 00_welcome
    """
    store = _store(name)
    return Pieces(store, split, _select(store, split))


def describe(name: str) -> dict:
    """The data set's index without the piece list: counts, tempo, grid, parts, build settings."""
    return {k: v for k, v in _store(name).index.items() if k not in ("pieces", "dropped", "arrays")}


def pianorolls(name: str = "chorales", split: str = "train", steps_per_quarter: int = 1,
               low: int = PIANO_LOW, high: int = PIANO_HIGH, *, out_of_range: str = "error") -> list[np.ndarray]:
    """Piano rolls of one split: a list of uint8 arrays of shape ``(T, high - low + 1)``.

    Row ``t`` is time step ``t`` (``steps_per_quarter`` steps per quarter note; the default 1
    matches the quarter-note frames of the JSB Chorales benchmark); column ``k`` is MIDI pitch
    ``low + k``. Identical to ``course.music.to_pianoroll(piece, steps_per_quarter, low, high)``
    for every piece, computed for all pieces at once from the stored notes.

    Args:
        out_of_range: ``"error"`` or ``"drop"`` notes outside ``low..high``.

    Lesson: 04_polyphonic_chorales
    """
    if isinstance(steps_per_quarter, bool) or int(steps_per_quarter) != steps_per_quarter or not 1 <= steps_per_quarter <= 96:
        raise DataError(f"steps_per_quarter must be a whole number from 1 to 96, got {steps_per_quarter!r}.")
    if not 0 <= low <= high <= 127:
        raise DataError(f"Need 0 <= low <= high <= 127, got low={low}, high={high}.")
    if out_of_range not in ("error", "drop"):
        raise DataError("out_of_range must be 'error' or 'drop'.")
    store = _store(name)
    rows = _select(store, split)
    spq, base = int(steps_per_quarter), store.spq
    off = store.offsets
    width = high - low + 1
    # the stored notes of the selected pieces, concatenated
    idx = np.concatenate([np.arange(off[r], off[r + 1]) for r in rows.tolist()]) if len(rows) else np.zeros(0, np.int64)
    counts = (off[rows + 1] - off[rows]) if len(rows) else np.zeros(0, np.int64)
    piece = np.repeat(np.arange(len(rows)), counts)
    pitch = store.arrays["pitch"][idx].astype(np.int64)
    # round(step * spq / base) as to_pianoroll does (floor(x + 0.5)), in exact integer arithmetic
    s = (2 * store.arrays["start"][idx].astype(np.int64) * spq + base) // (2 * base)
    e = (2 * store.arrays["end"][idx].astype(np.int64) * spq + base) // (2 * base)
    e = np.maximum(e, s + 1)
    lengths = np.zeros(len(rows), dtype=np.int64)
    if len(e):
        np.maximum.at(lengths, piece, e)
    inside = (pitch >= low) & (pitch <= high)
    if not inside.all():
        if out_of_range == "error":
            raise DataError(f"Pitch {int(pitch[~inside][0])} is outside the piano roll's range {low}..{high}; "
                            "widen low/high or pass out_of_range='drop'.")
        pitch, s, e, piece = pitch[inside], s[inside], e[inside], piece[inside]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    big = np.zeros((int(starts[-1]), width), dtype=np.uint8)
    dur = e - s
    if dur.sum():
        first = np.repeat(starts[piece] + s, dur)                       # (cells,) the row of each cell
        step_in_note = np.arange(int(dur.sum())) - np.repeat(np.cumsum(dur) - dur, dur)
        big[first + step_in_note, np.repeat(pitch - low, dur)] = 1
    return [big[a:b] for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]


def melody_tokens(split: str = "train") -> list[np.ndarray]:
    """The folk tunes of one split as token ids: a list of int64 arrays (BOS ... EOS).

    The vocabulary is :func:`melody_vocab` (``course.music.MelodyVocab()``: 16th-note steps).
    Token sequence ``i`` encodes ``load("folk", split)[i]``.

    Lesson: 03_melody_lstm
    """
    store = _store("folk")
    rows = _select(store, split)
    toks, off = store.arrays["tokens"], store.arrays["token_offsets"]
    return [toks[off[r]:off[r + 1]].astype(np.int64) for r in rows.tolist()]


def melody_vocab() -> MelodyVocab:
    """The vocabulary of :func:`melody_tokens`: ``course.music.MelodyVocab()``. Lesson: 03_melody_lstm"""
    return MelodyVocab()
