"""An attention explorer: pick a head and a query note of a melody, see the notes it attends to, hear them.

Built from core ipywidgets only (Dropdown, IntSlider, Image, Audio, HTML, boxes), so it behaves the same in
JupyterLab, classic Notebook, VS Code and Colab. Outside a notebook (nbval, a script) it still builds,
and its ``repr`` is one readable line.

Lesson: 05_attention_math
"""
from __future__ import annotations

import html
from typing import Sequence

import ipywidgets as widgets
import numpy as np

from ..errors import CourseError
from ..music import Music, pitch_name
from ._common import new_figure, png_bytes, to_music, wav_bytes
from .player import render_clip
from .plots import _as_array, plot_attention

__all__ = ["AttentionExplorer"]

MODES = {"attended": "the notes it attends to, then the query note",
         "context": "the melody up to the query, louder where the weight is larger"}
GAP = 0.35            # seconds of silence between the attended notes and the query note
MAX_NOTE = 0.8        # seconds: attended notes are played at most this long each
KEEP = 0.1            # a key is listed and played only with at least this fraction of the row's largest weight


def _weights(weights, n_notes: int) -> np.ndarray:
    w = _as_array(weights)
    if w is None:
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            raise CourseError(f"AttentionExplorer needs weights as an array or tensor, got {type(weights).__name__}.") \
                from None
    w = np.asarray(w, dtype=float)
    while w.ndim > 3 and w.shape[0] == 1:
        w = w[0]                               # a batch of one
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[1] != w.shape[2] or w.shape[0] == 0:
        raise CourseError(f"AttentionExplorer needs self-attention weights of shape (heads, L, L) or (L, L); "
                          f"got {w.shape}.")
    if w.shape[-1] != n_notes:
        raise CourseError(f"The weights cover {w.shape[-1]} positions but the melody has {n_notes} notes; "
                          "one note is one position.")
    if not np.all(np.isfinite(w)):
        raise CourseError("The attention weights contain NaN or infinite values (a fully masked row?).")
    return w


