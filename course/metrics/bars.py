"""Statistics of bars: how a music GAN's bars compare with the data's, and with two baselines.

A *bar array* ("bars") has shape ``(n_bars, steps_per_bar, n_pitches)`` and holds 0/1 (NumPy or torch,
bool, int or float: a value > 0.5 counts as on); pitch index ``k`` is MIDI pitch ``low + k``. A *note* is
a maximal run of consecutive on steps of one pitch in the bars joined end to end, so a note held across a
bar line is one note. ::

    metrics.empty_bar_rate(bars)                   # MuseGAN's EB: fraction of silent bars
    metrics.qualified_note_rate(bars)              # MuseGAN's QN: fraction of notes >= 3 steps
    comparison = metrics.compare_bars({"data": real, "GAN": fake, "random": metrics.random_bars(real)}, "data")
    print(metrics.describe_bars(comparison))

The first three statistics are those of Dong et al. (2018), "MuseGAN: Multi-track sequential generative
adversarial networks for symbolic music generation and accompaniment" (AAAI): EB, UPC and QN; the next
two are MusPy's ``polyphony`` and ``scale_consistency`` (Dong et al. 2020, "MusPy: A toolkit for
symbolic music generation", ISMIR).

Lesson: 08_music_gan
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import CourseError

__all__ = ["empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "bar_polyphony", "in_scale_rate",
           "pitch_class_histogram_bars", "pitch_class_distance", "bar_stats", "compare_bars", "describe_bars",
           "random_bars", "shuffled_bars"]

BARS_SHAPE = "(n_bars, steps_per_bar, n_pitches)"
MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)   # C D E F G A B, C first


# ---------------------------------------------------------------------------------------------
# reading bars
# ---------------------------------------------------------------------------------------------

def _values(bars, what: str) -> np.ndarray:
    """``bars`` as a NumPy array of the shape ``(n_bars, steps_per_bar, n_pitches)`` (values as given)."""
    if hasattr(bars, "detach"):
        bars = bars.detach().cpu().numpy()
    try:
        arr = np.asarray(bars)
    except (TypeError, ValueError):
        raise CourseError(f"{what}: expected an array of shape {BARS_SHAPE}, got {type(bars).__name__}.") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise CourseError(f"{what}: expected an array of 0/1 numbers of shape {BARS_SHAPE}, got dtype {arr.dtype}.")
    if arr.ndim != 3:
        hint = " (one bar? add a first axis: bars[None])" if arr.ndim == 2 else ""
        raise CourseError(f"{what}: expected a 3-D array of shape {BARS_SHAPE}, got shape {arr.shape}{hint}.")
    n_bars, steps, pitches = arr.shape
    if n_bars == 0:
        raise CourseError(f"{what}: expected at least one bar in {BARS_SHAPE}, got shape {arr.shape} (no bars).")
    if steps == 0 or pitches == 0:
        raise CourseError(f"{what}: expected at least one step and one pitch in {BARS_SHAPE}, got shape {arr.shape}.")
    return arr


def _on(bars, what: str) -> np.ndarray:
    """``bars`` as a bool array ``(n_bars, steps_per_bar, n_pitches)``: True where the value is > 0.5."""
    return _values(bars, what) > 0.5


def _low(low, what: str) -> int:
    if isinstance(low, bool) or not isinstance(low, (int, np.integer)):
        raise CourseError(f"{what}: low (the MIDI pitch of pitch index 0) must be a whole number, got {low!r}.")
    return int(low)


def _pitch_classes(n_pitches: int, low: int) -> np.ndarray:
    """``(n_pitches,)``: the pitch class ``(low + k) mod 12`` of each pitch index ``k`` (0 = C)."""
    return (np.arange(n_pitches) + low) % 12


def _notes(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The notes of bars joined end to end: ``(pitch index, length in steps)``, two ``(n_notes,)`` arrays."""
    roll = on.reshape(-1, on.shape[2]).astype(np.int8)              # (n_bars * steps_per_bar, n_pitches)
    edges = np.diff(np.pad(roll, ((1, 1), (0, 0))), axis=0).T       # (n_pitches, T + 1): +1 onset, -1 offset
    pitch, start = np.nonzero(edges > 0)                            # sorted by pitch, then time
    _, end = np.nonzero(edges < 0)                                  # the matching offsets, in the same order
    return pitch, end - start


