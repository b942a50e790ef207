"""Notebook widgets to listen to music: a :class:`Player` and a :class:`Sampler` for generators.

Built from core ipywidgets only (VBox, HBox, HTML, Audio, Image, sliders, buttons), so they
behave the same in JupyterLab, classic Notebook, VS Code and Colab. Outside a notebook they
still build, and their ``repr`` is one readable line.

Lesson: 00_welcome
"""
from __future__ import annotations

import base64
import html
import inspect
import time
from typing import Callable

import ipywidgets as widgets
import numpy as np

from ..errors import CourseError
from ..music import Music, to_midi
from ._common import midi_data_uri, new_figure, png_bytes, safe_filename, to_music, wav_bytes
from .player import render_clip

__all__ = ["Player", "Sampler", "describe"]

FALLBACK_MIDI_BYTES = 200_000   # larger MIDI files are not copied into the notebook's HTML fallback


def describe(music: Music) -> str:
    """``"4 parts, 302 notes, 42.0 s"``: a short description for captions."""
    parts = len(music.parts)
    return f"{parts} part{'s' if parts != 1 else ''}, {len(music.notes)} notes, {music.duration:.1f} s"


class Player(widgets.VBox):
    """Listen to a piece, see its piano roll and download it as MIDI, in one widget.

    Lesson: 00_welcome

    Args:
        music: anything ``course.music.as_music`` accepts (a ``Music`` from ``read_midi``, notes,
            a piano roll, a MIDI path, a music21 stream, ...).
        title: caption and download file name; default: the music's title.
        sample_rate: audio samples per second.
        max_seconds: play at most this many seconds (the piano roll shows the same span).
        backend: synthesizer, see :func:`course.listen.synthesize`.
        roll: draw the piano roll.

    Attributes:
        music: the piece as a ``Music``; ``audio``: the float32 samples played;
        ``midi``: the MIDI file bytes offered for download; ``clipped``: whether the audio was cut.
    """

    def __init__(self, music, title: str | None = None, *, sample_rate: int = 16000, max_seconds: float = 30.0,
                 backend: str = "auto", roll: bool = True):
        music = to_music(music, "Player")
        self.music = music
        self.title = str(title if title is not None else (music.title or "music"))
        self.audio, note = render_clip(music, sample_rate, max_seconds, backend=backend, what="Player")
        self.sample_rate = int(sample_rate)
        self.clipped = bool(note)
        self.midi = to_midi(music)
        filename = safe_filename(self.title) + ".mid"
        caption = widgets.HTML(f"<b>{html.escape(self.title)}</b> "
                               f"<span style='color:#666'>({html.escape(describe(music))})</span>")
        self.audio_widget = widgets.Audio(value=wav_bytes(self.audio, self.sample_rate), format="wav",
                                          autoplay=False, loop=False, controls=True)
        children = [caption, self.audio_widget]
        self.image = None
        if roll:
            shown = music
            if self.clipped:
                from ..music import trim

                shown = trim(music, 0.0, len(self.audio) / self.sample_rate)
            self.image = widgets.Image(value=_roll_png(shown), format="png",
                                       layout=widgets.Layout(max_width="100%", height="auto"))
            children.append(self.image)
        link = (f"<a download='{html.escape(filename)}' href='{midi_data_uri(self.midi)}' "
                f"style='text-decoration:underline'>Download MIDI ({html.escape(filename)})</a>")
        if note:
            link += f" <span style='color:#a60'>{html.escape(note)}</span>"
        self.link = widgets.HTML(link)
        children.append(self.link)
        super().__init__(children=children, layout=widgets.Layout(border="1px solid #ddd", padding="6px",
                                                                   max_width="820px"))

    def __repr__(self) -> str:
        cut = f", first {len(self.audio) / self.sample_rate:.0f} s" if self.clipped else ""
        return f"Player({self.title!r}: {describe(self.music)}{cut}; run in Jupyter to listen)"

    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus a light HTML fallback (caption, piano roll, MIDI link; no audio) for
        viewers that cannot show widgets, such as a notebook rendered on a website."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self._fallback_html()
        return bundle

    def _fallback_html(self) -> str:
        parts = [self.children[0].value]
        if self.image is not None:
            parts.append(f"<img alt='piano roll' style='max-width:100%' "
                         f"src='data:image/png;base64,{base64.b64encode(self.image.value).decode('ascii')}'>")
        if len(self.midi) <= FALLBACK_MIDI_BYTES:
            parts.append(self.link.value)
        parts.append("<span style='color:#666'>(The audio player needs ipywidgets; "
                     "<code>course.listen.play(music)</code> plays without them.)</span>")
        return "<div>" + "<br>".join(parts) + "</div>"


