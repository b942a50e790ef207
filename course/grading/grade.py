"""``python -m course grade SUBMISSIONS --out REPORT``: grade a folder of submitted notebooks.

Every ``*.ipynb`` in ``SUBMISSIONS`` is one student's work (the file name, without ``.ipynb``, is
the student id). For each one the grader

1. reads it (a broken file gets a row saying why, never a crash) and finds its lesson: the
   ``course.lesson`` metadata the build writes, else the file name, else the check cells it calls;
2. scans the student's cells for attempts to fool the checks (:mod:`.tamper`);
3. prepares a copy with the lesson's own check cells and injected pass lines, and runs it as a
   contained job in a scratch folder, several at once (:mod:`.checkrun`, :mod:`.sandbox`), with
   random cases seeded differently from the notebooks' and from the self-check's;
4. writes, from this process only, ``REPORT/gradebook.csv`` (one row per student and exercise),
   ``REPORT/summary.csv`` (one row per student) and ``REPORT/feedback/<student>.md``, each
   atomically (a temporary file, then a rename), plus ``REPORT/grading.json`` about the run.

Statuses: ``passed``; ``failed`` (the check's fail line is the message); ``error`` (the check
cell could not run its check: a missing function, a crash, a time limit); ``tampered`` (points
withheld: the message says what was found); ``invalid`` (not a gradable notebook).

The submitted files are only read. The grader compares the submissions folder before and after
the run and reports any change (a job writing there would need an absolute path; see
:mod:`.sandbox` for what is and is not contained).

One submission can never stop the run: reading, scanning, preparing, running and reporting are
done per submission, and whatever goes wrong becomes that student's row (``invalid`` or ``error``)
saying why. Student ids come from file names, which need not be valid UTF-8: they are written with
undecodable bytes shown as ``\\xNN`` (``bad\\xffname``), in the CSV files and the feedback names alike.

**Containment.** Every job runs as the same user (the grader's, or the one ``--run-as`` names):
one student's notebook could delete another job's results or kill its kernel while both run, and
without ``--run-as`` it can write anywhere the grader can, the course's own files included. For
untrusted classes, run each submission in a container (or a VM) of its own; see :mod:`.sandbox`.

Lesson: 00_welcome
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExerciseError
from ..authoring import notebooks as nbs
from ..files import atomic_write
from . import checkrun, sandbox, tamper

__all__ = ["Row", "GradeRun", "grade", "add_arguments", "run", "COLUMNS"]

COLUMNS = ["student", "lesson", "exercise", "points", "max_points", "status", "message"]
MAX_SUBMISSION_BYTES = 20_000_000


@dataclass
class Row:
    student: str
    lesson: str
    exercise: str
    points: int
    max_points: int
    status: str
    message: str


@dataclass
class GradeRun:
    rows: list[Row]
    seconds: float
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def student_rows(self, student: str) -> list[Row]:
        return [r for r in self.rows if r.student == student]


@dataclass
class _Job:
    student: str
    path: Path
    lesson: checkrun.LessonChecks | None = None
    prepared: checkrun.Prepared | None = None
    problem: str | None = None
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)


# ------------------------------------------------------------------------------------ one submission
def clean_text(text: str) -> str:
    """``text`` safe to write as UTF-8: bytes a file name could not decode become ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _load(path: Path, lessons: dict[str, checkrun.LessonChecks]) -> _Job:
    """Read, identify and scan one submission; whatever goes wrong becomes the job's problem."""
    try:
        return _load_unsafe(path, lessons)
    except Exception as e:  # noqa: BLE001 - one odd notebook never stops the run
        job = _Job(clean_text(path.stem), path)
        job.problem = (f"{clean_text(path.name)} could not be read for grading "
                       f"({type(e).__name__}: {clean_text(str(e))[:100]})")
        return job


def _load_unsafe(path: Path, lessons: dict[str, checkrun.LessonChecks]) -> _Job:
    job = _Job(clean_text(path.stem), path)
    try:
        size = path.stat().st_size
        if size > MAX_SUBMISSION_BYTES:
            raise ExerciseError(f"{path.name} is {size / 1e6:.0f} MB; a notebook of this course is well under "
                                f"{MAX_SUBMISSION_BYTES / 1e6:.0f} MB (clear the outputs and save again)")
        nb = nbs.read_notebook(path)
    except ExerciseError as e:
        job.problem = clean_text(str(e))
        return job
    name = clean_text(path.name)
    if not any(c.cell_type == "code" for c in nb.cells):
        job.problem = f"{name} has no code cells: not a lesson notebook"
        return job
    match = nbs.lesson_of(nb, path, {k: v.names for k, v in lessons.items()})
    if match.lesson is None:
        job.problem = (f"{name} does not belong to any lesson in the lessons folder "
                       "(no course metadata, no NN_ file name, no known check cells)")
        return job
    job.lesson = lessons[match.lesson]
    if job.lesson.problem:
        job.problem = f"the course's lesson {job.lesson.lesson} cannot be graded: {job.lesson.problem}"
        return job
    job.findings = tamper.scan_notebook(nb, job.lesson.names, [src for _, src in job.lesson.checks])
    try:
        job.prepared = checkrun.prepare(nb, job.lesson)
    except Exception as e:  # a notebook odd enough to break the preparation
        job.problem = f"{name} could not be prepared for grading ({type(e).__name__}: {clean_text(str(e))[:100]})"
    return job


