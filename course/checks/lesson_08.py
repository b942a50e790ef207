"""Checks for lesson 08, a music GAN: four statistics of bars that tell generated bars from the data's
(MuseGAN's empty bars, used pitch classes and qualified notes, and MusPy's scale consistency).

Written with the check kit (:mod:`course.checks.kit`). The inputs are bar arrays ``(n_bars, steps_per_bar,
n_pitches)`` of int 0/1, pitch index ``k`` = MIDI ``low + k``. Expected answers come from
:mod:`course.metrics.bars` (tested on bars worked out by hand), computed in the comparison after the
student's function has run. The random bars are drawn note by note (a note starts, then is held with some
probability), with bars left empty, whole inputs left silent, and notes placed across bar lines, so that
each named mistake gives another answer than the right one on some case.

Lesson: 08_music_gan
"""
from __future__ import annotations

import math

import numpy as np

from ..metrics import bars as barmetrics
from .kit import Case, CheckFailure, against, exercise, number

LESSON = "08_music_gan"
TOL = dict(rtol=1e-6, atol=1e-9)
NO_NOTES = ("this input has no notes at all, so the rate is undefined (0 / 0): return float('nan'), as the "
            "exercise asks")


def _a_number(got) -> float:
    return number(got, "your function")


def _judge(reference, mistakes: dict, *, undefined: str = ""):
    """``against(reference, mistakes)`` on one number; where the right answer is NaN, say why."""
    judge = against(reference, mistakes, convert=_a_number, **TOL)

    def compare(got, *args, **kwargs):
        try:
            judge(got, *args, **kwargs)
        except CheckFailure as e:
            if undefined and undefined not in str(e) and math.isnan(reference(*args, **kwargs)):
                raise CheckFailure(f"{str(e).rstrip('. ')}; {undefined}") from None
            raise

    return compare


# ---------------------------------------------------------------------------- drawing bars
def _phrase(r: np.random.Generator, n_bars: int, steps: int, pitches: int, *, voices: int, start: float,
            hold: float, empty: int = 0, cross: bool = False) -> np.ndarray:
    """Random bars ``(n_bars, steps, pitches)`` of int 0/1, drawn note by note.

    ``voices`` pitch rows play; in each, a silent step starts a note with probability ``start`` and a
    sounding step goes on with probability ``hold``. ``cross`` puts a 4-step note across one bar line
    (2 steps each side, silence around it); then ``empty`` other bars are silenced.
    """
    roll = np.zeros((n_bars * steps, pitches), np.int64)          # (T, P): the bars joined end to end
    rows = r.choice(pitches, size=min(voices, pitches), replace=False)
    u = r.random((len(roll), len(rows)))
    on = np.zeros(len(rows), bool)
    for t in range(len(roll)):
        on = np.where(on, u[t] < hold, u[t] < start)
        roll[t, rows] = on
    bars = roll.reshape(n_bars, steps, pitches)
    kept: list[int] = []
    if cross and n_bars >= 2:
        i, k = int(r.integers(n_bars - 1)), int(r.integers(pitches))
        bars[i, -3:, k] = [0, 1, 1]
        bars[i + 1, :3, k] = [1, 1, 0]
        kept = [i, i + 1]
    others = [b for b in range(n_bars) if b not in kept]
    if empty and others:
        bars[r.choice(others, size=min(empty, len(others)), replace=False)] = 0
    return bars


def _random_shape(r: np.random.Generator) -> tuple[int, int, int]:
    return int(r.integers(2, 9)), int(r.integers(4, 17)), int(r.integers(12, 49))


def _bars_of(notes: list[tuple[int, int, int, int]], n_bars: int, steps: int, pitches: int) -> np.ndarray:
    """Hand-made bars: ``notes`` are ``(bar, first step, steps held, pitch index)``; a note may run past its bar."""
    roll = np.zeros((n_bars * steps, pitches), np.int64)
    for bar, step, length, k in notes:
        t = bar * steps + step
        roll[t:t + length, k] = 1
    return roll.reshape(n_bars, steps, pitches)


# ---------------------------------------------------------------------------- empty_bar_rate
def reference_empty_bar_rate(bars) -> float:
    """The fraction of bars in which nothing sounds."""
    return barmetrics.empty_bar_rate(bars)


def _eb_non_empty(bars):
    return float(np.asarray(bars).any(axis=(1, 2)).mean())


def _eb_empty_steps(bars):
    return float((~np.asarray(bars).any(axis=2)).mean())


def _eb_count(bars):
    return float((~np.asarray(bars).any(axis=(1, 2))).sum())


