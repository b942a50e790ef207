"""``python -m course check NOTEBOOK``: check a saved notebook in a fresh kernel, as the grader will.

The saved file is never trusted: a copy is prepared in a scratch folder, with

- every check cell reset to the lesson's own check cell (a missing one is put back after the cell
  that defines the exercise's function), its expected output set to the pass line and given an
  execution count (nbval ignores cells without one);
- every other cell's saved outputs removed, and cells tagged ``display-only`` (a plot, a score, a
  player: nothing later cells use) skipped, since they cannot change a result and cost seconds;
- a first cell that arms the checks' side channel (:func:`course.exercises.checking._arm_grading`).

Then nbval (``pytest --nbval-lax``) runs the copy in a contained job (:mod:`.sandbox`,
:mod:`.nbval_runner`). An exercise passes only when nbval saw its check cell print exactly the
pass line *and* the side channel holds the real check's pass record from that cell. The grader
(:mod:`.grade`) uses the same machinery; the self-check differs only in running one notebook, with
its own random cases (different from the notebook's, like the grader's), and printing a table.

In a notebook, ``check.notebook()`` does the same for the notebook you are working on.

Lesson: 00_welcome
"""
from __future__ import annotations

import copy
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExerciseError
from . import notebooks as nbs
from . import sandbox
from .checking import EXERCISES, pass_line

__all__ = ["LessonChecks", "Prepared", "ExerciseResult", "NotebookResult", "load_lesson", "find_lessons",
           "default_lessons_dir", "prepare", "run_prepared", "check_notebook", "check_notebook_interactive",
           "format_table", "add_arguments", "run"]

ROOT = Path(__file__).resolve().parents[2]
ARM_SOURCE = ("import course.exercises.checking as _course_checking\n"
              "_course_checking._arm_grading()\n"
              "del _course_checking")
SELFCHECK_SEED = "self-check"


# ------------------------------------------------------------------------------------ lessons
@dataclass
class LessonChecks:
    """A lesson's check cells, read from its solution (or student) notebook."""

    lesson: str
    path: Path
    checks: list[tuple[str, str]]                  # (exercise, check cell source), in order
    args: dict[str, list[str]] = field(default_factory=dict)   # exercise -> names its check passes

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.checks]

    def points(self, exercise: str) -> int:
        from . import load_all

        load_all()
        ex = EXERCISES.get(exercise)
        return int(ex.points) if ex is not None else 1


def _call_args(source: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "check"):
            return [a.id for a in node.args if isinstance(a, ast.Name)]
    return []


def load_lesson(path: str | Path) -> LessonChecks:
    """The check cells of the lesson notebook at ``path`` (``NN_topic.ipynb``)."""
    path = Path(path)
    lesson = nbs.lesson_id_from_path(path)
    if lesson is None:
        raise ExerciseError(f"{path.name} is not named like a lesson (NN_topic.ipynb).")
    nb = nbs.read_notebook(path)
    checks, args = [], {}
    for i, name in nbs.check_cells(nb):
        if name is None:
            raise ExerciseError(f"{path.name}: check cell {i} calls no check.NAME(...).")
        checks.append((name, nb.cells[i].source))
        args[name] = _call_args(nb.cells[i].source)
    return LessonChecks(lesson, path, checks, args)


def default_lessons_dir() -> Path:
    """``solutions/`` of the course repository, else ``notebooks/`` (both hold the same check cells)."""
    for name in ("solutions", "notebooks"):
        d = ROOT / name
        if d.is_dir() and any(d.glob("[0-9][0-9]_*.ipynb")):
            return d
    raise ExerciseError("Cannot find the lesson notebooks (solutions/ or notebooks/ of the course); "
                        "pass --lessons-dir.")


def find_lessons(lessons_dir: str | Path | None = None) -> dict[str, LessonChecks]:
    """Every lesson in ``lessons_dir``: ``{lesson id: LessonChecks}``."""
    d = Path(lessons_dir) if lessons_dir else default_lessons_dir()
    out = {}
    for p in sorted(d.glob("*.ipynb")):
        if nbs.lesson_id_from_path(p):
            out[p.stem] = load_lesson(p)
    if not out:
        raise ExerciseError(f"No lesson notebooks (NN_topic.ipynb) in {d}.")
    return out


