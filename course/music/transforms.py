"""Transforms on :class:`Music`: each returns a new object and leaves its input alone.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import numpy as np

from ..errors import MusicError
from .core import Music, Note

__all__ = ["transpose", "quantize", "monophonic", "trim", "with_tempo"]


def transpose(music: Music, semitones: int) -> Music:
    """Shift every pitched note by ``semitones`` (drum parts stay put).

    Raises MusicError if a note would leave the MIDI range 0-127.
    """
    if isinstance(semitones, bool) or not float(semitones).is_integer():
        raise MusicError(f"Transpose by a whole number of semitones, not {semitones!r}.")
    s = int(semitones)
    drum = {i for i, p in enumerate(music.parts) if p.is_drum}
    notes = tuple(n if n.part in drum else n._replace(pitch=n.pitch + s) for n in music.notes)
    bad = [n.pitch for n in notes if not 0 <= n.pitch <= 127]
    if bad:
        raise MusicError(f"Transposing by {s:+d} moves a note to MIDI pitch {bad[0]}, outside 0-127.")
    return music.replace(notes=notes)


def quantize(music: Music, steps_per_quarter: int = 4) -> Music:
    """Snap note starts and ends to a grid of ``steps_per_quarter`` steps per quarter note.

    Every note keeps at least one step. The result records ``steps_per_quarter``.
    """
    if int(steps_per_quarter) != steps_per_quarter or steps_per_quarter < 1 or steps_per_quarter > 96:
        raise MusicError(f"steps_per_quarter must be a whole number from 1 to 96, got {steps_per_quarter!r}.")
    spq = int(steps_per_quarter)
    if not music.notes:
        return music.replace(steps_per_quarter=spq)
    s, e = music.steps(spq)
    e = np.maximum(e, s + 1)
    step = 60.0 / music.qpm / spq
    notes = tuple(n._replace(start=float(a * step), end=float(b * step)) for n, a, b in zip(music.notes, s.tolist(), e.tolist()))
    return music.replace(notes=notes, steps_per_quarter=spq)


def monophonic(music: Music) -> Music:
    """Keep the highest sounding note at any time (the "skyline"), cutting overlaps.

    Useful to turn a part with occasional chords into a melody for the melody tokenizer.
    """
    out: list[Note] = []
    for n in sorted(music.notes, key=lambda n: (n.start, -n.pitch)):
        if out and out[-1].start == n.start:
            continue  # same onset, lower note: drop
        if out and out[-1].end > n.start:
            out[-1] = out[-1]._replace(end=n.start)
        out.append(n._replace(part=0))
    return music.replace(notes=tuple(out), parts=music.parts[:1])


def trim(music: Music, start: float = 0.0, end: float | None = None) -> Music:
    """The notes sounding between ``start`` and ``end`` seconds, cut to that window and moved to 0."""
    end = music.duration if end is None else end
    if end <= start:
        raise MusicError(f"trim needs end > start, got start={start} and end={end}.")
    notes = tuple(n._replace(start=max(n.start, start) - start, end=min(n.end, end) - start)
                  for n in music.notes if n.end > start and n.start < end)
    # the bar lines stay where they were: the new upbeat runs from the cut to the next one
    pickup = (music.pickup - start / music.seconds_per_quarter) % music.quarters_per_bar
    return music.replace(notes=notes, pickup=pickup)


def with_tempo(music: Music, qpm: float) -> Music:
    """The same notes played at another tempo (times are rescaled)."""
    f = music.qpm / float(qpm)
    notes = tuple(n._replace(start=n.start * f, end=n.end * f) for n in music.notes)
    return music.replace(notes=notes, qpm=float(qpm))
