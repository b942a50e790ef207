"""Recurrent networks written from scratch: RNN, LSTM and GRU cells, a sequence runner and a
tiny token language model.

Everything here computes exactly what ``torch.nn.RNN``, ``torch.nn.LSTM`` and ``torch.nn.GRU``
compute (single layer, same weight layout, same gate order), so each module can load its
weights from the ``torch.nn`` counterpart with ``from_torch`` and the tests compare the two.
Weights follow PyTorch's layout ``(out_features, in_features)``, so a batch of row vectors is
multiplied as ``x @ W.T``.

The one-step formulas (:func:`rnn_step`, :func:`lstm_step`, :func:`gru_step`, :func:`step_jacobian`)
live in :mod:`course.nn.steps` and are re-exported here.

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import CourseError
from .steps import gru_step, lstm_step, rnn_step, step_jacobian

__all__ = ["rnn_step", "step_jacobian", "lstm_step", "gru_step", "RNNConfig", "RNNCell", "LSTMCell", "GRUCell", "RNN",
           "FusedRNN", "TokenRNN", "CELLS"]


# ---------------------------------------------------------------------------- config
CELLS = ("rnn", "lstm", "gru")


@dataclass
class RNNConfig:
    """Settings of :class:`RNN` and :class:`TokenRNN`."""

    input_size: int = 32          # D: size of each input vector x_t (the embedding size in TokenRNN)
    hidden_size: int = 64         # H: size of the hidden state h_t
    cell: str = "rnn"             # "rnn" (tanh), "lstm" or "gru"
    vocab_size: int | None = None # TokenRNN only: number of token ids (input embedding and output logits)
    fused: bool = False           # TokenRNN only: run torch.nn's fused RNN/LSTM/GRU (same maths, much faster)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise CourseError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}.")
        if self.input_size < 1 or self.hidden_size < 1:
            raise CourseError(f"input_size and hidden_size must be positive, got {self.input_size}, {self.hidden_size}.")


# ---------------------------------------------------------------------------- cells
class _Cell(nn.Module):
    """Shared parts of the three cells: parameters in PyTorch's layout and its initialisation."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        G = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))   # (G*H, D)
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))  # (G*H, H)
        self.bias_ih = nn.Parameter(torch.empty(G))                 # (G*H,)
        self.bias_hh = nn.Parameter(torch.empty(G))                 # (G*H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in +-1/sqrt(H), as torch.nn does."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    @classmethod
    def from_torch(cls, module: nn.Module):
        """A cell holding a copy of the weights of a one-layer ``torch.nn`` RNN/LSTM/GRU (or its Cell)."""
        suffix = "_l0" if hasattr(module, "weight_ih_l0") else ""
        if getattr(module, "num_layers", 1) != 1 or getattr(module, "bidirectional", False):
            raise CourseError("from_torch copies a single-layer, one-directional module.")
        if not getattr(module, "bias", True):
            raise CourseError("from_torch needs a module with biases (bias=True).")
        if getattr(module, "proj_size", 0):
            raise CourseError("from_torch does not handle LSTMs with proj_size.")
        expected = {RNNCell: ("RNN", "RNNCell"), LSTMCell: ("LSTM", "LSTMCell"), GRUCell: ("GRU", "GRUCell")}[cls]
        if type(module).__name__ not in expected:
            raise CourseError(f"{cls.__name__}.from_torch needs torch.nn.{expected[0]} or {expected[1]}, "
                              f"not {type(module).__name__}.")
        if getattr(module, "nonlinearity", "tanh") != "tanh":
            raise CourseError("from_torch copies a tanh RNN (nonlinearity='tanh').")
        w_ih = getattr(module, "weight_ih" + suffix)
        cell = cls(w_ih.shape[1], module.hidden_size)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(module, name + suffix))
        return cell.to(w_ih.device, w_ih.dtype)

    def init_state(self, batch: int, device=None, dtype=None):
        """The all-zero starting state for a batch."""
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)  # (B, H)


