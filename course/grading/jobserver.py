"""The grading job: the one process that runs a student's notebook, and only answers the judge.

``python -m course.grading.jobserver --in FD --out FD`` is started by :mod:`course.grading.judge`,
inside the OS sandbox where there is one (:mod:`course.grading.isolation`). It runs the notebook's
cells one at a time in an IPython shell (magics, ``display`` and ``get_ipython()`` work as in a
kernel, without one), and between them, at each check, calls the student's function on the inputs
the judge sends. It never sees the grading seed, the expected answers or the comparisons.

The protocol is one request, one answer, each a frame of a 4-byte length and a payload:

- requests (judge -> job) are pickles of plain dicts built by the judge (the job trusts the judge);
- answers (job -> judge) are :func:`course.checks.wire.encode` data only (the judge never unpickles
  anything the job sends, and checks every field's type).

Requests: ``{"op": "cell", "source"}`` runs a cell; ``{"op": "begin", "exercise", "target"}`` finds
the function a check is given (``target`` is the check cell's argument, from the lesson's own check
cell) and applies the exercise's ``prepare``; ``{"op": "call", "args", "kwargs", "time_limit"}``
calls it on one case, with :func:`course.checks.guard.call_once`, the same call step as a check in
a notebook; ``{"op": "end"}``.

Everything here runs next to the student's code, so nothing here is trusted by the judge: what the
job reports (a result, whether an input changed, how many PASS lines a cell printed) only ever
counts against the student whose job it is.

Lesson: 00_welcome
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import struct
import sys

__all__ = ["send", "recv", "main", "MAX_REQUEST"]

_loads = pickle.loads              # bound at start: a notebook that replaces pickle.loads changes only its own code
MAX_REQUEST = 512 * 1024 * 1024
MAX_ANSWER = 64 * 1024 * 1024      # the largest answer a job sends (the judge refuses more)
_HEADER = struct.Struct(">I")


def send(f, payload: bytes) -> None:
    """Write one frame."""
    f.write(_HEADER.pack(len(payload)) + payload)
    f.flush()


def recv(f, limit: int) -> bytes | None:
    """Read one frame (None at the end of the stream); refuses a frame longer than ``limit``."""
    head = _read_exactly(f, _HEADER.size)
    if head is None:
        return None
    (n,) = _HEADER.unpack(head)
    if n > limit:
        raise ValueError(f"a message of {n} bytes is over the limit of {limit}")
    body = _read_exactly(f, n)
    if body is None:
        raise EOFError("the stream ended inside a message")
    return body


def _read_exactly(f, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = f.read(left)
        if not chunk:
            if left == n:
                return None
            raise EOFError("the stream ended inside a message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Sink(io.StringIO):
    """Keeps the first ``limit`` characters written (a cell's prints), drops the rest."""

    def __init__(self, limit: int):
        super().__init__()
        self._left = limit

    def write(self, s) -> int:
        s = str(s)
        if self._left > 0:
            io.StringIO.write(self, s[: self._left])
            self._left -= len(s)
        return len(s)

    def isatty(self) -> bool:
        return False


def _shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    shell.history_manager.enabled = False
    # matplotlib draws off-screen; %matplotlib and plt.show() become harmless
    try:
        shell.register_magic_function(lambda line="": None, "line", "matplotlib")
    except Exception:  # noqa: BLE001
        pass
    return shell


def _error_text(e: BaseException | None) -> str | None:
    if e is None:
        return None
    try:
        text = " ".join(str(e).split())[:200]
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(e).__name__}: {text}".rstrip(": ") if text else type(e).__name__


