"""Lesson 09 checks: the reference solutions and independently written correct ones pass; the stub and
known-wrong implementations fail, naming the mistake; the cases tell every named mistake from the right
answer; the random cases change under grading."""
import numpy as np
import pytest
import torch

from course.checks import exercises_of, lesson_09, load, pass_line
from exercise_helpers import (also_correct_test, contract_tests, named_mistakes_test, peeking_cheat, run_check,
                              seen_then_graded)

torch.set_num_threads(1)

NAMES = ["masking_schedule", "parallel_fifths_octaves", "voice_crossings", "longest_common_ngram"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def longest_common_ngram(a, b):
    a, b = list(a), list(b)
    best = 0
    run = [0] * (len(b) + 1)                 # run[j]: the common run ending at the previous a item and b[j - 1]
    for x in a:
        new = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if x == b[j - 1]:
                new[j] = run[j - 1] + 1
                best = max(best, new[j])
        run = new
    return best


def parallel_fifths_octaves(voices):
    v = np.asarray(voices)
    count = 0
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            a, b = v[i], v[j]
            sounding = (a[:-1] >= 0) & (a[1:] >= 0) & (b[:-1] >= 0) & (b[1:] >= 0)
            da, db = np.diff(a), np.diff(b)
            same_way = (da * db) > 0                     # both move, in the same direction
            iv = np.abs(a - b) % 12
            perfect = ((iv[:-1] == 7) & (iv[1:] == 7)) | ((iv[:-1] == 0) & (iv[1:] == 0))
            count += int((sounding & same_way & perfect).sum())
    return count


def voice_crossings(voices):
    v = np.asarray(voices)
    upper, lower = v[:-1], v[1:]
    return int(((upper >= 0) & (lower >= 0) & (upper < lower)).sum())


def masking_schedule(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return np.maximum(p_min, p_max - n * (p_max - p_min) / (eta * n_steps))


SOLUTIONS = {f.__name__: f for f in [longest_common_ngram, parallel_fifths_octaves, voice_crossings, masking_schedule]}


# ---------------------------------------------------------------- correct, written another way
def lcn_by_growing_windows(a, b):
    """Try every length: is some window of a of that length also a window of b?"""
    a, b = tuple(a), tuple(b)
    windows = lambda s, k: {s[i:i + k] for i in range(len(s) - k + 1)}
    k = 0
    while k < min(len(a), len(b)) and windows(a, k + 1) & windows(b, k + 1):
        k += 1
    return k


def lcn_by_diagonals(a, b):
    """Slide b along a; along each diagonal the longest run of equal pairs."""
    a, b = list(a), list(b)
    best = 0
    for shift in range(-len(b) + 1, len(a)):
        run = 0
        for i in range(max(0, shift), min(len(a), shift + len(b))):
            run = run + 1 if a[i] == b[i - shift] else 0
            best = max(best, run)
    return best


def pfo_by_loops(voices):
    v = np.asarray(voices).tolist()
    n = 0
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            for t in range(1, len(v[i])):
                p, q, r, s = v[i][t - 1], v[i][t], v[j][t - 1], v[j][t]
                if -1 in (p, q, r, s) or p == q or r == s or (q > p) != (s > r):
                    continue
                if {abs(p - r) % 12, abs(q - s) % 12} in ({7}, {0}):
                    n += 1
    return n


def pfo_in_torch(voices):
    v = torch.as_tensor(np.asarray(voices), dtype=torch.long)
    i, j = torch.triu_indices(len(v), len(v), 1)
    a, b = v[i], v[j]                                              # (pairs, T)
    ok = (a >= 0) & (b >= 0)
    ok = ok[:, 1:] & ok[:, :-1]
    motion = torch.sign(a.diff()) * torch.sign(b.diff())
    iv = (a - b).abs() % 12
    perfect = (iv[:, 1:] == iv[:, :-1]) & ((iv[:, 1:] == 7) | (iv[:, 1:] == 0))
    return (ok & (motion == 1) & perfect).sum()                    # a 0-d tensor


def vc_by_loops(voices):
    v = np.asarray(voices).tolist()
    return sum(1 for k in range(len(v) - 1) for x, y in zip(v[k], v[k + 1]) if x >= 0 and y >= 0 and x < y)


def vc_by_sorting(voices):
    """A crossing is a step where an adjacent pair is out of (descending) order: np.diff of the column > 0."""
    v = np.asarray(voices).astype(float)
    v[v < 0] = np.nan
    with np.errstate(invalid="ignore"):
        return int((np.diff(v, axis=0) > 0).sum())


def ms_by_list(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    return [max(p_min, p_max - k * (p_max - p_min) / (eta * n_steps)) for k in range(n_steps)]


def ms_in_torch(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    t = torch.arange(n_steps, dtype=torch.float64) / (eta * n_steps)
    return (p_max - t * (p_max - p_min)).clamp(min=p_min)


ALSO_CORRECT = {
    "longest_common_ngram": [lcn_by_growing_windows, lcn_by_diagonals],
    "parallel_fifths_octaves": [pfo_by_loops, pfo_in_torch],
    "voice_crossings": [vc_by_loops, vc_by_sorting],
    "masking_schedule": [ms_by_list, ms_in_torch],
}


# ---------------------------------------------------------------- plausible wrong implementations
def lcn_subsequence(a, b):
    a, b = list(a), list(b)
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def lcn_same_positions(a, b):
    best = run = 0
    for x, y in zip(a, b):
        run = run + 1 if x == y else 0
        best = max(best, run)
    return best


def lcn_common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def lcn_shared_items(a, b):
    return len(set(a) & set(b))


def lcn_off_by_one(a, b):                       # counts the pairs of equal neighbours, not the items
    return max(longest_common_ngram(a, b) - 1, 0)


def pfo_variant(voices, *, motion="similar", interval="abs mod 12", pairs="all"):
    """Parallel perfect intervals counted with one rule changed: ``motion`` "similar" (right), "both move"
    (contrary counted too) or "not contrary" (a held note counted too); ``interval`` "abs mod 12" (right),
    "simple" (no compound intervals: 0, 7 and 12 only) or "lower minus upper mod 12"; ``pairs`` "all" or "adjacent"."""
    v = np.asarray(voices)
    count = 0
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            if pairs == "adjacent" and j != i + 1:
                continue
            a, b = v[i], v[j]
            sounding = (a[:-1] >= 0) & (a[1:] >= 0) & (b[:-1] >= 0) & (b[1:] >= 0)
            da, db = np.diff(a), np.diff(b)
            moves = {"similar": da * db > 0, "both move": (da != 0) & (db != 0), "not contrary": da * db >= 0}[motion]
            iv = {"abs mod 12": np.abs(a - b) % 12, "simple": np.abs(a - b), "lower minus upper mod 12": (b - a) % 12,
                  "upper minus lower mod 12": (a - b) % 12}[interval]
            kept = (0, 7, 12) if interval == "simple" else (0, 7)
            perfect = (iv[:-1] == iv[1:]) & np.isin(iv[1:], kept)
            count += int((sounding & moves & perfect).sum())
    return count


def pfo_counts_contrary_motion(voices):
    return pfo_variant(voices, motion="both move")


def pfo_counts_held_notes(voices):
    return pfo_variant(voices, motion="not contrary")


def pfo_no_compound_intervals(voices):
    return pfo_variant(voices, interval="simple")


def pfo_adjacent_voices_only(voices):
    return pfo_variant(voices, pairs="adjacent")


def pfo_lower_minus_upper(voices):
    return pfo_variant(voices, interval="lower minus upper mod 12")


def pfo_upper_minus_lower(voices):             # right until two voices cross
    return pfo_variant(voices, interval="upper minus lower mod 12")


def vc_every_pair(voices):
    v = np.asarray(voices)
    return sum(int(((v[i] >= 0) & (v[j] >= 0) & (v[i] < v[j])).sum()) for i in range(len(v)) for j in range(i + 1, len(v)))


def vc_unisons_too(voices):
    v = np.asarray(voices)
    return int(((v[:-1] >= 0) & (v[1:] >= 0) & (v[:-1] <= v[1:])).sum())


def vc_rests_as_notes(voices):
    v = np.asarray(voices)
    return int((v[:-1] < v[1:]).sum())


def vc_steps_with_a_crossing(voices):
    v = np.asarray(voices)
    return int(((v[:-1] >= 0) & (v[1:] >= 0) & (v[:-1] < v[1:])).any(axis=0).sum())


def ms_no_floor(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return p_max - n * (p_max - p_min) / (eta * n_steps)


def ms_times_eta(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(n_steps)
    return np.maximum(p_min, p_max - n * (p_max - p_min) * eta / n_steps)


def ms_from_one(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    n = np.arange(1, n_steps + 1)
    return np.maximum(p_min, p_max - n * (p_max - p_min) / (eta * n_steps))


def ms_straight_line(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    return np.linspace(p_max, p_min, n_steps)


def ms_one_too_few(n_steps, p_min=0.1, p_max=0.9, eta=0.7):
    return masking_schedule(n_steps, p_min, p_max, eta)[:-1]


WRONG = {
    "longest_common_ngram": [lcn_subsequence, lcn_same_positions, lcn_common_prefix, lcn_shared_items, lcn_off_by_one],
    "parallel_fifths_octaves": [pfo_counts_contrary_motion, pfo_counts_held_notes, pfo_no_compound_intervals,
                                pfo_adjacent_voices_only, pfo_lower_minus_upper, pfo_upper_minus_lower],
    "voice_crossings": [vc_every_pair, vc_unisons_too, vc_rests_as_notes, vc_steps_with_a_crossing],
    "masking_schedule": [ms_no_floor, ms_times_eta, ms_from_one, ms_straight_line, ms_one_too_few],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

MESSAGES = {
    lcn_subsequence: "longest common subsequence",
    lcn_same_positions: "compares a[i] with b[i] only",
    lcn_common_prefix: "common prefix",
    lcn_shared_items: "distinct items",
    pfo_counts_contrary_motion: "contrary motion",
    pfo_counts_held_notes: "holds its note",
    pfo_no_compound_intervals: "compound intervals",
    pfo_adjacent_voices_only: "adjacent voices only",
    pfo_lower_minus_upper: "turns a fifth into a fourth",
    pfo_upper_minus_lower: "when the voices cross",
    vc_every_pair: "compares every pair",
    vc_unisons_too: "counts unisons",
    vc_rests_as_notes: "a rest (-1)",
    vc_steps_with_a_crossing: "counts steps",
    ms_no_floor: "fall below p_min",
    ms_times_eta: "multiplies by eta",
    ms_from_one: "starts at n = 1",
    ms_straight_line: "straight from p_max to p_min",
    ms_one_too_few: "shape",
}

test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)

test_a_correct_answer_written_another_way_passes = also_correct_test(ALSO_CORRECT)


def test_the_lesson_registers_its_exercises_in_order():
    assert [e.name for e in exercises_of("09_capstone")] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_function_that_returns_none_fails(name):
    def forgot_return(*args, **kwargs):
        SOLUTIONS[name](*args, **kwargs)

    assert "returned None" in run_check(name, forgot_return)


def test_a_count_that_is_not_a_whole_number_fails():
    out = run_check("voice_crossings", lambda v: voice_crossings(v) + 0.5)
    assert out.startswith("FAIL voice_crossings") and "whole number" in out


def test_a_function_that_changes_its_input_fails():
    def marks_rests(voices):
        voices[voices < 0] = 0
        return voice_crossings(voices)

    assert "changed its input" in run_check("voice_crossings", marks_rests)


# ---------------------------------------------------------------- the cases themselves
MODULE_MISTAKES = {
    "longest_common_ngram": (lesson_09.reference_longest_common_ngram, lesson_09.LCN_MISTAKES),
    "parallel_fifths_octaves": (lesson_09.reference_parallel_fifths_octaves, lesson_09.PFO_MISTAKES),
    "voice_crossings": (lesson_09.reference_voice_crossings, lesson_09.VC_MISTAKES),
    "masking_schedule": (lesson_09.reference_masking_schedule, lesson_09.MS_MISTAKES),
}


def _differs(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape != b.shape or not np.allclose(a, b, rtol=1e-6, atol=1e-9)


test_the_cases_tell_every_named_mistake_from_the_right_answer = named_mistakes_test(NAMES, MODULE_MISTAKES, _differs)


@pytest.mark.parametrize("name", ["parallel_fifths_octaves", "voice_crossings"])
def test_the_voice_cases_are_int_arrays_with_rests_and_varied_shapes(name):
    arrays = [c.args[0] for c in load(name).cases()]
    assert all(isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind == "i" for v in arrays)
    assert any((v == -1).any() for v in arrays) and len({v.shape for v in arrays}) >= 4
    assert all(((v == -1) | ((v >= 24) & (v <= 108))).all() for v in arrays)      # pitches or rests, nothing else


def _key(args) -> str:
    return repr([a.tobytes() + bytes(str(a.shape), "ascii") if isinstance(a, np.ndarray) else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, load(name).cases, SOLUTIONS[name], _key, monkeypatch)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) + repr(c.kwargs) != _key(d.args) + repr(d.kwargs)]
    assert len(graded) == len(seen) and len(changed) >= 3
    assert run_check(name, memorized).startswith(f"FAIL {name}: case ")
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)
