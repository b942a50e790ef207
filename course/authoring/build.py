"""``python -m course build``: make the student notebooks in ``notebooks/`` from ``solutions/``.

For each ``solutions/NN_topic.ipynb`` the build writes ``notebooks/NN_topic.ipynb`` in which

- code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is a stub raising ``NotImplementedError``;
- outputs are cleared, execution counts are null, widget state and timing metadata are gone;
- the setup cell (first line ``# SETUP``) holds the standard setup text and the Colab badge in the
  first markdown cell points at the notebook itself;
- check cells cannot be edited or deleted in JupyterLab, and ``metadata.course.lesson`` names the lesson.

The output depends only on the solution notebook, so ``build --check`` can prove that
``notebooks/`` is exactly what the build makes (it writes nothing and exits 1 on any drift).

The build never silently replaces a student's work. A file in ``notebooks/`` is replaced only
when it is what git has committed for it, or looks exactly like a build's output (no outputs or
execution counts, every exercise cell still its stub, nothing a notebook app or an editor changed:
see :func:`student_work`). Any other file is left alone, named, with how to keep it; ``--force``
replaces it after copying it to ``work/backups/<date-time>/`` beside ``notebooks/``.
``build --execute [NN ...]`` first re-runs the solution notebooks in fast mode (see
:mod:`course.authoring.execute`), cleans their outputs, verifies every check cell shows its pass
line, and writes them back.

Lesson: 00_welcome
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import ExerciseError
from ..files import atomic_write, create_new
from ..workspace import WORK_FOLDER
from . import notebooks as nbs
from .transforms import build_notebook, normalize

__all__ = ["student_path", "lesson_files", "check_tree", "build_tree", "student_work", "BuildResult",
           "add_arguments", "run"]

ROOT = Path(__file__).resolve().parents[2]          # the repository (an editable install)


def student_path(solution: Path, notebooks_dir: Path) -> Path:
    return notebooks_dir / solution.name


def lesson_files(solutions_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The lesson notebooks ``NN_topic.ipynb`` in ``solutions_dir``, optionally only lessons ``only`` (``"00"``...)."""
    files = sorted(p for p in Path(solutions_dir).glob("*.ipynb") if nbs.lesson_id_from_path(p))
    if only:
        wanted = {str(x).zfill(2)[:2] if str(x).isdigit() else str(x) for x in only}
        files = [p for p in files if p.stem[:2] in wanted or p.stem in wanted]
        missing = wanted - {p.stem[:2] for p in files} - {p.stem for p in files}
        if missing:
            raise ExerciseError(f"No solution notebook for lesson(s) {', '.join(sorted(missing))} in {solutions_dir}.")
    return files


def expected_outputs(solutions_dir: Path, notebooks_dir: Path, only: list[str] | None = None) -> dict[Path, str]:
    """What the build writes: ``{student notebook path: JSON text}``."""
    out = {}
    for sol in lesson_files(solutions_dir, only):
        lesson = sol.stem
        nb = nbs.read_notebook(sol)
        out[student_path(sol, notebooks_dir)] = nbs.dumps(build_notebook(nb, lesson, notebooks_dir.name))
    return out


def _committed(path: Path) -> str | None:
    """The text git has committed for ``path`` (None outside a git checkout, untracked, or without git)."""
    try:
        out = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"], capture_output=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def student_work(path: Path, text: str, expected: str) -> list[str]:
    """Why the notebook ``text`` at ``path`` holds work the build did not make (empty: the build may replace it).

    ``expected`` is what the build would write there now. The file may be replaced when it is that,
    or what git has committed for it, or the output of a build from another version of the solution:
    no outputs, no execution counts, every exercise cell (a stub in ``expected``, matched by cell id)
    still its stub, and the build's own transform leaves it unchanged (a notebook app that saved it
    adds metadata; an editor changes cells).
    """
    if text == expected or text == _committed(path):
        return []
    try:
        nb = nbs.parse_notebook(text, where=path.name)
    except ExerciseError as e:
        return [f"cannot be read as a notebook ({e})"]
    reasons = []
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    if ran:
        reasons.append(f"holds the outputs of a run ({len(ran)} code cell(s))")
    stubs = {c.get("id") for c in nbs.parse_notebook(expected, where=path.name).cells
             if c.cell_type == "code" and nbs.STUB_LINES[1] in c.source}
    answered = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and c.get("id") in stubs and nbs.STUB_LINES[1] not in c.source]
    if answered:
        reasons.append("has code in place of the stub in exercise cell(s) " + ", ".join(map(str, answered[:6])))
    if not reasons:
        lesson = path.stem
        if nbs.dumps(normalize(nb, lesson, f"{path.parent.name}/{path.name}", student=True)) != text:
            reasons.append("was saved by a notebook app or edited since the build wrote it")
    return reasons


def _work(notebooks_dir: Path) -> Path:
    """The course's default workspace beside ``notebooks_dir`` (``work/``, which git ignores)."""
    return notebooks_dir.parent / WORK_FOLDER


