"""Tests for course.listen (synthesis, players, widgets, plots, sheet music) and course.doctor."""
from __future__ import annotations

import io
import subprocess
import sys
import warnings
import wave

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import course  # noqa: E402
from course import listen  # noqa: E402
from course import music as cm  # noqa: E402
from course.errors import CourseError, MusicError  # noqa: E402
from course.listen import synth  # noqa: E402

RATE = 16000


@pytest.fixture(scope="module")
def chorale():
    """bwv269 as course.music.read_midi returns it, trimmed to 8 seconds."""
    import music21

    piece = cm.from_music21(music21.corpus.parse("bach/bwv269"))
    return cm.read_midi(cm.to_midi(cm.trim(piece, 0.0, 8.0)), title="bwv269")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def melody(n: int = 8, step: float = 0.25):
    return [(60 + (2 * i) % 12, i * step, (i + 1) * step) for i in range(n)]


def dominant_hz(audio: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * rate / len(audio))


# ---------------------------------------------------------------------------------------- import
def test_import_is_light():
    code = ("import sys, course.listen as L; assert callable(L.synthesize); "
            "print(sorted(m for m in ('ipywidgets', 'matplotlib', 'IPython', 'music21', 'torch', 'verovio') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_names():
    for name in ("synthesize", "play", "Player", "Sampler", "ABTest", "show_score", "plot_pianoroll",
                 "plot_attention", "LivePlot", "plot_training", "score_svg", "backend_name"):
        obj = getattr(listen, name)
        assert "Lesson:" in (obj.__doc__ or ""), name
    assert course.listen is listen
    with pytest.raises(AttributeError):
        listen.no_such_thing  # noqa: B018


# ---------------------------------------------------------------------------------------- synthesis
def test_synthesize_basic_properties(chorale):
    audio = listen.synthesize(chorale, RATE, backend="numpy")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - chorale.duration * RATE) <= 0.1 * RATE
    assert np.all(np.isfinite(audio))
    assert 0.5 < np.max(np.abs(audio)) <= 1.0
    # no clicks: starts from and ends in silence
    assert abs(audio[0]) < 1e-3 and np.max(np.abs(audio[-20:])) < 1e-2


def test_synthesize_does_not_change_input(chorale):
    before = chorale.notes
    listen.synthesize(chorale, backend="numpy")
    assert chorale.notes == before


@pytest.mark.parametrize("pitch,hz", [(69, 440.0), (57, 220.0), (76, 659.26)])
def test_single_note_energy_at_fundamental(pitch, hz):
    audio = listen.synthesize([(pitch, 0.0, 1.0)], RATE, backend="numpy")
    assert abs(dominant_hz(audio) - hz) < 3.0
    assert abs(audio[0]) < 1e-6 and abs(audio[-1]) < 1e-3


def test_pitches_above_the_sample_rate_are_silent_not_an_error():
    """A sampled melody can reach MIDI 127 (12.5 kHz), above what 16 kHz audio can carry: it is silent."""
    audio = listen.synthesize([(60, 0.0, 0.5), (127, 0.5, 1.0), (120, 1.0, 1.5)], RATE, backend="numpy")
    assert np.isfinite(audio).all() and np.max(np.abs(audio[: int(0.5 * RATE)])) > 0.1
    assert np.max(np.abs(audio[int(0.6 * RATE): int(1.5 * RATE)])) < 1e-3
    assert dominant_hz(listen.synthesize([(127, 0.0, 1.0)], 44100, backend="numpy"), 44100) == pytest.approx(12543.9, abs=5)


def test_single_note_length_and_envelope():
    audio = listen.synthesize([(60, 0.5, 1.5)], RATE, backend="numpy")
    assert len(audio) == int(1.5 * RATE) + int(synth.RELEASE * RATE)
    assert np.max(np.abs(audio[: int(0.5 * RATE)])) == 0.0           # silence before the note
    assert np.max(np.abs(audio)) == pytest.approx(synth.PEAK, abs=1e-4)
    rate = 8000                                                         # another sample rate
    assert len(listen.synthesize([(60, 0.0, 1.0)], rate, backend="numpy")) == rate + int(synth.RELEASE * rate)


