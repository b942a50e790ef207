"""The check guard: a check prints ONE line, whatever the student's code does.

A check never raises and never prints the expected answer wholesale. It prints either

    PASS <exercise>: all cases correct.

or

    FAIL <exercise>: case '<case>': <what was wrong>. Hint: <hint>

The hint is about the exercise, so it comes only with failures that are: a wrong answer, a crash inside
the computation, a stub not yet replaced. A name that is not defined (a typo), a failed import or a
syntax error is named as such, without it. In a notebook a FAIL line is shown with an HTML twin that
wraps between words (JupyterLab breaks plain output lines anywhere, even mid-word).

:func:`run_cases` is the *call* step of a check (see :mod:`course.checks.kit`): it runs the student's
function on each case under a time limit with its prints swallowed, turns exceptions, time-outs,
changed inputs and odd results into FAIL lines, and hands each result to the case's comparison.

Under grading none of this is relied on: the grader's judge draws the cases and compares the answers
in its own process, and only :func:`call_once` runs next to the student's code (see
:mod:`course.grading.judge`). In a self-check the guard reports each result through a side channel
(see :mod:`course.grading.sidechannel`), so a check cell whose output was printed by anything but
the real check does not count. How it stays honest while the student's code runs in the same process:

- The line comes from what :func:`run_cases` *reports* to the running guard (a private box), not
  from parsing what was printed; captured text is only used for FAIL lines of checks that print
  one themselves, and is read with ``io.StringIO.getvalue`` (never a method the student could patch).
- The student's results (and anything they raised) are kept alive until the guard has printed and
  recorded its line, so a finalizer (``__del__``) in a result runs only when nothing is left to forge.
- Answers are reduced to plain values (:func:`course.checks.values.plain`) before they are compared.
- Under grading, the recorder and the tamper check (see :mod:`course.grading.sidechannel`) are handed
  to the guard once, at arm time, and held in a closure: replacing a module global cannot reach them.
  Before and after each check the guard asks whether any course module (or numpy, torch, math,
  builtins) was patched since; if so the check prints a FAIL line and is recorded as tampered. While
  the student's function runs, the check module's ``reference_*`` functions refuse to run.
- A check called from inside another check (from the student's function) is refused, and the outer
  check is recorded as tampered.

The limit: code running in the same process can, with enough introspection (closures, frames, the
garbage collector, threads), still reach the guard's private state. The grader's static scan
(:mod:`course.grading.tamper`) names the usual ways in; for hostile classes, isolate each submission.

Lesson: 00_welcome
"""
from __future__ import annotations

import builtins
import contextlib
import copy
import difflib
import html
import io
import signal
import threading
import types
import warnings
from typing import Callable

from .cells import kernel_shell
from .values import CheckFailure, plain, same, short

__all__ = ["run_cases", "call_once", "RemoteCall", "RemoteFailure", "time_limit", "pass_line", "DEFAULT_TIME_LIMIT",
           "NOT_IMPLEMENTED", "show_line"]

DEFAULT_TIME_LIMIT = 10.0   # seconds per case
NOT_IMPLEMENTED = "not implemented yet"     # what a FAIL line says of a stub (the grader's "not attempted")
_SINK_LIMIT = 100_000       # characters of a student's own prints kept while a case runs (then dropped)


class _TimeUp(BaseException):
    """Raised by the alarm in student code; BaseException so a bare ``except Exception`` cannot swallow it."""



def pass_line(name: str) -> str:
    """The exact line a passing check prints (used by nbval, the build and the grader)."""
    return f"PASS {name}: all cases correct."


@contextlib.contextmanager
def time_limit(seconds: float | None, repeat: float = 0.5):
    """Interrupt the block after ``seconds`` (Unix main thread only; elsewhere no limit).

    The interrupt repeats every ``repeat`` seconds until the block ends, so student code that
    swallows one interrupt with a bare ``except:`` is interrupted again.
    """
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not use_alarm or seconds is None:
        yield
        return
    state = {"inside": True}

    def _raise(signum, frame):
        if state["inside"]:
            raise _TimeUp()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds, repeat)
    try:
        try:
            yield
        finally:
            state["inside"] = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _CappedSink(io.StringIO):
    """A text sink that keeps the first ``limit`` characters and drops the rest."""

    def __init__(self, limit: int = _SINK_LIMIT):
        super().__init__()
        self._left = limit

    def write(self, s) -> int:
        s = str(s)
        if self._left > 0:
            super().write(s[: self._left])
            self._left -= len(s)
        return len(s)


