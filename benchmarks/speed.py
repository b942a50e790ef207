"""The course's speed figures, each a ratio of two things measured in the same run on the same machine.

Every row is ``{name, value, unit, baseline, ratio, device, note}``: ``value`` is the course's way,
``baseline`` the way it is compared with (same unit), and ``ratio`` is how many times better the
course's way is (``baseline / value`` for times and memory, ``value / baseline`` for rates), so a
ratio above 1 is a win. Never compare timings across machines: each run records its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, PeakMemory, median_time, peak_tensor_bytes, say, sync


def row(name: str, value, unit: str, baseline=None, *, device: str = "cpu", higher_is_better: bool = False,
        note: str = "", **extra) -> dict:
    ratio = None
    if value is not None and baseline is not None and value > 0 and baseline > 0:
        ratio = round(value / baseline if higher_is_better else baseline / value, 2)
    r = {"name": name, "value": None if value is None else round(float(value), 6), "unit": unit,
         "baseline": None if baseline is None else round(float(baseline), 6), "ratio": ratio, "device": device,
         "note": note}
    r.update(extra)
    return r


# ------------------------------------------------------------------------------------------ synthesis

SYNTH_SECONDS, SYNTH_RATE = 30.0, 16000


def chorale(name: str = "bach/bwv269", seconds: float = SYNTH_SECONDS):
    """A four-voice chorale from the music21 corpus as a ``Music``, looped or trimmed to ``seconds``."""
    import music21

    from course import music as cm

    piece = cm.from_music21(music21.corpus.parse(name))
    notes, offset = [], 0.0
    while offset < seconds:
        notes += [n._replace(start=n.start + offset, end=n.end + offset) for n in piece.notes]
        offset += piece.duration
    return cm.trim(piece.replace(notes=tuple(notes)), 0.0, seconds)


def synthesis(quick: bool, device: str) -> list[dict]:
    """The course's NumPy synthesizer against pretty_midi's (and FluidSynth's, when installed)."""
    from course import music as cm
    from course.listen import fluidsynth_available, synthesize

    runs = 3 if quick else 15
    piece = chorale()
    pm = cm.to_pretty_midi(piece)
    ours = median_time(lambda: synthesize(piece, SYNTH_RATE, backend="numpy"), runs)
    theirs = median_time(lambda: pm.synthesize(fs=SYNTH_RATE), runs)
    what = f"bach/bwv269 looped to {piece.duration:.0f} s, {len(piece.notes)} notes, {SYNTH_RATE} Hz, median of {runs}"
    rows = [row("synthesis: course NumPy synthesizer vs pretty_midi.PrettyMIDI.synthesize", ours, "s", theirs,
                note=f"{what}; {piece.duration / ours:,.0f}x real time", device="cpu")]
    if fluidsynth_available():
        fs = median_time(lambda: synthesize(piece, SYNTH_RATE, backend="fluidsynth"), runs)
        rows.append(row("synthesis: course NumPy synthesizer vs FluidSynth", ours, "s", fs, note=what, device="cpu"))
    else:
        rows.append(row("synthesis: course NumPy synthesizer vs FluidSynth", ours, "s", None, device="cpu",
                        note="FluidSynth is not installed here (pyfluidsynth and libfluidsynth): not measured"))
    return rows


# ------------------------------------------------------------------------------------------ attention

def naive_attention(q, k, v):
    """Softmax(Q K^T / sqrt(d) + causal mask) V with the whole (L, L) matrix in memory, as lesson 05 writes it."""
    import math

    import torch

    L = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])                       # (B, H, L, L)
    att = att.masked_fill(torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(att, dim=-1) @ v                                           # (B, H, L, d)


def attention(quick: bool, device: str) -> list[dict]:
    """Naive attention against ``F.scaled_dot_product_attention`` (causal), time and peak memory."""
    import torch
    import torch.nn.functional as F

    lengths = (128, 512) if quick else (128, 256, 512, 1024, 2048, 4096)
    heads, d_head = 4, 64
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    rows = []
    for L in lengths:
        g = torch.Generator(device="cpu").manual_seed(L)
        q, k, v = (torch.randn(1, heads, L, d_head, generator=g).to(device, dtype) for _ in range(3))
        runs = 2 if quick or L >= 2048 else 5
        results = {}
        for name, fn in (("naive", lambda: naive_attention(q, k, v)),
                         ("sdpa", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))):
            try:
                with torch.no_grad():
                    fn()
                    sync(device)
                    if device.startswith("cuda"):
                        with PeakMemory(device) as mem:
                            out = fn()
                            sync(device)
                        del out
                        peak = mem.bytes
                    else:
                        peak = peak_tensor_bytes(fn)

                    def timed():
                        fn()
                        sync(device)
                    results[name] = (median_time(timed, runs, warmup=0), peak)
            except (RuntimeError, MemoryError) as e:        # torch.cuda.OutOfMemoryError is a RuntimeError
                results[name] = (None, None)
                say(f"  attention L={L} {name}: {type(e).__name__} (out of memory)")
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
        (tn, mn), (ts, ms) = results["naive"], results["sdpa"]
        oom = " the naive one ran out of memory" if tn is None else ""
        shape = f"B=1, {heads} heads, d_head={d_head}, causal, {str(dtype).replace('torch.', '')}"
        rows.append(row(f"attention L={L}: scaled_dot_product_attention vs naive, time", ts, "s", tn, device=device,
                        note=shape + (";" + oom if oom else ""), length=L))
        rows.append(row(f"attention L={L}: scaled_dot_product_attention vs naive, peak memory",
                        None if ms is None else ms / 2**20, "MiB", None if mn is None else mn / 2**20, device=device,
                        note=("CUDA max_memory_allocated" if device.startswith("cuda") else
                              "most bytes held at once by the tensors the operations return, counted op by op "
                              "(a fused kernel's own workspace is not seen)")
                        + (";" + oom if oom else ""), length=L))
        say(f"  attention L={L}: naive {tn if tn is None else round(tn * 1e3, 1)} ms, sdpa {round(ts * 1e3, 1)} ms")
    return rows