def _grade_job(job: _Job, opts: dict) -> list[Row]:
    """Rows for one submission (runs in a worker thread; the notebook itself runs in a contained job)."""
    try:
        return _grade_job_unsafe(job, opts)
    except Exception as e:  # noqa: BLE001 - the grader's own failure on this submission: one row says so
        lesson = job.lesson.lesson if job.lesson else "?"
        return [Row(job.student, lesson, "-", 0, 0, "error",
                    f"the grader failed on this notebook ({type(e).__name__}: {clean_text(str(e))[:150]})")]


def _grade_job_unsafe(job: _Job, opts: dict) -> list[Row]:
    if job.problem is not None or job.prepared is None:
        lesson = job.lesson.lesson if job.lesson else "?"
        total = sum(job.lesson.points(n) for n in job.lesson.names) if job.lesson else 0
        return [Row(job.student, lesson, "-", 0, total, "invalid", job.problem or "not gradable")]
    try:
        result = checkrun.run_prepared(job.prepared, **opts)
    except Exception as e:  # the grader's own failure on this submission: say so, go on with the rest
        return [Row(job.student, job.lesson.lesson, name, 0, job.lesson.points(name), "error",
                    f"the grader could not run this notebook ({type(e).__name__}: {str(e)[:150]})")
                for name in job.lesson.names]
    warnings = [f for f in job.findings if f.severity == "warning"]
    rows = []
    for r in result.results:
        hits = tamper.withheld(job.findings, r.exercise)
        status, points, message = r.status, r.points, r.message
        if hits:
            status, points = "tampered", 0
            message = ("points withheld: " + "; ".join(str(f) for f in hits[:3])
                       + f" (the check said: {r.message})")
        rows.append(Row(job.student, result.lesson, r.exercise, points, r.max_points, status, message))
    job.notes = result.notes + [f"flagged for review: {w}" for w in warnings[:10]]
    return rows


# ------------------------------------------------------------------------------------ reports
def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, clean_text(text).encode("utf-8", "backslashreplace"))


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _safe_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


def _feedback(student: str, rows: list[Row], notes: list[str], seed_note: str) -> str:
    got, total = sum(r.points for r in rows), sum(r.max_points for r in rows)
    lesson = rows[0].lesson if rows else "?"
    out = [f"# Feedback for {student}: lesson {lesson}", "", f"**Score: {got} / {total} points.**", "",
           "| exercise | result | points | details |", "|---|---|---|---|"]
    for r in rows:
        detail = "" if r.status == "passed" else r.message.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r.exercise} | {r.status} | {r.points} / {r.max_points} | {detail} |")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out += ["", seed_note, ""]
    return "\n".join(out)


def _snapshot(folder: Path, exclude: Path | None) -> dict[str, tuple[int, int]]:
    snap = {}
    for root, dirs, files in os.walk(folder):
        if exclude is not None and Path(root).resolve() == exclude:
            dirs[:] = []
            continue
        for name in files:
            p = Path(root) / name
            try:
                st = p.stat()
            except OSError:
                continue
            snap[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return snap


# ------------------------------------------------------------------------------------ the run
def grade(submissions: str | Path, out: str | Path, *, jobs: int | None = None, cell_timeout: float = 300.0,
          notebook_timeout: float = 1200.0, memory_mb: int | None = 4096, lessons_dir: str | Path | None = None,
          seed: str | None = None, run_as: str | None = None, max_output_kb: int = 1000,
          progress: bool = True) -> GradeRun:
    """Grade every ``*.ipynb`` in ``submissions``; write the gradebook and feedback to ``out``."""
    t0 = time.monotonic()
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ExerciseError(f"No submissions folder at {submissions}.")
    lessons = checkrun.find_lessons(lessons_dir)
    files = sorted(p for p in submissions.iterdir() if p.is_file() and p.suffix == ".ipynb")
    skipped = sorted(clean_text(p.name) for p in submissions.iterdir() if p.is_file() and p.suffix != ".ipynb"
                     and not p.name.startswith("."))
    out_resolved = out.resolve()
    before = _snapshot(submissions, out_resolved)
    seed = seed or secrets.token_hex(8)
    limits = sandbox.Limits(memory_mb=memory_mb, run_as=sandbox.resolve_user(run_as))
    opts = dict(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, limits=limits,
                seed=f"grading:{seed}", max_output_kb=max_output_kb)
    loaded = _unique_ids([_load(p, lessons) for p in files])
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(1, len(loaded))))
    rows_by_student: dict[str, list[Row]] = {}
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = tqdm(total=len(loaded), desc="grading", unit="notebook", file=sys.stderr,
               disable=not progress or tqdm is None) if tqdm else None
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_grade_job, job, opts): job for job in loaded}
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                rows_by_student[job.student] = fut.result()
            except Exception as e:  # pragma: no cover - _grade_job catches everything it expects
                rows_by_student[job.student] = [Row(job.student, "?", "-", 0, 0, "error", f"grader error: {e}")]
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    after = _snapshot(submissions, out_resolved)
    notes = []
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        notes.append("the submissions folder changed during grading (a submission wrote there?): "
                     + ", ".join(clean_text(c) for c in changed[:20]))
    rows = [r for job in loaded for r in rows_by_student.get(job.student, [])]
    run_ = GradeRun(rows, time.monotonic() - t0, notes, skipped)
    _write_reports(run_, loaded, out, seed, dict(jobs=jobs, cell_timeout=cell_timeout,
                                                 notebook_timeout=notebook_timeout, memory_mb=memory_mb,
                                                 run_as=run_as, lessons_dir=str(next(iter(lessons.values())).path.parent)))
    return run_


