"""The chorales as four voices: the data of lesson 09's harmonizer.

A *voice array* has shape ``(4, T)``: voice ``v`` (0 soprano, 1 alto, 2 tenor, 3 bass), time step
``t`` (``steps_per_quarter`` steps per quarter note), the MIDI pitch that voice sounds at the start
of the step, or ``-1`` for a rest. It is the representation of Coconet (Huang et al. 2017), which
reads a chorale at 16th notes; the course's default is eighth notes, which keeps every chord of a
chorale and half the cost (a 16th-note passing note falls between two steps and is not seen).
A held note and the same note repeated look alike here: a step says only which pitch sounds.

::

    from course import data
    pieces = data.voices("chorales", "train")          # one int16 (4, T) array per chorale, -1 = rest
    crops = data.voice_crops(pieces, 32, 64, seed=0)   # 64 random 32-step windows, transposed in range
    music = data.voices_to_music(pieces[0])            # back to notes (a run of one pitch = one held note)

Lesson: 09_capstone
"""
from __future__ import annotations

import numpy as np

from .sets import _select, _store
from .store import DataError

__all__ = ["VOICE_LOW", "VOICE_HIGH", "VOICE_NAMES", "voices", "voice_crops", "voices_to_music", "melody_to_steps"]

VOICE_LOW, VOICE_HIGH = 36, 81      # Coconet's pitch range, C2..A5 (46 pitches); every chorale note lies inside
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")


def voices(name: str = "chorales", split: str = "train", steps_per_quarter: int = 2) -> list[np.ndarray]:
    """One ``(4, T)`` int16 array of MIDI pitches (-1 = rest) per chorale of ``split``.

    Step ``t`` holds, for each voice, the pitch sounding at the start of the step (if a voice has
    two notes there, as in a divided part, the higher one). The upbeat is kept: step 0 is the
    piece's first note. ``steps_per_quarter`` must divide the stored grid's 4.

    Lesson: 09_capstone
    """
    store = _store(name)
    if len(store.parts) != 4:
        raise DataError(f"{name!r} is not a four-part data set; voices() reads the chorales.")
    if isinstance(steps_per_quarter, bool) or steps_per_quarter not in (1, 2, 4):
        raise DataError(f"steps_per_quarter must be 1, 2 or 4 (the stored grid is 16th notes), got {steps_per_quarter!r}.")
    every = store.spq // int(steps_per_quarter)           # stored 16th-note steps per voice step
    out = []
    for row in _select(store, split).tolist():
        n = store.notes(row)
        length = -(-int(n["end"].max()) // every) if len(n["end"]) else 0
        v = np.full((4, length), -1, np.int16)
        order = np.argsort(n["pitch"], kind="stable")     # lower pitches first, so a higher one overwrites
        for i in order.tolist():
            a = -(-int(n["start"][i]) // every)           # first step whose start lies inside the note
            b = -(-int(n["end"][i]) // every)
            if b > a:
                v[int(n["part"][i]), a:b] = int(n["pitch"][i])
        out.append(v)
    return out


def voice_crops(pieces: list[np.ndarray], length: int, n: int, *, seed: int = 0, transpose: tuple = (-6, 5),
                low: int = VOICE_LOW, high: int = VOICE_HIGH) -> np.ndarray:
    """``n`` random windows of ``length`` steps from ``pieces``, each transposed in ``low..high``: ``(n, 4, length)``.

    A window is drawn from a piece chosen in proportion to its length; its transposition is drawn
    from ``transpose`` (inclusive) among the shifts that keep every note in range. Pieces shorter than
    ``length`` are skipped. The same ``seed`` gives the same crops.

    Lesson: 09_capstone
    """
    long = [p for p in pieces if p.shape[1] >= length]
    if not long:
        raise DataError(f"No piece has {length} steps; use a shorter window.")
    rng = np.random.default_rng(seed)
    weights = np.array([p.shape[1] - length + 1 for p in long], float)
    picks = rng.choice(len(long), size=n, p=weights / weights.sum())
    out = np.empty((n, 4, length), np.int16)
    for j, k in enumerate(picks.tolist()):
        p = long[k]
        t = int(rng.integers(0, p.shape[1] - length + 1))
        w = p[:, t : t + length]
        sounding = w[w >= 0]
        lo, hi = (int(sounding.min()), int(sounding.max())) if len(sounding) else (low, low)
        shifts = [s for s in range(transpose[0], transpose[1] + 1) if lo + s >= low and hi + s <= high]
        s = int(rng.choice(shifts)) if shifts else 0
        out[j] = np.where(w >= 0, w + s, -1)
    return out


def voices_to_music(voices, steps_per_quarter: int = 2, *, qpm: float = 120.0, title: str = "",
                    time_signature: tuple = (4, 4), pickup_steps: int = 0):
    """A voice array ``(V, T)`` as a :class:`~course.music.Music` with parts Soprano, Alto, Tenor, Bass.

    A run of one pitch in a voice becomes one held note (a repeated note cannot be told from a held
    one in this representation). ``pickup_steps`` steps before the first downbeat (an upbeat).
    Lesson: 09_capstone
    """
    from ..music import Music, Part

    v = np.asarray(voices)
    if v.ndim != 2:
        raise DataError(f"voices must be a (V, T) array of MIDI pitches, -1 for a rest; got shape {v.shape}.")
    step = 60.0 / float(qpm) / int(steps_per_quarter)
    pitch, start, end, part = [], [], [], []
    for k, line in enumerate(v.tolist()):
        t = 0
        while t < len(line):
            u = t
            while u + 1 < len(line) and line[u + 1] == line[t]:
                u += 1
            if line[t] >= 0:
                pitch.append(line[t]), start.append(t * step), end.append((u + 1) * step), part.append(k)
            t = u + 1
    names = [n.capitalize() for n in VOICE_NAMES][: len(v)] if len(v) <= 4 else [f"voice {k + 1}" for k in range(len(v))]
    return Music.from_arrays(pitch, start, end, part=part, qpm=float(qpm), parts=tuple(Part(name=n) for n in names),
                             title=title, time_signature=tuple(time_signature), steps_per_quarter=4,
                             pickup=pickup_steps / int(steps_per_quarter))


def melody_to_steps(music, steps_per_quarter: int = 2) -> np.ndarray:
    """A monophonic melody as ``(T,)`` MIDI pitches at ``steps_per_quarter`` steps (-1 = rest): a soprano line.

    Each step holds the note sounding at its start (of several, the highest). Lesson: 09_capstone
    """
    notes = list(music.notes)
    if not notes:
        raise DataError("The melody has no notes.")
    step = 60.0 / float(music.qpm) / int(steps_per_quarter)
    length = int(np.ceil(max(n.end for n in notes) / step - 1e-6))
    out = np.full(length, -1, np.int64)
    for n in sorted(notes, key=lambda n: n.pitch):
        a, b = int(np.ceil(n.start / step - 1e-6)), int(np.ceil(n.end / step - 1e-6))
        out[a:b] = n.pitch
    return out
