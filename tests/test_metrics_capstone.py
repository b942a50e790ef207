"""course.metrics for lesson 09 (copying and voice leading), course.data.voices and the harmonizer's data,
each on hand-made examples whose answers are worked out by hand."""
import numpy as np
import pytest

from course import data, metrics
from course.errors import CourseError
from course.music import Music, Note, Part


# ---------------------------------------------------------------- longest common n-gram
@pytest.mark.parametrize("a, b, expected", [
    ([2, 2, 1, -5], [0, 2, 1, -5, 3], 3),           # 2, 1, -5
    ("GABCDE", "XBCDAGA", 3),                        # BCD
    ([1, 2, 3, 4], [1, 9, 2, 9, 3, 9, 4], 1),        # a subsequence of 4, but no run longer than 1
    ([], [1, 2], 0),
    ([5, 5, 5], [5, 5], 2),
    ([1, 2], [3, 4], 0),
])
def test_longest_common_ngram_on_worked_examples(a, b, expected):
    assert metrics.longest_common_ngram(a, b) == expected == metrics.longest_common_ngram(b, a)


def test_intervals_are_transposition_invariant():
    tune = [60, 62, 64, 60, 67]
    assert metrics.intervals(tune).tolist() == [2, 2, -4, 7]
    assert metrics.intervals(np.array(tune) + 5).tolist() == [2, 2, -4, 7]
    assert metrics.intervals([60]).tolist() == []


def test_melody_pitches_reads_the_top_line_in_onset_order():
    notes = (Note(48, 0.0, 1.0, 80, 1), Note(64, 0.0, 0.5, 80, 0), Note(67, 0.5, 1.0, 80, 0), Note(52, 1.0, 2.0, 80, 1))
    m = Music(notes=notes, qpm=120, parts=(Part("upper"), Part("lower")))
    assert metrics.melody_pitches(m).tolist() == [64, 67, 52]          # the highest at each onset
    assert metrics.melody_pitches(m, part=1).tolist() == [48, 52]
    # a long top note over moving inner notes is one note of the line; a lower note that starts under it is not
    held = (Note(72, 0.0, 2.0, 80, 0), Note(60, 0.0, 0.5, 80, 1), Note(62, 0.5, 1.0, 80, 1), Note(64, 1.0, 2.0, 80, 1),
            Note(71, 2.0, 2.5, 80, 0), Note(65, 2.5, 3.0, 80, 1))
    assert metrics.melody_pitches(Music(notes=held, qpm=120, parts=(Part(), Part()))).tolist() == [72, 71, 65]


def test_the_index_finds_the_piece_with_the_longest_shared_run():
    train = [[1, 2, 3, 4, 5], [2, 2, 2, 9, 9, 1, 2, 3], [0, 0]]
    index = metrics.NgramIndex(train, ["a", "b", "c"])
    assert index.nearest([7, 2, 2, 9, 9, 1, 7]) == (1, 5)              # 2, 2, 9, 9, 1 in piece b
    assert index.nearest([3, 4, 5, 0, 0]) == (0, 3)
    assert index.nearest([8, 8]) == (0, 0)
    assert index.runs([5, 2, 2, 2]).tolist() == [1, 3, 0]
    # no run spans the end of one piece and the start of the next
    assert metrics.NgramIndex([[1, 2], [3, 4]]).nearest([2, 3])[1] == 1


def test_the_index_agrees_with_the_plain_dynamic_programme_on_random_sequences():
    r = np.random.default_rng(3)
    for _ in range(200):
        pieces = [r.integers(-2, 3, int(r.integers(1, 30))) for _ in range(3)]
        q = r.integers(-2, 3, int(r.integers(0, 30)))
        index = metrics.NgramIndex(pieces)
        best, k = index.nearest(q)
        each = [metrics.longest_common_ngram(q.tolist(), p.tolist()) for p in pieces]
        assert k == max(each) and each[best] == k and index.runs(q).tolist() == each


def test_copy_threshold_is_the_baseline_quantile():
    assert metrics.copy_threshold(list(range(1, 101)), 0.95) == pytest.approx(95.05)
    with pytest.raises(CourseError):
        metrics.copy_threshold([], 0.9)
    with pytest.raises(CourseError):
        metrics.NgramIndex([[1.5, 2.0]])


# ---------------------------------------------------------------- voice leading
def test_parallel_fifths_and_octaves_on_a_worked_progression():
    # soprano C5 D5 E5, alto E4 F4 G4, tenor G3 A3 C4, bass C3 D3 E3 (MIDI)
    v = np.array([[72, 74, 76], [64, 65, 67], [55, 57, 60], [48, 50, 52]])
    # S-B: 24, 24, 24 semitones (double octaves, both up): 2; T-B: 7, 7, 8: one parallel fifth (t = 1)
    # S-A 8, 9, 9; S-T 17, 17, 16 (fourths); A-T 9, 8, 7; A-B 16, 15, 15: none
    assert metrics.parallel_fifths_octaves(v) == 3


