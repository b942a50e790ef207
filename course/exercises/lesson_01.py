"""Checks for lesson 01, music as data: pitch to frequency, seconds to grid steps,
piano roll back to notes, a melody as tokens.

Each check builds its cases (fixed ones plus random ones from :func:`rng`) in a ``_cases_*``
function, computes the expected answers with ``course.music`` and prints one line.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import numpy as np

from .. import music
from .checking import Case, CheckFailure, compare_values, exercise, rng, run_cases

LESSON = "01_music_as_data"


# ---------------------------------------------------------------------------- pitch_to_frequency
def reference_pitch_to_frequency(pitch) -> float:
    """Equal temperament with A4 (MIDI 69) at 440 Hz: ``f = 440 * 2 ** ((p - 69) / 12)``."""
    return float(440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0))


def _cases_pitch_to_frequency() -> list[Case]:
    r = rng("pitch_to_frequency")
    fixed = [("A4 = 69", 69), ("A5 = 81, an octave up", 81), ("middle C = 60", 60), ("E2 = 40", 40),
             ("lowest MIDI pitch 0", 0), ("C#6 = 85", 85)]
    cases = [Case(name, (p,), expected=reference_pitch_to_frequency(p)) for name, p in fixed]
    for i, p in enumerate(r.integers(0, 128, size=4).tolist()):
        cases.append(Case(f"random #{i + 1}", (int(p),), expected=reference_pitch_to_frequency(p)))
    return cases


@exercise(LESSON, points=1)
def pitch_to_frequency(func) -> None:
    """Check ``pitch_to_frequency(pitch) -> float`` (Hz, equal temperament, A4 = 440 Hz)."""
    run_cases("pitch_to_frequency", func, _cases_pitch_to_frequency(),
              hint="f = 440 * 2 ** ((pitch - 69) / 12); the brackets matter, and use / not //")


# ---------------------------------------------------------------------------- seconds_to_steps
def reference_seconds_to_steps(times, qpm: float, steps_per_quarter: int) -> np.ndarray:
    """Nearest grid step of each time, halves rounded up (the rule of ``Music.steps``)."""
    x = np.asarray(times, dtype=np.float64) * (qpm / 60.0) * steps_per_quarter
    return np.floor(x + 0.5).astype(np.int64)


def _validate_steps(got, times, qpm, steps_per_quarter):
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    arr = np.asarray(got)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.round(arr)):
            raise CheckFailure("steps are whole numbers: return an integer array (e.g. .astype(int)), "
                               f"not dtype {arr.dtype}")
        if arr.dtype.kind != "f":
            raise CheckFailure(f"expected an integer array of steps, got {type(got).__name__}")
    compare_values(arr.astype(np.float64), reference_seconds_to_steps(times, qpm, steps_per_quarter).astype(np.float64),
                   rtol=0, atol=1e-9)


def _cases_seconds_to_steps() -> list[Case]:
    r = rng("seconds_to_steps")
    cases = [
        Case("on the grid, 120 qpm, 4 steps per quarter", (np.array([0.0, 0.5, 1.0, 1.25, 2.0]), 120.0, 4)),
        Case("a little early and late (a human performance)", (np.array([0.02, 0.49, 0.74, 1.13, 1.61]), 120.0, 4)),
        Case("90 qpm", (np.array([0.0, 0.33, 0.67, 1.0, 2.5, 4.0]), 90.0, 4)),
        Case("triplet grid, 3 steps per quarter", (np.array([0.0, 0.17, 0.33, 0.5, 0.68]), 120.0, 3)),
        Case("one step per quarter", (np.array([0.1, 0.6, 1.4, 3.1]), 100.0, 1)),
        Case("no notes at all", (np.zeros(0), 120.0, 4)),
    ]
    for i in range(4):
        qpm = float(r.choice([60.0, 72.0, 96.0, 120.0, 144.0]))
        spq = int(r.choice([2, 3, 4, 8]))
        k = np.sort(r.integers(0, 64, size=8))
        jitter = r.uniform(-0.4, 0.4, size=8)          # never a tie at half a step
        times = np.round((k + jitter) * 60.0 / qpm / spq, 6)
        times = np.maximum(times, 0.0)
        cases.append(Case(f"random #{i + 1}", (times, qpm, spq)))
    for c in cases:
        c.validate = _validate_steps
    return cases


@exercise(LESSON, points=1)
def seconds_to_steps(func) -> None:
    """Check ``seconds_to_steps(times, qpm, steps_per_quarter) -> int array``."""
    run_cases("seconds_to_steps", func, _cases_seconds_to_steps(),
              hint="steps = round(t * qpm / 60 * steps_per_quarter): qpm / 60 is quarter notes per second; "
                   "round to the nearest step (np.floor(x + 0.5)), do not just cut off with int()")


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


def _cases_pianoroll_to_notes() -> list[Case]:
    r = rng("pianoroll_to_notes")
    a = np.zeros((8, 5), dtype=np.uint8)
    a[0:2, 0] = 1          # pitch low+0 for 2 steps
    a[2:6, 4] = 1          # pitch low+4 for 4 steps
    b = np.zeros((8, 3), dtype=np.uint8)
    b[0:3, 1] = 1          # the same pitch twice, with a gap between
    b[4:8, 1] = 1          # ... held to the last step
    chord = np.zeros((4, 12), dtype=np.uint8)
    chord[:, [0, 4, 7]] = 1
    chord[2:, 11] = 1
    single = np.zeros((1, 4), dtype=np.uint8)
    single[0, 2] = 1
    cases = [
        Case("two notes, low=60", (a, 60)),
        Case("a note repeated after a rest, the last held to the end", (b, 67)),
        Case("a chord (C major triad plus a B), low=48", (chord, 48)),
        Case("a one-step roll", (single, 21)),
        Case("an empty roll", (np.zeros((6, 4), dtype=np.uint8), 60)),
    ]
    for i in range(4):
        T, P = int(r.integers(8, 24)), int(r.integers(4, 13))
        roll = (r.random((T, P)) < 0.3).astype(np.uint8)
        cases.append(Case(f"random #{i + 1}", (roll, int(r.integers(36, 72)))))
    for c in cases:
        c.expected = reference_pianoroll_to_notes(*c.args)
    return cases


@exercise(LESSON, points=1)
def pianoroll_to_notes(func) -> None:
    """Check ``pianoroll_to_notes(roll, low) -> list of (pitch, start_step, end_step)``."""
    run_cases("pianoroll_to_notes", func, _cases_pianoroll_to_notes(),
              hint="go down each pitch column: a note starts at an on step whose previous step is off (or that is "
                   "step 0) and ends, exclusive, at the next off step or at the end of the roll; pitch = low + column; "
                   "sort by (start, pitch)")


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


def _cases_melody_to_tokens() -> list[Case]:
    r = rng("melody_to_tokens")
    cases = [
        Case("three notes, no rests", ([(67, 0, 4), (69, 4, 6), (71, 6, 14)],)),
        Case("a rest in the middle", ([(60, 0, 4), (64, 6, 8)],)),
        Case("the melody starts after a rest", ([(72, 4, 8), (70, 8, 9)],)),
        Case("sharps and flats", ([(61, 0, 2), (63, 2, 4), (66, 4, 6), (70, 6, 8)],)),
        Case("a note longer than 32 steps", ([(55, 0, 40), (57, 40, 44)],)),
        Case("a rest longer than 32 steps", ([(62, 0, 2), (62, 70, 72)],)),
        Case("no notes", ([],)),
    ]
    cases += [Case(f"random #{i + 1}", (_random_melody(r, int(r.integers(5, 12))),)) for i in range(4)]
    for c in cases:
        c.expected = reference_melody_to_tokens(*c.args)
    return cases


@exercise(LESSON, points=1)
def melody_to_tokens(func) -> None:
    """Check ``melody_to_tokens(notes) -> list of token names`` (pitch, duration and rest tokens)."""
    run_cases("melody_to_tokens", func, _cases_melody_to_tokens(),
              hint="for each note: a REST token plus its duration if there is a gap before it, then "
                   "music.pitch_name(pitch) and 'd<steps>'; a duration over 32 steps is written 'd32' and then the rest")