class AttentionExplorer(widgets.VBox):
    """Explore attention over a melody: choose a head and a query note; see and hear what it attends to.

    Lesson: 05_attention_math

    Args:
        music: the melody (anything ``course.music.as_music`` accepts); its notes, in order of onset, are the
            positions 0 .. L-1 of the weights.
        weights: attention weights ``(heads, L, L)`` or ``(L, L)`` (rows: queries, columns: keys), an array or
            a tensor.
        labels: one label per note for the axes; default: the note names.
        head_names: one name per head; default ``"head 0"``, ``"head 1"``, ...
        top: how many of the most attended notes to play and list.
        head, query: the starting selection.
        sample_rate: audio samples per second.

    Attributes:
        music: the melody as a ``Music``; ``weights``: the weights as a float ``(heads, L, L)`` NumPy array;
        ``clip``: the ``Music`` that is played now; ``audio``: its float32 samples.
    """

    def __init__(self, music, weights, labels: Sequence[str] | None = None, *, head_names: Sequence[str] | None = None,
                 top: int = 3, head: int = 0, query: int | None = None, sample_rate: int = 16000):
        self.music = to_music(music, "AttentionExplorer")
        notes = self.music.notes
        self.weights = _weights(weights, len(notes))
        H, L, _ = self.weights.shape
        self.labels = [pitch_name(n.pitch) for n in notes] if labels is None else [str(x) for x in labels]
        if len(self.labels) != L:
            raise CourseError(f"AttentionExplorer got {len(self.labels)} labels for {L} notes.")
        self.head_names = [f"head {h}" for h in range(H)] if head_names is None else [str(x) for x in head_names]
        if len(self.head_names) != H:
            raise CourseError(f"AttentionExplorer got {len(self.head_names)} head names for {H} heads.")
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise CourseError(f"top must be a whole number >= 1, got {top!r}.")
        self.top = int(top)
        self.sample_rate = int(sample_rate)
        query = L - 1 if query is None else query
        for name, v, n in (("head", head, H), ("query", query, L)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
                raise CourseError(f"{name} must be a whole number from 0 to {n - 1}, got {v!r}.")
        style = {"description_width": "initial"}
        self.head_picker = widgets.Dropdown(options=[(name, h) for h, name in enumerate(self.head_names)],
                                            value=int(head), description="head", style=style)
        self.query_slider = widgets.IntSlider(value=int(query), min=0, max=L - 1, step=1, description="query note",
                                              style=style, continuous_update=False)
        self.mode_picker = widgets.Dropdown(options=[(text, key) for key, text in MODES.items()], value="attended",
                                            description="play", style=style, layout=widgets.Layout(width="440px"))
        self.caption = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.audio_widget = widgets.Audio(format="wav", autoplay=False, loop=False, controls=True)
        self._quiet = False               # True while select() sets several controls at once
        for w in (self.head_picker, self.query_slider, self.mode_picker):
            w.observe(lambda _: None if self._quiet else self.update(), names="value")
        super().__init__(children=[widgets.HBox([self.head_picker, self.query_slider]), self.mode_picker,
                                   self.caption, self.image, self.audio_widget],
                         layout=widgets.Layout(border="1px solid #ddd", padding="6px", max_width="900px"))
        self.update()

    # ------------------------------------------------------------------ selection
    @property
    def head(self) -> int:
        return int(self.head_picker.value)

    @property
    def query(self) -> int:
        return int(self.query_slider.value)

    def select(self, head: int | None = None, query: int | None = None, mode: str | None = None) -> "AttentionExplorer":
        """Set the head, the query note and/or what is played (as the controls do); returns the explorer."""
        if mode is not None and mode not in MODES:
            raise CourseError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        H, L, _ = self.weights.shape
        for name, v, n in (("head", head, H), ("query", query, L)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n):
                raise CourseError(f"{name} must be a whole number from 0 to {n - 1}, got {v!r}.")
        self._quiet = True
        try:
            if head is not None:
                self.head_picker.value = int(head)
            if query is not None:
                self.query_slider.value = int(query)
            if mode is not None:
                self.mode_picker.value = mode
        finally:
            self._quiet = False
        self.update()
        return self

    def attended(self, head: int | None = None, query: int | None = None) -> list[tuple[int, float]]:
        """The ``top`` keys with the largest weights for one query, ``[(key index, weight), ...]``, largest first;
        only keys with at least ``KEEP`` times the row's largest weight count (near-zero keys are not listed or
        played)."""
        h = self.head if head is None else int(head)
        i = self.query if query is None else int(query)
        row = self.weights[h, i]
        floor = KEEP * float(row.max())
        order = np.argsort(-row, kind="stable")[: self.top]
        return [(int(j), float(row[j])) for j in order if row[j] > 0 and row[j] >= floor]

    # ------------------------------------------------------------------ what is shown and played
    def clip_music(self) -> Music:
        """The music played for the current selection (see ``MODES``)."""
        notes, spq = self.music.notes, self.music.seconds_per_quarter
        i = self.query
        if self.mode_picker.value == "context":
            row = self.weights[self.head, i]
            scale = float(row[: i + 1].max()) or 1.0
            chosen = [n._replace(velocity=int(round(20 + 107 * float(row[j]) / scale)))
                      for j, n in enumerate(notes[: i + 1])]
            return self.music.replace(notes=tuple(chosen), title="context")
        keys = sorted(j for j, _ in self.attended())
        t, out = 0.0, []
        weights = dict(self.attended())
        for j in keys:
            n = notes[j]
            length = min(n.duration, MAX_NOTE, spq)
            out.append(n._replace(start=t, end=t + length, velocity=int(round(40 + 70 * weights[j])), part=0))
            t += length
        q = notes[i]
        t += GAP if out else 0.0
        out.append(q._replace(start=t, end=t + min(q.duration, 2 * MAX_NOTE), velocity=110, part=0))
        return self.music.replace(notes=tuple(out), parts=self.music.parts[:1], title="attended")

    def update(self) -> None:
        """Redraw the picture, the caption and the audio for the current selection."""
        h, i = self.head, self.query
        self.caption.value = self._caption_html(h, i)
        self.image.value = self._png(h, i)
        self.clip = self.clip_music()
        self.audio, _ = render_clip(self.clip, self.sample_rate, 30.0, what="AttentionExplorer")
        self.audio_widget.value = wav_bytes(self.audio, self.sample_rate)

    def _caption_html(self, h: int, i: int) -> str:
        att = ", ".join(f"{j} ({html.escape(self.labels[j])}) {w:.2f}" for j, w in self.attended(h, i))
        return (f"<b>{html.escape(self.head_names[h])}</b>, query note {i} "
                f"(<b>{html.escape(self.labels[i])}</b>) attends most to: {att or 'nothing'}")

    def _png(self, h: int, i: int) -> bytes:
        from matplotlib.patches import Rectangle

        L = self.weights.shape[-1]
        fig = new_figure((10, 3.4))
        grid = fig.add_gridspec(1, 2, width_ratios=[1, 1.6])
        ax_map, ax_roll = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
        plot_attention(self.weights[h], self.labels, self.labels, ax=ax_map, title=self.head_names[h])
        ax_map.add_patch(Rectangle((-0.5, i - 0.5), L, 1, fill=False, edgecolor="red", linewidth=1.5))
        self._draw_melody(ax_roll, self.weights[h, i], i)
        return png_bytes(fig)

    def _draw_melody(self, ax, row: np.ndarray, i: int) -> None:
        """The melody as a piano roll, each note coloured by the weight the query gives it."""
        from matplotlib import colormaps
        from matplotlib.patches import Rectangle

        a = self.music.arrays()
        beats = self.music.qpm / 60.0
        x0, x1, pitch = a["start"] * beats, a["end"] * beats, a["pitch"]
        top = max(float(row.max()), 1e-9)
        cmap = colormaps["viridis"]
        for j in range(len(pitch)):
            ax.add_patch(Rectangle((x0[j], pitch[j] - 0.4), x1[j] - x0[j], 0.8, facecolor=cmap(float(row[j]) / top),
                                   edgecolor="red" if j == i else "black", linewidth=2.0 if j == i else 0.3))
        ax.set_xlim(0, float(x1.max()))
        ax.set_ylim(int(pitch.min()) - 2, int(pitch.max()) + 2)
        ticks = sorted(set(int(p) for p in pitch))
        every = max(1, len(ticks) // 8)
        ax.set_yticks(ticks[::every], [pitch_name(p) for p in ticks[::every]], fontsize="small")
        ax.set_xlabel("time (beats)")
        ax.set_title(f"query note {i} (red outline); colour: its weight on each note", fontsize="medium")

    def __repr__(self) -> str:
        H, L, _ = self.weights.shape
        att = self.attended()
        most = f"attends most to {att[0][0]} ({self.labels[att[0][0]]}, {att[0][1]:.2f})" if att else "attends to nothing"
        return (f"AttentionExplorer({H} head{'s' if H != 1 else ''} over {L} notes; {self.head_names[self.head]}, "
                f"query {self.query} ({self.labels[self.query]}) {most}; run in Jupyter to explore)")

