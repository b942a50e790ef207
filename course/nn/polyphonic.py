"""Piano-roll language models: an LSTM over time with two kinds of output per frame.

A piano roll is a sequence of frames ``v_1, v_2, ...``, each a 0/1 vector over the 88 keys.
Both models read the previous frames with an LSTM and predict the next frame:

- :class:`PolyLSTM` treats the 88 keys of a frame as independent coins,
  ``p(v_t | v_<t) = prod_k Bernoulli(v_tk; sigmoid(logit_tk))``.
- :class:`PolyNADE` lifts that assumption: inside a frame, key ``k`` is predicted from the
  LSTM state *and* the keys below it, ``p(v_t | v_<t) = prod_k p(v_tk | v_t,<k, h_t)``, with a
  NADE (Larochelle & Murray, 2011) whose biases come from the LSTM: an LSTM-NADE, the LSTM version of the
  RNN-NADE of Boulanger-Lewandowski, Bengio & Vincent (2012), which conditions its NADE on a plain RNN.
- :class:`PolyMADE` has the same factorization with a wider within-frame network: a MADE
  (Germain et al., 2015), an MLP whose weight masks let key ``k`` see only the keys below it,
  plus a direct masked linear path from the keys below; the LSTM state enters every layer.
- :class:`PolyTransformer` replaces the LSTM by a causal Transformer over frames (the blocks of
  lesson 06, relative positions) and keeps the MADE output.

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

__all__ = ["PolyLSTMConfig", "PolyLSTM", "PolyNADEConfig", "PolyNADE", "PolyMADEConfig", "PolyMADE",
           "PolyTransformerConfig", "PolyTransformer", "MADEHead", "made_degrees", "loss_fn", "frame_nll",
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
# a MADE inside each frame: an LSTM or a Transformer below it
# ---------------------------------------------------------------------------------------------

def made_degrees(n_keys: int, n_hidden: int) -> torch.Tensor:
    """The degree of each hidden unit of a MADE over ``n_keys`` inputs: ``(n_hidden,)`` in ``0 .. n_keys - 2``.

    A hidden unit of degree ``m`` may see keys ``0 .. m`` and may feed outputs ``m + 1 ..``; the
    degrees are spread evenly (every ``m`` gets about the same number of units).

    Lesson: 04_polyphonic_chorales
    """
    return torch.arange(int(n_hidden)) % max(int(n_keys) - 1, 1)


class _MaskedLinear(nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a fixed 0/1 mask ``(out, in)``."""

    def __init__(self, mask: torch.Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADEHead(nn.Module):
    """The within-frame part: logits of ``p(v_k = 1 | v_<k, h)`` for every key, in one pass.

        z_1 = relu(M_1 v + C_1 h)            hidden unit j of degree m_j sees keys <= m_j
        z_l = relu(M_l z_l-1 + C_l h)        unit j sees units of degree <= m_j
        logit_k = O z_L + D v + B h          O: units with m_j < k;  D: strictly lower-triangular

    so ``logit_k`` depends on ``h`` and on ``v_0 .. v_k-1`` only (the masks are built from
    :func:`made_degrees` and :func:`autoregressive_mask`). Shapes: ``h (..., H)``, ``v (..., P)``.

    Lesson: 04_polyphonic_chorales
    """

    def __init__(self, n_keys: int, d_context: int, hidden: int, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        deg = made_degrees(n_keys, hidden)                               # (M,)
        keys = torch.arange(n_keys)
        self.inp = _MaskedLinear((deg[:, None] >= keys[None, :]))      # (M, P): unit j sees keys <= m_j
        self.hid = nn.ModuleList(_MaskedLinear(deg[:, None] >= deg[None, :]) for _ in range(layers - 1))
        self.cond = nn.ModuleList(nn.Linear(d_context, hidden, bias=False) for _ in range(layers))
        self.out = _MaskedLinear(keys[:, None] > deg[None, :])         # (P, M): key k hears units m_j < k
        self.direct = _MaskedLinear(autoregressive_mask(n_keys))       # (P, P): key k hears keys j < k
        self.bias = nn.Linear(d_context, n_keys)
        self.drop = nn.Dropout(dropout)
        nn.init.constant_(self.bias.bias, -3.0)          # about 4 of 88 keys sound at a time
        nn.init.zeros_(self.direct.weight)

    def forward(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        off = torch.autocast("cuda", enabled=False) if h.is_cuda else contextlib.nullcontext()
        with off:                                        # in float32: logits near 0/1 keys are sharp
            h, v = h.float(), frames.float()
            z = self.drop(F.relu(self.inp(v) + self.cond[0](h)))                  # (..., M)
            for lin, cond in zip(self.hid, self.cond[1:]):
                z = self.drop(F.relu(lin(z) + cond(h)))                           # (..., M)
            return self.out(z) + self.direct(v) + self.bias(h)                    # (..., P)


class _MADEOutput:
    """What :class:`PolyMADE` and :class:`PolyTransformer` share: the loss and the sampler of a MADE head."""

    def nll(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``-log p(frame | h) = -sum_k log p(v_k | v_<k, h)`` in nats: ``(B, T, H), (B, T, P) -> (B, T)``."""
        logits = self.made(h, frames)
        return F.binary_cross_entropy_with_logits(logits, frames.float(), reduction="none").sum(-1)

    @torch.no_grad()
    def sample_frame(self, h: torch.Tensor, uniform: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One frame per row of ``h`` ``(B, H)``, key by key from the lowest: ``(B, P)`` 0/1.

        Each key costs one pass of the head over the keys drawn so far (the later ones are still 0,
        and the masks keep them from mattering).
        """
        v = torch.zeros(h.shape[0], self.config.n_keys, device=h.device)
        for k in range(v.shape[-1]):
            logit = self.made(h, v)[:, k]                                    # (B,)
            v[:, k] = (uniform[:, k] < torch.sigmoid(logit / temperature)).float()
        return v

    def forward(self, prev: torch.Tensor, state=None, frames: torch.Tensor | None = None):
        """Previous frames ``(B, T, P)`` and the frames to score -> logits ``(B, T, P)`` of
        ``p(v_tk = 1 | v_t,<k, v_<t)``, and the state (as :meth:`PolyNADE.forward`)."""
        if frames is None:
            raise CourseError(f"{type(self).__name__}'s logits depend on the frame itself: call "
                              "model(prev, frames=rolls); to generate, use course.nn.polyphonic.sample(model, steps).")
        h, state = self.context(prev, state)
        return self.made(h, frames), state


@dataclass
class PolyMADEConfig(PolyLSTMConfig):
    """Size of a :class:`PolyMADE`: the LSTM of :class:`PolyLSTMConfig` plus a MADE per frame."""

    made_hidden: int = 256    # hidden units per MADE layer
    made_layers: int = 1      # masked hidden layers of the MADE
    made_dropout: float = 0.0  # dropout on the MADE's hidden units


class PolyMADE(_MADEOutput, PolyLSTM):
    """LSTM over time, a MADE over the keys of each frame (see :class:`MADEHead`).

    ``model(prev, frames=rolls)`` gives the conditional logits ``(B, T, P)``; ``loss_fn``,
    ``frame_nll`` and ``sample`` work as for :class:`PolyNADE`.

    Lesson: 04_polyphonic_chorales
    """

    def __init__(self, config: PolyMADEConfig | None = None):
        config = config or PolyMADEConfig()
        super().__init__(config)
        del self.out                                      # the head makes every logit
        self.made = MADEHead(config.n_keys, config.hidden, config.made_hidden, config.made_layers,
                             config.made_dropout)


@dataclass
class PolyTransformerConfig:
    """Size of a :class:`PolyTransformer`."""

    n_keys: int = N_KEYS      # piano-roll columns
    d_model: int = 128        # width of the residual stream
    n_heads: int = 4          # attention heads per layer
    n_layers: int = 3         # Transformer blocks (lesson 06's, with relative positions)
    d_ff: int = 512           # hidden units of each block's MLP
    dropout: float = 0.2      # dropout in the blocks and on the input
    context: int = 256        # frames seen at once; longer pieces are read in overlapping windows
    made_hidden: int = 256    # hidden units per MADE layer
    made_layers: int = 1      # masked hidden layers of the MADE
    made_dropout: float = 0.0  # dropout on the MADE's hidden units


class PolyTransformer(_MADEOutput, nn.Module):
    """A causal Transformer over frames with a MADE inside each frame.

    ``context(prev (B, T, P))`` embeds each previous frame with a linear layer and runs lesson 06's
    pre-LayerNorm blocks with relative attention, so feature ``t`` has seen frames ``< t`` only. A
    piece longer than ``config.context`` frames is read in windows that overlap by half, each
    position scored with at least half a window of history.

    Lesson: 04_polyphonic_chorales (the Transformer of 06_music_transformer over frames)
    """

    def __init__(self, config: PolyTransformerConfig | None = None):
        super().__init__()
        from .transformer import Block, TransformerConfig

        self.config = c = config or PolyTransformerConfig()
        tc = TransformerConfig(vocab_size=2, context=c.context, d_model=c.d_model, n_heads=c.n_heads,
                               n_layers=c.n_layers, d_ff=c.d_ff, dropout=c.dropout, relative=True, pad_id=0)
        self.embed = nn.Linear(c.n_keys, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(tc) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.made = MADEHead(c.n_keys, c.d_model, c.made_hidden, c.made_layers, c.made_dropout)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.embed(x))                                            # (B, T, C)
        for block in self.blocks:
            h = block(h)[0]
        return self.ln_f(h)                                                     # (B, T, C)

    def context(self, prev: torch.Tensor, state=None):
        """Features of the history ``(B, T, P) -> (B, T, C)``; the state is every frame read so far
        (a new call with ``state`` continues the same pieces, recomputing the window)."""
        x = prev if state is None else torch.cat([state, prev], 1)              # (B, S, P)
        S, T, W = x.shape[1], prev.shape[1], self.config.context
        if S <= W:
            h = self._features(x)
        else:
            half, parts, done = max(W // 2, 1), [], 0
            start = 0
            while done < S:
                end = min(start + W, S)
                hw = self._features(x[:, start:end])                            # (B, <=W, C)
                parts.append(hw[:, done - start:])
                done = end
                start = max(min(end - half, S - W), 0) if end < S else end
            h = torch.cat(parts, 1)                                             # (B, S, C)
        return h[:, S - T:], x[:, -(W - 1):] if W > 1 else x[:, :0]

    def num_parameters(self) -> int:
        """The number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


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
        model: a :class:`PolyLSTM` (independent coin flips per key), or a :class:`PolyNADE`,
            :class:`PolyMADE` or :class:`PolyTransformer` (keys drawn one after another, each
            conditioned on those below).
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
