"""The launcher of one checked notebook: limits itself, then runs nbval on the notebook.

``python -m course.grading.nbval_runner NOTEBOOK --results FILE [--cell-timeout S] [limits]``
is what the self-check and the grader start for each notebook (as a contained job, see
:mod:`course.grading.sandbox`). It applies the resource limits, then runs
``pytest --nbval-lax`` on the notebook in this process with a small plugin that appends one
JSON line per cell to ``FILE``: ``{"cell": N, "when": ..., "outcome": ..., "message": ...}``
(``N`` counts code cells from 0, as nbval's ``Cell N`` does), and ``{"done": true}`` at the end.

Lesson: 00_welcome
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_STATE = {"dead": False, "reported": False}


def _patch_nbval_for_dead_kernels() -> None:
    """Make nbval notice a dead kernel within a second instead of waiting out the cell's time limit.

    nbval waits for a kernel's reply for the whole cell timeout, even when the kernel has died
    (``os._exit``, a crash, the memory limit); with a two-minute limit that is two wasted minutes
    per such notebook. This wraps its two waiting functions to poll in one-second steps and stop as
    soon as the kernel process is gone. If nbval's internals change, the wrapper is not installed.
    """
    import time
    from queue import Empty

    try:
        from nbval.kernel import RunningKernel
        from nbval.plugin import IPyNbFile
    except ImportError:  # pragma: no cover
        return
    if not hasattr(RunningKernel, "await_reply") or not hasattr(IPyNbFile, "get_kernel_message"):
        return

    def polling(wait):
        def wrapper(self, *args, timeout=None, **kwargs):
            kernel = self if isinstance(self, RunningKernel) else getattr(self, "kernel", None)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = 1.0 if deadline is None else deadline - time.monotonic()
                try:
                    return wait(self, *args, timeout=max(0.0, min(1.0, left)), **kwargs)
                except Empty:
                    if kernel is not None and not kernel.is_alive():
                        _STATE["dead"] = True
                        raise
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
        return wrapper

    RunningKernel.await_reply = polling(RunningKernel.await_reply)
    IPyNbFile.get_kernel_message = polling(IPyNbFile.get_kernel_message)


def _private_kernel_sockets(folder: str) -> None:
    """Start nbval's kernel with its sockets as files in ``folder`` (see ``execute.socket_options``):
    several jobs start kernels at once, and TCP ports picked for two of them can collide."""
    try:
        import nbval.kernel as nbval_kernel
    except ImportError:  # pragma: no cover
        return
    from ..authoring.kernels import socket_options

    options = socket_options(folder)
    manager = getattr(nbval_kernel, "KernelManager", None)
    if not options or manager is None:
        return

    class _FileSocketKernelManager(manager):
        def __init__(self, **kwargs):
            super().__init__(**{**options, **kwargs})

    nbval_kernel.KernelManager = _FileSocketKernelManager


class _Recorder:
    """pytest plugin: one JSON line per notebook cell."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _write(self, rec: dict) -> None:
        os.write(self.fd, (json.dumps(rec) + "\n").encode("utf-8"))

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and report.outcome == "passed":
            return
        m = re.search(r"Cell (\d+)", report.nodeid)
        if not m:
            return
        text = ""
        if report.outcome != "passed":
            try:
                text = _ANSI.sub("", report.longreprtext or "")
            except Exception:
                text = ""
            if len(text) > 6000:
                text = text[:3000] + "\n...\n" + text[-3000:]
            if report.outcome == "failed" and _STATE["dead"] and not _STATE["reported"]:
                _STATE["reported"] = True
                text = "KERNEL DIED\n" + text
            if getattr(report, "wasxfail", None) is not None:
                text = "NOT RUN: an earlier cell stopped the kernel or ran out of time\n" + text
            elif report.outcome == "skipped":
                text = ""
        self._write({"cell": int(m.group(1)), "when": report.when, "outcome": report.outcome, "message": text})

    def pytest_sessionfinish(self, session, exitstatus):
        self._write({"done": True, "exitstatus": int(exitstatus)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.grading.nbval_runner")
    ap.add_argument("notebook")
    ap.add_argument("--results", required=True)
    ap.add_argument("--cell-timeout", type=float, default=120.0)
    ap.add_argument("--memory-mb", type=int, default=None)
    ap.add_argument("--file-mb", type=int, default=None)
    ap.add_argument("--uid", type=int, default=None)
    ap.add_argument("--gid", type=int, default=None)
    args = ap.parse_args(argv)

    from .sandbox import apply_limits

    recorder = _Recorder(args.results)       # opened before dropping privileges
    folder = os.path.dirname(os.path.abspath(args.notebook))
    ini = os.path.join(os.path.dirname(os.path.abspath(args.results)), "pytest.ini")
    with open(ini, "w", encoding="utf-8") as f:   # an empty configuration: no addopts from anywhere
        f.write("[pytest]\n")
    apply_limits(args.memory_mb, args.file_mb, args.uid, args.gid)

    from ..authoring.notebooks import skip_slow_optional_imports

    skip_slow_optional_imports()         # nbval imports nbformat: 1.5 s saved per notebook
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import pytest

    _patch_nbval_for_dead_kernels()
    _private_kernel_sockets(folder)

    pytest_args = [os.path.abspath(args.notebook), "-c", ini, "--rootdir", folder,
                   "-p", "nbval.plugin", "-p", "no:cacheprovider", "-p", "no:stepwise",
                   "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={args.cell_timeout:g}",
                   "--nbval-kernel-startup-timeout=60", "-q", "--tb=no", "--no-header", "-p", "no:warnings"]
    return int(pytest.main(pytest_args, plugins=[recorder]))


if __name__ == "__main__":
    sys.exit(main())
