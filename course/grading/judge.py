"""The judge: under grading, every verdict is decided here, in the grader's own process.

A submission runs as a *job* (:mod:`course.grading.jobserver`), in the OS sandbox where there is one
(:mod:`.isolation`). The judge sends the notebook's cells to the job one at a time; at each of the
lesson's check cells it

1. draws the exercise's cases itself, with the grading seed (which never enters the job);
2. asks the job to find the function the check is given and to call it on each case's inputs, sent
   as a pickle (the job trusts the judge), and reads back only plain data
   (:mod:`course.checks.wire`: numbers, strings, lists, arrays, tensors' values; nothing with behaviour);
3. compares the answers with the exercise's own comparison (:func:`course.checks.guard.run_cases`,
   the same code a check cell runs in a notebook, given a stand-in for the student's function).

Checks of behaviour are exchanges of plain data too: for "the model must learn", the job trains the
student's model on the data the judge sends and returns its predictions, which the judge scores.

What this boundary guarantees: nothing the student's code does inside its job (patching the
course, NumPy or torch, rewriting records, input transformers, lying tensor subclasses, a forged
PASS line, finding the expected answers in memory) can change a verdict, because the verdict is
not computed there. What it does not: the job can still call the course's own reference code and
return its answer. The check modules' ``reference_*`` functions refuse to run while a student's
function runs, and the static scan (:mod:`.tamper`) names the course's answers; both become the
``used-reference`` flag in the gradebook and summary, but a determined student can copy what the
course computes without being seen. Grading proves that the answers are right, not who wrote them.

Lesson: 00_welcome
"""
from __future__ import annotations

import ast
import os
import pickle
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import load, pass_line, wire
from ..checks.guard import RemoteCall, RemoteFailure, run_cases
from . import isolation, sandbox
from .checkrun import NotebookResult, Prepared, _syntax_errors, exercise_result, line_status
from .jobserver import _HEADER

__all__ = ["Job", "JobDied", "judge_notebook", "judge_here", "plan", "Step", "START_TIMEOUT", "GRACE_SECONDS"]

START_TIMEOUT = 120.0       # seconds for a job to start (Python, the course, the shell)
GRACE_SECONDS = 20.0        # beyond a case's own time limit, before a job that does not answer is ended
MAX_ANSWER = 65 * 1024 * 1024       # a little over what a job may send (jobserver.MAX_ANSWER)


OUT_OF_TURN = "the notebook's process answered out of turn"


class JobDied(Exception):
    """The job ended, stopped answering, or answered with something that is not the protocol."""

    def __init__(self, why: str, timed_out: bool = False):
        super().__init__(why)
        self.why = why
        self.timed_out = timed_out


