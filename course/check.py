"""``course.check``: every exercise's check function, by name.

In a notebook::

    from course import check
    check.transpose_melody(transpose_melody)   # prints one PASS or FAIL line

``check.notebook()`` self-checks the notebook you are working on (see ``python -m course check``).
Looking up ``check.NAME`` imports only the lesson module that defines ``NAME``.

Lesson: 00_welcome
"""
from __future__ import annotations

from .checks import index, load


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    if name == "notebook":
        from .grading.selfcheck import check_notebook_interactive

        return check_notebook_interactive
    ex = load(name)
    if ex is not None:
        return ex
    raise AttributeError(f"course.check has no exercise {name!r}; known: {', '.join(sorted(index()))}")


def __dir__():
    return sorted(index()) + ["notebook"]
