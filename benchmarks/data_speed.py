"""How long the data sets take to build and to load.

    python benchmarks/data_speed.py                 # full build into a temporary folder, then loads
    python benchmarks/data_speed.py --limit 20      # a quick partial build instead
    python benchmarks/data_speed.py --no-build      # loads only

Prints a table and writes ``benchmarks/results/data_speed.json``. The load targets (under a
second in a notebook) are measured here, not in the unit tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_loads(repeats: int = 5) -> dict:
    """Median seconds of each load, with the in-memory cache emptied before every run (a cold load)."""
    from course import data
    from course.data import sets

    def cold(fn):
        def run():
            sets._CACHE.clear()
            fn()
        return run

    out = {}
    for name in data.names():
        out[f"load('{name}', 'train')"] = _median_time(cold(lambda: data.load(name, "train")), repeats)
        out[f"load('{name}', 'train')[0] (first Music)"] = _median_time(cold(lambda: data.load(name, "train")[0]), repeats)
        for spq in (1, 4):
            out[f"pianorolls('{name}', 'train', {spq})"] = _median_time(
                cold(lambda: data.pianorolls(name, "train", steps_per_quarter=spq)), repeats)
    out["melody_tokens('train')"] = _median_time(cold(lambda: data.melody_tokens("train")), repeats)
    pieces = data.load("chorales", "train")
    out["all chorale train pieces as Music"] = _median_time(lambda: list(pieces), max(1, repeats // 2))
    code = "import course.data as d; d.load('chorales', 'train')[0]; d.pianorolls('chorales', 'train')"
    out["fresh python: import course.data + load + pianorolls"] = _median_time(
        lambda: subprocess.run([sys.executable, "-c", code], check=True), repeats)
    out["fresh python: startup only"] = _median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                                                     repeats)
    return out


def measure_build(limit: int | None, jobs: int | None) -> dict:
    """Seconds to build each set into a temporary folder (music21's parse cache as it is)."""
    from course.data.build import build

    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name in ("chorales", "folk"):
            t = time.perf_counter()
            summary = build(out=d, only=name, limit=limit, jobs=jobs, progress=True)
            out[name] = {"seconds": time.perf_counter() - t, "pieces": summary[name]["all"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="build only the first N pieces of each set")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes for the build")
    ap.add_argument("--no-build", action="store_true", help="measure loading only")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "data_speed.json")
    args = ap.parse_args(argv)

    result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
                          else None}}
    if not args.no_build:
        result["build"] = {"limit": args.limit, "jobs": args.jobs, "sets": measure_build(args.limit, args.jobs)}
        for name, r in result["build"]["sets"].items():
            print(f"build {name:9s} {r['seconds']:8.1f} s  ({r['pieces']} pieces)")
    result["load_seconds_median"] = measure_loads(args.repeats)
    for what, s in result["load_seconds_median"].items():
        print(f"{what:58s} {s * 1000:8.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
