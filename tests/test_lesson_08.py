"""Lesson 08 checks: the reference solutions and independently written correct ones pass; the stub and
known-wrong implementations fail, naming the mistake; the cases tell every named mistake from the right
answer; the random cases change under grading."""
import math

import numpy as np
import pytest
import torch

from course.checks import exercises_of, lesson_08, load, pass_line
from exercise_helpers import (also_correct_test, contract_tests, named_mistakes_test, peeking_cheat, run_check,
                              seen_then_graded)

torch.set_num_threads(1)

NAMES = ["empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "in_scale_rate"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def empty_bar_rate(bars):
    return float((bars.sum(axis=(1, 2)) == 0).mean())


def used_pitch_classes(bars, low=21):
    classes = (low + np.arange(bars.shape[2])) % 12
    counts = []
    for bar in bars:
        sounding = bar.any(axis=0)                       # (n_pitches,): sounds at some step of the bar
        if sounding.any():
            counts.append(len(np.unique(classes[sounding])))
    return float(np.mean(counts)) if counts else 0.0


def note_lengths(bars):
    """(pitch index, length) of every run of 1s in the bars joined end to end."""
    roll = bars.reshape(-1, bars.shape[2]).astype(int)
    edges = np.diff(np.pad(roll, ((1, 1), (0, 0))), axis=0).T          # (n_pitches, T + 1)
    pitch, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    return pitch, end - start


def qualified_note_rate(bars, min_steps=3):
    _, lengths = note_lengths(bars)
    return float(np.mean(lengths >= min_steps)) if len(lengths) else float("nan")


def in_scale_rate(bars, low=21):
    pitch, _ = note_lengths(bars)
    if len(pitch) == 0:
        return float("nan")
    classes = (low + pitch) % 12
    major = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
    return float(max(np.roll(major, root)[classes].mean() for root in range(12)))


SOLUTIONS = {f.__name__: f for f in [empty_bar_rate, used_pitch_classes, qualified_note_rate, in_scale_rate]}


# ---------------------------------------------------------------- correct, written another way
def empty_bar_rate_by_loops(bars):
    empty = 0
    for bar in bars.tolist():
        if not any(v for step in bar for v in step):
            empty += 1
    return empty / len(bars)


def empty_bar_rate_in_torch(bars):
    b = torch.as_tensor(bars)
    return (b.flatten(1).amax(dim=1) == 0).float().mean()            # a 0-d tensor


def used_pitch_classes_by_sets(bars, low=21):
    counts = []
    for bar in bars.tolist():
        classes = {(low + k) % 12 for step in bar for k, v in enumerate(step) if v}
        if classes:
            counts.append(len(classes))
    return sum(counts) / len(counts) if counts else 0.0


def used_pitch_classes_by_matrix(bars, low=21):
    one_hot = np.eye(12, dtype=int)[(low + np.arange(bars.shape[2])) % 12]     # (n_pitches, 12)
    per_class = (bars.max(axis=1) @ one_hot) > 0                               # (n_bars, 12)
    n = per_class.sum(axis=1)
    return n[n > 0].mean() if (n > 0).any() else 0.0


def runs_by_loops(bars):
    """(pitch, length) of every note, scanning each pitch of the joined roll step by step."""
    roll = bars.reshape(-1, bars.shape[2]).tolist()
    notes = []
    for k in range(len(roll[0])):
        length = 0
        for t in range(len(roll) + 1):
            if t < len(roll) and roll[t][k]:
                length += 1
            elif length:
                notes.append((k, length))
                length = 0
    return notes


def qualified_note_rate_by_loops(bars, min_steps=3):
    notes = runs_by_loops(bars)
    if not notes:
        return math.nan
    return sum(1 for _, n in notes if n >= min_steps) / len(notes)


def qualified_note_rate_by_onsets(bars, min_steps=3):
    roll = torch.as_tensor(bars).reshape(-1, bars.shape[2]).bool()
    before = torch.cat([torch.zeros_like(roll[:1]), roll[:-1]])
    n_notes = int((roll & ~before).sum())
    # a note of at least m steps has exactly one step with m-1 sounding steps right before it in its run
    run = roll.clone().int()
    for t in range(1, len(run)):
        run[t] = (run[t - 1] + 1) * roll[t]
    qualified = int((run == min_steps).sum())
    return qualified / n_notes if n_notes else float("nan")


MAJOR_SETS = [{(root + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)} for root in range(12)]
MINOR_SETS = [{(root + i) % 12 for i in (0, 2, 3, 5, 7, 8, 10)} for root in range(12)]


def in_scale_rate_by_sets(bars, low=21):
    classes = [(low + k) % 12 for k, _ in runs_by_loops(bars)]
    if not classes:
        return math.nan
    return max(sum(c in scale for c in classes) / len(classes) for scale in MAJOR_SETS)


def in_scale_rate_major_and_minor(bars, low=21):      # MusPy's scale_consistency: 24 scales
    classes = [(low + k) % 12 for k, _ in runs_by_loops(bars)]
    if not classes:
        return math.nan
    return max(sum(c in scale for c in classes) / len(classes) for scale in MAJOR_SETS + MINOR_SETS)


ALSO_CORRECT = {
    "empty_bar_rate": [empty_bar_rate_by_loops, empty_bar_rate_in_torch],
    "used_pitch_classes": [used_pitch_classes_by_sets, used_pitch_classes_by_matrix],
    "qualified_note_rate": [qualified_note_rate_by_loops, qualified_note_rate_by_onsets],
    "in_scale_rate": [in_scale_rate_by_sets, in_scale_rate_major_and_minor],
}


# ---------------------------------------------------------------- plausible wrong implementations
def eb_non_empty_rate(bars):                     # what the public MuseGAN code's empty_bar_rate returns
    return float(bars.any(axis=(1, 2)).mean())


def eb_silent_steps(bars):
    return float((bars.sum(axis=2) == 0).mean())


def eb_number_of_empty_bars(bars):
    return int((bars.sum(axis=(1, 2)) == 0).sum())


def eb_bar_with_a_silent_step(bars):             # "empty" as soon as one step of the bar is silent
    return float((bars.sum(axis=2) == 0).any(axis=1).mean())


def upc_over_all_bars(bars, low=21):
    classes = (low + np.arange(bars.shape[2])) % 12
    return float(np.mean([len(np.unique(classes[bar.any(axis=0)])) for bar in bars]))


def upc_distinct_pitches(bars, low=21):
    n = bars.any(axis=1).sum(axis=1)
    return float(n[n > 0].mean()) if (n > 0).any() else 0.0


def upc_octave_numbers(bars, low=21):
    octaves = (low + np.arange(bars.shape[2])) // 12
    counts = [len(np.unique(octaves[bar.any(axis=0)])) for bar in bars if bar.any()]
    return float(np.mean(counts)) if counts else 0.0


def upc_musegan_chroma(bars, low=21):            # 12 groups of consecutive pitches, as MuseGAN's to_chroma
    p = bars.shape[2]
    padded = np.pad(bars, ((0, 0), (0, 0), (0, -p % 12)))
    chroma = padded.reshape(bars.shape[0], bars.shape[1], 12, -1).sum(axis=3)
    counts = [np.count_nonzero(c.any(axis=0)) for c in chroma if c.any()]
    return float(np.mean(counts)) if counts else 0.0


def upc_whole_phrase(bars, low=21):
    classes = (low + np.arange(bars.shape[2])) % 12
    return float(len(np.unique(classes[bars.any(axis=(0, 1))])))


def qn_each_bar_alone(bars, min_steps=3):
    lengths = [n for bar in bars for _, n in runs_by_loops(bar[None])]
    return sum(n >= min_steps for n in lengths) / len(lengths) if lengths else math.nan


def qn_counts_cells(bars, min_steps=3):
    notes = runs_by_loops(bars)
    if not notes:
        return math.nan
    return sum(n for _, n in notes if n >= min_steps) / sum(n for _, n in notes)


def qn_strictly_longer(bars, min_steps=3):
    notes = runs_by_loops(bars)
    return sum(n > min_steps for _, n in notes) / len(notes) if notes else math.nan


def qn_zero_when_silent(bars, min_steps=3):
    notes = runs_by_loops(bars)
    return sum(n >= min_steps for _, n in notes) / len(notes) if notes else 0.0


def qn_counts_onsets_per_bar_only(bars, min_steps=3):      # not a named mistake: fails with the hint only
    return qualified_note_rate(bars[:1], min_steps)


def isr_c_major_only(bars, low=21):
    classes = [(low + k) % 12 for k, _ in runs_by_loops(bars)]
    return sum(c in MAJOR_SETS[0] for c in classes) / len(classes) if classes else math.nan


def isr_counts_cells(bars, low=21):
    roll = bars.reshape(-1, bars.shape[2])
    classes = (low + np.nonzero(roll)[1]) % 12
    if len(classes) == 0:
        return math.nan
    return max(np.isin(classes, list(scale)).mean() for scale in MAJOR_SETS)


def isr_worst_scale(bars, low=21):
    classes = [(low + k) % 12 for k, _ in runs_by_loops(bars)]
    if not classes:
        return math.nan
    return min(sum(c in scale for c in classes) / len(classes) for scale in MAJOR_SETS)


def isr_zero_when_silent(bars, low=21):
    got = in_scale_rate(bars, low)
    return 0.0 if math.isnan(got) else got


WRONG = {
    "empty_bar_rate": [eb_non_empty_rate, eb_silent_steps, eb_number_of_empty_bars, eb_bar_with_a_silent_step],
    "used_pitch_classes": [upc_over_all_bars, upc_distinct_pitches, upc_octave_numbers, upc_musegan_chroma,
                           upc_whole_phrase],
    "qualified_note_rate": [qn_each_bar_alone, qn_counts_cells, qn_strictly_longer, qn_zero_when_silent,
                            qn_counts_onsets_per_bar_only],
    "in_scale_rate": [isr_c_major_only, isr_counts_cells, isr_worst_scale, isr_zero_when_silent],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

MESSAGES = {
    eb_non_empty_rate: "the non-empty rate",
    eb_silent_steps: "fraction of silent time steps",
    eb_number_of_empty_bars: "the number of empty bars",
    upc_over_all_bars: "empty ones included",
    upc_distinct_pitches: "counts distinct pitches",
    upc_octave_numbers: "counts octaves",
    upc_musegan_chroma: "groups consecutive semitones",
    upc_whole_phrase: "all the bars together",
    qn_each_bar_alone: "cutting the notes at the bar lines",
    qn_counts_cells: "fraction of sounding cells",
    qn_strictly_longer: "(>=)",
    qn_zero_when_silent: "return float('nan')",
    isr_c_major_only: "C major only",
    isr_counts_cells: "counts sounding cells",
    isr_worst_scale: "the worst scale",
    isr_zero_when_silent: "return float('nan')",
}


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)


test_a_correct_answer_written_another_way_passes = also_correct_test(ALSO_CORRECT)


@pytest.mark.parametrize("name", NAMES)
def test_a_function_that_returns_none_fails(name):
    def forgot_return(*args, **kwargs):
        SOLUTIONS[name](*args, **kwargs)

    out = run_check(name, forgot_return)
    assert out.startswith(f"FAIL {name}: case ") and "returned None" in out, out


def test_the_lesson_registers_its_exercises_in_order():
    assert [e.name for e in exercises_of("08_music_gan")] == NAMES


def test_a_function_that_changes_its_input_fails():
    def silences_the_first_bar(bars):
        bars[0] = 0
        return empty_bar_rate(bars)

    assert "changed its input" in run_check("empty_bar_rate", silences_the_first_bar)


def test_ignoring_low_is_no_mistake_for_counts_and_the_best_scale():
    """Shifting every pitch class by the same amount changes neither the number of distinct classes nor
    the best of the 12 major scales: an answer that ignores low is right (C major alone does depend on it)."""
    assert run_check("used_pitch_classes", lambda bars, low=21: used_pitch_classes(bars, 0)) == \
        pass_line("used_pitch_classes")
    assert run_check("in_scale_rate", lambda bars, low=21: in_scale_rate(bars, 0)) == pass_line("in_scale_rate")
    assert "C major only" in run_check("in_scale_rate", lambda bars, low=21: isr_c_major_only(bars, 0))


# ---------------------------------------------------------------- the cases themselves
MODULE_MISTAKES = {
    "empty_bar_rate": (lesson_08.reference_empty_bar_rate, lesson_08.EB_MISTAKES),
    "used_pitch_classes": (lesson_08.reference_used_pitch_classes, lesson_08.UPC_MISTAKES),
    "qualified_note_rate": (lesson_08.reference_qualified_note_rate, lesson_08.QN_MISTAKES),
    "in_scale_rate": (lesson_08.reference_in_scale_rate, lesson_08.ISR_MISTAKES),
}


def _differs(a, b) -> bool:
    return not np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)


