"""``python -m course build --execute``: re-run solution notebooks in fast mode and clean them.

Each notebook runs in a fresh kernel from this very environment (``COURSE_FAST=1``, a
temporary working folder, a time limit per cell), several notebooks at once. Afterwards its
outputs are cleaned for git (:func:`course.authoring.notebooks.sanitize_outputs`) and checked:
no cell may raise (unless tagged ``raises-exception`` or marked ``# NBVAL_RAISES_EXCEPTION``)
and every check cell must show exactly its pass line. Only then is the solution written
back; a failing notebook is left as it was and its executed copy goes to
``build/failed/`` for a look.

Lesson: 00_welcome
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..checks.guard import pass_line
from ..checks import env
from ..files import atomic_write
from . import notebooks as nbs
from .kernels import current_env_kernel
from .transforms import normalize

__all__ = ["ExecutionReport", "execute_notebook", "execute_lessons"]

_SKIP_TAG = "skip-execution"


@dataclass
class ExecutionReport:
    path: str
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    size: int = 0


def _marked(cell, marker: str, tag: str) -> bool:
    tags = cell.get("metadata", {}).get("tags", []) or []
    if tag in tags:
        return True
    return any(ln.strip().startswith("#") and ln.strip().lstrip("#").strip() == marker
               for ln in cell.get("source", "").splitlines())


def _verify(nb) -> list[str]:
    """Problems in an executed solution notebook: errors, and check cells without their pass line."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or _marked(cell, "NBVAL_SKIP", "nbval-skip"):
            continue
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors and not _marked(cell, "NBVAL_RAISES_EXCEPTION", "raises-exception"):
            e = errors[0]
            problems.append(f"cell {i} raised {e.get('ename')}: {str(e.get('evalue', ''))[:200]}")
        if nbs.is_check_cell(cell):
            name = nbs.check_name(cell.source)
            if name is None:
                problems.append(f"cell {i} is marked {nbs.CHECK_MARKER} but calls no check.NAME(...)")
                continue
            text = nbs.cell_text_output(cell)
            if text != pass_line(name) + "\n":
                shown = text.strip().splitlines()[0][:300] if text.strip() else "nothing"
                problems.append(f"check cell {i} ({name}) printed {shown!r}, not its pass line")
            else:
                cell.outputs = [nbs.pass_output(name)]
    return problems


def execute_notebook(path: str | Path, cell_timeout: float = 600.0, write: bool = True,
                     failed_dir: str | Path | None = None) -> ExecutionReport:
    """Execute one solution notebook in fast mode; clean, verify and (if all is well) write it back."""
    from nbclient import NotebookClient

    path = Path(path)
    report = ExecutionReport(str(path))
    t0 = time.monotonic()
    nb = nbs.read_notebook(path)
    lesson = path.stem
    nb = normalize(nb, lesson, f"{path.parent.name}/{path.name}", student=False)
    added_skip = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _marked(cell, "NBVAL_SKIP", "nbval-skip"):
            tags = cell.metadata.setdefault("tags", [])
            if _SKIP_TAG not in tags:
                tags.append(_SKIP_TAG)
                added_skip.append(i)
    os.environ["COURSE_FAST"] = "1"
    os.environ.pop("MPLBACKEND", None)      # the kernel's inline backend, so figures are kept
    os.environ.pop(env.SEED, None)
    workdir = tempfile.mkdtemp(prefix=f"course-execute-{lesson}-")
    try:
        km = current_env_kernel(workdir)
        client = NotebookClient(nb, km=km, timeout=cell_timeout, allow_errors=True,
                                record_timing=False, store_widget_state=False, startup_timeout=120,
                                resources={"metadata": {"path": workdir}})
        try:
            client.execute()
        except Exception as e:  # a dead kernel, a timeout: report, never crash the build
            last = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
            report.problems.append(f"execution stopped: {type(e).__name__}: {last}")
        finally:
            try:
                if km.has_kernel:
                    km.shutdown_kernel(now=False)
            except Exception:
                pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for i in added_skip:
        nb.cells[i].metadata["tags"].remove(_SKIP_TAG)
        if not nb.cells[i].metadata["tags"]:
            del nb.cells[i].metadata["tags"]
    report.notes += nbs.sanitize_outputs(nb)
    report.problems += _verify(nb)
    text = nbs.dumps(nb)
    report.size = len(text.encode("utf-8"))
    if report.size > nbs.NOTEBOOK_WARN_BYTES:
        report.notes.append(f"WARNING: the executed notebook is {report.size / 1e6:.1f} MB (keep it well under 1 MB: "
                            "smaller figures, shorter clips)")
    report.ok = not report.problems
    if write:
        if report.ok:
            atomic_write(path, text)
        else:
            out_dir = Path(failed_dir) if failed_dir else path.resolve().parents[1] / "build" / "failed"
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / path.name).write_text(text, encoding="utf-8")
            report.notes.append(f"the executed copy is in {out_dir / path.name}; {path} was left as it was")
    report.seconds = time.monotonic() - t0
    return report


def execute_lessons(files: list[Path], jobs: int | None = None, cell_timeout: float = 600.0) -> bool:
    """Execute several solution notebooks, ``jobs`` at a time; print a report; True if all passed."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    print(f"Executing {len(files)} solution notebook(s) in fast mode, {jobs} at a time...", flush=True)
    reports: list[ExecutionReport] = []
    if jobs == 1:
        for f in files:
            reports.append(_print_report(execute_notebook(f, cell_timeout)))
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(execute_notebook, f, cell_timeout): f for f in files}
            for fut in cf.as_completed(futures):
                try:
                    rep = fut.result()
                except Exception as e:  # a worker that died
                    rep = ExecutionReport(str(futures[fut]), problems=[f"{type(e).__name__}: {e}"])
                reports.append(_print_report(rep))
    bad = [r for r in reports if not r.ok]
    print(f"{len(reports) - len(bad)} of {len(reports)} solution notebook(s) executed and verified.", flush=True)
    return not bad


def _print_report(r: ExecutionReport) -> ExecutionReport:
    status = "ok" if r.ok else "FAILED"
    print(f"{status:6s} {r.path}  ({r.seconds:.1f} s, {r.size / 1000:.0f} kB)", flush=True)
    for p in r.problems:
        print(f"       problem: {p}", flush=True)
    for n in r.notes:
        print(f"       {n}", flush=True)
    sys.stdout.flush()
    return r