EB_MISTAKES = {
    _eb_non_empty: "that is the fraction of bars in which something sounds (the non-empty rate); count the empty ones",
    _eb_empty_steps: "that is the fraction of silent time steps; a bar is empty only when all its steps are silent",
    _eb_count: "that is the number of empty bars; divide by the number of bars",
}


@exercise(compare=_judge(reference_empty_bar_rate, EB_MISTAKES),
          hint="a bar is empty when none of its cells, at any step and any pitch, is 1; the rate is the number "
               "of empty bars divided by the number of bars")
def empty_bar_rate(r):
    """Check ``empty_bar_rate(bars (n_bars, steps_per_bar, n_pitches)) -> float``."""
    cases = [
        Case("5 bars of 8 steps, the 2nd and 4th empty",
             _bars_of([(0, 0, 4, 3), (0, 6, 1, 7), (2, 2, 2, 0), (4, 1, 7, 11)], 5, 8, 12)),
        Case("one bar that sounds", _bars_of([(0, 3, 5, 10)], 1, 16, 24)),
        Case("every bar empty", np.zeros((4, 16, 24), np.int64)),
    ]
    for i in range(5):
        n_bars, steps, pitches = _random_shape(r)
        empty = int(r.integers(1, n_bars)) if i < 4 else 0
        bars = _phrase(r, n_bars, steps, pitches, voices=int(r.integers(1, 5)), start=float(r.uniform(0.05, 0.3)),
                       hold=float(r.uniform(0.3, 0.8)), empty=empty, cross=bool(i % 2))
        cases.append(Case(f"random #{i + 1} ({n_bars} bars of {steps} steps, {pitches} pitches)", bars))
    return cases


# ---------------------------------------------------------------------------- used_pitch_classes
def reference_used_pitch_classes(bars, low=21) -> float:
    """The mean number of distinct pitch classes (low + k) % 12 per non-empty bar (0.0 if all are empty)."""
    return barmetrics.used_pitch_classes(bars, low)


def _distinct_per_bar(bars, groups, non_empty_only=True):
    """Mean over bars of the number of distinct ``groups[k]`` among the sounding pitch indices k."""
    sounding = np.asarray(bars).any(axis=1)                       # (n_bars, n_pitches)
    counts = np.array([len(set(groups[np.flatnonzero(s)].tolist())) for s in sounding])
    keep = sounding.any(axis=1) if non_empty_only else np.ones(len(sounding), bool)
    return float(counts[keep].mean()) if keep.any() else 0.0


def _upc_all_bars(bars, low=21):
    return _distinct_per_bar(bars, (np.arange(np.shape(bars)[2]) + low) % 12, non_empty_only=False)


def _upc_pitches(bars, low=21):
    return _distinct_per_bar(bars, np.arange(np.shape(bars)[2]))


