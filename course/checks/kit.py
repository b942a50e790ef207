"""The check kit: an exercise's check is one decorated function that builds its cases.

A lesson's check module (``course/checks/lesson_NN.py``) sets ``LESSON = "NN_topic"`` and writes,
per exercise::

    @exercise(compare=against(rnn_step, mistakes={_rnn_sigmoid: "that is what the logistic sigmoid gives"},
                              rtol=1e-4, atol=1e-5),
              hint="weights are stored (out, in) ...")
    def rnn_cell_step(r):
        \"\"\"Check ``rnn_cell_step(x, h, W_xh, W_hh, b) -> h_new`` (B, H).\"\"\"
        cases = [Case("one sequence, D=3, H=2", x, h, W_xh, W_hh, b)]
        cases += [Case(f"random #{i + 1}", randn(r, 2, 3), ...) for i in range(4)]
        return cases

The exercise's name is the function's name, written once; the lesson comes from the module's
``LESSON``; ``check.rnn_cell_step(student_function)`` prints one PASS or FAIL line. A check is
three separable parts, each plain data in and plain data out:

1. **cases** - :meth:`Exercise.cases`: the function above, called with a NumPy generator seeded by
   the exercise's name (fixed in notebooks, different under grading; see :func:`case_seed`).
2. **call** - the student's function on each case's inputs (deep copies), under a time limit, with
   its prints swallowed (:func:`course.checks.guard.run_cases`). Only this part runs the student's code.
3. **compare** - ``compare(got, *args, **kwargs)`` (a case may carry its own): raises
   :class:`CheckFailure` with a short message when ``got`` is wrong. :func:`against` builds the usual
   one: compare with a reference implementation, and name a known mistake when the answer is exactly
   what that mistake gives.

What a check may rely on: its own module, the course's reference code, NumPy and torch, and the
student's *result* reduced to plain values (:func:`course.checks.values.plain`). What it may not:
anything the student's function could see or change while it runs. So expected answers are
computed inside ``compare`` (never in the cases, where a function that walks up the stack could
read them), inputs are copied before each call, and nothing in the cases may hold the answer.
Under grading the module's ``reference_*`` functions refuse to run while the student's code runs.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import env
from .guard import DEFAULT_TIME_LIMIT, _guarded, pass_line, run_cases
from .values import CheckFailure, compare_values, plain, short, to_numpy

__all__ = ["Case", "Exercise", "exercise", "one_thread", "against", "close", "matches", "number", "as_array", "as_tensor",
           "randn", "case_seed", "rng", "pass_line", "CheckFailure", "compare_values", "plain", "short",
           "needs_case_compare", "EXERCISES"]


class Case:
    """One case: a label and the inputs the student's function is called with.

    ``Case("a padded batch", logits, tokens, pad_id=7)`` calls ``f(logits, tokens, pad_id=7)``.
    ``compare`` (keyword) replaces the exercise's comparison for this case only. A case never holds
    the expected answer (see the module docstring).
    """

    __slots__ = ("name", "args", "kwargs", "compare")

    def __init__(self, name: str, *args, compare: Callable | None = None, **kwargs):
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.compare = compare

    def __repr__(self) -> str:
        return f"Case({self.name!r})"


def needs_case_compare(got, *args, **kwargs):
    """The comparison of an exercise that gave none: every case must then carry its own."""
    raise CheckFailure("this case has no comparison (a bug in the check; please report it)")


@dataclass(frozen=True, eq=False)
class Exercise:
    """A registered exercise, for lesson authors, tests and the grader.

    Students never get this object: ``course.check.NAME`` is :attr:`check`, a plain function that
    holds the exercise's parts in its closure, made once when the module was imported. So setting an
    attribute here, or on ``check.NAME``, changes nothing that a check runs.

    Attributes:
        lesson: the lesson id (``"02_rnn_from_scratch"``).
        name: the exercise's name (the check is ``check.<name>``).
        make: ``make(r) -> list[Case]``, the decorated function.
        compare: ``compare(got, *args, **kwargs)``, raising :class:`CheckFailure` when ``got`` is wrong
            (:func:`needs_case_compare` when every case carries its own).
        hint: added to every FAIL line: points at the idea, never gives the code.
        points: what a pass is worth in the gradebook.
        prepare: optional ``prepare(obj) -> callable`` turning what the student passed (a class, say)
            into the function the cases call; it raises :class:`CheckFailure` for a wrong kind of object.
        time_limit: seconds each case may run.
        inputs_unchanged: whether changing an input counts as a mistake.
        check: what ``course.check.NAME`` is: prints one PASS/FAIL line, under the guard.
        run: the same without the guard (returns whether it passed).
    """

    lesson: str
    name: str
    make: Callable[[np.random.Generator], list]
    compare: Callable
    hint: str
    points: int
    prepare: Callable | None
    time_limit: float
    inputs_unchanged: bool
    check: Callable = field(repr=False)
    run: Callable = field(repr=False)

    def cases(self, grading_seed: str | None = None) -> list[Case]:
        """The cases, drawn now from this exercise's seeded generator (see :func:`case_seed`)."""
        return _draw(self.name, self.make, grading_seed)

    def __call__(self, *args, **kwargs) -> None:
        self.check(*args, **kwargs)