def test_parts_have_different_timbres():
    one = listen.synthesize(cm.Music(notes=((60, 0.0, 1.0, 80, 0),), parts=(cm.Part(), cm.Part())), backend="numpy")
    two = listen.synthesize(cm.Music(notes=((60, 0.0, 1.0, 80, 1),), parts=(cm.Part(), cm.Part())), backend="numpy")
    assert one.shape == two.shape
    assert np.max(np.abs(one - two)) > 0.1


def test_velocity_and_drums():
    loud_soft = listen.synthesize([(60, 0.0, 0.5, 120), (60, 1.0, 1.5, 30)], backend="numpy")
    assert np.max(np.abs(loud_soft[:8000])) > 3 * np.max(np.abs(loud_soft[16000:24000]))
    drums = cm.Music(notes=((36, 0.0, 0.1), (38, 0.5, 0.6)), parts=(cm.Part(is_drum=True),))
    audio = listen.synthesize(drums, backend="numpy")
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0.5


def test_accepts_every_music_form(chorale, tmp_path):
    import music21
    import torch

    path = cm.write_midi(chorale, tmp_path / "piece.mid")
    forms = [chorale, list(chorale.notes), melody(), cm.to_pianoroll(chorale), torch.tensor(cm.to_pianoroll(chorale)),
             str(path), path, cm.to_midi(chorale), cm.to_pretty_midi(chorale), cm.to_music21(cm.trim(chorale, 0, 2)),
             music21.stream.Stream([music21.note.Note("C4"), music21.note.Note("E4")])]
    for form in forms:
        audio = listen.synthesize(form, 8000, backend="numpy")
        assert audio.dtype == np.float32 and len(audio) > 1000 and np.all(np.isfinite(audio)), type(form)


@pytest.mark.parametrize("bad", [None, 42, object(), {"pitch": 60}, [], np.zeros((4, 5)), b"not midi", "no_such.mid"])
def test_bad_music_raises_course_error(bad):
    with pytest.raises(CourseError):
        listen.synthesize(bad)


def test_empty_music_raises():
    with pytest.raises(MusicError, match="no notes"):
        listen.synthesize(cm.Music())


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, "16000", True, None, 10**7, float("nan")])
def test_bad_sample_rate(rate):
    with pytest.raises(MusicError, match="sample_rate"):
        listen.synthesize(melody(), rate)


def test_bad_backend_and_max_seconds(monkeypatch):
    with pytest.raises(MusicError, match="backend"):
        listen.synthesize(melody(), backend="casio")
    for bad in (0, -1, float("inf"), "10"):
        with pytest.raises(MusicError, match="max_seconds"):
            listen.synthesize(melody(), max_seconds=bad)
    monkeypatch.setattr(synth, "fluidsynth_available", lambda: False)
    assert listen.backend_name() == "numpy"
    with pytest.raises(MusicError, match="FluidSynth"):
        listen.synthesize(melody(), backend="fluidsynth")


def test_hour_long_note_is_capped():
    hour = cm.Music(notes=((60, 0.0, 3600.0),))
    with pytest.warns(UserWarning, match="first 600 s"):
        audio = listen.synthesize(hour, 4000)
    assert len(audio) == 600 * 4000 and audio.dtype == np.float32
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    assert abs(audio[-1]) < 1e-3                                          # faded out, no click at the cut
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(listen.synthesize(hour, 4000, max_seconds=2.5)) == 10000