test_the_cases_tell_every_named_mistake_from_the_right_answer = named_mistakes_test(NAMES, MODULE_MISTAKES, _differs, random_exempt={lesson_08._qn_zero_without_notes})


@pytest.mark.parametrize("name", NAMES)
def test_the_cases_are_int_bars_of_the_promised_shapes_with_silence(name):
    cases = load(name).cases()
    arrays = [c.args[0] for c in cases]
    for b in arrays:
        assert isinstance(b, np.ndarray) and b.ndim == 3 and b.dtype.kind == "i" and set(np.unique(b)) <= {0, 1}
        assert 1 <= b.shape[0] <= 8 and 4 <= b.shape[1] <= 16 and 12 <= b.shape[2] <= 60
    assert any(not b.any() for b in arrays)                                         # a silent input
    assert any(b.any() and not b.any(axis=(1, 2)).all() for b in arrays)           # some bars empty, not all
    random = [b for c, b in zip(cases, arrays) if c.name.startswith("random")]
    assert len(random) >= 5 and len({b.shape for b in random}) >= 3
    assert any(_crosses_a_bar_line(b) for b in random)


def _crosses_a_bar_line(b) -> bool:
    return bool((b[:-1, -1, :] & b[1:, 0, :]).any())


def test_low_is_passed_by_keyword_and_left_to_its_default():
    for name in ("used_pitch_classes", "in_scale_rate"):
        cases = load(name).cases()
        lows = {c.kwargs.get("low") for c in cases}
        assert None in lows and len(lows - {None}) >= 3, lows
        assert all(not c.args[1:] for c in cases)                                 # never positionally
    qn = load("qualified_note_rate").cases()
    assert {c.kwargs.get("min_steps") for c in qn} >= {None, 2, 4}
    assert any(math.isnan(lesson_08.reference_qualified_note_rate(*c.args, **c.kwargs)) for c in qn)


def _key(args) -> str:
    return repr([a.tobytes() + bytes(str(a.shape), "ascii") if isinstance(a, np.ndarray) else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, load(name).cases, SOLUTIONS[name], _key, monkeypatch)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(graded) == len(seen) and len(changed) >= 3
    out = run_check(name, memorized)
    assert out.startswith(f"FAIL {name}: case "), out
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)
