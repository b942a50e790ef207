"""Piano-roll language models: an LSTM over time with two kinds of output per frame.

A piano roll is a sequence of frames ``v_1, v_2, ...``, each a 0/1 vector over the 88 keys.
Both models read the previous frames with an LSTM and predict the next frame:

- :class:`PolyLSTM` treats the 88 keys of a frame as independent coins,
  ``p(v_t | v_<t) = prod_k Bernoulli(v_tk; sigmoid(logit_tk))``.
- :class:`PolyNADE` lifts that assumption: inside a frame, key ``k`` is predicted from the
  LSTM state *and* the keys below it, ``p(v_t | v_<t) = prod_k p(v_tk | v_t,<k, h_t)``, with a
  NADE (Larochelle & Murray, 2011) whose biases come from the LSTM: an LSTM-NADE, the LSTM version of the
  RNN-NADE of Boulanger-Lewandowski, Bengio & Vincent (2012), which conditions its NADE on a plain RNN.

Both share one batch format and one loss protocol: ``loss_fn(model, batch)`` returns
``(summed NLL in nats, number of frames)`` over the non-padded frames, so
``course.train.evaluate`` gives nats per frame exactly.

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CourseError
from .rollbatches import batches_of_pieces, shift_frames, unpack_batch

__all__ = ["PolyLSTMConfig", "PolyLSTM", "PolyNADEConfig", "PolyNADE", "loss_fn", "frame_nll",
           "unpack_batch", "shift_frames", "autoregressive_mask", "sample", "sample_frame_autoregressive",
           "batches_of_pieces"]

N_KEYS = 88


# ---------------------------------------------------------------------------------------------
# the independent-Bernoulli model
# ---------------------------------------------------------------------------------------------

@dataclass
class PolyLSTMConfig:
    """Size of a :class:`PolyLSTM` (and the time part of a :class:`PolyNADE`)."""

    n_keys: int = N_KEYS      # piano-roll columns (88 piano keys, A0 = MIDI 21 first)
    hidden: int = 256         # LSTM hidden units per layer
    layers: int = 1           # stacked LSTM layers
    dropout: float = 0.5      # dropout on the LSTM's output (and between layers); 0.5 suits the chorales


class PolyLSTM(nn.Module):
    """An LSTM over frames with 88 independent Bernoulli outputs per frame.

    ``model(prev)`` maps the previous frames ``(B, T, P)`` (see :func:`shift_frames`) to the
    logits of the next frames ``(B, T, P)`` and the LSTM state.

    Lesson: 04_polyphonic_chorales
    """

    def __init__(self, config: PolyLSTMConfig | None = None):
        super().__init__()
        self.config = c = config or PolyLSTMConfig()
        self.lstm = nn.LSTM(c.n_keys, c.hidden, c.layers, batch_first=True,
                            dropout=c.dropout if c.layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden, c.n_keys)
        nn.init.constant_(self.out.bias, -3.0)  # about 4 of 88 keys sound at a time: start near that density

    def context(self, prev: torch.Tensor, state=None):
        """LSTM features of the history: ``(B, T, P) -> (B, T, H)``, plus the state to continue from."""
        h, state = self.lstm(prev, state)       # (B, T, H)
        return self.drop(h), state

    def forward(self, prev: torch.Tensor, state=None):
        """Previous frames ``(B, T, P)`` -> logits of the next frames ``(B, T, P)``, and the LSTM state."""
        h, state = self.context(prev, state)
        return self.out(h), state               # (B, T, P) logits, state

    def nll(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``-log p(frame | h)`` in nats at each position: ``(B, T, H), (B, T, P) -> (B, T)``."""
        return F.binary_cross_entropy_with_logits(self.out(h), frames, reduction="none").sum(-1)

    @torch.no_grad()
    def sample_frame(self, h: torch.Tensor, uniform: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One frame per row of ``h`` ``(B, H)``: key ``k`` sounds when ``uniform[:, k] < p_k``; ``(B, P)`` 0/1.

        ``uniform`` ``(B, P)`` holds the random numbers, so one ``uniform`` gives one answer.
        Here every key is an independent coin flip.
        """
        p = torch.sigmoid(self.out(h) / temperature)     # (B, P)
        return (uniform < p).float()

    def num_parameters(self) -> int:
        """The number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# the within-frame autoregressive model
# ---------------------------------------------------------------------------------------------

def autoregressive_mask(n: int) -> torch.Tensor:
    """The ``(n, n)`` 0/1 mask of a MADE-style layer: ``mask[k, j] = 1`` exactly when ``j < k``.

    Multiplying a weight matrix ``W`` (outputs x inputs) by it lets output ``k`` see only the
    inputs before ``k``: strictly lower-triangular, zero on the diagonal.

    Lesson: 04_polyphonic_chorales
    """
    return torch.tril(torch.ones(int(n), int(n)), diagonal=-1)


@dataclass
class PolyNADEConfig(PolyLSTMConfig):
    """Size of a :class:`PolyNADE`: the LSTM of :class:`PolyLSTMConfig` plus a NADE per frame."""

    nade_hidden: int = 64     # hidden units of the NADE that models the keys inside one frame


class PolyNADE(PolyLSTM):
    """LSTM over time, NADE over the keys of each frame: ``p(v_tk | v_t,<k, h_t)``.

    For frame ``t`` with LSTM features ``h_t``, the NADE has visible biases ``b = B h_t + b0``
    ``(P,)`` and hidden biases ``c = C h_t + c0`` ``(N,)``; key ``k`` sees the keys below it through

        a_k = c + sum_{j<k} v_j W[j]             (N,): W is (P, N), row W[j] is what key j adds
        logit_k = b_k + U[k] . sigmoid(a_k)

    The sum over ``j < k`` is an exclusive cumulative sum over keys, so a whole frame's
    likelihood costs one pass; sampling goes key by key.

    Lesson: 04_polyphonic_chorales
    """

    def __init__(self, config: PolyNADEConfig | None = None):
        config = config or PolyNADEConfig()
        super().__init__(config)
        c, N = config, config.nade_hidden
        # self.out (from PolyLSTM) gives the visible biases b from h_t
        self.to_c = nn.Linear(c.hidden, N)                      # hidden biases c from h_t
        self.W = nn.Parameter(torch.randn(c.n_keys, N) * 0.05)  # (P, N): row j is W_{j,:}, as in the lesson
        self.U = nn.Parameter(torch.randn(c.n_keys, N) * 0.05)  # (P, N): output weights of key k

    def conditional_logits(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``logit_k`` of ``p(v_k = 1 | v_<k, h)`` for every key at once: ``(..., H), (..., P) -> (..., P)``."""
        # in float32 even under mixed precision: a running sum over 88 keys in bfloat16 drifts
        off = torch.autocast("cuda", enabled=False) if h.is_cuda else contextlib.nullcontext()
        with off:
            h, frames = h.float(), frames.float()
            b = self.out(h)                                  # (..., P)
            c = self.to_c(h)                                 # (..., N)
            contrib = frames.unsqueeze(-1) * self.W          # (..., P, N): v_j W[j] (row j)
            a = c.unsqueeze(-2) + torch.cumsum(contrib, dim=-2) - contrib   # (..., P, N) exclusive sum j < k
            return b + (torch.sigmoid(a) * self.U).sum(-1)   # (..., P)

    def forward(self, prev: torch.Tensor, state=None, frames: torch.Tensor | None = None):
        """Previous frames ``(B, T, P)`` and the frames to score ``(B, T, P)`` -> the logits of
        ``p(v_tk = 1 | v_t,<k, v_<t)`` ``(B, T, P)``, and the LSTM state.

        Unlike :class:`PolyLSTM`, key ``k``'s logit depends on the keys below it in the same frame,
        so the frames themselves are an input (only their keys below ``k`` reach logit ``k``).
        """
        if frames is None:
            raise CourseError("PolyNADE's logits depend on the frame itself: call model(prev, frames=rolls); "
                              "to generate, use course.nn.polyphonic.sample(model, steps).")
        h, state = self.context(prev, state)
        return self.conditional_logits(h, frames), state

    def nll(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``-log p(frame | h) = -sum_k log p(v_k | v_<k, h)`` in nats: ``(B, T, H), (B, T, P) -> (B, T)``."""
        logits = self.conditional_logits(h, frames)
        return F.binary_cross_entropy_with_logits(logits, frames, reduction="none").sum(-1)

    @torch.no_grad()
    def sample_frame(self, h: torch.Tensor, uniform: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One frame per row of ``h`` ``(B, H)``, key by key from the lowest: ``(B, P)`` 0/1.

        Key ``k`` sounds when ``uniform[:, k] < p(v_k = 1 | v_<k, h)``, computed from the keys
        already drawn: :func:`sample_frame_autoregressive`, for a batch, updating ``a_k`` as it goes.
        """
        b = self.out(h)                                  # (B, P)
        a = self.to_c(h)                                 # (B, N): a_0 = c
        v = torch.zeros_like(b)
        for k in range(b.shape[-1]):
            logit = b[:, k] + (torch.sigmoid(a) * self.U[k]).sum(-1)          # (B,)
            v[:, k] = (uniform[:, k] < torch.sigmoid(logit / temperature)).float()
            a = a + v[:, k: k + 1] * self.W[k]           # a_{k+1} = a_k + v_k W[k] (row k)
        return v


# ---------------------------------------------------------------------------------------------
# loss and sampling, the same for both models
# ---------------------------------------------------------------------------------------------

def frame_nll(model: PolyLSTM, rolls: torch.Tensor) -> torch.Tensor:
    """``-log p(v_t | v_<t)`` in nats for every frame of every piece: ``(B, T, P) -> (B, T)``.

    Lesson: 04_polyphonic_chorales
    """
    h, _ = model.context(shift_frames(rolls))
    return model.nll(h, rolls)


def loss_fn(model: PolyLSTM, batch, *, skip_first: bool = False):
    """``(summed NLL in nats, number of real frames)`` for ``course.train.train``/``evaluate``.

    Padding frames (``mask`` False) count for nothing. ``skip_first=True`` leaves each piece's
    first frame out of the score (it is predicted from silence), the convention of the
    evaluation code behind the published JSB table.

    Lesson: 04_polyphonic_chorales
    """
    rolls, mask = unpack_batch(batch)
    nll = frame_nll(model, rolls)                      # (B, T)
    if skip_first:
        mask = mask.clone()
        mask[:, 0] = False
    count = mask.sum()
    return (nll * mask).sum(), int(count)


@torch.no_grad()
def sample(model: PolyLSTM, steps: int, *, seed: int = 0, temperature: float = 1.0, prime=None,
           n: int = 1, device=None) -> np.ndarray:
    """Generate a piano roll frame by frame.

    Args:
        model: a :class:`PolyLSTM` (independent coin flips per key) or :class:`PolyNADE`
            (keys drawn one after another, each conditioned on those below).
        steps: frames to generate after the prime.
        seed: seeds the sampler; the same seed gives the same music (on the same device).
        temperature: divides the logits (below 1: safer, above 1: wilder).
        prime: an optional ``(T0, P)`` roll to continue; it is kept at the start of the result.
        n: how many pieces to generate at once.

    Returns:
        a ``(T0 + steps, P)`` uint8 roll, or ``(n, T0 + steps, P)`` when ``n > 1``.

    Lesson: 04_polyphonic_chorales
    """
    if steps < 0:
        raise CourseError(f"steps must be >= 0, got {steps}.")
    if temperature <= 0:
        raise CourseError(f"temperature must be positive, got {temperature}.")
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    P = model.config.n_keys
    g = torch.Generator(device=dev).manual_seed(int(seed))
    frames = [torch.zeros(n, P, device=dev)]            # the silent frame before the piece
    if prime is not None:
        pr = torch.as_tensor(np.asarray(prime), dtype=torch.float32, device=dev)
        if pr.ndim != 2 or pr.shape[1] != P:
            raise CourseError(f"prime must be a (time steps, {P}) piano roll; got shape {tuple(pr.shape)}.")
        frames += list(pr.unsqueeze(0).expand(n, -1, -1).unbind(1))
    h, state = model.context(torch.stack(frames, 1))    # read the prime: (n, T0 + 1, H)
    h = h[:, -1]
    out = frames[1:]
    for _ in range(steps):
        u = torch.rand(n, P, generator=g, device=dev)
        v = model.sample_frame(h, u, temperature=temperature)      # (n, P)
        out.append(v)
        hh, state = model.context(v.unsqueeze(1), state)
        h = hh[:, -1]
    model.train(was_training)
    roll = torch.stack(out, 1).to(torch.uint8).cpu().numpy() if out else np.zeros((n, 0, P), np.uint8)
    return roll[0] if n == 1 else roll


def sample_frame_autoregressive(next_logit: Callable, n_keys: int, uniform) -> np.ndarray:
    """Draw one frame key by key: ``v_k = 1`` when ``uniform[k] < sigmoid(next_logit(v[:k]))``.

    Args:
        next_logit: a function from the keys decided so far (a 0/1 array of length ``k``) to the
            logit of ``p(v_k = 1 | v_<k)``.
        n_keys: the frame's length.
        uniform: ``n_keys`` numbers in [0, 1), the randomness (one ``uniform``, one answer; draw it
            uniformly at random to sample).

    Returns:
        a ``(n_keys,)`` float array of 0/1.

    Lesson: 04_polyphonic_chorales
    """
    u = np.asarray(uniform, dtype=np.float64)
    v = np.zeros(int(n_keys))
    for k in range(int(n_keys)):
        p = 1.0 / (1.0 + np.exp(-float(next_logit(v[:k].copy()))))
        v[k] = float(u[k] < p)
    return v
