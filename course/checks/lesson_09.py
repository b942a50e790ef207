"""Checks for lesson 09, the capstone: the harmonizer's annealed masking schedule, two voice-leading rules
(parallel fifths and octaves, voice crossing) and how much a piece copies (the longest shared run).

Written with the check kit (:mod:`course.checks.kit`). Expected answers come from :mod:`course.metrics`
(tested on hand-made examples) and :func:`course.nn.infill.yao_schedule`, computed in the comparison after
the student's function has run. Voice arrays are int ``(V, T)`` MIDI pitches, -1 for a rest; the random
ones are drawn around a bass line with intervals above it that are often perfect, so that parallels,
contrary and oblique motion, compound intervals, held notes, rests and crossings all occur.

Lesson: 09_capstone
"""
from __future__ import annotations

import numpy as np

from ..metrics import originality, voiceleading
from ..nn import infill
from .kit import Case, CheckFailure, against, as_array, exercise, number

LESSON = "09_capstone"
EXACT = dict(rtol=0.0, atol=0.0)


def _a_count(got) -> float:
    value = number(got, "your function")
    if value != int(value):
        raise CheckFailure(f"your function returned {value}; return a whole number (a count)")
    return value


# ---------------------------------------------------------------------------- masking_schedule
def reference_masking_schedule(n_steps, p_min=0.1, p_max=0.9, eta=0.7) -> np.ndarray:
    """Yao et al.'s annealed masking probabilities ``max(p_min, p_max - n (p_max - p_min) / (eta N))``."""
    return infill.yao_schedule(int(n_steps), p_min, p_max, eta)


