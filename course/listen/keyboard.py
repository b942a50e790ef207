"""Call and response with a model: play a phrase on an on-screen keyboard, the model answers.

Built from core ipywidgets only (buttons, text, audio, image). Every button has a Python twin
(``press``, ``rest``, ``undo``, ``type_phrase``, ``answer``, ``reset``, ``save``) with the same
effect, so the widget also works in a script or a test; a problem is shown in the widget (and
kept in ``.error``), never raised out of a click.

    from course import generate, listen, pretrained
    model = pretrained.load("melody_lstm")
    game = listen.CallAndResponse(lambda call, turn: generate.continue_melody(
        model, call, bars=2, include_opening=False, seed=turn))
    game.type_phrase("E4 G4 A4:2 r B4")
    game.answer()            # the model's answer, a Music; game.exchange holds the whole dialogue

Lesson: 09_capstone
"""
from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Callable

import ipywidgets as widgets
import numpy as np

from ..errors import CourseError
from ..music import Music, Part, from_text, parse_pitch, pitch_name, to_midi, to_text, write_midi
from ..music.core import MAX_QPM, MIN_QPM
from ._common import midi_data_uri, new_figure, png_bytes, safe_filename, wav_bytes
from .player import render_clip

__all__ = ["CallAndResponse"]

DURATIONS = (("eighth", 0.5), ("quarter", 1.0), ("half", 2.0))   # toggle label -> quarter notes
WHITE = (0, 2, 4, 5, 7, 9, 11)                                   # pitch classes of the white keys
KEY_PX = 44                                                      # width of a white key, in pixels
SAMPLE_RATE, MAX_SECONDS = 16000, 240.0                          # audio of the whole exchange


def _number(x, name: str, lo, hi, kinds=(int, np.integer), what: str = "a whole number"):
    if isinstance(x, bool) or not isinstance(x, kinds) or not lo <= x <= hi:
        raise CourseError(f"{name} must be {what} from {lo:g} to {hi:g}, got {x!r}.")
    return x


def _shown(action):
    """Run a method; a problem goes to the status line and ``.error`` (the method then returns None)."""
    @functools.wraps(action)
    def run(self, *args, **kwargs):
        try:
            result = action(self, *args, **kwargs)
        except Exception as e:   # shown in the widget, never raised out of a click
            self.error = str(e) if isinstance(e, CourseError) else f"{type(e).__name__}: {e}"
            self._say(self.error, "#b00")
            return None
        self.error = None
        return result
    return run


def _button(description: str, act: Callable, *, icon: str = "", button_style: str = "", width: str = "auto",
            **layout) -> widgets.Button:
    """A button that calls ``act()`` when clicked."""
    button = widgets.Button(description=description, icon=icon, button_style=button_style,
                            layout=widgets.Layout(width=width, **layout))
    button.on_click(lambda _: act())
    return button


