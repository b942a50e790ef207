"""A checked run of one notebook: the machinery under the self-check and the grader.

:func:`prepare` makes a copy of a notebook that can be trusted to check it:

- every check cell is reset to the lesson's own check cell (a missing one is put back after the
  cell that defines the exercise's function), its expected output set to the pass line and given
  an execution count (nbval ignores cells without one);
- every other cell's saved outputs are removed, and cells tagged ``display-only`` (a plot, a
  score, a player: nothing later cells use) are skipped, since they cannot change a result and
  cost seconds;
- a first cell opens the side channel (:mod:`course.grading.sidechannel`).

:func:`run_prepared` runs the copy with nbval (``pytest --nbval-lax``) as a contained job
(:mod:`.sandbox`, :mod:`.nbval_runner`) and decides each exercise: it passes only when nbval saw
its check cell print exactly the pass line *and* the side channel holds exactly one record of the
real check from that cell, with the pass line and nothing found tampered with. A record that says
the course's code was changed (see :mod:`.sidechannel`), or more than one run of the check in its
cell, makes the exercise ``tampered``; a fail line that says the stub is still there makes it
``not attempted``. Messages name the cause first: an exercise whose function is defined in a cell
that is not valid Python says so, with the line, before what the check then saw.

Lesson: 00_welcome
"""
from __future__ import annotations

import copy
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExerciseError
from ..authoring import notebooks as nbs
from ..checks import env, lessons, load, pass_line
from ..checks.guard import NOT_IMPLEMENTED
from . import sandbox

__all__ = ["LessonChecks", "Prepared", "ExerciseResult", "NotebookResult", "load_lesson", "find_lessons",
           "default_lessons_dir", "prepare", "run_prepared", "cell_problem", "ARM_SOURCE"]

ROOT = Path(__file__).resolve().parents[2]
ARM_SOURCE = ("import course.grading.sidechannel as _course_sidechannel\n"
              "_course_sidechannel.arm()\n"
              "del _course_sidechannel")


# ------------------------------------------------------------------------------------ lessons
@dataclass
class LessonChecks:
    """A lesson's check cells, read from its solution (or student) notebook."""

    lesson: str
    path: Path
    checks: list[tuple[str, str]]                  # (exercise, check cell source), in order
    args: dict[str, list[str]] = field(default_factory=dict)   # exercise -> names its check passes
    problem: str | None = None                     # why this lesson cannot be checked (its notebook and checks differ)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.checks]

    def points(self, exercise: str) -> int:
        ex = load(exercise)
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
    cells = {}
    for i, name in nbs.check_cells(nb):
        if name is None:
            raise ExerciseError(f"{path.name}: check cell {i} calls no check.NAME(...).")
        cells.setdefault(name, nb.cells[i].source)
    # which exercises a lesson has is the registry's word (course.checks.lessons); the notebook gives the cells
    names = lessons().get(lesson, [])
    missing = [n for n in names if n not in cells]
    unknown = [n for n in cells if n not in names]
    problem = None
    if missing or unknown:       # only this lesson is out of order: say so when it is checked, not before
        problem = (f"{path.name} does not match the lesson's checks in course/checks: "
                   + "; ".join(filter(None, [f"no check cell for {', '.join(missing)}" if missing else "",
                                             f"check cells for exercises the lesson does not define: "
                                             f"{', '.join(unknown)}" if unknown else ""])) + ".")
        names = [n for n in names if n in cells] + unknown
    checks = [(n, cells[n]) for n in names]
    return LessonChecks(lesson, path, checks, {n: _call_args(src) for n, src in checks}, problem)


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


def _defined_names(source: str) -> set[str]:
    """``notebooks.defined_names``, but a cell too deep or too large to parse defines nothing."""
    try:
        return nbs.defined_names(source)
    except (RecursionError, MemoryError, Exception):
        return set()


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
            if cell.cell_type == "code" and wanted & _defined_names(cell.source):
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
    status: str           # passed, failed, not attempted, error, tampered
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