class Job:
    """One running job: a process (in the sandbox, when ``isolate``) and the two pipes to it."""

    def __init__(self, scratch: sandbox.Scratch, *, limits: sandbox.Limits, max_output: int, isolate: bool):
        self.isolated = isolate
        to_job_r, self._w = os.pipe()
        self._r, from_job_w = os.pipe()
        cmd = sandbox.python_command("course.grading.jobserver") + [
            "--in", str(to_job_r), "--out", str(from_job_w), "--max-output", str(int(max_output))]
        lim = limits if not isolate else sandbox.Limits(memory_mb=limits.memory_mb, file_mb=limits.file_mb)
        cmd += lim.to_args()
        if isolate:
            cmd = isolation.wrap(cmd, scratch.work)
        self.env = sandbox.job_env(scratch)
        self._log = open(scratch.private / "log.txt", "wb")
        try:
            self.proc = subprocess.Popen(cmd, cwd=str(scratch.work), env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT, pass_fds=(to_job_r, from_job_w),
                                         start_new_session=True)
        finally:
            os.close(to_job_r)
            os.close(from_job_w)
        self._buf = bytearray()
        self.alive = True
        hello = self._read(time.monotonic() + START_TIMEOUT)
        if hello.get("kind") != "ready":
            self.close()
            raise JobDied("the notebook's process did not start")

    # -------------------------------------------------------------------------- talking
    def request(self, message: dict, timeout: float) -> dict:
        """Send ``message``, wait up to ``timeout`` seconds for the answer (a dict with a ``kind``)."""
        if not self.alive:
            raise JobDied("the notebook's process had already stopped")
        deadline = time.monotonic() + max(0.0, timeout)
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._write(_HEADER.pack(len(data)) + data, deadline)
        return self._read(deadline)

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                self._stop()
                raise JobDied("the notebook's process stopped reading (it ran out of time)", timed_out=True)
            _, ready, _ = select.select([], [self._w], [], left)
            if not ready:
                continue
            try:
                n = os.write(self._w, view[: 1 << 16])
            except (BrokenPipeError, OSError):
                self._stop()
                raise JobDied("the notebook's process had stopped") from None
            view = view[n:]

    def _read(self, deadline: float) -> dict:
        need = _HEADER.size
        while True:
            if len(self._buf) >= _HEADER.size:
                (n,) = _HEADER.unpack(self._buf[:_HEADER.size])
                if n > MAX_ANSWER:
                    self._stop()
                    raise JobDied(f"the notebook's process sent an answer over {MAX_ANSWER // 2**20} MB")
                need = _HEADER.size + n
                if len(self._buf) >= need:
                    payload = bytes(self._buf[_HEADER.size:need])
                    del self._buf[:need]
                    return self._decode(payload)
            left = deadline - time.monotonic()
            if left <= 0:
                self._stop()
                raise JobDied("the notebook's process did not answer in time", timed_out=True)
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self._r, max(1 << 16, need - len(self._buf)))
            except OSError:
                chunk = b""
            if not chunk:
                self._stop()
                raise JobDied("the notebook's process stopped")
            self._buf += chunk

    def _decode(self, payload: bytes) -> dict:
        try:
            msg = wire.decode(payload)
        except wire.WireError as e:
            self._stop()
            raise JobDied(f"the notebook's process sent data that is not plain ({e})") from None
        if type(msg) is not dict or type(msg.get("kind")) is not str:
            self._stop()
            raise JobDied("the notebook's process sent something that is not an answer")
        return msg

    # -------------------------------------------------------------------------- ending
    def _stop(self) -> None:
        self.alive = False
        try:
            sandbox.kill_job(self.proc.pid, self.env.get(sandbox.MARKER_ENV))
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.kill()
        except OSError:
            pass

    def out_of_turn(self) -> None:
        """The job answered something other than what was asked: it is ended, nothing more it says counts."""
        self._stop()

    def close(self) -> None:
        """End the job and everything it started (the sandbox's PID namespace goes with it)."""
        if self.alive:
            try:
                self.request({"op": "end"}, 5.0)
            except JobDied:
                pass
        self._stop()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass
        for fd in (self._w, self._r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._w = self._r = -1
        self._log.close()


class _Remote(RemoteCall):
    """The student's function as the judge sees it: each call is one exchange with the job."""

    def __init__(self, job: Job, time_limit: float, deadline: float):
        self.job = job
        self.time_limit = float(time_limit)
        self.deadline = deadline
        self.inputs_changed = False
        self.died: JobDied | None = None

    def __call__(self, *args, **kwargs):
        self.inputs_changed = False
        try:
            payload = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a case the judge cannot send: the check's fault
            raise RemoteFailure("the grader could not send this case to the notebook (a bug in the check; "
                                "please report it)", False) from None
        wait = min(self.time_limit + GRACE_SECONDS, max(1.0, self.deadline - time.monotonic()))
        try:
            ans = self.job.request({"op": "call", "args": payload, "time_limit": self.time_limit}, wait)
        except JobDied as e:
            self.died = e
            if e.timed_out:
                raise RemoteFailure(f"your function took longer than {self.time_limit:g} s and did not stop "
                                    "(an infinite loop?)") from None
            raise RemoteFailure("the notebook's process stopped while your function ran (a crash, os._exit(), "
                                "or too much memory?)") from None
        kind = ans.get("kind")
        if kind == "failure":
            raise RemoteFailure(str(ans.get("what", "your function failed"))[:500], ans.get("about") is not False)
        if kind != "result":
            self.job.out_of_turn()
            self.died = JobDied(OUT_OF_TURN)
            raise RemoteFailure(f"{OUT_OF_TURN}, so nothing more it says can be trusted")
        self.inputs_changed = ans.get("changed") is not False
        return ans.get("got")


# ------------------------------------------------------------------------------------ the plan
@dataclass
class Step:
    kind: str               # "cell" or "check"
    num: int                # the code cell's number in the prepared notebook
    source: str = ""
    exercise: str = ""
    target: str = ""

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.source.splitlines() if ln.strip()), "")[:60]


def _target(check_source: str, exercise: str) -> str:
    """The source of what the lesson's check cell passes to ``check.NAME(...)``."""
    try:
        tree = ast.parse(check_source)
    except SyntaxError:
        return exercise
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == exercise
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "check" and node.args):
            return ast.get_source_segment(check_source, node.args[0]) or exercise
    return exercise


def _skipped(cell) -> bool:
    tags = cell.metadata.get("tags") if hasattr(cell, "metadata") else None
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return ((isinstance(tags, list) and "nbval-skip" in tags) or first.upper().startswith("# NBVAL_SKIP")
            or "check.notebook(" in cell.source)