def _ms_no_floor(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return p_max - n * (p_max - p_min) / (eta * n_steps)


def _ms_times_eta(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return np.maximum(p_min, p_max - n * (p_max - p_min) * eta / n_steps)


def _ms_from_one(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(1, n_steps + 1)
    return np.maximum(p_min, p_max - n * (p_max - p_min) / (eta * n_steps))


def _ms_without_p_min(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return np.maximum(p_min, p_max - n * p_max / (eta * n_steps))


def _ms_linspace(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    return np.linspace(p_max, p_min, n_steps)


MS_MISTAKES = {
    _ms_no_floor: "those fall below p_min: the schedule is max(p_min, ...), it stays at p_min after eta N steps",
    _ms_times_eta: "that multiplies by eta; divide by eta N (the floor is reached after a fraction eta of the steps)",
    _ms_from_one: "that starts at n = 1; the first step is n = 0, where the probability is p_max",
    _ms_without_p_min: "that drops p_min from the slope: the fall is n (p_max - p_min) / (eta N)",
    _ms_linspace: "that goes straight from p_max to p_min over all N steps; it reaches p_min after eta N steps",
}


def _schedule(got):
    return as_array(got, "an array of n_steps probabilities")


@exercise(compare=against(reference_masking_schedule, MS_MISTAKES, convert=_schedule, rtol=1e-6, atol=1e-9),
          hint="for n = 0, 1, ..., n_steps - 1 the probability is max(p_min, p_max - n (p_max - p_min) / "
               "(eta n_steps)); return all n_steps of them as an array")
def masking_schedule(r):
    """Check ``masking_schedule(n_steps, p_min=0.1, p_max=0.9, eta=0.7) -> array (n_steps,)``."""
    cases = [
        Case("10 steps, the defaults", 10),
        Case("4 steps, p_min=0.05, p_max=1, eta=0.75", 4, p_min=0.05, p_max=1.0, eta=0.75),
        Case("one step", 1),
        Case("7 steps, eta=1 (never reaches the floor)", 7, eta=1.0),
    ]
    for i in range(4):
        lo = float(r.uniform(0.0, 0.3))
        cases.append(Case(f"random #{i + 1}", int(r.integers(5, 80)), p_min=round(lo, 3),
                          p_max=round(float(r.uniform(lo + 0.3, 1.0)), 3), eta=round(float(r.uniform(0.3, 0.95)), 3)))
    return cases


# ---------------------------------------------------------------------------- voice arrays
def _random_voices(r: np.random.Generator, n_voices: int, steps: int, *, rests: bool, cross: bool) -> np.ndarray:
    """A bass line that moves by small steps, with each upper voice an interval above the voice below it;
    the intervals favour octaves, fifths and their compounds, and change every few steps."""
    bass = 40 + np.cumsum(r.choice([-5, -2, -1, 0, 0, 1, 2, 5, 7], size=steps))
    v = np.zeros((n_voices, steps), np.int64)
    v[-1] = np.clip(bass, 36, 60)
    for k in range(n_voices - 2, -1, -1):
        iv = r.choice([0, 3, 4, 7, 7, 12, 12, 19], size=steps)
        hold = r.random(steps) < 0.5
        for t in range(1, steps):
            if hold[t]:
                iv[t] = iv[t - 1]
        v[k] = v[k + 1] + iv
    if cross:
        t = int(r.integers(steps))
        k = int(r.integers(n_voices - 1))
        v[k, t] = v[k + 1, t] - int(r.integers(1, 5))
    if rests:
        for _ in range(int(r.integers(1, 4))):
            v[int(r.integers(n_voices)), int(r.integers(steps))] = -1
    return v


# ---------------------------------------------------------------------------- parallel_fifths_octaves
def reference_parallel_fifths_octaves(voices) -> int:
    """How many (voice pair, step t >= 1) move in parallel perfect fifths or octaves (compound included)."""
    return voiceleading.parallel_fifths_octaves(voices)


def _pairs(voices, adjacent_only=False):
    v = np.asarray(voices, dtype=np.int64)
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            if not adjacent_only or j == i + 1:
                yield v[i], v[j]


def _pfo_count(voices, *, same_direction=True, moving=True, mod=True, adjacent_only=False, signed=False):
    count = 0
    for a, b in _pairs(voices, adjacent_only):
        for t in range(1, a.shape[0]):
            if min(a[t - 1], a[t], b[t - 1], b[t]) < 0:
                continue
            da, db = a[t] - a[t - 1], b[t] - b[t - 1]
            if moving and (da == 0 or db == 0):
                continue
            if same_direction and da * db < 0:
                continue
            if signed == "upper":
                before, after = a[t - 1] - b[t - 1], a[t] - b[t]
            elif signed:
                before, after = b[t - 1] - a[t - 1], b[t] - a[t]
            else:
                before, after = abs(a[t - 1] - b[t - 1]), abs(a[t] - b[t])
            if mod:
                before, after = before % 12, after % 12
            if before == after and (before in (0, 7) if mod else before in (0, 7, 12)):
                count += 1
    return count


def _pfo_any_motion(voices):
    return _pfo_count(voices, same_direction=False)


def _pfo_held(voices):
    return _pfo_count(voices, moving=False)


def _pfo_simple(voices):
    return _pfo_count(voices, mod=False)


def _pfo_adjacent(voices):
    return _pfo_count(voices, adjacent_only=True)


def _pfo_signed(voices):
    return _pfo_count(voices, signed=True)


def _pfo_upper_minus_lower(voices):
    return _pfo_count(voices, signed="upper")


PFO_MISTAKES = {
    _pfo_any_motion: "that also counts contrary motion (one voice up, the other down into the same perfect interval); "
                     "parallels need both voices moving in the same direction",
    _pfo_held: "that also counts steps where a voice holds its note (oblique motion or no motion); both voices must "
               "change pitch",
    _pfo_simple: "that misses compound intervals (a twelfth, 19 semitones, is a fifth; 24 is a double octave): take "
                 "the interval mod 12",
    _pfo_adjacent: "that looks at adjacent voices only; every pair counts (soprano and bass too)",
    _pfo_signed: "that takes the lower voice minus the upper one mod 12, which turns a fifth into a fourth (5); use "
                 "the distance |a - b| mod 12",
    _pfo_upper_minus_lower: "that takes the upper voice minus the lower one mod 12: when the voices cross it is negative "
                            "and a fourth reads as a fifth; use the distance |a - b| mod 12",
}


@exercise(compare=against(reference_parallel_fifths_octaves, PFO_MISTAKES, convert=_a_count, **EXACT),
          hint="for every pair of voices (i < j) and every step t >= 1 where all four notes sound (no -1): both "
               "voices change pitch, in the same direction, and |p_i - p_j| % 12 is 7 at t-1 and at t, or 0 at "
               "t-1 and at t")
def parallel_fifths_octaves(r):
    """Check ``parallel_fifths_octaves(voices (V, T) int, -1 = rest) -> int``."""
    cases = [
        # C4/F3 -> D4/G3 -> E4/A3: parallel fifths twice (soprano-bass pair only)
        Case("two voices in parallel fifths", np.array([[60, 62, 64], [53, 55, 57]])),
        # octave leap in the upper voice over a held bass: a fifth becomes a twelfth, oblique motion
        Case("a fifth to a twelfth over a held bass", np.array([[55, 67, 72], [48, 48, 60]])),
        # contrary fifths: C3/G3 -> G2/D4
        Case("contrary fifths, then a held fifth", np.array([[55, 62, 62], [48, 43, 43]])),
        Case("three voices, octaves between the outer two", np.array([[67, 69, 71], [64, 64, 62], [55, 57, 59]])),
        Case("four voices, double octaves between soprano and bass, a rest",
             np.array([[72, 74, 76, 77], [67, 67, 64, -1], [64, 62, 60, 60], [48, 50, 52, 53]])),
        Case("unisons moving together, and a crossing", np.array([[60, 62, 59, 60], [60, 62, 64, 65]])),
    ]
    for i in range(7):
        v = _random_voices(r, int(r.integers(2, 5)), int(r.integers(8, 25)), rests=i % 2 == 0, cross=i % 3 == 1)
        cases.append(Case(f"random #{i + 1} ({v.shape[0]} voices, {v.shape[1]} steps)", v))
    return cases


# ---------------------------------------------------------------------------- voice_crossings
def reference_voice_crossings(voices) -> int:
    """How many (adjacent voice pair, step) have the upper voice strictly below the lower, both sounding."""
    return voiceleading.voice_crossings(voices)


def _vc(voices, *, all_pairs=False, strict=True, rests=False, per_step=False):
    v = np.asarray(voices, dtype=np.int64)
    pairs = [(i, j) for i in range(len(v)) for j in range(i + 1, len(v)) if all_pairs or j == i + 1]
    crossed = np.zeros((len(pairs), v.shape[1]), bool)
    for n, (i, j) in enumerate(pairs):
        below = v[i] < v[j] if strict else v[i] <= v[j]
        crossed[n] = below if rests else below & (v[i] >= 0) & (v[j] >= 0)
    return int(crossed.any(axis=0).sum()) if per_step else int(crossed.sum())


def _vc_all_pairs(voices):
    return _vc(voices, all_pairs=True)


def _vc_unisons(voices):
    return _vc(voices, strict=False)


def _vc_rests(voices):
    return _vc(voices, rests=True)


def _vc_steps(voices):
    return _vc(voices, per_step=True)


VC_MISTAKES = {
    _vc_all_pairs: "that compares every pair of voices; compare each voice with the one just below it (V - 1 pairs)",
    _vc_unisons: "that counts unisons as crossings; a crossing is the upper voice strictly below the lower (<)",
    _vc_rests: "that counts a rest (-1) as a very low note; skip steps where either voice rests",
    _vc_steps: "that counts steps with some crossing; count every (adjacent pair, step) that crosses",
}


@exercise(compare=against(reference_voice_crossings, VC_MISTAKES, convert=_a_count, **EXACT),
          hint="for each adjacent pair (voice k above voice k + 1) and each step where both sound (no -1), count "
               "it when voices[k, t] < voices[k + 1, t]")
def voice_crossings(r):
    """Check ``voice_crossings(voices (V, T) int, -1 = rest) -> int``."""
    cases = [
        Case("alto below tenor at one step", np.array([[72, 72, 71], [64, 60, 62], [60, 62, 55], [48, 43, 43]])),
        Case("a unison", np.array([[67, 65], [67, 64]])),
        Case("a rest in the upper voice", np.array([[-1, 65, 70], [64, 64, 62]])),
        Case("soprano and bass swapped at one step (two adjacent pairs cross)",
             np.array([[50, 72], [55, 67], [52, 60], [53, 48]])),
        Case("no crossings", np.array([[76, 74], [67, 65], [60, 59], [48, 43]])),
    ]
    for i in range(7):
        v = _random_voices(r, int(r.integers(2, 5)), int(r.integers(8, 25)), rests=i % 2 == 0, cross=False)
        for _ in range(int(r.integers(1, 4))):          # swap two voices at a step: adjacent, or outer ones
            t = int(r.integers(v.shape[1]))
            k, j = (0, v.shape[0] - 1) if r.random() < 0.4 else (lambda k: (k, k + 1))(int(r.integers(v.shape[0] - 1)))
            v[k, t], v[j, t] = v[j, t], v[k, t]
        for _ in range(int(r.integers(0, 3))):          # a unison
            k, t = int(r.integers(v.shape[0] - 1)), int(r.integers(v.shape[1]))
            if v[k, t] >= 0 and v[k + 1, t] >= 0:
                v[k, t] = v[k + 1, t]
        cases.append(Case(f"random #{i + 1} ({v.shape[0]} voices, {v.shape[1]} steps)", v))
    return cases


# ---------------------------------------------------------------------------- longest_common_ngram
def reference_longest_common_ngram(a, b) -> int:
    """The length of the longest contiguous run that appears in both ``a`` and ``b``."""
    return originality.longest_common_ngram(a, b)


def _lcn_subsequence(a, b):
    a, b = list(a), list(b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            cur[j] = prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1]


def _lcn_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _lcn_aligned(a, b):
    best = run = 0
    for x, y in zip(a, b):
        run = run + 1 if x == y else 0
        best = max(best, run)
    return best


def _lcn_shared_items(a, b):
    return len(set(a) & set(b))


LCN_MISTAKES = {
    _lcn_subsequence: "that is the longest common subsequence (items in order but with gaps allowed); the run must "
                      "be contiguous in both",
    _lcn_aligned: "that compares a[i] with b[i] only; the shared run may sit at different positions in a and b",
    _lcn_prefix: "that is the length of the common prefix; the run may start anywhere in either sequence",
    _lcn_shared_items: "that counts the distinct items the two share; count the longest contiguous run",
}


@exercise(compare=against(reference_longest_common_ngram, LCN_MISTAKES, convert=_a_count, **EXACT),
          hint="for every pair of positions (i, j), the run ending at a[i] and b[j] is one longer than the run "
               "ending at a[i-1] and b[j-1] when a[i] == b[j], else 0; return the largest (0 if none)")
def longest_common_ngram(r):
    """Check ``longest_common_ngram(a, b) -> int`` (two sequences of hashable items)."""
    cases = [
        Case("intervals: [2, 2, 1, -5] and [0, 2, 1, -5, 3]", [2, 2, 1, -5], [0, 2, 1, -5, 3]),
        Case("strings: 'GABCDE' and 'XBCDAGA'", "GABCDE", "XBCDAGA"),
        Case("the same items in order, but never two in a row", [1, 2, 3, 4], [1, 9, 2, 9, 3, 9, 4]),
        Case("note names, the shared run late in one and early in the other",
             ("C4", "D4", "E4", "F4", "G4", "A4"), ("F4", "G4", "A4", "C5")),
        Case("nothing in common", [1, 2, 3], [4, 5]),
        Case("an empty sequence", [], [3, 1, 4]),
        Case("one inside the other", [7, 0, -7, 0, 7], [5, 7, 0, -7, 0, 7, 2]),
    ]
    for i in range(6):
        alphabet = int(r.integers(2, 6))
        a = r.integers(-alphabet, alphabet, int(r.integers(8, 30))).tolist()
        b = r.integers(-alphabet, alphabet, int(r.integers(8, 30))).tolist()
        if i % 2 == 0:                                      # plant a long shared run at different places
            n = int(r.integers(4, 8))
            s = int(r.integers(0, len(a) - n))
            at = int(r.integers(1, len(b) - 1))
            b = b[:at] + a[s : s + n] + b[at:]
        cases.append(Case(f"random #{i + 1} ({len(a)} and {len(b)} intervals)", a, b))
    return cases
