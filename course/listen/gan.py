"""Seeing a GAN learn: real and generated samples side by side, redrawn in place while it trains.

Lesson: 07_gan_fundamentals
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import CourseError
from ._common import in_notebook, new_figure, show_in_place

__all__ = ["plot_samples", "LiveSamples"]


def _points(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise CourseError(f"{name} must be an array of samples, got {type(x).__name__}.") from None
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] not in (1, 2) or len(a) == 0:
        raise CourseError(f"{name} must hold samples of shape (N,), (N, 1) or (N, 2), got {a.shape}.")
    return a


def plot_samples(real, fake, ax=None, *, title: str | None = None, bins: int = 60, lim: tuple | None = None,
                 figsize: tuple = (6, 3)):
    """Real and generated samples in one picture: two histograms on the line, two point clouds in the plane.

    Args:
        real, fake: samples (N,), (N, 1) or (N, 2) (arrays or tensors).
        ax: a matplotlib axes to draw into (default: a new figure).
        lim: the range shown, ``(low, high)`` on both axes (default: from the real samples).

    Returns ``(fig, ax)``. Lesson: 07_gan_fundamentals
    """
    r, f = _points(real, "real"), _points(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise CourseError(f"real and fake samples must have the same dimension, got {r.shape[1]} and {f.shape[1]}.")
    if ax is None:
        fig = new_figure(figsize)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    if lim is None:
        lo, hi = r.min(), r.max()
        pad = 0.25 * (hi - lo) + 1e-6
        lim = (lo - pad, hi + pad)
    if r.shape[1] == 1:
        edges = np.linspace(lim[0], lim[1], bins + 1)
        ax.hist(r[:, 0], bins=edges, density=True, color="0.6", alpha=0.6, label="data")
        ax.hist(f[:, 0], bins=edges, density=True, histtype="step", color="C1", linewidth=1.5, label="generator")
        ax.set_xlim(*lim)
        ax.set_ylabel("density")
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.scatter(r[:, 0], r[:, 1], s=2, color="0.6", alpha=0.5, label="data")
        ax.scatter(f[:, 0], f[:, 1], s=2, color="C1", alpha=0.6, label="generator")
        ax.set_xlim(*lim)
        ax.set_ylim(*lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


class LiveSamples:
    """A :func:`course.nn.gan.train_gan` callback that shows the generator's samples over the data's.

    Each call records ``n`` samples from a fixed noise (``generator.sample(n, seed=seed)``) as a
    snapshot (in :attr:`snapshots`, a list of ``(step, samples)``); in a notebook the picture is redrawn
    in place at most every ``interval`` seconds, and once more at the end. Outside a notebook it only
    records.

    Lesson: 07_gan_fundamentals
    """

    def __init__(self, real, *, n: int = 1000, seed: int = 1, interval: float = 1.0, title: str = "",
                 lim: tuple | None = None, figsize: tuple = (6, 3), display: bool | None = None):
        self.real = _points(real, "real")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CourseError(f"n must be a whole number >= 1, got {n!r}.")
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
            raise CourseError(f"interval must be a number of seconds >= 0, got {interval!r}.")
        self.n, self.seed, self.interval, self.title, self.lim, self.figsize = n, seed, float(interval), title, lim, figsize
        self.enabled = in_notebook() if display is None else bool(display)
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.draws = 0
        self._handle = None
        self._last_draw = -math.inf

    def update(self, step: int, generator, losses: dict | None = None) -> None:
        """Record a snapshot of ``generator``'s samples at ``step``; redraw if it is time."""
        sample = getattr(generator, "sample", None)
        if not callable(sample):
            raise CourseError("LiveSamples needs a generator with a sample(n, seed=...) method "
                              "(e.g. course.nn.toy_gan.ToyGenerator).")
        self.snapshots.append((int(step), _points(sample(self.n, seed=self.seed), "the generator's samples")))
        if self.enabled and time.perf_counter() - self._last_draw >= self.interval:
            self.draw()

    __call__ = update

    def draw(self) -> None:
        """Redraw the last snapshot now (nothing outside a notebook unless ``display=True``)."""
        if not self.enabled or not self.snapshots:
            return
        step, fake = self.snapshots[-1]
        fig = new_figure(self.figsize)
        ax = fig.add_subplot(1, 1, 1)
        plot_samples(self.real, fake, ax=ax, lim=self.lim, title=f"{self.title} (step {step})".strip())
        self._handle = show_in_place(self._handle, fig)
        self.draws += 1
        self._last_draw = time.perf_counter()

    def finish(self) -> None:
        """Draw the final snapshot (``train_gan`` calls it after the last step)."""
        self.draw()

    def __repr__(self) -> str:
        last = f", last at step {self.snapshots[-1][0]}" if self.snapshots else ""
        return f"LiveSamples({len(self.snapshots)} snapshots{last})"