def test_hard_sample_cap(monkeypatch):
    monkeypatch.setattr(synth, "MAX_RENDER_SAMPLES", 5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audio = listen.synthesize(cm.Music(notes=((60, 0.0, 3600.0),)), 16000, max_seconds=None)
    assert len(audio) == 5000


def test_hundred_thousand_notes_bounded():
    rng = np.random.default_rng(0)
    n = 100_000
    start = np.sort(rng.uniform(0, 3000, n))
    music = cm.Music.from_arrays(rng.integers(36, 84, n), start, start + 0.03, part=rng.integers(0, 4, n))
    with pytest.warns(UserWarning):
        audio = listen.synthesize(music, 8000, max_seconds=300)
    assert len(audio) <= 300 * 8000
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0


def test_fluidsynth_backend_path(monkeypatch):
    """The FluidSynth route, with pretty_midi's renderer replaced (FluidSynth is optional)."""
    import pretty_midi

    calls = {}

    def fake_fluidsynth(self, fs=44100, sf2_path=None):
        calls["fs"] = fs
        end = self.get_end_time()
        return np.sin(np.arange(int((end + 1) * fs)) * 0.1) * 3.0

    monkeypatch.setattr(synth, "fluidsynth_available", lambda: True)
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "fluidsynth", fake_fluidsynth)
    assert listen.backend_name() == "fluidsynth"
    audio = listen.synthesize(melody(), RATE, backend="auto")
    assert calls["fs"] == RATE and audio.dtype == np.float32
    assert np.max(np.abs(audio)) == pytest.approx(synth.PEAK, abs=1e-4)
    with pytest.warns(UserWarning):
        clipped = listen.synthesize(melody(40), RATE, backend="fluidsynth", max_seconds=2)
    assert len(clipped) <= 2 * RATE and abs(clipped[-1]) < 1e-3


# ---------------------------------------------------------------------------------------- play
def test_play_returns_light_audio(chorale, capsys):
    from IPython.display import Audio

    player = listen.play(chorale)
    assert isinstance(player, Audio) and not player.clipped
    assert player.rate == RATE if hasattr(player, "rate") else True
    with wave.open(io.BytesIO(player.data)) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
    assert "<audio" in player._repr_html_()
    assert capsys.readouterr().out == ""


def test_play_clips_long_music(capsys):
    long = melody(400)                                                     # 100 s
    player = listen.play(long, max_seconds=5)
    assert player.clipped and player.seconds == pytest.approx(5.0)
    assert len(player.data) <= 5 * RATE * 2 + 100
    assert "first 5 s of 100 s" in capsys.readouterr().out


def test_play_bad_input():
    with pytest.raises(MusicError):
        listen.play([])
    with pytest.raises(MusicError, match="max_seconds"):
        listen.play(melody(), max_seconds=-3)


# ---------------------------------------------------------------------------------------- widgets
def test_player_widget(chorale):
    import ipywidgets as widgets

    player = listen.Player(chorale, title="My chorale")
    assert isinstance(player, widgets.VBox)
    kinds = [type(c).__name__ for c in player.children]
    assert kinds[:2] == ["HTML", "Audio"] and "Image" in kinds
    assert player.audio_widget.value[:4] == b"RIFF"
    assert player.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "download='My_chorale.mid'" in player.link.value
    assert "href='data:audio/midi;base64," in player.link.value
    assert cm.read_midi(player.midi).notes[:5] == chorale.notes[:5] or len(cm.read_midi(player.midi)) == len(chorale)
    text = repr(player)
    assert text.startswith("Player('My chorale'") and len(text) < 200
    bundle = player._repr_mimebundle_()
    assert bundle["text/plain"] == text and "application/vnd.jupyter.widget-view+json" in bundle
    assert "data:image/png;base64," in bundle["text/html"] and "<audio" not in bundle["text/html"]


def test_player_clips_and_rejects_bad_input():
    player = listen.Player(melody(200), max_seconds=4, roll=False)
    assert player.clipped and len(player.audio) <= 4 * RATE and player.image is None
    assert "first 4 s" in player.link.value
    with pytest.raises(MusicError):
        listen.Player("definitely not a file.mid")


def _generate(temperature, length, seed):
    rng = np.random.default_rng(seed)
    pitches = 60 + rng.integers(-int(6 * temperature) - 1, int(6 * temperature) + 2, length)
    return [(int(p), 0.25 * i, 0.25 * (i + 1)) for i, p in enumerate(pitches)]