# ------------------------------------------------------------------------------------ preparing
@dataclass
class Prepared:
    """A notebook made ready for checking."""

    nb: object
    lesson: LessonChecks
    cell_of: dict[str, int]          # exercise -> nbval's code-cell number of its check cell
    source_of: dict[str, str]        # exercise -> the check cell's source as run
    notes: dict[str, list[str]]      # exercise -> what was repaired ("check cell edited: restored")


def _check_source(lesson_source: str) -> str:
    """The lesson's check cell as run by the checker: it re-imports ``check`` first."""
    lines = lesson_source.splitlines()
    marker = [ln for ln in lines if ln.strip() == nbs.CHECK_MARKER]
    rest = [ln for ln in lines if ln.strip() != nbs.CHECK_MARKER]
    return "\n".join(marker[:1] + ["from course import check"] + rest)


def prepare(nb, lesson: LessonChecks, arm: bool = True) -> Prepared:
    """A copy of ``nb`` with the lesson's check cells (expected outputs injected) and no saved outputs."""
    import nbformat

    nb = copy.deepcopy(nb)
    notes: dict[str, list[str]] = {}
    found: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        tags = cell.metadata.get("tags")
        if isinstance(tags, list) and nbs.DISPLAY_ONLY_TAG in tags and "nbval-skip" not in tags:
            cell.metadata["tags"] = [*tags, "nbval-skip"]       # shows or plays only: no need to run it
        if nbs.is_check_cell(cell):
            name = nbs.check_name(cell.source)
            if name in lesson.names and name not in found:
                found[name] = i
    lesson_src = dict(lesson.checks)
    for name in lesson.names:
        if name in found:
            if found[name] is not None and nb.cells[found[name]].source.strip() != lesson_src[name].strip():
                notes.setdefault(name, []).append("the check cell had been edited; the lesson's check cell was used")
            continue
        # re-insert after the last cell defining the function(s) the check is given
        wanted = set(lesson.args.get(name) or [name])
        at = None
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and wanted & nbs.defined_names(cell.source):
                at = i
        new = nbformat.v4.new_code_cell(lesson_src[name])
        new.pop("id", None)
        if at is None:
            nb.cells.append(new)
            notes.setdefault(name, []).append("the check cell was missing and nothing defines "
                                              f"{'/'.join(sorted(wanted))}; a check cell was added at the end")
        else:
            nb.cells.insert(at + 1, new)
            notes.setdefault(name, []).append("the check cell was missing; it was put back")
        found = {k: (v + 1 if v is not None and at is not None and v > at else v) for k, v in found.items()}
        found[name] = at + 1 if at is not None else len(nb.cells) - 1
    source_of = {}
    for name, i in found.items():
        cell = nb.cells[i]
        cell.source = _check_source(lesson_src[name])
        cell.metadata = {}
        cell.outputs = [nbs.pass_output(name)]
        cell.execution_count = 1
        source_of[name] = cell.source
    if arm:
        first = nbformat.v4.new_code_cell(ARM_SOURCE)
        first.pop("id", None)
        nb.cells.insert(0, first)
    for cell in nb.cells:          # ids are optional for checking; drop any the student broke
        cell.pop("id", None)
    nb.nbformat, nb.nbformat_minor = 4, 4
    code_num, cell_of = {}, {}
    k = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            code_num[i] = k
            k += 1
    shift = 1 if arm else 0
    for name, i in found.items():
        cell_of[name] = code_num[i + shift]
    return Prepared(nb, lesson, cell_of, source_of, notes)


# ------------------------------------------------------------------------------------ running
@dataclass
class ExerciseResult:
    exercise: str
    status: str           # passed, failed, error, tampered
    message: str
    points: int
    max_points: int


@dataclass
class NotebookResult:
    lesson: str
    results: list[ExerciseResult]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and all(r.status == "passed" for r in self.results)


