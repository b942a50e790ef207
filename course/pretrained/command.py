"""``python -m course pretrain NAME``: retrain a pretrained entry with its lesson's full settings.

Writes ``NAME.safetensors`` and ``NAME.json`` into ``course/pretrained/`` (or ``--out``). ``--quick``
trains for seconds, for tests and smoke runs; it writes to a temporary folder unless ``--out`` is given,
so it never replaces the shipped weights.

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    from .recipes import RECIPES

    parser.add_argument("names", nargs="+", metavar="NAME", help=f"entries: {', '.join(sorted(RECIPES))}, or all")
    parser.add_argument("--quick", action="store_true", help="seconds of training (a smoke run); not shipped")
    parser.add_argument("--out", type=Path, default=None, help="folder for the weights and card "
                                                               "(default: the course's own; --quick: a temporary one)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def run(args) -> int:
    import torch

    from .store import PretrainedError
    from .recipes import RECIPES, run as train_entry

    names = sorted(RECIPES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise PretrainedError(f"No pretrained model called {unknown[0]!r}; the course has: {', '.join(sorted(RECIPES))}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or (Path(tempfile.mkdtemp(prefix="course-pretrain-")) if args.quick else None)
    for name in names:
        info = train_entry(name, quick=args.quick, device=args.device, folder=out)
        shown = {k: v for k, v in info["metrics"].items() if k != "scoring"}
        print(f"{name}: {info['parameters']:,} parameters, {info['bytes'] / 1e6:.2f} MB, "
              f"{info['wall_seconds']:.0f} s on {info['device']}; {json.dumps(shown)}")
    print(f"wrote {out or Path(__file__).resolve().parent}")
    return 0
