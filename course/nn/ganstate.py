"""Checkpoints of :func:`course.nn.gan.train_gan`: both players, both optimizers, the random state and the history.

Lesson: 08_music_gan
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import CourseError
from ..files import atomic_write

__all__ = ["save_state", "load_state"]

_PARTS = ("generator", "critic", "opt_g", "opt_d")


def save_state(path: str | Path, parts: dict, rng: torch.Generator, history: dict, step: int) -> None:
    """Write ``parts`` (name -> module or optimizer), the generator ``rng``, ``history`` and ``step``, atomically."""
    buffer = io.BytesIO()
    torch.save({**{k: parts[k].state_dict() for k in _PARTS}, "rng": rng.get_state(), "history": history,
                "step": int(step)}, buffer)
    atomic_write(Path(path), buffer.getvalue())


def load_state(path: str | Path, parts: dict, rng: torch.Generator, device) -> tuple[dict, int]:
    """Restore ``parts`` and ``rng`` from ``path``; returns ``(history, step)``. Any damage: a clear error."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        for k in _PARTS:
            parts[k].load_state_dict(state[k])
        rng.set_state(state["rng"])
        return dict(state["history"]), int(state["step"])
    except Exception as e:  # noqa: BLE001 - any damage or mismatch: say how to start afresh
        raise CourseError(f"Could not resume from checkpoint {path}: {e}. Delete it to start afresh.") from None