def _draw(name: str, make: Callable, grading_seed: str | None = None) -> list:
    cases = list(make(rng(name, grading_seed)))
    if not cases or not all(type(c) is Case for c in cases):
        raise ValueError(f"the cases of {name} must be a non-empty list of Case (a bug in the check)")
    return cases


def _make_check(name: str, make, compare, hint: str, prepare, time_limit: float, inputs_unchanged: bool,
                namespace: dict) -> tuple[Callable, Callable]:
    """The check function students call and its unguarded body, with every part bound now."""
    guard, call, draw, results, passes = _guarded, run_cases, _draw, _RESULTS, _PASSES   # bound now

    def run(*args) -> bool:
        if len(args) != 1:
            raise TypeError(f"check.{name} takes one argument, your function")
        func = args[0]
        if prepare is not None:
            try:
                func = prepare(func)
            except CheckFailure as e:
                print(f"FAIL {name}: case 'setup': {e}")
                return False
        results[name] = False
        ok = call(name, func, draw(name, make), compare=compare, hint=hint, namespace=namespace,
                  time_limit_s=time_limit, check_inputs_unchanged=inputs_unchanged)
        results[name] = bool(ok)
        if ok:
            passes[name] = passes.get(name, 0) + 1
        return ok

    def check(*args, **kwargs) -> None:
        guard(name, run, args, kwargs)

    check.__name__ = check.__qualname__ = name
    check.__doc__ = make.__doc__
    check.__module__ = "course.check"
    return check, run


EXERCISES: dict[str, Exercise] = {}
_RESULTS: dict[str, bool] = {}      # each check's last result in this kernel: a convenience for the lesson, not a grade
_PASSES: dict[str, int] = {}        # how often each check passed in this kernel (a grading job compares printed PASS lines)


def passed(name: str) -> bool:
    """Whether ``check.NAME`` passed the last time it ran in this kernel (False if it never ran)."""
    return _RESULTS.get(name, False)


def choose(name: str, yours: Callable, reference: Callable) -> Callable:
    """``yours`` once ``check.NAME`` has passed in this kernel, else ``reference``; says which one it took.

    Lessons build their final model from the student's own building blocks this way, and stay
    runnable while an exercise is still unsolved.
    """
    if passed(name):
        print(f"using your {name} (check.{name} passed)")
        return yours
    print(f"using the course's {name}: yours has not passed check.{name} yet")
    return reference


def exercise(fn: Callable | None = None, *, compare: Callable | None = None, hint: str = "", points: int = 1,
             prepare: Callable | None = None, time_limit: float = DEFAULT_TIME_LIMIT,
             inputs_unchanged: bool = True, lesson: str | None = None):
    """Register the decorated cases function as an exercise (see the module docstring).

    The exercise is named after the function and belongs to the module's ``LESSON`` (or ``lesson``).
    Without ``compare`` each case must carry its own. The decorated name becomes the exercise in
    the module, so a reference function of the same name must be imported under another (e.g.
    ``generate.apply_temperature``) or called ``reference_<name>``.
    """
    def deco(make: Callable) -> Exercise:
        name = make.__name__
        les = lesson or make.__globals__.get("LESSON")
        if not isinstance(les, str):
            raise ValueError(f"exercise {name}: its module sets no LESSON = 'NN_topic'")
        old = EXERCISES.get(name)
        if old is not None and old.lesson != les:
            raise ValueError(f"Exercise name {name!r} is used by lessons {old.lesson} and {les}; "
                             "exercise names must be unique across the course.")
        cmp = compare or needs_case_compare
        check, run = _make_check(name, make, cmp, hint, prepare, time_limit, inputs_unchanged, make.__globals__)
        ex = Exercise(les, name, make, cmp, hint, points, prepare, time_limit, inputs_unchanged, check, run)
        EXERCISES[name] = ex
        return ex
    return deco(fn) if fn is not None else deco


