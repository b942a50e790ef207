"""Voice leading of four-part music: the rules a harmony teacher marks, counted.

The input is a *voice array* ``(V, T)`` of MIDI pitches, -1 for a rest (voice 0 the highest part,
soprano, then alto, tenor, bass; :func:`course.data.voices`). All counts are over time steps, so a
held note counts once per step it is held where a rule looks at one step, and a rule about motion
looks at consecutive steps where something changes.

- **parallel fifths and octaves**: two voices a perfect fifth (or an octave or unison) apart move in
  the same direction to another perfect fifth (octave, unison), compound intervals included. Common-
  practice harmony forbids them because the two voices stop sounding independent.
- **voice crossing**: a voice sounds below the voice under it (alto below tenor, say).
- **spacing**: adjacent upper voices more than an octave apart (soprano-alto, alto-tenor).
- **range**: notes outside each voice's range (by default, the range Bach gives that voice in the
  course's training chorales).

::

    from course import metrics
    metrics.parallel_fifths_octaves(v)          # how many (voice pair, step) move in parallel fifths or octaves
    metrics.voice_leading_report(v)             # every count, and the agreement with a reference harmonization

Lesson: 09_capstone
"""
from __future__ import annotations

import numpy as np

from ..errors import CourseError

__all__ = ["parallel_fifths_octaves", "voice_crossings", "spacing_errors", "out_of_range", "note_agreement",
           "voice_leading_report", "BACH_RANGES"]

# the lowest and highest MIDI pitch of each voice in the course's training chorales at eighth-note steps
# (data.voices("chorales", "train")): soprano C4-A5, alto F3-D5, tenor C3-A4, bass C2-E4
BACH_RANGES = ((60, 81), (53, 74), (48, 69), (36, 64))


def _voices(voices, what: str = "voices") -> np.ndarray:
    v = np.asarray(voices)
    if v.ndim != 2 or v.dtype.kind not in "iu":
        raise CourseError(f"{what} must be an int array (V, T) of MIDI pitches, -1 for a rest; got "
                          f"{v.dtype} of shape {v.shape}.")
    return v.astype(np.int64)


def parallel_fifths_octaves(voices) -> int:
    """How many (voice pair, step ``t >= 1``) move in parallel perfect fifths or octaves.

    Both voices sound at ``t - 1`` and ``t``, both change pitch in the same direction, and the interval
    between them in semitones mod 12 is 7 at both steps (fifths) or 0 at both steps (octaves and
    unisons, compound intervals included). Lesson: 09_capstone
    """
    v = _voices(voices)
    count = 0
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            a, b = v[i], v[j]
            sounding = (a[:-1] >= 0) & (a[1:] >= 0) & (b[:-1] >= 0) & (b[1:] >= 0)
            da, db = np.diff(a), np.diff(b)
            similar = (da != 0) & (db != 0) & (np.sign(da) == np.sign(db))
            iv = np.abs(a - b) % 12
            perfect = ((iv[:-1] == 7) & (iv[1:] == 7)) | ((iv[:-1] == 0) & (iv[1:] == 0))
            count += int((sounding & similar & perfect).sum())
    return count


def voice_crossings(voices) -> int:
    """How many (adjacent voice pair, step) have the upper voice strictly below the lower, both sounding."""
    v = _voices(voices)
    upper, lower = v[:-1], v[1:]
    return int(((upper >= 0) & (lower >= 0) & (upper < lower)).sum())


def spacing_errors(voices, max_gap: int = 12) -> int:
    """How many (step, adjacent pair among the upper voices) lie more than ``max_gap`` semitones apart.

    The pairs are soprano-alto and alto-tenor (all adjacent pairs but the lowest; the bass may lie
    far below the tenor). Lesson: 09_capstone
    """
    v = _voices(voices)
    upper, lower = v[:-2], v[1:-1]
    return int(((upper >= 0) & (lower >= 0) & (upper - lower > max_gap)).sum())


def out_of_range(voices, ranges=BACH_RANGES) -> np.ndarray:
    """The fraction of each voice's sounding steps outside its ``(low, high)`` range: float ``(V,)``."""
    v = _voices(voices)
    if len(ranges) != len(v):
        raise CourseError(f"{len(v)} voices but {len(ranges)} ranges.")
    out = np.zeros(len(v))
    for k, (lo, hi) in enumerate(ranges):
        s = v[k][v[k] >= 0]
        out[k] = float(((s < lo) | (s > hi)).mean()) if len(s) else 0.0
    return out


def note_agreement(voices, reference, which=(1, 2, 3)) -> float:
    """The share of steps, over the voices ``which``, where ``voices`` and ``reference`` sound the same pitch.

    Steps where the reference rests are left out. Lesson: 09_capstone
    """
    a, b = _voices(voices), _voices(reference, "reference")
    if a.shape != b.shape:
        raise CourseError(f"the two harmonizations differ in shape: {a.shape} and {b.shape}.")
    rows = list(which)
    sounding = b[rows] >= 0
    return float((a[rows] == b[rows])[sounding].mean()) if sounding.any() else float("nan")


def voice_leading_report(voices, reference=None) -> dict:
    """Every count above for one harmonization (and its agreement with ``reference``, if given)."""
    v = _voices(voices)
    steps = max(v.shape[1] - 1, 1)
    report = {
        "parallel fifths/octaves": parallel_fifths_octaves(v),
        "parallels per 100 steps": round(100 * parallel_fifths_octaves(v) / steps, 2),
        "voice crossings": voice_crossings(v),
        "spacing > octave": spacing_errors(v),
        "out of Bach's range": round(float(out_of_range(v).mean()), 4) if len(v) == 4 else float("nan"),
    }
    if reference is not None:
        report["agreement with reference"] = round(note_agreement(v, reference), 4)
    return report
