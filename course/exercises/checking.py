"""The exercise-check protocol: run a student's function on cases and print ONE line.

A check never raises and never prints the expected answer wholesale. It prints either

    PASS <exercise>: all cases correct.

or

    FAIL <exercise>: case '<case>': <what was wrong>. Hint: <hint>

Cases come in two kinds: fixed cases (always the same) and random cases drawn from
a generator seeded by :func:`case_seed`, which is fixed in a notebook and different
under grading, so hard-coding the answers a student saw does not pass.

Every check registered with :func:`exercise` runs inside a guard: whatever the check or the
student's code does (raise, print, loop, exit), the check cell shows exactly one line. Under
grading the guard also reports each result to the grader through a side channel (see
:mod:`course.exercises.sidechannel`), so a check cell whose output was printed by anything but
the real check does not count.

How the guard stays honest while the student's code runs in the same process:

- The line comes from what :func:`run_cases` *reports* to the running guard (a private box), not
  from parsing what was printed; captured text is only used for FAIL lines of checks that print
  one themselves, and is read with ``io.StringIO.getvalue`` (never a method the student could patch).
- The student's results (and anything they raised) are kept alive until the guard has printed and
  recorded its line, so a finalizer (``__del__``) in a result runs only when nothing is left to forge.
- Answers are reduced to plain values (:func:`plain`: exact ``int``/``float``/``str``, lists, tuples,
  dicts, NumPy and torch base types, the course's own named tuples and dataclasses) before they are
  compared, so an ``int`` subclass whose ``__eq__`` always says True compares as the number it holds.
- Under grading, the recorder and the tamper check (see :mod:`.sidechannel`) are handed to the guard
  once, at arm time, and held in a closure: replacing a module global cannot reach them. Before and
  after each check the guard asks whether any course module (or numpy, torch, math, builtins) was
  patched since; if so the check prints a FAIL line and is recorded as tampered. While the
  student's function runs, the check module's ``reference_*`` functions refuse to run.
- A check called from inside another check (from the student's function) is refused, and the outer
  check is recorded as tampered.

The limit: code running in the same process can, with enough introspection (closures, frames, the
garbage collector, threads), still reach the guard's private state. The grader's static scan
(:mod:`.tamper`) names the usual ways in; for hostile classes, isolate each submission.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import io
import os
import signal
import sys
import threading
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Case", "Exercise", "exercise", "run_cases", "pass_line", "case_seed", "rng", "CheckFailure",
           "compare_values", "plain", "EXERCISES", "time_limit", "GRADING_SEED_ENV"]

GRADING_SEED_ENV = "COURSE_GRADING_SEED"
DEFAULT_TIME_LIMIT = 10.0   # seconds per case
_SINK_LIMIT = 100_000       # characters of a student's own prints kept while a case runs (then dropped)


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
    The registered function is a guard around it: it always prints exactly one line, never
    raises, and under grading reports the line to the grader.
    """
    def deco(fn):
        ex_name = name or fn.__name__
        old = EXERCISES.get(ex_name)
        if old is not None and old.lesson != lesson:
            raise ValueError(f"Exercise name {ex_name!r} is used by lessons {old.lesson} and {lesson}; "
                             "exercise names must be unique across the course.")

        guard = _guarded          # bound now: rebinding the module's _guarded later changes nothing

        @functools.wraps(fn)
        def check(*args, **kwargs) -> None:
            guard(ex_name, fn, args, kwargs)

        check.exercise_name = ex_name
        check.lesson = lesson
        check.unguarded = fn
        EXERCISES[ex_name] = Exercise(lesson, ex_name, points, check)
        return check
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


def _short(x, limit: int = 60) -> str:
    """A short description of a value for fail lines: never a whole array."""
    if hasattr(x, "detach") and hasattr(x, "shape"):
        return f"a torch tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} (dtype {x.dtype})"
    try:
        r = repr(x)
    except Exception:  # a student's object whose repr is broken
        r = f"a {type(x).__name__}"
    if len(r) > limit:
        r = r[: limit - 3] + "..."
    return r


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------------------ plain values
_ATOMS = (type(None), bool, int, float, complex, str, bytes)
_TRUSTED_ROOTS = ("course", "numpy", "torch")
_MAX_DEPTH = 60
_IN_PROGRESS = object()
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_trusted_cache: dict[type, bool] = {}


def _trusted_type(t: type) -> bool:
    """Whether ``t`` is a type of the course, NumPy or torch (so its methods are not the student's).

    A class can claim any ``__module__``; it counts only if that module really holds it under its name.
    """
    known = _trusted_cache.get(t)
    if known is not None:
        return known
    ok = False
    try:
        mod, qual = _type_module(t), _type_qualname(t)
        if isinstance(mod, str) and isinstance(qual, str) and mod.split(".")[0] in _TRUSTED_ROOTS:
            obj = sys.modules.get(mod)
            for part in qual.split("."):
                obj = getattr(obj, part, None)
            ok = obj is t
    except Exception:
        ok = False
    if len(_trusted_cache) < 10_000:
        _trusted_cache[t] = ok
    return ok


