"""The course's one representation of music: a :class:`Music` holding :class:`Note` s.

Times are in **seconds**; ``qpm`` (quarter notes per minute) converts them to
beats and to grid steps (``steps_per_quarter``). A ``Music`` is immutable:
every transform returns a new one.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import MusicError

__all__ = ["Note", "Part", "Music", "MIN_QPM", "MAX_QPM", "MAX_NOTES", "MAX_SECONDS"]

MIN_QPM = 10.0        # slower than this is not a tempo, it is a corrupt file
MAX_QPM = 1000.0      # faster than this likewise
MAX_NOTES = 500_000   # a generous cap: a long piano piece has ~20k
MAX_SECONDS = 6 * 3600.0


class Note(NamedTuple):
    """One note. ``start``/``end`` in seconds, ``pitch`` a MIDI number (60 = middle C)."""

    pitch: int
    start: float
    end: float
    velocity: int = 80
    part: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


@dataclass(frozen=True)
class Part:
    """A voice or instrument: its name, General MIDI program (0-127) and drum flag."""

    name: str = ""
    program: int = 0
    is_drum: bool = False


@dataclass(frozen=True)
class Music:
    """A piece of music: notes (seconds) plus tempo, metre and parts.

    Attributes:
        notes: the notes, sorted by (start, part, pitch).
        qpm: tempo in quarter notes per minute, used to convert seconds to beats/steps.
        time_signature: (numerator, denominator), e.g. (4, 4).
        parts: one :class:`Part` per voice; ``Note.part`` indexes into it.
        title: a label such as ``"bwv269"``.
        steps_per_quarter: set when note times lie on a grid of that many steps per quarter.
        pickup: quarter notes before the first bar line (an upbeat, *anacrusis*), 0 when the piece
            starts on a downbeat; bar lines fall at ``pickup + k * quarters_per_bar`` quarters.

    Build one from arrays with :meth:`Music.from_arrays`, from a file with
    ``course.music.read_midi``, from music21 with ``course.music.from_music21``.
    """

    notes: tuple = ()
    qpm: float = 120.0
    time_signature: tuple = (4, 4)
    parts: tuple = field(default_factory=lambda: (Part(),))
    title: str = ""
    steps_per_quarter: int | None = None
    pickup: float = 0.0

    def __post_init__(self):
        notes = tuple(n if isinstance(n, Note) else _as_note(n) for n in self.notes)
        if len(notes) > MAX_NOTES:
            raise MusicError(f"{len(notes):,} notes is more than the course handles ({MAX_NOTES:,}); "
                             "cut the piece into sections first.")
        qpm = float(self.qpm)
        if not (MIN_QPM <= qpm <= MAX_QPM) or not np.isfinite(qpm):
            raise MusicError(f"A tempo of {qpm:g} quarter notes per minute is not plausible "
                             f"(expected {MIN_QPM:g} to {MAX_QPM:g}); the file may be corrupt.")
        ts = tuple(int(x) for x in self.time_signature)
        if len(ts) != 2 or ts[0] <= 0 or ts[1] <= 0:
            raise MusicError(f"time_signature must be two positive numbers like (4, 4), got {self.time_signature!r}.")
        parts = tuple(self.parts) or (Part(),)
        try:
            pickup = float(self.pickup)
        except (TypeError, ValueError):
            raise MusicError(f"pickup must be a number of quarter notes, got {self.pickup!r}.") from None
        bar = ts[0] * 4.0 / ts[1]
        if not np.isfinite(pickup) or pickup < 0:
            raise MusicError(f"pickup must be 0 or more quarter notes (the upbeat before the first bar line), "
                             f"got {self.pickup!r}.")
        pickup = pickup % bar
        if pickup < 1e-6 or bar - pickup < 1e-6:   # on a bar line, give or take rounding
            pickup = 0.0
        if notes:
            a = np.array([(n.pitch, n.start, n.end, n.velocity, n.part) for n in notes], dtype=np.float64)
            _validate_arrays(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], len(parts))
            order = np.lexsort((a[:, 0], a[:, 4], a[:, 1]))
            if np.any(order != np.arange(len(order))):
                notes = tuple(notes[i] for i in order)
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "qpm", qpm)
        object.__setattr__(self, "time_signature", ts)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "pickup", pickup)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(cls, pitch, start, end, velocity=None, part=None, **meta) -> "Music":
        """Build from equal-length arrays (times in seconds). ``meta`` goes to the constructor."""
        pitch = np.asarray(pitch)
        n = len(pitch)
        velocity = np.full(n, 80) if velocity is None else np.asarray(velocity)
        part = np.zeros(n, dtype=int) if part is None else np.asarray(part)
        start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
        if not (len(start) == len(end) == len(velocity) == len(part) == n):
            raise MusicError("pitch, start, end, velocity and part must all have the same length.")
        notes = [Note(int(p), float(s), float(e), int(v), int(k))
                 for p, s, e, v, k in zip(pitch.tolist(), start.tolist(), end.tolist(), velocity.tolist(), part.tolist())]
        if "parts" not in meta and n:
            meta["parts"] = tuple(Part() for _ in range(int(part.max()) + 1))
        return cls(notes=tuple(notes), **meta)

    def replace(self, **changes) -> "Music":
        """A copy with some fields changed (``music.replace(title="x")``)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        return iter(self.notes)

    def __repr__(self) -> str:
        t = f", {self.title!r}" if self.title else ""
        grid = f", grid 1/{self.steps_per_quarter} quarter" if self.steps_per_quarter else ""
        upbeat = f", upbeat {self.pickup:g} quarter{'s' if self.pickup != 1 else ''}" if self.pickup else ""
        return (f"Music({len(self.notes)} notes, {len(self.parts)} part{'s' if len(self.parts) != 1 else ''}, "
                f"{self.duration:.1f} s, {self.qpm:g} qpm{grid}{upbeat}{t})")

    @property
    def duration(self) -> float:
        """Seconds from 0 to the end of the last note."""
        return max((n.end for n in self.notes), default=0.0)

    @property
    def seconds_per_quarter(self) -> float:
        return 60.0 / self.qpm

    @property
    def quarters_per_bar(self) -> float:
        """Quarter notes in one bar of the time signature: 4 in 4/4, 3 in 3/4, 3 in 6/8."""
        return self.time_signature[0] * 4.0 / self.time_signature[1]

    def bar_lines(self, until: float | None = None) -> np.ndarray:
        """Times in seconds of the bar lines after the start, up to ``until`` (default: the end),
        counting from the upbeat (``pickup``) if there is one."""
        until = self.duration if until is None else float(until)
        spq = self.seconds_per_quarter
        first = self.pickup if self.pickup else self.quarters_per_bar
        return np.arange(first * spq, until + 1e-9, self.quarters_per_bar * spq)

    def arrays(self) -> dict:
        """The notes as NumPy arrays: ``pitch, start, end, velocity, part`` (times in seconds)."""
        if not self.notes:
            z = np.zeros(0)
            return {"pitch": z.astype(int), "start": z, "end": z, "velocity": z.astype(int), "part": z.astype(int)}
        p, s, e, v, k = zip(*self.notes)
        return {"pitch": np.array(p, dtype=np.int64), "start": np.array(s, dtype=np.float64),
                "end": np.array(e, dtype=np.float64), "velocity": np.array(v, dtype=np.int64),
                "part": np.array(k, dtype=np.int64)}

    def steps(self, steps_per_quarter: int | None = None) -> tuple:
        """Note starts and ends in grid steps (rounded): ``(start_steps, end_steps)`` int arrays."""
        spq = steps_per_quarter or self.steps_per_quarter or 4
        a = self.arrays()
        f = self.qpm / 60.0 * spq
        return np.floor(a["start"] * f + 0.5).astype(np.int64), np.floor(a["end"] * f + 0.5).astype(np.int64)

    def part(self, index: int) -> "Music":
        """Only the notes of one part (renumbered as part 0)."""
        if not 0 <= index < len(self.parts):
            raise MusicError(f"This piece has {len(self.parts)} part(s); there is no part {index}.")
        notes = tuple(n._replace(part=0) for n in self.notes if n.part == index)
        return self.replace(notes=notes, parts=(self.parts[index],))