def test_sampler_generates_and_reports_errors():
    sampler = listen.Sampler(_generate, temperature=(0.1, 2.0, 0.5), length=(4, 64, 16), seed=3)
    assert sampler.music is None and "nothing generated" in repr(sampler)
    sampler.button.click()                                                # what pressing Generate does
    assert sampler.music is not None and len(sampler.music) == 16 and sampler.error is None
    first = sampler.music
    assert sampler.result.children == (sampler.player,)
    sampler.length.value = 8
    assert len(sampler.run()) == 8
    sampler.length.value = 16
    assert sampler.run().notes == first.notes                             # same settings and seed, same music

    def broken(temperature, length, seed):
        raise ValueError("the model is not trained yet")

    bad = listen.Sampler(broken, run=True)
    assert bad.music is None and "ValueError: the model is not trained yet" in bad.error
    assert "not trained" in bad.status.value and "Traceback" not in bad.status.value
    empty = listen.Sampler(lambda t, n, s: [], run=True)
    assert "no" in empty.error.lower()


def test_sampler_names_its_controls_after_the_generators_parameters():
    def new_melody(temperature, bars, seed):
        return _generate(temperature, 4 * bars, seed)

    sampler = listen.Sampler(new_melody, length=(1, 16, 2))
    assert sampler.length.description == "bars"
    sampler.run()
    assert "new_melody(temperature=1.00, bars=2, seed=0)" in sampler.status.value
    assert sampler.player.title == "sample (T=1.00, bars=2, seed=0)"


@pytest.mark.parametrize("kwargs", [dict(generate=None), dict(temperature=(2.0, 1.0, 1.5)), dict(length=(10, 5, 7)),
                                    dict(length="long"), dict(seed=-1), dict(temperature=(-1.0, 1.0, 0.5))])
def test_sampler_bad_arguments(kwargs):
    args = dict(generate=_generate)
    args.update(kwargs)
    with pytest.raises(CourseError):
        listen.Sampler(**args)


def test_abtest_rounds_and_score(chorale):
    real = [chorale, cm.trim(chorale, 2.0, 7.0)]
    fake = [_generate(1.0, 24, s) for s in range(3)]
    test = listen.ABTest(real, fake, rounds=4, seed=1, clip_seconds=3)
    assert test.rounds_played == 0 and test.score == 0 and not test.finished
    a, b = test.clips()
    assert a.dtype == np.float32 and len(a) == len(b) <= 3 * RATE
    assert "Round 1 of 4" in test.header.value
    right = test.answer("A")
    assert test.history[0]["correct"] == right and test.history[0]["human"] in "AB"
    # answer every other round correctly using the recorded plan
    for _ in range(3):
        human = test._plan[test.rounds_played][2]
        assert test.answer(human.lower()) is True
    assert test.finished and test.rounds_played == 4 and test.score == 3 + int(right)
    assert "Score: " in test.tally.value and test.button_a.disabled
    assert "finished" in repr(test)
    with pytest.raises(CourseError, match="over"):
        test.answer("A")
    again = listen.ABTest(real, fake, rounds=4, seed=1)
    assert again._plan == test._plan                                      # the seed fixes the test
    clicked = listen.ABTest(real, fake, rounds=2, seed=5)
    clicked.button_b.click()
    assert clicked.rounds_played == 1


def test_abtest_bad_input(chorale):
    with pytest.raises(CourseError, match="empty"):
        listen.ABTest([], [chorale])
    with pytest.raises(CourseError, match="list"):
        listen.ABTest(chorale, [chorale])
    with pytest.raises(CourseError, match="rounds"):
        listen.ABTest([chorale], [chorale], rounds=0)
    with pytest.raises(MusicError, match=r"generated_pieces\[1\]"):
        listen.ABTest([chorale], [chorale, 42])
    test = listen.ABTest([chorale], [chorale], rounds=1)
    with pytest.raises(CourseError, match="'A' or 'B'"):
        test.answer("C")