# ------------------------------------------------------------------------------------------ generation

def generation(quick: bool, device: str) -> list[dict]:
    """Lesson 06's Transformer generating greedily: key/value cache against recomputing the prefix."""
    import torch

    from course import data
    from course.nn import transformer as tf

    size = dict(d_model=32, n_heads=2, n_layers=1, d_ff=64) if quick else dict(d_model=128, n_heads=4, n_layers=3, d_ff=512)
    torch.manual_seed(0)
    model = tf.MusicTransformer(tf.TransformerConfig(vocab_size=len(data.melody_vocab()), context=512, dropout=0.0,
                                                     **size)).to(device).eval()
    start = torch.ones(1, 1, dtype=torch.long, device=device)
    rows = []
    for n_new in ((24,) if quick else (64, 256)):
        @torch.no_grad()
        def cached():
            logits, cache = model.step(start)
            tok = logits[:, -1:].argmax(-1)
            out = [tok]
            for _ in range(n_new - 1):
                logits, cache = model.step(tok, cache)
                tok = logits[:, -1:].argmax(-1)
                out.append(tok)
            sync(device)
            return torch.cat(out, 1)

        @torch.no_grad()
        def recompute():
            seq = start
            for _ in range(n_new):
                tok = model(seq)[:, -1:].argmax(-1)
                seq = torch.cat([seq, tok], 1)
            sync(device)
            return seq[:, 1:]

        same = bool(torch.equal(cached(), recompute()))          # also the warm-up
        t_cache, t_full = median_time(cached, 2, warmup=0), median_time(recompute, 2, warmup=0)
        note = (f"greedy, one sequence, {n_new} tokens from one, d_model={size['d_model']}, {size['n_layers']} layers, "
                f"relative attention; the two give {'the same' if same else 'DIFFERENT'} tokens")
        rows.append(row(f"generation, {n_new} tokens: key/value cache vs recomputing the prefix", n_new / t_cache,
                        "tokens/s", n_new / t_full, device=device, higher_is_better=True, note=note, tokens=n_new))
    return rows


# ------------------------------------------------------------------------------------------ grading

GRADING_TARGET_S = 300.0        # grading 100 submissions in under 5 minutes on 2 cores (the grading issue)


