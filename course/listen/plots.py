"""Pictures of music and models: piano rolls, attention maps, training curves.

Each function takes ``ax=None`` (draw into a new figure) or an existing matplotlib
``Axes``, and returns ``(fig, ax)``.

Lesson: 01_music_as_data
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import CourseError, MusicError
from ..music import Music, pitch_name
from ._common import to_music

__all__ = ["plot_pianoroll", "plot_attention", "plot_training", "PART_COLORS"]

# one colour per part (then repeating): blue, orange, green, red, purple, brown, pink, grey
PART_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_TIME_UNITS = ("beats", "seconds", "steps")


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _as_array(x) -> np.ndarray | None:
    """A NumPy view of an array or tensor, or None for anything else."""
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    return None


# ---------------------------------------------------------------------------------------- piano roll
def plot_pianoroll(music, ax=None, steps_per_quarter: int = 4, *, time: str = "beats", title: str | None = None,
                   pitch_range: tuple | None = None, figsize: tuple = (10, 3.5), legend: bool = True):
    """Draw a piano roll: one rectangle per note, pitch up, time across, one colour per part.

    Lesson: 01_music_as_data

    Args:
        music: anything ``course.music.as_music`` accepts, e.g. a ``Music`` from ``read_midi``.
            A raw piano roll array/tensor ``(T, 88)`` (from A0) or ``(T, 128)`` (from MIDI 0) works
            too: 0/1 rolls are drawn as notes, other values (probabilities) as a heat map.
        ax: matplotlib Axes to draw into; default: a new figure.
        steps_per_quarter: the grid of a raw roll, and the unit when ``time="steps"``.
        time: x axis in ``"beats"`` (quarter notes, with bar lines), ``"seconds"`` or ``"steps"``.
        title: axes title; default: the music's title.
        pitch_range: ``(low, high)`` MIDI pitches to show; default: the notes' range plus a margin.
        legend: name the parts when there are several.

    Returns:
        ``(fig, ax)``.
    """
    from matplotlib.collections import PolyCollection

    if time not in _TIME_UNITS:
        raise CourseError(f"time must be one of {_TIME_UNITS}, got {time!r}.")
    arr = _as_array(music)
    if arr is not None and arr.ndim == 2 and arr.size and not np.isin(arr, (0, 1)).all():
        return _plot_roll_heat(arr, ax, steps_per_quarter, time, title, pitch_range, figsize)
    music = to_music(music, "plot_pianoroll", steps_per_quarter=steps_per_quarter)
    a = music.arrays()
    scale = {"seconds": 1.0, "beats": music.qpm / 60.0, "steps": music.qpm / 60.0 * steps_per_quarter}[time]
    x0, x1 = a["start"] * scale, a["end"] * scale
    pitch = a["pitch"].astype(float)
    fig, ax = _figure_and_axes(ax, figsize)
    handles = []
    for k in np.unique(a["part"]).tolist():
        sel = a["part"] == k
        verts = np.stack([np.stack([x0[sel], pitch[sel] - 0.4], 1), np.stack([x1[sel], pitch[sel] - 0.4], 1),
                          np.stack([x1[sel], pitch[sel] + 0.4], 1), np.stack([x0[sel], pitch[sel] + 0.4], 1)], 1)
        color = PART_COLORS[k % len(PART_COLORS)]
        coll = PolyCollection(verts, facecolors=color, edgecolors="black", linewidths=0.3, alpha=0.85)
        ax.add_collection(coll)
        part = music.parts[k]
        handles.append((coll, part.name or f"part {k + 1}"))
    lo, hi = pitch_range if pitch_range is not None else (int(pitch.min()) - 2, int(pitch.max()) + 2)
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_xlim(0, max(float(x1.max()), 1e-9))
    _pitch_axis(ax, lo, hi)
    if time == "beats":
        for b in (music.bar_lines(float(x1.max()) * music.seconds_per_quarter) / music.seconds_per_quarter)[:200]:
            ax.axvline(b, color="#bbb", linewidth=0.6, zorder=0)      # after the upbeat, if there is one
    ax.set_xlabel({"beats": "time (beats)", "seconds": "time (s)", "steps": f"time (steps of 1/{steps_per_quarter} beat)"}[time])
    ax.set_ylabel("pitch")
    ax.set_title(music.title if title is None else title)
    if legend and len(handles) > 1:
        ax.legend([h for h, _ in handles], [n for _, n in handles], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize="small", frameon=False)
    return fig, ax


NATURALS = (0, 2, 4, 5, 7, 9, 11)     # pitch classes of the white keys, C D E F G A B


def pitch_ticks(lo: int, hi: int) -> list[int]:
    """The MIDI pitches a pitch axis from ``lo`` to ``hi`` labels: every pitch over an octave or so, the
    white keys over two octaves and a bit (a melody), else the C of every octave (``C4`` = 60)."""
    pitches = range(int(np.ceil(lo)), int(hi) + 1)
    if hi - lo <= 14:
        return list(pitches)
    if hi - lo <= 28:
        return [p for p in pitches if p % 12 in NATURALS]
    return [p for p in pitches if p % 12 == 0]


def _pitch_axis(ax, lo: int, hi: int) -> None:
    """Label the pitches of :func:`pitch_ticks` and draw a faint line at each."""
    ticks = pitch_ticks(lo, hi)
    ax.set_yticks(ticks)
    ax.set_yticklabels([pitch_name(p) for p in ticks], **({"fontsize": "small"} if len(ticks) > 10 else {}))
    for p in ticks:
        ax.axhline(p, color="#eee", linewidth=0.6, zorder=0)


def _plot_roll_heat(arr, ax, spq, time, title, pitch_range, figsize):
    """Draw a roll of probabilities (or any real values) as an image."""
    if arr.shape[1] not in (88, 128):
        raise MusicError(f"A piano roll has 88 or 128 pitch columns; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise MusicError("This piano roll contains NaN or infinite values.")
    low = 21 if arr.shape[1] == 88 else 0
    scale = {"steps": 1.0, "beats": 1.0 / spq, "seconds": 0.5 / spq}[time]   # seconds assume 120 qpm
    fig, ax = _figure_and_axes(ax, figsize)
    T = arr.shape[0]
    im = ax.imshow(arr.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(0, T * scale, low - 0.5, low + arr.shape[1] - 0.5))
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    lo, hi = pitch_range if pitch_range is not None else (low, low + arr.shape[1] - 1)
    ax.set_ylim(lo - 0.5, hi + 0.5)
    _pitch_axis(ax, lo, hi)
    ax.set_xlabel({"beats": "time (beats)", "seconds": "time (s, at 120 qpm)", "steps": "time (steps)"}[time])
    ax.set_ylabel("pitch")
    ax.set_title(title or "")
    return fig, ax


# ---------------------------------------------------------------------------------------- attention
def _labels(labels, n: int, name: str) -> list | None:
    if labels is None:
        return None
    if isinstance(labels, Music):
        labels = [pitch_name(x.pitch) for x in labels.notes]
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise CourseError(f"{name} has {len(labels)} labels but the weights have {n} {name}.")
    return labels


def plot_attention(weights, queries: Sequence | Music | None = None, keys: Sequence | Music | None = None, ax=None, *,
                   title: str | None = None, cmap: str = "viridis", figsize: tuple | None = None):
    """Heat map of attention weights: one row per query position, one column per key position.

    Lesson: 05_attention_math

    Args:
        weights: NumPy array or torch tensor of shape ``(T, S)`` (queries x keys) or
            ``(heads, T, S)`` (drawn as a grid, one panel per head); a leading batch axis of
            size 1 is dropped.
        queries, keys: labels for the rows and columns: strings, numbers or a ``Music``
            (its note names, in order).
        ax: Axes for a single map (``(T, S)`` weights); default: a new figure.

    Returns:
        ``(fig, ax)`` for one map, ``(fig, axes)`` (an array of Axes) for several heads.
    """
    w = _as_array(weights)
    if w is None:
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            raise CourseError(f"plot_attention needs an array or tensor of weights, got {type(weights).__name__}.") from None
    w = np.asarray(w, dtype=float)
    while w.ndim > 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim not in (2, 3) or 0 in w.shape:
        raise CourseError(f"Attention weights have shape (queries, keys) or (heads, queries, keys); got {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise CourseError("The attention weights contain NaN or infinite values (a fully masked row?).")
    T, S = w.shape[-2:]
    qlab, klab = _labels(queries, T, "queries"), _labels(keys, S, "keys")
    if w.ndim == 2:
        fig, ax = _figure_and_axes(ax, figsize or (min(10, 2 + 0.25 * S), min(8, 1.5 + 0.25 * T)))
        _draw_map(fig, ax, w, qlab, klab, cmap, colorbar=True)
        ax.set_title(title or "attention")
        return fig, ax
    if ax is not None:
        raise CourseError(f"These weights hold {w.shape[0]} heads; leave ax=None to draw a grid of them, "
                          "or pass one head, e.g. weights[0].")
    import matplotlib.pyplot as plt

    h = w.shape[0]
    cols = min(h, 4)
    rows = -(-h // cols)
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (3.2 * cols, 3.0 * rows), squeeze=False,
                             layout="constrained")
    for i, a in enumerate(axes.flat):
        if i < h:
            _draw_map(fig, a, w[i], qlab, klab, cmap, colorbar=False)
            a.set_title(f"head {i}")
        else:
            a.axis("off")
    if title:
        fig.suptitle(title)
    return fig, axes


def _draw_map(fig, ax, w, qlab, klab, cmap, colorbar):
    im = ax.imshow(w, aspect="auto", cmap=cmap, vmin=0.0, vmax=max(1e-9, float(w.max())), interpolation="nearest")
    T, S = w.shape
    for labels, n, set_ticks, set_labels, rot in ((qlab, T, ax.set_yticks, ax.set_yticklabels, 0),
                                                  (klab, S, ax.set_xticks, ax.set_xticklabels, 90)):
        if labels is not None:
            every = max(1, int(np.ceil(n / 32)))
            idx = list(range(0, n, every))
            set_ticks(idx)
            set_labels([labels[i] for i in idx], rotation=rot, fontsize="small")
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)


# ---------------------------------------------------------------------------------------- training
_X_NAMES = ("step", "steps", "epoch", "epochs", "iteration", "iterations")


def history_series(history) -> tuple[str, list]:
    """Normalize a training history to ``(x label, [(name, x, y), ...])`` with NumPy ``x``, ``y``.

    Accepts: a list of numbers (loss per step); a dict of lists (``loss``, ``val_loss``, ...,
    with ``step`` or ``epoch`` as the x axis if present, and ``valid_steps`` as the x axis of
    ``valid_loss``); a list of dicts (one per step or epoch); a dataclass such as the training
    loop's ``History``; an object with a ``history`` attribute (a :class:`LivePlot`).
    """
    import dataclasses

    if hasattr(history, "history") and not isinstance(history, dict):
        history = history.history
    if dataclasses.is_dataclass(history) and not isinstance(history, type):
        history = dataclasses.asdict(history)
    if isinstance(history, (list, tuple)) and history and all(isinstance(r, dict) for r in history):
        keys: list = []
        for r in history:
            keys += [k for k in r if k not in keys]
        history = {k: [r.get(k, np.nan) for r in history] for k in keys}
    if isinstance(history, dict):
        cols = {}
        for k, v in history.items():
            if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
                continue
            try:
                arr = np.asarray([np.nan if x is None else x for x in v], dtype=float)
            except (TypeError, ValueError):
                continue
            if arr.ndim == 1 and arr.size:
                cols[str(k)] = arr
        xs = {k for k in cols if k in _X_NAMES or k.endswith(tuple("_" + x for x in _X_NAMES))}
        main = next((k for k in _X_NAMES if k in cols), None)
        series = []
        for name, y in cols.items():
            if name in xs:
                continue
            prefix = name.rsplit("_", 1)[0] if "_" in name else ""
            own = [f"{prefix}_{x}" for x in _X_NAMES if f"{prefix}_{x}" in cols and len(cols[f"{prefix}_{x}"]) == len(y)]
            x = cols[own[0]] if own else cols[main] if main and len(cols[main]) == len(y) else np.arange(len(y))
            series.append((name, x, y))
        if not series:
            raise CourseError("This training history has no numeric series to plot (expected e.g. {'loss': [...]}).")
        return (main or "step").rstrip("s"), series
    arr = _as_array(history)
    try:
        arr = np.asarray(history if arr is None else arr, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or arr.size == 0:
        raise CourseError(f"plot_training needs a list of losses or a dict like {{'loss': [...], 'val_loss': [...]}}, "
                          f"got {type(history).__name__}.")
    return "step", [("loss", np.arange(arr.size), arr)]


def plot_training(history, ax=None, *, logy: bool = False, title: str | None = None, ylabel: str = "loss",
                  figsize: tuple = (7, 3.5)):
    """Training curves: every series of ``history`` against step (or epoch).

    Lesson: 02_rnn_from_scratch

    Args:
        history: losses per step (a list), a dict of series (``{"loss": [...], "val_loss": [...]}``,
            optionally with ``"step"`` or ``"epoch"``, and ``"valid_steps"`` for ``"valid_loss"``),
            a list of per-step dicts, the training loop's ``History``, or an object with a
            ``history`` attribute (a :class:`LivePlot`). Series with missing values (None/NaN) are
            drawn through the points they have, so a validation loss logged once per epoch works.
        logy: logarithmic loss axis.

    Returns:
        ``(fig, ax)``.
    """
    xname, series = history_series(history)
    fig, ax = _figure_and_axes(ax, figsize)
    for name, x, y in series:
        ok = np.isfinite(y) & np.isfinite(x)
        style = "o-" if ok.sum() <= 30 else "-"
        ax.plot(x[ok], y[ok], style, markersize=3, linewidth=1.2, label=name)
    ax.set_xlabel(xname)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig, ax
