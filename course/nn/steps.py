"""The RNN, LSTM and GRU steps as formulas: one time step each, the way lesson 02 derives them.

Weights follow PyTorch's layout ``(out_features, in_features)``, so a batch of row vectors is
multiplied as ``x @ W.T``; gates come in PyTorch's order. The modules of :mod:`course.nn.rnn`
are built on these.

- :func:`rnn_step`   ``h' = tanh(W_xh x + W_hh h + b)``; :func:`step_jacobian` its ``dh'/dh``
- :func:`lstm_step`  gates i, f, g, o (PyTorch's order)
- :func:`gru_step`   gates r, z, n, with the reset gate applied to ``W_hn h + b_hn``

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rnn_step", "step_jacobian", "lstm_step", "gru_step"]


def rnn_step(x: Tensor, h: Tensor, W_xh: Tensor, W_hh: Tensor, b: Tensor) -> Tensor:
    """One step of a plain (Elman) RNN: ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)``.

    Args:
        x: input, shape ``(B, D)``.
        h: previous hidden state, shape ``(B, H)``.
        W_xh: input weights, shape ``(H, D)`` (``torch.nn.RNN.weight_ih_l0``).
        W_hh: recurrent weights, shape ``(H, H)`` (``weight_hh_l0``).
        b: bias, shape ``(H,)`` (``bias_ih_l0 + bias_hh_l0``).

    Returns:
        the new hidden state, shape ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """
    return torch.tanh(x @ W_xh.T + h @ W_hh.T + b)  # (B, H)


def step_jacobian(h_new: Tensor, W_hh: Tensor) -> Tensor:
    """The Jacobian of one tanh RNN step with respect to the previous state:
    ``dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh``.

    Args:
        h_new: the state the step produced, ``h_t``, shape ``(H,)`` (one sequence, no batch).
        W_hh: recurrent weights ``(H, H)``.

    Returns:
        ``(H, H)``: entry ``[i, j]`` is ``d h_t[i] / d h_{t-1}[j]``.

    Lesson: 02_rnn_from_scratch
    """
    return (1 - h_new ** 2)[:, None] * W_hh      # (H, H): row i scaled by tanh'(a_i)


def lstm_step(x: Tensor, h: Tensor, c: Tensor, W_ih: Tensor, W_hh: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step in PyTorch's gate order (input i, forget f, cell candidate g, output o).

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    Args:
        x: input ``(B, D)``; h, c: previous hidden and cell state ``(B, H)``.
        W_ih: ``(4H, D)``; W_hh: ``(4H, H)``; b: ``(4H,)`` (``bias_ih_l0 + bias_hh_l0``).

    Returns:
        ``(h', c')``, each ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """
    gates = x @ W_ih.T + h @ W_hh.T + b         # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)          # each (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g                        # (B, H)
    h_new = o * torch.tanh(c_new)                # (B, H)
    return h_new, c_new


def gru_step(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step in PyTorch's form (reset r, update z, candidate n).

    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.
    The two biases stay separate because ``b_hn`` sits inside the reset gate's product.

    Args:
        x: ``(B, D)``; h: ``(B, H)``; W_ih: ``(3H, D)``; W_hh: ``(3H, H)``; b_ih, b_hh: ``(3H,)``.

    Returns:
        the new hidden state ``(B, H)``.

    Lesson: 02_rnn_from_scratch
    """
    xi = x @ W_ih.T + b_ih                       # (B, 3H)
    hh = h @ W_hh.T + b_hh                       # (B, 3H)
    x_r, x_z, x_n = xi.chunk(3, dim=-1)          # each (B, H)
    h_r, h_z, h_n = hh.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h                   # (B, H)
