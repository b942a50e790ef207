"""Evaluation: likelihood in nats per frame, and music statistics of generated pieces against the data's.

Likelihood (lower is better)::

    metrics.nll_per_frame(logits, rolls, mask)       # an independent-Bernoulli model's NLL, nats/frame
    metrics.marginal_nll(train_rolls, test_rolls)    # the trivial floor: one fixed probability per key

Music statistics (a roll is a ``(T, P)`` 0/1 array; a list of rolls counts all their frames together)::

    metrics.polyphony(roll)              # mean number of sounding keys per frame
    metrics.compare_stats(generated, reference)   # every statistic side by side

Lesson: 04_polyphonic_chorales (also used by 08_music_gan and 09_capstone)
"""
from __future__ import annotations

import math
import numpy as np

from .errors import CourseError
from .music.pianoroll import PIANO_LOW

__all__ = ["nll_per_frame", "marginal_probs", "marginal_nll", "polyphony", "empty_frame_rate", "note_density",
           "mean_note_length", "pitch_range", "pitch_class_histogram", "pitch_class_entropy", "music_stats",
           "compare_stats"]


# ---------------------------------------------------------------------------------------------
# likelihood
# ---------------------------------------------------------------------------------------------

def nll_per_frame(logits, rolls, mask=None) -> float:
    """Negative log-likelihood in nats per frame under independent Bernoulli outputs.

    With ``p_k = sigmoid(logit_k)`` and ``v_k`` the frame's 0/1 values,

        NLL(frame) = -sum_k [ v_k log p_k + (1 - v_k) log(1 - p_k) ]

    summed over the keys and averaged over the frames where ``mask`` is True.

    Args:
        logits: ``(..., T, P)`` tensor or array of logits (any real numbers).
        rolls: the same shape, the true frames (0/1).
        mask: ``(..., T)`` bool, True on real frames (False on padding); None: every frame counts.

    Returns:
        nats per frame, a float.

    Lesson: 04_polyphonic_chorales
    """
    import torch
    import torch.nn.functional as F

    z = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits).double()
    v = torch.as_tensor(np.asarray(rolls) if not torch.is_tensor(rolls) else rolls).to(z.device).double()
    if z.shape != v.shape or z.ndim < 2:
        raise CourseError(f"logits and rolls need the same shape (..., frames, keys); got {tuple(z.shape)} "
                          f"and {tuple(v.shape)}.")
    per_frame = F.binary_cross_entropy_with_logits(z, v, reduction="none").sum(-1)   # (..., T)
    if mask is None:
        m = torch.ones_like(per_frame, dtype=torch.bool)
    else:
        m = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask).to(z.device).bool()
        if m.shape != per_frame.shape:
            raise CourseError(f"mask needs shape {tuple(per_frame.shape)} (one entry per frame); got {tuple(m.shape)}.")
    n = int(m.sum())
    if n == 0:
        raise CourseError("No frames to score: the mask is False everywhere.")
    return float((per_frame * m).sum()) / n


def _stack(rolls, what: str) -> np.ndarray:
    """A roll or a list of rolls -> all frames stacked, ``(N, P)`` float64."""
    if hasattr(rolls, "detach"):
        rolls = rolls.detach().cpu().numpy()
    if isinstance(rolls, np.ndarray) and rolls.ndim != 3:
        parts = [rolls]
    else:
        parts = [r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r) for r in rolls]
    if not parts:
        raise CourseError(f"{what} is empty: give a piano roll (T, P) or a list of them.")
    for r in parts:
        if r.ndim != 2:
            raise CourseError(f"{what}: a piano roll is 2-D (time steps, keys); got shape {r.shape}.")
    if len({r.shape[1] for r in parts}) != 1:
        raise CourseError(f"{what}: all piano rolls need the same number of keys.")
    return np.concatenate(parts).astype(np.float64)


def marginal_probs(train_rolls, smoothing: float = 1.0) -> np.ndarray:
    """Each key's probability of sounding in a frame, with additive smoothing: ``(P,)``.

        p_k = (n_k + smoothing) / (N + 2 * smoothing)

    where ``n_k`` is the number of training frames in which key ``k`` sounds and ``N`` the
    number of training frames (``smoothing`` pseudo-frames with the key on and as many with it off).

    Lesson: 04_polyphonic_chorales
    """
    if not smoothing >= 0:
        raise CourseError(f"smoothing must be >= 0, got {smoothing!r}.")
    frames = _stack(train_rolls, "train_rolls")
    return (frames.sum(0) + smoothing) / (len(frames) + 2 * smoothing)


def marginal_nll(train_rolls, test_rolls, smoothing: float = 1.0) -> float:
    """NLL in nats per frame of the test frames under the per-key marginal Bernoulli of the training frames.

    The model ignores time altogether: every frame is 88 independent coins with the
    probabilities of :func:`marginal_probs`. Any sequence model must beat it.

    Lesson: 04_polyphonic_chorales
    """
    p = marginal_probs(train_rolls, smoothing)
    test = _stack(test_rolls, "test_rolls")
    if test.shape[1] != len(p):
        raise CourseError(f"train and test rolls have different numbers of keys ({len(p)} and {test.shape[1]}).")
    with np.errstate(divide="ignore"):
        logp, log1p = np.log(p), np.log1p(-p)
    ll = np.where(test > 0.5, logp, log1p).sum(1)    # (N,) log-likelihood of each frame
    return float(-ll.mean())


# ---------------------------------------------------------------------------------------------
# music statistics
# ---------------------------------------------------------------------------------------------

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
    """A small text table of :func:`compare_stats`'s result."""
    lines = [f"{'statistic':<22}{'generated':>11}{'data':>9}   unit"]
    for k, v in comparison.items():
        unit = _STATS[k][1] if k in _STATS else "total variation, 0 = same"
        lines.append(f"{k:<22}{v['generated']:>11.3f}{v['reference']:>9.3f}   {unit}")
    return "\n".join(lines)


__all__.append("describe_stats")
