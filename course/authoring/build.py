"""``python -m course build``: make the student notebooks in ``notebooks/`` from ``solutions/``.

For each ``solutions/NN_topic.ipynb`` the build writes ``notebooks/NN_topic.ipynb`` in which

- code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is a stub raising ``NotImplementedError``;
- outputs are cleared, execution counts are null, widget state and timing metadata are gone;
- the setup cell (first line ``# SETUP``) holds the standard setup text and the Colab badge in the
  first markdown cell points at the notebook itself;
- check cells cannot be edited or deleted in JupyterLab, and ``metadata.course.lesson`` names the lesson.

The output depends only on the solution notebook, so ``build --check`` can prove that
``notebooks/`` is exactly what the build makes (it writes nothing and exits 1 on any drift).
``build --execute [NN ...]`` first re-runs the solution notebooks in fast mode (see
:mod:`course.authoring.execute`), cleans their outputs, verifies every check cell shows its pass
line, and writes them back.

Lesson: 00_welcome
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ExerciseError
from ..files import atomic_write
from . import notebooks as nbs
from .transforms import build_notebook

__all__ = ["student_path", "lesson_files", "check_tree", "build_tree", "add_arguments", "run"]

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


def check_tree(solutions_dir: Path, notebooks_dir: Path) -> list[str]:
    """Differences between ``notebooks_dir`` and what the build would write (empty: no drift)."""
    problems = []
    expected = expected_outputs(solutions_dir, notebooks_dir)
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path}: missing (run `python -m course build`)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what the build makes from {solutions_dir.name}/{path.name} "
                            "(edit the solution, then run `python -m course build`)")
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        if path not in expected and nbs.lesson_id_from_path(path):
            problems.append(f"{path}: has no solution notebook in {solutions_dir} (delete it or add the solution)")
    return problems


def build_tree(solutions_dir: Path, notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    """Write the student notebooks; returns the files that changed."""
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for path, text in expected_outputs(solutions_dir, notebooks_dir, only).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write(path, text)
            changed.append(path)
    return changed


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
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="solution notebooks folder")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="student notebooks folder")


def run(args) -> int:
    nbs.skip_slow_optional_imports()
    only = [*args.only, *args.lessons] or None
    solutions_dir, notebooks_dir = Path(args.solutions), Path(args.notebooks)
    if not solutions_dir.is_dir():
        raise ExerciseError(f"No solutions folder at {solutions_dir}.")
    if args.check:
        if args.execute:
            raise ExerciseError("--check writes nothing, so it cannot be combined with --execute.")
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
    changed = build_tree(solutions_dir, notebooks_dir, only)
    for p in changed:
        print(f"wrote {p}")
    print(f"{notebooks_dir}: {len(changed)} notebook(s) written, the rest already up to date.")
    return 0
