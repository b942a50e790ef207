"""course.listen.AttentionExplorer: builds without a front end, follows its controls, plays the attended notes."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course import listen  # noqa: E402
from course import music as cm  # noqa: E402
from course.errors import CourseError  # noqa: E402


def _melody(n=6):
    return cm.Music(notes=tuple(cm.Note(60 + 2 * i, 0.5 * i, 0.5 * (i + 1)) for i in range(n)), title="steps")


def _previous_note_weights(n=6):
    """Head 0 attends to the previous note (note 0 to itself); head 1 spreads evenly over the past."""
    w = np.zeros((2, n, n))
    w[0, 0, 0] = 1.0
    for i in range(1, n):
        w[0, i, i - 1] = 1.0
    for i in range(n):
        w[1, i, : i + 1] = 1.0 / (i + 1)
    return w


def test_builds_without_a_front_end_and_reports_in_one_line():
    ex = listen.AttentionExplorer(_melody(), _previous_note_weights(), head_names=["previous", "average"])
    assert "Lesson: 05_attention_math" in listen.AttentionExplorer.__doc__
    assert ex.head == 0 and ex.query == 5
    assert ex.attended() == [(4, 1.0)]
    assert ex.image.value[:4] == b"\x89PNG" and ex.audio_widget.value[:4] == b"RIFF"
    text = repr(ex)
    assert "\n" not in text and "2 heads over 6 notes" in text and "attends most to 4 (Ab4, 1.00)" in text
    assert "previous" in ex.caption.value


def test_the_clip_is_the_attended_notes_then_the_query():
    ex = listen.AttentionExplorer(_melody(), _previous_note_weights(), top=3)
    ex.select(head=1, query=3)
    assert [j for j, _ in ex.attended()] == [0, 1, 2]
    assert [n.pitch for n in ex.clip.notes] == [60, 62, 64, 66]       # the three past notes in order, then the query
    assert ex.clip.notes[-1].velocity > ex.clip.notes[0].velocity
    assert len(ex.audio) > 0 and np.isfinite(ex.audio).all()


def test_only_keys_with_a_tenth_of_the_largest_weight_are_listed_and_played():
    w = np.zeros((1, 6, 6))
    w[0, 0, 0] = 1.0
    for i in range(1, 6):
        w[0, i, : i + 1] = 0.001
        w[0, i, i - 1] = 0.6
    w[0, 5, 2] = 0.061                         # just over a tenth of the largest: kept
    w[0, 5, 1] = 0.059                         # just under a tenth: dropped
    w[0] /= w[0].sum(-1, keepdims=True)
    ex = listen.AttentionExplorer(_melody(), w, top=4)
    assert [j for j, _ in ex.attended()] == [4, 2]
    assert [n.pitch for n in ex.clip.notes] == [64, 68, 70]          # keys 2 and 4 in order, then the query
    assert "0.00" not in ex.caption.value
    ex.select(query=3)
    assert [j for j, _ in ex.attended()] == [2]


def test_context_mode_plays_the_melody_so_far_with_loudness_from_the_weights():
    ex = listen.AttentionExplorer(_melody(), _previous_note_weights())
    ex.select(head=0, query=4, mode="context")
    vel = [n.velocity for n in ex.clip.notes]
    assert len(vel) == 5 and vel[3] == max(vel) and vel[0] < vel[3]


def test_controls_update_the_picture_and_the_sound():
    ex = listen.AttentionExplorer(_melody(), _previous_note_weights())
    before = ex.image.value, ex.audio_widget.value
    ex.query_slider.value = 2                  # what moving the slider does
    assert ex.attended() == [(1, 1.0)] and ex.image.value != before[0] and ex.audio_widget.value != before[1]
    ex.head_picker.value = 1
    assert "head 1" in ex.caption.value


def test_accepts_a_single_head_tensor_and_note_lists():
    torch = pytest.importorskip("torch")
    notes = [(67, 0.0, 0.5), (69, 0.5, 1.0), (67, 1.0, 2.0)]
    ex = listen.AttentionExplorer(notes, torch.eye(3), labels=["a", "b", "c"], query=1)
    assert ex.weights.shape == (1, 3, 3) and ex.attended() == [(1, 1.0)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=np.ones((2, 5, 5)) / 5), "melody has 6 notes"),
    (dict(weights=np.ones((6, 4))), "(heads, L, L)"),
    (dict(weights=np.full((6, 6), np.nan)), "NaN"),
    (dict(labels=["x"]), "1 labels for 6 notes"),
    (dict(head=2), "head must be"),
    (dict(query=6), "query must be"),
    (dict(top=0), "top must be"),
    (dict(weights="weights"), "array or tensor"),
])
def test_bad_input_raises_a_course_error(kwargs, message):
    args = dict(weights=_previous_note_weights())
    args.update(kwargs)
    with pytest.raises(CourseError) as e:
        listen.AttentionExplorer(_melody(), **args)
    assert message in str(e.value)


def test_bad_selection_raises_a_course_error():
    ex = listen.AttentionExplorer(_melody(), _previous_note_weights())
    with pytest.raises(CourseError, match="mode must be"):
        ex.select(mode="loud")
    with pytest.raises(CourseError, match="query must be"):
        ex.select(query=-1)