def plan(prepared: Prepared) -> list[Step]:
    """The steps of a prepared notebook (:func:`.checkrun.prepare` with ``arm=False``), in order."""
    checks = {num: name for name, num in prepared.cell_of.items()}
    steps = []
    code = [c for c in prepared.nb.cells if c.cell_type == "code"]
    for num, cell in enumerate(code):
        if num in checks:
            name = checks[num]
            steps.append(Step("check", num, cell.source, name, _target(cell.source, name)))
        elif not _skipped(cell) and cell.source.strip():
            steps.append(Step("cell", num, cell.source))
    return steps


# ------------------------------------------------------------------------------------ judging
@dataclass
class _Verdict:
    line: str | None = None
    error: str | None = None


@dataclass
class _Run:
    verdicts: dict = field(default_factory=dict)
    forged: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    stopped: str | None = None


def _judge_exercise(job: Job, step: Step, seed: str, deadline: float) -> tuple[_Verdict, JobDied | None]:
    ex = load(step.exercise)
    if ex is None:
        return _Verdict(error=f"this course has no exercise {step.exercise}"), None
    try:
        cases = ex.cases(grading_seed=seed)
    except Exception as e:  # noqa: BLE001 - the check's own bug
        return _Verdict(error=f"the grader could not make this check's cases ({type(e).__name__}; please report it)"), None
    try:
        ans = job.request({"op": "begin", "exercise": step.exercise, "target": step.target},
                          min(ex.time_limit + GRACE_SECONDS, max(1.0, deadline - time.monotonic())))
    except JobDied as e:
        return _Verdict(error="the notebook's process stopped while the check looked up your function"), e
    kind = ans.get("kind")
    if kind == "missing":
        return _Verdict(error=f"the check did not run ({str(ans.get('what'))[:300]})"), None
    if kind == "setup":
        return _Verdict(line=f"FAIL {step.exercise}: case 'setup': {str(ans.get('what'))[:300]}"), None
    if kind != "begun":
        job.out_of_turn()
        return _Verdict(error=OUT_OF_TURN), JobDied(OUT_OF_TURN)
    remote = _Remote(job, ex.time_limit, deadline)
    lines: list[str] = []
    run_cases(step.exercise, remote, cases, compare=ex.compare, hint=ex.hint, namespace=None, time_limit_s=None,
              check_inputs_unchanged=ex.inputs_unchanged, print_line=False, on_line=lines.append)
    return _Verdict(line=lines[-1] if lines else None), remote.died


def judge_notebook(prepared: Prepared, *, seed: str, cell_timeout: float = 300.0, notebook_timeout: float = 1200.0,
                   limits: sandbox.Limits | None = None, max_output_kb: int = 1000, isolate: bool | None = None,
                   scratch_base: str | Path | None = None) -> NotebookResult:
    """Run a prepared notebook as a job and decide each of its lesson's exercises here (module docstring)."""
    limits = limits or sandbox.Limits()
    if isolate is None:
        isolate = isolation.available()[0]
    t0 = time.monotonic()
    deadline = t0 + notebook_timeout
    steps = plan(prepared)
    run = _Run()
    scratch = sandbox.make_scratch(base=scratch_base, owner=None if isolate else limits.run_as)
    job = None
    try:
        try:
            job = Job(scratch, limits=limits, max_output=int(max_output_kb) * 1000, isolate=isolate)
        except JobDied as e:
            run.stopped = f"the notebook could not be started for grading ({e.why})"
        for step in steps:
            if run.stopped:
                break
            if time.monotonic() >= deadline:
                run.stopped = f"the notebook ran longer than {notebook_timeout:g} s and was stopped"
                break
            if step.kind == "check":
                verdict, died = _judge_exercise(job, step, seed, deadline)
                run.verdicts[step.exercise] = verdict
                if died is not None:
                    run.stopped = _stopped_text(died, f"check.{step.exercise} ran", isolate, notebook_timeout,
                                                deadline)
                continue
            left = max(0.0, deadline - time.monotonic())
            try:
                ans = job.request({"op": "cell", "source": step.source, "time_limit": min(cell_timeout, left)},
                                  min(cell_timeout + GRACE_SECONDS, left))
            except JobDied as e:
                run.stopped = _stopped_text(e, f"the code cell starting {step.first_line!r} ran", isolate,
                                            notebook_timeout, deadline, cell_timeout)
                continue
            if not _note_cell(run, step, ans):
                job.out_of_turn()
    finally:
        if job is not None:
            job.close()
        scratch.remove()
    return _decide(prepared, run, time.monotonic() - t0)