# ---------------------------------------------------------------------------------------- plots
def test_plot_pianoroll_music_and_arrays(chorale):
    import torch

    fig, ax = listen.plot_pianoroll(chorale)
    assert isinstance(fig, matplotlib.figure.Figure) and len(ax.collections) == 4   # one colour per voice
    assert ax.get_legend() is not None
    assert any(t.get_text().startswith("C") for t in ax.get_yticklabels())
    roll = cm.to_pianoroll(chorale)
    fig2, ax2 = plt.subplots()
    assert listen.plot_pianoroll(roll, ax=ax2, time="steps") == (fig2, ax2)
    assert "steps" in ax2.get_xlabel()
    _, ax3 = listen.plot_pianoroll(torch.rand(32, 88), time="seconds")          # probabilities: a heat map
    assert len(ax3.images) == 1
    _, ax4 = listen.plot_pianoroll(melody(), time="seconds", title="tune")
    assert ax4.get_title() == "tune" and ax4.get_xlabel() == "time (s)"


def test_a_melodys_piano_roll_names_more_than_the_cs():
    tune = [(p, 0.25 * i, 0.25 * (i + 1)) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74, 76, 78, 79, 81])]
    _, ax = listen.plot_pianoroll(tune)              # D4..A5 with a margin: C4..B5, two octaves
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:4] == ["C4", "D4", "E4", "F4"] and "A5" in labels and not any("#" in x or "b" in x[1:] for x in labels)
    _, wide = listen.plot_pianoroll([(36, 0, 1), (84, 0, 1)])    # four octaves: the Cs only
    assert [t.get_text() for t in wide.get_yticklabels()] == ["C2", "C3", "C4", "C5", "C6"]


def test_the_tenor_staff_has_the_treble_8_clef():
    import music21

    piece = cm.from_music21(music21.corpus.parse("bach/bwv269"))
    clefs = {p.partName: type(p.recurse().getElementsByClass("Clef").first()).__name__
             for p in cm.to_music21(cm.trim(piece, 0.0, 8.0)).parts}
    assert clefs == {"Soprano": "TrebleClef", "Alto": "TrebleClef", "Tenor": "Treble8vbClef", "Bass": "BassClef"}
    from course.listen.score import _musicxml

    assert _musicxml(cm.trim(piece, 0.0, 8.0)).count("<clef-octave-change>-1</clef-octave-change>") == 1


def test_plot_pianoroll_bad_input():
    with pytest.raises(CourseError):
        listen.plot_pianoroll(melody(), time="bars")
    with pytest.raises(MusicError):
        listen.plot_pianoroll(np.zeros((10, 12)))
    with pytest.raises(MusicError):
        listen.plot_pianoroll(np.full((8, 88), np.nan))
    with pytest.raises(MusicError):
        listen.plot_pianoroll([])


def test_plot_attention(chorale):
    import torch

    w = torch.softmax(torch.randn(6, 6), dim=-1)
    fig, ax = listen.plot_attention(w, queries=list("abcdef"), keys=range(6))
    assert len(ax.images) == 1 and [t.get_text() for t in ax.get_yticklabels()] == list("abcdef")
    heads = torch.softmax(torch.randn(1, 3, 5, 7), dim=-1)
    fig, axes = listen.plot_attention(heads, title="three heads")
    assert axes.size == 3 and axes.flat[2].get_title() == "head 2"
    six = cm.Music(notes=chorale.notes[:6], parts=chorale.parts)
    _, ax = listen.plot_attention(np.eye(6), queries=six, keys=six)
    assert ax.get_yticklabels()[0].get_text() == cm.pitch_name(six.notes[0].pitch)
    for bad, kw in [(np.ones(5), {}), (np.full((3, 3), np.nan), {}), (np.ones((3, 3)), {"queries": ["a"]}),
                    ("weights", {})]:
        with pytest.raises(CourseError):
            listen.plot_attention(bad, **kw)
    _, one = plt.subplots()
    with pytest.raises(CourseError, match="heads"):
        listen.plot_attention(np.ones((2, 3, 3)), ax=one)


