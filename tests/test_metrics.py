"""course.metrics: the likelihoods against hand computations and torch, and the music statistics on
rolls whose answers are known."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import CourseError, metrics


def test_nll_per_frame_is_the_formula_and_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g) * 2
    rolls = (torch.rand(2, 5, 7, generator=g) < 0.3).float()
    p = torch.sigmoid(logits.double())
    by_formula = -(rolls * torch.log(p) + (1 - rolls) * torch.log(1 - p)).sum() / 10
    by_torch = F.binary_cross_entropy_with_logits(logits, rolls, reduction="sum") / 10
    got = metrics.nll_per_frame(logits, rolls)
    assert isinstance(got, float)
    assert math.isclose(got, float(by_formula), rel_tol=1e-9)
    assert math.isclose(got, float(by_torch), rel_tol=1e-5)


def test_nll_per_frame_leaves_padding_out_and_accepts_numpy():
    logits = np.zeros((1, 3, 2))
    rolls = np.zeros((1, 3, 2))
    mask = np.array([[True, True, False]])
    logits[0, 2] = 50.0                                # a padding frame that would cost 100 nats
    assert math.isclose(metrics.nll_per_frame(logits, rolls, mask), 2 * math.log(2))
    assert metrics.nll_per_frame(logits, rolls) > 30


def test_nll_per_frame_is_stable_for_huge_logits():
    z = torch.tensor([[[200.0, -200.0]]])
    v = torch.tensor([[[0.0, 1.0]]])
    assert math.isclose(metrics.nll_per_frame(z, v), 400.0, rel_tol=1e-9)


def test_nll_per_frame_bad_input():
    with pytest.raises(CourseError):
        metrics.nll_per_frame(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(CourseError):
        metrics.nll_per_frame(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(CourseError):
        metrics.nll_per_frame(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.ones(3, 1, dtype=torch.bool))


def test_marginal_probs_by_hand():
    train = [np.array([[1, 0], [1, 0], [0, 0]])]
    assert np.allclose(metrics.marginal_probs(train, 1.0), [3 / 5, 1 / 5])
    assert np.allclose(metrics.marginal_probs(train, 0.0), [2 / 3, 0.0])
    with pytest.raises(CourseError):
        metrics.marginal_probs(train, -1.0)


def test_marginal_nll_by_hand_and_as_a_constant_logit_model():
    train = [np.array([[1, 0], [1, 0]]), np.array([[0, 0]])]
    test = [np.array([[1, 0], [0, 1]])]
    p = np.array([3 / 5, 1 / 5])
    by_hand = -(math.log(p[0]) + math.log(1 - p[1]) + math.log(1 - p[0]) + math.log(p[1])) / 2
    assert math.isclose(metrics.marginal_nll(train, test), by_hand)
    # the same as nll_per_frame with the fixed logits log(p / (1 - p)) at every frame
    logits = torch.tensor(np.log(p / (1 - p))).expand(1, 2, 2)
    assert math.isclose(metrics.marginal_nll(train, test), metrics.nll_per_frame(logits, torch.tensor(np.stack(test))))


def test_marginal_nll_without_smoothing_is_infinite_for_an_unseen_key():
    train = [np.array([[1, 0]])]
    test = [np.array([[1, 1]])]
    assert metrics.marginal_nll(train, test, 0.0) == math.inf
    assert math.isfinite(metrics.marginal_nll(train, test, 1.0))


def test_marginal_nll_averages_over_frames_not_pieces():
    train = [np.array([[1, 0], [0, 1]])]
    short, long = np.array([[1, 1]]), np.zeros((9, 2), int)
    per_frame = metrics.marginal_nll(train, [short, long])
    assert math.isclose(per_frame, (metrics.marginal_nll(train, [short]) + 9 * metrics.marginal_nll(train, [long])) / 10)


def test_marginal_nll_bad_input():
    with pytest.raises(CourseError):
        metrics.marginal_nll([], [np.zeros((2, 3))])
    with pytest.raises(CourseError):
        metrics.marginal_nll([np.zeros((2, 3))], [np.zeros((2, 4))])


# ---------------------------------------------------------------------------- music statistics
def chord_roll():
    """C major triad (C4 E4 G4) held 2 frames, a silent frame, then C4 alone for 1 frame; 88 keys from A0."""
    r = np.zeros((4, 88), np.uint8)
    r[0:2, [60 - 21, 64 - 21, 67 - 21]] = 1
    r[3, 60 - 21] = 1
    return r


def test_statistics_of_a_known_roll():
    r = chord_roll()
    assert metrics.polyphony(r) == pytest.approx(7 / 4)
    assert metrics.empty_frame_rate(r) == pytest.approx(1 / 4)
    assert metrics.note_density(r) == pytest.approx(4 / 4)      # 3 notes start at 0, one at 3
    assert metrics.mean_note_length(r) == pytest.approx(7 / 4)
    assert metrics.pitch_range(r) == 7
    hist = metrics.pitch_class_histogram(r)
    assert hist.shape == (12,) and hist.sum() == pytest.approx(1.0)
    assert hist[0] == pytest.approx(3 / 7) and hist[4] == pytest.approx(2 / 7) and hist[7] == pytest.approx(2 / 7)
    assert 0 < metrics.pitch_class_entropy(r) < math.log2(3) + 1e-9


def test_statistics_take_lists_and_tensors_and_count_frames_together():
    r = chord_roll()
    assert metrics.polyphony([r, np.zeros((4, 88))]) == pytest.approx(7 / 8)
    assert metrics.polyphony(torch.tensor(r)) == pytest.approx(7 / 4)
    assert metrics.note_density([r, r]) == pytest.approx(1.0)     # a new piece starts its notes afresh


def test_entropy_bounds_and_silence():
    silent = np.zeros((3, 88))
    assert metrics.pitch_class_entropy(silent) == 0.0 and metrics.pitch_range(silent) == 0
    assert metrics.mean_note_length(silent) == 0.0 and metrics.empty_frame_rate(silent) == 1.0
    chromatic = np.zeros((1, 88))
    chromatic[0, 39:51] = 1
    assert metrics.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert np.allclose(metrics.pitch_class_histogram(chromatic), 1 / 12)


def test_pitch_classes_of_a_128_pitch_roll():
    r = np.zeros((1, 128))
    r[0, 62] = 1                                       # D4
    assert metrics.pitch_class_histogram(r, low=0)[2] == 1.0


def test_compare_stats():
    r = chord_roll()
    same = metrics.compare_stats([r], [r])
    assert set(same) == set(metrics.music_stats(r)) | {"pitch_class_distance"}
    for k, v in same.items():
        assert v["generated"] == pytest.approx(v["reference"])
    busy = np.ones((4, 88))
    diff = metrics.compare_stats(busy, r)
    assert diff["polyphony"]["ratio"] == pytest.approx(88 / (7 / 4))
    assert 0 < diff["pitch_class_distance"]["generated"] <= 1
    table = metrics.describe_stats(diff)
    assert "polyphony" in table and len(table.splitlines()) == len(diff) + 1


def test_statistics_bad_input():
    with pytest.raises(CourseError):
        metrics.polyphony([])
    with pytest.raises(CourseError):
        metrics.polyphony(np.zeros(5))


def test_keys_per_frame_spread_and_four_voice_share_by_hand():
    from course.metrics import rolls
    a = np.zeros((3, 88))
    a[0, [40, 44, 47, 52]] = 1                         # four keys
    a[1, [40, 44]] = 1                                 # two
    b = np.zeros((1, 88))
    b[0, [30, 40, 44, 47, 52, 59]] = 1                 # six
    assert rolls.keys_per_frame([a, b]).tolist() == [4, 2, 0, 6]
    assert rolls.polyphony_std([a, b]) == pytest.approx(np.std([4, 2, 0, 6]))
    assert rolls.polyphony_std(np.ones((5, 88))) == 0.0
    assert rolls.polyphony_rate([a, b]) == pytest.approx(1 / 4)
    assert rolls.polyphony_rate([a, b], n=0) == pytest.approx(1 / 4)
    assert rolls.polyphony_rate(a, n=3) == 0.0
    assert np.mean(rolls.keys_per_frame([a, b])) == pytest.approx(metrics.polyphony([a, b]))
    with pytest.raises(CourseError):
        rolls.polyphony_rate(a, n=2.5)
    with pytest.raises(CourseError):
        rolls.keys_per_frame([])
