"""``course.check``: every exercise's check function, by name.

In a notebook::

    from course import check
    check.transpose_melody(transpose_melody)   # prints one PASS or FAIL line

``check.notebook()`` self-checks the notebook you are working on (see ``python -m course check``).
``check.passed("NAME")`` says whether that check passed in this kernel; ``check.choose("NAME", yours,
reference)`` gives your function once it has, the course's until then.
Looking up ``check.NAME`` imports only the lesson module that defines ``NAME``, and starts noting when
cells run (:mod:`course.checks.cells`), so that ``check.notebook()`` can tell Run All from a cell run by hand.

Lesson: 00_welcome
"""
from __future__ import annotations

from .checks import cells, index, load


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    cells.watch()
    if name == "notebook":
        from .grading.selfcheck import check_notebook_interactive

        return check_notebook_interactive
    if name in ("passed", "choose"):
        from .checks import kit

        return getattr(kit, name)
    try:
        ex = load(name)
    except Exception as e:  # noqa: BLE001 - a lesson's checks that cannot load: its check cells say so, one line each
        return _unavailable(name, e)
    if ex is not None:
        return ex.check
    raise AttributeError(f"course.check has no exercise {name!r}; known: {', '.join(sorted(index()))}")


def _unavailable(name: str, error: BaseException):
    """A stand-in check that prints one FAIL line: the lesson's check module could not be imported."""
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]

    def check(*args, **kwargs) -> None:
        print(f"FAIL {name}: the check could not be loaded ({reason}). Run `python -m course doctor` to see "
              "what is missing in this environment.")

    check.__name__ = name
    return check


def __dir__():
    return sorted(index()) + ["notebook", "passed", "choose"]
