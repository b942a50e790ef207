"""``course.check``: every exercise's check function, by name.

In a notebook::

    from course import check
    check.transpose_melody(transpose_melody)   # prints one PASS or FAIL line

``check.notebook()`` self-checks the notebook you are working on (see ``python -m course check``).

Lesson: 00_welcome
"""
from __future__ import annotations

from .exercises import EXERCISES, load_all


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    if name == "notebook":
        from .exercises.selfcheck import check_notebook_interactive

        return check_notebook_interactive
    load_all()
    if name in EXERCISES:
        return EXERCISES[name].func
    raise AttributeError(f"course.check has no exercise {name!r}; known: {', '.join(sorted(EXERCISES))}")


def __dir__():
    load_all()
    return sorted(EXERCISES) + ["notebook"]
