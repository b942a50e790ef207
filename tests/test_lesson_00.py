"""Lesson 00 checks: the reference solutions pass; the stub and known-wrong implementations fail;
the random cases change under grading; a check is quick."""
import time

import pytest

from course import check, music
from course.exercises import exercises_of, lesson_00, pass_line
from exercise_helpers import peek_at_the_check, run_check, stub

NAMES = ["pitch_range", "transpose_melody"]




# ---------------------------------------------------------------- the solutions (as in the notebook)
def pitch_range(melody):
    pitches = [note.pitch for note in melody.notes]
    return min(pitches), max(pitches)


def transpose_melody(melody, semitones):
    notes = tuple(note._replace(pitch=note.pitch + semitones) for note in melody.notes)
    return melody.replace(notes=notes)


SOLUTIONS = {"pitch_range": pitch_range, "transpose_melody": transpose_melody}


# ---------------------------------------------------------------- plausible wrong answers
def range_first_last(melody):                      # the first and last notes, not the extremes
    return melody.notes[0].pitch, melody.notes[-1].pitch


def range_swapped(melody):                         # (highest, lowest)
    p = [n.pitch for n in melody.notes]
    return max(p), min(p)


def range_width(melody):                           # the interval, not the two ends
    p = [n.pitch for n in melody.notes]
    return max(p) - min(p)


def range_of_first_part(melody):                   # ignores every voice but the first
    p = [n.pitch for n in melody.notes if n.part == 0]
    return min(p), max(p)


def range_of_times(melody):                        # looks at the wrong field
    s = [n.start for n in melody.notes]
    return min(s), max(s)


def transpose_loses_tempo(melody, semitones):      # a new Music from the notes alone
    return music.Music(notes=tuple(n._replace(pitch=n.pitch + semitones) for n in melody.notes))


def transpose_notes_list(melody, semitones):       # returns the notes, not a Music
    return [n._replace(pitch=n.pitch + semitones) for n in melody.notes]


def transpose_first_note_only(melody, semitones):
    notes = list(melody.notes)
    notes[0] = notes[0]._replace(pitch=notes[0].pitch + semitones)
    return melody.replace(notes=tuple(notes))


def transpose_octaves(melody, semitones):          # semitones read as octaves
    return melody.replace(notes=tuple(n._replace(pitch=n.pitch + 12 * semitones) for n in melody.notes))


def transpose_up_only(melody, semitones):          # abs(): always up
    return melody.replace(notes=tuple(n._replace(pitch=n.pitch + abs(semitones)) for n in melody.notes))


def transpose_returns_input(melody, semitones):
    return melody


def transpose_drops_part(melody, semitones):       # a new Note without its part: every note lands in part 0
    return melody.replace(notes=tuple(music.Note(n.pitch + semitones, n.start, n.end, n.velocity)
                                      for n in melody.notes))


def transpose_drops_velocity(melody, semitones):   # a new Note with the default velocity and part
    return melody.replace(notes=tuple(music.Note(n.pitch + semitones, n.start, n.end) for n in melody.notes))


WRONG = {
    "pitch_range": [range_first_last, range_swapped, range_width, range_of_first_part, range_of_times,
                    peek_at_the_check],
    "transpose_melody": [transpose_loses_tempo, transpose_notes_list, transpose_first_note_only, transpose_octaves,
                         transpose_up_only, transpose_returns_input, transpose_drops_part, transpose_drops_velocity,
                         peek_at_the_check],
}


def test_the_lesson_registers_exactly_these_exercises():
    assert [e.name for e in exercises_of("00_welcome")] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes(name):
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


@pytest.mark.parametrize("name", NAMES)
def test_stub_fails_with_a_hint(name):
    line = run_check(name, stub)
    assert line.startswith(f"FAIL {name}:") and "not implemented yet" in line and "Hint:" in line


@pytest.mark.parametrize("name,wrong", [(n, w) for n, ws in WRONG.items() for w in ws],
                         ids=[w.__name__ for ws in WRONG.values() for w in ws])
