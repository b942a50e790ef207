"""Likelihood in nats per frame: a model's NLL, and the trivial floor that any sequence model must beat::

    metrics.nll_per_frame(logits, rolls, mask)       # an independent-Bernoulli model's NLL, nats/frame
    metrics.marginal_nll(train_rolls, test_rolls)    # one fixed probability per key

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

import numpy as np

from ..errors import CourseError

__all__ = ["nll_per_frame", "marginal_probs", "marginal_nll"]


def nll_per_frame(logits, rolls, mask=None) -> float:
    """Negative log-likelihood in nats per frame under independent Bernoulli outputs.

    With ``p_k = sigmoid(logit_k)`` and ``v_k`` the frame's 0/1 values,

        NLL(frame) = -sum_k [ v_k log p_k + (1 - v_k) log(1 - p_k) ]

    summed over the keys and averaged over the frames where ``mask`` is True.

    Args:
        logits: ``(..., T, P)`` tensor or array of logits (any real numbers).
        rolls: the same shape, the true frames (0/1).
        mask: ``(..., T)`` bool, True on real frames (False on padding); None: every frame counts.

    Returns:
        nats per frame, a float.

    Lesson: 04_polyphonic_chorales
    """
    import torch
    import torch.nn.functional as F

    z = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits).double()
    v = torch.as_tensor(np.asarray(rolls) if not torch.is_tensor(rolls) else rolls).to(z.device).double()
    if z.shape != v.shape or z.ndim < 2:
        raise CourseError(f"logits and rolls need the same shape (..., frames, keys); got {tuple(z.shape)} "
                          f"and {tuple(v.shape)}.")
    per_frame = F.binary_cross_entropy_with_logits(z, v, reduction="none").sum(-1)   # (..., T)
    if mask is None:
        m = torch.ones_like(per_frame, dtype=torch.bool)
    else:
        m = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask).to(z.device).bool()
        if m.shape != per_frame.shape:
            raise CourseError(f"mask needs shape {tuple(per_frame.shape)} (one entry per frame); got {tuple(m.shape)}.")
    n = int(m.sum())
    if n == 0:
        raise CourseError("No frames to score: the mask is False everywhere.")
    return float((per_frame * m).sum()) / n


def _stack(rolls, what: str) -> np.ndarray:
    """A roll or a list of rolls -> all frames stacked, ``(N, P)`` float64."""
    if hasattr(rolls, "detach"):
        rolls = rolls.detach().cpu().numpy()
    if isinstance(rolls, np.ndarray) and rolls.ndim != 3:
        parts = [rolls]
    else:
        parts = [r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r) for r in rolls]
    if not parts:
        raise CourseError(f"{what} is empty: give a piano roll (T, P) or a list of them.")
    for r in parts:
        if r.ndim != 2:
            raise CourseError(f"{what}: a piano roll is 2-D (time steps, keys); got shape {r.shape}.")
    if len({r.shape[1] for r in parts}) != 1:
        raise CourseError(f"{what}: all piano rolls need the same number of keys.")
    return np.concatenate(parts).astype(np.float64)


def marginal_probs(train_rolls, smoothing: float = 1.0) -> np.ndarray:
    """Each key's probability of sounding in a frame, with additive smoothing: ``(P,)``.

        p_k = (n_k + smoothing) / (N + 2 * smoothing)

    where ``n_k`` is the number of training frames in which key ``k`` sounds and ``N`` the
    number of training frames (``smoothing`` pseudo-frames with the key on and as many with it off).

    Lesson: 04_polyphonic_chorales
    """
    if not smoothing >= 0:
        raise CourseError(f"smoothing must be >= 0, got {smoothing!r}.")
    frames = _stack(train_rolls, "train_rolls")
    return (frames.sum(0) + smoothing) / (len(frames) + 2 * smoothing)


def marginal_nll(train_rolls, test_rolls, smoothing: float = 1.0) -> float:
    """NLL in nats per frame of the test frames under the per-key marginal Bernoulli of the training frames.

    The model ignores time altogether: every frame is 88 independent coins with the
    probabilities of :func:`marginal_probs`. Any sequence model must beat it.

    Lesson: 04_polyphonic_chorales
    """
    p = marginal_probs(train_rolls, smoothing)
    test = _stack(test_rolls, "test_rolls")
    if test.shape[1] != len(p):
        raise CourseError(f"train and test rolls have different numbers of keys ({len(p)} and {test.shape[1]}).")
    with np.errstate(divide="ignore"):
        logp, log1p = np.log(p), np.log1p(-p)
    ll = np.where(test > 0.5, logp, log1p).sum(1)    # (N,) log-likelihood of each frame
    return float(-ll.mean())
