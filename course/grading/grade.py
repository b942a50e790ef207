"""``python -m course grade SUBMISSIONS --out REPORT``: grade a folder of submitted notebooks.

Every ``*.ipynb`` in ``SUBMISSIONS`` is one student's work (the file name, without ``.ipynb``, is
the student id). For each one the grader

1. reads it (a broken file gets a row saying why, never a crash) and finds its lesson: the
   ``course.lesson`` metadata the build writes, else the file name, else the check cells it calls;
2. scans the student's cells for attempts to fool the checks (:mod:`.tamper`);
3. prepares a copy with the lesson's own check cells, and runs it as a job (:mod:`.judge`), in the
   OS sandbox where there is one (:mod:`.isolation`), several at once: the job runs the cells and
   calls the student's functions; the cases, drawn with the run's seed, and every comparison stay
   in this process, and only plain data comes back (:mod:`course.checks.wire`);
4. writes each notebook's result as soon as it is graded (``REPORT/.progress/``, read by ``--resume``),
   then, from this process only, ``REPORT/gradebook.csv`` (one row per student and exercise),
   ``REPORT/summary.csv`` (one row per student) and ``REPORT/feedback/<student>.md``, each
   atomically (a temporary file, then a rename), plus ``REPORT/grading.json`` about the run
   (:mod:`.reports`: what a student controls is escaped there, and a ``flags`` column names
   tampering and use of the course's reference answers).

``--lesson NN`` grades one lesson only: a notebook of another lesson is ``invalid``, and its row
names both. ``--shard K/N`` grades a deterministic share of the folder and ``--merge`` combines the
shards into the gradebook one run would have written (:mod:`.shards`).

A grading run never overwrites another: when ``REPORT`` already holds files, the run goes into the
first free ``REPORT-2``, ``REPORT-3``, ... beside it and says so, so every earlier gradebook (and the
seed that reproduces it, in its ``grading.json``) is kept.

Statuses: ``passed``; ``failed`` (the check's fail line is the message); ``not attempted`` (the
exercise's stub is still there: the check's fail line says "not implemented yet"); ``error`` (the
check cell could not run its check: a missing function, a crash, a time limit, a cell that is not
valid Python); ``tampered`` (points withheld: the message says what was found); ``invalid`` (not a
gradable notebook).

The submitted files are only read. The grader compares the submissions folder before and after
the run by content hash and reports any change.

One submission can never stop the run: reading, scanning, preparing, running and reporting are
done per submission, and whatever goes wrong becomes that student's row (``invalid`` or ``error``)
saying why. Student ids come from file names, which need not be valid UTF-8: they are written with
undecodable bytes shown as ``\\xNN`` (``bad\\xffname``), in the CSV files and the feedback names alike.

**Containment.** With bubblewrap each job sees only the system, the Python environment and the course
package, read-only, and its own scratch folder; it cannot see or signal other jobs or the grader
(:mod:`.isolation`). Without it (``--isolation none``, or no bwrap here) jobs run as the grader's
user in a process group of their own (:mod:`.sandbox`), and the summary, ``grading.json`` and a
warning say that they were not isolated. Everything the grader uses is imported before the first
job starts, so a module a job writes into the course package never runs in the grader.

Lesson: 00_welcome
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import secrets
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExerciseError
from ..authoring import notebooks as nbs
from . import checkrun, isolation, judge, sandbox, shards, tamper
from .reports import COLUMNS, TAMPERED, USED_REFERENCE, Entry, GradeRun, Row, clean_text, write_reports

__all__ = ["Row", "GradeRun", "grade", "merge", "add_arguments", "run", "COLUMNS"]

MAX_SUBMISSION_BYTES = 20_000_000
# what course.checks.guard says when graded code calls the course's reference answer
REFERENCE_BLOCKED = "reference implementation is not available"


def fresh_out(out: Path) -> Path:
    """``out`` if it is missing or empty, else the first free ``out-2``, ``out-3``... beside it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExerciseError(f"--out {out} is a file; give a folder for the gradebook.")

    def taken(folder: Path) -> bool:
        return folder.exists() and (not folder.is_dir() or any(folder.iterdir()))

    candidate, k, base = out, 1, out.resolve()
    while taken(candidate):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


