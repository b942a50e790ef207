"""How long grading takes: 100 submissions of lesson 00, honest, wrong and hostile, in one run.

    python benchmarks/grading_speed.py [--n 100] [--jobs N] [--cell-timeout 10]

The submissions are made from ``solutions/00_welcome.ipynb`` by ``tests/hostile``: about 60 %
solved, 10 % untouched stubs, 10 % wrong answers and one of every hostile kind (infinite loops,
exits, a killed kernel, 100 MB of output, a memory hog, rebound checks, patched builtins, broken
files...). They are graded against the real lesson with ``python -m course grade``'s machinery,
and every verdict is compared with what it must be. Prints the wall time and writes
``benchmarks/results/grading_speed.json``.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from course.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def _hostile_module():
    spec = importlib.util.spec_from_file_location("hostile", ROOT / "tests" / "hostile" / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_submissions(hostile, folder: Path, n: int) -> dict[str, str]:
    """Write ``n`` submissions; returns ``{student: kind}``."""
    lesson_nb = hostile.solution()
    every = hostile.hostile(lesson_nb)
    kinds = [k for k in every if k not in ("honest", "stub", "wrong", "write_outside")]
    plan = kinds[: max(0, n - 3)]
    rest = n - len(plan)
    plan += ["stub"] * (rest // 6) + ["wrong"] * (rest // 6)
    plan += ["honest"] * (n - len(plan))
    subs, kind_of = {}, {}
    for i, kind in enumerate(plan):
        student = f"student{i:03d}_{kind}"
        subs[student] = every[kind]
        kind_of[student] = kind
    hostile.write_submissions(folder, subs)
    return kind_of


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and every finished process it waited for."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="number of submissions (100)")
    ap.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: CPU cores)")
    ap.add_argument("--cell-timeout", type=float, default=10.0, help="seconds per cell (10)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grading_speed.json")
    args = ap.parse_args(argv)

    from course.grading.grade import grade

    hostile = _hostile_module()
    work = Path(tempfile.mkdtemp(prefix="course-grading-bench-"))
    try:
        kind_of = make_submissions(hostile, work / "submissions", args.n)
        jobs = args.jobs or os.cpu_count() or 1
        load_before = os.getloadavg()[0]
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        run = grade(work / "submissions", work / "report", jobs=jobs, cell_timeout=args.cell_timeout,
                    notebook_timeout=300, lessons_dir=ROOT / "solutions", seed="benchmark")
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    wrong_verdicts = []
    for r in run.rows:
        kind = kind_of[r.student]
        want = hostile.EXPECTED[kind].get(r.exercise, hostile.EXPECTED[kind].get("*"))
        if r.status != want:
            wrong_verdicts.append(f"{r.student} {r.exercise}: {r.status}, expected {want}")
    statuses = collections.Counter(r.status for r in run.rows)
    result = {
        "benchmark": "grading_speed",
        "submissions": args.n,
        "mix": dict(collections.Counter(kind_of.values())),
        "jobs": jobs,
        "cell_timeout_s": args.cell_timeout,
        "wall_seconds": round(seconds, 1),
        "seconds_per_submission": round(seconds / max(1, args.n), 2),
        "cpu_seconds": round(cpu, 1),
        "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
        "statuses": dict(statuses),
        "verdicts_as_expected": not wrong_verdicts,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write(args.out, json.dumps(result, indent=1) + "\n")
    print(f"Graded {args.n} submissions of lesson 00 in {seconds:.0f} s ({seconds / 60:.1f} min) "
          f"with {jobs} jobs on {os.cpu_count()} cores: {seconds / max(1, args.n):.1f} s each.")
    print(f"CPU time used: {cpu:.0f} s; load average before/after: {load_before:.1f}/{load_after:.1f} "
          "(above the core count, other work shared the machine)")
    print("statuses:", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    for w in wrong_verdicts:
        print("UNEXPECTED:", w)
    print(f"wrote {args.out}")
    return 1 if wrong_verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
