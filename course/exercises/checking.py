"""The exercise-check protocol: run a student's function on cases and print ONE line.

A check never raises and never prints the expected answer wholesale. It prints either

    PASS <exercise>: all <n> cases correct.

or

    FAIL <exercise>: case '<case>': <what was wrong>. Hint: <hint>

Cases come in two kinds: fixed cases (always the same) and random cases drawn from
a generator seeded by :func:`case_seed`, which is fixed in a notebook and different
under grading, so hard-coding the answers a student saw does not pass.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Case", "Exercise", "exercise", "run_cases", "pass_line", "case_seed", "rng", "CheckFailure",
           "compare_values", "EXERCISES", "time_limit", "GRADING_SEED_ENV"]

GRADING_SEED_ENV = "COURSE_GRADING_SEED"
DEFAULT_TIME_LIMIT = 10.0   # seconds per case


class CheckFailure(Exception):
    """Raised inside a comparison to describe a wrong answer (caught, never shown as a traceback)."""


class _TimeUp(BaseException):
    """Raised by the alarm in student code; BaseException so a bare ``except Exception`` cannot swallow it."""


@dataclass
class Case:
    """One test case: call the student's function with ``args``/``kwargs`` and compare with ``expected``.

    Attributes:
        name: short label shown in the fail line ("C major scale", "random #3").
        args, kwargs: the inputs (deep-copied before each call, so a student cannot change them).
        expected: the right answer, compared with ``compare`` (default :func:`compare_values`).
        validate: instead of ``expected``, a function ``validate(got, *args, **kwargs)`` that raises
            :class:`CheckFailure` with a message when ``got`` is wrong.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = None
    validate: Callable | None = None


@dataclass
class Exercise:
    """A registered exercise: its lesson, name, points and check function."""

    lesson: str
    name: str
    points: int
    func: Callable


EXERCISES: dict[str, Exercise] = {}


def exercise(lesson: str, name: str | None = None, points: int = 1):
    """Decorator registering a check function as exercise ``name`` of ``lesson``.

    The check function takes the student's object and returns nothing (it prints one line).
    """
    def deco(fn):
        ex_name = name or fn.__name__
        fn.exercise_name = ex_name
        fn.lesson = lesson
        EXERCISES[ex_name] = Exercise(lesson, ex_name, points, fn)
        return fn
    return deco


def pass_line(name: str, n_cases: int | None = None) -> str:
    """The exact line a passing check prints (used by nbval, the build and the grader)."""
    return f"PASS {name}: all cases correct."


def case_seed(exercise_name: str) -> int:
    """Seed for an exercise's random cases: fixed in notebooks, different under grading."""
    base = os.environ.get(GRADING_SEED_ENV, "")
    text = f"{exercise_name}:{base}"
    h = 0
    for ch in text.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


