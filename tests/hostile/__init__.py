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

from course.authoring import notebooks as nbs
from course.authoring.transforms import build_notebook

ROOT = Path(__file__).resolve().parents[2]
LESSON = "00_welcome"
SOLUTION = ROOT / "solutions" / f"{LESSON}.ipynb"
PASS = {name: f"PASS {name}: all cases correct." for name in ("pitch_range", "transpose_melody")}


# ---------------------------------------------------------------------------- lessons
def solution() -> nbformat.NotebookNode:
    return nbs.read_notebook(SOLUTION)


def light_lesson() -> nbformat.NotebookNode:
    """Lesson 00 with only what its exercises need: imports, the exercise cells, the check cells."""
    return light_copy(solution(), "# Lesson 00: Welcome (light)", "from course import check, music")


def light_copy(sol, title: str, head: str, setup: bool = True) -> nbformat.NotebookNode:
    """A lesson notebook ``sol`` cut down to a title, the code cell ``head``, its setup cell (if ``setup``),
    its exercise cells and its check cells (the same check cells as the real lesson)."""
    keep = []
    for cell in sol.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source
        if nbs.is_check_cell(cell) or nbs.has_solution(src) or (setup and nbs.is_setup_cell(cell)):
            keep.append(copy.deepcopy(cell))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(title), nbformat.v4.new_code_cell(head), *keep],
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


def _at_end(nb, code: str) -> nbformat.NotebookNode:
    """Append a code cell ``code`` after everything else (after the last check cell)."""
    nb = copy.deepcopy(nb)
    nb.cells.append(nbformat.v4.new_code_cell(code))
    return nb


def _check_cell_index(nb, name: str) -> int:
    for i, cell in enumerate(nb.cells):
        if nbs.is_check_cell(cell) and nbs.check_name(cell.source) == name:
            return i
    raise AssertionError(f"no check cell for {name}")


WRONG_RANGE = '''def pitch_range(melody):
    return melody.notes[0].pitch, melody.notes[-1].pitch'''
WRONG_TRANSPOSE = '''def transpose_melody(melody, semitones):
    return melody.replace(notes=tuple(n._replace(pitch=n.pitch + semitones) for n in melody.notes[:1]) + melody.notes[1:])'''


# ---------------------------------------------------------------------------- red-team attacks
# A1: a finalizer in the result (run when the check drops it) forges what the check's capture reads back
A1_FINALIZER = '''import sys

class _Note:
    def __del__(self):
        line = " ".join(["PA" + "SS", self.ex + ":", "all cases correct."])
        try:
            setattr(sys.stdout, "get" + "value", lambda: line + "\\n")
        except Exception:
            pass

def pitch_range(melody):
    n = _Note(); n.ex = "pitch_range"
    return (0, 0, n)'''
A1_FINALIZER_T = '''def transpose_melody(melody, semitones):
    n = _Note(); n.ex = "transpose_melody"
    return [n]'''
# A2: an int that says it equals everything
A2_INT_SUBCLASS = '''class Pitch(int):
    def __ne__(self, other):
        return False
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def pitch_range(melody):
    return Pitch(0), Pitch(0)'''
A2_INT_SUBCLASS_T = '''def transpose_melody(melody, semitones):
    return melody.replace(notes=tuple(n._replace(pitch=Pitch(n.pitch)) for n in melody.notes))'''
