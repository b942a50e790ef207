"""Checks for lesson 02, recurrent networks from scratch: the RNN step, the bias fix, the
step Jacobian used by backpropagation through time, and the LSTM and GRU cells.

Inputs are float32 torch tensors in PyTorch's layout (weights ``(out, in)``, a batch of row
vectors); expected answers come from :mod:`course.nn.rnn`, which the test suite checks against
``torch.nn.RNN``/``LSTM``/``GRU``.

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import numpy as np

from .checking import Case, exercise, rng, run_cases

LESSON = "02_rnn_from_scratch"
TOL = dict(rtol=1e-4, atol=1e-5)


def _t(r: np.random.Generator, *shape, scale: float = 1.0):
    import torch

    return torch.tensor(r.standard_normal(shape) * scale, dtype=torch.float32)


def _compare(got, expected):
    from .checking import compare_values

    compare_values(got, expected, **TOL)


def _sizes(r: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """(B, D, H) triples with D != H, so a swapped weight or input shows up as a shape error."""
    out = []
    for _ in range(n):
        D = int(r.integers(2, 7))
        H = int(r.choice([h for h in range(2, 9) if h != D]))
        out.append((int(r.integers(1, 5)), D, H))
    return out


# ---------------------------------------------------------------------------- rnn_cell_step
def _cases_rnn_cell_step() -> list[Case]:
    import torch

    from ..nn.rnn import rnn_step

    r = rng("rnn_cell_step")
    x = torch.tensor([[1.0, 0.0, -1.0]])
    h = torch.tensor([[0.5, -0.5]])
    W_xh = torch.tensor([[0.2, -0.1, 0.4], [0.3, 0.0, -0.2]])
    W_hh = torch.tensor([[0.5, 1.0], [-1.0, 0.25]])            # not symmetric: W_hh.T gives other numbers
    b = torch.tensor([0.1, -0.3])
    cases = [Case("one sequence, D=3, H=2", (x, h, W_xh, W_hh, b)),
             Case("zero state and zero bias", (x, torch.zeros(1, 2), W_xh, W_hh, torch.zeros(2)))]
    for i, (B, D, H) in enumerate(_sizes(r, 4)):
        cases.append(Case(f"random #{i + 1} (B={B}, D={D}, H={H})",
                          (_t(r, B, D), _t(r, B, H, scale=0.8), _t(r, H, D, scale=0.6), _t(r, H, H, scale=0.6),
                           _t(r, H, scale=0.5))))
    for c in cases:
        c.expected = rnn_step(*c.args)
    return cases


@exercise(LESSON, points=1)
def rnn_cell_step(func) -> None:
    """Check ``rnn_cell_step(x, h, W_xh, W_hh, b) -> h_new`` (B, H)."""
    run_cases("rnn_cell_step", func, _cases_rnn_cell_step(), compare=_compare,
              hint="h_new = tanh(x @ W_xh.T + h @ W_hh.T + b); weights are (out, in), so multiply a batch of rows "
                   "by the transpose")


# ---------------------------------------------------------------------------- fixed_rnn_step
def reference_fixed_rnn_step(x, h, W_h, b_h):
    """``tanh(W_h [h; x] + b_h)``: the bias inside the nonlinearity, ``[h; x]`` concatenated in that order."""
    import torch

    return torch.tanh(torch.cat([h, x], dim=-1) @ W_h.T + b_h)   # (B, H)


def _cases_fixed_rnn_step() -> list[Case]:
    import torch

    r = rng("fixed_rnn_step")
    x = torch.tensor([[1.0, -2.0]])
    h = torch.tensor([[0.5, 0.0, -0.5]])
    W_h = torch.tensor([[0.2, 0.1, -0.3, 0.5, 0.0], [0.0, -0.4, 0.2, 0.1, 0.3], [0.3, 0.3, 0.3, -0.2, 0.1]])
    b_h = torch.tensor([0.8, -0.6, 0.2])
    cases = [Case("H=3, D=2, a clearly nonzero bias", (x, h, W_h, b_h))]
    for i, (B, D, H) in enumerate(_sizes(r, 4)):
        cases.append(Case(f"random #{i + 1} (B={B}, D={D}, H={H})",
                          (_t(r, B, D), _t(r, B, H, scale=0.8), _t(r, H, H + D, scale=0.5), _t(r, H, scale=0.8))))
    for c in cases:
        c.expected = reference_fixed_rnn_step(*c.args)
    return cases


@exercise(LESSON, points=1)
def fixed_rnn_step(func) -> None:
    """Check ``fixed_rnn_step(x, h, W_h, b_h) -> h_new``: ``tanh(W_h [h; x] + b_h)``."""
    run_cases("fixed_rnn_step", func, _cases_fixed_rnn_step(), compare=_compare,
              hint="concatenate [h, x] (in that order) along the last axis, multiply by W_h.T, add b_h, "
                   "and only then apply tanh")


# ---------------------------------------------------------------------------- rnn_jacobian
def reference_rnn_jacobian(h_new, W_hh):
    """``dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh`` for one (unbatched) step, shape (H, H)."""
    from ..nn.rnn import step_jacobian

    return step_jacobian(h_new, W_hh)


def _cases_rnn_jacobian() -> list[Case]:
    import torch

    r = rng("rnn_jacobian")
    h_new = torch.tensor([0.5, -0.9, 0.0])
    W_hh = torch.tensor([[0.5, 1.0, -0.2], [-1.0, 0.25, 0.3], [0.4, 0.0, 0.7]])
    cases = [Case("H=3", (h_new, W_hh)),
             Case("a saturated unit (h close to 1)", (torch.tensor([0.999, 0.1]), torch.tensor([[2.0, -1.0], [0.5, 1.5]])))]
    for i in range(4):
        H = int(r.integers(2, 9))
        cases.append(Case(f"random #{i + 1} (H={H})", (torch.tanh(_t(r, H, scale=1.5)), _t(r, H, H))))
    for c in cases:
        c.expected = reference_rnn_jacobian(*c.args)
    return cases


@exercise(LESSON, points=1)
def rnn_jacobian(func) -> None:
    """Check ``rnn_jacobian(h_new, W_hh) -> (H, H)``: the Jacobian of one tanh RNN step."""
    run_cases("rnn_jacobian", func, _cases_rnn_jacobian(), compare=_compare,
              hint="d tanh(a)/da = 1 - tanh(a)^2 = 1 - h_new^2, and row i of the Jacobian is that factor for unit i "
                   "times row i of W_hh: diag(1 - h_new**2) @ W_hh")


# ---------------------------------------------------------------------------- lstm_cell_step
def _cases_lstm_cell_step() -> list[Case]:
    from ..nn.rnn import lstm_step

    r = rng("lstm_cell_step")
    cases = []
    for i, (B, D, H) in enumerate([(2, 3, 2)] + _sizes(r, 4)):
        name = "B=2, D=3, H=2" if i == 0 else f"random #{i} (B={B}, D={D}, H={H})"
        cases.append(Case(name, (_t(r, B, D), _t(r, B, H, scale=0.5), _t(r, B, H), _t(r, 4 * H, D, scale=0.7),
                                 _t(r, 4 * H, H, scale=0.7), _t(r, 4 * H, scale=0.5))))
    for c in cases:
        c.expected = tuple(lstm_step(*c.args))
    return cases


@exercise(LESSON, points=1)
def lstm_cell_step(func) -> None:
    """Check ``lstm_cell_step(x, h, c, W_ih, W_hh, b) -> (h_new, c_new)`` in PyTorch's gate order."""
    run_cases("lstm_cell_step", func, _cases_lstm_cell_step(), compare=_compare,
              hint="gates = x @ W_ih.T + h @ W_hh.T + b, split into 4 chunks in the order i, f, g, o; "
                   "c_new = f*c + i*g, h_new = o*tanh(c_new); return (h_new, c_new)")