# ---------------------------------------------------------------------------------------------
# the statistics
# ---------------------------------------------------------------------------------------------

def empty_bar_rate(bars) -> float:
    """Fraction of the bars in which no cell sounds: MuseGAN's "EB" (ratio of empty bars).

    Defined as in Dong et al. (2018): the number of empty bars divided by the number of bars, in
    ``[0, 1]``. (The public MuseGAN code's current ``empty_bar_rate`` returns the non-empty rate,
    the fraction of bars in which something sounds, instead.)

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.

    Lesson: 08_music_gan
    """
    on = _on(bars, "empty_bar_rate")
    return float((~on.any(axis=(1, 2))).mean())


def used_pitch_classes(bars, low: int = 21) -> float:
    """Mean number of distinct pitch classes sounding in a bar, over the non-empty bars: MuseGAN's "UPC".

    The pitch class of index ``k`` is ``(low + k) mod 12`` (0 = C); a bar's count is between 1 and 12.
    Empty bars are left out, so that UPC does not repeat what :func:`empty_bar_rate` says; 0.0 when
    every bar is empty. (Dong et al. 2018 define UPC as the "number of used pitch classes per bar (from
    0 to 12)", which leaves open whether their mean counts the empty bars as 0; the public MuseGAN
    code computes its chroma by grouping 7 consecutive semitones of its 84 pitches, not by pitch
    class.) Shifting every pitch by the same amount does not change the count, so the
    value does not depend on ``low``; it is there so that every pitch-class function reads the same.

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.
        low: the MIDI pitch of index 0.

    Lesson: 08_music_gan
    """
    on = _on(bars, "used_pitch_classes")
    pcs = _pitch_classes(on.shape[2], _low(low, "used_pitch_classes"))
    sounding = on.any(axis=1)                                      # (n_bars, n_pitches)
    per_class = np.zeros((len(on), 12), bool)                      # (n_bars, 12)
    for c in range(12):
        per_class[:, c] = sounding[:, pcs == c].any(axis=1)
    counts = per_class.sum(axis=1)                                 # (n_bars,)
    non_empty = sounding.any(axis=1)
    return float(counts[non_empty].mean()) if non_empty.any() else 0.0


def qualified_note_rate(bars, min_steps: int = 3) -> float:
    """Fraction of the notes that last at least ``min_steps`` steps: MuseGAN's "QN"; NaN with no notes.

    The bars are joined end to end into one roll ``(n_bars * steps_per_bar, n_pitches)`` and a note is
    a maximal run of consecutive 1s of one pitch, so a note held across a bar line counts once, with
    its whole length. Dong et al. (2018) count a note "no shorter than three time steps" as qualified
    (with their 96 steps per 4/4 bar, three steps are a 32nd note); a low rate means fragmented music.
    (The public MuseGAN code's ``qualified_note_rate`` defaults to 2 steps.)
    With 16 steps per bar a step is a 16th note, so ``min_steps=3`` asks for a dotted 8th.

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.
        min_steps: the shortest qualified note, in steps (a whole number >= 1).

    Lesson: 08_music_gan
    """
    if isinstance(min_steps, bool) or not isinstance(min_steps, (int, np.integer)) or min_steps < 1:
        raise CourseError(f"qualified_note_rate: min_steps must be a whole number >= 1 (steps), got {min_steps!r}.")
    _, lengths = _notes(_on(bars, "qualified_note_rate"))
    return float((lengths >= min_steps).mean()) if len(lengths) else math.nan


def bar_polyphony(bars) -> float:
    """Mean number of pitches sounding at a time step, over the steps where at least one sounds; NaN if none.

    MusPy's ``polyphony`` (Dong et al. 2020): 1.0 for a melody, at most 4 for four-part chorales (two
    voices on one pitch sound as one).

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.

    Lesson: 08_music_gan
    """
    on = _on(bars, "bar_polyphony")
    per_step = on.reshape(-1, on.shape[2]).sum(axis=1)             # (n_bars * steps_per_bar,)
    active = per_step > 0
    return float(per_step[active].mean()) if active.any() else math.nan