def rng(exercise_name: str) -> np.random.Generator:
    """A NumPy generator seeded by :func:`case_seed`."""
    return np.random.default_rng(case_seed(exercise_name))


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds`` (Unix main thread only; elsewhere no limit)."""
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not use_alarm or seconds is None:
        yield
        return

    def _raise(signum, frame):
        raise _TimeUp()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _short(x, limit: int = 60) -> str:
    """A short description of a value for fail lines: never a whole array."""
    if hasattr(x, "detach"):
        return f"a torch tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} (dtype {x.dtype})"
    r = repr(x)
    if len(r) > limit:
        r = r[: limit - 3] + "..."
    return r


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def compare_values(got, expected, *, rtol: float = 1e-5, atol: float = 1e-6, where: str = "") -> None:
    """Raise :class:`CheckFailure` describing the first difference between ``got`` and ``expected``.

    Handles numbers, arrays and tensors (shape, then values with tolerance), sequences and dicts
    (length, then element by element), and anything else by ``==``. Messages show one differing
    element, never the whole expected answer.
    """
    w = f" {where}" if where else ""
    if got is None and expected is not None:
        raise CheckFailure(f"your function returned None{w}; did you forget `return`?")
    is_arr = lambda v: isinstance(v, np.ndarray) or hasattr(v, "detach")
    if is_arr(expected) or isinstance(expected, (float, np.floating)):
        if isinstance(got, (list, tuple)) and is_arr(expected):
            raise CheckFailure(f"expected an array/tensor{w}, got a {type(got).__name__}")
        try:
            g = _to_numpy(got).astype(np.float64)
        except (TypeError, ValueError):
            raise CheckFailure(f"expected a number or array{w}, got {_short(got)}") from None
        e = _to_numpy(expected).astype(np.float64)
        if g.shape != e.shape:
            raise CheckFailure(f"wrong shape{w}: expected {e.shape}, got {g.shape}")
        if np.isnan(g).any() and not np.isnan(e).any():
            raise CheckFailure(f"your result{w} contains NaN")
        bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            loc = f" at index {idx}" if g.ndim else ""
            raise CheckFailure(f"wrong value{w}{loc}: expected {e[idx]:.6g}, got {g[idx]:.6g} "
                               f"({int(bad.sum())} of {bad.size} entries differ)")
        return
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)) or bool(got) != bool(expected):
            raise CheckFailure(f"expected {expected}{w}, got {_short(got)}")
        return
    if isinstance(expected, (int, np.integer)):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer, float, np.floating)):
            raise CheckFailure(f"expected a whole number{w}, got {_short(got)}")
        if got != expected:
            raise CheckFailure(f"wrong value{w}: expected {int(expected)}, got {_short(got)}")
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise CheckFailure(f"expected a dict{w}, got {type(got).__name__}")
        missing = [k for k in expected if k not in got]
        if missing:
            raise CheckFailure(f"missing key {missing[0]!r}{w}")
        for k in expected:
            compare_values(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]".strip())
        return
    if isinstance(expected, (list, tuple)) and not hasattr(expected, "_fields"):
        if not isinstance(got, (list, tuple)) and not is_arr(got):
            raise CheckFailure(f"expected a {type(expected).__name__}{w}, got {type(got).__name__}")
        if len(got) != len(expected):
            raise CheckFailure(f"wrong length{w}: expected {len(expected)} items, got {len(got)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            compare_values(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]".strip())
        return
    if got != expected:
        raise CheckFailure(f"wrong result{w}: expected {_short(expected)}, got {_short(got)}")


def _same(a, b) -> bool:
    """Whether two inputs are still equal (to detect a function that changed its input)."""
    try:
        compare_values(a, b, rtol=0, atol=0)
        return True
    except CheckFailure:
        return False
    except Exception:
        return True


def run_cases(name: str, func, cases, *, hint: str = "", compare: Callable | None = None,
              time_limit_s: float = DEFAULT_TIME_LIMIT, check_inputs_unchanged: bool = True,
              print_line: bool = True) -> bool:
    """Run ``func`` on every case; print one PASS or FAIL line; return whether all passed.

    The student's prints are swallowed so the check's output stays one line. Exceptions,
    timeouts, wrong types and wrong values all become a FAIL line with ``hint``.
    """
    def fail(case_name: str, what: str) -> bool:
        h = f" Hint: {hint}" if hint else ""
        if print_line:
            print(f"FAIL {name}: case '{case_name}': {what}.{h}")
        return False

    if not callable(func):
        return fail("setup", f"expected a function, got {_short(func)}")
    compare = compare or compare_values
    for case in cases:
        args = copy.deepcopy(case.args)
        kwargs = copy.deepcopy(case.kwargs)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), time_limit(time_limit_s):
                got = func(*args, **kwargs)
        except _TimeUp:
            return fail(case.name, f"your function took longer than {time_limit_s:g} s (an infinite loop?)")
        except NotImplementedError:
            return fail(case.name, "not implemented yet (replace the `raise NotImplementedError()` line with your code)")
        except RecursionError:
            return fail(case.name, "your function recursed too deeply")
        except MemoryError:
            return fail(case.name, "your function ran out of memory")
        except Exception as e:  # the student's bug, reported as one line
            return fail(case.name, f"your function raised {type(e).__name__}: {str(e)[:120]}")
        try:
            if check_inputs_unchanged and not all(_same(a, b) for a, b in zip(args, case.args)):
                raise CheckFailure("your function changed its input; work on a copy instead")
            if case.validate is not None:
                case.validate(got, *case.args, **case.kwargs)
            else:
                compare(got, case.expected)
        except CheckFailure as e:
            return fail(case.name, str(e))
        except _TimeUp:
            return fail(case.name, "checking your result took too long")
        except Exception as e:  # a result so odd that comparing it failed
            return fail(case.name, f"your result could not be checked ({type(e).__name__}: {str(e)[:80]})")
    if print_line:
        print(pass_line(name))
    return True
