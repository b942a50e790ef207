"""Checks for lesson 01, music as data: frequency to pitch, seconds to grid steps,
piano roll back to notes, a melody as tokens.

Written with the check kit (:mod:`course.checks.kit`): each ``@exercise`` function builds the cases
(fixed ones plus random ones from the generator it is handed); expected answers are computed with
``course.music`` in the comparison, after the student's function has run, so no answer exists
while it runs.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import numpy as np

from .. import music
from .kit import Case, CheckFailure, against, close, exercise, number

LESSON = "01_music_as_data"


# ---------------------------------------------------------------------------- frequency_to_pitch
def _exact_pitch(frequency) -> float:
    return 69.0 + 12.0 * float(np.log2(float(frequency) / 440.0))


def reference_frequency_to_pitch(frequency) -> int:
    """The nearest MIDI pitch of a frequency in Hz (equal temperament, A4 = MIDI 69 = 440 Hz):
    ``p = 69 + 12 log2(f / 440)``, rounded to the nearest whole number."""
    return int(np.floor(_exact_pitch(frequency) + 0.5))


def _pitch_natural_log(frequency):
    return int(np.floor(69.0 + 12.0 * np.log(frequency / 440.0) + 0.5))


def _pitch_truncated(frequency):
    return int(_exact_pitch(frequency))


def _pitch_unrounded(frequency):
    return _exact_pitch(frequency)


def _pitch_from_middle_c(frequency):
    return int(np.floor(60.0 + 12.0 * np.log2(frequency / 440.0) + 0.5))


def _pitch_from_frequency_formula(frequency):      # the forward formula applied to the frequency
    return 440.0 * 2.0 ** ((frequency - 69.0) / 12.0)


FREQUENCY_MISTAKES = {
    _pitch_unrounded: "that is the exact pitch, with a fraction; a key is a whole MIDI number: take the nearest one",
    _pitch_truncated: "you cut the fraction off, so a note a little flat lands a semitone low: take the nearest pitch",
    _pitch_natural_log: "an octave doubles the frequency, so octaves are counted with the base-2 logarithm, "
                        "not the natural one",
    _pitch_from_middle_c: "count the semitones from A4 (MIDI 69), the note tuned to 440 Hz",
    _pitch_from_frequency_formula: "that is the frequency formula itself, applied to a frequency; solve it for the "
                                   "pitch instead",
}


def _pitch_number(got) -> float:
    return number(got, unit="a MIDI pitch")


@exercise(compare=against(reference_frequency_to_pitch, FREQUENCY_MISTAKES, rtol=0, atol=1e-9, convert=_pitch_number),
          hint="solve the frequency formula for the pitch: how many octaves above or below 440 Hz is the frequency "
               "(a logarithm), times 12 semitones each, counted from A4 = 69; then take the nearest whole pitch")
def frequency_to_pitch(r):
    """Check ``frequency_to_pitch(frequency) -> int``: the nearest MIDI pitch (A4 = 69 = 440 Hz)."""
    fixed = [("440 Hz (A4)", 440.0), ("880 Hz, an octave up", 880.0), ("261.63 Hz (middle C)", 261.63),
             ("445 Hz, an A tuned a little sharp", 445.0), ("430 Hz, an A tuned a little flat", 430.0),
             ("27.5 Hz (A0, the lowest piano key)", 27.5), ("4186 Hz (C8, the highest piano key)", 4186.01),
             ("8.2 Hz (MIDI 0)", 8.2)]
    cases = [Case(name, f) for name, f in fixed]
    for i in range(4):
        p, cents = int(r.integers(0, 128)), float(r.uniform(-40.0, 40.0))   # never half-way between two keys
        cases.append(Case(f"random #{i + 1}", round(440.0 * 2.0 ** ((p + cents / 100.0 - 69.0) / 12.0), 4)))
    return cases


# ---------------------------------------------------------------------------- seconds_to_steps
def reference_seconds_to_steps(times, qpm: float, steps_per_quarter: int) -> np.ndarray:
    """Nearest grid step of each time, halves rounded up (the rule of ``Music.steps``)."""
    x = np.asarray(times, dtype=np.float64) * (qpm / 60.0) * steps_per_quarter
    return np.floor(x + 0.5).astype(np.int64)


def _compare_steps(got, times, qpm, steps_per_quarter):
    if got is None:
        raise CheckFailure("your function returned None (a missing `return`?)")
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    arr = np.asarray(got)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.round(arr)):
            raise CheckFailure("steps are whole numbers: return an integer array (e.g. .astype(int)), "
                               f"not dtype {arr.dtype}")
        if arr.dtype.kind != "f":
            raise CheckFailure(f"expected an integer array of steps, got {type(got).__name__}")
    expected = reference_seconds_to_steps(times, qpm, steps_per_quarter)   # only now, after your function ran
    try:
        close(arr.astype(np.float64), expected.astype(np.float64), rtol=0, atol=1e-9)
    except CheckFailure as e:
        if arr.shape != expected.shape:
            raise
        x = np.asarray(times, dtype=np.float64) * (qpm / 60.0) * steps_per_quarter
        halves = np.isclose(x - np.floor(x), 0.5, rtol=0, atol=1e-9)
        if halves.any() and np.array_equal(arr[~halves], expected[~halves]) and np.all(arr[halves] < expected[halves]):
            raise CheckFailure(f"{e}; a time exactly half-way between two steps belongs to the later step "
                               "(halves round up, but np.round and round() send them to the even step)") from None
        if np.array_equal(arr, np.floor(x)) or np.array_equal(arr, np.trunc(x)):
            raise CheckFailure(f"{e}; you cut the fraction off, so a note a little early lands a whole step "
                               "early: take the nearest step") from None
        big = expected != 0
        if big.any() and np.all(np.abs(arr[big] / expected[big] - 60.0) < 2.0):
            raise CheckFailure(f"{e}; your steps are about 60 times too many: qpm counts quarter notes per "
                               "minute, and the times are in seconds") from None
        raise


@exercise(compare=_compare_steps,
          hint="qpm / 60 is quarter notes per second, and each quarter note holds steps_per_quarter steps; "
               "then take the nearest step, with halves going up")
def seconds_to_steps(r):
    """Check ``seconds_to_steps(times, qpm, steps_per_quarter) -> int array``."""
    cases = [
        Case("on the grid, 120 qpm, 4 steps per quarter", np.array([0.0, 0.5, 1.0, 1.25, 2.0]), 120.0, 4),
        Case("a little early and late (a human performance)", np.array([0.02, 0.49, 0.74, 1.13, 1.61]), 120.0, 4),
        Case("exactly half-way between two steps (0.5 and 2.5 steps), 120 qpm", np.array([0.0625, 0.3125]), 120.0, 4),
        Case("exactly half-way between two steps, 60 qpm, 2 steps per quarter", np.array([0.25, 1.25, 2.0]), 60.0, 2),
        Case("90 qpm", np.array([0.0, 0.33, 0.67, 1.0, 2.5, 4.0]), 90.0, 4),
        Case("triplet grid, 3 steps per quarter", np.array([0.0, 0.17, 0.33, 0.5, 0.68]), 120.0, 3),
        Case("one step per quarter", np.array([0.1, 0.6, 1.4, 3.1]), 100.0, 1),
        Case("no notes at all", np.zeros(0), 120.0, 4),
    ]
    for i in range(4):
        qpm = float(r.choice([60.0, 72.0, 96.0, 120.0, 144.0]))
        spq = int(r.choice([2, 3, 4, 8]))
        k = np.sort(r.integers(0, 64, size=8))
        jitter = r.uniform(-0.4, 0.4, size=8)          # never a tie at half a step
        times = np.round((k + jitter) * 60.0 / qpm / spq, 6)
        times = np.maximum(times, 0.0)
        cases.append(Case(f"random #{i + 1}", times, qpm, spq))
    return cases


# ---------------------------------------------------------------------------- pianoroll_to_notes
def reference_pianoroll_to_notes(roll, low: int) -> list[tuple[int, int, int]]:
    """Each run of on-steps in a column -> ``(pitch, start_step, end_step)``, end exclusive,
    sorted by start then pitch (computed with ``course.music.from_pianoroll``)."""
    roll = np.asarray(roll)
    if roll.size == 0 or not roll.any():
        return []
    m = music.from_pianoroll(roll, steps_per_quarter=4, low=low)
    s, e = m.steps(4)
    return [(int(n.pitch), int(a), int(b)) for n, a, b in zip(m.notes, s.tolist(), e.tolist())]


def _as_triples(got) -> list[tuple] | None:
    try:
        return [tuple(int(v) for v in n) for n in got]
    except Exception:  # not a list of triples of numbers: close says what it is
        return None


def _compare_roll_notes(got, roll, low):
    expected = reference_pianoroll_to_notes(roll, low)      # computed only now, after your function has run
    try:
        close(got, expected)
    except CheckFailure as e:
        mine = _as_triples(got)
        if mine is None or not expected:
            raise
        T = np.asarray(roll).shape[0]
        diagnoses = [
            (sorted(mine) == sorted(expected) and mine != expected,
             "the right notes in the wrong order: sort them by start step, then by pitch"),
            (mine == [(p - low, s, e) for p, s, e in expected],
             "your pitches are column numbers: column k of the roll is pitch low + k"),
            (mine == [(p, s, e - 1) for p, s, e in expected],
             "end_step is the first step after the note (the note does not sound at end_step)"),
            (mine == [n for n in expected if n[2] != T] and len(mine) < len(expected),
             "you dropped the notes still sounding in the last row: such a note ends at the number of rows"),
            (len(mine) > len(expected) and all(len(n) == 3 and n[2] - n[1] == 1 for n in mine),
             "one note per cell: a run of consecutive on steps in a column is one note"),
        ]
        for hit, what in diagnoses:
            if hit:
                raise CheckFailure(f"{e}; {what}") from None
        raise


@exercise(compare=_compare_roll_notes,
          hint="walk down one pitch column at a time: a note is a run of consecutive on steps, from the step "
               "where the run begins to the first step after it; mind a run that reaches the last row")
def pianoroll_to_notes(r):
    """Check ``pianoroll_to_notes(roll, low) -> list of (pitch, start_step, end_step)``."""
    a = np.zeros((8, 5), dtype=np.uint8)
    a[0:2, 0] = 1          # pitch low+0 for 2 steps
    a[2:6, 4] = 1          # pitch low+4 for 4 steps
    b = np.zeros((8, 3), dtype=np.uint8)
    b[0:3, 1] = 1          # the same pitch twice, with a gap between
    b[4:8, 1] = 1          # ... held to the last step
    chord = np.zeros((4, 12), dtype=np.uint8)
    chord[:, [0, 4, 7]] = 1
    chord[2:, 11] = 1
    late_low = np.zeros((6, 6), dtype=np.uint8)
    late_low[0:2, 5] = 1   # a high note first...
    late_low[2:5, 0] = 1   # ... then a low one
    single = np.zeros((1, 4), dtype=np.uint8)
    single[0, 2] = 1
    cases = [
        Case("two notes, low=60", a, 60),
        Case("a note repeated after a rest, the last held to the end", b, 67),
        Case("a chord (C major triad plus a B), low=48", chord, 48),
        Case("a high note, then a low one", late_low, 62),
        Case("a one-step roll", single, 21),
        Case("an empty roll", np.zeros((6, 4), dtype=np.uint8), 60),
    ]
    for i in range(4):
        T, P = int(r.integers(8, 24)), int(r.integers(4, 13))
        roll = (r.random((T, P)) < 0.3).astype(np.uint8)
        cases.append(Case(f"random #{i + 1}", roll, int(r.integers(36, 72))))
    return cases


# ---------------------------------------------------------------------------- melody_to_tokens
def reference_melody_to_tokens(notes) -> list[str]:
    """Token names of a melody given as ``(pitch, start_step, end_step)`` triples
    (``MelodyVocab().names(to_melody_tokens(...))`` without BOS and EOS)."""
    vocab = music.MelodyVocab()
    step = 60.0 / 120.0 / vocab.steps_per_quarter
    m = music.Music(notes=tuple(music.Note(int(p), a * step, b * step) for p, a, b in notes), qpm=120.0)
    return vocab.names(music.to_melody_tokens(m, vocab, bos=False, eos=False))


def _random_melody(r, n: int) -> list[tuple[int, int, int]]:
    out, t, p = [], int(r.integers(0, 3)), int(r.integers(55, 75))
    for _ in range(n):
        d = int(r.choice([1, 2, 2, 4, 4, 6, 8, 12, 16]))
        out.append((p, t, t + d))
        t += d + int(r.choice([0, 0, 0, 0, 1, 2, 4]))
        p = int(np.clip(p + r.integers(-5, 6), 40, 90))
    return out


def _compare_tokens(got, notes):
    expected = reference_melody_to_tokens(notes)      # computed only now, after your function has run
    try:
        close(got, expected)
    except CheckFailure as e:
        if not isinstance(got, (list, tuple)) or not all(isinstance(t, str) for t in got):
            raise
        mine = list(got)
        too_long = [t for t in mine if t[:1] == "d" and t[1:].isdigit() and int(t[1:]) > 32]
        bare_rest = any(t == "REST" and (k + 1 == len(mine) or not mine[k + 1].startswith("d"))
                        for k, t in enumerate(mine))
        if too_long:
            raise CheckFailure(f"{e}; there is no token {too_long[0]}: the longest duration token is d32, so a "
                               "longer span takes several duration tokens") from None
        if bare_rest:
            raise CheckFailure(f"{e}; a REST needs duration tokens too, like a note") from None
        if "REST" in expected and "REST" not in mine:
            raise CheckFailure(f"{e}; a gap before a note (or before the first note) is a rest, and a rest "
                               "is written as tokens too") from None
        raise


@exercise(compare=_compare_tokens,
          hint="keep track of the step where the previous note ended: a silence since then is written before the "
               "note, and every span of time, note or rest, is written with duration tokens of at most 32 steps")
def melody_to_tokens(r):
    """Check ``melody_to_tokens(notes) -> list of token names`` (pitch, duration and rest tokens)."""
    cases = [
        Case("three notes, no rests", [(67, 0, 4), (69, 4, 6), (71, 6, 14)]),
        Case("a rest in the middle", [(60, 0, 4), (64, 6, 8)]),
        Case("the melody starts after a rest", [(72, 4, 8), (70, 8, 9)]),
        Case("sharps and flats", [(61, 0, 2), (63, 2, 4), (66, 4, 6), (70, 6, 8)]),
        Case("a note longer than 32 steps", [(55, 0, 40), (57, 40, 44)]),
        Case("a rest longer than 32 steps", [(62, 0, 2), (62, 70, 72)]),
        Case("no notes", []),
    ]
    return cases + [Case(f"random #{i + 1}", _random_melody(r, int(r.integers(5, 12)))) for i in range(4)]