class RNNCell(_Cell):
    """A tanh RNN cell: ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)``. State: ``h`` ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """

    gates = 1

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih + self.bias_hh)


class LSTMCell(_Cell):
    """An LSTM cell (gates i, f, g, o). State: the pair ``(h, c)``, each ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """

    gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        return lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih + self.bias_hh)

    def init_state(self, batch: int, device=None, dtype=None):
        z = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)  # (B, H)
        return z, z.clone()


class GRUCell(_Cell):
    """A GRU cell (gates r, z, n). State: ``h`` ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """

    gates = 3

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


_CELL_CLASSES = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


# ---------------------------------------------------------------------------- sequences
class RNN(nn.Module):
    """Runs a cell over a batch of sequences, one time step at a time (a Python loop, for clarity).

    ``forward(x, state=None)`` takes ``x`` of shape ``(B, T, D)`` (batch first) and returns
    ``(outputs, state)``: the hidden state at every step ``(B, T, H)`` and the final state
    (``h`` for rnn/gru, ``(h, c)`` for lstm), like ``torch.nn.RNN(batch_first=True)`` with the
    state's leading layer dimension dropped.

    Lesson: 02_rnn_from_scratch
    """

    def __init__(self, config: RNNConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or RNNConfig(**kwargs)
        c = self.config
        self.cell = _CELL_CLASSES[c.cell](c.input_size, c.hidden_size)

    @classmethod
    def from_torch(cls, module: nn.Module) -> "RNN":
        """An :class:`RNN` with the weights of a one-layer ``torch.nn.RNN``/``LSTM``/``GRU``."""
        kind = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}.get(type(module).__name__)
        if kind is None:
            raise CourseError(f"RNN.from_torch needs torch.nn.RNN, LSTM or GRU, not {type(module).__name__}.")
        cell = _CELL_CLASSES[kind].from_torch(module)
        out = cls(RNNConfig(input_size=cell.input_size, hidden_size=cell.hidden_size, cell=kind))
        out.cell = cell
        return out

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn.RNN``/``LSTM``/``GRU`` (``batch_first=True``) with a copy of these weights."""
        c = self.config
        module = _TORCH_CLASSES[c.cell](c.input_size, c.hidden_size, batch_first=True)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, name + "_l0").copy_(getattr(self.cell, name))
        w = self.cell.weight_ih
        return module.to(w.device, w.dtype)

    def init_state(self, batch: int, device=None, dtype=None):
        return self.cell.init_state(batch, device=device, dtype=dtype)

    def forward(self, x: Tensor, state=None):
        if x.dim() != 3:
            raise CourseError(f"RNN expects input of shape (batch, time, features), got {tuple(x.shape)}.")
        B, T, _ = x.shape
        if state is None:
            state = self.init_state(B, device=x.device, dtype=x.dtype)
        outputs = []
        for t in range(T):
            state = self.cell(x[:, t], state)                       # h: (B, H)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        if not outputs:
            return x.new_zeros(B, 0, self.config.hidden_size), state
        return torch.stack(outputs, dim=1), state                     # (B, T, H)


_TORCH_CLASSES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class FusedRNN(nn.Module):
    """:class:`RNN`'s interface around ``torch.nn.RNN``/``LSTM``/``GRU``: the same equations run as one
    fused C++ (or cuDNN) call instead of a Python loop, for training at a useful speed.

    States have no leading layer dimension: ``h`` is ``(B, H)``, as in :class:`RNN`.

    Lesson: 02_rnn_from_scratch
    """

    def __init__(self, config: RNNConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or RNNConfig(**kwargs)
        c = self.config
        self.module = _TORCH_CLASSES[c.cell](c.input_size, c.hidden_size, batch_first=True)

    @classmethod
    def from_scratch(cls, model: RNN) -> "FusedRNN":
        """A :class:`FusedRNN` holding a copy of the weights of a from-scratch :class:`RNN`."""
        out = cls(dataclasses.replace(model.config, fused=True))
        out.module = model.to_torch()
        return out

    def to_scratch(self) -> RNN:
        """The from-scratch :class:`RNN` with a copy of these weights."""
        out = RNN.from_torch(self.module)
        out.config = dataclasses.replace(self.config, fused=False)
        return out

    def forward(self, x: Tensor, state=None):
        if x.dim() != 3:
            raise CourseError(f"RNN expects input of shape (batch, time, features), got {tuple(x.shape)}.")
        if state is not None:   # (B, H) -> (1, B, H)
            state = tuple(s[None] for s in state) if isinstance(state, tuple) else state[None]
        out, state = self.module(x, state)                            # (B, T, H)
        state = tuple(s[0] for s in state) if isinstance(state, tuple) else state[0]
        return out, state


class TokenRNN(nn.Module):
    """A tiny language model: embedding -> :class:`RNN` -> ``y_t = W_hy h_t + b_y`` (logits).

    ``forward(tokens)`` maps ids ``(B, T)`` to next-token logits ``(B, T, V)``;
    :meth:`continue_tokens` extends an opening one token at a time. With ``RNNConfig(fused=True)``
    the recurrent layer is torch's fused one (for training); :meth:`convert` switches between the two.

    Lesson: 02_rnn_from_scratch
    """

    def __init__(self, config: RNNConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or RNNConfig(**kwargs)
        c = self.config
        if not c.vocab_size:
            raise CourseError("TokenRNN needs RNNConfig(vocab_size=...), the number of token ids.")
        self.embed = nn.Embedding(c.vocab_size, c.input_size)        # ids -> (D,)
        self.rnn = FusedRNN(c) if c.fused else RNN(c)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)            # W_hy, b_y

    def convert(self, fused: bool) -> "TokenRNN":
        """A copy of this model running the fused ``torch.nn`` layer (``fused=True``) or the
        from-scratch cells (``fused=False``); the weights, and so the outputs, are the same."""
        import copy

        out = copy.deepcopy(self)
        out.config = dataclasses.replace(self.config, fused=bool(fused))
        if fused and not isinstance(self.rnn, FusedRNN):
            out.rnn = FusedRNN.from_scratch(self.rnn)
        elif not fused and isinstance(self.rnn, FusedRNN):
            out.rnn = self.rnn.to_scratch()
        return out

    def forward(self, tokens: Tensor, state=None, *, return_state: bool = False):
        out, state = self.rnn(self.embed(tokens), state)              # (B, T, H)
        logits = self.head(out)                                       # (B, T, V)
        return (logits, state) if return_state else logits

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean cross-entropy (nats per token) of predicting ``tokens[:, 1:]`` from ``tokens[:, :-1]``."""
        logits = self(tokens[:, :-1])                                 # (B, T-1, V)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    @torch.no_grad()
    def continue_tokens(self, opening, n: int, *, temperature: float = 1.0, seed: int = 0,
                        stop: int | None = None) -> list[int]:
        """The opening followed by up to ``n`` new tokens.

        Args:
            opening: a non-empty sequence of token ids.
            n: how many tokens to add.
            temperature: 0 picks the most likely token each time (greedy); higher is more random.
            seed: seeds the sampler.
            stop: a token id (e.g. EOS) that ends the continuation early (it is kept).
        """
        if temperature < 0:
            raise CourseError(f"temperature must be >= 0, got {temperature}.")
        opening = [int(t) for t in opening]
        if not opening:
            raise CourseError("continue_tokens needs at least one opening token (e.g. BOS).")
        was_training = self.training
        self.eval()
        dev = self.head.weight.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        logits, state = self(torch.tensor([opening], device=dev), return_state=True)
        out = list(opening)
        for _ in range(n):
            last = logits[0, -1]                                      # (V,)
            if temperature == 0:
                nxt = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
            out.append(nxt)
            if stop is not None and nxt == stop:
                break
            logits, state = self(torch.tensor([[nxt]], device=dev), state, return_state=True)
        self.train(was_training)
        return out
