"""Piano rolls: a (time steps, pitches) grid of 0/1, the representation of lessons 04 and 08.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import numpy as np

from ..errors import MusicError
from .core import Music, Note, Part

__all__ = ["to_pianoroll", "from_pianoroll", "PIANO_LOW", "PIANO_HIGH", "MAX_FRAMES"]

PIANO_LOW, PIANO_HIGH = 21, 108   # A0 .. C8: the 88 keys, as in the polyphonic benchmark sets
MAX_FRAMES = 1_000_000


def to_pianoroll(music: Music, steps_per_quarter: int = 4, low: int = PIANO_LOW, high: int = PIANO_HIGH,
                 *, out_of_range: str = "error") -> np.ndarray:
    """A binary piano roll of shape ``(T, high - low + 1)``, dtype uint8.

    Row ``t`` is the time step ``[t, t+1)`` (``steps_per_quarter`` steps per quarter note);
    column ``k`` is MIDI pitch ``low + k``. A note covers the steps from its rounded start to
    its rounded end, and at least one step.

    Args:
        out_of_range: ``"error"`` (default) or ``"drop"`` notes outside ``low..high``.
    """
    if int(steps_per_quarter) != steps_per_quarter or not 1 <= steps_per_quarter <= 96:
        raise MusicError(f"steps_per_quarter must be a whole number from 1 to 96, got {steps_per_quarter!r}.")
    if not 0 <= low <= high <= 127:
        raise MusicError(f"Need 0 <= low <= high <= 127, got low={low}, high={high}.")
    a = music.arrays()
    s, e = music.steps(int(steps_per_quarter))
    e = np.maximum(e, s + 1)
    inside = (a["pitch"] >= low) & (a["pitch"] <= high)
    if not inside.all():
        if out_of_range == "error":
            p = a["pitch"][~inside][0]
            raise MusicError(f"Pitch {p} is outside the piano roll's range {low}..{high}; "
                             "widen low/high or pass out_of_range='drop'.")
        if out_of_range != "drop":
            raise MusicError("out_of_range must be 'error' or 'drop'.")
    T = int(e.max()) if len(e) else 0
    if T > MAX_FRAMES:
        raise MusicError(f"This piano roll would have {T:,} time steps (more than {MAX_FRAMES:,}); "
                         "use fewer steps_per_quarter or trim the piece.")
    roll = np.zeros((T, high - low + 1), dtype=np.uint8)
    for p, a0, b0 in zip(a["pitch"][inside].tolist(), s[inside].tolist(), e[inside].tolist()):
        roll[a0:b0, p - low] = 1
    return roll


def from_pianoroll(roll, steps_per_quarter: int = 4, low: int = PIANO_LOW, *, qpm: float = 120.0,
                   velocity: int = 80, title: str = "", threshold: float = 0.5) -> Music:
    """Turn a piano roll back into notes: each run of active steps in a column is one note.

    Accepts a NumPy array or torch tensor of shape ``(T, P)``; values above ``threshold`` are on.
    Two notes of the same pitch that touch merge into one (a binary roll cannot tell them apart).
    """
    if hasattr(roll, "detach"):
        roll = roll.detach().cpu().numpy()
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise MusicError(f"A piano roll is 2-D (time steps, pitches); got shape {roll.shape}.")
    if roll.shape[1] + low - 1 > 127:
        raise MusicError(f"A roll with {roll.shape[1]} pitch columns starting at {low} goes above MIDI pitch 127.")
    if roll.shape[0] > MAX_FRAMES:
        raise MusicError(f"This piano roll has {roll.shape[0]:,} time steps, more than {MAX_FRAMES:,}.")
    on = (roll > threshold).astype(np.int8)
    pad = np.zeros((1, on.shape[1]), dtype=np.int8)
    d = np.diff(np.concatenate([pad, on, pad]), axis=0)
    starts_t, starts_p = np.nonzero(d == 1)
    ends_t, ends_p = np.nonzero(d == -1)
    # nonzero is row-major: sort both by (pitch, time) so runs pair up
    o1 = np.lexsort((starts_t, starts_p))
    o2 = np.lexsort((ends_t, ends_p))
    step = 60.0 / qpm / steps_per_quarter
    notes = tuple(Note(int(p + low), float(a * step), float(b * step), int(velocity), 0)
                  for p, a, b in zip(starts_p[o1].tolist(), starts_t[o1].tolist(), ends_t[o2].tolist()))
    return Music(notes=notes, qpm=qpm, parts=(Part(),), title=title, steps_per_quarter=int(steps_per_quarter))
