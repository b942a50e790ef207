"""An LSTM language model over melody tokens.

A melody is a token sequence ``x_1 ... x_T`` (``BOS pitch dur pitch dur ... EOS``, see
``course.music.MelodyVocab``). The model reads the tokens so far and predicts the next one:

    p(x_1 ... x_T) = prod_t p(x_t | x_<t),    logits_t = W h_t + b,    h_t = LSTM(embed(x_<=t))

It is trained by minimizing the cross-entropy of the logits at position ``t`` against the token at
``t + 1`` (the targets are the inputs shifted by one), averaged over the real (non-PAD) targets.

``forward(tokens, state)`` returns ``(logits, state)``, so ``course.generate.sample_tokens`` can feed
one new token at a time and carry the recurrent state.

Lesson: 03_melody_lstm
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CourseError
from ..music import MelodyVocab

__all__ = ["MelodyLSTMConfig", "MelodyLSTM", "lm_loss", "loss_fn", "split_batch"]

PAD = MelodyVocab.PAD


@dataclass
class MelodyLSTMConfig:
    """Size of a :class:`MelodyLSTM`.

    Lesson: 03_melody_lstm
    """

    vocab_size: int = len(MelodyVocab())   # number of token ids (164 for the default MelodyVocab)
    emb: int = 64                          # size of a token embedding
    hidden: int = 256                      # LSTM hidden (and cell) state size per layer
    layers: int = 2                        # stacked LSTM layers
    dropout: float = 0.2                   # dropout on embeddings, between layers and before the output layer
    pad_id: int = PAD                      # the padding token: its embedding stays zero, its targets are ignored

    def __post_init__(self):
        for name in ("vocab_size", "emb", "hidden", "layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CourseError(f"MelodyLSTMConfig.{name} must be a whole number >= 1, got {v!r}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise CourseError(f"MelodyLSTMConfig.dropout must be in [0, 1), got {self.dropout!r}.")
        if not 0 <= self.pad_id < self.vocab_size:
            raise CourseError(f"pad_id={self.pad_id} is not a token id of a {self.vocab_size}-token vocabulary.")


class MelodyLSTM(nn.Module):
    """Embedding -> LSTM -> Linear: next-token logits for melody tokens.

    ``forward(tokens, state=None) -> (logits, state)`` with ``tokens`` a ``(B, T)`` long tensor,
    ``logits`` ``(B, T, V)`` and ``state`` the LSTM's ``(h, c)``, each ``(layers, B, hidden)``.

    Lesson: 03_melody_lstm
    """

    def __init__(self, config: MelodyLSTMConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = MelodyLSTMConfig(**overrides)
        elif overrides:
            config = MelodyLSTMConfig(**{**config.__dict__, **overrides})
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.emb, padding_idx=c.pad_id)
        self.drop = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(c.emb, c.hidden, num_layers=c.layers, batch_first=True,
                            dropout=c.dropout if c.layers > 1 else 0.0)
        self.head = nn.Linear(c.hidden, c.vocab_size)   # features -> vocabulary logits

    def forward(self, tokens: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        if tokens.dim() != 2:
            raise CourseError(f"MelodyLSTM expects tokens of shape (batch, time), got {tuple(tokens.shape)}.")
        x = self.drop(self.embed(tokens))        # (B, T, E)
        h, state = self.lstm(x, state)           # (B, T, H), ((L, B, H), (L, B, H))
        logits = self.head(self.drop(h))         # (B, T, V)
        return logits, state

    def num_parameters(self) -> int:
        """How many trainable numbers the model has."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor, pad_id: int = PAD) -> torch.Tensor:
    """Mean next-token cross-entropy (nats per token) of ``logits`` computed from ``tokens``.

    ``logits[:, t]`` is the prediction made after reading ``tokens[:, :t+1]``, so it is scored
    against ``tokens[:, t+1]``; the last position has no target. Targets equal to ``pad_id`` are ignored.

    Args:
        logits: ``(B, T, V)`` raw scores (not probabilities).
        tokens: ``(B, T)`` the token ids the logits were computed from.

    Lesson: 03_melody_lstm
    """
    if logits.dim() != 3 or tokens.shape != logits.shape[:2]:
        raise CourseError(f"lm_loss needs logits (B, T, V) and tokens (B, T); got {tuple(logits.shape)} "
                          f"and {tuple(tokens.shape)}.")
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V).float(), tokens[:, 1:].reshape(-1), ignore_index=pad_id)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` from a batch: a ``(B, T+1)`` token tensor (targets are the inputs
    shifted by one), a pair ``(inputs, targets)``, or a dict with ``"inputs"``/``"targets"`` or ``"tokens"``.

    Lesson: 03_melody_lstm
    """
    if isinstance(batch, dict):
        if "inputs" in batch and "targets" in batch:
            return batch["inputs"], batch["targets"]
        if "tokens" in batch:
            batch = batch["tokens"]
        else:
            raise CourseError(f"A melody batch dict needs 'inputs' and 'targets' or 'tokens'; got keys {sorted(batch)}.")
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise CourseError(f"A melody batch pair is (inputs, targets); got {len(batch)} items.")
        return batch[0], batch[1]
    if not torch.is_tensor(batch) or batch.dim() != 2 or batch.shape[1] < 2:
        raise CourseError("A melody batch is a (batch, time) tensor of token ids with at least 2 time steps, "
                          "or a pair (inputs, targets).")
    return batch[:, :-1], batch[:, 1:]


def loss_fn(model: nn.Module, batch, pad_id: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(summed NLL in nats, number of non-PAD targets)`` of ``model`` on ``batch``, for ``course.train``.

    ``course.train.train`` divides the two for the training loss; ``course.train.evaluate`` sums both over
    a whole split, so it reports exact nats per token (and ``exp`` of it is the perplexity).

    Lesson: 03_melody_lstm
    """
    inputs, targets = split_batch(batch)
    if pad_id is None:
        pad_id = getattr(getattr(model, "config", None), "pad_id", PAD)
    out = model(inputs)
    logits = out[0] if isinstance(out, tuple) else out                          # (B, T, V)
    V = logits.shape[-1]
    total = F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1), ignore_index=pad_id,
                            reduction="sum")
    return total, (targets != pad_id).sum()
