"""Batches of piano rolls for the models of lesson 04: whole pieces, padded, with a mask.

A batch holds whole pieces (no cutting across a piece boundary) as ``(rolls (B, T, P), mask (B, T))``;
:func:`shift_frames` makes the model's inputs (each frame's previous frame).

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import data
from ..errors import CourseError

__all__ = ["batches_of_pieces", "unpack_batch", "shift_frames"]


def batches_of_pieces(rolls, batch_size: int = 16, *, shuffle: bool = True, seed: int = 0,
                      by_length: bool = True, transpose: tuple[int, int] | None = None,
                      max_len: int | None = None):
    """An iterable of padded batches of whole pieces; each pass over it is one epoch.

    Each pass yields ``course.data.RollBatch`` batches (as ``course.data.collate`` makes them)
    covering every piece once; ``course.train.train`` re-iterates it as often as it needs, with a
    new order each epoch (drawn from ``seed`` and the epoch number).

    Args:
        batch_size: pieces per batch.
        shuffle: a new random order every epoch (False: the given order, e.g. for evaluation).
        by_length: put pieces of similar length together, so that little of a batch is padding
            (training on whole pieces is then about twice as fast); batches still come in random order.
        transpose: ``(lo, hi)`` shifts each piece by a random number of semitones in ``lo..hi``
            (limited so that no note falls off the keyboard).
        max_len: crop longer pieces to a random window of this many frames.

    Lesson: 04_polyphonic_chorales
    """
    return _PieceBatches(list(rolls), batch_size, shuffle, seed, by_length, transpose, max_len)


class _PieceBatches:
    def __init__(self, rolls, batch_size, shuffle, seed, by_length, transpose, max_len):
        if not rolls:
            raise CourseError("No piano rolls to batch: the list is empty.")
        if int(batch_size) < 1:
            raise CourseError(f"batch_size must be at least 1, got {batch_size}.")
        self.rolls = [np.asarray(r, dtype=np.uint8) for r in rolls]
        self.batch_size, self.shuffle, self.seed, self.by_length = int(batch_size), shuffle, seed, by_length
        self.transpose, self.max_len = transpose, max_len
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.rolls) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        n = len(self.rolls)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.by_length:
            jitter = rng.uniform(0, 8, n) if self.shuffle else np.zeros(n)   # frames: mixes similar lengths
            lengths = np.array([len(r) for r in self.rolls])[order]
            order = order[np.argsort(lengths + jitter, kind="stable")]
        starts = np.arange(0, n, self.batch_size)
        if self.shuffle:
            starts = rng.permutation(starts)
        for i in starts:
            chunk = []
            for j in order[i: i + self.batch_size]:
                r = self.rolls[j]
                if self.max_len and len(r) > self.max_len:
                    s = int(rng.integers(0, len(r) - self.max_len + 1))
                    r = r[s: s + self.max_len]
                if self.transpose:
                    keys = np.flatnonzero(r.any(0))
                    lo = max(self.transpose[0], -int(keys[0])) if len(keys) else 0
                    hi = min(self.transpose[1], r.shape[1] - 1 - int(keys[-1])) if len(keys) else 0
                    if lo <= hi:
                        r = data.transpose_roll(r, int(rng.integers(lo, hi + 1)))
                chunk.append(r)
            yield data.collate(chunk)


def unpack_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of piano rolls -> ``(rolls (B, T, P) float, mask (B, T) bool)``.

    Accepts a ``course.data.RollBatch`` (what ``course.data.collate`` and :func:`batches_of_pieces`
    make), a ``(rolls, mask)`` pair, a dict with ``"rolls"`` and ``"mask"`` or ``"lengths"``, or a
    bare ``(B, T, P)`` tensor (every frame real).
    """
    mask = lengths = None
    if hasattr(batch, "rolls") and hasattr(batch, "mask"):          # course.data.RollBatch
        roll, mask = batch.rolls, batch.mask
    elif isinstance(batch, dict):
        if "rolls" not in batch:
            raise CourseError(f"A batch dict needs the piano rolls under 'rolls'; got keys {sorted(batch)}.")
        roll, mask, lengths = batch["rolls"], batch.get("mask"), batch.get("lengths")
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        roll, mask = batch
    else:
        roll = batch
    roll = torch.as_tensor(roll).float()
    if roll.ndim != 3:
        raise CourseError(f"A batch of piano rolls is 3-D (batch, time, keys); got shape {tuple(roll.shape)}.")
    B, T, _ = roll.shape
    if mask is None and lengths is not None:
        mask = torch.arange(T, device=roll.device)[None, :] < torch.as_tensor(lengths, device=roll.device)[:, None]
    if mask is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=roll.device)
    mask = torch.as_tensor(mask, device=roll.device).bool()
    if mask.shape != (B, T):
        raise CourseError(f"The mask needs shape (batch, time) = {(B, T)}; got {tuple(mask.shape)}.")
    return roll, mask


def shift_frames(rolls: torch.Tensor) -> torch.Tensor:
    """The model's inputs: each frame's *previous* frame, with an all-silent frame before the first.

    ``(B, T, P) -> (B, T, P)``: ``out[:, 0] = 0`` and ``out[:, t] = rolls[:, t - 1]``, so the output
    at time ``t`` can only have seen frames before ``t``.
    """
    return F.pad(rolls, (0, 0, 1, 0))[:, :-1]