def _read_jsonl(path: Path, limit: int = 5_000_000) -> list[dict]:
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b:?\s*(.*)$")


def cell_problem(message: str) -> str:
    """One sentence from nbval's failure text for a cell."""
    if message.startswith("KERNEL DIED"):
        return "the kernel stopped while this cell ran (a crash, os._exit(), or too much memory?)"
    if message.startswith("NOT RUN"):
        return "not run: an earlier cell stopped the kernel or ran out of time"
    if "Timeout of" in message:
        return "the cell ran longer than the time limit and was stopped"
    if "Kernel dead" in message or "kernel died" in message.lower():
        return "the kernel had stopped (a crash, os._exit(), or too much memory?)"
    found = None
    for line in message.splitlines():
        m = _ERROR_LINE.match(line.strip())
        if m:
            found = f"{m.group(1)}: {m.group(2)}".strip().rstrip(":")
    if found:
        return f"the cell raised {found[:200]}"
    if "Timeout of" in message or "waiting for output" in message:
        return "the kernel stopped answering"
    if "outputs differ" in message:
        return "the cell printed something other than its expected line"
    last = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return (last[-1][:200] if last else "the cell failed")


def run_prepared(prepared: Prepared, *, cell_timeout: float = 120.0, notebook_timeout: float = 600.0,
                 limits: sandbox.Limits | None = None, seed: str = SELFCHECK_SEED, max_output_kb: int = 1000,
                 scratch_base: str | Path | None = None) -> NotebookResult:
    """Run a prepared notebook as a contained job and decide each exercise (see the module docstring)."""
    limits = limits or sandbox.Limits()
    scratch = sandbox.make_scratch(base=scratch_base, owner=limits.run_as)
    try:
        secret = secrets.token_hex(16)
        token = scratch.private / "token"
        token.write_text(secret, encoding="utf-8")
        records_path, cells_path = scratch.private / "records.jsonl", scratch.private / "cells.jsonl"
        if limits.run_as:
            os.chown(token, *limits.run_as)
        notebook = scratch.work / "notebook.ipynb"
        notebook.write_text(nbs.dumps(prepared.nb), encoding="utf-8")
        env = sandbox.job_env(scratch, {
            "COURSE_GRADING_SEED": seed, "COURSE_GRADING_TOKEN_FILE": token,
            "COURSE_GRADING_RESULTS": records_path, "COURSE_GRADING_MAX_OUTPUT": int(max_output_kb) * 1000})
        cmd = sandbox.python_command("course.exercises.nbval_runner") + [
            str(notebook), "--results", str(cells_path), "--cell-timeout", f"{cell_timeout:g}", *limits.to_args()]
        job = sandbox.run_job(cmd, cwd=scratch.work, env=env, timeout=notebook_timeout,
                              log_path=scratch.private / "log.txt")
        records = [r for r in _read_jsonl(records_path) if r.get("secret") == secret]
        cells = _read_jsonl(cells_path)
    finally:
        scratch.remove()
    return _decide(prepared, records, cells, job, notebook_timeout)