def _unique_ids(loaded: list[_Job]) -> list[_Job]:
    """Ids that clean up alike (a byte 0xff in one file name, the text ``\\xff`` in another) get told apart."""
    seen: set[str] = set()
    for job in loaded:
        if job.student in seen:
            raw = os.fsencode(str(job.path.name))
            job.student = f"{job.student}-{hashlib.sha1(raw).hexdigest()[:6]}"
        seen.add(job.student)
    return loaded


def _write_reports(run_: GradeRun, loaded: list[_Job], out: Path, seed: str, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "gradebook.csv", _csv_text(COLUMNS, [[getattr(r, c) for c in COLUMNS] for r in run_.rows]))
    summary = []
    seed_note = (f"Graded with new random cases (seed {seed!r}), a fresh kernel and time limits; the check cells "
                 "were the lesson's own, whatever the notebook contained.")
    used_names: set[str] = set()
    for job in loaded:
        rows = run_.student_rows(job.student)
        fname = _safe_name(job.student)
        if fname in used_names:        # two ids that clean up to the same file name
            fname = f"{fname}-{hashlib.sha1(job.student.encode()).hexdigest()[:6]}"
        used_names.add(fname)
        got, total = sum(r.points for r in rows), sum(r.max_points for r in rows)
        lesson = rows[0].lesson if rows else "?"
        flags = sum(r.status == "tampered" for r in rows)
        summary.append([job.student, lesson, got, total, flags, clean_text(job.path.name)])
        notes = list(job.notes)
        try:
            _atomic_write(out / "feedback" / f"{fname}.md", _feedback(job.student, rows, notes, seed_note))
        except (OSError, ValueError) as e:  # one feedback file failing never loses the gradebook
            run_.notes.append(f"could not write the feedback of {job.student}: {type(e).__name__}: {e}")
    _atomic_write(out / "summary.csv", _csv_text(["student", "lesson", "points", "max_points", "tampered", "file"], summary))
    info = {"seed": seed, "seconds": round(run_.seconds, 1), "notebooks": len(loaded), "settings": settings,
            "notes": run_.notes, "skipped_files": run_.skipped}
    _atomic_write(out / "grading.json", json.dumps(info, indent=1) + "\n")


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks, one per student (STUDENT.ipynb)")
    parser.add_argument("--out", type=Path, required=True, help="folder for gradebook.csv, summary.csv and feedback/")
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help="notebooks at once (default: CPU cores)")
    parser.add_argument("--cell-timeout", type=float, default=300.0, metavar="S", help="seconds per cell (300)")
    parser.add_argument("--notebook-timeout", type=float, default=1200.0, metavar="S",
                        help="seconds per notebook (1200)")
    parser.add_argument("--memory-mb", type=int, default=4096, metavar="M", help="memory per process in MB (4096)")
    parser.add_argument("--max-output-kb", type=int, default=1000, metavar="K", help="printed output kept per cell (1000)")
    parser.add_argument("--lessons-dir", type=Path, default=None,
                        help="lesson notebooks with the check cells (default: the course's solutions/)")
    parser.add_argument("--seed", default=None, help="seed for the random cases (default: new each run)")
    parser.add_argument("--run-as", default=None, metavar="USER",
                        help="run each notebook as this user (grader must run as root); stops writes outside "
                             "the job's scratch folder. All jobs share that one user, so one notebook could "
                             "still disturb another's job while both run: for untrusted classes run each "
                             "submission in a container")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    nbs.skip_slow_optional_imports()
    result = grade(args.submissions, args.out, jobs=args.jobs, cell_timeout=args.cell_timeout,
                   notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb, lessons_dir=args.lessons_dir,
                   seed=args.seed, run_as=args.run_as, max_output_kb=args.max_output_kb,
                   progress=not args.no_progress)
    students = {r.student for r in result.rows}
    by_status: dict[str, int] = {}
    for r in result.rows:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    print(f"Graded {len(students)} notebook(s) in {result.seconds:.0f} s: "
          + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    print(f"Gradebook: {Path(args.out) / 'gradebook.csv'}; feedback: {Path(args.out) / 'feedback'}/")
    for s in result.skipped:
        print(f"skipped (not a .ipynb file): {s}", file=sys.stderr)
    for n in result.notes:
        print(f"WARNING: {n}", file=sys.stderr)
    return 0
