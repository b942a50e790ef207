"""The grading side channel: how the real checks report to the grader from inside a kernel.

The self-check and the grader run a notebook whose first cell (added by the grader, before any
student code) calls :func:`arm`. It reads the grader's secret from a file named in the
environment and deletes that file, opens the results file, and registers a hook that notes a
hash of each cell's source as the cell starts. From then on every registered check (the guard in
:mod:`course.exercises.checking`) appends ``{secret, exercise, line, cell}`` to the results file.

The grader counts a check cell as passed only if nbval saw it print exactly the pass line *and*
the results file holds a record carrying the secret, from that very cell, in which the real
check printed the pass line. Rebinding ``check.NAME``, replacing ``print`` or writing the pass
line by hand changes what the cell shows, but not the record. The honest limit: the student's
code runs in the same process, so code that digs the secret out of this module's closures could
forge a record; the grader's static scan (:mod:`course.exercises.tamper`) flags the ways in.

:func:`arm` also caps what each cell may print (``COURSE_GRADING_MAX_OUTPUT`` characters per stream).

Lesson: 00_welcome
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["arm", "armed", "record", "GRADING_RESULTS_ENV", "GRADING_TOKEN_ENV", "GRADING_OUTPUT_ENV"]

GRADING_RESULTS_ENV = "COURSE_GRADING_RESULTS"        # file the checks append results to
GRADING_TOKEN_ENV = "COURSE_GRADING_TOKEN_FILE"       # file holding the grader's secret (read once, deleted)
GRADING_OUTPUT_ENV = "COURSE_GRADING_MAX_OUTPUT"      # characters of stdout/stderr allowed per cell

_recorder: Callable | None = None     # set by arm() in a grading kernel


def armed() -> bool:
    """Whether this kernel is being checked or graded (the side channel is open)."""
    return _recorder is not None


def record(exercise_name: str, line: str) -> None:
    """Report the line a check printed; a no-op outside a checking run."""
    rec = _recorder
    if rec is not None:
        try:
            rec(exercise_name, line)
        except Exception:
            pass


def arm() -> bool:
    """Open the side channel in a checking kernel (see the module docstring); False anywhere else."""
    global _recorder
    token_file = os.environ.pop(GRADING_TOKEN_ENV, None)
    results = os.environ.pop(GRADING_RESULTS_ENV, None)
    max_output = int(os.environ.pop(GRADING_OUTPUT_ENV, "0") or 0)
    if not token_file or not results or _recorder is not None:
        return False
    import hashlib
    import json
    import sys

    with open(token_file, encoding="utf-8") as f:
        secret = f.read().strip()
    os.remove(token_file)
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    write, dumps, sha = os.write, json.dumps, hashlib.sha256
    state = {"cell": "", "budget": {}}

    def before_cell(info=None):
        raw = getattr(info, "raw_cell", "") or ""
        state["cell"] = sha(raw.encode("utf-8")).hexdigest()[:16]
        state["budget"] = {}

    def write_record(exercise_name: str, line: str) -> None:
        rec = {"secret": secret, "exercise": exercise_name, "line": line[:1000], "cell": state["cell"]}
        write(fd, (dumps(rec) + "\n").encode("utf-8"))

    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:  # pragma: no cover - grading always runs in a kernel
        ip = None
    if ip is not None:
        ip.events.register("pre_run_cell", before_cell)
    if max_output > 0:
        for stream_name in ("stdout", "stderr"):
            _cap_stream(getattr(sys, stream_name), stream_name, max_output, state)
    _recorder = write_record
    return True


def _cap_stream(stream, key: str, limit: int, state: dict) -> None:
    """Drop what a cell prints to ``stream`` beyond ``limit`` characters (grading only)."""
    original = stream.write

    def write(s):
        s = str(s)
        used = state["budget"].get(key, 0)
        state["budget"][key] = used + len(s)
        if used + len(s) <= limit:
            return original(s)
        if used < limit:
            original(s[: limit - used])
            original(f"\n[output cut by the grader after {limit // 1000} kB]\n")
        return len(s)

    try:
        stream.write = write
    except (AttributeError, TypeError):  # pragma: no cover - a stream that cannot be patched
        pass