def _decide(prepared: Prepared, records: list[dict], cells: list[dict], job, notebook_timeout: float) -> NotebookResult:
    done = any(c.get("done") for c in cells)
    by_cell: dict[int, dict] = {}
    for c in cells:
        if "cell" in c and isinstance(c.get("cell"), int):
            prev = by_cell.get(c["cell"])
            if prev is None or prev.get("outcome") == "passed":
                by_cell[c["cell"]] = c
    notes = []
    if job.timed_out:
        notes.append(f"the notebook ran longer than {notebook_timeout:g} s and was stopped")
    elif not done:
        notes.append("the notebook run ended early (the kernel or the checker was stopped)")
    check_nums = set(prepared.cell_of.values())
    code_cells = [c for c in prepared.nb.cells if c.cell_type == "code"]
    for num, c in sorted(by_cell.items()):
        if num not in check_nums and c.get("outcome") == "failed" and 0 < num < len(code_cells):
            first = next((ln.strip() for ln in code_cells[num].source.splitlines() if ln.strip()), "")
            notes.append(f"the code cell starting {first[:60]!r}: {cell_problem(c.get('message', ''))}")
    results = []
    for name in prepared.lesson.names:
        points = prepared.lesson.points(name)
        num = prepared.cell_of.get(name)
        want = nbs.source_hash(prepared.source_of.get(name, ""))
        recs = [r for r in records if r.get("exercise") == name and r.get("cell") == want]
        line = str(recs[-1].get("line", "")) if recs else None
        rep = by_cell.get(num)
        ok_line = pass_line(name)
        if line == ok_line:
            if rep is not None and rep.get("outcome") != "passed":
                status, msg = "failed", ("the check passed, but its cell printed more than the pass line "
                                         f"({cell_problem(rep.get('message', ''))})")
            else:
                status, msg = "passed", ok_line
        elif line:
            status, msg = "failed", line
        elif rep is not None and rep.get("outcome") == "passed":
            status, msg = "tampered", ("the check cell showed the pass line, but the course's check did not "
                                       "pass it there (was a check function or print replaced?)")
        elif rep is not None:
            status, msg = "error", f"the check did not run ({cell_problem(rep.get('message', ''))})"
        else:
            status, msg = "error", "the notebook stopped before this check ran (time limit, crash or exit)"
        for extra in prepared.notes.get(name, []):
            msg += f" [{extra}]"
        results.append(ExerciseResult(name, status, msg, points if status == "passed" else 0, points))
    return NotebookResult(prepared.lesson.lesson, results, job.seconds, notes)


# ------------------------------------------------------------------------------------ self-check
def check_notebook(path: str | Path, *, lessons_dir: str | Path | None = None, cell_timeout: float = 120.0,
                   notebook_timeout: float = 900.0, memory_mb: int | None = 4096) -> NotebookResult:
    """Self-check the saved notebook at ``path``; returns the per-exercise results."""
    path = Path(path)
    nb = nbs.read_notebook(path)
    lessons = find_lessons(lessons_dir)
    match = nbs.lesson_of(nb, path, {k: v.names for k, v in lessons.items()})
    if match.lesson is None:
        raise ExerciseError(f"{path.name} does not look like a lesson notebook of this course "
                            "(no course metadata, no NN_ file name, no known check cells).")
    prepared = prepare(nb, lessons[match.lesson])
    return run_prepared(prepared, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                        limits=sandbox.Limits(memory_mb=memory_mb), seed=SELFCHECK_SEED)


def format_table(result: NotebookResult, name: str = "") -> str:
    n_ok = sum(r.status == "passed" for r in result.results)
    lines = [f"Self-check of {name or result.lesson} (lesson {result.lesson}, a fresh kernel, "
             f"{result.seconds:.0f} s): {n_ok} of {len(result.results)} exercises pass."]
    width = max([len(r.exercise) for r in result.results] + [8])
    for r in result.results:
        label = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "tampered": "FLAGGED"}.get(r.status, r.status)
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


def check_notebook_interactive(path: str | Path | None = None) -> NotebookResult | None:
    """``check.notebook()``: self-check this notebook from one of its cells and print a table.

    Save first: the self-check reads the saved file, in a fresh kernel, with new random cases.
    Pass ``path`` if the notebook cannot be found automatically.
    """
    from . import checking

    if checking._recorder is not None:
        print("The self-check does not run inside a self-check or grading run.")
        return None
    if path is None:
        found = _current_notebook() or _colab_notebook()
        if found is None:
            print("Cannot tell which notebook this is. Save it, then pass its path, e.g.\n"
                  "    check.notebook('00_welcome.ipynb')\n"
                  "or run `python -m course check notebooks/00_welcome.ipynb` in a terminal.")
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
    parser.add_argument("notebook", type=Path, help="the saved notebook, e.g. notebooks/00_welcome.ipynb")
    parser.add_argument("--lessons-dir", type=Path, default=None,
                        help="where the lesson notebooks are (default: the course's solutions/ or notebooks/)")
    parser.add_argument("--cell-timeout", type=float, default=120.0, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="S", help="seconds for the notebook (900)")
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
