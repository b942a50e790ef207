"""Reproduce the published polyphonic-music NLL table (JSB Chorales) with the course's own models.

Trains, through ``course.train.train``, the two models of lesson 04 on the canonical JSB Chorales
training set (Boulanger-Lewandowski et al., 2012; the ``.mat`` file of the TCN repository):

- ``PolyLSTM``: an LSTM with 88 independent Bernoulli outputs per frame;
- ``PolyNADE``: the same LSTM with a NADE inside each frame (keys conditioned on the keys below);

keeps the weights of the best validation loss, and reports the test NLL in nats per frame next
to the published numbers, with the per-key marginal floor. The same two models are also trained on
the course's own chorale split (``course.data.pianorolls("chorales", ..., steps_per_quarter=1)``)
so lesson 04 can show both. Results go to ``benchmarks/results/polyphonic_nll.json``.

Usage (from the repository root)::

    python benchmarks/polyphonic_nll.py                        # full run, a few minutes on 2 CPU cores
    python benchmarks/polyphonic_nll.py --fast                 # smoke run, seconds; saves nothing
    python benchmarks/polyphonic_nll.py --data /path/to/JSB_Chorales.mat

The benchmark file is not part of the course; by default it is read from
``../shared/data/polyphonic/JSB_Chorales.mat`` next to the repository.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

import course
from course import data, metrics, train
from course.nn import polyphonic as poly

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "polyphonic" / "JSB_Chorales.mat"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "polyphonic_nll.json"

# Published test NLL on JSB Chorales, nats per frame (lower is better).
PUBLISHED = [
    ("RNN", 8.91, "Bai, Kolter & Koltun 2018, Table 1"),
    ("LSTM", 8.45, "Bai, Kolter & Koltun 2018, Table 1"),
    ("GRU", 8.43, "Bai, Kolter & Koltun 2018, Table 1"),
    ("TCN", 8.10, "Bai, Kolter & Koltun 2018, Table 1"),
    ("RNN-RBM", 6.27, "Boulanger-Lewandowski, Bengio & Vincent 2012, as quoted by Huang et al. 2017"),
    ("RNN-NADE", 5.56, "Boulanger-Lewandowski, Bengio & Vincent 2012, as quoted by Huang et al. 2017"),
]
# The data folder's README gives 11.13 for the per-key marginal floor, a measurement, not a published
# number, and does not say how it was made; this script measures its own (11.09 on frames 2..T with
# add-one smoothing), so the floor has no "published" entry in the table.
README_MARGINAL_FLOOR = 11.13

# Model sizes and training settings (full run). Chosen on the validation set only.
FULL = {
    "PolyLSTM": dict(config=dict(hidden=256, layers=1, dropout=0.5),
                     batch_size=4, steps=1000, lr=1e-2, eval_every=50),
    "PolyNADE": dict(config=dict(hidden=128, layers=1, dropout=0.5, nade_hidden=64),
                     batch_size=8, steps=1500, lr=1e-2, eval_every=50),
}
# On the course's chorales, random transposition makes more training data and the LSTM keeps improving on the
# validation set beyond 1000 steps.
FULL_COURSE = {**FULL, "PolyLSTM": {**FULL["PolyLSTM"], "steps": 2000}}
FAST = {
    "PolyLSTM": dict(config=dict(hidden=32, layers=1, dropout=0.0), batch_size=16, steps=10, lr=1e-2, eval_every=5),
    "PolyNADE": dict(config=dict(hidden=32, layers=1, dropout=0.0, nade_hidden=16), batch_size=16, steps=10,
                     lr=1e-2, eval_every=5),
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_bass_pitch_classes(rolls) -> dict:
    """How many pieces end with each pitch class in the bass (lowest sounding key of the last frame)."""
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    counts: dict = {}
    for r in rolls:
        keys = np.flatnonzero(r[-1])
        if len(keys):
            n = names[(int(keys[0]) + 21) % 12]
            counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def train_one(kind: str, sets: dict, spec: dict, *, device, seed: int, transpose, progress: bool) -> dict:
    """Train one model on ``sets["train"]`` with early stopping on ``sets["valid"]``; score ``sets["test"]``."""
    torch.manual_seed(seed)
    if kind == "PolyLSTM":
        model = poly.PolyLSTM(poly.PolyLSTMConfig(**spec["config"]))
    else:
        model = poly.PolyNADE(poly.PolyNADEConfig(**spec["config"]))
    batches = poly.batches_of_pieces(sets["train"], spec["batch_size"], seed=seed, transpose=transpose)
    valid = list(poly.batches_of_pieces(sets["valid"], 32, shuffle=False))
    test = list(poly.batches_of_pieces(sets["test"], 32, shuffle=False))
    settings = train.TrainConfig(steps=spec["steps"], lr=spec["lr"], eval_every=spec["eval_every"], decay="cosine",
                                 keep_best=True, grad_clip=None, seed=seed, progress=progress)
    hist = train.train(model, batches, poly.loss_fn, settings, valid_batches=valid, device=device)
    skip_first = functools.partial(poly.loss_fn, skip_first=True)
    best = int(np.argmin(hist.valid_loss))
    return {
        "test_nll": train.evaluate(model, test, skip_first),
        "test_nll_all_frames": train.evaluate(model, test, poly.loss_fn),
        "valid_nll": train.evaluate(model, valid, skip_first),
        "best_step": hist.valid_steps[best],
        "steps": spec["steps"],
        "train_seconds": round(hist.seconds, 1),
        "parameters": model.num_parameters(),
        "config": asdict(model.config),
        "batch_size": spec["batch_size"],
        "lr": spec["lr"],
        "schedule": "AdamW, cosine decay to 0, no gradient clipping; weights of the best validation NLL kept",
        "transpose": list(transpose) if transpose else None,
        "valid_curve": [[s, round(v, 4)] for s, v in zip(hist.valid_steps, hist.valid_loss)],
    }


def marginal(sets: dict) -> dict:
    tr, te = sets["train"], sets["test"]
    return {
        "test_nll": metrics.marginal_nll(tr, [r[1:] for r in te], smoothing=1.0),
        "test_nll_all_frames": metrics.marginal_nll(tr, te, smoothing=1.0),
        "smoothing": 1.0,
    }


def table(name: str, res: dict, published: bool) -> str:
    lines = [f"\n{name}: test NLL in nats per frame (lower is better)",
             f"  {'model':<34}{'ours':>8}{'all frames':>12}{'published':>11}"]
    pub = {m: v for m, v, _ in PUBLISHED}
    floor = res["marginal"]
    lines.append(f"  {'per-key marginal (floor)':<34}{floor['test_nll']:>8.2f}{floor['test_nll_all_frames']:>12.2f}"
                 f"{'-':>11}")
    for kind, label, ref in [("PolyLSTM", "PolyLSTM (independent keys)", "LSTM"),
                             ("PolyNADE", "PolyNADE (LSTM + NADE per frame)", "RNN-NADE")]:
        if kind in res:
            r = res[kind]
            lines.append(f"  {label:<34}{r['test_nll']:>8.2f}{r['test_nll_all_frames']:>12.2f}"
                         f"{(f'{pub[ref]:.2f}' if published else '-'):>11}   ({ref if published else ''}"
                         f"{'; ' if published else ''}{r['train_seconds']:.0f} s, best at step {r['best_step']})")
    if published:
        for m, v, src in PUBLISHED:
            if m not in ("LSTM", "RNN-NADE"):
                lines.append(f"  {m + ' (published)':<34}{'':>8}{'':>12}{v:>11.2f}   ({src})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSB_Chorales.mat (default: %(default)s)")
    ap.add_argument("--fast", action="store_true", help="tiny models, a few steps: a smoke test (saves nothing)")
    ap.add_argument("--out", type=Path, default=None, help=f"results file (default: {DEFAULT_OUT.relative_to(ROOT)}; "
                                                           "--fast saves only with --out)")
    ap.add_argument("--sets", default="jsb,course", help="which data: jsb, course or both (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: these small recurrent models are fastest on one thread, "
                         "and far faster than two threads on a busy machine)")
    ap.add_argument("--device", default=None, help="cpu, cuda or mps (default: course.device()'s choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dev = course.device(verbose=False, prefer=args.device)
    specs = FAST if args.fast else FULL
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    out = args.out if args.out is not None else (None if args.fast else DEFAULT_OUT)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {os.cpu_count()} cores"
    results: dict = {
        "benchmark": "polyphonic music NLL, nats per frame",
        "mode": "fast" if args.fast else "full",
        "device": dev.type,
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],   # other work on the machine slows timings
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": args.seed,
        "scoring": ("test_nll: frames 2..T of each piece, each predicted from the frames before it (the protocol of "
                    "the published table's evaluation code); test_nll_all_frames: also the first frame, predicted "
                    "from silence"),
        "published": [{"model": m, "jsb": v, "source": s} for m, v, s in PUBLISHED],
        "data_readme_marginal_floor": README_MARGINAL_FLOOR,   # measured there, method not given; not published
        "sets": {},
    }
    t_all = time.perf_counter()
    for which in wanted:
        if which == "jsb":
            sets = data.load_polyphonic_benchmark(args.data)
            info = {"source": args.data.name, "sha256": sha256(args.data), "frame": "quarter note",
                    "transposed_to_c": "yes: the final bass note is C (or G) in almost every piece",
                    "final_bass_pitch_class": final_bass_pitch_classes(sets["train"] + sets["valid"] + sets["test"])}
            transpose = None             # every piece is in C major or C minor; shifting them only hurts here
        elif which == "course":
            sets = {s: data.pianorolls("chorales", s, steps_per_quarter=1) for s in ("train", "valid", "test")}
            info = {"source": "course.data.pianorolls('chorales', split, steps_per_quarter=1)", "frame": "quarter note",
                    "transposed_to_c": "no: each chorale in its own key",
                    "final_bass_pitch_class": final_bass_pitch_classes(sets["train"] + sets["valid"] + sets["test"])}
            transpose = (-5, 6)          # the pieces are in many keys: random transposition adds data
        else:
            print(f"unknown set {which!r}: use jsb or course", file=sys.stderr)
            return 2
        if args.fast:
            sets = {k: v[:24] for k, v in sets.items()}
        info.update({f"{s}_pieces": len(v) for s, v in sets.items()})
        info.update({f"{s}_frames": int(sum(len(r) for r in v)) for s, v in sets.items()})
        info["mean_notes_per_frame"] = round(metrics.polyphony(sets["train"]), 3)
        res = {"data": info, "marginal": marginal(sets)}
        for kind in ("PolyLSTM", "PolyNADE"):
            spec = FULL_COURSE[kind] if which == "course" and not args.fast else specs[kind]
            res[kind] = train_one(kind, sets, spec, device=dev, seed=args.seed, transpose=transpose,
                                  progress=sys.stderr.isatty())
            print(f"{which} {kind}: test {res[kind]['test_nll']:.3f} nats/frame "
                  f"({res[kind]['train_seconds']:.0f} s of training)", flush=True)
        results["sets"][which] = res
        print(table({"jsb": "JSB Chorales (canonical split)", "course": "course chorales (own split)"}[which], res,
                    published=which == "jsb"), flush=True)
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\ntotal {results['total_seconds']:.0f} s on {dev.type} ({device_name}, {torch.get_num_threads()} thread(s))")
    if "jsb" in results["sets"] and not args.fast:
        r = results["sets"]["jsb"]
        ok_lstm = r["PolyLSTM"]["test_nll"] <= 8.45
        ok_nade = r["PolyNADE"]["test_nll"] < r["PolyLSTM"]["test_nll"] - 1.0
        results["checks"] = {"PolyLSTM at most 8.45 (published LSTM)": ok_lstm,
                             "PolyNADE more than 1 nat/frame below PolyLSTM": ok_nade}
        print(f"PolyLSTM <= 8.45: {'yes' if ok_lstm else 'NO'}; PolyNADE clearly better: {'yes' if ok_nade else 'NO'}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
