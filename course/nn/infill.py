"""An in-filling model over four-voice chorales in the spirit of Coconet (Huang et al. 2017).

A chorale is a tensor ``x`` of shape ``(V, T, P)``: voice ``v`` (soprano, alto, tenor, bass), time
step ``t``, one-hot pitch ``p`` (MIDI ``low + p``; a rest is an all-zero row). Some (voice, step)
cells are hidden by a mask ``m`` (1 = hidden); the network sees ``x * (1 - m)`` and ``m`` as ``2V``
channels of a ``T x P`` image and predicts, for every cell, a distribution over the ``P`` pitches of
that voice at that step. It is trained on random masks with the loss on the hidden cells only,
and it harmonizes by hiding the lower voices and filling them in with blocked Gibbs sampling under
Yao et al.'s annealed masking schedule (as Coconet does):

    p_n = max(p_min, p_max - n (p_max - p_min) / (eta N)),   n = 0 .. N - 1,

the fraction of the free cells re-hidden and re-sampled at step ``n`` (``p_max = 1``, ``p_min = 0.05``,
``eta = 3/4``), so early steps resample nearly everything at once and late ones a few cells at a time.

::

    from course.nn import infill
    model = infill.Infiller(infill.InfillConfig())
    x = infill.one_hot(voices, low=36, n_pitches=46)          # (4, T) MIDI pitches, -1 = rest -> (4, T, 46)
    out = infill.harmonize(model, soprano, low=36, steps=64)  # (4, T) MIDI pitches, the soprano kept

Lesson: 09_capstone
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

from ..errors import CourseError

__all__ = ["InfillConfig", "Infiller", "one_hot", "from_one_hot", "random_mask", "masked_loss", "yao_schedule",
           "gibbs_fill", "harmonize"]


@dataclass
class InfillConfig:
    """Sizes of the in-filling network. Lesson: 09_capstone"""

    n_voices: int = 4          # voices of the chorale (soprano, alto, tenor, bass)
    n_pitches: int = 46        # pitch rows (MIDI low .. low + n_pitches - 1)
    channels: int = 64         # feature maps of every hidden layer
    layers: int = 8            # 3 x 3 convolutions, each with batch norm and a residual connection after the first


class Infiller(tnn.Module):
    """``(x, mask)``: ``x`` ``(B, V, T, P)`` one-hot, ``mask`` ``(B, V, T)`` 1 = hidden -> logits ``(B, V, T, P)``.

    Lesson: 09_capstone
    """

    def __init__(self, config: InfillConfig | None = None, **changes):
        super().__init__()
        c = config or InfillConfig(**changes)
        if c.layers < 2:
            raise CourseError(f"layers must be at least 2, got {c.layers}.")
        self.config = c
        self.first = tnn.Conv2d(2 * c.n_voices, c.channels, 3, padding=1)
        self.body = tnn.ModuleList(tnn.Conv2d(c.channels, c.channels, 3, padding=1) for _ in range(c.layers - 2))
        self.norms = tnn.ModuleList(tnn.BatchNorm2d(c.channels) for _ in range(c.layers - 1))
        self.last = tnn.Conv2d(c.channels, c.n_voices, 3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.n_voices or x.shape[3] != c.n_pitches:
            raise CourseError(f"x must be (B, {c.n_voices}, T, {c.n_pitches}); got {tuple(x.shape)}.")
        if tuple(mask.shape) != tuple(x.shape[:3]):
            raise CourseError(f"mask must be (B, V, T) = {tuple(x.shape[:3])}; got {tuple(mask.shape)}.")
        m = mask.to(x.dtype)[..., None].expand_as(x)                          # (B, V, T, P)
        h = torch.relu(self.norms[0](self.first(torch.cat([x * (1 - m), m], 1))))   # (B, C, T, P)
        for conv, norm in zip(self.body, self.norms[1:]):
            h = h + torch.relu(norm(conv(h)))                                  # residual
        return self.last(h)                                                    # (B, V, T, P)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def one_hot(voices, low: int, n_pitches: int) -> np.ndarray:
    """``(V, T)`` MIDI pitches (-1 = rest) -> float32 ``(V, T, P)`` one-hot (rests all zero). Lesson: 09_capstone"""
    v = np.asarray(voices)
    if v.ndim != 2:
        raise CourseError(f"voices must be (V, T) MIDI pitches, -1 for a rest; got shape {v.shape}.")
    k = v - int(low)
    sounding = v >= 0
    if ((k < 0) | (k >= n_pitches))[sounding].any():
        raise CourseError(f"a pitch lies outside {low}..{low + n_pitches - 1}: transpose the music or widen the range.")
    out = np.zeros((*v.shape, int(n_pitches)), np.float32)
    vi, ti = np.nonzero(sounding)
    out[vi, ti, k[sounding]] = 1.0
    return out


def from_one_hot(x, low: int) -> np.ndarray:
    """``(V, T, P)`` one-hot (or probabilities) -> ``(V, T)`` MIDI pitches of the largest entry, -1 where all zero."""
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.where(a.max(-1) > 0, a.argmax(-1) + int(low), -1)


def random_mask(batch: int, n_voices: int, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Coconet's training masks: per example a rate ``r ~ U(0, 1)``, each (voice, step) hidden with probability r.

    Returns ``(batch, n_voices, steps)`` of 0/1 float. At least one cell per example is hidden.
    """
    r = torch.rand(batch, 1, 1, generator=generator)
    mask = (torch.rand(batch, n_voices, steps, generator=generator) < r).float()
    none = mask.flatten(1).sum(1) == 0
    if none.any():
        mask[none, 0, 0] = 1.0
    return mask