def _as_note(x) -> Note:
    try:
        if isinstance(x, dict):
            return Note(**x)
        return Note(*x)
    except TypeError as e:
        raise MusicError(f"Cannot make a Note from {x!r}: give (pitch, start, end[, velocity, part]).") from e


def _validate_arrays(pitch, start, end, velocity, part, n_parts: int) -> None:
    if not np.all(np.isfinite(start)) or not np.all(np.isfinite(end)):
        raise MusicError("Note times must be finite numbers of seconds.")
    bad = np.flatnonzero((pitch < 0) | (pitch > 127) | (pitch != np.round(pitch)))
    if bad.size:
        raise MusicError(f"Note pitch {pitch[bad[0]]:g} is not a MIDI note number (whole number 0-127).")
    if np.any(start < 0):
        raise MusicError(f"A note starts at {start.min():g} s; times must be >= 0.")
    bad = np.flatnonzero(end <= start)
    if bad.size:
        i = bad[0]
        raise MusicError(f"A note must end after it starts: note {i} has start {start[i]:g} s and end {end[i]:g} s.")
    if np.any(end > MAX_SECONDS):
        raise MusicError(f"A note ends at {end.max():.0f} s, more than {MAX_SECONDS / 3600:g} hours in; "
                         "the file is probably corrupt.")
    bad = np.flatnonzero((velocity < 0) | (velocity > 127))
    if bad.size:
        raise MusicError(f"Velocity {velocity[bad[0]]:g} is outside 0-127.")
    if np.any((part < 0) | (part >= n_parts)):
        raise MusicError(f"A note names part {int(part.max())} but the piece has only {n_parts} part(s).")

