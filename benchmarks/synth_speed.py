"""Synthesis speed: the course's NumPy synthesizer against ``pretty_midi.PrettyMIDI.synthesize``.

Renders a 30-second four-voice Bach chorale (from the music21 corpus, looped to 30 s) at
16 kHz with both, takes the median of several runs, and writes
``benchmarks/results/synth_speed.json``. Targets: at least 500x faster than real time and
at least 2.5x faster than pretty_midi on the same piece.

    python benchmarks/synth_speed.py [--runs 15] [--chorale bach/bwv269]

Lesson: 00_welcome
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

SECONDS = 30.0
RATE = 16000
TARGET_REALTIME = 500.0
TARGET_RATIO = 2.5


def chorale(name: str, seconds: float = SECONDS):
    """A four-voice chorale as a ``Music``, looped or trimmed to exactly ``seconds``."""
    import music21

    from course import music as cm

    piece = cm.from_music21(music21.corpus.parse(name))
    notes, offset = [], 0.0
    while offset < seconds:
        notes += [n._replace(start=n.start + offset, end=n.end + offset) for n in piece.notes]
        offset += piece.duration
    return cm.trim(piece.replace(notes=tuple(notes)), 0.0, seconds)


def median_time(fn, runs: int) -> float:
    fn()  # warm up (caches, lazy imports)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--chorale", default="bach/bwv269")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "synth_speed.json")
    args = parser.parse_args(argv)

    from course import music as cm
    from course.listen import synthesize

    piece = chorale(args.chorale)
    pm = cm.to_pretty_midi(piece)
    ours = median_time(lambda: synthesize(piece, RATE, backend="numpy"), args.runs)
    theirs = median_time(lambda: pm.synthesize(fs=RATE), args.runs)
    audio = synthesize(piece, RATE, backend="numpy")
    result = {
        "piece": f"{args.chorale}, {len(piece.parts)} voices, {len(piece.notes)} notes, {piece.duration:.1f} s",
        "sample_rate": RATE,
        "runs": args.runs,
        "numpy_seconds": round(ours, 6),
        "pretty_midi_seconds": round(theirs, 6),
        "numpy_x_realtime": round(piece.duration / ours, 1),
        "pretty_midi_x_realtime": round(piece.duration / theirs, 1),
        "speedup_vs_pretty_midi": round(theirs / ours, 2),
        "peak": round(float(np.max(np.abs(audio))), 4),
        "targets": {"x_realtime": TARGET_REALTIME, "speedup_vs_pretty_midi": TARGET_RATIO},
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, numpy {np.__version__}",
    }
    result["meets_targets"] = bool(result["numpy_x_realtime"] >= TARGET_REALTIME
                                   and result["speedup_vs_pretty_midi"] >= TARGET_RATIO)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['piece']} at {RATE} Hz, median of {args.runs} runs")
    print(f"  course numpy synth : {1000 * ours:7.1f} ms  ({result['numpy_x_realtime']:,.0f}x real time)")
    print(f"  pretty_midi        : {1000 * theirs:7.1f} ms  ({result['pretty_midi_x_realtime']:,.0f}x real time)")
    print(f"  speed-up           : {result['speedup_vs_pretty_midi']:.2f}x "
          f"(targets: >= {TARGET_REALTIME:g}x real time, >= {TARGET_RATIO:g}x pretty_midi)")
    print(f"  wrote {args.out}")
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
