"""course.metrics' bar statistics (lesson 08): every function on small bars whose values are worked out by
hand, the edge cases (silence, NaN, torch and bool input, low), the error messages and the baselines."""
import math

import numpy as np
import pytest
import torch

from course import CourseError, metrics
from course.metrics import bars as bar_metrics

C4 = 60                       # with low=60, pitch index k is MIDI 60 + k: 0 = C4, 2 = D4, 4 = E4, 6 = F#4, 7 = G4


def three_bars():
    """(3 bars, 4 steps, 12 pitches from C4), low=60.

    bar 0: C4 held all 4 steps; E4 twice, 1 step each (steps 0 and 2)
    bar 1: empty
    bar 2: G4 steps 0-1, F#4 step 2, D4 step 3
    """
    b = np.zeros((3, 4, 12), np.uint8)
    b[0, :, 0] = 1
    b[0, [0, 2], 4] = 1
    b[2, 0:2, 7] = 1
    b[2, 2, 6] = 1
    b[2, 3, 2] = 1
    return b


def test_every_statistic_of_three_hand_made_bars():
    b = three_bars()
    # EB: one bar of three is empty
    assert metrics.empty_bar_rate(b) == pytest.approx(1 / 3)
    # UPC: bar 0 has {C, E} = 2, bar 2 has {G, F#, D} = 3; the empty bar is left out: (2 + 3) / 2
    assert metrics.used_pitch_classes(b, low=C4) == pytest.approx(2.5)
    # notes: C4 (4 steps), E4 (1), E4 (1), G4 (2), F#4 (1), D4 (1) = 6 notes
    assert metrics.qualified_note_rate(b) == pytest.approx(1 / 6)                  # only C4 is >= 3 steps
    assert metrics.qualified_note_rate(b, min_steps=2) == pytest.approx(2 / 6)     # C4 and G4
    assert metrics.qualified_note_rate(b, min_steps=1) == 1.0
    assert metrics.qualified_note_rate(b, min_steps=5) == 0.0
    # polyphony: sounding steps 2,1,2,1 (bar 0) and 1,1,1,1 (bar 2): 10 cells over 8 steps
    assert metrics.bar_polyphony(b) == pytest.approx(10 / 8)
    # in scale: C, E, E, G, F#, D all lie in G major (C major misses F#: 5/6)
    assert metrics.in_scale_rate(b, low=C4) == 1.0
    # histogram of cells: C 4, D 1, E 2, F# 1, G 2 = 10 cells
    expected = np.zeros(12)
    expected[[0, 2, 4, 6, 7]] = [4, 1, 2, 1, 2]
    np.testing.assert_allclose(metrics.pitch_class_histogram_bars(b, low=C4), expected / 10)


def test_in_scale_rate_counts_notes_not_cells_and_takes_the_best_scale():
    """C4 held 4 steps (1 note), C#4 twice for 1 step (2 notes), E4 for 1 step: 4 notes, 7 cells.

    No major scale holds C, C# and E together; C# major (B# = C) and Ab major (Db = C#) hold C and C#:
    3 of 4 notes. Counting cells instead would give 6/7; the worst scale (Bb major: only C) 1/4."""
    b = np.zeros((2, 4, 12), int)
    b[0, :, 0] = 1
    b[1, [0, 2], 1] = 1
    b[1, 3, 4] = 1
    assert metrics.in_scale_rate(b, low=C4) == pytest.approx(3 / 4)
    assert metrics.qualified_note_rate(b) == pytest.approx(1 / 4)


def test_a_note_across_a_bar_line_is_one_note():
    b = np.zeros((2, 4, 1), int)
    b[0, 2:, 0] = 1
    b[1, :2, 0] = 1                      # steps 2-3 of bar 0 and 0-1 of bar 1: one note of 4 steps
    assert metrics.qualified_note_rate(b) == 1.0           # per bar it would be two notes of 2 steps: 0.0
    assert metrics.qualified_note_rate(b, min_steps=4) == 1.0
    assert metrics.qualified_note_rate(b, min_steps=5) == 0.0
    b[0, 3, 0] = 0                       # now two notes: 1 step (bar 0, step 2) and 2 steps (bar 1)
    assert metrics.qualified_note_rate(b, min_steps=2) == 0.5