def test_wrong_implementations_fail(name, wrong):
    line = run_check(name, wrong)
    assert line.startswith(f"FAIL {name}: case '"), line


def test_fail_lines_say_what_was_wrong():
    assert "(highest, lowest)" in run_check("pitch_range", range_swapped)
    assert "not a list" in run_check("transpose_melody", transpose_notes_list)
    assert "tempo" in run_check("transpose_melody", transpose_loses_tempo)
    assert "moved by +0 semitones instead of +7" in run_check("transpose_melody", transpose_first_note_only)
    assert "first and the last note" in run_check("pitch_range", range_first_last)
    assert "one part only" in run_check("pitch_range", range_of_first_part)
    assert "you returned None" in run_check("pitch_range", peek_at_the_check)
    assert "expected a Music, got NoneType" in run_check("transpose_melody", peek_at_the_check)


def test_a_lost_part_is_named_before_any_pitch_is_compared():
    line = run_check("transpose_melody", transpose_drops_part)
    assert "lost its part (was 1, now 0): keep every field except pitch" in line, line
    assert "semitones" not in line.split("Hint:")[0]
    assert "note 0 changed its velocity (was 90, now 80)" in run_check("transpose_melody", transpose_drops_velocity)


@pytest.mark.parametrize("name", NAMES)
def test_no_case_holds_an_answer_while_the_student_function_runs(name):
    cases = getattr(lesson_00, f"_cases_{name}")()
    assert all(c.expected is None and c.validate is not None for c in cases)


@pytest.mark.parametrize("seed", [None, "spring-term", "resit"])
@pytest.mark.parametrize("name", NAMES)
def test_the_stack_peeking_cheat_fails(name, seed, monkeypatch):
    if seed is None:
        monkeypatch.delenv("COURSE_GRADING_SEED", raising=False)
    else:
        monkeypatch.setenv("COURSE_GRADING_SEED", seed)
    assert run_check(name, peek_at_the_check).startswith(f"FAIL {name}: case '")


@pytest.mark.parametrize("name", NAMES)
def test_hints_do_not_give_the_code_away(name):
    hint = run_check(name, stub).split("Hint:", 1)[1]
    for code in ("min(", "max(", "note.pitch", "_replace", "melody.replace", "+ semitones"):
        assert code not in hint, (code, hint)


def test_inputs_are_left_alone_and_a_new_piece_comes_back():
    m = lesson_00._melody(lesson_00._TWINKLE, title="t")
    before = m.notes
    out = transpose_melody(m, 3)
    assert m.notes == before and out is not m
    assert run_check("transpose_melody", transpose_returns_input).startswith("FAIL")


def test_random_cases_change_under_grading(monkeypatch):
    fixed = [c.args for c in lesson_00._cases_transpose_melody() if c.name.startswith("random")]
    monkeypatch.setenv("COURSE_GRADING_SEED", "another seed")
    graded = [c.args for c in lesson_00._cases_transpose_melody() if c.name.startswith("random")]
    assert len(fixed) == len(graded) >= 3
    assert [a[0].notes for a in fixed] != [a[0].notes for a in graded]
    # and hard-coding the notebook's random answers does not pass under grading
    monkeypatch.delenv("COURSE_GRADING_SEED")
    answers = {}
    for c in lesson_00._cases_pitch_range():
        answers[c.args[0].notes] = lesson_00.reference_pitch_range(c.args[0])
    monkeypatch.setenv("COURSE_GRADING_SEED", "grading")
    hard_coded = lambda melody: answers.get(melody.notes, (60, 72))  # noqa: E731
    monkeypatch.delenv("COURSE_GRADING_SEED")
    assert run_check("pitch_range", hard_coded) == pass_line("pitch_range")    # it passes in the notebook...
    monkeypatch.setenv("COURSE_GRADING_SEED", "grading")
    assert run_check("pitch_range", hard_coded).startswith("FAIL")             # ...but not under grading


@pytest.mark.parametrize("name", NAMES)
def test_a_check_is_quick(name):
    t0 = time.perf_counter()
    run_check(name, SOLUTIONS[name])
    assert time.perf_counter() - t0 < 2.0