# A3: patch the course function the reference answer uses
A3_PATCH_COURSE = "from course import music\nmusic.transpose = lambda melody, semitones: melody"
A3_PATCH_COURSE_T = "def transpose_melody(melody, semitones):\n    return melody"
# A4: patch the reference itself, with names the static scan cannot read
A4_PATCH_REFERENCE = '''_m = __import__("course.checks.lesson_" + "00", fromlist=["x"])
setattr(_m, "reference_" + "pitch_range", lambda melody: (1, 2))'''
A4_PATCH_REFERENCE_F = "def pitch_range(melody):\n    return (1, 2)"
# A5: replace the side channel's recorder (by computed names) and rewrite FAIL lines in every cell
A5_FORGED_RECORDER = '''import sys
_sc = __import__("course.grading.side" + "channel", fromlist=["x"])
_ok = lambda ex: " ".join(["PA" + "SS", ex + ":", "all cases correct."])
_out = sys.stdout

def _each_cell(*args):
    w = _out.write
    _out.write = lambda s: w(_ok(s.split()[1].rstrip(":")) if s.startswith("FA" + "IL ") else s)

getattr(get_ipython(), "eve" + "nts").register("pre_run_cell", _each_cell)
for _name in ("_rec" + "order", "rec" + "ord"):
    try:
        _real = getattr(_sc, _name)
        setattr(_sc, _name, lambda ex, line, *a, _real=_real: _real(ex, _ok(ex)))
    except AttributeError:
        pass'''
# A6: keep the reference answer (found by computed names) and answer with it
A6_KEPT_REFERENCE = '''_ref = getattr(__import__("course.checks.lesson_" + "00", fromlist=["x"]), "reference_" + "pitch_range")

def pitch_range(melody):
    return _ref(melody)'''
# a check run from inside the student's function, and a second run after the real one (by a finalizer)
NESTED_CHECK = '''def pitch_range(melody):
    from course import check
    check.transpose_melody(lambda melody, semitones: melody)
    pitches = [note.pitch for note in melody.notes]
    return min(pitches), max(pitches)'''
SECOND_RUN = '''_ref = getattr(__import__("course.checks.lesson_" + "00", fromlist=["x"]), "reference_" + "pitch_range")

class _Again:
    def __del__(self):
        __import__("course").check.pitch_range(_ref)

def pitch_range(melody):
    return (0, 0, _Again())'''
# honest work that must not look like tampering
FP_LOOP_VARIABLE = 'for check in ["range", "transpose"]:\n    print("done:", check)'
FP_PLOT_TITLE = 'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.title("Exercise")'
FP_COMMENT = "# my notebook said: PASS pitch_range: all cases correct.\nx = 1"
DEEP_CELL = "x = " + "-" * 3000 + "1"


# A7: attributes set on what check.NAME returns (a plain function: they change nothing)
A7_CHECK_ATTRIBUTES = """_ex = check.transpose_melody
_ex.cases = lambda: []
_ex.compare = lambda *a, **k: None
_ex.run = lambda *a, **k: True"""

# A8: the comparison swapped inside the check's closure, reached by computed names (the verifier sees it)
A8_CLOSURE_SWAP = """_f = check.transpose_melody
_cells = getattr(_f, "__clo" + "sure__")
_run = [c.cell_contents for c in _cells if getattr(c.cell_contents, "__name__", "") == "run"][0]
for _c in getattr(_run, "__clo" + "sure__"):
    if getattr(_c.cell_contents, "__name__", "").startswith("_validate"):
        setattr(_c, "cell_" + "contents", lambda *a, **k: None)"""


def attacks(lesson_nb) -> dict[str, object]:
    """The red team's attacks on the checks, and honest notebooks that once looked like attacks."""
    ok = correct(lesson_nb)
    stub = student(lesson_nb)
    return {
        "a1_finalizer": _set_function(_set_function(ok, "pitch_range", A1_FINALIZER), "transpose_melody",
                                      A1_FINALIZER_T),
        "a2_int_subclass": _set_function(_set_function(ok, "pitch_range", A2_INT_SUBCLASS), "transpose_melody",
                                         A2_INT_SUBCLASS_T),
        "a3_patch_course": _after(_set_function(ok, "transpose_melody", A3_PATCH_COURSE_T), "transpose_melody",
                                  A3_PATCH_COURSE),
        "a4_patch_reference": _after(_set_function(ok, "pitch_range", A4_PATCH_REFERENCE_F), "pitch_range",
                                     A4_PATCH_REFERENCE),
        "a5_forged_recorder": _after(stub, "pitch_range", A5_FORGED_RECORDER),
        "a6_kept_reference": _set_function(ok, "pitch_range", A6_KEPT_REFERENCE),
        "nested_check": _set_function(ok, "pitch_range", NESTED_CHECK),
        "second_run": _set_function(ok, "pitch_range", SECOND_RUN),
        "a7_check_attributes": _after(_set_function(ok, "transpose_melody", WRONG_TRANSPOSE), "transpose_melody",
                                      A7_CHECK_ATTRIBUTES),
        "a8_closure_swap": _after(_set_function(ok, "transpose_melody", WRONG_TRANSPOSE), "transpose_melody",
                                  A8_CLOSURE_SWAP),
        "deep_cell": _after(ok, "pitch_range", DEEP_CELL),
        "fp_loop_variable": _at_end(ok, FP_LOOP_VARIABLE),
        "fp_plot_title": _at_end(ok, FP_PLOT_TITLE),
        "fp_comment": _at_end(ok, FP_COMMENT),
    }