def masked_loss(logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the true pitches at the hidden, sounding cells, averaged over them (a scalar)."""
    target = x.argmax(-1)                                                   # (B, V, T)
    keep = (mask > 0) & (x.sum(-1) > 0)                                     # hidden and not a rest
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep], target[keep])


def yao_schedule(n_steps: int, p_min: float = 0.05, p_max: float = 1.0, eta: float = 0.75) -> np.ndarray:
    """The annealed masking probabilities ``p_n`` of Yao et al., for ``n = 0 .. n_steps - 1``. Lesson: 09_capstone"""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise CourseError(f"n_steps must be a whole number >= 1, got {n_steps!r}.")
    if not 0 <= p_min <= p_max <= 1 or not eta > 0:
        raise CourseError("need 0 <= p_min <= p_max <= 1 and eta > 0.")
    n = np.arange(int(n_steps))
    return np.maximum(p_min, p_max - n * (p_max - p_min) / (eta * n_steps))


@torch.no_grad()
def gibbs_fill(model: Infiller, x: torch.Tensor, free: torch.Tensor, n_steps: int = 64, *, seed: int = 0,
               temperature: float = 1.0) -> torch.Tensor:
    """Fill the ``free`` cells ``(V, T)`` (1 = to generate) of one chorale ``x`` ``(V, T, P)`` by blocked Gibbs.

    Start with every free cell hidden; at step ``n`` hide a random fraction ``p_n`` (:func:`yao_schedule`) of
    the free cells, predict them all from the rest, and draw each from its softmax. Cells that are not
    free are never changed. Returns the completed one-hot ``(V, T, P)``.
    """
    model.eval()
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    x = x.to(dev, torch.float32).clone()
    free = free.to(dev).bool()
    schedule = yao_schedule(n_steps)
    for n, p in enumerate(schedule):
        hide = free & (torch.rand(free.shape, generator=gen).to(dev) < p) if n else free.clone()
        if not hide.any():
            continue
        logits = model(x[None], hide.float()[None])[0] / float(temperature)       # (V, T, P)
        probs = torch.softmax(logits[hide], -1)                                    # (cells, P)
        draw = torch.multinomial(probs.cpu(), 1, generator=gen)[:, 0].to(dev)
        cells = torch.zeros_like(x[hide])
        cells[torch.arange(len(draw)), draw] = 1.0
        x[hide] = cells
    return x


def harmonize(model: Infiller, soprano, low: int, *, n_steps: int = 64, seed: int = 0) -> np.ndarray:
    """Alto, tenor and bass for a soprano line ``(T,)`` of MIDI pitches (-1 = rest): ``(V, T)`` MIDI pitches.

    Lesson: 09_capstone
    """
    c = model.config
    s = np.asarray(soprano)
    if s.ndim != 1 or len(s) == 0:
        raise CourseError(f"soprano must be a 1-D sequence of MIDI pitches; got shape {s.shape}.")
    voices = np.full((c.n_voices, len(s)), -1)
    voices[0] = s
    x = torch.as_tensor(one_hot(voices, low, c.n_pitches))
    free = torch.ones(c.n_voices, len(s))
    free[0] = 0
    return from_one_hot(gibbs_fill(model, x, free, n_steps, seed=seed), low)
