"""Seeing a music GAN learn: generated bars as piano rolls, redrawn while it trains, and a slider
that scrubs through the samples it made along the way.

Lesson: 08_music_gan
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import CourseError
from ._common import in_notebook, new_figure, png_bytes, show_in_place

__all__ = ["bars_to_music", "plot_bars", "LiveBars", "BarScrubber"]


def _bars(bars, what: str = "bars") -> np.ndarray:
    """``(n_bars, steps, P)`` or one bar ``(steps, P)`` -> a uint8 ``(n_bars, steps, P)`` array of 0/1."""
    b = bars.detach().cpu().numpy() if hasattr(bars, "detach") else np.asarray(bars)
    if b.ndim == 2:
        b = b[None]
    if b.ndim != 3 or b.shape[0] == 0 or b.shape[2] == 0:
        raise CourseError(f"{what} must be an array (n_bars, steps_per_bar, n_pitches); got shape {b.shape}.")
    return (b > 0.5).astype(np.uint8)


def bars_to_music(bars, low: int, *, title: str = "", qpm: float = 120.0):
    """Bars ``(n_bars, steps, P)`` at 16th-note steps, column ``k`` = MIDI ``low + k``, as one ``Music``.

    Lesson: 08_music_gan
    """
    from ..music import from_pianoroll

    b = _bars(bars)
    return from_pianoroll(b.reshape(-1, b.shape[2]), 4, low=int(low), qpm=qpm, title=title)


def plot_bars(bars, low: int, ax=None, *, title: str | None = None, figsize: tuple = (8, 2.6)):
    """Draw bars as one piano roll (pitch up, beats across, a line at every bar). Returns ``(fig, ax)``.

    Lesson: 08_music_gan
    """
    from .plots import plot_pianoroll

    b = _bars(bars)
    if not b.any():
        fig = ax.figure if ax is not None else new_figure(figsize)
        ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
        ax.set(title=title or "", xlim=(0, b.shape[0] * b.shape[1] / 4), xlabel="beats")
        ax.text(0.5, 0.5, "(silence)", ha="center", va="center", transform=ax.transAxes)
        return fig, ax
    return plot_pianoroll(bars_to_music(b, low), ax=ax, title=title or "", figsize=figsize, legend=False,
                          pitch_range=(int(low), int(low) + b.shape[2] - 1))


class LiveBars:
    """A :func:`course.nn.gan.train_gan` callback for the bar GAN: losses, one metric, the latest phrase.

    At every call it records both losses, generates ``n`` phrases of ``n_bars`` from a fixed seed,
    measures ``metric`` (a function of bars, e.g. ``course.metrics.qualified_note_rate``) on them, and
    keeps the first phrase as a snapshot (:attr:`snapshots`: ``(step, bars)``). In a notebook the picture
    (the two losses, the metric against the data's value, the phrase) is redrawn in place at most every
    ``interval`` seconds and once at the end; elsewhere it only records. :meth:`scrubber` gives a
    slider over the snapshots.

    Lesson: 08_music_gan
    """

    def __init__(self, metric, data_value: float, low: int, *, metric_name: str = "metric", n: int = 16,
                 n_bars: int = 4, seed: int = 1, interval: float = 1.0, display: bool | None = None,
                 figsize: tuple = (11, 2.8)):
        if not callable(metric):
            raise CourseError("metric must be a function of bars, e.g. course.metrics.qualified_note_rate.")
        for name, v in (("n", n), ("n_bars", n_bars)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CourseError(f"{name} must be a whole number >= 1, got {v!r}.")
        self.metric, self.metric_name, self.data_value, self.low = metric, metric_name, float(data_value), int(low)
        self.n, self.n_bars, self.seed, self.interval, self.figsize = n, n_bars, seed, float(interval), figsize
        self.enabled = in_notebook() if display is None else bool(display)
        self.steps: list[int] = []
        self.d_loss: list[float] = []
        self.g_loss: list[float] = []
        self.values: list[float] = []
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.draws = 0
        self._handle = None
        self._last_draw = -math.inf

    def update(self, step: int, generator, losses: dict) -> None:
        from ..nn.bargan import generate_phrase

        phrases = generate_phrase(generator, self.n_bars, seed=self.seed, n=self.n)      # (n, n_bars, steps, P)
        self.steps.append(int(step))
        self.d_loss.append(float(losses["d_loss"]))
        self.g_loss.append(float(losses["g_loss"]))
        self.values.append(float(self.metric(phrases.reshape(-1, *phrases.shape[2:]))))
        self.snapshots.append((int(step), phrases[0]))
        if self.enabled and time.perf_counter() - self._last_draw >= self.interval:
            self.draw()

    __call__ = update

    def figure(self):
        """The current picture as a matplotlib figure."""
        fig = new_figure(self.figsize)
        a, b, c = fig.add_subplot(1, 4, 1), fig.add_subplot(1, 4, 2), fig.add_subplot(1, 4, (3, 4))
        a.plot(self.steps, self.d_loss, label="critic")
        a.plot(self.steps, self.g_loss, label="generator")
        a.set(xlabel="generator step", title="losses")
        a.legend(fontsize=7)
        b.plot(self.steps, self.values, "o-", markersize=3, label="generated")
        b.axhline(self.data_value, color="k", linestyle="--", linewidth=1, label="data")
        b.set(xlabel="generator step", title=self.metric_name)
        b.legend(fontsize=7)
        if self.snapshots:
            step, bars = self.snapshots[-1]
            plot_bars(bars, self.low, ax=c, title=f"a phrase at step {step}")
        return fig

    def draw(self) -> None:
        """Redraw now (nothing outside a notebook unless ``display=True``)."""
        if not self.enabled or not self.steps:
            return
        self._handle = show_in_place(self._handle, self.figure())
        self.draws += 1
        self._last_draw = time.perf_counter()

    def finish(self) -> None:
        self.draw()

    def scrubber(self, **kwargs) -> "BarScrubber":
        """A slider over the phrases recorded during training."""
        return BarScrubber(self.snapshots, self.low, **kwargs)

    def __repr__(self) -> str:
        return f"LiveBars({len(self.snapshots)} snapshots of {self.metric_name})"


def _scrubber_base():
    import ipywidgets as widgets

    return widgets.VBox


class BarScrubber(_scrubber_base()):
    """A slider through snapshots ``[(step, bars), ...]``: the phrase the generator made at each step.

    Drag it to watch the same noise turn from static into music; **Play** plays the phrase shown.

    Lesson: 08_music_gan
    """

    def __init__(self, snapshots, low: int, *, figsize: tuple = (8, 2.6)):
        import ipywidgets as widgets

        if not snapshots:
            raise CourseError("There are no snapshots to scrub through: train with a LiveBars callback first.")
        self.snapshots = [(int(s), _bars(b, "a snapshot")) for s, b in snapshots]
        self.low, self.figsize = int(low), figsize
        self._png: dict[int, bytes] = {}
        self.slider = widgets.IntSlider(value=len(self.snapshots) - 1, min=0, max=len(self.snapshots) - 1,
                                        description="snapshot", continuous_update=False)
        self.image = widgets.Image(format="png")
        self.label = widgets.Label()
        self.play_button = widgets.Button(description="Play", icon="play")
        self.audio = widgets.Output()
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.play_button.on_click(lambda _: self.play())
        super().__init__([widgets.HBox([self.slider, self.label, self.play_button]), self.image, self.audio])
        self.show(self.slider.value)

    def png(self, i: int) -> bytes:
        if i not in self._png:
            step, bars = self.snapshots[i]
            fig = new_figure(self.figsize)                  # not a pyplot figure: nothing left to show twice
            plot_bars(bars, self.low, ax=fig.add_subplot(1, 1, 1), title=f"generator step {step}")
            self._png[i] = png_bytes(fig)
        return self._png[i]

    def show(self, i: int) -> None:
        self.image.value = self.png(i)
        self.label.value = f"step {self.snapshots[i][0]} ({i + 1} of {len(self.snapshots)})"

    def play(self) -> None:
        from IPython.display import display

        from .player import play

        bars = self.snapshots[self.slider.value][1]
        self.audio.clear_output()
        with self.audio:
            if bars.any():
                display(play(bars_to_music(bars, self.low)))
            else:
                print("(this phrase is silent)")