def test_silence_gives_the_documented_values():
    silent = np.zeros((4, 16, 12))
    assert metrics.empty_bar_rate(silent) == 1.0
    assert metrics.used_pitch_classes(silent) == 0.0
    assert math.isnan(metrics.qualified_note_rate(silent))
    assert math.isnan(metrics.bar_polyphony(silent))
    assert math.isnan(metrics.in_scale_rate(silent))
    assert np.array_equal(metrics.pitch_class_histogram_bars(silent), np.zeros(12))
    assert metrics.pitch_class_distance(silent, silent) == 0.0
    assert metrics.pitch_class_distance(silent, three_bars()) == pytest.approx(0.5)


def test_no_empty_bar_and_a_full_bar():
    full = np.ones((2, 3, 24))
    assert metrics.empty_bar_rate(full) == 0.0
    assert metrics.used_pitch_classes(full) == 12.0
    assert metrics.bar_polyphony(full) == 24.0
    assert metrics.qualified_note_rate(full) == 1.0                   # 24 notes of 6 steps (2 bars joined)
    assert metrics.in_scale_rate(full) == pytest.approx(7 / 12)       # 24 notes, 2 of each class, 14 in a scale


def test_torch_bool_and_float_input_give_the_same_values():
    b = three_bars()
    stats = metrics.bar_stats(b, low=C4)
    for other in (torch.tensor(b), torch.tensor(b).bool(), b.astype(bool), b * 0.9 + 0.05, torch.tensor(b * 0.7)):
        got = metrics.bar_stats(other, low=C4)
        assert got.keys() == stats.keys()
        for k in stats:
            assert got[k] == pytest.approx(stats[k], nan_ok=True), k
    half = b * 0.5                                          # 0.5 is not > 0.5: nothing sounds
    assert metrics.empty_bar_rate(half) == 1.0


def test_bar_stats_keys_and_values():
    stats = metrics.bar_stats(three_bars(), low=C4)
    assert list(stats) == ["empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "bar_polyphony",
                           "in_scale_rate"]
    assert all(isinstance(v, float) for v in stats.values())
    assert stats["used_pitch_classes"] == pytest.approx(2.5) and stats["bar_polyphony"] == pytest.approx(1.25)


def test_low_shifts_the_pitch_classes():
    b = np.zeros((1, 2, 12), int)
    b[0, :, 0] = 1                                  # index 0 held two steps
    assert metrics.pitch_class_histogram_bars(b, low=60)[0] == 1.0     # C4
    assert metrics.pitch_class_histogram_bars(b, low=21)[9] == 1.0     # A0
    assert metrics.pitch_class_histogram_bars(b)[9] == 1.0             # default low=21: A0
    assert metrics.pitch_class_histogram_bars(b, low=62)[2] == 1.0     # D4
    # a semitone apart: disjoint histograms, total variation 1
    assert metrics.pitch_class_distance(b, b, low=60) == 0.0
    shifted = np.roll(b, 1, axis=2)
    assert metrics.pitch_class_distance(b, shifted, low=60) == 1.0


def test_the_count_of_classes_and_the_best_scale_do_not_depend_on_low():
    b = three_bars()
    for low in (0, 21, 31, 60, 61, 66):
        assert metrics.used_pitch_classes(b, low=low) == pytest.approx(2.5)
        assert metrics.in_scale_rate(b, low=low) == 1.0
    h60, h61 = metrics.pitch_class_histogram_bars(b, 60), metrics.pitch_class_histogram_bars(b, 61)
    np.testing.assert_allclose(np.roll(h60, 1), h61)


def test_pitch_classes_not_pitches_and_not_chroma_groups():
    b = np.zeros((1, 2, 36), int)
    b[0, 0, [0, 12, 24]] = 1                        # C in three octaves: one pitch class
    b[0, 1, 7] = 1                                  # G
    assert metrics.used_pitch_classes(b, low=C4) == 2.0
    assert metrics.in_scale_rate(b, low=C4) == 1.0


