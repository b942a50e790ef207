"""Checks for lesson 02, recurrent networks from scratch: the RNN step, the bias fix, the
step Jacobian used by backpropagation through time, and the LSTM and GRU cells.

Written with the check kit (:mod:`course.checks.kit`). Inputs are float32 torch tensors in
PyTorch's layout (weights ``(out, in)``, a batch of row vectors); expected answers come from
:mod:`course.nn.rnn`, which the test suite checks against ``torch.nn.RNN``/``LSTM``/``GRU``. They
are computed in the comparison, after the student's function has run, so a submission cannot read
them from the check's stack. When a wrong answer is exactly what a known mistake gives, the fail
line names the mistake (never the fix).

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import numpy as np
import torch

from ..nn.rnn import gru_step, lstm_step, rnn_step, step_jacobian
from .kit import Case, CheckFailure, against, close, exercise, matches, randn, short

LESSON = "02_rnn_from_scratch"
TOL = dict(rtol=1e-4, atol=1e-5)


def _sizes(r: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """(B, D, H) triples with D != H and B != H, so a swapped weight or input, or a transposed
    result, shows up as a shape error."""
    out = []
    for _ in range(n):
        D = int(r.integers(2, 7))
        H = int(r.choice([h for h in range(2, 9) if h != D]))
        B = int(r.choice([b for b in range(1, 5) if b != H]))
        out.append((B, D, H))
    return out


# ---------------------------------------------------------------------------- rnn_cell_step
def _rnn_untransposed_W_hh(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh + b)


def _rnn_sigmoid(x, h, W_xh, W_hh, b):
    return torch.sigmoid(x @ W_xh.T + h @ W_hh.T + b)


def _rnn_bias_outside(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh.T) + b


RNN_MISTAKES = {
    _rnn_untransposed_W_hh: "that is what W_hh gives when it is not transposed (weights are stored (out, in))",
    _rnn_sigmoid: "that is what the logistic sigmoid gives; this step uses tanh",
    _rnn_bias_outside: "that is what adding b after the nonlinearity gives",
}


@exercise(compare=against(rnn_step, RNN_MISTAKES, **TOL),
          hint="weights are stored (out, in) and x, h are batches of rows, so each weight meets them "
               "transposed; then follow the formula of section 1 term by term: which nonlinearity, "
               "and is b added before or after it?")
def rnn_cell_step(r):
    """Check ``rnn_cell_step(x, h, W_xh, W_hh, b) -> h_new`` (B, H)."""
    x = torch.tensor([[1.0, 0.0, -1.0]])
    h = torch.tensor([[0.5, -0.5]])
    W_xh = torch.tensor([[0.2, -0.1, 0.4], [0.3, 0.0, -0.2]])
    W_hh = torch.tensor([[0.5, 1.0], [-1.0, 0.25]])            # not symmetric: W_hh.T gives other numbers
    b = torch.tensor([0.1, -0.3])
    cases = [Case("one sequence, D=3, H=2", x, h, W_xh, W_hh, b),
             Case("zero state and zero bias", x, torch.zeros(1, 2), W_xh, W_hh, torch.zeros(2))]
    for i, (B, D, H) in enumerate(_sizes(r, 4)):
        cases.append(Case(f"random #{i + 1} (B={B}, D={D}, H={H})",
                          randn(r, B, D), randn(r, B, H, scale=0.8), randn(r, H, D, scale=0.6),
                          randn(r, H, H, scale=0.6), randn(r, H, scale=0.5)))
    return cases


# ---------------------------------------------------------------------------- fixed_rnn_step
def reference_fixed_rnn_step(x, h, W_h, b_h):
    """``tanh(W_h [h; x] + b_h)``: the bias inside the nonlinearity, ``[h; x]`` concatenated in that order."""
    return torch.tanh(torch.cat([h, x], dim=-1) @ W_h.T + b_h)   # (B, H)


def _fixed_unchanged(x, h, W_h, b_h):
    return torch.sigmoid(torch.cat([h, x], dim=-1) @ W_h.T) + b_h


def _fixed_bias_outside(x, h, W_h, b_h):
    return torch.tanh(torch.cat([h, x], dim=-1) @ W_h.T) + b_h


def _fixed_order_swapped(x, h, W_h, b_h):
    return torch.tanh(torch.cat([x, h], dim=-1) @ W_h.T + b_h)


def _fixed_sigmoid(x, h, W_h, b_h):
    return torch.sigmoid(torch.cat([h, x], dim=-1) @ W_h.T + b_h)


FIXED_MISTAKES = {
    _fixed_unchanged: "that is the circulated formula, unchanged",
    _fixed_bias_outside: "the bias is still outside the nonlinearity",
    _fixed_order_swapped: "that is the stacked vector in the order [x, h]; W_h's first H columns belong to h",
    _fixed_sigmoid: "that is the logistic sigmoid; torch.nn.RNN uses tanh",
}


@exercise(compare=against(reference_fixed_rnn_step, FIXED_MISTAKES, **TOL),
          hint="stack h and x along the feature axis, h first; W_h is stored (out, in) like every torch weight; "
               "where should the bias sit relative to the nonlinearity, and which nonlinearity does "
               "torch.nn.RNN use?")
def fixed_rnn_step(r):
    """Check ``fixed_rnn_step(x, h, W_h, b_h) -> h_new``: ``tanh(W_h [h; x] + b_h)``."""
    x = torch.tensor([[1.0, -2.0]])
    h = torch.tensor([[0.5, 0.0, -0.5]])
    W_h = torch.tensor([[0.2, 0.1, -0.3, 0.5, 0.0], [0.0, -0.4, 0.2, 0.1, 0.3], [0.3, 0.3, 0.3, -0.2, 0.1]])
    b_h = torch.tensor([0.8, -0.6, 0.2])
    cases = [Case("H=3, D=2, a clearly nonzero bias", x, h, W_h, b_h)]
    for i, (B, D, H) in enumerate(_sizes(r, 4)):
        cases.append(Case(f"random #{i + 1} (B={B}, D={D}, H={H})",
                          randn(r, B, D), randn(r, B, H, scale=0.8), randn(r, H, H + D, scale=0.5),
                          randn(r, H, scale=0.8)))
    return cases


# ---------------------------------------------------------------------------- rnn_jacobian
def reference_rnn_jacobian(h_new, W_hh):
    """``dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh`` for one (unbatched) step, shape (H, H)."""
    return step_jacobian(h_new, W_hh)


def _jac_columns_scaled(h_new, W_hh):
    return W_hh * (1 - h_new ** 2)[None, :]


def _jac_transposed(h_new, W_hh):
    return (1 - h_new ** 2)[:, None] * W_hh.T


def _jac_no_slope(h_new, W_hh):
    return W_hh


def _jac_slope_1_minus_h(h_new, W_hh):
    return (1 - h_new)[:, None] * W_hh


def _jac_tanh_twice(h_new, W_hh):
    return (1 - torch.tanh(h_new) ** 2)[:, None] * W_hh


JACOBIAN_MISTAKES = {
    _jac_columns_scaled: "the tanh slopes scale the columns of W_hh; unit i's slope belongs to row i "
                         "(row i is the output h_t[i])",
    _jac_transposed: "that uses W_hh transposed; entry [i, j] is d h_t[i] / d h_{t-1}[j]",
    _jac_no_slope: "that is W_hh alone: the slope of the tanh is missing",
    _jac_slope_1_minus_h: "the slope of tanh, written with its output h, is not 1 - h",
    _jac_tanh_twice: "h_new is already the output of the tanh: write the slope with h_new itself, "
                     "without another tanh",
}


@exercise(compare=against(reference_rnn_jacobian, JACOBIAN_MISTAKES, **TOL),
          hint="chain rule: unit i's tanh slope (tanh' can be written with the tanh's output alone) times "
               "how unit i's input depends on h_{t-1}; entry [i, j] is d h_t[i] / d h_{t-1}[j]")
def rnn_jacobian(r):
    """Check ``rnn_jacobian(h_new, W_hh) -> (H, H)``: the Jacobian of one tanh RNN step."""
    h_new = torch.tensor([0.5, -0.9, 0.0])
    W_hh = torch.tensor([[0.5, 1.0, -0.2], [-1.0, 0.25, 0.3], [0.4, 0.0, 0.7]])
    cases = [Case("H=3", h_new, W_hh),
             Case("a saturated unit (h close to 1)", torch.tensor([0.999, 0.1]), torch.tensor([[2.0, -1.0], [0.5, 1.5]]))]
    for i in range(4):
        H = int(r.integers(2, 9))
        cases.append(Case(f"random #{i + 1} (H={H})", torch.tanh(randn(r, H, scale=1.5)), randn(r, H, H)))
    return cases


# ---------------------------------------------------------------------------- lstm_cell_step
def _lstm_gates(x, h, W_ih, W_hh, b, order="ifgo"):
    chunks = dict(zip(order, (x @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)))
    return (torch.sigmoid(chunks["i"]), torch.sigmoid(chunks["f"]), torch.tanh(chunks["g"]),
            torch.sigmoid(chunks["o"]))


def _lstm_order_ifog(x, h, c, W_ih, W_hh, b):
    i, f, g, o = _lstm_gates(x, h, W_ih, W_hh, b, order="ifog")
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def _lstm_no_tanh_on_cell(x, h, c, W_ih, W_hh, b):
    i, f, g, o = _lstm_gates(x, h, W_ih, W_hh, b)
    c_new = f * c + i * g
    return o * c_new, c_new


def _lstm_no_input_gate(x, h, c, W_ih, W_hh, b):
    i, f, g, o = _lstm_gates(x, h, W_ih, W_hh, b)
    c_new = f * c + g
    return o * torch.tanh(c_new), c_new


def _lstm_old_cell_in_h(x, h, c, W_ih, W_hh, b):
    i, f, g, o = _lstm_gates(x, h, W_ih, W_hh, b)
    return o * torch.tanh(c), f * c + i * g


def _lstm_pair_swapped(x, h, c, W_ih, W_hh, b):
    h_new, c_new = lstm_step(x, h, c, W_ih, W_hh, b)
    return c_new, h_new


LSTM_MISTAKES = {
    _lstm_pair_swapped: "that is the pair in the order (c_new, h_new); return h_new first",
    _lstm_order_ifog: "that is the four chunks read in the order i, f, o, g; torch's order is i, f, g, o",
    _lstm_no_tanh_on_cell: "the output gate should see the new cell through a tanh",
    _lstm_no_input_gate: "the candidate g enters the cell without the input gate",
    _lstm_old_cell_in_h: "h_new is computed from the old cell c instead of the new one",
}


def _validate_lstm(got, *args, **kwargs):
    """The pair (h_new, c_new), each compared with :func:`course.nn.rnn.lstm_step`'s (computed only now)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        what = f"a {type(got).__name__} of {len(got)} items" if isinstance(got, (tuple, list)) else short(got)
        raise CheckFailure(f"return the pair (h_new, c_new), two tensors; got {what}")
    h_new, c_new = lstm_step(*args, **kwargs)
    try:
        close(got[0], h_new, where="of h_new", **TOL)
        close(got[1], c_new, where="of c_new", **TOL)
    except CheckFailure as e:
        for mistake, what in LSTM_MISTAKES.items():
            if matches(tuple(got), mistake, args, kwargs, **TOL):
                raise CheckFailure(f"{str(e).rstrip('. ')}; {what}") from None
        raise


