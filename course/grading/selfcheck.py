"""``python -m course check NOTEBOOK``: check a saved notebook in a fresh kernel, as the grader will.

The saved file is never trusted: a copy is prepared with the lesson's own check cells and the
expected pass lines injected, then run by nbval in a contained job, and an exercise passes only
when its check cell printed exactly the pass line and the real check reported the pass through
the side channel (:mod:`course.grading.checkrun`). The grader's static scan (:mod:`.tamper`) reads
the code too: what the grader would withhold points for shows as FLAGGED with the reason, and what
it would flag for an instructor's review shows as a review note. The grader (:mod:`.grade`) uses
the same machinery; the self-check differs only in running one notebook, with random cases of its
own (different from the notebook's, like the grader's), and printing a table.

In a notebook, ``check.notebook()`` does the same for the notebook you are working on. Every lesson
ends with a cell that calls it; Run All skips that cell (it would start a second kernel at the end of
every run), and running the cell by hand runs the self-check (see :mod:`course.checks.cells`).

Lesson: 00_welcome
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import ExerciseError
from ..authoring import notebooks as nbs
from ..checks import cells
from ..workspace import default_workspace
from . import sandbox, sidechannel, tamper
from .checkrun import NotebookResult, find_lessons, prepare, run_prepared

__all__ = ["check_notebook", "check_notebook_interactive", "format_table", "add_arguments", "run", "SELFCHECK_SEED"]

SELFCHECK_SEED = "self-check"


# ------------------------------------------------------------------------------------ self-check
def check_notebook(path: str | Path, *, lessons_dir: str | Path | None = None, cell_timeout: float = 300.0,
                   notebook_timeout: float = 1200.0, memory_mb: int | None = 4096) -> NotebookResult:
    """Self-check the saved notebook at ``path``; returns the per-exercise results."""
    path = Path(path)
    nb = nbs.read_notebook(path)
    lessons = find_lessons(lessons_dir)
    match = nbs.lesson_of(nb, path, {k: v.names for k, v in lessons.items()})
    if match.lesson is None:
        raise ExerciseError(f"{path.name} does not look like a lesson notebook of this course "
                            "(no course metadata, no NN_ file name, no known check cells).")
    lesson = lessons[match.lesson]
    if lesson.problem:
        raise ExerciseError(f"The course's lesson {lesson.lesson} cannot be checked: {lesson.problem}")
    findings = tamper.scan_notebook(nb, lesson.names, [src for _, src in lesson.checks])
    prepared = prepare(nb, lesson)
    result = run_prepared(prepared, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                          limits=sandbox.Limits(memory_mb=memory_mb), seed=SELFCHECK_SEED)
    return review(result, findings)


def review(result: NotebookResult, findings: list) -> NotebookResult:
    """``result`` with the static scan's findings applied as the grader applies them (in place)."""
    for r in result.results:
        hits = tamper.withheld(findings, r.exercise)
        if hits and r.status != "tampered":
            r.status, r.points = "tampered", 0
            r.message = ("the grader would withhold the points: " + "; ".join(str(f) for f in hits[:3])
                         + f" (the check said: {r.message})")
    result.notes += [f"review: {f} (the grader flags this for the instructor)"
                     for f in findings if f.severity == "warning"][:10]
    return result


def format_table(result: NotebookResult, name: str = "") -> str:
    n_ok = sum(r.status == "passed" for r in result.results)
    lines = [f"Self-check of {name or result.lesson} (lesson {result.lesson}, a fresh kernel, "
             f"{result.seconds:.0f} s): {n_ok} of {len(result.results)} exercises pass."]
    width = max([len(r.exercise) for r in result.results] + [8])
    for r in result.results:
        label = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "tampered": "FLAGGED",
                 "not attempted": "TO DO"}.get(r.status, r.status)
        detail = "" if r.status == "passed" else f"  {r.message}"
        lines.append(f"  {label:8s} {r.exercise:{width}s}{detail}".rstrip())
    for note in result.notes:
        lines.append(f"  note: {note}")
    if not result.all_passed:
        lines.append("Fix the failing exercises, save, and check again. The random cases differ from the ones in "
                     "the notebook, as they will when grading.")
    return "\n".join(lines)


