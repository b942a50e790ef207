"""Hostile and broken submissions for the grader's tests and benchmark, made from lesson 00.

Nothing here is a fixture file: every submission is generated from ``solutions/00_welcome.ipynb``
(the honest one) or from what the build makes of it (the untouched student notebook), so the
cases follow the lesson when it changes. :func:`light_lesson` makes a small copy of lesson 00
with the same check cells but none of the slow display cells, for tests that exercise the
grader's machinery rather than the lesson.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

from course.exercises import notebooks as nbs
from course.exercises.build import build_notebook

ROOT = Path(__file__).resolve().parents[2]
LESSON = "00_welcome"
SOLUTION = ROOT / "solutions" / f"{LESSON}.ipynb"
PASS = {name: f"PASS {name}: all cases correct." for name in ("pitch_range", "transpose_melody")}


# ---------------------------------------------------------------------------- lessons
def solution() -> nbformat.NotebookNode:
    return nbs.read_notebook(SOLUTION)


def light_lesson() -> nbformat.NotebookNode:
    """Lesson 00 with only what its exercises need: imports, the exercise cells, the check cells."""
    sol = solution()
    keep = []
    for cell in sol.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source
        if nbs.is_check_cell(cell) or nbs.has_solution(src) or nbs.is_setup_cell(cell):
            keep.append(copy.deepcopy(cell))
    head = nbformat.v4.new_code_cell("from course import check, music")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lesson 00: Welcome (light)"), head, *keep],
                                  metadata=copy.deepcopy(sol.metadata))
    for i, c in enumerate(nb.cells):
        c["id"] = f"light-{i}"
        if c.cell_type == "code" and not nbs.is_check_cell(c):
            c.outputs, c.execution_count = [], None
    return nb


def write_lessons_dir(folder: Path, light: bool = True) -> Path:
    """A lessons folder holding lesson 00 (light or the real one); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = light_lesson() if light else solution()
    (folder / f"{LESSON}.ipynb").write_text(nbs.dumps(nb), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------- honest submissions
def student(lesson_nb) -> nbformat.NotebookNode:
    """The untouched student notebook the build makes from ``lesson_nb``."""
    return build_notebook(lesson_nb, LESSON)


def correct(lesson_nb) -> nbformat.NotebookNode:
    """A student who solved everything: the solutions, outputs cleared, saved as a student would."""
    nb = build_notebook(lesson_nb, LESSON)
    for mine, sol in zip(nb.cells, lesson_nb.cells):
        mine.source = sol.source if sol.cell_type == "code" and nbs.has_solution(sol.source) else mine.source
    return nb


def _set_function(nb, name: str, code: str) -> nbformat.NotebookNode:
    """Replace the cell defining ``name`` by ``code``."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {name}(" in cell.source and not nbs.is_check_cell(cell):
            cell.source = code
            return nb
    raise AssertionError(f"no cell defines {name}")


def _after(nb, name: str, code: str) -> nbformat.NotebookNode:
    """Insert a code cell ``code`` right after the cell defining ``name``."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"def {name}(" in cell.source and not nbs.is_check_cell(cell):
            nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
            return nb
    raise AssertionError(f"no cell defines {name}")


def _check_cell_index(nb, name: str) -> int:
    for i, cell in enumerate(nb.cells):
        if nbs.is_check_cell(cell) and nbs.check_name(cell.source) == name:
            return i
    raise AssertionError(f"no check cell for {name}")


WRONG_RANGE = '''def pitch_range(melody):
    return melody.notes[0].pitch, melody.notes[-1].pitch'''
WRONG_TRANSPOSE = '''def transpose_melody(melody, semitones):
    return melody.replace(notes=tuple(n._replace(pitch=n.pitch + semitones) for n in melody.notes[:1]) + melody.notes[1:])'''


# ---------------------------------------------------------------------------- hostile submissions
def hostile(lesson_nb, outside: Path | None = None) -> dict[str, object]:
    """``{student id: notebook node, or raw bytes for broken files}``; see EXPECTED for the verdicts."""
    ok = correct(lesson_nb)
    stub = student(lesson_nb)
    subs: dict[str, object] = {
        "honest": ok,
        "stub": stub,
        "wrong": _set_function(_set_function(ok, "pitch_range", WRONG_RANGE), "transpose_melody", WRONG_TRANSPOSE),
        "loop_cell": _after(ok, "pitch_range", "while True:\n    pass"),
        "loop_stubborn": _after(ok, "pitch_range",
                                "import time\nwhile True:\n    try:\n        time.sleep(0.2)\n    except BaseException:\n        pass"),
        "loop_in_function": _set_function(ok, "pitch_range", "def pitch_range(melody):\n    while True:\n        pass"),
        "sys_exit": _after(ok, "pitch_range", "import sys\nsys.exit()"),
        "os_exit": _after(ok, "pitch_range", "import os\nos._exit(1)"),
        "kill_kernel": _after(ok, "pitch_range", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
        "print_100mb": _after(ok, "pitch_range", "print('x' * 100_000_000)"),
        "print_100mb_fd": _after(ok, "pitch_range", "import os\nfor _ in range(100):\n    os.write(1, b'x' * 1_000_000)"),
        "memory_hog": _after(ok, "pitch_range", "hog = []\nwhile True:\n    hog.append(bytearray(500_000_000))"),
        "rebind_check": _after(_set_function(ok, "pitch_range", WRONG_RANGE), "pitch_range",
                               f"check.pitch_range = lambda f: print({PASS['pitch_range']!r})"),
        "patch_builtins": _after(_set_function(ok, "pitch_range", WRONG_RANGE), "pitch_range",
                                 "import builtins, sys\n_real = builtins.print\n"
                                 f"builtins.print = lambda *a, **k: _real({PASS['pitch_range']!r})"),
        "patch_checking": _after(_set_function(ok, "transpose_melody", WRONG_TRANSPOSE), "transpose_melody",
                                 "import course.exercises.lesson_00 as m\n"
                                 "m.run_cases = lambda name, *a, **k: print(f'PASS {name}: all cases correct.')"),
        "silent_hook": _after(_set_function(ok, "pitch_range", WRONG_RANGE), "pitch_range",
                              "import course.check as c\nclass _Fake:\n    def __call__(self, f):\n"
                              f"        print({PASS['pitch_range']!r})\nc.__dict__['pitch_range'] = _Fake()"),
    }
    hand = copy.deepcopy(_set_function(ok, "pitch_range", WRONG_RANGE))
    hand.cells[_check_cell_index(hand, "pitch_range")].source = f"# NBVAL_CHECK_OUTPUT\nprint({PASS['pitch_range']!r})"
    subs["pass_by_hand"] = hand
    deleted = copy.deepcopy(ok)
    del deleted.cells[_check_cell_index(deleted, "transpose_melody")]
    subs["deleted_check"] = deleted
    if outside is not None:
        subs["write_outside"] = _after(ok, "pitch_range",
                                       f"open({str(outside / 'pwned.txt')!r}, 'w').write('written by a submission')")
    subs["malformed_json"] = b'{"cells": [{"cell_type": "code", "source": "print(1)"'
    subs["old_nbformat"] = json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}],
                                       "metadata": {}}).encode()
    subs["not_a_notebook"] = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    subs["empty_notebook"] = nbs.dumps(nbformat.v4.new_notebook()).encode()
    return subs