class RemoteFailure(Exception):
    """Raised by a remote call (the grader's judge, :mod:`course.grading.judge`) when the student's
    function failed in its job: ``what`` is the FAIL text the job's own :func:`call_once` produced."""

    def __init__(self, what: str, about_the_exercise: bool = True):
        super().__init__(what)
        self.what = what
        self.about_the_exercise = about_the_exercise


class RemoteCall:
    """Base of the judge's stand-in for a student's function that runs in another process.

    After each call, :attr:`inputs_changed` says whether the function changed its inputs there
    (the copies here never are)."""

    inputs_changed = False


def call_once(func, args: tuple, kwargs: dict, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT,
              blocked: dict | None = None, keep: list | None = None):
    """The *call* step for one case: ``(got, None)``, or ``(None, (what, about_the_exercise))`` when the
    student's function failed (an exception, a time-out, an interrupt), with its prints swallowed.

    ``args`` and ``kwargs`` are handed over as they are (the caller copies them). ``blocked``: the
    reference functions that refuse to run meanwhile. Objects to keep alive go into ``keep``.
    """
    keep = [] if keep is None else keep
    sink = _CappedSink()
    try:
        try:
            if issubclass(type(func), RemoteCall):
                # the judge's stand-in prints nothing here; redirecting this process's stdout from one of
                # the grader's threads would race with the others
                got = func(*args, **kwargs)
                return got, None
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                    warnings.catch_warnings(), _references_blocked(blocked or {}), time_limit(time_limit_s):
                warnings.simplefilter("ignore")
                got = func(*args, **kwargs)
                keep.append(got)
            return got, None
        except RemoteFailure as e:
            return None, (e.what, e.about_the_exercise)
        except _TimeUp:
            return None, (f"your function took longer than {time_limit_s:g} s (an infinite loop?)", True)
        except KeyboardInterrupt:
            return None, ("interrupted while your function was running (too slow, or a loop that never ends?)", True)
        except NotImplementedError:
            return None, (f"{NOT_IMPLEMENTED} (replace the `raise NotImplementedError()` line with your code)", True)
        except RecursionError:
            return None, ("your function recursed too deeply", True)
        except MemoryError:
            return None, ("your function ran out of memory", True)
        except SystemExit:
            return None, ("your function called exit(); return a value instead", True)
        except (NameError, ImportError, SyntaxError) as e:      # a typo, a missing module: not the exercise
            keep.append(e)
            return None, (_not_about_the_exercise(e), False)
        except Exception as e:  # the student's bug, reported as one line
            keep.append(e)
            return None, (f"your function raised {type(e).__name__}: {_one_line(e, 120)}", True)
    except _TimeUp:  # an interrupt that arrived between two steps above
        return None, (f"your function took longer than {time_limit_s:g} s (an infinite loop?)", True)