def _current_notebook() -> Path | None:
    """The notebook this kernel belongs to, where the front end tells us (VS Code, JupyterLab)."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    candidates = []
    if ip is not None and ip.user_ns.get("__vsc_ipynb_file__"):
        candidates.append(Path(ip.user_ns["__vsc_ipynb_file__"]))
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        p = Path(session)
        candidates += [p] if p.is_absolute() else [Path.cwd() / p, Path.cwd() / p.name]
    for c in candidates:
        if c.suffix == ".ipynb" and c.is_file():
            return c
    return None


def _colab_notebook() -> Path | None:
    """On Colab, fetch the open notebook from the front end into a temporary file."""
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import _message  # type: ignore

        nb = _message.blocking_request("get_ipynb", request="", timeout_sec=30)["ipynb"]
    except Exception:
        return None
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="course-selfcheck-")) / "colab_notebook.ipynb"
    out.write_text(json.dumps(nb), encoding="utf-8")
    return out


def check_notebook_interactive(path: str | Path | None = None, *, lesson: str | None = None) -> NotebookResult | None:
    """``check.notebook()``: self-check this notebook from one of its cells and print a table.

    Save first: the self-check reads the saved file, in a fresh kernel, with new random cases.
    Pass ``path`` if the notebook cannot be found automatically; ``lesson`` (e.g. ``"03_melody_lstm"``,
    as each lesson's self-check cell does) names the notebook in the messages. When the cell runs
    straight after the one before it, as in Run All, it does nothing but say so.
    """
    name = f"{lesson}.ipynb" if lesson else "YOUR_NOTEBOOK.ipynb"
    if sidechannel.armed():
        print("The self-check does not run inside a self-check or grading run.")
        return None
    cells.watch()
    if cells.ran_straight_after():
        print("Self-check skipped: this cell ran straight after the one before it (as in Run All), and the "
              "self-check starts a second kernel. Save the notebook, then run this cell on its own.")
        return None
    if path is None:
        found = _current_notebook() or _colab_notebook()
        if found is None:
            print("Cannot tell which notebook this is: this notebook app does not say. Save it, then pass its path, "
                  f"e.g.\n    check.notebook('{name}')\n"
                  f"or run `python -m course check {default_workspace() / name}` in a terminal.")
            return None
        path = found
    path = Path(path)
    if not path.is_file():
        print(f"No notebook at {path}. Save it first, and pass the path of the .ipynb file.")
        return None
    print(f"Checking the saved {path.name} in a fresh kernel (unsaved changes are not seen; save first)...",
          flush=True)
    try:
        result = check_notebook(path)
    except ExerciseError as e:
        print(f"Self-check not possible: {e}")
        return None
    print(format_table(result, path.name))
    return None


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("notebook", type=Path, help="the saved notebook, e.g. work/00_welcome.ipynb")
    parser.add_argument("--lessons-dir", type=Path, default=None,
                        help="where the lesson notebooks are (default: the course's solutions/ or notebooks/)")
    parser.add_argument("--cell-timeout", type=float, default=300.0, metavar="S", help="seconds per cell (300)")
    parser.add_argument("--timeout", type=float, default=1200.0, metavar="S", help="seconds for the notebook (1200)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args) -> int:
    nbs.skip_slow_optional_imports()
    result = check_notebook(args.notebook, lessons_dir=args.lessons_dir, cell_timeout=args.cell_timeout,
                            notebook_timeout=args.timeout)
    if args.json:
        print(json.dumps({"lesson": result.lesson, "seconds": round(result.seconds, 1), "notes": result.notes,
                          "results": [r.__dict__ for r in result.results]}, indent=1))
    else:
        print(format_table(result, Path(args.notebook).name))
    return 0 if result.all_passed else 1