def _upc_octaves(bars, low=21):
    return _distinct_per_bar(bars, (np.arange(np.shape(bars)[2]) + low) // 12)


def _upc_chroma_groups(bars, low=21):
    n = -(-np.shape(bars)[2] // 12)                                # ceil(P / 12) consecutive pitches per group
    return _distinct_per_bar(bars, np.arange(np.shape(bars)[2]) // n)


def _upc_whole_input(bars, low=21):
    b = np.asarray(bars)
    return _distinct_per_bar(b.reshape(1, -1, b.shape[2]), (np.arange(b.shape[2]) + low) % 12)


UPC_MISTAKES = {
    _upc_all_bars: "that is the mean over all bars, empty ones included (counting 0); average over the bars "
                   "in which something sounds",
    _upc_pitches: "that counts distinct pitches; C4 and C5 are one pitch class: count distinct (low + k) % 12",
    _upc_octaves: "that counts octaves ((low + k) // 12); the pitch class is the remainder, (low + k) % 12",
    _upc_chroma_groups: "that groups consecutive semitones into 12 bins (as the MuseGAN code's chroma does); a "
                        "pitch class collects the pitches 12 semitones apart: (low + k) % 12",
    _upc_whole_input: "that counts the pitch classes of all the bars together; count in each bar, then average",
}


@exercise(compare=_judge(reference_used_pitch_classes, UPC_MISTAKES),
          hint="for each bar in which something sounds, collect the pitch classes (low + k) % 12 of the pitch "
               "indices k that sound at any of its steps, count the distinct ones, and average these counts over "
               "the non-empty bars (0.0 when every bar is empty)")
def used_pitch_classes(r):
    """Check ``used_pitch_classes(bars (n_bars, steps_per_bar, n_pitches), low=21) -> float``."""
    # 24 pitches from C4 (index 12 = C5): bar 0 holds C4 C5 E4 (2 pitch classes), bar 1 is empty, bar 2
    # holds G4 A4 B4 (3), bar 3 C4 C#4 C#5 (2): (2 + 3 + 2) / 3 = 7/3; over all 4 bars it would be 7/4
    cases = [
        Case("4 bars from C4 (low=60), one empty",
             _bars_of([(0, 0, 4, 0), (0, 0, 2, 12), (0, 2, 2, 4), (2, 0, 2, 7), (2, 2, 1, 9), (2, 3, 1, 11),
                       (3, 0, 1, 0), (3, 1, 1, 1), (3, 2, 2, 13)], 4, 4, 24), low=60),
        Case("one bar from A0 (the default low=21)", _bars_of([(0, 0, 8, 3), (0, 4, 4, 15), (0, 8, 8, 10)], 1, 16, 36)),
        Case("every bar empty", np.zeros((3, 8, 24), np.int64), low=31),
    ]
    for i in range(6):
        n_bars, steps, pitches = _random_shape(r)
        low = [None, 31, 0, 36, 21, int(r.integers(20, 60))][i]
        bars = _phrase(r, n_bars, steps, pitches, voices=int(r.integers(2, 9)), start=float(r.uniform(0.05, 0.3)),
                       hold=float(r.uniform(0.3, 0.8)), empty=int(r.integers(1, n_bars)), cross=bool(i % 2))
        name = f"random #{i + 1} ({n_bars} bars of {steps} steps, {pitches} pitches"
        cases.append(Case(name + ")", bars) if low is None else Case(name + f", low={low})", bars, low=low))
    return cases


# ---------------------------------------------------------------------------- qualified_note_rate
def reference_qualified_note_rate(bars, min_steps=3) -> float:
    """The fraction of notes (runs in the joined bars) at least ``min_steps`` long; NaN with no notes."""
    return barmetrics.qualified_note_rate(bars, min_steps)


def _runs(roll: np.ndarray) -> list[int]:
    """The lengths of the runs of 1s in each column of a 2-D 0/1 array."""
    lengths = []
    for column in np.asarray(roll).T:
        n = 0
        for v in list(column) + [0]:
            if v:
                n += 1
            elif n:
                lengths.append(n)
                n = 0
    return lengths


def _joined(bars) -> np.ndarray:
    b = np.asarray(bars)
    return b.reshape(-1, b.shape[2])


def _qn_per_bar(bars, min_steps=3):
    lengths = [n for bar in np.asarray(bars) for n in _runs(bar)]
    return float(np.mean([n >= min_steps for n in lengths])) if lengths else math.nan


def _qn_cells(bars, min_steps=3):
    lengths = np.array(_runs(_joined(bars)))
    return float(lengths[lengths >= min_steps].sum() / lengths.sum()) if len(lengths) else math.nan


def _qn_longer(bars, min_steps=3):
    lengths = _runs(_joined(bars))
    return float(np.mean([n > min_steps for n in lengths])) if lengths else math.nan


def _qn_zero_without_notes(bars, min_steps=3):
    lengths = _runs(_joined(bars))
    return float(np.mean([n >= min_steps for n in lengths])) if lengths else 0.0


QN_MISTAKES = {
    _qn_per_bar: "that is what cutting the notes at the bar lines gives (a note held across a bar line counted "
                 "as two shorter ones); join the bars end to end first",
    _qn_cells: "that is the fraction of sounding cells that belong to long notes; count notes, each once, "
               "whatever its length",
    _qn_longer: "that counts notes longer than min_steps; a note of exactly min_steps steps qualifies too (>=)",
    _qn_zero_without_notes: NO_NOTES,
}


@exercise(compare=_judge(reference_qualified_note_rate, QN_MISTAKES, undefined=NO_NOTES),
          hint="join the bars end to end into one roll (n_bars * steps_per_bar, n_pitches); a note is a run of "
               "consecutive 1s in one pitch column; the rate is the number of notes at least min_steps long "
               "divided by the number of notes, and NaN when there are no notes")
def qualified_note_rate(r):
    """Check ``qualified_note_rate(bars (n_bars, steps_per_bar, n_pitches), min_steps=3) -> float`` (NaN: no notes)."""
    # 6 notes: C (4 steps), E, E (1 each), G (2), D (3 steps, held from bar 2 into bar 3), F (1)
    hand = _bars_of([(0, 0, 4, 0), (0, 0, 1, 4), (0, 2, 1, 4), (2, 0, 2, 7), (1, 2, 3, 2), (1, 0, 1, 5)], 3, 4, 12)
    cases = [
        Case("3 bars of 4 steps, a note held across a bar line", hand),
        Case("the same bars and a 1-step B in bar 3, min_steps=2", hand + _bars_of([(2, 3, 1, 11)], 3, 4, 12),
             min_steps=2),
        Case("no notes at all", np.zeros((2, 16, 24), np.int64)),
        Case("one bar, min_steps=4: two runs of one pitch that touch make one note",
             _bars_of([(0, 0, 4, 1), (0, 4, 8, 1), (0, 2, 14, 9), (0, 14, 2, 5), (0, 10, 4, 3)], 1, 16, 12), min_steps=4),
    ]
    for i in range(6):
        n_bars, steps, pitches = _random_shape(r)
        bars = _phrase(r, n_bars, steps, pitches, voices=int(r.integers(1, 7)), start=float(r.uniform(0.1, 0.4)),
                       hold=float(r.uniform(0.2, 0.8)), empty=int(r.integers(0, n_bars)), cross=i != 5)
        name = f"random #{i + 1} ({n_bars} bars of {steps} steps, {pitches} pitches"
        if i % 3 == 2:
            cases.append(Case(name + ")", bars))
        else:
            m = int(r.integers(2, 5))
            cases.append(Case(name + f", min_steps={m})", bars, min_steps=m))
    return cases


# ---------------------------------------------------------------------------- in_scale_rate
def reference_in_scale_rate(bars, low=21) -> float:
    """The largest fraction of notes whose pitch class lies in one of the 12 major scales; NaN with no notes."""
    return barmetrics.in_scale_rate(bars, low)


_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)


def _note_classes(bars, low):
    """The pitch class of every note (run in the joined bars), and of every sounding cell."""
    roll = _joined(bars)
    notes = [(k + low) % 12 for k in range(roll.shape[1]) for _ in _runs(roll[:, k:k + 1])]
    cells = [(k + low) % 12 for k in np.nonzero(roll)[1]]
    return np.array(notes, int), np.array(cells, int)


def _isr_c_major(bars, low=21):
    notes, _ = _note_classes(bars, low)
    return float(_MAJOR[notes].mean()) if len(notes) else math.nan


def _isr_cells(bars, low=21):
    _, cells = _note_classes(bars, low)
    return float(max(np.roll(_MAJOR, s)[cells].mean() for s in range(12))) if len(cells) else math.nan


def _isr_minimum(bars, low=21):
    notes, _ = _note_classes(bars, low)
    return float(min(np.roll(_MAJOR, s)[notes].mean() for s in range(12))) if len(notes) else math.nan


ISR_MISTAKES = {
    _isr_c_major: "that is the fraction of notes in C major only; try all 12 major scales and keep the best",
    _isr_cells: "that counts sounding cells (a long note weighs more); count notes, each once",
    _isr_minimum: "that is the worst scale's fraction; the rate is the largest over the 12 scales",
}


@exercise(compare=_judge(reference_in_scale_rate, ISR_MISTAKES, undefined=NO_NOTES),
          hint="find the notes (runs of 1s in each pitch of the bars joined end to end) and their pitch classes "
               "(low + k) % 12; for each of the 12 major scales (C major and its 11 transpositions) take the "
               "fraction of notes in it; return the largest, and NaN when there are no notes")
def in_scale_rate(r):
    """Check ``in_scale_rate(bars (n_bars, steps_per_bar, n_pitches), low=21) -> float`` (NaN: no notes)."""
    # from C4: C held 4 steps, C# twice, E once: 4 notes, 7 cells; best scales (C# major, Ab major) 3 of 4
    cases = [
        Case("C4 held, C#4 twice, E4 (low=60)", _bars_of([(0, 0, 4, 0), (1, 0, 1, 1), (1, 2, 1, 1), (1, 3, 1, 4)],
                                                         2, 4, 12), low=60),
        Case("a melody in D major (default low=21)", _bars_of([(0, 0, 2, 46), (0, 2, 2, 48), (0, 4, 4, 50), (0, 8, 1, 52),
                                                              (0, 9, 1, 45), (0, 10, 6, 53), (1, 0, 16, 38)], 2, 16, 60)),
        Case("no notes at all", np.zeros((3, 8, 36), np.int64), low=36),
    ]
    for i in range(6):
        n_bars, steps, pitches = _random_shape(r)
        low = [None, 48, 31, None, int(r.integers(20, 60)), 0][i]
        bars = _phrase(r, n_bars, steps, pitches, voices=int(r.integers(2, 7)), start=float(r.uniform(0.1, 0.4)),
                       hold=float(r.uniform(0.3, 0.8)), empty=int(r.integers(0, n_bars)), cross=bool(i % 2))
        name = f"random #{i + 1} ({n_bars} bars of {steps} steps, {pitches} pitches"
        cases.append(Case(name + ")", bars) if low is None else Case(name + f", low={low})", bars, low=low))
    return cases
