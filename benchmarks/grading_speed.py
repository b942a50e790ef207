"""How long grading takes: 100 submissions of lesson 00, honest, wrong and hostile, in one run.

    python benchmarks/grading_speed.py [--n 100] [--jobs N] [--cell-timeout 10] [--isolation both|bwrap|none]

With ``--isolation both`` (the default) the same submissions are graded twice, each job in a
bubblewrap sandbox and then without one, and both wall times are recorded (the sandbox run is
skipped, and says so, where bwrap is not available).

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
    ap.add_argument("--isolation", choices=("both", "bwrap", "none"), default="both",
                    help="grade in the bubblewrap sandbox, without it, or both (default)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grading_speed.json")
    args = ap.parse_args(argv)

    from course.grading.grade import grade
    from course.grading.isolation import available

    hostile = _hostile_module()
    modes = ["bwrap", "none"] if args.isolation == "both" else [args.isolation]
    ok, why = available()
    if "bwrap" in modes and not ok:
        print(f"not measured with bubblewrap: {why}")
        modes.remove("bwrap")
    work = Path(tempfile.mkdtemp(prefix="course-grading-bench-"))
    runs = {}
    try:
        kind_of = make_submissions(hostile, work / "submissions", args.n)
        jobs = args.jobs or os.cpu_count() or 1
        for mode in modes:
            load_before = os.getloadavg()[0]
            cpu0 = _cpu_seconds()
            t0 = time.perf_counter()
            run = grade(work / "submissions", work / f"report-{mode}", jobs=jobs, cell_timeout=args.cell_timeout,
                        notebook_timeout=300, lessons_dir=ROOT / "solutions", seed="benchmark", isolation_mode=mode,
                        progress=False)
            runs[mode] = (run, time.perf_counter() - t0, _cpu_seconds() - cpu0, load_before, os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    wrong_verdicts = []
    for mode, (run, *_rest) in runs.items():
        for r in run.rows:
            kind = kind_of[r.student]
            want = hostile.EXPECTED[kind].get(r.exercise, hostile.EXPECTED[kind].get("*"))
            if r.status != want:
                wrong_verdicts.append(f"[{mode}] {r.student} {r.exercise}: {r.status}, expected {want}")
    result = {
        "benchmark": "grading_speed",
        "submissions": args.n,
        "mix": dict(collections.Counter(kind_of.values())),
        "jobs": jobs,
        "cell_timeout_s": args.cell_timeout,
        "engine": "judge outside the job (course.grading.judge); before it, 112 s with 2 jobs (nbval in the kernel)",
        "runs": {mode: {"isolation": "bubblewrap" if mode == "bwrap" else "none",
                        "wall_seconds": round(sec, 1), "seconds_per_submission": round(sec / max(1, args.n), 2),
                        "cpu_seconds": round(cpu, 1), "load_average_before_after": [round(lb, 2), round(la, 2)],
                        "statuses": dict(collections.Counter(r.status for r in run.rows))}
                 for mode, (run, sec, cpu, lb, la) in runs.items()},
        "not_measured": [] if ok else [f"bubblewrap: {why}"],
        "verdicts_as_expected": not wrong_verdicts,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    if "bwrap" in runs:
        result["wall_seconds"] = result["runs"]["bwrap"]["wall_seconds"]
    elif runs:
        result["wall_seconds"] = next(iter(result["runs"].values()))["wall_seconds"]
    atomic_write(args.out, json.dumps(result, indent=1) + "\n")
    for mode, r in result["runs"].items():
        sec = r["wall_seconds"]
        print(f"[{r['isolation']}] graded {args.n} submissions of lesson 00 in {sec:.0f} s with {jobs} jobs on "
              f"{os.cpu_count()} cores: {sec / max(1, args.n):.1f} s each; CPU {r['cpu_seconds']:.0f} s; load "
              f"{r['load_average_before_after'][0]:.1f}/{r['load_average_before_after'][1]:.1f}")
        print("   statuses:", ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
    if len(runs) == 2:
        print(f"the sandbox costs x{result['runs']['bwrap']['wall_seconds'] / max(0.1, result['runs']['none']['wall_seconds']):.2f}"
              " in wall time")
    for w in wrong_verdicts:
        print("UNEXPECTED:", w)
    print(f"wrote {args.out}")
    return 1 if wrong_verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
