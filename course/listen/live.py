"""A training curve that redraws in place while a model trains.

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import CourseError
from ._common import in_notebook, new_figure, png_bytes

__all__ = ["LivePlot"]


class LivePlot:
    """Live loss curve: call :meth:`update` every step; the picture redraws at most every ``interval`` s.

    Lesson: 02_rnn_from_scratch

    In a notebook it shows one image and replaces it in place (an IPython display handle,
    which JupyterLab, Notebook, VS Code and Colab all support). Outside a notebook it only
    records the numbers and prints nothing. Drawing never takes more than about a tenth of
    the training time: after a slow draw the next one waits longer.

    Use it as a callback (``live(step, loss)`` is ``live.update(step, loss)``), or as a
    context manager that draws the final state on exit::

        with LivePlot() as live:
            for step in range(n):
                live.update(step, loss, val_loss=...)

    Args:
        interval: least seconds between two redraws.
        title: the plot title. ``logy``: logarithmic loss axis.
        display: force drawing on (True) or off (False); default: on only in a notebook.
    """

    def __init__(self, interval: float = 0.5, *, title: str = "training", logy: bool = False,
                 display: bool | None = None, figsize: tuple = (7, 3.2)):
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
            raise CourseError(f"interval must be a number of seconds >= 0, got {interval!r}.")
        self.interval = float(interval)
        self.title, self.logy, self.figsize = title, logy, figsize
        self.enabled = in_notebook() if display is None else bool(display)
        self.steps: list[float] = []
        self.losses: list[float] = []
        self.val_steps: list[float] = []
        self.val_losses: list[float] = []
        self.draws = 0
        self._handle = None
        self._last_draw = -math.inf
        self._wait = self.interval

    @property
    def history(self) -> dict:
        """``{"step": [...], "loss": [...], "val_loss": [...]}`` (val_loss is NaN where not given)."""
        val = dict(zip(self.val_steps, self.val_losses))
        return {"step": list(self.steps), "loss": list(self.losses),
                "val_loss": [val.get(s, float("nan")) for s in self.steps]}

    def update(self, step: float, loss: float, val_loss: float | None = None) -> None:
        """Record the training loss at ``step`` (and a validation loss, if given); redraw if it is time."""
        try:
            step, loss = float(step), float(_scalar(loss))
            val_loss = None if val_loss is None else float(_scalar(val_loss))
        except (TypeError, ValueError):
            raise CourseError(f"LivePlot.update(step, loss, val_loss=None) takes numbers, got "
                              f"{step!r}, {loss!r}, {val_loss!r}.") from None
        self.steps.append(step)
        self.losses.append(loss)
        if val_loss is not None:
            self.val_steps.append(step)
            self.val_losses.append(val_loss)
        now = time.perf_counter()
        if self.enabled and (val_loss is not None or now - self._last_draw >= self._wait):
            self.draw()

    __call__ = update

    def draw(self) -> None:
        """Redraw now (does nothing outside a notebook unless ``display=True``)."""
        if not self.enabled or not self.steps:
            return
        t0 = time.perf_counter()
        fig = new_figure(self.figsize)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.steps, self.losses, "-", linewidth=1.0, label="loss")
        if self.val_steps:
            ax.plot(self.val_steps, self.val_losses, "o-", markersize=3, linewidth=1.2, label="val_loss")
            ax.legend()
        ok = [x for x in self.losses if np.isfinite(x)]
        last = f"step {self.steps[-1]:g}: loss {self.losses[-1]:.4g}"
        if self.val_losses:
            last += f", val_loss {self.val_losses[-1]:.4g}"
        ax.set_title(f"{self.title} ({last})")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if self.logy and ok and min(ok) > 0:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        image = png_bytes(fig)
        self._show(image)
        self.draws += 1
        done = time.perf_counter()
        self._last_draw = done
        self._wait = max(self.interval, 10 * (done - t0))

    def _show(self, png: bytes) -> None:
        from IPython.display import Image, display

        if self._handle is None:
            self._handle = display(Image(data=png, format="png"), display_id=True)
        else:
            self._handle.update(Image(data=png, format="png"))

    def finish(self) -> None:
        """Draw the final state (call it after the last step)."""
        self.draw()

    def __enter__(self) -> "LivePlot":
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def __repr__(self) -> str:
        last = f", last loss {self.losses[-1]:.4g} at step {self.steps[-1]:g}" if self.steps else ""
        return f"LivePlot({len(self.steps)} points{last})"


def _scalar(x):
    """A Python number from a number, a 0-d array or a one-element tensor."""
    if hasattr(x, "item"):
        return x.item()
    return x