@pytest.mark.parametrize("history", [
    [3.0, 2.0, 1.5],
    {"loss": [3.0, 2.0, 1.5], "val_loss": [None, 2.5, 2.0]},
    {"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5]},
    [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "val_loss": 1.5}],
    np.array([1.0, 0.5]),
])
def test_plot_training(history):
    fig, ax = listen.plot_training(history, logy=True)
    assert len(ax.lines) >= 1 and ax.get_yscale() == "log"


def test_plot_training_history_dataclass():
    """The shape of course.train's History: validation losses on their own steps."""
    from dataclasses import dataclass, field

    @dataclass
    class History:
        steps: list = field(default_factory=lambda: [1, 2, 3, 4])
        train_loss: list = field(default_factory=lambda: [3.0, 2.5, 2.0, 1.8])
        valid_steps: list = field(default_factory=lambda: [2, 4])
        valid_loss: list = field(default_factory=lambda: [2.7, 2.1])
        seconds: float = 1.5
        device: str = "cpu"

    fig, ax = listen.plot_training(History())
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"train_loss", "valid_loss"} and ax.get_xlabel() == "step"
    assert list(lines["valid_loss"].get_xdata()) == [2, 4]


def test_plot_training_bad_input():
    for bad in ({}, "loss", [], {"note": ["a", "b"]}):
        with pytest.raises(CourseError):
            listen.plot_training(bad)


def test_liveplot_quiet_outside_notebook(capsys):
    live = listen.LivePlot()
    assert not live.enabled
    for step in range(100):
        live.update(step, 1.0 / (step + 1), val_loss=0.5 if step % 50 == 49 else None)
    live.finish()
    assert live.draws == 0 and capsys.readouterr().out == ""
    h = live.history
    assert len(h["step"]) == 100 and h["val_loss"][49] == 0.5 and np.isnan(h["val_loss"][0])
    fig, ax = listen.plot_training(live)
    assert len(ax.lines) == 2
    with pytest.raises(CourseError):
        live.update(1, "nan-ish")


def test_liveplot_throttles_redraws(monkeypatch):
    import torch

    shown = []
    monkeypatch.setattr(listen.LivePlot, "_show", lambda self, png: shown.append(png))
    with listen.LivePlot(interval=60.0, display=True) as live:
        for step in range(50):
            live(step, torch.tensor(2.0 - step / 50))                      # as a callback, with tensors
    assert len(shown) == 2 and live.draws == 2                              # first update + final state
    assert all(png[:4] == b"\x89PNG" for png in shown)


# ---------------------------------------------------------------------------------------- sheet music
def test_bars_follow_the_upbeat(chorale):
    """BWV 269 (3/4, 120 qpm) has a one-beat upbeat: bar lines at beats 1, 4, 7, ...; measure 1
    includes the upbeat, and measure 2 starts at beat 4 (2 s)."""
    from course.listen.score import _measure_window

    assert chorale.pickup == 1.0
    _, ax = listen.plot_pianoroll(chorale)
    lines = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_xdata()[0] == ln.get_xdata()[1])  # vertical
    assert lines[:3] == [1.0, 4.0, 7.0]
    assert _measure_window(chorale, 1)[:2] == (0.0, 2.0)
    assert _measure_window(chorale, (2, 3))[:2] == (2.0, 5.0)
    plain = chorale.replace(pickup=0.0)
    assert _measure_window(plain, (2, 3))[:2] == (1.5, 4.5)
    assert "<svg" in listen.score_svg(chorale, measures=(2, 3))


def test_score_keeps_engraver_warnings_out_of_the_notebook(capfd):
    """A dense generated piece makes verovio warn about layout on stderr; students should not see that."""
    roll = (np.random.default_rng(0).random((32, 88)) < 0.08).astype(np.uint8)
    assert "<svg" in listen.score_svg(cm.from_pianoroll(roll, steps_per_quarter=1))
    assert "[Warning]" not in capfd.readouterr().err