# ---------------------------------------------------------------------------- gru_cell_step
def _cases_gru_cell_step() -> list[Case]:
    from ..nn.rnn import gru_step

    r = rng("gru_cell_step")
    cases = []
    for i, (B, D, H) in enumerate([(2, 3, 2)] + _sizes(r, 4)):
        name = "B=2, D=3, H=2" if i == 0 else f"random #{i} (B={B}, D={D}, H={H})"
        cases.append(Case(name, (_t(r, B, D), _t(r, B, H, scale=0.8), _t(r, 3 * H, D, scale=0.7),
                                 _t(r, 3 * H, H, scale=0.7), _t(r, 3 * H, scale=0.6), _t(r, 3 * H, scale=0.6))))
    for c in cases:
        c.expected = gru_step(*c.args)
    return cases


@exercise(LESSON, points=1)
def gru_cell_step(func) -> None:
    """Check ``gru_cell_step(x, h, W_ih, W_hh, b_ih, b_hh) -> h_new`` in PyTorch's form."""
    run_cases("gru_cell_step", func, _cases_gru_cell_step(), compare=_compare,
              hint="split x @ W_ih.T + b_ih and h @ W_hh.T + b_hh into r, z, n parts; n = tanh(x_n + r * h_n) "
                   "(r multiplies W_hn h + b_hn); h_new = (1 - z) * n + z * h")
