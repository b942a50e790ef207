"""Music statistics of piano rolls: generated pieces against the data's own.

A roll is a ``(T, P)`` 0/1 array; a list of rolls counts all their frames together::

    metrics.polyphony(roll)              # mean number of sounding keys per frame
    metrics.compare_stats(generated, reference)   # every statistic side by side

Lesson: 04_polyphonic_chorales (also used by 08_music_gan and 09_capstone)
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import CourseError
from ..music.pianoroll import PIANO_LOW

__all__ = ["polyphony", "keys_per_frame", "polyphony_std", "polyphony_rate", "empty_frame_rate", "note_density",
           "mean_note_length", "pitch_range", "pitch_class_histogram", "pitch_class_entropy", "music_stats",
           "compare_stats", "describe_stats"]


def _list(rolls, what: str) -> list[np.ndarray]:
    """A roll or a list of rolls -> a list of ``(T, P)`` bool arrays."""
    if hasattr(rolls, "detach"):
        rolls = rolls.detach().cpu().numpy()
    if isinstance(rolls, np.ndarray) and rolls.ndim != 3:
        rolls = [rolls]
    out = [(r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r)) > 0.5 for r in rolls]
    for r in out:
        if r.ndim != 2:
            raise CourseError(f"{what}: a piano roll is 2-D (time steps, keys); got shape {r.shape}.")
    if not out or sum(len(r) for r in out) == 0:
        raise CourseError(f"{what}: no frames to measure; give a piano roll (T, P) or a list of them.")
    if len({r.shape[1] for r in out}) != 1:
        raise CourseError(f"{what}: all piano rolls need the same number of keys.")
    return out


def polyphony(roll) -> float:
    """Mean number of sounding keys per frame (all frames, silent ones included). Lesson: 04_polyphonic_chorales"""
    frames = np.concatenate(_list(roll, "polyphony"))
    return float(frames.sum(1).mean())


def keys_per_frame(roll) -> np.ndarray:
    """The number of sounding keys in every frame, all rolls' frames in a row: ``(total frames,)`` ints.

    Lesson: 04_polyphonic_chorales
    """
    return np.concatenate(_list(roll, "keys_per_frame")).sum(1).astype(np.int64)


def polyphony_std(roll) -> float:
    """Standard deviation of the number of sounding keys per frame (the spread around :func:`polyphony`).

    Lesson: 04_polyphonic_chorales
    """
    return float(keys_per_frame(roll).std())


def polyphony_rate(roll, n: int = 4) -> float:
    """Fraction of frames in which exactly ``n`` keys sound (``n=4``: four-voice frames).

    Lesson: 04_polyphonic_chorales
    """
    if int(n) != n or n < 0:
        raise CourseError(f"polyphony_rate: n is a number of keys, a whole number >= 0; got {n!r}.")
    return float((keys_per_frame(roll) == int(n)).mean())


def empty_frame_rate(roll) -> float:
    """Fraction of frames in which nothing sounds. Lesson: 04_polyphonic_chorales"""
    frames = np.concatenate(_list(roll, "empty_frame_rate"))
    return float((~frames.any(1)).mean())


def _onsets(r: np.ndarray) -> np.ndarray:
    """``(T, P)`` bool: a note starts here (on now, off in the frame before)."""
    before = np.vstack([np.zeros((1, r.shape[1]), bool), r[:-1]])
    return r & ~before


def note_density(roll) -> float:
    """Notes started per frame (a held key counts once, when it starts). Lesson: 04_polyphonic_chorales"""
    rolls = _list(roll, "note_density")
    return float(sum(_onsets(r).sum() for r in rolls) / sum(len(r) for r in rolls))


def mean_note_length(roll) -> float:
    """Mean length of a note in frames (a run of consecutive frames of one key); 0.0 with no notes.

    Lesson: 04_polyphonic_chorales
    """
    rolls = _list(roll, "mean_note_length")
    notes = sum(int(_onsets(r).sum()) for r in rolls)
    return float(sum(int(r.sum()) for r in rolls) / notes) if notes else 0.0


def pitch_range(roll) -> int:
    """Semitones from the lowest to the highest key that sounds (0 for silence). Lesson: 04_polyphonic_chorales"""
    keys = np.flatnonzero(np.concatenate(_list(roll, "pitch_range")).any(0))
    return int(keys[-1] - keys[0]) if len(keys) else 0


def pitch_class_histogram(roll, low: int = PIANO_LOW) -> np.ndarray:
    """How often each pitch class sounds, C first: ``(12,)`` summing to 1 (all zeros for silence).

    Counts sounding frames, so a long note weighs more than a short one. ``low`` is the MIDI
    pitch of column 0 (21 for an 88-key roll, 0 for a 128-pitch one).

    Lesson: 04_polyphonic_chorales
    """
    frames = np.concatenate(_list(roll, "pitch_class_histogram"))
    per_key = frames.sum(0).astype(np.float64)
    hist = np.zeros(12)
    np.add.at(hist, (np.arange(len(per_key)) + int(low)) % 12, per_key)
    total = hist.sum()
    return hist / total if total else hist


def pitch_class_entropy(roll, low: int = PIANO_LOW) -> float:
    """Entropy of :func:`pitch_class_histogram` in bits: 0 (one pitch class) to log2(12) = 3.58 (all equal).

    Tonal music sits well below the maximum: a few pitch classes of its key dominate.

    Lesson: 04_polyphonic_chorales
    """
    h = pitch_class_histogram(roll, low)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum()) if len(h) else 0.0


_STATS = {
    "polyphony": (polyphony, "sounding keys per frame"),
    "empty_frame_rate": (empty_frame_rate, "fraction of silent frames"),
    "note_density": (note_density, "notes started per frame"),
    "mean_note_length": (mean_note_length, "frames per note"),
    "pitch_range": (pitch_range, "semitones, lowest to highest"),
    "pitch_class_entropy": (pitch_class_entropy, "bits, at most 3.58"),
}


def music_stats(rolls, low: int = PIANO_LOW) -> dict[str, float]:
    """Every statistic of this module for a roll or a list of rolls: ``{name: value}``.

    Lesson: 04_polyphonic_chorales
    """
    out = {name: float(f(rolls)) for name, (f, _) in _STATS.items() if name != "pitch_class_entropy"}
    out["pitch_class_entropy"] = pitch_class_entropy(rolls, low)
    return out


def compare_stats(generated, reference, low: int = PIANO_LOW) -> dict[str, dict[str, float]]:
    """Statistics of generated pieces next to the reference data's.

    Returns ``{name: {"generated": g, "reference": r, "ratio": g / r}}`` for every statistic of
    :func:`music_stats`, plus ``"pitch_class_distance"``: the total variation distance between
    the two pitch-class histograms (0 = the same distribution, 1 = nothing in common).
    A ratio near 1 means the model matches the data on that statistic. ``low``: the MIDI pitch
    of column 0 (21 for 88-key rolls).

    Lesson: 04_polyphonic_chorales
    """
    g, r = music_stats(generated, low), music_stats(reference, low)
    out = {k: {"generated": g[k], "reference": r[k], "ratio": g[k] / r[k] if r[k] else math.nan} for k in g}
    tv = 0.5 * float(np.abs(pitch_class_histogram(generated, low) - pitch_class_histogram(reference, low)).sum())
    out["pitch_class_distance"] = {"generated": tv, "reference": 0.0, "ratio": math.nan}
    return out


def describe_stats(comparison: dict) -> str:
    """A small text table of :func:`compare_stats`'s result. Lesson: 04_polyphonic_chorales"""
    lines = [f"{'statistic':<22}{'generated':>11}{'data':>9}   unit"]
    for k, v in comparison.items():
        unit = _STATS[k][1] if k in _STATS else "total variation, 0 = same"
        lines.append(f"{k:<22}{v['generated']:>11.3f}{v['reference']:>9.3f}   {unit}")
    return "\n".join(lines)

