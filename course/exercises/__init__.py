"""``course.exercises``: the exercise checks, the student-notebook build, self-check and grading.

Each lesson's checks live in ``lesson_NN.py`` and register themselves with
:func:`~course.exercises.checking.exercise`; ``course.check`` exposes them all by name.

Lesson: 00_welcome
"""
from __future__ import annotations

import importlib
import pkgutil

from .checking import EXERCISES, Case, CheckFailure, compare_values, exercise, pass_line, rng, run_cases

__all__ = ["EXERCISES", "Case", "CheckFailure", "compare_values", "exercise", "pass_line", "rng", "run_cases",
           "load_all", "exercises_of"]


def load_all() -> dict:
    """Import every ``course.exercises.lesson_*`` module so all checks are registered."""
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("lesson_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return EXERCISES


def exercises_of(lesson: str) -> list:
    """The registered exercises of one lesson (e.g. ``"00_welcome"``), in registration order."""
    load_all()
    return [e for e in EXERCISES.values() if e.lesson == lesson]