def grading(quick: bool, device: str) -> list[dict]:
    """Wall time for 100 submissions, measured by benchmarks/grading_speed.py (run as it is, in a subprocess)."""
    n = 100
    with tempfile.TemporaryDirectory(prefix="course-bench-grading-") as d:
        out = Path(d) / "grading_speed.json"
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "grading_speed.py"), "--n", str(n),
                              "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if not out.is_file():
            tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
            return [row(f"grading: {n} submissions of lesson 00", None, "s", GRADING_TARGET_S, device="cpu",
                        note="measured by benchmarks/grading_speed.py, which failed: " + " | ".join(tail))]
        res = json.loads(out.read_text())
    seconds = res.get("wall_seconds", wall)
    note = (f"measured by benchmarks/grading_speed.py ({res.get('jobs')} jobs, verdicts as expected: "
            f"{res.get('verdicts_as_expected')}); baseline: the 5-minute target")
    return [row(f"grading: {res.get('submissions', n)} submissions of lesson 00 vs the 5-minute target", seconds, "s",
                GRADING_TARGET_S, device="cpu", note=note, details=res)]


# ------------------------------------------------------------------------------------------ the whole course

def whole_course(quick: bool, device: str) -> list[dict]:
    """Wall time of every solution notebook executed in fast mode (nothing written back), one after another."""
    code = ("import json, sys, time\n"
            "from pathlib import Path\n"
            "from course.authoring.execute import execute_notebook\n"
            "out = {}\n"
            "for p in sorted(Path('solutions').glob('[0-9][0-9]_*.ipynb')):\n"
            "    r = execute_notebook(p, write=False)\n"
            "    out[p.stem] = [round(r.seconds, 1), bool(r.ok)]\n"
            "    print(p.stem, out[p.stem], flush=True)\n"
            "print('JSON' + json.dumps(out))\n")
    env = {**os.environ, "COURSE_FAST": "1"}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("JSON")]
    per = json.loads(lines[-1][4:]) if lines else {}
    failed = [k for k, (_, ok) in per.items() if not ok]
    slowest = sorted(per.items(), key=lambda kv: -kv[1][0])[:3]
    note = (f"{len(per)} solution notebooks in fast mode (COURSE_FAST=1), one at a time, one kernel each; "
            f"slowest: {', '.join(f'{k} {v[0]:.0f} s' for k, v in slowest)}"
            + (f"; FAILED: {', '.join(failed)}" if failed else "; all verified") + "; no baseline: a record to watch")
    return [row("whole course: every solution notebook in fast mode", wall if per else None, "s", None, device="cpu",
                note=note, per_lesson_seconds={k: v[0] for k, v in per.items()})]


# ------------------------------------------------------------------------------------------ data

def data_speed(quick: bool, device: str) -> list[dict]:
    """Loading the committed data sets against building them from the music21 corpus (per piece)."""
    from course import data
    from course.data import sets
    from course.data.build import build

    limit = 4 if quick else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="course-bench-data-") as d:
        t0 = time.perf_counter()
        summary = build(out=d, only="chorales", limit=limit, jobs=1, progress=False)
        t_build = time.perf_counter() - t0
    pieces = summary["chorales"]["all"]

    def cold_load():
        sets._CACHE.clear()
        data.load("chorales", "train")
        data.load("chorales", "valid")
        data.load("chorales", "test")

    def cold_rolls():
        sets._CACHE.clear()
        data.pianorolls("chorales", "train", steps_per_quarter=4)

    t_load = median_time(cold_load, 3 if quick else 5)
    t_rolls = median_time(cold_rolls, 3 if quick else 5)
    n_all = sum(len(data.load("chorales", s)) for s in ("train", "valid", "test"))
    scope = f"first {pieces} pieces" if limit else f"all {pieces} pieces"
    rows.append(row("data: load the chorales from datasets/ vs build them from the music21 corpus", t_load, "s",
                    t_build * n_all / max(pieces, 1), device="cpu",
                    note=f"build: {t_build:.1f} s for {scope}, one process, music21's parse cache as found"
                         + (", scaled to all pieces" if limit else "") + f"; load: all {n_all} pieces, cold"))
    rows.append(row("data: chorale training piano rolls (4 steps per quarter) vs the 1-s load target", t_rolls, "s",
                    1.0, device="cpu", note="data.pianorolls('chorales', 'train', steps_per_quarter=4), cold"))
    return rows


PARTS = {"synthesis": synthesis, "attention": attention, "generation": generation, "grading": grading,
         "course": whole_course, "data": data_speed}
