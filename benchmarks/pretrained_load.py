"""Loading the shipped pretrained models: time per entry in a fresh process, and their size on disk.

Each entry is loaded in a new Python process (so nothing is cached), on the CPU, ``--runs`` times;
the median wall time of ``course.pretrained.load(name, device="cpu")`` is reported (``import torch``
itself is paid before the clock starts), with the bytes on disk and the parameters. Target: every
entry loads in under 2 s; together the weights stay under the course's 16 MB budget. Writes
``benchmarks/results/pretrained_load.json``.

    python benchmarks/pretrained_load.py [--runs 5]

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "pretrained_load.json"
TARGET_SECONDS = 2.0

ONE_LOAD = """
import sys, time
import torch
from course import pretrained
t0 = time.perf_counter()
model = pretrained.load(sys.argv[1], device="cpu")
print(time.perf_counter() - t0, sum(p.numel() for p in model.parameters()))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per entry (5)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    from course import pretrained

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = []
    for name in pretrained.names():
        times, params = [], 0
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", ONE_LOAD, name], capture_output=True, text=True, env=env,
                                 check=True, timeout=300).stdout.split()
            times.append(float(out[0]))
            params = int(out[1])
        card = pretrained.card(name)
        rows.append({"name": name, "lesson": card["lesson"], "parameters": params,
                     "bytes": pretrained.weights_path(name).stat().st_size, "load_seconds_median": round(
                         statistics.median(times), 3), "load_seconds_max": round(max(times), 3),
                     "within_target": max(times) < TARGET_SECONDS, "card_metrics": {
                         k: v for k, v in card["metrics"].items() if k not in ("scoring", "check")},
                     "trained": {"device": card["device"], "wall_seconds": card["wall_seconds"],
                                 "torch_threads": card.get("torch_threads")}})
    total = sum(r["bytes"] for r in rows)
    result = {"benchmark": "pretrained_load", "target_seconds": TARGET_SECONDS, "total_bytes": total,
              "budget_bytes": pretrained.MAX_TOTAL_BYTES, "rows": rows,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "date": time.strftime("%Y-%m-%d")}
    for r in rows:
        print(f"{r['name']:18s} {r['parameters']:>9,} parameters {r['bytes'] / 1e6:5.2f} MB  "
              f"load {r['load_seconds_median'] * 1000:6.0f} ms (max {r['load_seconds_max'] * 1000:.0f} ms)  "
              f"{'ok' if r['within_target'] else 'SLOW'}")
    print(f"all weights together: {total / 1e6:.2f} MB of {pretrained.MAX_TOTAL_BYTES / 1e6:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(r["within_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