@dataclass
class _Job:
    student: str
    path: Path
    lesson: checkrun.LessonChecks | None = None
    prepared: checkrun.Prepared | None = None
    problem: str | None = None
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    review: int = 0               # findings for the instructor that took no points


def submission_files(submissions: Path) -> list[Path]:
    """The submitted notebooks, sorted by name as bytes (the same order on every machine)."""
    return sorted((p for p in submissions.iterdir() if p.is_file() and p.suffix == ".ipynb"),
                  key=lambda p: os.fsencode(p.name))


def resolve_lesson(text: str, lessons: dict) -> str:
    """``"03"``, ``"3"`` or ``"03_melody_lstm"`` -> the lesson id in ``lessons``."""
    want = str(text).strip().removesuffix(".ipynb")
    if want in lessons:
        return want
    num = want.zfill(2) if want.isdigit() else want
    hits = [k for k in lessons if k.split("_", 1)[0] == num]
    if len(hits) != 1:
        raise ExerciseError(f"--lesson {text}: no such lesson in the lessons folder "
                            f"(there are {', '.join(sorted(lessons))}).")
    return hits[0]


# ------------------------------------------------------------------------------------ one submission
def _load(path: Path, lessons: dict[str, checkrun.LessonChecks], student: str | None = None,
          only: str | None = None) -> _Job:
    """Read, identify and scan one submission (graded as ``student``, of lesson ``only`` if given);
    whatever goes wrong becomes the job's problem."""
    student = student or clean_text(path.stem)
    try:
        return _load_unsafe(path, lessons, student, only)
    except Exception as e:  # noqa: BLE001 - one odd notebook never stops the run
        job = _Job(student, path)
        job.problem = (f"{clean_text(path.name)} could not be read for grading "
                       f"({type(e).__name__}: {clean_text(str(e))[:100]})")
        return job


def _load_unsafe(path: Path, lessons: dict[str, checkrun.LessonChecks], student: str, only: str | None) -> _Job:
    job = _Job(student, path)
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
    if only is not None and match.lesson != only:
        job.lesson = lessons[only]
        job.problem = (f"{name} is a notebook of lesson {match.lesson}, but this run grades lesson {only} "
                       "(--lesson): it was not graded")
        return job
    job.lesson = lessons[match.lesson]
    if job.lesson.problem:
        job.problem = f"the course's lesson {job.lesson.lesson} cannot be graded: {job.lesson.problem}"
        return job
    job.findings = tamper.scan_notebook(nb, job.lesson.names, [src for _, src in job.lesson.checks])
    try:
        job.prepared = checkrun.prepare(nb, job.lesson, arm=False)
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
        result = judge.judge_notebook(job.prepared, **opts)
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
        rows.append(Row(job.student, result.lesson, r.exercise, points, r.max_points, status, message,
                        _flags(status, message, hits)))
    job.notes = result.notes + [f"flagged for review: {w}" for w in warnings[:10]]
    job.review = len(warnings)
    return rows


def _flags(status: str, message: str, hits: list) -> str:
    """A row's flags (see :mod:`.reports`): tampering, and the course's reference answer called or named."""
    found = [TAMPERED] if status == "tampered" else []
    if REFERENCE_BLOCKED in message or any(f.what.startswith(tamper.USES_REFERENCE) for f in hits):
        found.append(USED_REFERENCE)
    return "; ".join(found)


# ------------------------------------------------------------------------------------ the run
def _snapshot(folder: Path, exclude: Path | None) -> dict[str, str]:
    """``{path: sha256 of its content}`` of every file under ``folder`` (a file edited in place with the
    same size and time still shows)."""
    snap = {}
    for root, dirs, files in os.walk(folder):
        if exclude is not None and Path(root).resolve() == exclude:
            dirs[:] = []
            continue
        for name in files:
            p = Path(root) / name
            h = hashlib.sha256()
            try:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            except OSError:
                h.update(b"unreadable")
            snap[str(p.relative_to(folder))] = h.hexdigest()
    return snap


PROGRESS = ".progress"          # inside the report folder: one file per graded notebook, as it is graded