def _stopped_text(e: JobDied, during: str, isolated: bool, notebook_timeout: float, deadline: float,
                  cell_timeout: float | None = None) -> str:
    if e.timed_out:
        if time.monotonic() >= deadline - 0.5:
            return f"the notebook ran longer than {notebook_timeout:g} s and was stopped while {during}"
        if cell_timeout is not None:
            return f"stopped: {during} longer than the {cell_timeout:g} s a cell may take"
        return f"stopped: the notebook's process did not answer while {during}"
    text = (f"the notebook's process stopped while {during} (a crash, os._exit(), a killed process, or too "
            "much memory?)")
    if not isolated:
        text += "; jobs were not isolated, so another job may also have stopped it"
    return text


def _count_dict(value) -> dict[str, int]:
    if type(value) is not dict:
        return {}
    return {k: v for k, v in value.items() if type(k) is str and type(v) is int}


def _note_cell(run: _Run, step: Step, ans: dict) -> bool:
    """Note what a cell did; False when its answer was out of turn (the job is then ended)."""
    if ans.get("kind") != "cell":
        run.stopped = f"after the code cell starting {step.first_line!r}, {OUT_OF_TURN} (did it write to the grader's channel?)"
        return False
    error = ans.get("error")
    if type(error) is str and error:
        run.notes.append(f"the code cell starting {step.first_line!r}: the cell raised {error[:200]}")
    printed, passed = _count_dict(ans.get("printed")), _count_dict(ans.get("passed"))
    for name, n in printed.items():
        if n > passed.get(name, 0):
            run.forged[name] = step.first_line
    return True


def _decide(prepared: Prepared, run: _Run, seconds: float) -> NotebookResult:
    syntax = _syntax_errors(prepared)
    notes = [f"the code cell starting {first!r} is not valid Python: {problem}" for first, problem, _ in syntax.values()]
    notes += [n for n in run.notes if "is not valid Python" not in n]
    if run.stopped:
        notes.append(run.stopped)
    results = []
    for name in prepared.lesson.names:
        verdict = run.verdicts.get(name)
        ok_line = pass_line(name)
        if name in run.forged:
            status, msg = "tampered", (f"the code cell starting {run.forged[name]!r} printed check.{name}'s pass line "
                                       "without the check passing there (a forged PASS)")
        elif verdict is None:
            status, msg = "error", ("the notebook stopped before this check ran"
                                    + (f" ({run.stopped})" if run.stopped else ""))
        elif verdict.error is not None:
            status, msg = "error", verdict.error
        elif verdict.line == ok_line:
            status, msg = "passed", ok_line
        elif verdict.line:
            status, msg = line_status(name, verdict.line), verdict.line
        else:
            status, msg = "error", "the check gave no result (a bug in the grader; please report it)"
        results.append(exercise_result(name, prepared, syntax, status, msg))
    return NotebookResult(prepared.lesson.lesson, results, seconds, notes)



# ------------------------------------------------------------------------------------ in one process
class _Here(RemoteCall):
    """A job in this process, for lesson authors and tests: the same trip through pickles and the wire."""

    def __init__(self, func, time_limit: float, blocked: dict):
        self.func, self.time_limit, self.blocked = func, time_limit, blocked
        self.inputs_changed = False

    def __call__(self, *args, **kwargs):
        from ..checks.guard import call_once
        from ..checks.values import same

        payload = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        call_args, call_kwargs = pickle.loads(payload)
        pristine = pickle.loads(payload)
        got, failure = call_once(self.func, call_args, call_kwargs, time_limit_s=self.time_limit, blocked=self.blocked)
        if failure is not None:
            raise RemoteFailure(*failure)
        self.inputs_changed = not (all(same(a, b) for a, b in zip(call_args, pristine[0]))
                                   and all(same(call_kwargs.get(k), v) for k, v in pristine[1].items()))
        return wire.decode(wire.encode(got))


def judge_here(exercise: str, obj, seed: str = "grading:here") -> str:
    """The line the judge would give ``obj`` for ``exercise`` under ``seed``, without a job: the cases are
    drawn with the grading seed, the call step gets pickled inputs and its answer crosses the wire, as in
    grading (for tests and lesson authors; the student's code runs in this process)."""
    from ..checks import CheckFailure
    from ..checks.guard import _blocked_references

    ex = load(exercise)
    if ex is None:
        raise KeyError(exercise)
    func = obj
    if ex.prepare is not None:
        try:
            func = ex.prepare(obj)
        except CheckFailure as e:
            return f"FAIL {exercise}: case 'setup': {e}"
    lines: list[str] = []
    run_cases(exercise, _Here(func, ex.time_limit, _blocked_references(ex.make.__globals__)) if callable(func) else func,
              ex.cases(grading_seed=seed), compare=ex.compare, hint=ex.hint, time_limit_s=None,
              check_inputs_unchanged=ex.inputs_unchanged, print_line=False, on_line=lines.append)
    return lines[-1]