def test_show_score_and_score_svg(chorale):
    score = listen.show_score(chorale)
    assert "<svg" in score._repr_html_() and score._repr_svg_().lstrip().startswith("<svg")
    assert "bwv269" in repr(score)
    svg = listen.score_svg(melody())
    assert isinstance(svg, str) and "<svg" in svg
    part = listen.show_score(chorale, measures=(2, 3))
    assert "Measures 2-3" in part.note and len(part.svg) < len(score.svg)
    assert "<svg" in listen.show_score(chorale, measures=2).svg


def test_show_score_bad_input(chorale, tmp_path):
    with pytest.raises(MusicError):
        listen.show_score([])
    with pytest.raises(MusicError, match="measure"):
        listen.show_score(chorale, measures=(3, 1))
    with pytest.raises(MusicError, match="does not exist"):
        listen.show_score(chorale, measures=(500, 501))
    listen.show_score(melody()).save(tmp_path / "tune.svg")
    assert (tmp_path / "tune.svg").read_text().lstrip().startswith("<svg")


# ---------------------------------------------------------------------------------------- doctor
def test_doctor_command():
    out = subprocess.run([sys.executable, "-m", "course", "doctor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for word in ("python", "torch", "music21", "pretty_midi", "ipywidgets", "nbval", "verovio", "device", "audio",
                 "widgets", "colab", "score test", "fast mode", "full training", "datasets", "browser test"):
        assert word in out.stdout, word
    assert "03_melody_lstm melody_lstm:" in out.stdout and " min (cpu" in out.stdout    # from the shipped card
    assert "datasets       intact" in out.stdout


def test_doctor_reports_fast_mode_damaged_data_sets_and_a_missing_browser(monkeypatch, tmp_path, capsys):
    import argparse
    import json
    import shutil

    from course import doctor
    from course.data import datasets_dir

    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    for value, shown in (("1", "fast mode      ON (COURSE_FAST=1)"), ("", "fast mode      off")):
        monkeypatch.setenv("COURSE_FAST", value)
        assert doctor.run(parser.parse_args(["--quick"])) == 0
        assert shown in capsys.readouterr().out
    damaged = tmp_path / "datasets"
    shutil.copytree(datasets_dir(), damaged)
    index = json.loads((damaged / "folk.json").read_text())
    index["arrays"]["pitch"]["sha256"] = "0" * 64
    (damaged / "folk.json").write_text(json.dumps(index))
    monkeypatch.setenv("COURSE_DATASETS", str(damaged))
    assert doctor.run(parser.parse_args(["--quick"])) == 1
    out = capsys.readouterr().out
    assert "datasets       NOT intact" in out and "folk.npz: array(s) pitch do not match" in out
    assert "git checkout datasets/" in out and "python -m course data build" in out
    monkeypatch.delenv("COURSE_DATASETS")
    monkeypatch.setattr(doctor, "CHROMIUM", str(tmp_path / "no-chromium"))
    assert doctor.run(parser.parse_args(["--quick"])) == 0
    out = capsys.readouterr().out
    assert "browser test   will be skipped" in out and f"chromium at {tmp_path / 'no-chromium'}" in out


def test_doctor_reports_missing_requirements(monkeypatch, capsys):
    import argparse

    from course import doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: None if name == "verovio" else real(name))
    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    assert doctor.run(parser.parse_args(["--quick"])) == 1
    text = capsys.readouterr().out
    assert "verovio" in text and "MISSING" in text and "pip install verovio" in text


def test_sheet_music_of_many_parts_keeps_music21s_channel_warning_out_of_the_notebook(capsys):
    """music21 prints "out of midi channels" to stderr for more than 15 parts; the score stays quiet."""
    from course.music.core import Part

    n = 20
    many = cm.Music.from_arrays(np.arange(60, 60 + n), np.zeros(n), np.ones(n), part=np.arange(n),
                                   parts=tuple(Part(name=f"voice {i}") for i in range(n)))
    assert "<svg" in listen.score_svg(many)
    captured = capsys.readouterr()
    assert "midi channels" not in captured.err + captured.out
