"""Train lesson 03's melody LSTM with the lesson's full settings and record what it reaches.

Lesson 03 says what its full (non-fast) training run gives: the validation loss in nats per
token, and when it stops improving. This script runs those settings (the model, data, batches
and optimizer of the lesson's training cells, seeded with 0) through
``course.train.train`` and writes the curve and the final numbers to
``benchmarks/results/melody_lstm.json``.

Usage (from the repository root)::

    python benchmarks/melody_lstm.py            # full run: about 40 minutes on one CPU thread, minutes on a GPU
    python benchmarks/melody_lstm.py --fast     # smoke run, seconds; saves only with --out

The validation loss is measured as in the lesson: on chunks of ``seq_len`` tokens, each read from a
zero LSTM state, so it is "nats per token given at most ``seq_len`` tokens of context".
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))        # run from a checkout without installing

import torch  # noqa: E402

import course  # noqa: E402
from course import data, nn, train  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "melody_lstm.json"

# lesson 03's training cells: (full, fast)
SETTINGS = {
    "full": dict(emb=64, hidden=256, layers=2, dropout=0.2, seq_len=128, batch_size=64, steps=3000, warmup=100,
                 eval_every=250, eval_batches=50),
    "fast": dict(emb=32, hidden=64, layers=1, dropout=0.0, seq_len=64, batch_size=16, steps=40, warmup=0,
                 eval_every=20, eval_batches=5),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="tiny settings, a smoke test; writes only with --out")
    ap.add_argument("--out", type=Path, default=None, help=f"results file (full runs: {DEFAULT_OUT.name} by default)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1: as the lesson on CPU)")
    args = ap.parse_args(argv)

    s = SETTINGS["fast" if args.fast else "full"]
    device = course.device()
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    course.seed_everything(0)
    vocab = data.melody_vocab()
    train_tokens, valid_tokens = data.melody_tokens("train"), data.melody_tokens("valid")
    config = nn.melody.MelodyLSTMConfig(vocab_size=len(vocab), emb=s["emb"], hidden=s["hidden"], layers=s["layers"],
                                        dropout=s["dropout"])
    model = nn.melody.MelodyLSTM(config)
    loader = torch.utils.data.DataLoader
    train_batches = loader(data.TokenDataset(train_tokens, s["seq_len"]), batch_size=s["batch_size"], shuffle=True,
                           drop_last=True)
    valid_batches = loader(data.TokenDataset(valid_tokens, s["seq_len"]), batch_size=s["batch_size"])
    settings = train.TrainConfig(steps=s["steps"], lr=2e-3, warmup=s["warmup"], eval_every=s["eval_every"],
                                 eval_batches=s["eval_batches"])
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    history = train.train(model, train_batches, nn.melody.loss_fn, settings, valid_batches=valid_batches,
                          device=device)
    valid_nll = train.evaluate(model, valid_batches, nn.melody.loss_fn)
    seconds = time.perf_counter() - t0
    best = min(range(len(history.valid_loss)), key=history.valid_loss.__getitem__)
    result = {
        "mode": "fast" if args.fast else "full",
        "settings": s,
        "parameters": model.num_parameters(),
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load,       # other work on the machine slows the timing
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "valid_nll_per_token": round(valid_nll, 4),
        "valid_perplexity": round(math.exp(valid_nll), 2),
        "train_loss_last_50_steps": round(sum(history.train_loss[-50:]) / len(history.train_loss[-50:]), 4),
        "best_valid_step": history.valid_steps[best],
        "valid_curve": [[st, round(v, 4)] for st, v in zip(history.valid_steps, history.valid_loss)],
        "scoring": "mean cross-entropy per token on the validation split, chunks of seq_len tokens from a zero state",
    }
    print(f"{result['mode']}: {result['parameters']:,} parameters, {s['steps']} steps in {seconds:.0f} s on "
          f"{device.type}; validation {valid_nll:.3f} nats/token (perplexity {math.exp(valid_nll):.2f}); "
          f"best evaluation at step {result['best_valid_step']}")
    for st, v in result["valid_curve"]:
        print(f"  step {st:>5}: valid {v:.3f}")
    out = args.out or (None if args.fast else DEFAULT_OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
