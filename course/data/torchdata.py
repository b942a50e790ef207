"""PyTorch ``Dataset`` helpers: piano rolls with transposition, token chunks, padding.

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

__all__ = ["transpose_roll", "PianoRollDataset", "TokenDataset", "collate", "RollBatch"]


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def transpose_roll(roll, semitones: int):
    """Shift a piano roll ``(T, P)`` up (positive) or down by ``semitones`` columns; returns a copy.

    Works on NumPy arrays and torch tensors (the result has the input's type, dtype and device).

    Raises:
        DataError: a sounding note would be pushed off the roll (nothing is silently dropped).

    Lesson: 04_polyphonic_chorales
    """
    if isinstance(semitones, bool) or int(semitones) != semitones:
        raise DataError(f"Transpose by a whole number of semitones, not {semitones!r}.")
    k = int(semitones)
    if roll.ndim != 2:
        raise DataError(f"A piano roll is 2-D (time steps, pitches); got shape {tuple(roll.shape)}.")
    width = roll.shape[1]
    active = np.flatnonzero(_as_numpy(roll).any(axis=0))
    if active.size and (active[0] + k < 0 or active[-1] + k >= width):
        lo, hi = int(active[0]), int(active[-1])
        raise DataError(f"Transposing by {k:+d} pushes notes off the roll: its notes use columns {lo}..{hi} "
                        f"of 0..{width - 1}, so shifts from {-lo:+d} to {width - 1 - hi:+d} are possible.")
    if hasattr(roll, "detach"):
        out = torch.zeros_like(roll)
    else:
        out = np.zeros_like(roll)
    if abs(k) >= width:
        return out
    if k >= 0:
        out[:, k:] = roll[:, :width - k]
    else:
        out[:, :width + k] = roll[:, -k:]
    return out


class PianoRollDataset(Dataset):
    """Piano rolls as float32 tensors ``(T, P)``, optionally cropped and randomly transposed.

    Args:
        rolls: a list of 2-D arrays ``(T_i, P)``, e.g. ``course.data.pianorolls("chorales", "train")``.
        seq_len: crop each item to a random window of this many steps (pieces that are shorter
            come whole); None: whole pieces (variable length, batch them with :func:`collate`).
        transpose: ``(lowest, highest)`` shift in semitones, both included; each item is shifted
            by a shift drawn uniformly from those that keep all its notes on the roll.
            ``None`` (or ``(0, 0)``) turns augmentation off: use that for validation and test.
        seed: seeds the generator of crops and shifts.

    Items differ from call to call (that is the augmentation); the sequence of items is
    reproducible for a given seed and order of requests.

    Lesson: 04_polyphonic_chorales
    """

    def __init__(self, rolls: Sequence, seq_len: int | None = None, transpose: tuple | None = (-5, 6), seed: int = 0):
        self.rolls = [torch.as_tensor(_as_numpy(r), dtype=torch.float32) for r in rolls]
        for i, r in enumerate(self.rolls):
            if r.ndim != 2:
                raise DataError(f"Roll {i} has shape {tuple(r.shape)}; piano rolls are 2-D (time steps, pitches).")
        if seq_len is not None and (isinstance(seq_len, bool) or int(seq_len) != seq_len or seq_len < 1):
            raise DataError(f"seq_len must be a positive whole number of steps or None, got {seq_len!r}.")
        self.seq_len = None if seq_len is None else int(seq_len)
        if transpose is None:
            transpose = (0, 0)
        lo, hi = (int(x) for x in transpose)
        if lo > hi:
            raise DataError(f"transpose=(lowest, highest) needs lowest <= highest, got {transpose!r}.")
        self.transpose = (lo, hi)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        # lowest and highest sounding column of each roll: they bound the shifts allowed
        self._span = []
        for r in self.rolls:
            cols = torch.nonzero(r.any(dim=0)).flatten()
            self._span.append((int(cols[0]), int(cols[-1])) if len(cols) else None)

    def __len__(self) -> int:
        return len(self.rolls)

    def shifts(self, i: int) -> list[int]:
        """The shifts in semitones that item ``i`` may get (those that keep its notes on the roll)."""
        lo, hi = self.transpose
        span = self._span[i]
        if span is None:
            return [0]
        width = self.rolls[i].shape[1]
        return [k for k in range(lo, hi + 1) if span[0] + k >= 0 and span[1] + k < width] or [0]

    def __getitem__(self, i: int) -> torch.Tensor:
        roll = self.rolls[i]
        if self.seq_len is not None and roll.shape[0] > self.seq_len:
            t0 = int(self._rng.integers(0, roll.shape[0] - self.seq_len + 1))
            roll = roll[t0:t0 + self.seq_len]
        if self.transpose != (0, 0):
            options = self.shifts(i)
            k = options[int(self._rng.integers(0, len(options)))]
            if k:
                roll = transpose_roll(roll, k)
        return roll.clone()


class TokenDataset(Dataset):
    """Token sequences cut into fixed-length ``(input, target)`` pairs for language-model training.

    Sequence ``s`` is cut into chunks of ``seq_len + 1`` tokens that overlap by one token
    (chunk ``j`` holds ``s[j*seq_len : j*seq_len + seq_len + 1]``); the input is a chunk
    without its last token and the target the chunk without its first, so ``target[t]`` is
    the token that follows ``input[t]``. The last chunk of a sequence is filled up with
    ``pad``; leave those positions out of the loss with ``cross_entropy(..., ignore_index=pad)``.

    Args:
        sequences: 1-D integer arrays, e.g. ``course.data.melody_tokens("train")``.
        seq_len: tokens per item.
        pad: the padding id (``MelodyVocab.PAD`` is 0).

    Items: ``(input, target)``, two int64 tensors of shape ``(seq_len,)``.

    Lesson: 03_melody_lstm
    """

    def __init__(self, sequences: Sequence, seq_len: int, pad: int = 0):
        if isinstance(seq_len, bool) or int(seq_len) != seq_len or seq_len < 1:
            raise DataError(f"seq_len must be a positive whole number of tokens, got {seq_len!r}.")
        self.seq_len, self.pad = int(seq_len), int(pad)
        self.sequences = [torch.as_tensor(_as_numpy(s), dtype=torch.int64).flatten() for s in sequences]
        self.chunks = []   # (sequence, first token)
        for k, s in enumerate(self.sequences):
            n = max(1, -(-(len(s) - 1) // self.seq_len))   # ceil((len - 1) / seq_len) chunks
            if len(s) >= 2:
                self.chunks += [(k, j * self.seq_len) for j in range(n)]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, a = self.chunks[i]
        piece = self.sequences[k][a:a + self.seq_len + 1]
        chunk = torch.full((self.seq_len + 1,), self.pad, dtype=torch.int64)
        chunk[:len(piece)] = piece
        return chunk[:-1].clone(), chunk[1:].clone()


class RollBatch(NamedTuple):
    """A padded batch from :func:`collate`."""

    rolls: torch.Tensor     # (B, T_max, P) float32, zeros after each piece's end
    lengths: torch.Tensor   # (B,) int64, steps of each piece
    mask: torch.Tensor      # (B, T_max) bool, True on real steps


def collate(batch: Sequence) -> RollBatch:
    """Pad a list of rolls ``(T_i, P)`` into one batch: ``RollBatch(rolls, lengths, mask)``.

    Use as ``DataLoader(dataset, batch_size=16, collate_fn=course.data.collate)``; a loss
    averaged over real steps is ``(loss_per_step * mask).sum() / mask.sum()``.

    Lesson: 04_polyphonic_chorales
    """
    if len(batch) == 0:
        raise DataError("collate needs at least one piano roll.")
    rolls = [torch.as_tensor(_as_numpy(r), dtype=torch.float32) for r in batch]
    widths = {r.shape[1] for r in rolls if r.ndim == 2}
    if len(widths) != 1 or any(r.ndim != 2 for r in rolls):
        raise DataError(f"All rolls in a batch must be 2-D with the same number of pitches; got shapes "
                        f"{[tuple(r.shape) for r in rolls][:4]}.")
    lengths = torch.tensor([r.shape[0] for r in rolls], dtype=torch.int64)
    t_max = int(lengths.max())
    out = torch.zeros(len(rolls), t_max, widths.pop())                   # (B, T_max, P)
    for b, r in enumerate(rolls):
        out[b, :r.shape[0]] = r
    mask = torch.arange(t_max)[None, :] < lengths[:, None]               # (B, T_max)
    return RollBatch(out, lengths, mask)
