"""Tests for course.listen.CallAndResponse: the keyboard, typed calls, turns, the exchange, errors, MIDI."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from course import listen  # noqa: E402
from course import music as cm  # noqa: E402
from course.errors import CourseError  # noqa: E402


def fifth_up(call, turn):
    """A deterministic 'model': the call transposed up a fifth, times from 0."""
    return cm.transpose(call, 7)


def notes(m):
    return [(n.pitch, round(n.start, 6), round(n.end, 6), n.part) for n in m.notes]


def test_keyboard_has_18_named_keys_from_c4_to_f5():
    game = listen.CallAndResponse(fifth_up)
    assert "Lesson: 09_capstone" in listen.CallAndResponse.__doc__
    keys = game.key_buttons
    assert len(keys) == 18 and all(k.__class__.__name__ == "Button" for k in keys)
    assert [k.description for k in keys] == [cm.pitch_name(p) for p in range(60, 78)]
    assert keys[0].description == "C4" and keys[-1].description == "F5"
    colours = {k.description: k.style.button_color for k in keys}
    assert colours["C4"] == colours["B4"] != colours["C#4"] == colours[cm.pitch_name(70)]
    assert game.phrase.notes == () and game.turns_done == 0 and game.history == []
    assert "run in Jupyter" in repr(game)


def test_clicking_keys_adds_pitch_and_chosen_duration():
    game = listen.CallAndResponse(fifth_up)
    game.key_buttons[1].click()                     # C#4, a quarter (the default length)
    game.duration.value = 0.5
    game.key_buttons[4].click()                     # E4, an eighth
    game.duration.value = 2.0
    game.rest_button.click()                        # a half rest
    game.key_buttons[-1].click()                    # F5, a half
    assert notes(game.phrase) == [(61, 0.0, 0.5, 0), (64, 0.5, 0.75, 0), (77, 1.75, 2.75, 0)]
    game.undo_button.click()
    game.undo_button.click()                        # removes F5, then the rest
    game.press("G4")
    assert notes(game.phrase) == [(61, 0.0, 0.5, 0), (64, 0.5, 0.75, 0), (67, 0.75, 1.75, 0)]
    game.rest(1)
    game.press("Db4", 0.5)                          # a flat name is the same key as C#4
    assert notes(game.phrase)[-1] == (61, 2.25, 2.5, 0)
    assert game.error is None


def test_typed_phrase_equals_from_text():
    game = listen.CallAndResponse(fifth_up)
    game.text.value = "E4 G4 A4:2 r B4"
    game.use_button.click()
    assert game.phrase == cm.from_text("E4 G4 A4:2 r B4")
    game.type_phrase("C4, D4:0.5 r:0.5 E4")
    assert game.phrase == cm.from_text("C4, D4:0.5 r:0.5 E4") and game.text.value == "C4, D4:0.5 r:0.5 E4"
    game.undo()
    assert game.phrase == cm.from_text("C4 D4:0.5")
    slow = listen.CallAndResponse(fifth_up, qpm=60)
    slow.type_phrase("C4 D4")
    assert slow.phrase == cm.from_text("C4 D4", qpm=60)


@pytest.mark.parametrize("text, words", [("E4 X9", "'X9' is not a note name"), ("", "empty"),
                                          ("C4:abc", "not a number of quarter notes")])
def test_bad_typed_input_is_shown_not_raised(text, words):
    game = listen.CallAndResponse(fifth_up)
    game.type_phrase("C4 D4")
    game.text.value = text
    game.use_button.click()                         # must not raise
    assert words in game.error and words in game.status.value.replace("&#x27;", "'")
    assert game.phrase == cm.from_text("C4 D4")    # the call is unchanged
    game.press("E4")
    assert game.error is None


def test_call_length_limit_and_empty_undo():
    game = listen.CallAndResponse(fifth_up, bars=1)
    game.undo()
    assert "nothing to undo" in game.error
    game.type_phrase("C4:2 D4:2")
    game.press("E4")
    assert "at most 4 quarter notes" in game.error and len(game.phrase.notes) == 2
    game.type_phrase("C4:4 D4")
    assert "at most 4" in game.error and game.phrase == cm.from_text("C4:2 D4:2")


def test_answer_builds_the_exchange_turn_by_turn():
    game = listen.CallAndResponse(fifth_up, turns=2)
    game.type_phrase("C4 E4:0.5 r:0.5")             # 1 s long with its rest; the notes end at 0.75 s
    response = game.answer()
    assert notes(response) == [(67, 0.0, 0.5, 0), (71, 0.5, 0.75, 0)]
    assert game.turns_done == 1 and game.phrase.notes == () and game.error is None
    assert game.history[0] == (cm.from_text("C4 E4:0.5 r:0.5"), response)
    # the response starts where the call (rest included) ends: 1.0 s
    assert notes(game.exchange) == [(60, 0.0, 0.5, 0), (64, 0.5, 0.75, 0), (67, 1.0, 1.5, 1), (71, 1.5, 1.75, 1)]
    game.press("D4", 2)
    game.answer_button.click()
    # turn 2 starts where turn 1's response ended (1.75 s)
    assert notes(game.exchange)[4:] == [(62, 1.75, 2.75, 0), (69, 2.75, 3.75, 1)]
    ex = game.exchange
    assert [p.name for p in ex.parts] == ["you", "model"] and ex.qpm == 120.0
    assert notes(ex.part(0)) == [(60, 0.0, 0.5, 0), (64, 0.5, 0.75, 0), (62, 1.75, 2.75, 0)]
    assert game.audio is not None and abs(len(game.audio) / 16000 - 3.75) < 0.2
    assert game.player.value[:4] == b"RIFF" and game.roll.value[:4] == b"\x89PNG"
    assert "data:audio/midi;base64," in game.link.value


def test_turn_limit_and_start_over():
    game = listen.CallAndResponse(fifth_up, turns=1)
    game.type_phrase("C4")
    game.answer()
    assert game.answer_button.disabled and "last turn" in game.status.value
    game.type_phrase("D4")
    assert game.answer() is None and "All 1 turns are played" in game.error and game.turns_done == 1
    game.reset_button.click()
    assert game.turns_done == 0 and game.exchange.notes == () and not game.answer_button.disabled
    assert game.phrase.notes == () and game.audio is None
    game.type_phrase("E4")
    assert notes(game.answer()) == [(71, 0.0, 0.5, 0)]
    assert notes(game.exchange) == [(64, 0.0, 0.5, 0), (71, 0.5, 1.0, 1)]


def test_helpful_errors_are_shown_not_raised():
    game = listen.CallAndResponse(fifth_up)
    game.answer_button.click()
    assert "play or type a few notes first" in game.error
    game.type_phrase("r r")                          # rests only: still no notes
    assert game.answer() is None and "play or type a few notes first" in game.error

    def broken(call, turn):
        raise RuntimeError("the weights are missing")

    bad = listen.CallAndResponse(broken)
    bad.type_phrase("C4 D4")
    bad.answer_button.click()
    assert "model failed to answer" in bad.error and "RuntimeError: the weights are missing" in bad.error
    assert "the weights are missing" in bad.status.value and bad.turns_done == 0
    assert bad.phrase == cm.from_text("C4 D4")      # the call is kept for another try

    for out, words in ((None, "forget to `return`"), ([(60, 0, 1)], "must return a course.music.Music"),
                       (cm.Music(), "no notes")):
        odd = listen.CallAndResponse(lambda call, turn, out=out: out)
        odd.type_phrase("C4")
        assert odd.answer() is None and words in odd.error and odd.turns_done == 0
    assert "Nothing to save" in (game.save() or game.error)


def test_bad_arguments_raise_course_errors():
    for kwargs in ({"turns": 0}, {"low": 61}, {"n_keys": 0}, {"low": 120, "n_keys": 18}, {"bars": 0},
                   {"qpm": 1}, {"turns": True}):
        with pytest.raises(CourseError):
            listen.CallAndResponse(fifth_up, **kwargs)
    with pytest.raises(CourseError, match="respond"):
        listen.CallAndResponse("not a function")
    small = listen.CallAndResponse(fifth_up, low=67, n_keys=6)   # G4..C5
    assert [k.description for k in small.key_buttons] == ["G4", "Ab4", "A4", "Bb4", "B4", "C5"]


def test_save_writes_midi_that_reads_back(tmp_path):
    game = listen.CallAndResponse(fifth_up)
    game.type_phrase("E4 G4 A4:2")
    game.answer()
    game.type_phrase("B4 C5")
    game.answer()
    path = game.save(tmp_path / "dialogue.mid")
    assert path == tmp_path / "dialogue.mid" and str(path.resolve()) in game.status.value
    back = cm.read_midi(path)
    assert len(back.notes) == len(game.exchange.notes) == 10
    assert sorted(n.pitch for n in back.notes) == sorted(n.pitch for n in game.exchange.notes)
    game.filename.value = str(tmp_path / "clicked.mid")
    game.save_button.click()
    assert len(cm.read_midi(tmp_path / "clicked.mid").notes) == 10


def test_end_to_end_with_the_pretrained_melody_lstm():
    from course import generate, pretrained

    model = pretrained.load("melody_lstm", device="cpu")
    game = listen.CallAndResponse(
        lambda call, turn: generate.continue_melody(model, call, bars=1, include_opening=False, seed=turn),
        turns=1)
    game.type_phrase("E4 G4 A4:2")
    response = game.answer()
    assert game.error is None and isinstance(response, cm.Music) and len(response.notes) > 0
    assert game.turns_done == 1 and game.answer_button.disabled
    ex = game.exchange
    assert len(ex.part(1).notes) == len(response.notes) and min(n.start for n in ex.part(1).notes) >= 2.0
