"""Lesson 00 checks: the reference solutions pass; the stub and known-wrong implementations fail;
the random cases change under grading."""
import pytest

from course import music
from course.checks import exercises_of, lesson_00, pass_line
from exercise_helpers import contract_tests, peek_at_the_check, run_check, seen_then_graded, stub

NAMES = ["pitch_range", "transpose_melody", "melody_intervals"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def pitch_range(melody):
    pitches = [note.pitch for note in melody.notes]
    return min(pitches), max(pitches)


def transpose_melody(melody, semitones):
    notes = tuple(note._replace(pitch=note.pitch + semitones) for note in melody.notes)
    return melody.replace(notes=notes)


def melody_intervals(melody):
    pitches = [note.pitch for note in melody.notes]
    return [b - a for a, b in zip(pitches, pitches[1:])]


def melody_intervals_numpy(melody):                # another correct answer: an array, not a list
    import numpy as np

    return np.diff(melody.arrays()["pitch"])


SOLUTIONS = {"pitch_range": pitch_range, "transpose_melody": transpose_melody, "melody_intervals": melody_intervals}


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


def intervals_backwards(melody):                   # this note minus the next
    p = [n.pitch for n in melody.notes]
    return [a - b for a, b in zip(p, p[1:])]


def intervals_without_direction(melody):           # abs(): every step up
    p = [n.pitch for n in melody.notes]
    return [abs(b - a) for a, b in zip(p, p[1:])]


def intervals_from_the_first_note(melody):         # each note against the first, not its neighbour
    p = [n.pitch for n in melody.notes]
    return [q - p[0] for q in p[1:]]


def intervals_one_too_many(melody):                # the first note "moves" from 0 semitones
    p = [n.pitch for n in melody.notes]
    return [0] + [b - a for a, b in zip(p, p[1:])]


def intervals_of_start_times(melody):              # the wrong field
    s = [n.start for n in melody.notes]
    return [b - a for a, b in zip(s, s[1:])]


def intervals_wrap_around(melody):                 # a last interval back to the first note
    p = [n.pitch for n in melody.notes]
    return [b - a for a, b in zip(p, p[1:] + p[:1])]


WRONG = {
    "pitch_range": [range_first_last, range_swapped, range_width, range_of_first_part, range_of_times,
                    peek_at_the_check],
    "transpose_melody": [transpose_loses_tempo, transpose_notes_list, transpose_first_note_only, transpose_octaves,
                         transpose_up_only, transpose_returns_input, transpose_drops_part, transpose_drops_velocity,
                         peek_at_the_check],
    "melody_intervals": [intervals_backwards, intervals_without_direction, intervals_from_the_first_note,
                         intervals_one_too_many, intervals_of_start_times, intervals_wrap_around, peek_at_the_check],
}


def test_the_lesson_registers_exactly_these_exercises():
    assert [e.name for e in exercises_of("00_welcome")] == NAMES


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(NAMES, SOLUTIONS, WRONG)


@pytest.mark.parametrize("name", NAMES)
def test_stub_fails_with_a_hint(name):
    line = run_check(name, stub)
    assert line.startswith(f"FAIL {name}:") and "not implemented yet" in line and "Hint:" in line


def test_fail_lines_say_what_was_wrong():
    assert "(highest, lowest)" in run_check("pitch_range", range_swapped)
    assert "not a list" in run_check("transpose_melody", transpose_notes_list)
    assert "tempo" in run_check("transpose_melody", transpose_loses_tempo)
    assert "moved by +0 semitones instead of +7" in run_check("transpose_melody", transpose_first_note_only)
    assert "first and the last note" in run_check("pitch_range", range_first_last)
    assert "one part only" in run_check("pitch_range", range_of_first_part)
    assert "you returned None" in run_check("pitch_range", peek_at_the_check)
    assert "expected a Music, got NoneType" in run_check("transpose_melody", peek_at_the_check)
    assert "each note minus the next" in run_check("melody_intervals", intervals_backwards)
    assert "without their direction" in run_check("melody_intervals", intervals_without_direction)
    assert "from the first one" in run_check("melody_intervals", intervals_from_the_first_note)
    assert "n - 1 intervals" in run_check("melody_intervals", intervals_one_too_many).split("Hint:")[0]
    assert "n - 1 intervals" in run_check("melody_intervals", intervals_wrap_around).split("Hint:")[0]


def test_another_correct_answer_passes_too():
    assert run_check("melody_intervals", melody_intervals_numpy) == pass_line("melody_intervals")


def test_a_transposition_keeps_the_intervals():
    m = lesson_00._melody(lesson_00._TWINKLE)
    assert melody_intervals(transpose_melody(m, -5)) == melody_intervals(m) == lesson_00.reference_melody_intervals(m)


def test_a_lost_part_is_named_before_any_pitch_is_compared():
    line = run_check("transpose_melody", transpose_drops_part)
    assert "lost its part (was 1, now 0): keep every field except pitch" in line, line
    assert "semitones" not in line.split("Hint:")[0]
    assert "note 0 changed its velocity (was 90, now 80)" in run_check("transpose_melody", transpose_drops_velocity)


@pytest.mark.parametrize("name", NAMES)
def test_no_case_holds_an_answer_while_the_student_function_runs(name):
    ex = getattr(lesson_00, name)
    assert all(not hasattr(c, "expected") for c in ex.cases()) and ex.compare is not None


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
    for code in ("min(", "max(", "note.pitch", "_replace", "melody.replace", "+ semitones", "diff", "[1:]", "zip("):
        assert code not in hint, (code, hint)


def test_inputs_are_left_alone_and_a_new_piece_comes_back():
    m = lesson_00._melody(lesson_00._TWINKLE, title="t")
    before = m.notes
    out = transpose_melody(m, 3)
    assert m.notes == before and out is not m
    assert run_check("transpose_melody", transpose_returns_input).startswith("FAIL")


@pytest.mark.parametrize("name", NAMES)
def test_random_cases_change_under_grading(name, monkeypatch):
    """The notebook's random cases differ from the grader's, so memorizing the notebook's answers passes
    in the notebook and fails under grading."""
    seen, graded, memorized = seen_then_graded(name, getattr(lesson_00, name).cases, SOLUTIONS[name],
                                               lambda args: (args[0].notes, args[1:]), monkeypatch)
    fixed = [c.args[0].notes for c in seen if c.name.startswith("random")]
    drawn = [c.args[0].notes for c in graded if c.name.startswith("random")]
    assert len(fixed) == len(drawn) >= 3 and fixed != drawn
    assert run_check(name, memorized).startswith(f"FAIL {name}:")