def run_cases(name: str, func, cases, *, compare: Callable, hint: str = "", namespace: dict | None = None,
              time_limit_s: float = DEFAULT_TIME_LIMIT, check_inputs_unchanged: bool = True,
              print_line: bool = True, on_line: Callable | None = None) -> bool:
    """Run ``func`` on every case; print one PASS or FAIL line; return whether all passed.

    The student's prints are swallowed so the check's output stays one line. Exceptions,
    timeouts, interrupts, wrong types and wrong values all become a FAIL line with ``hint``.
    Each result is reduced with :func:`plain` and then judged by ``compare(got, *case.args,
    **case.kwargs)`` (or the case's own ``compare``), which raises :class:`CheckFailure` when it is
    wrong. The line is also reported to
    the guard of the check that is running (see the module docstring), together with the student's
    results, which stay alive until the guard has recorded the line. ``on_line`` (the judge's) is
    handed the line instead of printing it when ``print_line`` is false.

    ``func`` may be a :class:`RemoteCall` (the judge's): the same cases and comparisons then judge
    a function that runs in a job process, and only the call step happens there.

    Under grading, the ``reference_*`` functions in ``namespace`` (the check module's globals) refuse
    to run while ``func`` runs (they work again for ``compare``): a check must not call them from
    inside what it passes here as ``func``.
    """
    keep: list = []                 # the student's results and errors: freed after the guard is done
    blocked = _blocked_references(namespace or {}) if _armed() else {}
    remote = issubclass(type(func), RemoteCall)

    def finish(line: str, ok: bool) -> bool:
        if print_line:
            print(line)
            _report(line, keep)
        if on_line is not None:
            on_line(line)
        return ok

    def fail(case_name: str, what: str, about_the_exercise: bool = True) -> bool:
        h = f" Hint: {hint}" if hint and about_the_exercise else ""
        return finish(f"FAIL {name}: case '{case_name}': {what.rstrip('. ')}.{h}", False)

    if not callable(func):
        return fail("setup", f"expected a function, got {short(func)}")
    for case in cases:
        try:
            args = copy.deepcopy(case.args)
            kwargs = copy.deepcopy(case.kwargs)
            keep.append((args, kwargs))
            got, failure = call_once(func, args, kwargs, time_limit_s=time_limit_s, blocked=blocked, keep=keep)
            if failure is not None:
                return fail(case.name, *failure)
            try:
                with (contextlib.nullcontext() if remote else warnings.catch_warnings()), time_limit(time_limit_s):
                    if not remote:          # (the judge's threads leave the warning filters alone: not thread-safe)
                        warnings.simplefilter("ignore")
                    changed = remote and func.inputs_changed
                    if check_inputs_unchanged and (changed or not all(same(a, b) for a, b in zip(args, case.args))):
                        raise CheckFailure("your function changed its input; work on a copy instead")
                    got = plain(got)
                    keep.append(got)
                    (case.compare or compare)(got, *case.args, **case.kwargs)
            except CheckFailure as e:
                return fail(case.name, str(e))
            except _TimeUp:
                return fail(case.name, "checking your result took too long")
            except Exception as e:  # a result so odd that comparing it failed
                keep.append(e)
                return fail(case.name, f"your result could not be checked ({type(e).__name__}: {_one_line(e, 80)})")
        except _TimeUp:  # an interrupt that arrived between two steps above
            return fail(case.name, f"your function took longer than {time_limit_s:g} s (an infinite loop?)")
    return finish(pass_line(name), True)


def _not_about_the_exercise(e: BaseException) -> str:
    """What went wrong, for a NameError (with the name it was probably meant to be), ImportError or SyntaxError."""
    missing = getattr(e, "name", None)
    if type(e) is NameError and type(missing) is str:
        close = difflib.get_close_matches(missing, _names_in_reach(e), n=1, cutoff=0.75)
        why = f"did you mean {close[0]!r}?" if close else "a typo, or a cell above that has not been run?"
        return f"your function uses the name {missing!r}, which is not defined ({why})"
    return f"your function raised {type(e).__name__}: {_one_line(e, 120)}"


def _names_in_reach(e: BaseException) -> list[str]:
    """The names the code that raised ``e`` could have meant: its locals, its globals, the builtins."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    names = set(dir(builtins))
    if tb is not None:
        frame = tb.tb_frame
        names.update(n for n in frame.f_code.co_varnames if type(n) is str)
        names.update(k for k in dict.keys(frame.f_globals) if type(k) is str)
    return sorted(names)


def show_line(line: str) -> None:
    """Print a check's one line. In a notebook a FAIL line goes out with an HTML twin that wraps between words."""
    shell = kernel_shell() if line.startswith("FAIL ") else None
    if shell is not None:
        try:
            shell.display_pub.publish(data={"text/plain": line, "text/html": (
                '<pre style="white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; margin: 0; '
                f'padding: 0; background: none">{html.escape(line)}</pre>')}, metadata={})
            return
        except Exception:  # noqa: BLE001 - a display the notebook broke: plain text still works
            pass
    print(line)


def _one_line(e: BaseException, limit: int) -> str:
    try:
        text = " ".join(str(e).split())
    except Exception:
        text = ""
    return text[:limit]


# ------------------------------------------------------------------------------------ references
def _reference_refused(*args, **kwargs):
    raise RuntimeError("the course's reference implementation is not available to the code being checked")


def _blocked_references(namespace: dict) -> dict:
    """The check module's ``reference_*`` functions that can be switched off while a student's function runs."""
    out = {}
    for key, value in list(namespace.items()):
        if (type(key) is str and key.startswith("reference_") and type(value) is types.FunctionType
                and not value.__code__.co_freevars):
            out[value] = value.__code__
    return out


@contextlib.contextmanager
def _references_blocked(blocked: dict):
    """While the student's function runs (under grading), the reference implementations refuse to run.

    The function objects stay the same (a student who kept a reference to one gets the refusal too);
    only their code is swapped, and put back before the result is checked.
    """
    refused = _reference_refused.__code__
    for fn in blocked:
        fn.__code__ = refused
    try:
        yield
    finally:
        for fn, code in blocked.items():
            fn.__code__ = code