class Job:
    """The job's state: the shell, the function of the check now running, the pass lines counted."""

    def __init__(self, max_output: int):
        self.shell = _shell()
        self.max_output = max_output
        self.func = None
        self.blocked: dict = {}

    # -------------------------------------------------------------------------- cells
    def cell(self, source: str, time_limit: float | None = None) -> dict:
        from course.checks import index, kit, pass_line
        from course.checks.guard import _TimeUp, time_limit as limited

        before = dict(kit._PASSES)
        sink = _Sink(self.max_output)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = sink
        try:
            with limited(time_limit):
                result = self.shell.run_cell(source, store_history=False, silent=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: the cell's failure
            error = e
        finally:
            sys.stdout, sys.stderr = old
        if isinstance(error, _TimeUp):
            error = TimeoutError(f"the cell ran longer than {time_limit:g} s and was stopped")
        text = io.StringIO.getvalue(sink)
        names = list(index())            # every exercise of the course, loaded or not
        printed = {n: text.count(pass_line(n)) for n in names if pass_line(n) in text}
        passed = {n: kit._PASSES.get(n, 0) - before.get(n, 0) for n in names if kit._PASSES.get(n, 0) != before.get(n, 0)}
        return {"kind": "cell", "error": _error_text(error), "printed": printed, "passed": passed}

    # -------------------------------------------------------------------------- checks
    def begin(self, exercise: str, target: str) -> dict:
        from course.checks import CheckFailure, load
        from course.checks.guard import _blocked_references, _not_about_the_exercise

        self.func = None
        ex = load(exercise)
        if ex is None:
            return {"kind": "setup", "what": f"this course has no exercise {exercise}", "about": False}
        sink = _Sink(self.max_output)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = sink
        try:
            obj = eval(compile(target, "<check>", "eval"), self.shell.user_ns)  # noqa: S307 - the lesson's own text
            func = ex.prepare(obj) if ex.prepare is not None else obj
        except CheckFailure as e:
            return {"kind": "setup", "what": str(e), "about": True}
        except NameError as e:
            return {"kind": "missing", "what": f"it is given {target}, which is not defined: NameError: {_error_text(e)[11:]}; "
                                               "did the cell that defines it run, under that name?"}
        except (ImportError, SyntaxError) as e:
            return {"kind": "missing", "what": _not_about_the_exercise(e)}
        except BaseException as e:  # noqa: BLE001
            return {"kind": "setup", "what": f"your code raised {_error_text(e)}", "about": True}
        finally:
            sys.stdout, sys.stderr = old
        if not callable(func):
            from course.checks.values import short

            return {"kind": "setup", "what": f"expected a function, got {short(func)}", "about": True}
        self.func = func
        self.blocked = _blocked_references(ex.make.__globals__)
        return {"kind": "begun"}

    def call(self, args: bytes, time_limit: float) -> dict:
        from course.checks.guard import call_once
        from course.checks.values import same

        if self.func is None:
            return {"kind": "failure", "what": "no function to call (a bug in the grader)", "about": False}
        call_args, call_kwargs = _loads(args)
        pristine = _loads(args)
        old = sys.stdout, sys.stderr
        keep: list = []
        try:
            got, failure = call_once(self.func, call_args, call_kwargs, time_limit_s=time_limit, blocked=self.blocked,
                                     keep=keep)
        finally:
            sys.stdout, sys.stderr = old
        if failure is not None:
            return {"kind": "failure", "what": str(failure[0]), "about": bool(failure[1])}
        try:
            changed = not (all(same(a, b) for a, b in zip(call_args, pristine[0]))
                           and all(same(call_kwargs.get(k), v) for k, v in pristine[1].items()))
        except Exception:  # noqa: BLE001
            changed = True
        return {"kind": "result", "got": got, "changed": changed}


def _answer(out, message: dict) -> None:
    from course.checks import wire

    try:
        payload = wire.encode(message)
    except Exception as e:  # noqa: BLE001 - an answer that cannot be encoded: say so, as plain data
        payload = wire.encode({"kind": "failure", "what": f"your result could not be sent ({type(e).__name__})",
                               "about": True})
    if len(payload) > MAX_ANSWER:
        payload = wire.encode({"kind": "failure", "about": True, "what": f"your result is larger than "
                               f"{MAX_ANSWER // 2**20} MB; a check's answer is far smaller"})
    send(out, payload)


def serve(fin, fout, max_output: int) -> None:
    job = None
    _answer(fout, {"kind": "ready"})
    while True:
        raw = recv(fin, MAX_REQUEST)
        if raw is None:
            return
        req = _loads(raw)
        op = req.get("op")
        if job is None:
            job = Job(max_output)
        if op == "cell":
            _answer(fout, job.cell(req["source"], req.get("time_limit")))
        elif op == "begin":
            _answer(fout, job.begin(req["exercise"], req["target"]))
        elif op == "call":
            _answer(fout, job.call(req["args"], float(req["time_limit"])))
        elif op == "end":
            _answer(fout, {"kind": "bye"})
            return
        else:
            _answer(fout, {"kind": "failure", "what": f"unknown request {op!r}", "about": False})


def _die_with_the_grader() -> None:
    """On Linux, this process is killed when the grader that started it dies (outside the sandbox too)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the grader's kill sweep remains
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A grading job (started by the grader's judge).")
    ap.add_argument("--in", dest="fd_in", type=int, required=True)
    ap.add_argument("--out", dest="fd_out", type=int, required=True)
    ap.add_argument("--max-output", type=int, default=1_000_000)
    ap.add_argument("--memory-mb", type=int, default=None)
    ap.add_argument("--file-mb", type=int, default=None)
    ap.add_argument("--uid", type=int, default=None)
    ap.add_argument("--gid", type=int, default=None)
    a = ap.parse_args(argv)
    from .sandbox import apply_limits

    _die_with_the_grader()
    apply_limits(a.memory_mb, a.file_mb, a.uid, a.gid)
    fin = os.fdopen(a.fd_in, "rb", buffering=0)
    fout = os.fdopen(a.fd_out, "wb", buffering=0)
    import course.checks  # noqa: F401 - loaded before any student code runs
    from course.checks import wire  # noqa: F401
    serve(fin, fout, a.max_output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