@pytest.mark.parametrize("voices, expected", [
    ([[67, 69], [60, 62]], 1),          # parallel fifths
    ([[67, 74], [60, 55]], 0),          # contrary: 7 -> 19, a fifth again but the voices move apart
    ([[67, 79], [60, 60]], 0),          # oblique: the lower voice holds
    ([[67, 67], [60, 60]], 0),          # nothing moves
    ([[60, 62], [60, 62]], 1),          # unisons moving together
    ([[79, 81], [60, 62]], 1),          # a twelfth to a twelfth
    ([[67, -1], [60, 62]], 0),          # a rest
    ([[67, 69, 71], [60, 62, 65]], 1),  # a fifth, a fifth, then a diminished fifth
])
def test_parallel_motion_only_counts_similar_motion_into_the_same_perfect_interval(voices, expected):
    assert metrics.parallel_fifths_octaves(np.array(voices)) == expected


def test_crossings_spacing_and_range():
    v = np.array([[72, 60, 72], [64, 64, 55], [60, 62, 60], [48, 43, 64]])
    assert metrics.voice_crossings(v) == 3           # t=1: S < A; t=2: A < T and T < B
    assert metrics.spacing_errors(v) == 1            # t=2: soprano 72 over alto 55 is 17 > 12
    assert metrics.out_of_range(v).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert metrics.out_of_range(np.array([[59, 60], [55, 80], [47, 50], [-1, 70]])).tolist() == [0.5, 0.5, 0.5, 1.0]


def test_note_agreement_counts_the_lower_voices_where_the_reference_sounds():
    ref = np.array([[72, 72], [64, 65], [60, -1], [48, 50]])
    mine = np.array([[72, 72], [64, 64], [55, 57], [48, 50]])
    assert metrics.note_agreement(mine, ref) == pytest.approx(3 / 5)     # alto 1/2, tenor 0/1, bass 2/2
    report = metrics.voice_leading_report(mine, ref)
    assert report["agreement with reference"] == pytest.approx(0.6) and report["voice crossings"] == 0


def test_voice_functions_reject_what_is_not_a_voice_array():
    with pytest.raises(CourseError, match=r"\(V, T\)"):
        metrics.parallel_fifths_octaves([60, 62])
    with pytest.raises(CourseError, match="int array"):
        metrics.voice_crossings(np.zeros((4, 3)))


def test_bachs_ranges_are_those_of_the_training_chorales():
    train = data.voices("chorales", "train")
    for k, (lo, hi) in enumerate(metrics.BACH_RANGES):
        s = np.concatenate([v[k] for v in train])
        s = s[s >= 0]
        assert (int(s.min()), int(s.max())) == (lo, hi)


# ---------------------------------------------------------------- the four voices
def test_voices_sample_each_part_at_the_start_of_every_step():
    v = data.voices("chorales", "train")[0]          # BWV 269 at eighth notes
    notes = data.load("chorales", "train").notes(0)
    assert v.shape[0] == 4 and v.dtype == np.int16
    # the first note of each part (start 0, 16th-note grid) fills steps 0 .. ceil(end / 2) - 1
    for part in range(4):
        first = np.flatnonzero(notes["part"] == part)[0]
        end = -(-int(notes["end"][first]) // 2)
        assert (v[part, :end] == notes["pitch"][first]).all()
    four = data.voices("chorales", "train", steps_per_quarter=4)[0]
    assert four.shape[1] in (2 * v.shape[1], 2 * v.shape[1] - 1) and (four[:, ::2] == v[:, : four[:, ::2].shape[1]]).all()
    with pytest.raises(Exception, match="steps_per_quarter"):
        data.voices("chorales", "train", steps_per_quarter=3)


def test_every_chorale_note_lies_in_coconets_range():
    for split in ("train", "valid", "test"):
        for v in data.voices("chorales", split):
            s = v[v >= 0]
            assert s.min() >= data.VOICE_LOW and s.max() <= data.VOICE_HIGH


def test_voice_crops_are_reproducible_windows_transposed_in_range():
    pieces = data.voices("chorales", "valid")
    a = data.voice_crops(pieces, 32, 20, seed=5)
    b = data.voice_crops(pieces, 32, 20, seed=5)
    assert a.shape == (20, 4, 32) and (a == b).all()
    s = a[a >= 0]
    assert s.min() >= data.VOICE_LOW and s.max() <= data.VOICE_HIGH
    plain = data.voice_crops(pieces, 32, 20, seed=5, transpose=(0, 0))
    # a transposed window has the same intervals as some window of some piece
    w = plain[0]
    assert any((p[:, t:t + 32] == w).all() for p in pieces for t in range(p.shape[1] - 31))
    with pytest.raises(Exception, match="shorter window"):
        data.voice_crops(pieces, 10_000, 2)