def test_inputs_are_not_changed():
    b = three_bars()
    before = b.copy()
    metrics.bar_stats(b, low=C4)
    metrics.random_bars(b)
    metrics.shuffled_bars(b)
    metrics.compare_bars({"data": b, "other": b}, "data")
    assert np.array_equal(b, before)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((16, 12)), ["(n_bars, steps_per_bar, n_pitches)", "(16, 12)", "bars[None]"]),
    (np.zeros((2, 3, 16, 12)), ["3-D", "(2, 3, 16, 12)"]),
    (np.zeros((0, 16, 12)), ["no bars", "(0, 16, 12)"]),
    (np.zeros((2, 16, 0)), ["one pitch", "(2, 16, 0)"]),
    (np.zeros((2, 0, 12)), ["one step", "(2, 0, 12)"]),
    (np.array([[["a"]]]), ["0/1 numbers", "dtype"]),
])
def test_bad_bars_say_what_shape_was_expected_and_what_came(bad, words):
    for f in (metrics.empty_bar_rate, metrics.used_pitch_classes, metrics.qualified_note_rate,
              metrics.bar_polyphony, metrics.in_scale_rate, metrics.pitch_class_histogram_bars,
              metrics.random_bars, metrics.shuffled_bars):
        with pytest.raises(CourseError) as e:
            f(bad)
        assert all(w in str(e.value) for w in words), str(e.value)
        assert f.__name__ in str(e.value)


@pytest.mark.parametrize("min_steps", [0, -1, 2.5, 3.0, True, "3", None])
def test_min_steps_must_be_a_whole_number_of_at_least_one(min_steps):
    with pytest.raises(CourseError, match="min_steps must be a whole number >= 1"):
        metrics.qualified_note_rate(three_bars(), min_steps=min_steps)


def test_min_steps_accepts_numpy_integers_and_low_must_be_whole():
    assert metrics.qualified_note_rate(three_bars(), min_steps=np.int64(2)) == pytest.approx(1 / 3)
    with pytest.raises(CourseError, match="low"):
        metrics.used_pitch_classes(three_bars(), low=21.5)
    with pytest.raises(CourseError, match="low"):
        metrics.in_scale_rate(three_bars(), low="C4")


# ---------------------------------------------------------------------------- baselines
def test_random_bars_copy_shape_and_density():
    like = np.zeros((40, 16, 24), np.uint8)
    like[:, ::4, ::3] = 1                                   # density 4 * 8 / (16 * 24) = 1 / 12
    noise = metrics.random_bars(like)
    assert noise.shape == like.shape and noise.dtype == np.uint8 and set(np.unique(noise)) <= {0, 1}
    assert noise.mean() == pytest.approx(1 / 12, abs=0.01)
    assert metrics.random_bars(like, n=3).shape == (3, 16, 24)
    assert np.array_equal(metrics.random_bars(like, seed=5), metrics.random_bars(like, seed=5))
    assert not np.array_equal(metrics.random_bars(like, seed=5), metrics.random_bars(like, seed=6))
    assert metrics.random_bars(np.zeros((2, 4, 5))).sum() == 0
    assert metrics.random_bars(torch.ones(2, 4, 5)).min() == 1
    for bad in (0, -2, 2.0, True):
        with pytest.raises(CourseError, match="n"):
            metrics.random_bars(like, n=bad)


def test_shuffled_bars_are_a_permutation_that_keeps_every_within_bar_statistic():
    rng = np.random.default_rng(0)
    b = (rng.random((30, 8, 24)) < 0.2).astype(np.uint8)
    b[3] = 0
    out = metrics.shuffled_bars(b, seed=1)
    perm = np.random.default_rng(1).permutation(30)
    assert np.array_equal(out, b[perm]) and out.dtype == b.dtype
    assert not np.array_equal(out, b)
    assert out is not b and not np.shares_memory(out, b)
    same = ["empty_bar_rate", "used_pitch_classes", "bar_polyphony"]
    s_in, s_out = metrics.bar_stats(b), metrics.bar_stats(out)
    assert all(s_in[k] == pytest.approx(s_out[k]) for k in same)
    assert metrics.pitch_class_distance(b, out) == pytest.approx(0.0)
    assert np.array_equal(metrics.shuffled_bars(torch.tensor(b), seed=1), out)