def _roll_png(music: Music) -> bytes:
    from .plots import plot_pianoroll

    fig = new_figure((9, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    plot_pianoroll(music, ax=ax, title="")
    return png_bytes(fig)


class Sampler(widgets.VBox):
    """Sliders for temperature, length and seed, a Generate button, and a player for each result.

    Lesson: 03_melody_lstm

    Args:
        generate: any callable ``generate(temperature, length, seed) -> music`` (called with
            three positional arguments; its result may be anything ``course.music.as_music``
            accepts). An exception it raises is shown in the widget as one readable line. The
            sliders and captions use its own parameter names: ``new_melody(temperature, bars, seed)``
            gets a ``bars`` slider.
        temperature: ``(min, max, start)`` of the temperature slider.
        length: ``(min, max, start)`` of the length slider (tokens, steps, notes or bars, as
            ``generate`` understands it).
        seed: the starting seed; the same settings and seed give the same music.
        max_seconds: longest audio clip per result, in seconds.
        run: generate once straight away.

    Attributes:
        music: the last result (a ``Music``) or None; ``error``: the last error message or None.
    """

    def __init__(self, generate: Callable, temperature: tuple = (0.1, 2.0, 1.0), length: tuple = (16, 256, 64),
                 seed: int = 0, *, max_seconds: float = 30.0, title: str = "sample", run: bool = False):
        if not callable(generate):
            raise CourseError(f"Sampler needs a function generate(temperature, length, seed), "
                              f"got {type(generate).__name__}.")
        t_lo, t_hi, t0 = _triple(temperature, "temperature", float)
        l_lo, l_hi, l0 = _triple(length, "length", int)
        if t_lo < 0:
            raise CourseError("temperature must not go below 0.")
        if l_lo < 1:
            raise CourseError("length must be at least 1.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise CourseError(f"seed must be a whole number >= 0, got {seed!r}.")
        self.fn = generate
        self.names = _parameter_names(generate)
        self.max_seconds = max_seconds
        self.title = title
        self.music: Music | None = None
        self.error: str | None = None
        self.player: Player | None = None
        style = {"description_width": "initial"}
        self.temperature = widgets.FloatSlider(value=t0, min=t_lo, max=t_hi, step=(t_hi - t_lo) / 100 or 0.01,
                                               description="temperature", readout_format=".2f", style=style,
                                               continuous_update=False)
        self.length = widgets.IntSlider(value=l0, min=l_lo, max=l_hi, step=1, description=self.names[1], style=style,
                                        continuous_update=False)
        self.seed = widgets.BoundedIntText(value=int(seed), min=0, max=2**31 - 1, description="seed", style=style,
                                           layout=widgets.Layout(width="150px"))
        self.button = widgets.Button(description="Generate", button_style="primary", icon="music")
        self.button.on_click(lambda _: self.run())
        self.status = widgets.HTML("<span style='color:#666'>Set the sliders and press Generate.</span>")
        self.result = widgets.VBox([])
        super().__init__(children=[widgets.HBox([self.temperature, self.length]),
                                   widgets.HBox([self.seed, self.button]), self.status, self.result])
        if run:
            self.run()

    def run(self) -> Music | None:
        """Call ``generate`` with the current settings and show the result; returns it (None on error)."""
        t, n, s = float(self.temperature.value), int(self.length.value), int(self.seed.value)
        temperature, length, seed = self.names
        call = f"{getattr(self.fn, '__name__', 'generate')}({temperature}={t:.2f}, {length}={n}, {seed}={s})"
        self.button.disabled = True
        self.status.value = f"<span style='color:#666'>Running {html.escape(call)} ...</span>"
        t0 = time.perf_counter()
        try:
            out = self.fn(t, n, s)
            music = to_music(out, "Sampler")
            player = Player(music, title=f"{self.title} (T={t:.2f}, {length}={n}, seed={s})",
                            max_seconds=self.max_seconds)
        except Exception as e:  # any bug in the student's generator: one line, not a traceback
            self.error = f"{call} failed: {type(e).__name__}: {e}"
            self.music, self.player = None, None
            self.status.value = f"<span style='color:#b00'>{html.escape(self.error)}</span>"
            self.result.children = ()
            return None
        finally:
            self.button.disabled = False
        self.error, self.music, self.player = None, music, player
        self.status.value = (f"<span style='color:#080'>{html.escape(call)}: {html.escape(describe(music))} "
                             f"in {time.perf_counter() - t0:.2f} s.</span>")
        self.result.children = (player,)
        return music

    def __repr__(self) -> str:
        last = f"last: {describe(self.music)}" if self.music is not None else (self.error or "nothing generated yet")
        return f"Sampler({getattr(self.fn, '__name__', 'generate')}; {last}; run in Jupyter to use the sliders)"


def _parameter_names(fn) -> tuple[str, str, str]:
    """The names of ``fn``'s first three positional parameters (``temperature, length, seed`` if it does not say)."""
    names = ["temperature", "length", "seed"]
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):        # a builtin or a callable without a signature
        return tuple(names)
    for i, p in enumerate(params[:3]):
        names[i] = p.name
    return tuple(names)


def _triple(x, name: str, kind):
    try:
        lo, hi, start = (kind(v) for v in x)
    except (TypeError, ValueError):
        raise CourseError(f"{name} must be (min, max, start), e.g. {(0.1, 2.0, 1.0) if kind is float else (16, 256, 64)}; "
                         f"got {x!r}.") from None
    if not (lo <= start <= hi) or lo == hi:
        raise CourseError(f"{name}=(min, max, start) needs min <= start <= max and min < max; got {x!r}.")
    return lo, hi, start