def in_scale_rate(bars, low: int = 21) -> float:
    """The largest fraction of notes in one major scale: MusPy's ``scale_consistency``; NaN with no notes.

    Notes are found as in :func:`qualified_note_rate` (runs in the joined roll); each counts once,
    whatever its length, with pitch class ``(low + k) mod 12``. For each of the 12 major scales, the
    fraction of notes whose pitch class is in it; the result is the largest. MusPy (Dong et al.
    2020) takes the maximum over the major and the minor scales; a natural minor scale has the same
    pitch classes as a major one (A minor = C major), so the 12 major scales suffice. 1.0 means
    every note fits one key. Like :func:`used_pitch_classes` it does not depend on ``low``.

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.
        low: the MIDI pitch of index 0.

    Lesson: 08_music_gan
    """
    on = _on(bars, "in_scale_rate")
    pitch, _ = _notes(on)
    if not len(pitch):
        return math.nan
    pcs = _pitch_classes(on.shape[2], _low(low, "in_scale_rate"))[pitch]   # (n_notes,)
    return float(max(np.roll(MAJOR_SCALE, root)[pcs].mean() for root in range(12)))


def pitch_class_histogram_bars(bars, low: int = 21) -> np.ndarray:
    """How often each pitch class sounds, C first: ``(12,)`` summing to 1 (all zeros for silence).

    Counts sounding cells (step, pitch), so a long note weighs more than a short one. Pitch-class
    histograms as features for comparing generated music with data: Yang and Lerch (2020), "On the
    evaluation of generative models in music" (Neural Computing and Applications).

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``, 0/1.
        low: the MIDI pitch of index 0.

    Lesson: 08_music_gan
    """
    on = _on(bars, "pitch_class_histogram_bars")
    per_pitch = on.sum(axis=(0, 1)).astype(np.float64)             # (n_pitches,)
    hist = np.zeros(12)
    np.add.at(hist, _pitch_classes(on.shape[2], _low(low, "pitch_class_histogram_bars")), per_pitch)
    total = hist.sum()
    return hist / total if total else hist


def pitch_class_distance(bars_a, bars_b, low: int = 21) -> float:
    """Total variation distance ``0.5 * sum |h_a - h_b|`` between two pitch-class histograms.

    ``h`` is :func:`pitch_class_histogram_bars`. 0 means the same distribution of pitch classes, 1
    that they share none (Yang and Lerch 2020 compare such histograms; the distance chosen here is
    total variation). Silence has the all-zero histogram: 0.5 from anything that sounds.

    Lesson: 08_music_gan
    """
    h_a, h_b = pitch_class_histogram_bars(bars_a, low), pitch_class_histogram_bars(bars_b, low)
    return 0.5 * float(np.abs(h_a - h_b).sum())


_STATS = {
    "empty_bar_rate": "fraction of silent bars",
    "used_pitch_classes": "pitch classes per non-empty bar",
    "qualified_note_rate": "fraction of notes >= 3 steps",
    "bar_polyphony": "pitches per sounding step",
    "in_scale_rate": "fraction of notes in the best major scale",
}


def bar_stats(bars, low: int = 21) -> dict[str, float]:
    """Every statistic of this module for one bar array: ``{name: value}`` (names as the functions).

    Lesson: 08_music_gan
    """
    return {"empty_bar_rate": empty_bar_rate(bars), "used_pitch_classes": used_pitch_classes(bars, low),
            "qualified_note_rate": qualified_note_rate(bars), "bar_polyphony": bar_polyphony(bars),
            "in_scale_rate": in_scale_rate(bars, low)}