# what each one must get: {student: {exercise: status}} ("*" = every exercise of the lesson)
EXPECTED = {
    "honest": {"*": "passed"},
    "stub": {"*": "failed"},
    "wrong": {"*": "failed"},
    "loop_cell": {"*": "passed"},
    "loop_stubborn": {"pitch_range": "error", "transpose_melody": "error"},
    "loop_in_function": {"pitch_range": "failed", "transpose_melody": "passed"},
    "sys_exit": {"*": "passed"},
    "os_exit": {"pitch_range": "error", "transpose_melody": "error"},
    "kill_kernel": {"pitch_range": "error", "transpose_melody": "error"},
    "print_100mb": {"*": "passed"},
    "print_100mb_fd": {"*": "passed"},
    "memory_hog": {"*": "passed"},
    "rebind_check": {"pitch_range": "tampered", "transpose_melody": "passed"},
    "patch_builtins": {"*": "tampered"},
    "patch_checking": {"*": "tampered"},
    "silent_hook": {"pitch_range": "tampered", "transpose_melody": "passed"},
    "pass_by_hand": {"pitch_range": "tampered", "transpose_melody": "passed"},
    "deleted_check": {"*": "passed"},
    "write_outside": {"*": "passed"},
    "malformed_json": {"-": "invalid"},
    "old_nbformat": {"-": "invalid"},
    "not_a_notebook": {"-": "invalid"},
    "empty_notebook": {"-": "invalid"},
}


def write_submissions(folder: Path, subs: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in subs.items():
        data = nb if isinstance(nb, bytes) else nbs.dumps(nb).encode("utf-8")
        (folder / f"{name}.ipynb").write_bytes(data)
    return folder