def _isolation(mode: str) -> tuple[bool, str]:
    """``(isolate, how)`` for ``--isolation auto|bwrap|none``."""
    ok, why = isolation.available()
    if mode == "none":
        return False, "none (--isolation none)"
    if mode == "bwrap" and not ok:
        raise ExerciseError(f"--isolation bwrap: {why}. Install bubblewrap (apt install bubblewrap) or grade each "
                            "submission in a container of its own.")
    return (True, "bubblewrap") if ok else (False, f"none ({why})")


NOT_ISOLATED = ("jobs were NOT isolated ({how}): a submission could read the other submissions and the lessons' "
                "solutions, write files outside its job, and stop other jobs or the grader. Install bubblewrap "
                "(apt install bubblewrap) or grade each submission in a container of its own.")


def _preload() -> None:
    """Import everything the grader will use before any job runs (so a job never puts code into it)."""
    from ..checks import load_all
    from . import reports  # noqa: F401

    load_all()
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def _progress_name(index: int, student: str) -> str:
    return f"{index:06d}-{hashlib.sha1(student.encode('utf-8', 'backslashreplace')).hexdigest()[:12]}.json"


def _read_progress(folder: Path, run_info: dict) -> dict[int, Entry]:
    """Notebooks already graded by the interrupted run in ``folder`` (``--resume``), by position."""
    import json

    progress = folder / PROGRESS
    try:
        saved = json.loads((progress / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExerciseError(f"--resume {folder}: no interrupted grading run there (no {PROGRESS}/run.json).") from None
    for key in ("lesson", "shard", "submissions", "checks"):
        if saved.get(key) != run_info.get(key):
            raise ExerciseError(f"--resume {folder}: the run there graded other {key} "
                                f"({saved.get(key)!r}, now {run_info.get(key)!r}); start a new run instead.")
    done = {}
    for p in sorted(progress.glob("[0-9]*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            done[int(data["index"])] = Entry.from_json(data["entry"])
        except (OSError, ValueError, KeyError, TypeError):
            continue        # a file the interruption cut short: that notebook is graded again
    return done


def grade(submissions: str | Path, out: str | Path, *, jobs: int | None = None, cell_timeout: float = 300.0,
          notebook_timeout: float = 1200.0, memory_mb: int | None = 4096, lessons_dir: str | Path | None = None,
          seed: str | None = None, run_as: str | None = None, max_output_kb: int = 1000,
          lesson: str | None = None, shard: str | tuple[int, int] | None = None, progress: bool = True,
          isolation_mode: str = "auto", resume: bool = False) -> GradeRun:
    """Grade every ``*.ipynb`` in ``submissions`` (only lesson ``lesson``'s, if given; only shard
    ``"K/N"``'s share, if given: see :mod:`.shards`); write the gradebook and feedback to ``out``
    (or beside it, when ``out`` already holds files: see :func:`fresh_out`; the run's ``out`` says where).
    With ``resume``, ``out`` holds an interrupted run: its seed is reused and only the notebooks it had
    not finished are graded."""
    import json

    t0 = time.monotonic()
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ExerciseError(f"No submissions folder at {submissions}.")
    if isinstance(shard, str):
        shard = shards.parse_shard(shard)
    isolate, how = _isolation(isolation_mode)
    lessons = checkrun.find_lessons(lessons_dir)
    only = resolve_lesson(lesson, lessons) if lesson else None
    files = submission_files(submissions)
    digest = shards.folder_digest(files)
    run_info = {"lesson": only, "shard": list(shard) if shard else None, "submissions": digest,
                "checks": shards.checks_digest(lessons)}
    done: dict[int, Entry] = {}
    if resume:
        out = Path(out)
        done = _read_progress(out, run_info)
        saved_seed = json.loads((out / PROGRESS / "run.json").read_text(encoding="utf-8"))["seed"]
        if seed and seed != saved_seed:
            raise ExerciseError(f"--resume: the interrupted run used --seed {saved_seed}; leave --seed out.")
        seed = saved_seed
    else:
        if shard is not None and not seed:
            raise ExerciseError("--shard needs --seed: every shard must grade with the same random cases.")
        out = fresh_out(Path(out))
        seed = seed or secrets.token_hex(8)
    _preload()
    progress_dir = out / PROGRESS
    progress_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (progress_dir / "run.json").write_text(json.dumps({"seed": seed, **run_info}) + "\n", encoding="utf-8")
    skipped = sorted(clean_text(p.name) for p in submissions.iterdir() if p.is_file() and p.suffix != ".ipynb"
                     and not p.name.startswith("."))
    out_resolved = out.resolve()
    before = _snapshot(submissions, out_resolved)
    limits = sandbox.Limits(memory_mb=memory_mb, run_as=sandbox.resolve_user(run_as))
    opts = dict(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, limits=limits,
                seed=f"grading:{seed}", max_output_kb=max_output_kb, isolate=isolate)
    ids = _unique_ids(files)               # over the whole folder, so that every shard names students alike
    share = shards.pick(len(files), shard)
    loaded = [_load(files[i], lessons, ids[i], only) for i in share]
    position = dict(zip((job.student for job in loaded), share))
    todo = [job for job in loaded if position[job.student] not in done]
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(1, len(todo))))
    entries_by_student: dict[str, Entry] = {}
    for job in loaded:
        if position[job.student] in done:
            entries_by_student[job.student] = done[position[job.student]]
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = tqdm(total=len(loaded), initial=len(loaded) - len(todo), desc="grading", unit="notebook", file=sys.stderr,
               disable=not progress or tqdm is None) if tqdm else None
    with warnings.catch_warnings(), cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        warnings.simplefilter("ignore")      # the comparisons' warnings, once for every grading thread
        futures = {pool.submit(_grade_job, job, opts): job for job in todo}
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                rows = fut.result()
            except Exception as e:  # pragma: no cover - _grade_job catches everything it expects
                rows = [Row(job.student, "?", "-", 0, 0, "error", f"grader error: {e}")]
            entry = Entry(job.student, clean_text(job.path.name), rows, list(job.notes), job.review)
            entries_by_student[job.student] = entry
            _save_progress(progress_dir, position[job.student], entry)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    after = _snapshot(submissions, out_resolved)
    notes = [] if isolate else [NOT_ISOLATED.format(how=how)]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        notes.append("the submissions folder changed during grading (a submission wrote there?): "
                     + ", ".join(clean_text(c) for c in changed[:20]))
    entries = [entries_by_student[job.student] for job in loaded]
    rows = [r for e in entries for r in e.rows]
    run_ = GradeRun(rows, time.monotonic() - t0, notes, skipped, out, isolation=how)
    settings = dict(jobs=jobs, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, memory_mb=memory_mb,
                    max_output_kb=max_output_kb, run_as=run_as, isolation=how,
                    lessons_dir=str(next(iter(lessons.values())).path.parent))
    extra = {"lesson": only, "submissions": digest}
    if shard is not None:
        extra["shard"] = f"{shard[0]}/{shard[1]}"
    info = {"seconds": round(run_.seconds, 1), "notebooks": len(loaded), "settings": settings,
            "notes": run_.notes, "skipped_files": run_.skipped, **extra}
    write_reports(entries, out, seed, info)
    if shard is not None:
        shards.write_manifest(out, {"seed": seed, "shard": list(shard), "lesson": only,
                                    "checks": run_info["checks"], "submissions": digest,
                                    "count": len(files), "settings": settings, "seconds": round(run_.seconds, 1),
                                    "notes": run_.notes, "skipped_files": skipped}, dict(zip(share, entries)))
    shutil.rmtree(progress_dir, ignore_errors=True)      # the run is complete: the reports hold everything
    return run_


def _save_progress(folder: Path, index: int, entry: Entry) -> None:
    """One graded notebook, written atomically as soon as it is graded (``--resume`` reads these)."""
    import json

    from ..files import atomic_write

    try:
        atomic_write(folder / _progress_name(index, entry.student),
                     json.dumps({"index": index, "entry": entry.to_json()}).encode("utf-8", "backslashreplace"))
    except OSError:  # pragma: no cover - a full disk: the final reports still come
        pass


def merge(folders: list[str | Path], out: str | Path) -> GradeRun:
    """Combine the outputs of ``course grade --shard K/N`` (all N of one run) into the reports that one
    unsharded run would have written to ``out`` (see :mod:`.shards`); refuses shards that do not fit."""
    manifests, entries = shards.read_shards([Path(f) for f in folders])
    out = fresh_out(Path(out))
    info = shards.merge_info(manifests)
    write_reports(entries, out, manifests[0]["seed"], info)
    return GradeRun([r for e in entries for r in e.rows], info["seconds"], info["notes"], info["skipped_files"], out,
                    isolation=str(info["settings"].get("isolation", "bubblewrap")))


def _unique_ids(files: list[Path]) -> list[str]:
    """The student id of each file: its name without ``.ipynb``; ids that clean up alike (a byte 0xff in
    one file name, the text ``\\xff`` in another) get told apart."""
    seen: set[str] = set()
    ids = []
    for path in files:
        student = clean_text(path.stem)
        if student in seen:
            student = f"{student}-{hashlib.sha1(os.fsencode(path.name)).hexdigest()[:6]}"
        seen.add(student)
        ids.append(student)
    return ids


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("submissions", type=Path, nargs="?",
                        help="folder of submitted notebooks, one per student (STUDENT.ipynb); not with --merge")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for gradebook.csv, summary.csv and feedback/ (never overwritten: when it holds "
                             "files, the run goes into OUT-2, OUT-3, ... beside it)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help="notebooks at once (default: CPU cores)")
    parser.add_argument("--cell-timeout", type=float, default=300.0, metavar="S", help="seconds per cell (300)")
    parser.add_argument("--notebook-timeout", type=float, default=1200.0, metavar="S",
                        help="seconds per notebook (1200)")
    parser.add_argument("--memory-mb", type=int, default=4096, metavar="M", help="memory per process in MB (4096)")
    parser.add_argument("--max-output-kb", type=int, default=1000, metavar="K", help="printed output kept per cell (1000)")
    parser.add_argument("--lessons-dir", type=Path, default=None,
                        help="lesson notebooks with the check cells (default: the course's solutions/)")
    parser.add_argument("--lesson", default=None, metavar="NN",
                        help="grade this lesson only (03 or 03_melody_lstm): another lesson's notebook is invalid")
    parser.add_argument("--seed", default=None,
                        help="seed for the random cases (default: new each run, recorded in grading.json); "
                             "the same seed grades the same submissions with the same cases")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="grade only shard K of N (a fixed share of the folder; needs --seed); "
                             "combine the N outputs with --merge")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="DIR",
                        help="combine the outputs of all N --shard runs into one gradebook in --out")
    parser.add_argument("--run-as", default=None, metavar="USER",
                        help="run each notebook as this user (grader must run as root); stops writes outside "
                             "the job's scratch folder. All jobs share that one user, so one notebook could "
                             "still disturb another's job while both run: for untrusted classes run each "
                             "submission in a container")
    parser.add_argument("--isolation", choices=("auto", "bwrap", "none"), default="auto",
                        help="run each job in a bubblewrap sandbox: auto (when bwrap works here; otherwise say loudly "
                             "that jobs were not isolated), bwrap (refuse to grade without it), none")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out (same seed; only unfinished notebooks are graded)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.merge:
        if args.submissions is not None or args.shard:
            raise ExerciseError("--merge takes shard folders only: no SUBMISSIONS folder and no --shard.")
        result = merge(args.merge, args.out)
        print(f"Merged {len(args.merge)} shards. " + result.summary())
    else:
        if args.submissions is None:
            raise ExerciseError("Give the SUBMISSIONS folder to grade (or --merge with shard folders).")
        nbs.skip_slow_optional_imports()
        result = grade(args.submissions, args.out, jobs=args.jobs, cell_timeout=args.cell_timeout,
                       notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb, lessons_dir=args.lessons_dir,
                       seed=args.seed, run_as=args.run_as, max_output_kb=args.max_output_kb, lesson=args.lesson,
                       shard=args.shard, progress=not args.no_progress, isolation_mode=args.isolation,
                       resume=args.resume)
        print(result.summary())
    if result.out != Path(args.out) and not getattr(args, "resume", False):
        print(f"{args.out} already holds a grading run, which is kept: this run's reports are in {result.out}.")
    print(f"Gradebook: {result.out / 'gradebook.csv'}; feedback: {result.out / 'feedback'}/")
    for s in result.skipped:
        print(f"skipped (not a .ipynb file): {s}", file=sys.stderr)
    for n in result.notes:
        print(f"WARNING: {n}", file=sys.stderr)
    return 0