def plain(x, _depth: int = 0, _memo: dict | None = None):
    """``x`` reduced to plain values, so comparing it runs no code the student wrote.

    Subclasses of ``int``, ``float``, ``complex``, ``str`` and ``bytes`` become the exact built-in
    value they hold (read with the base type's own methods, never the subclass's); lists, tuples and
    dicts (and subclasses) are rebuilt from their real contents; NumPy scalar and array subclasses
    become the NumPy base type, torch tensor subclasses plain tensors; the course's own named
    tuples and dataclasses are rebuilt with plain fields. Anything else (a model, a student's own
    class) is returned unchanged; the checks look at those through their own code. An answer
    that needed no change is returned as the same object. Types are read with ``type(x)``, which
    a student's class cannot fake (``isinstance`` believes a faked ``__class__``).
    """
    t = type(x)
    if t in _ATOMS:
        return x
    if _depth > _MAX_DEPTH:
        raise CheckFailure("your result is nested too deeply to check")
    memo = {} if _memo is None else _memo
    key = id(x)
    seen = memo.get(key)
    if seen is not None:
        if seen[1] is _IN_PROGRESS:
            raise CheckFailure("your result contains itself (a cycle)")
        return seen[1]
    memo[key] = (x, _IN_PROGRESS)     # x stays referenced, so its id is not reused meanwhile
    out = _plain(x, t, _depth + 1, memo)
    memo[key] = (x, out)
    return out


def _plain(x, t, depth, memo):
    def sub(v):
        return plain(v, depth, memo)

    if issubclass(t, int):            # bool cannot be subclassed; an int subclass holds a plain int
        return int.__int__(x)
    if issubclass(t, float):
        return float.__float__(x)
    if issubclass(t, complex):
        return complex(complex.real.__get__(x), complex.imag.__get__(x))
    if issubclass(t, str):
        return str.__str__(x)
    if issubclass(t, bytes):
        return bytes(memoryview(x))
    if issubclass(t, np.generic):
        if _trusted_type(t):
            return x
        base = next((b for b in t.__mro__ if issubclass(b, np.generic) and _trusted_type(b)), None)
        try:
            value = np.generic.item(x)
            return base(value) if base is not None else value
        except Exception:
            raise CheckFailure(f"your result holds a {t.__name__} that could not be read as a number") from None
    if issubclass(t, np.ndarray):
        arr = x if t is np.ndarray else np.ndarray.view(x, np.ndarray)
        if arr.dtype == object:
            items = np.ndarray.ravel(arr).tolist()
            flat = [sub(v) for v in items]
            if any(a is not b for a, b in zip(flat, items)):
                new = np.empty(len(flat), dtype=object)
                for i, v in enumerate(flat):
                    new[i] = v
                return new.reshape(arr.shape)
        return arr
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(t, torch.Tensor):
        if _trusted_type(t):
            return x
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor.as_subclass(x, torch.Tensor)
    if issubclass(t, tuple):
        items = list(tuple.__iter__(x))
        new = [sub(v) for v in items]
        unchanged = all(a is b for a, b in zip(new, items))
        if t is tuple:
            return x if unchanged else tuple(new)
        if _trusted_type(t):
            if hasattr(t, "_fields"):          # the course's named tuple (a Note): plain fields
                return x if unchanged else tuple.__new__(t, new)
            return x                           # e.g. torch.Size
        return tuple(new)
    if issubclass(t, list):
        items = list(list.__iter__(x))
        new = [sub(v) for v in items]
        if t is list and all(a is b for a, b in zip(new, items)):
            return x
        return new
    if issubclass(t, dict):
        items = list(dict.items(x))
        new = [(sub(k), sub(v)) for k, v in items]
        if t is dict and all(a is k and b is v for (a, b), (k, v) in zip(new, items)):
            return x
        return dict(new)
    if _trusted_type(t) and dataclasses.is_dataclass(t):
        names = [f.name for f in dataclasses.fields(t)]
        values = {n: object.__getattribute__(x, n) for n in names}
        new = {n: sub(v) for n, v in values.items()}
        if all(new[n] is values[n] for n in names):
            return x
        out = object.__new__(t)
        for n in names:
            object.__setattr__(out, n, new[n])
        return out
    return x