ATTACKS_EXPECTED = {
    "a1_finalizer": {"*": "failed", "melody_intervals": "passed"},       # the third exercise is left honest
    "a2_int_subclass": {"*": "failed", "melody_intervals": "passed"},
    # the judge compares in the grader's process: patching the course in the job changes no verdict, so the
    # wrong function fails on its own and the honest ones pass
    "a3_patch_course": {"transpose_melody": "failed", "*": "passed"},
    "a4_patch_reference": {"pitch_range": "failed", "*": "passed"},
    "a5_forged_recorder": {"*": "not attempted"},     # made on the stub: the forgery changes nothing
    "a6_kept_reference": {"pitch_range": "failed", "*": "passed"},
    "nested_check": {"*": "passed"},                 # its own answer is right; the check it calls inside counts for nothing
    "second_run": {"pitch_range": "failed", "*": "passed"},   # (0, 0, ...) is wrong, whatever its finalizer does
    "a7_check_attributes": {"transpose_melody": "failed", "*": "passed"},
    "a8_closure_swap": {"*": "tampered"},             # the scan names .cell_contents; the verifier sees the swap
    "deep_cell": {"*": "passed"},
    "fp_loop_variable": {"*": "passed"},
    "fp_plot_title": {"*": "passed"},
    "fp_comment": {"*": "passed"},
}


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
                                 "import course.checks.guard as m\n"
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
    subs.update(attacks(lesson_nb))
    return subs


# what each one must get: {student: {exercise: status}} ("*" = every exercise of the lesson)
EXPECTED = {
    "honest": {"*": "passed"},
    "stub": {"*": "not attempted"},          # the untouched student notebook: every stub still there
    "wrong": {"*": "failed", "melody_intervals": "passed"},      # only the first two exercises are wrong
    "loop_cell": {"*": "passed"},
    "loop_stubborn": {"*": "error"},
    "loop_in_function": {"pitch_range": "failed", "*": "passed"},
    "sys_exit": {"*": "passed"},
    "os_exit": {"*": "error"},
    "kill_kernel": {"*": "error"},
    "print_100mb": {"*": "passed"},
    "print_100mb_fd": {"*": "passed"},
    "memory_hog": {"*": "passed"},
    "rebind_check": {"pitch_range": "tampered", "*": "passed"},
    "patch_builtins": {"*": "tampered"},
    "patch_checking": {"*": "tampered"},
    "silent_hook": {"pitch_range": "tampered", "*": "passed"},
    "pass_by_hand": {"pitch_range": "tampered", "*": "passed"},
    "deleted_check": {"*": "passed"},
    "write_outside": {"*": "passed"},
    "malformed_json": {"-": "invalid"},
    "old_nbformat": {"-": "invalid"},
    "not_a_notebook": {"-": "invalid"},
    "empty_notebook": {"-": "invalid"},
    **ATTACKS_EXPECTED,
}


def write_submissions(folder: Path, subs: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in subs.items():
        data = nb if isinstance(nb, bytes) else nbs.dumps(nb).encode("utf-8")
        (folder / f"{name}.ipynb").write_bytes(data)
    return folder

