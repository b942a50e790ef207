"""Device choice, fast mode and seeding: the three switches every lesson uses.

Lesson: 00_welcome
"""
from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["device", "fast_mode", "seed_everything"]

_TRUE = {"1", "true", "yes", "on"}


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` is set to 1/true/yes/on.

    Fast mode shrinks every training cell to a few seconds on a CPU; the test
    suite sets it. Without it, training cells are sized for a real result on a GPU.
    """
    return os.environ.get("COURSE_FAST", "").strip().lower() in _TRUE


def device(verbose: bool = True, prefer: str | None = None):
    """Pick the best available torch device: CUDA, then Apple MPS, then CPU.

    Args:
        verbose: print which device was picked and why.
        prefer: force ``"cpu"``, ``"cuda"`` or ``"mps"`` (an error if unavailable).

    Returns:
        a ``torch.device``.
    """
    import torch

    from .errors import CourseError

    if prefer is not None:
        prefer = prefer.lower()
        ok = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        }
        if prefer not in ok:
            raise CourseError(f"Unknown device {prefer!r}: choose 'cpu', 'cuda' or 'mps'.")
        if not ok[prefer]:
            raise CourseError(f"Device {prefer!r} is not available on this machine; use course.device() to pick one.")
        dev = torch.device(prefer)
        why = "as requested"
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
        why = f"GPU: {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        dev = torch.device("mps")
        why = "Apple GPU (Metal)"
    else:
        dev = torch.device("cpu")
        why = "no GPU found; training cells will be slower (fast mode keeps them short)"
    if verbose:
        print(f"course.device(): using {dev.type} ({why})")
    return dev


def seed_everything(seed: int = 0) -> int:
    """Seed Python's, NumPy's and PyTorch's random generators; returns the seed.

    Randomness in the course is explicit (``seed=`` arguments); this is for the
    few places where a library draws from a global generator.
    """
    from .errors import CourseError

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise CourseError(f"seed must be a whole number, got {seed!r}.")
    seed = int(seed) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return seed