@exercise(compare=_validate_lstm,
          hint="torch's gate order is i, f, g, o: chunk the pre-activations of all four gates at once; "
               "three gates are sigmoids and the candidate is a tanh; then compare each line of the "
               "equations above with your code, and return (h_new, c_new)")
def lstm_cell_step(r):
    """Check ``lstm_cell_step(x, h, c, W_ih, W_hh, b) -> (h_new, c_new)`` in PyTorch's gate order."""
    cases = []
    for i, (B, D, H) in enumerate([(3, 2, 4)] + _sizes(r, 4)):
        name = "B=3, D=2, H=4" if i == 0 else f"random #{i} (B={B}, D={D}, H={H})"
        cases.append(Case(name, randn(r, B, D), randn(r, B, H, scale=0.5), randn(r, B, H),
                          randn(r, 4 * H, D, scale=0.7), randn(r, 4 * H, H, scale=0.7), randn(r, 4 * H, scale=0.5)))
    return cases


# ---------------------------------------------------------------------------- gru_cell_step
def _gru_parts(x, h, W_ih, W_hh, b_ih, b_hh, order="rzn"):
    xs = dict(zip(order, (x @ W_ih.T + b_ih).chunk(3, dim=-1)))
    hs = dict(zip(order, (h @ W_hh.T + b_hh).chunk(3, dim=-1)))
    return xs, hs


