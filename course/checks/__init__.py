"""``course.checks``: the exercise checks that student kernels load, and the kit they are written with.

Each lesson's checks live in ``lesson_NN.py``, written with :mod:`course.checks.kit` (one decorated
function per exercise). ``course.check.<name>`` imports only the module that defines ``name``: the
:func:`index` of exercise names is read from the modules' source (their ``@exercise`` functions), so
adding an exercise registers it, and looking one up does not import every lesson (nor torch).

This room is for lesson authors and student kernels. The grader (:mod:`course.grading`) and the
notebook build (:mod:`course.authoring`) import from here; nothing here imports from them.

Lesson: 00_welcome
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from .kit import EXERCISES, Case, CheckFailure, Exercise, against, close, exercise, pass_line, rng

__all__ = ["EXERCISES", "Case", "CheckFailure", "Exercise", "against", "close", "exercise", "pass_line", "rng",
           "index", "load", "load_all", "exercises_of", "lessons"]

_HERE = Path(__file__).resolve().parent
_INDEX: dict[str, tuple[str, str]] = {}      # exercise -> (check module, lesson id)


def _exercise_decorator(node: ast.FunctionDef):
    """The ``@exercise`` or ``@exercise(...)`` decorator of a function definition, if it has one."""
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if (isinstance(target, ast.Name) and target.id == "exercise") or \
                (isinstance(target, ast.Attribute) and target.attr == "exercise"):
            return d
    return None


def _scan(path: Path) -> tuple[str | None, list[str]]:
    """A check module's ``LESSON`` and its ``@exercise`` functions ``(name, lesson= if given)``, read from source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lesson, names = None, []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "LESSON" for t in targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                lesson = node.value.value
        elif isinstance(node, ast.FunctionDef) and _exercise_decorator(node) is not None:
            names.append((node.name, _decorator_lesson(_exercise_decorator(node))))
    return lesson, names


def _decorator_lesson(decorator) -> str | None:
    """``lesson="..."`` given to the decorator itself (it overrides the module's ``LESSON``)."""
    for kw in getattr(decorator, "keywords", ()):
        if kw.arg == "lesson" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    return None


def index() -> dict[str, tuple[str, str]]:
    """``{exercise name: (module name, lesson id)}`` for every check module, read once from source."""
    if not _INDEX:
        found: dict[str, tuple[str, str]] = {}
        for path in sorted(_HERE.glob("lesson_*.py")):
            lesson, names = _scan(path)
            for name, own_lesson in names:
                if name in found:
                    raise ValueError(f"Exercise name {name!r} is defined in {found[name][0]} and {path.stem}; "
                                     "exercise names must be unique across the course.")
                found[name] = (path.stem, own_lesson or lesson or "")
        _INDEX.update(found)
    return dict(_INDEX)


def load(name: str) -> Exercise | None:
    """The exercise ``name``, importing only the check module that defines it (None if there is none)."""
    where = index().get(name)
    if where is None:
        return None
    importlib.import_module(f"{__name__}.{where[0]}")
    return EXERCISES.get(name)


def load_all() -> dict[str, Exercise]:
    """Import every check module, so every exercise is registered; returns the registry."""
    for module in sorted({m for m, _ in index().values()}):
        importlib.import_module(f"{__name__}.{module}")
    return EXERCISES


def lessons() -> dict[str, list[str]]:
    """``{lesson id: [exercise names in the order they are defined]}``: the one list of what a lesson checks."""
    out: dict[str, list[str]] = {}
    for name, (_, lesson) in index().items():
        out.setdefault(lesson, []).append(name)
    return out


def exercises_of(lesson: str) -> list[Exercise]:
    """The exercises of one lesson (e.g. ``"00_welcome"``), in the order they are defined."""
    return [load(n) for n in lessons().get(lesson, [])]
