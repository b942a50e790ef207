"""``python -m benchmarks run``: every benchmark of the course, one command, one results file.

    python -m benchmarks run                       # the full CPU run: writes benchmarks/RESULTS.md and results.json
    python -m benchmarks run --quick               # a small version (under 2 minutes on a CPU), into a temporary folder
    python -m benchmarks run --only jsb,attention  # some parts; their rows replace the same rows in --out
    python -m benchmarks run --device cuda         # that device's numbers, in their own column (mixed precision on)

Parts: the NLL table on ``jsb``, ``nottingham``, ``musedata``, ``piano-midi`` (group ``nll``); the speed
rows ``synthesis``, ``attention``, ``generation``, ``grading``, ``course``, ``data`` (group ``speed``);
and ``scaling``. ``--quick`` leaves out ``grading`` and ``course`` (minutes each) and never writes
over the committed files: it writes to ``--out`` or to a new temporary folder.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import nll, scaling, speed
from .common import COMMITTED, ROOT, fmt, load_average, machine_info, say, write_results

NLL_PARTS = {"jsb": "JSB", "nottingham": "Nottingham", "musedata": "MuseData", "piano-midi": "Piano-midi"}
SPEED_PARTS = tuple(speed.PARTS)
ALL_PARTS = (*NLL_PARTS, *SPEED_PARTS, "scaling")
# older single measurements, kept as scripts with their own JSON under benchmarks/results/ (lessons 03 and 06 read
# them); the runner calls them only when named in --only, with their results next to --out's files
EXTRAS = {"pretrained-load": "pretrained_load.py", "relative-memory": "relative_attention_memory.py",
          "melody-lstm": "melody_lstm.py"}
GROUPS = {"nll": tuple(NLL_PARTS), "speed": SPEED_PARTS, "all": ALL_PARTS}
NOT_IN_QUICK = {"grading": "grading 100 notebooks takes minutes; measured in the full run only",
                "course": "executing every lesson takes many minutes; measured in the full run only"}
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "polyphonic"


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(ALL_PARTS)
    out = []
    for name in (t.strip().lower() for t in text.split(",")):
        if not name:
            continue
        names = GROUPS.get(name, (name,))
        for n in names:
            if n not in ALL_PARTS and n not in EXTRAS:
                raise SystemExit(f"unknown part {n!r}: choose from {', '.join(ALL_PARTS)}, {', '.join(GROUPS)} "
                                 f"or {', '.join(EXTRAS)}")
            if n not in out:
                out.append(n)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quick", action="store_true",
                    help="a small version (JSB only, tiny models, fewer repeats): under 2 minutes on a CPU")
    ap.add_argument("--only", default=None, help=f"comma-separated parts: {', '.join(ALL_PARTS)}, or nll, speed")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                    help="folder with JSB_Chorales.mat, Nottingham.mat, MuseData.mat, Piano_midi.mat "
                         "(default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for RESULTS.md and results.json (default: benchmarks/; with --quick a new "
                         "temporary folder)")
    ap.add_argument("--models", default=None,
                    help=f"comma-separated models of the NLL table to train (default: all: {', '.join(nll.MODELS)}); "
                         "their rows replace the same rows in --out")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: these small models are fastest so on a shared machine)")


def run(args) -> int:
    import torch

    torch.set_num_threads(max(1, args.threads))
    parts = parse_only(args.only)
    skipped = []
    if args.quick and not args.only:
        for p in ("nottingham", "musedata", "piano-midi"):
            parts.remove(p)
            skipped.append({"part": p, "why": "--quick trains on JSB only (name it in --only to include it)"})
    if args.quick:
        for p, why in NOT_IN_QUICK.items():
            if p in parts:
                parts.remove(p)
                skipped.append({"part": p, "why": why})
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="course-benchmarks-")) if args.quick else COMMITTED
    out = Path(out).resolve()
    if args.quick and out == COMMITTED.resolve():
        raise SystemExit("--quick never writes over the committed full-run files in benchmarks/: give another --out")
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    device = dev.type
    info = machine_info(device)
    mode = "quick" if args.quick else "full"
    say(f"benchmarks ({mode}) on {info['device_name']}, torch {info['torch']}, {info['torch_threads']} thread(s); "
        f"load average {info['load_average_at_start']}; parts: {', '.join(parts)}; writing to {out}")
    common = {"schema": 1,
              "published": [{"model": m, "dataset": d, "test_nll": v, "source": s} for m, d, v, s in nll.PUBLISHED],
              "targets": nll.TARGETS, "aims": nll.AIMS, "main_column": nll.MAIN_COLUMN,
              "main_column_why": nll.MAIN_COLUMN_WHY, "notes": nll.NOTES}
    models = None
    if args.models:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        unknown = [m for m in models if m not in nll.MODELS]
        if unknown:
            raise SystemExit(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(nll.MODELS)}")
    t_all = time.perf_counter()
    command = ("python -m benchmarks run" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
               + (f" --models {args.models}" if args.models else "")
               + (f" --device {device}" if device != "cpu" else ""))
    if skipped:       # say what this run left out, and why
        note = {**info, "mode": mode, "parts": [], "skipped": skipped, "seconds": 0.0,
                "load_average_at_end": load_average(), "command": command}
        write_results(out, {**common, "nll": [], "speed": [], "scaling": [], "runs": [note]}, markdown)
    for part in parts:          # each part is written as soon as it is done: a long run keeps what it finished
        t0 = time.perf_counter()
        start = {**machine_info(device), "mode": mode, "command": command}
        say(f"[{part}]")
        res = {**common, "nll": [], "speed": [], "scaling": []}
        part_skip = []
        extra = {}
        if part in NLL_PARTS:
            if models:
                rows, di = nll.run_dataset(NLL_PARTS[part], args.data_dir, quick=args.quick, device=dev, models=models)
            else:
                rows, di = nll.run_dataset(NLL_PARTS[part], args.data_dir, quick=args.quick, device=dev)
            res["nll"] = rows
            extra["data"] = di
            if not rows:
                part_skip.append({"part": part, "why": di["skipped"]})
        elif part == "scaling":
            res["scaling"] = [{**r, "part": part} for r in scaling.run(args.quick, dev)]
        elif part in EXTRAS:
            target = out / "results" / EXTRAS[part].replace(".py", ".json")
            cmd = [sys.executable, str(ROOT / "benchmarks" / EXTRAS[part]), "--out", str(target)]
            if args.quick and part == "melody-lstm":
                cmd.append("--fast")
            rc = subprocess.run(cmd, cwd=ROOT).returncode
            extra["extra_result"] = {"file": str(target), "returncode": rc}
        else:
            res["speed"] = [{**r, "part": part} for r in speed.PARTS[part](args.quick, device)]
        label = f"{part}[{','.join(models)}]" if models and part in NLL_PARTS else part
        res["runs"] = [{**start, **extra, "parts": [] if part_skip else [label], "skipped": part_skip,
                        "seconds": round(time.perf_counter() - t0, 1), "load_average_at_end": load_average()}]
        path_json, path_md = write_results(out, res, markdown)
        say(f"  ({time.perf_counter() - t0:.0f} s)")
    say(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'} ({(time.perf_counter() - t_all) / 60:.1f} min)")
    return 0


# ------------------------------------------------------------------------------------------ RESULTS.md

def markdown(res: dict) -> str:
    """The results as a readable page: where it ran, the NLL table, the speed rows, the scaling study."""
    L = ["# Benchmark results", "",
         "Written by `python -m benchmarks run` (see `benchmarks/README.md`); the same numbers are in `results.json`.",
         "Timings hold for the machine and the load they were measured under; never compare them across machines.", "",
         "## Where and when", "",
         "| parts | mode | date | machine | device | threads | versions | load average (start / end) | minutes |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("runs", []):
        L.append(f"| {', '.join(r.get('parts', []))} | {r.get('mode')} | {r.get('date')} | {r.get('machine')} | "
                 f"{r.get('device')} | {r.get('torch_threads')} | Python {r.get('python')}, torch {r.get('torch')}, "
                 f"numpy {r.get('numpy')}, commit {r.get('commit')} | {r.get('load_average_at_start')} / "
                 f"{r.get('load_average_at_end')} | {r.get('seconds', 0) / 60:.1f} |")
    skipped = [s for r in res.get("runs", []) for s in r.get("skipped", [])]
    if skipped:
        L += [""] + [f"- not run: **{s['part']}**: {s['why']}" for s in skipped]
    rows = res.get("nll", [])
    devices = sorted({r["device"] for r in rows} | {"cpu"})
    has_cuda = "cuda" in devices
    pub = {}
    for p in res.get("published", []):
        pub.setdefault(p["dataset"], []).append(f"{p['model']} {p['test_nll']:.2f}")
    L += ["", "## Polyphonic music: test NLL in nats per frame (lower is better)", "",
          f"Main column: **{res.get('main_column', nll.MAIN_COLUMN)}** of each test piece, because "
          f"{res.get('main_column_why', nll.MAIN_COLUMN_WHY)}. Canonical splits of the `.mat` files of "
          "Boulanger-Lewandowski et al. (2012); weights of the best validation NLL; one seed.", ""]
    head = "| data set | model | CPU: frames 2..T | CPU: all frames | parameters | CPU train s | CUDA: frames 2..T |"
    L += [head, "|---|---|---:|---:|---:|---:|---:|"]
    for ds in nll.TARGETS:
        for model in ("per-key marginal", *nll.MODELS):
            cpu = next((r for r in rows if r["dataset"] == ds and r["model"] == model and r["device"] == "cpu"), None)
            gpu = next((r for r in rows if r["dataset"] == ds and r["model"] == model and r["device"] == "cuda"), None)
            if cpu is None and gpu is None:
                continue
            c = cpu or {}
            L.append(f"| {ds} | {model} | {fmt(c.get('test_nll_frames_2_to_T'))} | {fmt(c.get('test_nll_all_frames'))} "
                     f"| {fmt(c.get('params'))} | {fmt(c.get('train_seconds'), 0)} | "
                     f"{fmt(gpu['test_nll_frames_2_to_T']) if gpu else 'not run'} |")
        if ds in pub:
            L.append(f"| {ds} | published | {'; '.join(pub[ds])} | | | | |")
    if not has_cuda:
        L += ["", "CUDA column: **not run** (no GPU was lent to this run; `python -m benchmarks run --device cuda` "
              "fills it, with mixed precision on)."]
    verdicts = nll.verdicts(rows)
    if verdicts:
        L += ["", "### Targets", "", "| data set | device | best course model | test NLL | target | met | aim | aim met |",
              "|---|---|---|---:|---:|---|---:|---|"]
        for v in verdicts:
            L.append(f"| {v['dataset']} | {v['device']} | {v['best_model']} | {v['best_test_nll']:.2f} | "
                     f"{v['target']:.2f} | {'yes' if v['met'] else '**missed**'} | {fmt(v['aim'])} | "
                     f"{'-' if v['aim_met'] is None else ('yes' if v['aim_met'] else 'missed')} |")
    sp = res.get("speed", [])
    if sp:
        L += ["", "## Speed", "",
              "`value` is the course's way, `baseline` what it is compared with, in the same run; `ratio` is how many "
              "times better the course's way is (above 1: a win).", "",
              "| measurement | device | value | baseline | unit | ratio | note |", "|---|---|---:|---:|---|---:|---|"]
        for r in sp:
            L.append(f"| {r['name']} | {r['device']} | {fmt(r['value'], 4)} | {fmt(r['baseline'], 4)} | {r['unit']} | "
                     f"{fmt(r['ratio'])} | {r.get('note', '')} |")
    sc = res.get("scaling", [])
    if sc:
        L += ["", "## Scaling: lesson 06's Transformer at a fixed token budget", "",
              "| model | parameters | training tokens | validation NLL (nats/token) | train s | device |",
              "|---|---:|---:|---:|---:|---|"]
        for r in sc:
            L.append(f"| {r['model']} | {r['params']:,} | {r['train_tokens']:,} | {r['valid_nll']:.3f} | "
                     f"{fmt(r['train_seconds'], 0)} | {r['device']} |")
    notes = res.get("notes")
    if notes:
        L += ["", "## Notes", ""] + [str(n) for n in notes]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("run", help="run the benchmarks and write RESULTS.md and results.json"))
    ren = sub.add_parser("render", help="rewrite RESULTS.md from results.json (after editing the code's notes)")
    ren.add_argument("--out", type=Path, default=COMMITTED, help="the folder (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.command == "render":
        path = Path(args.out) / "results.json"
        res = json.loads(path.read_text(encoding="utf-8"))
        res["notes"] = nll.NOTES
        path.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        (Path(args.out) / "RESULTS.md").write_text(markdown(res), encoding="utf-8")
        say(f"rewrote {path.parent / 'RESULTS.md'}")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