class CallAndResponse(widgets.VBox):
    """Take turns with a model: you play a call, ``respond`` answers it, the exchange grows.

    Lesson: 09_capstone

    Args:
        respond: ``respond(call, turn) -> Music``: the model's answer to ``call`` (a monophonic
            ``Music`` starting at 0 s, part 0) on turn ``turn`` (0 for the first). The answer's
            times start at 0 (as ``continue_melody(..., include_opening=False)`` returns them).
        turns: how many calls the student may play.
        bars: the longest call, in bars of 4/4 (a key that would go past it is refused).
        title: caption, and the stem of the saved MIDI file's name.
        low, n_keys: the keyboard's lowest key (a MIDI pitch on a white key) and its number of
            keys; the default is C4..F5, one octave and a half.
        qpm: tempo of the calls, in quarter notes per minute.
        backend: synthesizer of the audio, see :func:`course.listen.synthesize`.

    Attributes:
        phrase: the current call (a ``Music``); ``exchange``: every call and answer so far, one
        after the other in time, the student's notes on part 0 ("you"), the model's on part 1
        ("model"); ``history``: ``(call, response)`` pairs; ``turns_done``; ``error``: the last
        problem (a sentence) or None.
    """

    def __init__(self, respond: Callable, *, turns: int = 4, bars: float = 2, title: str = "call and response",
                 low: int = 60, n_keys: int = 18, qpm: float = 120, backend: str = "numpy"):
        if not callable(respond):
            raise CourseError(f"CallAndResponse needs a function respond(call, turn) -> Music, "
                              f"got {type(respond).__name__}.")
        self.turns = int(_number(turns, "turns", 1, 64))
        low, n_keys = int(_number(low, "low", 0, 127)), int(_number(n_keys, "n_keys", 1, 61))
        if low % 12 not in WHITE or low + n_keys > 128:
            raise CourseError(f"low must be a white key (C, D, E, F, G, A or B) with n_keys keys above it "
                              f"inside MIDI 0..127; got low={low} ({pitch_name(low)}), n_keys={n_keys}.")
        bars = float(_number(bars, "bars", 0.25, 16, (int, float), "a number of 4/4 bars"))
        qpm = float(_number(qpm, "qpm", MIN_QPM, MAX_QPM, (int, float), "quarter notes per minute"))
        self.respond, self.title, self.qpm, self.backend = respond, str(title), qpm, backend
        self.max_quarters = 4.0 * bars
        self.history: list[tuple[Music, Music]] = []
        self.error: str | None = None
        self.audio: np.ndarray | None = None         # float32 samples of the exchange at SAMPLE_RATE
        self._words: list[str] = []                  # the call as from_text words, "C#4:0.5" or "r:1"
        self._placed: list[tuple[float, float]] = []  # (call start, response start) of each turn, seconds
        self._end = 0.0                              # seconds: where the next turn starts

        self.key_buttons = [self._key(p) for p in range(low, low + n_keys)]
        self.duration = widgets.ToggleButtons(options=DURATIONS, value=1.0, description="length",
                                              style={"button_width": "70px"})
        self.text = widgets.Text(placeholder="or type notes: E4 G4 A4:2 r B4", layout=widgets.Layout(width="340px"))
        self.filename = widgets.Text(value=safe_filename(self.title, "call_and_response") + ".mid",
                                     layout=widgets.Layout(width="220px"))
        self.rest_button = _button("rest", self.rest, icon="pause")
        self.undo_button = _button("undo", self.undo, icon="undo")
        self.use_button = _button("use typed notes", lambda: self.type_phrase(self.text.value), width="140px")
        self.answer_button = _button("Answer", self.answer, icon="comment", button_style="primary")
        self.reset_button = _button("Start over", self.reset, icon="refresh")
        self.save_button = _button("Save MIDI", self.save, icon="save")
        self.shown_phrase, self.status, self.link = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.roll = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto", display="none"))
        self.player = widgets.Audio(format="wav", autoplay=False, controls=True, layout=widgets.Layout(display="none"))
        super().__init__(children=[
            widgets.HTML(f"<b>{html.escape(self.title)}</b>"), self._keyboard(),
            widgets.HBox([self.duration, self.rest_button, self.undo_button]),
            widgets.HBox([self.text, self.use_button]), self.shown_phrase,
            widgets.HBox([self.answer_button, self.reset_button, self.filename, self.save_button]),
            self.status, self.roll, self.player, self.link],
            layout=widgets.Layout(border="1px solid #ddd", padding="6px", max_width="820px"))
        self._set_words([], f"Play a call of up to {bars:g} bars, then press Answer ({self.turns} turns).")

    # ------------------------------------------------------------------ state
    @property
    def phrase(self) -> Music:
        """The current call, exactly as ``course.music.from_text`` reads its notes."""
        return from_text(" ".join(self._words), qpm=self.qpm) if self._words else Music(qpm=self.qpm)

    @property
    def turns_done(self) -> int:
        return len(self.history)

    @property
    def exchange(self) -> Music:
        """All calls (part 0, "you") and answers (part 1, "model") so far, in order, times in seconds."""
        notes = []
        for (call, response), (t_call, t_resp) in zip(self.history, self._placed):
            notes += [n._replace(start=n.start + t_call, end=n.end + t_call, part=0) for n in call.notes]
            notes += [n._replace(start=n.start + t_resp, end=n.end + t_resp, part=1) for n in response.notes]
        return Music(notes=tuple(notes), qpm=self.qpm, parts=(Part("you"), Part("model")), title=self.title)

    # ------------------------------------------------------------------ actions (each button's twin)
    @_shown
    def press(self, name: str, quarters: float | None = None) -> None:
        """Add a note (e.g. ``"C#4"``) lasting ``quarters`` quarter notes (default: the length toggle)."""
        self._add(pitch_name(parse_pitch(name)), quarters)

    @_shown
    def rest(self, quarters: float | None = None) -> None:
        """Add a rest of ``quarters`` quarter notes (default: the length toggle)."""
        self._add("r", quarters)

    @_shown
    def undo(self) -> None:
        """Remove the last note or rest of the call."""
        if not self._words:
            raise CourseError("The call is empty: there is nothing to undo.")
        self._set_words(self._words[:-1], f"Removed {self._words[-1]}.")

    @_shown
    def type_phrase(self, text: str) -> None:
        """Use note names as the call, in ``course.music.from_text``'s syntax: ``"E4 G4 A4:2 r B4"``."""
        from_text(text, qpm=self.qpm)            # a MusicError says what is wrong with the text
        words = str(text).replace(",", " ").split()
        self._check_length(words)
        self.text.value = str(text)
        self._set_words(words, "Using the typed notes as your call.")

    @_shown
    def answer(self) -> Music | None:
        """Send the call to ``respond`` and add both to the exchange; returns the answer (None on a problem)."""
        if self.turns_done >= self.turns:
            raise CourseError(f"All {self.turns} turns are played; press Start over to play again.")
        call, turn = self.phrase, self.turns_done
        if not call.notes:
            raise CourseError("There is no call yet: play or type a few notes first.")
        self._say(f"Turn {turn + 1}: the model is thinking ...")
        try:
            response = self.respond(call, turn)
        except Exception as e:   # any failure of the model or of the student's respond function
            raise CourseError(f"The model failed to answer (respond(call, {turn}) raised "
                              f"{type(e).__name__}: {e}).") from e
        if not isinstance(response, Music):
            hint = " Did it forget to `return` the answer?" if response is None else ""
            raise CourseError(f"respond(call, {turn}) must return a course.music.Music (what continue_melody "
                              f"returns), got {type(response).__name__}.{hint}")
        if not response.notes:
            raise CourseError(f"The model answered turn {turn + 1} with no notes; try again or change the call.")
        t_resp = self._end + max(self._quarters(self._words) * 60.0 / self.qpm, call.duration)
        self.history.append((call, response))
        self._placed.append((self._end, t_resp))
        self._end = t_resp + response.duration
        self._show_exchange()
        last = self.answer_button.disabled = self.turns_done >= self.turns
        self.text.value = ""
        self._set_words([], f"Turn {turn + 1} of {self.turns}: the model answered {to_text(response)}."
                        + (" That was the last turn; press Start over to play again." if last else ""))
        return response

    @_shown
    def reset(self) -> None:
        """Start over: forget the exchange and the call."""
        self.history, self._placed, self._end, self.audio = [], [], 0.0, None
        self.answer_button.disabled = False
        self.roll.layout.display = self.player.layout.display = "none"
        self.link.value = self.text.value = ""
        self._set_words([], f"Started over: {self.turns} turns to play.")

    @_shown
    def save(self, path=None) -> Path | None:
        """Write the exchange as a MIDI file at ``path`` (default: the file name box); returns the path."""
        if not self.history:
            raise CourseError("Nothing to save yet: play a call and press Answer first.")
        out = write_midi(self.exchange, Path(path if path is not None else self.filename.value or "exchange.mid"))
        self._say(f"Saved {len(self.exchange.notes)} notes to {out.resolve()}")
        return out

    # ------------------------------------------------------------------ inside
    def _add(self, name: str, quarters: float | None) -> None:
        q = float(self.duration.value if quarters is None else quarters)
        if not 0 < q <= 64:
            raise CourseError(f"A note lasts more than 0 and at most 64 quarter notes, got {quarters!r}.")
        words = self._words + [f"{name}:{q:g}"]
        self._check_length(words)
        self._set_words(words, f"Added {words[-1]}.")

    @staticmethod
    def _quarters(words) -> float:
        return sum(float(w.partition(":")[2] or 1.0) for w in words)

    def _check_length(self, words) -> None:
        if self._quarters(words) > self.max_quarters + 1e-9:
            raise CourseError(f"A call lasts at most {self.max_quarters:g} quarter notes; that would make "
                              f"{self._quarters(words):g}. Press Answer, or undo a note.")

    def _set_words(self, words, message: str) -> None:
        self._words = list(words)
        notes = html.escape(" ".join(self._words)) or "<i>empty: click the keys or type notes</i>"
        self.shown_phrase.value = (f"Your call: <code>{notes}</code> <span style='color:#666'>"
                                   f"({self._quarters(self._words):g} of {self.max_quarters:g} beats)</span>")
        self._say(message)

    def _say(self, message: str, color: str = "#080") -> None:
        self.status.value = f"<span style='color:{color}'>{html.escape(message)}</span>"

    def _show_exchange(self) -> None:
        from .plots import plot_pianoroll

        music = self.exchange
        fig = new_figure((9, 2.8))
        plot_pianoroll(music, ax=fig.add_subplot(1, 1, 1), title="")
        self.roll.value = png_bytes(fig)
        self.audio, _ = render_clip(music, SAMPLE_RATE, MAX_SECONDS, backend=self.backend, what="CallAndResponse")
        self.player.value = wav_bytes(self.audio, SAMPLE_RATE)
        self.roll.layout.display = self.player.layout.display = None
        name = html.escape(self.filename.value or "exchange.mid")
        self.link.value = (f"<a download='{name}' href='{midi_data_uri(to_midi(music))}' "
                           f"style='text-decoration:underline'>Download MIDI ({name})</a>")

    def _key(self, pitch: int) -> widgets.Button:
        name, white = pitch_name(pitch), pitch % 12 in WHITE
        key = _button(name, lambda: self.press(name), width=f"{KEY_PX if white else KEY_PX - 4}px",
                      height="64px" if white else "44px", margin="0" if white else "0 2px", padding="0",
                      border="1px solid #888")
        key.style = widgets.ButtonStyle(button_color="white" if white else "#222",
                                        text_color="black" if white else "white", font_size="11px")
        key.pitch = pitch
        return key

    def _keyboard(self) -> widgets.VBox:
        """Black keys on a row above the white keys, each between its two neighbours."""
        whites = [k for k in self.key_buttons if k.pitch % 12 in WHITE]
        slots = [widgets.Box(layout=widgets.Layout(width=f"{KEY_PX // 2}px"))]
        for w in whites:
            black = [k for k in self.key_buttons if k.pitch == w.pitch + 1 and k.pitch % 12 not in WHITE]
            slots.append(black[0] if black else widgets.Box(layout=widgets.Layout(width=f"{KEY_PX}px", height="44px")))
        return widgets.VBox([widgets.HBox(slots), widgets.HBox(whites)], layout=widgets.Layout(margin="4px 0"))

    def __repr__(self) -> str:
        return (f"CallAndResponse({self.title!r}: {self.turns_done} of {self.turns} turns, call "
                f"{' '.join(self._words) or '(empty)'!r}; run in Jupyter to play)")