# ------------------------------------------------------------------------------------ the guard
class _Box:
    """What one running check collects: the lines run_cases reported, the student's objects to
    keep alive until the line is recorded, and whether something was tampered with meanwhile."""

    __slots__ = ("lines", "keep", "tampered")

    def __init__(self):
        self.lines: list[str] = []
        self.keep: list = []
        self.tampered: str | None = None


def _make_guard():
    """The guard and its private state, shared only through this closure (see the module docstring)."""
    hooks: list = []        # [(record, verify)], installed once, at arm time, by the side channel
    running: list = []      # the boxes of the checks running now (one, unless a check is nested)
    getvalue = io.StringIO.getvalue          # the real one, whatever is set on the sink
    show = show_line                         # bound now: rebinding the module global changes nothing

    def install(record: Callable, verify: Callable) -> bool:
        """Hand the guard the grader's recorder and tamper check; only the first call counts."""
        if hooks:
            return False
        hooks.append((record, verify))
        return True

    def armed() -> bool:
        return bool(hooks)

    def report(line: str, keep: list) -> None:
        if running:
            box = running[-1]
            box.lines.append(line)
            box.keep.append(keep)

    def verify_now(verify) -> str | None:
        if verify is None:
            return None
        try:
            return verify()
        except BaseException as e:  # noqa: BLE001 - whatever went wrong, the check cannot be trusted
            return f"the checking environment could not be verified ({type(e).__name__})"

    def decide(name: str, box: _Box, out: io.StringIO) -> str:
        lines = [ln.strip() for ln in box.lines if ln.strip()]
        printed = [ln.strip() for ln in getvalue(out).splitlines() if ln.strip()]
        printed_fails = [ln for ln in printed if ln.startswith(f"FAIL {name}:")]
        if len(lines) == 1:
            line = lines[0]
            if line.startswith("PASS ") and printed_fails:
                line = printed_fails[0]
        elif lines:
            fails = [ln for ln in lines if ln.startswith("FAIL ")]
            line = fails[0] if fails else f"FAIL {name}: the check reported more than one result."
        elif printed_fails:            # a check that prints its own FAIL line (e.g. a setup problem)
            line = printed_fails[0]
        elif printed:
            line = f"FAIL {name}: the check printed no result line (a bug in the check; please report it)."
        else:
            line = f"FAIL {name}: the check printed nothing (a bug in the check; please report it)."
        return line

    def guarded(name: str, fn: Callable, args: tuple, kwargs: dict) -> None:
        """Run check ``fn`` for exercise ``name`` and print exactly one line, whatever happens."""
        if running:                    # called from the code being checked
            outer = running[-1]
            outer.tampered = outer.tampered or (f"check.{name} was called while another check was running "
                                                "(from the code being checked)")
            print(f"FAIL {name}: a check cannot be run from inside another check.")
            return
        record, verify = hooks[0] if hooks else (None, None)
        box = _Box()
        try:
            problem = verify_now(verify)
            line = None
            if problem is None:
                out = _CappedSink(20_000)
                running.append(box)
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                            warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fn(*args, **kwargs)
                    line = decide(name, box, out)
                except (_TimeUp, KeyboardInterrupt):
                    line = (f"FAIL {name}: interrupted before the check finished "
                            "(too slow, or a loop that never ends?).")
                except TypeError as e:
                    line = (f"FAIL {name}: could not run the check ({_one_line(e, 100)}). "
                            f"Hint: pass your function itself, e.g. check.{name}({name}).")
                except BaseException as e:  # SystemExit, MemoryError, a bug in the check: still one line
                    line = f"FAIL {name}: the check stopped with {type(e).__name__}: {_one_line(e, 100)}."
                finally:
                    if running and running[-1] is box:
                        running.pop()
                    else:
                        running.clear()
                        box.tampered = box.tampered or "the check's own state was changed while it ran"
                problem = box.tampered or verify_now(verify)
            if problem is not None:
                line = (f"FAIL {name}: the check was interfered with ({problem[:300]}), so it cannot be "
                        "trusted. Restart the kernel and run the notebook without changing the course's code.")
            line = str(line).replace("\n", " ").replace("\r", " ")
            try:
                show(line)
            except Exception:  # a stdout the notebook broke: the record still counts
                pass
            if record is not None:
                try:
                    record(name, line, problem)
                except Exception:
                    pass
        finally:
            box.keep.clear()           # only now may the student's results be freed (and their __del__ run)

    return install, armed, report, guarded


_install_hooks, _armed, _report, _guarded = _make_guard()