def compare_values(got, expected, *, rtol: float = 1e-5, atol: float = 1e-6, where: str = "") -> None:
    """Raise :class:`CheckFailure` describing the first difference between ``got`` and ``expected``.

    Handles numbers, arrays and tensors (shape, then values with tolerance), sequences and dicts
    (length, then element by element), and anything else by ``==`` after checking the type
    (so an object that claims to equal everything does not pass). Messages show one differing
    element, never the whole expected answer.
    """
    w = f" {where}" if where else ""
    got = plain(got)            # never ask the student's objects whether they are equal
    tg = type(got)              # the real type (``isinstance`` would trust a faked __class__)
    if got is None and expected is not None:
        raise CheckFailure(f"your function returned None{w}; did you forget `return`?")
    if _is_array_type(type(expected)) or isinstance(expected, (float, np.floating)):
        if issubclass(tg, (list, tuple)) and _is_array_type(type(expected)):
            raise CheckFailure(f"expected an array/tensor{w}, got a {tg.__name__}")
        if not (_is_array_type(tg) or issubclass(tg, (int, float, complex, np.number, np.bool_, list, tuple))):
            raise CheckFailure(f"expected a number or array{w}, got {_short(got)}")
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
        if not issubclass(tg, (bool, np.bool_)) or bool(got) != bool(expected):
            raise CheckFailure(f"expected {expected}{w}, got {_short(got)}")
        return
    if isinstance(expected, (int, np.integer)):
        if issubclass(tg, (bool, np.bool_)) or not issubclass(tg, (int, np.integer, float, np.floating)):
            raise CheckFailure(f"expected a whole number{w}, got {_short(got)}")
        if got != expected:
            raise CheckFailure(f"wrong value{w}: expected {int(expected)}, got {_short(got)}")
        return
    if isinstance(expected, dict):
        if tg is not dict:
            raise CheckFailure(f"expected a dict{w}, got {tg.__name__}")
        missing = [k for k in expected if k not in got]
        if missing:
            raise CheckFailure(f"missing key {missing[0]!r}{w}")
        for k in expected:
            compare_values(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]".strip())
        return
    if isinstance(expected, (list, tuple)) and not hasattr(expected, "_fields"):
        if not issubclass(tg, (list, tuple)) and not _is_array_type(tg):
            raise CheckFailure(f"expected a {type(expected).__name__}{w}, got {tg.__name__}")
        if len(got) != len(expected):
            raise CheckFailure(f"wrong length{w}: expected {len(expected)} items, got {len(got)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            compare_values(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]".strip())
        return
    if isinstance(expected, tuple) and issubclass(tg, tuple):   # a named tuple (a Note) against a tuple
        compare_values(tuple(tuple.__iter__(got)), tuple(expected), rtol=rtol, atol=atol, where=where)
        return
    if tg is not type(expected) and not (type(expected) is str and tg is str):
        raise CheckFailure(f"expected a {type(expected).__name__}{w}, got a {tg.__name__}")
    if not bool(expected == got):
        raise CheckFailure(f"wrong result{w}: expected {_short(expected)}, got {_short(got)}")


def _is_array_type(t: type) -> bool:
    """A NumPy array or a torch tensor type (by the real type, not by duck typing)."""
    if issubclass(t, np.ndarray):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and issubclass(t, torch.Tensor)


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
    timeouts, interrupts, wrong types and wrong values all become a FAIL line with ``hint``.
    Each result is reduced with :func:`plain` before it is compared. The line is also reported to
    the guard of the check that is running (see the module docstring), together with the student's
    results, which stay alive until the guard has recorded the line.

    Under grading, the ``reference_*`` functions of the calling check module refuse to run while
    ``func`` runs (they work again for ``validate``/``compare``): a check must not call them from
    inside what it passes here as ``func``.
    """
    keep: list = []                 # the student's results and errors: freed after the guard is done
    blocked = _blocked_references(sys._getframe(1).f_globals) if _armed() else {}

    def finish(line: str, ok: bool) -> bool:
        if print_line:
            print(line)
            _report(line, keep)
        return ok

    def fail(case_name: str, what: str) -> bool:
        h = f" Hint: {hint}" if hint else ""
        return finish(f"FAIL {name}: case '{case_name}': {what.rstrip('. ')}.{h}", False)

    if not callable(func):
        return fail("setup", f"expected a function, got {_short(func)}")
    compare = compare or compare_values
    for case in cases:
        try:
            args = copy.deepcopy(case.args)
            kwargs = copy.deepcopy(case.kwargs)
            keep.append((args, kwargs))
            sink = _CappedSink()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                        warnings.catch_warnings(), _references_blocked(blocked), time_limit(time_limit_s):
                    warnings.simplefilter("ignore")
                    got = func(*args, **kwargs)
                    keep.append(got)
            except _TimeUp:
                return fail(case.name, f"your function took longer than {time_limit_s:g} s (an infinite loop?)")
            except KeyboardInterrupt:
                return fail(case.name, "interrupted while your function was running (too slow, or a loop that never ends?)")
            except NotImplementedError:
                return fail(case.name, "not implemented yet (replace the `raise NotImplementedError()` line with your code)")
            except RecursionError:
                return fail(case.name, "your function recursed too deeply")
            except MemoryError:
                return fail(case.name, "your function ran out of memory")
            except SystemExit:
                return fail(case.name, "your function called exit(); return a value instead")
            except Exception as e:  # the student's bug, reported as one line
                keep.append(e)
                return fail(case.name, f"your function raised {type(e).__name__}: {_one_line(e, 120)}")
            try:
                with warnings.catch_warnings(), time_limit(time_limit_s):
                    warnings.simplefilter("ignore")
                    if check_inputs_unchanged and not all(_same(a, b) for a, b in zip(args, case.args)):
                        raise CheckFailure("your function changed its input; work on a copy instead")
                    got = plain(got)
                    keep.append(got)
                    if case.validate is not None:
                        case.validate(got, *case.args, **case.kwargs)
                    else:
                        compare(got, case.expected)
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
                print(line)
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