def _keep_hint(notebooks_dir: Path) -> str:
    work = _work(notebooks_dir)
    return (f"To keep that work, move the file(s) into your workspace (e.g. {work}/), which `python -m course start` "
            f"fills with fresh copies and never overwrites; or run `python -m course build --force`, which first "
            f"copies them to {work / 'backups'}/.")


def check_tree(solutions_dir: Path, notebooks_dir: Path) -> list[str]:
    """Differences between ``notebooks_dir`` and what the build would write (empty: no drift)."""
    problems = []
    expected = expected_outputs(solutions_dir, notebooks_dir)
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path}: missing (run `python -m course build`)")
            continue
        current = path.read_text(encoding="utf-8")
        if current == text:
            continue
        work = student_work(path, current, text)
        if work:
            problems.append(f"{path}: holds work the build did not make (it {'; it '.join(work)}). "
                            + _keep_hint(notebooks_dir))
        else:
            problems.append(f"{path}: differs from what the build makes from {solutions_dir.name}/{path.name} "
                            "(edit the solution, then run `python -m course build`)")
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        if path not in expected and nbs.lesson_id_from_path(path):
            problems.append(f"{path}: has no solution notebook in {solutions_dir} (delete it or add the solution)")
    return problems


@dataclass
class BuildResult:
    """What :func:`build_tree` did: files written, files left alone (with why), backups made."""

    written: list[Path] = field(default_factory=list)
    refused: dict[Path, list[str]] = field(default_factory=dict)
    backups: dict[Path, Path] = field(default_factory=dict)


def build_tree(solutions_dir: Path, notebooks_dir: Path, only: list[str] | None = None, *,
               force: bool = False) -> BuildResult:
    """Write the student notebooks, never replacing student work unless ``force`` (then after a backup)."""
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    result = BuildResult()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for path, text in expected_outputs(solutions_dir, notebooks_dir, only).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        work = student_work(path, current, text) if current is not None else []
        if work and not force:
            result.refused[path] = work
            continue
        if work:
            backup = _work(notebooks_dir) / "backups" / stamp / path.name
            result.backups[path] = create_new(backup, current)
        atomic_write(path, text)
        result.written.append(path)
    return result


def refusal(result: BuildResult, notebooks_dir: Path) -> str:
    """The message for the notebooks the build left alone."""
    lines = [f"Not overwriting {len(result.refused)} notebook(s) in {notebooks_dir} that hold work the build did "
             "not make:"]
    lines += [f"  {path}: it {'; it '.join(why)}" for path, why in result.refused.items()]
    lines.append(_keep_hint(notebooks_dir))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("lessons", nargs="*", metavar="NN",
                        help="with --execute: the lessons to re-execute (default: all); e.g. 00 03")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the notebooks that differ from what the build makes")
    parser.add_argument("--execute", action="store_true",
                        help="first re-execute the solution notebooks in fast mode, clean their outputs and "
                             "verify every check cell shows its pass line")
    parser.add_argument("--only", action="append", metavar="NN", default=[],
                        help="only these lessons (repeatable)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="with --execute: notebooks executed at once (default: the number of CPU cores)")
    parser.add_argument("--cell-timeout", type=float, default=600.0, metavar="S",
                        help="with --execute: seconds a cell may run (default 600)")
    parser.add_argument("--force", action="store_true",
                        help="also replace notebooks that hold student work (outputs, answers, edits), after "
                             "copying each to work/backups/")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="solution notebooks folder")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="student notebooks folder")


def run(args) -> int:
    nbs.skip_slow_optional_imports()
    only = [*args.only, *args.lessons] or None
    solutions_dir, notebooks_dir = Path(args.solutions), Path(args.notebooks)
    if not solutions_dir.is_dir():
        raise ExerciseError(f"No solutions folder at {solutions_dir}.")
    if args.check:
        if args.execute or args.force:
            raise ExerciseError("--check writes nothing, so it cannot be combined with --execute or --force.")
        problems = check_tree(solutions_dir, notebooks_dir)
        for p in problems:
            print(p)
        if problems:
            print(f"{len(problems)} notebook(s) out of date.", file=sys.stderr)
            return 1
        print(f"{notebooks_dir}: up to date ({len(lesson_files(solutions_dir))} lessons).")
        return 0
    if args.execute:
        from .execute import execute_lessons

        files = lesson_files(solutions_dir, only)
        if not files:
            print(f"No solution notebooks in {solutions_dir}.")
            return 1
        ok = execute_lessons(files, jobs=args.jobs, cell_timeout=args.cell_timeout)
        if not ok:
            print("Not building notebooks/ because some solution notebooks failed (see above).", file=sys.stderr)
            return 1
    result = build_tree(solutions_dir, notebooks_dir, only, force=args.force)
    for p, backup in result.backups.items():
        print(f"kept a copy of {p} in {backup}")
    for p in result.written:
        print(f"wrote {p}")
    left = f", {len(result.refused)} left alone" if result.refused else ""
    print(f"{notebooks_dir}: {len(result.written)} notebook(s) written{left}, the rest already up to date.")
    if result.refused:
        print(refusal(result, notebooks_dir), file=sys.stderr)
        return 1
    return 0