def _gru_paper_form(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[-1]
    xs, hs = _gru_parts(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(xs["r"] + hs["r"]), torch.sigmoid(xs["z"] + hs["z"])
    n = torch.tanh(xs["n"] + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h


def _gru_update_swapped(x, h, W_ih, W_hh, b_ih, b_hh):
    xs, hs = _gru_parts(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(xs["r"] + hs["r"]), torch.sigmoid(xs["z"] + hs["z"])
    n = torch.tanh(xs["n"] + r * hs["n"])
    return z * n + (1 - z) * h


def _gru_bias_outside_reset(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[-1]
    xs, hs = _gru_parts(x, h, W_ih, W_hh, b_ih, b_hh)
    r, z = torch.sigmoid(xs["r"] + hs["r"]), torch.sigmoid(xs["z"] + hs["z"])
    n = torch.tanh(xs["n"] + r * (hs["n"] - b_hh[2 * H:]) + b_hh[2 * H:])
    return (1 - z) * n + z * h


def _gru_order_zrn(x, h, W_ih, W_hh, b_ih, b_hh):
    xs, hs = _gru_parts(x, h, W_ih, W_hh, b_ih, b_hh, order="zrn")
    r, z = torch.sigmoid(xs["r"] + hs["r"]), torch.sigmoid(xs["z"] + hs["z"])
    n = torch.tanh(xs["n"] + r * hs["n"])
    return (1 - z) * n + z * h


GRU_MISTAKES = {
    _gru_paper_form: "that is the paper's form, with r applied to h before the matrix product; torch's form "
                     "applies r after it",
    _gru_update_swapped: "the update gate weights the two states the other way round: z is the share of the old state",
    _gru_bias_outside_reset: "b_hn is left outside the reset gate; in torch's form r multiplies it too",
    _gru_order_zrn: "that is the chunks read in the order z, r, n; torch's order is r, z, n",
}


@exercise(compare=against(gru_step, GRU_MISTAKES, **TOL),
          hint="torch's gate order is r, z, n; in torch's form the reset gate scales the whole hidden-side "
               "term of n (after the matrix product, bias included); z is the share of the old state that is kept")
def gru_cell_step(r):
    """Check ``gru_cell_step(x, h, W_ih, W_hh, b_ih, b_hh) -> h_new`` in PyTorch's form."""
    cases = []
    for i, (B, D, H) in enumerate([(3, 2, 4)] + _sizes(r, 4)):
        name = "B=3, D=2, H=4" if i == 0 else f"random #{i} (B={B}, D={D}, H={H})"
        cases.append(Case(name, randn(r, B, D), randn(r, B, H, scale=0.8), randn(r, 3 * H, D, scale=0.7),
                          randn(r, 3 * H, H, scale=0.7), randn(r, 3 * H, scale=0.6), randn(r, 3 * H, scale=0.6)))
    return cases
