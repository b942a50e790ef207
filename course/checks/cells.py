"""When this kernel's cells ran: tells a cell run on its own from one run by Run All.

A lesson's self-check cell (``check.notebook()``) starts a second kernel, so Run All must not start
it. Front ends that run all cells send every cell's request at once (JupyterLab, classic Notebook)
or each one as soon as the cell before it has finished (VS Code, Colab); a person runs a cell
seconds after the one before. :func:`watch` (started by the first check a notebook looks up, never
on import) notes, after each cell, when the front end sent that cell and how long it ran, and
:func:`ran_straight_after` compares the current cell with it. Only times the front end stamped are
compared with each other, so a browser clock that differs from the kernel's does not matter.

Lesson: 00_welcome
"""
from __future__ import annotations

import sys
import time
from datetime import datetime

__all__ = ["watch", "ran_straight_after", "kernel_shell", "GAP_SECONDS"]

GAP_SECONDS = 1.0           # a cell sent sooner than this after the previous one ended was not run by hand
_STATE: dict = {"watching": False, "last": None}    # last: (when the front end sent it, seconds it ran)


def kernel_shell():
    """The IPython shell of this Jupyter kernel, or None (a plain script, a terminal); never imports IPython."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # noqa: BLE001 - no shell
        return None
    return shell if getattr(shell, "kernel", None) is not None else None


def _sent(shell) -> datetime | None:
    """When the front end sent the request this kernel is running now (its header's date)."""
    try:
        date = shell.kernel.get_parent()["header"]["date"]
        if isinstance(date, str):
            date = datetime.fromisoformat(date.replace("Z", "+00:00"))
        return date if isinstance(date, datetime) else None
    except Exception:  # noqa: BLE001 - a front end or kernel that does not say
        return None


def watch() -> None:
    """Start noting when each cell was sent and how long it ran (once per kernel; nothing outside a kernel)."""
    if _STATE["watching"]:
        return
    shell = kernel_shell()
    if shell is None or not hasattr(shell, "events"):
        return
    started: dict = {"sent": _sent(shell), "at": time.monotonic()}    # the cell running now, which started the watch

    def pre_run_cell(*_):
        started["sent"], started["at"] = _sent(shell), time.monotonic()

    def post_run_cell(*_):
        _STATE["last"] = (started["sent"], time.monotonic() - started["at"])

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    _STATE["watching"] = True


def ran_straight_after(gap: float = GAP_SECONDS) -> bool:
    """Whether the cell running now was sent while the previous cell ran, or within ``gap`` seconds of its end.

    That is what Run All (or Run All Below) does; a person who runs the cell waits longer. False when
    nothing is known (no kernel, no earlier cell watched, a front end that stamps no dates).
    """
    last, now = _STATE["last"], _sent(kernel_shell())
    if last is None or last[0] is None or now is None:
        return False
    try:
        return (now - last[0]).total_seconds() - last[1] < gap
    except TypeError:  # dates with and without a time zone
        return False
