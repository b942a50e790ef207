"""The files of a pretrained entry: where they live, and writing them (float16 safetensors + a JSON card).

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import CourseError
from ..files import atomic_write

__all__ = ["FOLDER", "MAX_ENTRY_BYTES", "MAX_TOTAL_BYTES", "PretrainedError", "weights_path", "card_path", "save"]

FOLDER = Path(__file__).resolve().parent
MAX_ENTRY_BYTES = 3_000_000          # one entry's weights
MAX_TOTAL_BYTES = 16_000_000         # every entry's weights together


class PretrainedError(CourseError):
    """A pretrained entry that is missing, unknown or damaged."""


def weights_path(name: str, folder: str | Path | None = None) -> Path:
    return Path(folder or FOLDER) / f"{name}.safetensors"


def card_path(name: str, folder: str | Path | None = None) -> Path:
    return Path(folder or FOLDER) / f"{name}.json"


def save(name: str, model, info: dict, folder: str | Path | None = None) -> dict:
    """Write ``model``'s weights (float16) and its card ``info`` (the SHA-256 and size are added)."""
    from safetensors.torch import save as to_bytes

    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items()}
    raw = to_bytes(state, metadata={"name": name})
    if len(raw) > MAX_ENTRY_BYTES:
        raise PretrainedError(f"{name}: {len(raw) / 1e6:.1f} MB of weights, more than the "
                              f"{MAX_ENTRY_BYTES / 1e6:.0f} MB an entry may have.")
    info = {**info, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "storage": "float16"}
    atomic_write(weights_path(name, folder), raw)
    atomic_write(card_path(name, folder), json.dumps(info, indent=1) + "\n")
    return info