def compare_bars(sets: dict, reference: str, low: int = 21) -> dict[str, dict[str, float]]:
    """The statistics of several bar arrays side by side, and how far each one's pitch classes are from the reference's.

    Args:
        sets: ``{name: bars}``, e.g. ``{"data": real, "GAN": fake, "random": random_bars(real)}``.
        reference: the name of the set the others are measured against (usually the data).
        low: the MIDI pitch of index 0, the same for every set.

    Returns:
        ``{name: {**bar_stats(bars), "pitch_class_distance": d}}``, the reference first (its
        distance is 0), then the others in the order given; :func:`describe_bars` prints it.

    Lesson: 08_music_gan
    """
    if not isinstance(sets, dict) or not sets:
        raise CourseError("compare_bars: sets must be a non-empty dict {name: bars}, e.g. {'data': real, 'GAN': fake}.")
    if reference not in sets:
        raise CourseError(f"compare_bars: the reference {reference!r} is not one of the sets {list(sets)}.")
    order = [reference] + [name for name in sets if name != reference]
    out = {}
    for name in order:
        stats = bar_stats(sets[name], low)
        stats["pitch_class_distance"] = pitch_class_distance(sets[name], sets[reference], low)
        out[name] = stats
    return out


def _closest(comparison: dict, stat: str) -> str:
    """The sets, not the first (the reference), whose ``stat`` is nearest the reference's ("-" if none)."""
    ref, *others = comparison
    target = comparison[ref][stat]

    def gap(name):
        v = comparison[name][stat]
        if stat == "pitch_class_distance":
            return v
        if math.isnan(v) or math.isnan(target):
            return 0.0 if math.isnan(v) and math.isnan(target) else math.inf
        return abs(v - target)

    gaps = {n: gap(n) for n in others}
    best = min(gaps.values(), default=math.inf)
    if best == math.inf:
        return "-"
    return " = ".join(n for n, g in gaps.items() if abs(g - best) <= 1e-9)      # a tie names every set in it


def describe_bars(comparison: dict) -> str:
    """A small text table of :func:`compare_bars`'s result: a row per statistic, a column per set.

    The first set is the reference (as :func:`compare_bars` orders them). The last column names the
    other set closest to the reference on that statistic (every one of them, joined by ``=``, when
    several tie); for ``pitch_class_distance``, the one with the smallest distance.

    Lesson: 08_music_gan
    """
    if not isinstance(comparison, dict) or not comparison:
        raise CourseError("describe_bars: give the result of compare_bars (a non-empty dict).")
    names = list(comparison)
    stats = list(comparison[names[0]])
    widths = [max(9, len(n) + 2) for n in names]
    lines = [f"{'statistic':<22}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths)) + f"   closest to {names[0]}"]
    for stat in stats:
        cells = "".join(f"{comparison[n][stat]:>{w}.3f}" for n, w in zip(names, widths))
        lines.append(f"{stat:<22}{cells}   {_closest(comparison, stat)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------

def random_bars(like, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Bars of noise as dense as ``like``: each cell on independently with ``like``'s overall cell density.

    A baseline that knows how many cells sound and nothing else: no notes, no harmony, no rhythm.

    Args:
        like: ``(n_bars, steps_per_bar, n_pitches)``, 0/1: the bars whose density and shape to copy.
        n: how many bars to make (None: as many as ``like`` has).
        seed: for ``numpy.random.default_rng``.

    Returns:
        ``(n or n_bars, steps_per_bar, n_pitches)`` uint8 0/1.

    Lesson: 08_music_gan
    """
    on = _on(like, "random_bars")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise CourseError(f"random_bars: n (how many bars) must be a whole number >= 1 or None, got {n!r}.")
    shape = (int(n) if n is not None else on.shape[0],) + on.shape[1:]
    return (np.random.default_rng(seed).random(shape) < on.mean()).astype(np.uint8)


def shuffled_bars(bars, seed: int = 0) -> np.ndarray:
    """The same bars in a random order (a permutation of the first axis), as a new NumPy array.

    A baseline that keeps everything inside a bar and loses what joins bars: every within-bar statistic
    (empty bars, pitch classes per bar, polyphony, the pitch-class histogram) is unchanged, while notes
    held across a bar line break up.

    Args:
        bars: ``(n_bars, steps_per_bar, n_pitches)``.
        seed: for ``numpy.random.default_rng``.

    Lesson: 08_music_gan
    """
    arr = _values(bars, "shuffled_bars")
    return arr[np.random.default_rng(seed).permutation(len(arr))]
