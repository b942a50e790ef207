"""Memory of relative position logits: the Music Transformer's skewing against Shaw et al.'s gather.

For one head and one sequence of ``L`` tokens with ``d_head = D``, the relative logits
``S_rel[i, j] = q_i . e_(j-i)`` need, beyond the queries:

- Shaw et al. (2018): the gathered embeddings ``R`` ``(L, L, D)`` and the logits ``(L, L)``:
  ``L^2 D + L^2`` numbers;
- skewing (Huang et al., 2018): the distance table ``E`` ``(L, D)``, ``Q E^T`` ``(L, L)`` and its padded
  copy ``(L, L+1)`` (the reshape and the row slice are views): ``L D + L^2 + L (L+1)`` numbers.

The script prints these analytic counts (float32 bytes) and their ratio for ``L`` in 256, 512, 1024,
checks them against the bytes that ``course.nn.relative``'s two implementations really allocate
(counted op by op; the table ``E`` is an input there, a parameter that exists anyway), times both
(best of ``--runs``), and writes ``benchmarks/results/relative_attention_memory.json``.
The course's naive reference multiplies elementwise before summing, so it allocates a second
``(L, L, D)`` tensor on top of Shaw's count.

    python benchmarks/relative_attention_memory.py [--lengths 256 512 1024] [--d-head 64] [--threads 1]

Lesson: 06_music_transformer
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))        # run from a checkout without installing

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from course.nn import relative  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "relative_attention_memory.json"
BYTES = 4   # float32


def analytic(L: int, D: int) -> dict:
    """Extra numbers held for the relative logits of one head and one sequence."""
    shaw = L * L * D + L * L
    skew = L * D + L * L + L * (L + 1)
    return {"shaw_elements": shaw, "skew_elements": skew, "shaw_MiB": round(shaw * BYTES / 2**20, 3),
            "skew_MiB": round(skew * BYTES / 2**20, 3), "ratio_shaw_over_skew": round(shaw / skew, 1)}


class _CountAllocations(TorchDispatchMode):
    """Adds up the bytes of every tensor an operation returns in new memory (a view or an in-place
    result shares the storage of one of the operation's inputs and is not counted)."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {a.untyped_storage().data_ptr() for a in torch.utils._pytree.tree_leaves((args, kwargs))
                  if torch.is_tensor(a)}
        for t in torch.utils._pytree.tree_leaves(out):
            if torch.is_tensor(t) and t.untyped_storage().data_ptr() not in inputs:
                self.bytes += t.untyped_storage().nbytes()
        return out


def allocated(fn, *tensors) -> int:
    with _CountAllocations() as counter:
        fn(*tensors)
    return counter.bytes


def best_seconds(fn, runs: int) -> float:
    """The fastest of ``runs`` timed calls (after one warm-up): on a shared machine the least disturbed one."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--d-head", type=int, default=64)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1: steadiest on a shared machine)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    D = args.d_head
    rows = []
    for L in args.lengths:
        q, E = torch.randn(L, D), torch.randn(L, D)
        ok = torch.ones(L, L, dtype=torch.bool).tril()
        skew, naive = (lambda: relative.relative_logits(q, E)), (lambda: relative.relative_logits_naive(q, E))
        with torch.no_grad():
            err = (skew() - naive())[ok].abs().max()
            row = {"L": L, "d_head": D, **analytic(L, D),
                   "measured_skew_MiB": round(allocated(relative.relative_logits, q, E) / 2**20, 3),
                   "measured_naive_MiB": round(allocated(relative.relative_logits_naive, q, E) / 2**20, 3),
                   "skew_ms_best": round(1000 * best_seconds(skew, args.runs), 2),
                   "naive_ms_best": round(1000 * best_seconds(naive, args.runs), 2),
                   "max_abs_difference": float(err)}
        rows.append(row)
    result = {
        "what": "extra memory of the relative logits for one head and one sequence (float32); "
                "measured = bytes of new tensors the course's implementations allocate (E, q not counted)",
        "rows": rows,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
                    else None},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"relative logits, one head, d_head = {D}, float32 (MiB; measured = allocated by course.nn.relative)")
    print(f"{'L':>6} {'Shaw':>10} {'skew':>8} {'ratio':>6} {'naive meas.':>12} {'skew meas.':>11} "
          f"{'naive ms':>9} {'skew ms':>8}")
    for r in rows:
        print(f"{r['L']:>6} {r['shaw_MiB']:>10.2f} {r['skew_MiB']:>8.2f} {r['ratio_shaw_over_skew']:>5.1f}x "
              f"{r['measured_naive_MiB']:>12.2f} {r['measured_skew_MiB']:>11.2f} "
              f"{r['naive_ms_best']:>9.1f} {r['skew_ms_best']:>8.1f}")
    print(f"  wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