# ------------------------------------------------------------------------------------ seeds
def case_seed(exercise_name: str, grading_seed: str | None = None) -> int:
    """Seed for an exercise's random cases: fixed in notebooks, different under grading.

    The grader's judge passes its ``grading_seed`` here, in its own process; a kernel reads the
    self-check's seed from the environment (``env.SEED``; unset in a notebook).
    """
    seed = os.environ.get(env.SEED, '') if grading_seed is None else grading_seed
    text = f"{exercise_name}:{seed}"
    h = 0
    for ch in text.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


def rng(exercise_name: str, grading_seed: str | None = None) -> np.random.Generator:
    """A NumPy generator seeded by :func:`case_seed`."""
    return np.random.default_rng(case_seed(exercise_name, grading_seed))


# ------------------------------------------------------------------------------------ comparing
def close(got, expected, rtol: float = 1e-5, atol: float = 1e-6, where: str = "") -> None:
    """``got`` equals ``expected`` within ``|got - expected| <= atol + rtol * |expected|`` per entry.

    Numbers, arrays, tensors, lists, dicts and the course's types; raises :class:`CheckFailure`
    naming the first difference (shape, then one value), never the whole answer.
    """
    compare_values(got, expected, rtol=rtol, atol=atol, where=where)


def matches(got, mistake: Callable, args: tuple, kwargs: dict | None = None, rtol: float = 1e-5,
            atol: float = 1e-6) -> bool:
    """Whether ``got`` is what ``mistake(*args, **kwargs)`` gives (False if the mistake cannot even run)."""
    try:
        close(got, mistake(*args, **(kwargs or {})), rtol, atol)
        return True
    except Exception:  # noqa: BLE001 - a mistake that does not apply to this case
        return False


def against(reference: Callable, mistakes: dict[Callable, str] | None = None, *, rtol: float = 1e-5,
            atol: float = 1e-6, convert: Callable | None = None) -> Callable:
    """A comparison with ``reference(*args, **kwargs)``, computed only when the answer is judged.

    ``mistakes`` maps a wrong implementation (same signature) to what it means, as a clause that is
    appended to the fail line when the answer equals that implementation's within the tolerance,
    e.g. ``{softmax_wrong_axis: "that is what a softmax over the wrong axis gives"}``. The first match
    counts. ``convert`` turns the answer into what is compared (e.g. :func:`number`) and may raise
    :class:`CheckFailure` itself.
    """
    named = dict(mistakes or {})

    def compare(got, *args, **kwargs):
        if got is None:
            raise CheckFailure("your function returned None: did you forget `return`")
        if convert is not None:
            got = convert(got)
        try:
            close(got, reference(*args, **kwargs), rtol, atol)
        except CheckFailure as e:
            for mistake, what in named.items():
                if matches(got, mistake, args, kwargs, rtol, atol):
                    raise CheckFailure(f"{str(e).rstrip('. ')}; {what}") from None
            raise

    return compare


# ------------------------------------------------------------------------------------ answers in any form
def number(got, what: str = "your function", unit: str = "") -> float:
    """A float from a Python number or a one-element array or tensor; :class:`CheckFailure` otherwise."""
    u = f" ({unit})" if unit else ""
    if hasattr(got, "detach") or isinstance(got, np.ndarray):
        arr = to_numpy(got)
        if arr.size != 1:
            raise CheckFailure(f"{what} returned an array of shape {arr.shape}; return one number{u}")
        got = arr.reshape(()).item()
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise CheckFailure(f"{what} returned {type(got).__name__}; return one number{u}")
    return float(got)


def as_array(got, what: str = "a tensor") -> np.ndarray:
    """A student's tensor, array or list as a float64 NumPy array; :class:`CheckFailure` for anything else."""
    if hasattr(got, "detach"):
        return got.detach().cpu().numpy().astype(np.float64)
    if isinstance(got, (list, tuple, np.ndarray)):
        try:
            return np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    raise CheckFailure(f"expected {what}, got {type(got).__name__}")


def as_tensor(a: Any, dtype=None):
    """``a`` (a list, an array) as a torch tensor, float32 unless ``dtype`` says otherwise."""
    import torch

    return torch.tensor(np.asarray(a), dtype=dtype or torch.float32)


def randn(r: np.random.Generator, *shape: int, scale: float = 1.0):
    """A float32 torch tensor of standard normal entries times ``scale``, drawn from ``r``.

    Arguments are evaluated first: ``randn(r, 3, scale=r.uniform())`` draws the scale *before* the
    entries, so it gives other cases than ``as_tensor(r.standard_normal(3) * r.uniform())``.
    """
    return as_tensor(r.standard_normal(shape) * scale)


@contextlib.contextmanager
def one_thread():
    """Run the block on one torch thread: a check's tiny networks run faster so, far faster on a busy machine.

    torch is imported only here, so a lesson's checks that do not use torch never import it.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