def run_prepared(prepared: Prepared, *, cell_timeout: float = 300.0, notebook_timeout: float = 1200.0,
                 limits: sandbox.Limits | None = None, seed: str = "self-check", max_output_kb: int = 1000,
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
        job_env = sandbox.job_env(scratch, {
            env.SEED: seed, env.TOKEN_FILE: token, env.RESULTS: records_path,
            env.MAX_OUTPUT: int(max_output_kb) * 1000, env.LESSON: prepared.lesson.lesson})
        cmd = sandbox.python_command("course.grading.nbval_runner") + [
            str(notebook), "--results", str(cells_path), "--cell-timeout", f"{cell_timeout:g}", *limits.to_args()]
        job = sandbox.run_job(cmd, cwd=scratch.work, env=job_env, timeout=notebook_timeout,
                              log_path=scratch.private / "log.txt")
        records = [r for r in _read_jsonl(records_path) if r.get("secret") == secret]
        cells = _read_jsonl(cells_path)
    finally:
        scratch.remove()
    return _decide(prepared, records, cells, job, notebook_timeout)


def _syntax_errors(prepared: Prepared) -> dict[int, tuple[str, str, set[str]]]:
    """``{code-cell number: (its first line, the syntax error, the names it means to define)}``."""
    out = {}
    check_nums = set(prepared.cell_of.values())
    code_cells = [c for c in prepared.nb.cells if c.cell_type == "code"]
    for num, cell in enumerate(code_cells):
        if num in check_nums or cell.source == ARM_SOURCE:
            continue
        problem = nbs.syntax_error(cell.source)
        if problem:
            first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            out[num] = (first[:60], problem, _defined_names(cell.source))
    return out


def _syntax_cause(name: str, prepared: Prepared, syntax: dict, status: str, msg: str) -> str | None:
    """The syntax error behind an exercise's failure: in a cell that defines what its check is given,
    or, when the check's cell found a name missing, in any cell before it."""
    wanted = set(prepared.lesson.args.get(name) or [name])
    hits = [num for num, (_, _, names) in syntax.items() if names & wanted]
    if not hits and status == "error" and "NameError" in msg:
        hits = [num for num in syntax if num < prepared.cell_of.get(name, 0)]
    if not hits:
        return None
    first, problem, _ = syntax[hits[-1]]
    return f"the code cell starting {first!r} is not valid Python: {problem}; fix it and run it again"


def _decide(prepared: Prepared, records: list[dict], cells: list[dict], job, notebook_timeout: float) -> NotebookResult:
    done = any(c.get("done") for c in cells)
    by_cell: dict[int, dict] = {}
    for c in cells:
        if "cell" in c and isinstance(c.get("cell"), int):
            prev = by_cell.get(c["cell"])
            if prev is None or prev.get("outcome") == "passed":
                by_cell[c["cell"]] = c
    syntax = _syntax_errors(prepared)
    notes = [f"the code cell starting {first!r} is not valid Python: {problem}"
             for first, problem, _ in syntax.values()]
    if job.timed_out:
        notes.append(f"the notebook ran longer than {notebook_timeout:g} s and was stopped")
    elif not done:
        notes.append("the notebook run ended early (the kernel or the checker was stopped)")
    check_nums = set(prepared.cell_of.values())
    code_cells = [c for c in prepared.nb.cells if c.cell_type == "code"]
    for num, c in sorted(by_cell.items()):
        if num not in check_nums and num not in syntax and c.get("outcome") == "failed" and 0 < num < len(code_cells):
            first = next((ln.strip() for ln in code_cells[num].source.splitlines() if ln.strip()), "")
            notes.append(f"the code cell starting {first[:60]!r}: {cell_problem(c.get('message', ''))}")
    results = []
    for name in prepared.lesson.names:
        num = prepared.cell_of.get(name)
        want = nbs.source_hash(prepared.source_of.get(name, ""))
        recs = [r for r in records if r.get("exercise") == name and r.get("cell") == want]
        line = str(recs[-1].get("line", "")) if recs else None
        rep = by_cell.get(num)
        ok_line = pass_line(name)
        tampered = next((str(r["tampered"]) for r in recs if r.get("tampered")), None)
        if tampered:
            status, msg = "tampered", f"the check was interfered with: {tampered[:300]}"
        elif len(recs) > 1:
            status, msg = "tampered", (f"the check ran {len(recs)} times in its cell (called again from the "
                                       "notebook's own code?); only one run is expected")
        elif line == ok_line:
            if rep is not None and rep.get("outcome") != "passed":
                status, msg = "failed", ("the check passed, but its cell printed more than the pass line "
                                         f"({cell_problem(rep.get('message', ''))})")
            else:
                status, msg = "passed", ok_line
        elif line:
            status, msg = line_status(name, line), line
        elif rep is not None and rep.get("outcome") == "passed":
            status, msg = "tampered", ("the check cell showed the pass line, but the course's check did not "
                                       "pass it there (was a check function or print replaced?)")
        elif rep is not None:
            status, msg = "error", f"the check did not run ({cell_problem(rep.get('message', ''))})"
        else:
            status, msg = "error", "the notebook stopped before this check ran (time limit, crash or exit)"
        results.append(exercise_result(name, prepared, syntax, status, msg))
    return NotebookResult(prepared.lesson.lesson, results, job.seconds, notes)


def line_status(name: str, line: str) -> str:
    """``not attempted`` for a check's FAIL line that says the stub is still there, else ``failed``."""
    stub = line.startswith(f"FAIL {name}: case ") and f": {NOT_IMPLEMENTED} (" in line
    return "not attempted" if stub else "failed"


def exercise_result(name: str, prepared: Prepared, syntax: dict, status: str, msg: str) -> ExerciseResult:
    """An exercise's result, with the syntax error behind a failure named first and the repairs noted."""
    points = prepared.lesson.points(name)
    cause = _syntax_cause(name, prepared, syntax, status, msg) if status in ("failed", "error") else None
    if cause:
        status, msg = "error", f"{cause} (then the check said: {msg})"
    for extra in prepared.notes.get(name, []):
        msg += f" [{extra}]"
    return ExerciseResult(name, status, msg, points if status == "passed" else 0, points)
