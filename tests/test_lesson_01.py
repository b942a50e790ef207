"""Lesson 01 checks: the reference solutions pass; the stub, known-wrong implementations and a cheat that
reads the check's stack fail; the random cases change under grading."""


import numpy as np
import pytest

from course import check, music
from course.checks import exercises_of, lesson_01, pass_line
from course.checks.guard import run_cases
from course.checks.kit import Case, needs_case_compare
from exercise_helpers import contract_tests, peek_at_the_check, run_check, seen_then_graded, stub

NAMES = ["frequency_to_pitch", "seconds_to_steps", "pianoroll_to_notes", "melody_to_tokens"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def frequency_to_pitch(frequency):
    return round(69 + 12 * np.log2(frequency / 440))


def seconds_to_steps(times, qpm, steps_per_quarter):
    steps = np.asarray(times) * qpm / 60 * steps_per_quarter
    return np.floor(steps + 0.5).astype(int)


def pianoroll_to_notes(roll, low):
    notes = []
    T, P = roll.shape
    for k in range(P):
        t = 0
        while t < T:
            if roll[t, k]:
                start = t
                while t < T and roll[t, k]:
                    t += 1
                notes.append((low + k, start, t))
            else:
                t += 1
    return sorted(notes, key=lambda n: (n[1], n[0]))


def melody_to_tokens(notes):
    tokens, now = [], 0

    def durations(steps):
        out = []
        while steps > 0:
            out.append(f"d{min(steps, 32)}")
            steps -= 32
        return out

    for pitch, start, end in notes:
        if start > now:
            tokens += ["REST"] + durations(start - now)
        tokens += [music.pitch_name(pitch)] + durations(end - start)
        now = end
    return tokens


SOLUTIONS = {f.__name__: f for f in [frequency_to_pitch, seconds_to_steps, pianoroll_to_notes, melody_to_tokens]}


# ---------------------------------------------------------------- plausible wrong implementations
def pitch_natural_log(frequency):
    return round(69 + 12 * np.log(frequency / 440))     # ln, not log2


def pitch_int_cut(frequency):
    return int(69 + 12 * np.log2(frequency / 440))      # int() cuts the fraction off


def pitch_not_rounded(frequency):
    return 69 + 12 * np.log2(frequency / 440)           # the exact, fractional pitch


def pitch_from_middle_c(frequency):
    return round(60 + 12 * np.log2(frequency / 440))    # counts from 60, not 69


def pitch_log10(frequency):
    return round(69 + 12 * np.log10(frequency / 440))   # another wrong base: no message of its own


def pitch_as_a_name(frequency):
    return music.pitch_name(round(69 + 12 * np.log2(frequency / 440)))


def steps_forgot_per_minute(times, qpm, steps_per_quarter):
    return np.floor(np.asarray(times) * qpm * steps_per_quarter + 0.5).astype(int)


def steps_truncated(times, qpm, steps_per_quarter):
    return (np.asarray(times) * qpm / 60 * steps_per_quarter).astype(int)   # int() cuts off, no rounding


def steps_seconds_per_quarter(times, qpm, steps_per_quarter):
    return np.floor(np.asarray(times) * (60 / qpm) * steps_per_quarter + 0.5).astype(int)


def steps_numpy_round(times, qpm, steps_per_quarter):
    return np.round(np.asarray(times) * qpm / 60 * steps_per_quarter).astype(int)   # halves to even: 0.5 -> 0


def steps_python_round(times, qpm, steps_per_quarter):
    return np.array([round(t * qpm / 60 * steps_per_quarter) for t in times], dtype=int)   # also halves to even


def steps_float_result(times, qpm, steps_per_quarter):
    return np.round(np.asarray(times) * qpm / 60 * steps_per_quarter)       # right numbers, not integers


def roll_one_note_per_cell(roll, low):
    t, k = np.nonzero(roll)
    return sorted([(low + int(p), int(s), int(s) + 1) for s, p in zip(t, k)], key=lambda n: (n[1], n[0]))


def roll_drops_last_note(roll, low):
    notes = []
    for k in range(roll.shape[1]):
        start = None
        for t in range(roll.shape[0]):
            if roll[t, k] and start is None:
                start = t
            elif not roll[t, k] and start is not None:
                notes.append((low + k, start, t))
                start = None
        # forgot: a note still sounding at the end of the roll
    return sorted(notes, key=lambda n: (n[1], n[0]))


def roll_inclusive_end(roll, low):
    return [(p, s, e - 1) for p, s, e in pianoroll_to_notes(roll, low)]


def roll_forgot_low(roll, low):
    return [(p - low, s, e) for p, s, e in pianoroll_to_notes(roll, low)]


def tokens_ignore_rests(notes):
    out = []
    for pitch, start, end in notes:
        out += [music.pitch_name(pitch), f"d{end - start}"]
    return out


def tokens_unsplit_durations(notes):
    out, now = [], 0
    for pitch, start, end in notes:
        if start > now:
            out += ["REST", f"d{start - now}"]
        out += [music.pitch_name(pitch), f"d{end - start}"]
        now = end
    return out


def tokens_rest_without_duration(notes):
    out, now = [], 0
    for pitch, start, end in notes:
        if start > now:
            out.append("REST")
        out += [music.pitch_name(pitch), f"d{end - start}" if end - start <= 32 else "d32"]
        now = end
    return out


def roll_unsorted(roll, low):                       # the right notes, column by column
    notes = pianoroll_to_notes(roll, low)
    return sorted(notes, key=lambda n: (n[0], n[1]))


WRONG = {
    "frequency_to_pitch": [pitch_natural_log, pitch_int_cut, pitch_not_rounded, pitch_from_middle_c, pitch_log10,
                           pitch_as_a_name, peek_at_the_check],
    "seconds_to_steps": [steps_forgot_per_minute, steps_truncated, steps_seconds_per_quarter, steps_numpy_round,
                         steps_python_round, steps_float_result, peek_at_the_check],
    "pianoroll_to_notes": [roll_one_note_per_cell, roll_drops_last_note, roll_inclusive_end, roll_forgot_low,
                           roll_unsorted, peek_at_the_check],
    "melody_to_tokens": [tokens_ignore_rests, tokens_unsplit_durations, tokens_rest_without_duration,
                         peek_at_the_check],
}

# what the fail line says for these (the hint itself stays general)
MESSAGES = {
    pitch_natural_log: "base-2 logarithm",
    pitch_int_cut: "cut the fraction off",
    pitch_not_rounded: "take the nearest one",
    pitch_from_middle_c: "A4 (MIDI 69)",
    pitch_as_a_name: "return one number",
    steps_forgot_per_minute: "60 times too many",
    steps_truncated: "cut the fraction off",
    steps_numpy_round: "half-way between two steps",
    steps_python_round: "half-way between two steps",
    steps_float_result: "integer array",
    roll_one_note_per_cell: "one note per cell",
    roll_drops_last_note: "last row",
    roll_inclusive_end: "first step after the note",
    roll_forgot_low: "low + k",
    roll_unsorted: "wrong order",
    tokens_unsplit_durations: "no token d",
    tokens_rest_without_duration: "REST needs duration tokens",
    tokens_ignore_rests: "a rest is written as tokens",
    peek_at_the_check: "returned None",
}


def test_the_lesson_registers_its_exercises_under_unique_names():
    assert [e.name for e in exercises_of("01_music_as_data")] == NAMES


def _key(args) -> str:
    return repr([np.asarray(a).tobytes() if isinstance(a, np.ndarray) else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    # a function that memorized every answer it saw in the notebook passes there...
    seen, graded, memorized = seen_then_graded(name, getattr(lesson_01, name).cases, SOLUTIONS[name], _key,
                                               monkeypatch)
    assert [c.name for c in graded] == [c.name for c in seen]
    changed = [c.name for c, d in zip(graded, seen) if _key(c.args) != _key(d.args)]
    assert changed and all(n.startswith("random") for n in changed)
    # ...fails under grading, while the real solution still passes
    assert run_check(name, memorized).startswith(f"FAIL {name}: case 'random")
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_reference_answers_agree_with_the_music_module():
    roll = music.to_pianoroll(music.from_text("C4 E4 E4 G4:2"), low=60, high=72)
    notes = lesson_01.reference_pianoroll_to_notes(roll, 60)
    assert notes == [(60, 0, 4), (64, 4, 12), (67, 12, 20)]      # the repeated E4s merged
    assert lesson_01.reference_melody_to_tokens([(60, 0, 4), (64, 6, 8)]) == ["C4", "d4", "REST", "d2", "E4", "d2"]
    assert [lesson_01.reference_frequency_to_pitch(f) for f in (440.0, 445.0, 430.0, 261.63, 27.5)] == [69, 69, 69, 60, 21]
    freqs = 440.0 * 2.0 ** ((np.arange(128) - 69) / 12)
    assert [lesson_01.reference_frequency_to_pitch(f) for f in freqs] == list(range(128))
    np.testing.assert_array_equal(lesson_01.reference_seconds_to_steps([0.0, 0.25, 0.51], 120, 4), [0, 2, 4])


# a Case that holds its answer, as the old checks' cases could (the kit's Case has no room for one)
_HoldingCase = type("Case", (Case,), {"__slots__": ("expected",)})


def _holding_case(name, *args, expected):
    case = _HoldingCase(name, *args)
    case.expected = expected
    return case


def test_the_stack_peeking_cheat_would_pass_a_check_that_held_its_answers(capsys):
    """So its failing above means the answers are out of reach, not that the cheat is broken."""
    holding = [_holding_case("A4", 440.0, expected=69), _holding_case("A5", 880.0, expected=81)]
    assert run_cases("frequency_to_pitch", peek_at_the_check, holding, compare=lesson_01.frequency_to_pitch.compare)
    assert capsys.readouterr().out.startswith("PASS")


@pytest.mark.parametrize("name", NAMES)
def test_no_case_holds_an_answer_while_the_student_function_runs(name):
    ex = getattr(lesson_01, name)
    cases = ex.cases()
    assert all(getattr(c, "expected", None) is None and (c.compare or ex.compare) is not needs_case_compare
               for c in cases)


def test_halves_round_up():
    half = [c for c in lesson_01.seconds_to_steps.cases() if "half-way" in c.name]
    assert half
    for c in half:
        x = np.asarray(c.args[0]) * c.args[1] / 60 * c.args[2]
        assert np.any(x % 1 == 0.5)                                      # exact halves...
        np.testing.assert_array_equal(seconds_to_steps(*c.args), np.floor(x + 0.5))
        assert not np.array_equal(np.round(x), np.floor(x + 0.5))       # ...where half-to-even differs


@pytest.mark.parametrize("name", NAMES)
def test_hints_do_not_give_the_code_away(name):
    line = run_check(name, stub)
    hint = line.split("Hint:", 1)[1]
    for code in ("440 * 2", "** (", "log2(", "69 +", "round(", "np.floor", "+ 0.5", "pitch_name(", "low + column", "'d32'", "sort by ("):
        assert code not in hint, (code, hint)


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)


@pytest.mark.parametrize("seed", [None, "spring-term", "resit"])
def test_frequency_cases_never_sit_half_way_between_two_keys(seed, monkeypatch):
    """So rounding halves up, to even or away from zero all give the same key."""
    if seed is None:
        monkeypatch.delenv("COURSE_GRADING_SEED", raising=False)
    else:
        monkeypatch.setenv("COURSE_GRADING_SEED", seed)
    for c in lesson_01.frequency_to_pitch.cases():
        x = 69 + 12 * np.log2(c.args[0] / 440)
        assert abs(x - np.floor(x) - 0.5) > 0.05, (c.name, x)
    flat = [c for c in lesson_01.frequency_to_pitch.cases() if "flat" in c.name]
    assert flat and pitch_int_cut(*flat[0].args) != frequency_to_pitch(*flat[0].args)