def test_shuffling_breaks_notes_held_across_bar_lines():
    b = np.ones((12, 2, 1), int)                # 12 bars of 2 steps, one pitch
    b[1::2] = 0                                 # bars 1, 3, ..., 11 silent
    b[0:4] = 1                                  # bars 0-4 sound: one note of 10 steps, then bars 6, 8, 10: 2 each
    assert metrics.qualified_note_rate(b) == pytest.approx(1 / 4)
    rates = {metrics.qualified_note_rate(metrics.shuffled_bars(b, seed=s)) for s in range(5)}
    assert rates != {1 / 4}


# ---------------------------------------------------------------------------- comparing sets
def test_compare_bars_puts_the_reference_first_with_distance_zero():
    data = three_bars()
    sets = {"noise": metrics.random_bars(data, n=50, seed=3), "data": data, "shuffled": metrics.shuffled_bars(data)}
    cmp = metrics.compare_bars(sets, "data", low=C4)
    assert list(cmp) == ["data", "noise", "shuffled"]
    assert cmp["data"]["pitch_class_distance"] == 0.0
    assert cmp["shuffled"]["pitch_class_distance"] == pytest.approx(0.0)
    assert cmp["noise"]["pitch_class_distance"] > 0.2
    for name in cmp:
        assert set(cmp[name]) == set(metrics.bar_stats(data)) | {"pitch_class_distance"}
    assert cmp["data"]["used_pitch_classes"] == pytest.approx(2.5)


def test_describe_bars_names_the_closest_set_for_each_statistic():
    data = three_bars()
    far = np.ones((3, 4, 12))                                    # every cell on
    cmp = metrics.compare_bars({"data": data, "full": far, "shuffled": metrics.shuffled_bars(data, seed=2)},
                               "data", low=C4)
    table = metrics.describe_bars(cmp)
    lines = table.splitlines()
    assert len(lines) == 1 + 6
    assert lines[0].split()[:4] == ["statistic", "data", "full", "shuffled"] and "closest" in lines[0]
    closest = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    assert closest["empty_bar_rate"] == "shuffled" and closest["pitch_class_distance"] == "shuffled"
    assert closest["bar_polyphony"] == "shuffled" and closest["used_pitch_classes"] == "shuffled"


def test_describe_bars_with_nan_statistics_and_one_set():
    silent, noisy = np.zeros((2, 4, 12)), np.ones((2, 4, 12))
    cmp = metrics.compare_bars({"data": silent, "noise": noisy, "quiet": np.zeros((3, 4, 12))}, "data")
    closest = {line.split()[0]: line.split()[-1] for line in metrics.describe_bars(cmp).splitlines()[1:]}
    assert closest["qualified_note_rate"] == "quiet" and closest["in_scale_rate"] == "quiet"   # NaN like the data
    assert "nan" in metrics.describe_bars(cmp)
    alone = metrics.describe_bars(metrics.compare_bars({"data": silent}, "data"))
    assert all(line.split()[-1] == "-" for line in alone.splitlines()[1:])


def test_compare_bars_bad_input():
    with pytest.raises(CourseError, match="not one of the sets"):
        metrics.compare_bars({"data": three_bars()}, "GAN")
    with pytest.raises(CourseError, match="non-empty dict"):
        metrics.compare_bars({}, "data")
    with pytest.raises(CourseError, match="compare_bars"):
        metrics.describe_bars({})


def test_the_package_exports_every_name_and_the_old_ones():
    assert set(bar_metrics.__all__) <= set(metrics.__all__)
    for name in metrics.__all__:
        assert callable(getattr(metrics, name)) or name.isupper(), name      # functions, and constants such as BACH_RANGES
    assert "describe_stats" in metrics.__all__ and metrics.__doc__.startswith("Evaluation")
    for name in bar_metrics.__all__:
        assert "Lesson: 08_music_gan" in getattr(metrics, name).__doc__, name
