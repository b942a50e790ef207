"""An in-filling model over four-voice chorales in the spirit of Coconet (Huang et al. 2017).

A chorale is a tensor ``x`` of shape ``(V, T, P)``: voice ``v`` (soprano, alto, tenor, bass), time
step ``t``, one-hot pitch ``p`` (MIDI ``low + p``; a rest is an all-zero row). Some (voice, step)
cells are hidden by a mask ``m`` (1 = hidden); the network sees ``x * (1 - m)`` and ``m`` as ``2V``
channels of a ``T x P`` image and predicts, for every cell, a distribution over the ``P`` pitches of
that voice at that step. It is trained on random masks with the loss on the hidden cells only,
and it harmonizes by hiding the lower voices and filling them in with blocked Gibbs sampling under
Yao et al.'s annealed masking schedule (as Coconet does):

    p_n = max(p_min, p_max - n (p_max - p_min) / (eta N)),   n = 0 .. N - 1,

the fraction of the free cells re-hidden and re-sampled at step ``n``, so early steps resample most
cells at once and late ones a few at a time. The defaults ``p_max = 0.9``, ``p_min = 0.1``, ``eta = 0.7``
are those of Coconet's public implementation (Magenta's ``YaoSchedule``); the first step here hides
every free cell (there is nothing to keep yet).

::

    from course.nn import infill
    model = infill.Infiller(infill.InfillConfig())
    x = infill.one_hot(voices, low=36, n_pitches=46)          # (4, T) MIDI pitches, -1 = rest -> (4, T, 46)
    out = infill.harmonize(model, soprano, low=36, n_steps=64)  # (4, T) MIDI pitches, the soprano kept

Lesson: 09_capstone
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

from ..errors import CourseError

__all__ = ["InfillConfig", "Infiller", "one_hot", "from_one_hot", "random_mask", "masked_loss", "loss_fn",
           "CropBatches", "yao_schedule", "gibbs_fill", "harmonize", "lower_voices_nll"]


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


def loss_fn(model: Infiller, batch) -> tuple:
    """``batch = (x, mask)`` -> (summed cross-entropy of the hidden sounding cells, their number): nats per cell.

    Over a batch this pools the cells of all examples (examples with more hidden cells weigh more); Coconet
    instead averages within each example, the exact orderless-NADE weighting. Both have the true conditionals
    as their minimum."""
    x, mask = batch
    logits = model(x, mask)
    keep = (mask > 0) & (x.sum(-1) > 0)
    if not keep.any():
        return logits.sum() * 0.0, 0
    return F.cross_entropy(logits[keep], x.argmax(-1)[keep], reduction="sum"), int(keep.sum())


class CropBatches:
    """Batches ``(x, mask)`` of random windows of the chorales, each with one of Coconet's random masks.

    ``pieces`` are ``(4, T)`` voice arrays (:func:`course.data.voices`). Every pass draws ``n_batches``
    new batches (new windows, transpositions and masks) unless ``fixed``, which repeats the same ones
    (a validation set). Lesson: 09_capstone
    """

    def __init__(self, pieces, length: int, batch_size: int, n_batches: int, *, low: int, n_pitches: int,
                 seed: int = 0, fixed: bool = False, transpose: tuple = (-6, 5)):
        self.pieces, self.length, self.batch_size, self.n_batches = pieces, int(length), int(batch_size), int(n_batches)
        self.low, self.n_pitches, self.seed, self.fixed, self.transpose = int(low), int(n_pitches), int(seed), fixed, transpose
        self._pass = 0

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        from ..data import voice_crops

        seed = self.seed if self.fixed else self.seed + 7919 * self._pass
        self._pass += 1
        crops = voice_crops(self.pieces, self.length, self.batch_size * self.n_batches, seed=seed,
                            transpose=self.transpose, low=self.low, high=self.low + self.n_pitches - 1)
        gen = torch.Generator().manual_seed(seed)
        for b in range(self.n_batches):
            part = crops[b * self.batch_size : (b + 1) * self.batch_size]
            x = torch.as_tensor(np.stack([one_hot(v, self.low, self.n_pitches) for v in part]))
            yield x, random_mask(len(part), part.shape[1], part.shape[2], generator=gen)


def yao_schedule(n_steps: int, p_min: float = 0.1, p_max: float = 0.9, eta: float = 0.7) -> np.ndarray:
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


def harmonize(model: Infiller, soprano, low: int, *, n_steps: int = 64, seed: int = 0,
              temperature: float = 1.0) -> np.ndarray:
    """Alto, tenor and bass for a soprano line ``(T,)`` of MIDI pitches (-1 = rest): ``(V, T)`` MIDI pitches.

    ``temperature`` divides the logits before each draw (below 1: the likelier notes more often).
    Lesson: 09_capstone
    """
    if not float(temperature) > 0:
        raise CourseError(f"temperature must be above 0, got {temperature!r}.")
    c = model.config
    s = np.asarray(soprano)
    if s.ndim != 1 or len(s) == 0:
        raise CourseError(f"soprano must be a 1-D sequence of MIDI pitches; got shape {s.shape}.")
    voices = np.full((c.n_voices, len(s)), -1)
    voices[0] = s
    x = torch.as_tensor(one_hot(voices, low, c.n_pitches))
    free = torch.ones(c.n_voices, len(s))
    free[0] = 0
    return from_one_hot(gibbs_fill(model, x, free, n_steps, seed=seed, temperature=temperature), low)


@torch.no_grad()
def lower_voices_nll(model: Infiller, voices, low: int, *, per_cell: bool = False):
    """Nats per cell (one voice at one step) of a chorale's alto, tenor and bass given its soprano, step by step.

    Hiding all three lower voices and scoring every cell at once would treat the notes as independent
    given the soprano (the model was trained to predict each hidden cell from the visible ones); the
    chain rule instead scores step ``t``'s three notes with steps ``0 .. t-1`` of the lower voices visible
    and the later ones hidden, and within the step voice by voice (alto, then tenor, then bass), which
    sums to ``-log p(A, T, B | S)`` under that ordering (another order may give another number: the network's
    conditionals need not agree). Rests are given, not scored; the result is the mean over sounding cells, or
    with ``per_cell`` a float ``(V, T)`` array of each cell's nats (NaN for the soprano and for rests).
    Lesson: 09_capstone
    """
    model.eval()
    c = model.config
    v = np.asarray(voices)
    x = torch.as_tensor(one_hot(v, low, c.n_pitches))[None]                  # (1, V, T, P)
    T = v.shape[1]
    cells = [(t, voice) for t in range(T) for voice in range(1, c.n_voices) if v[voice, t] >= 0]
    # the output at step t depends on steps t - R .. t + R only (R = layers of 3 x 3 convolutions), so each cell is
    # scored on a window of W = 2R + 1 steps around it (shifted to the chorale's edge where it would cross one):
    # the same numbers as the whole chorale, in a fraction of the time
    W = min(T, 2 * c.layers + 1)
    total, each = 0.0, np.full(v.shape, np.nan)
    for a in range(0, len(cells), 256):
        part = cells[a : a + 256]
        starts = [min(max(t - c.layers, 0), T - W) for t, _ in part]
        xs = torch.stack([x[0, :, s0 : s0 + W] for s0 in starts])             # (n, V, W, P)
        mask = torch.zeros(len(part), c.n_voices, T)
        for j, (t, voice) in enumerate(part):
            mask[j, 1:, t + 1 :] = 1.0                                        # later steps of the lower voices hidden
            mask[j, voice:, t] = 1.0                                          # this voice and those below it at t
        mask = torch.stack([mask[j, :, s0 : s0 + W] for j, s0 in enumerate(starts)])
        logits = model(xs, mask)
        for j, ((t, voice), s0) in enumerate(zip(part, starts)):
            each[voice, t] = -float(torch.log_softmax(logits[j, voice, t - s0], -1)[int(v[voice, t]) - low])
            total += each[voice, t]
    count = len(cells)
    if per_cell:
        return each
    return total / max(count, 1)
