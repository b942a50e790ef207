"""Checks for lesson 05, attention from first principles: a numerically stable softmax, scaled
dot-product attention with masks, the causal mask and multi-head attention (sinusoidal positions
are checked in :mod:`course.checks.lesson_05_positions`).

Written with the check kit (:mod:`course.checks.kit`). Inputs are float32 torch tensors; expected
answers come from :mod:`course.nn.attention`, which the test suite checks against
``torch.nn.functional.scaled_dot_product_attention`` and ``torch.nn.MultiheadAttention``. They are
computed in the comparison, after the student's function has run. Shapes are chosen so that the usual
mistakes show: Lq != Lk, d_v != d_k, batch dimensions of different ranks, masks that broadcast, a
padding mask, D != L and 1, 2 or 4 heads. No case has a fully masked row (what a query with nothing to
attend to should give is a convention, not part of these exercises). A shape error in the multi-head check that
comes from a mask without an axis for the heads is explained in the fail line (see
:func:`_prepare_multi_head_attention`).

Lesson: 05_attention_math
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from ..nn import attention as _att
from .kit import CheckFailure, Case, against, exercise, randn

LESSON = "05_attention_math"
TOL = dict(rtol=1e-4, atol=1e-5)
NEG_INF = float("-inf")


def _masked(scores, mask):
    return scores if mask is None else scores.masked_fill(~mask, NEG_INF)


def _random_mask(r: np.random.Generator, *shape: int) -> torch.Tensor:
    """A random bool mask in which every row (last axis) allows at least one key."""
    m = r.random(shape) < 0.6
    rows = m.reshape(-1, shape[-1])
    for row in rows:
        if not row.any():
            row[r.integers(shape[-1])] = True
    return torch.tensor(rows.reshape(shape))


# ---------------------------------------------------------------------------- stable_softmax
def reference_stable_softmax(x):
    """Softmax over the last axis (the course's :func:`course.nn.attention.stable_softmax`)."""
    return _att.stable_softmax(x, dim=-1)


def _softmax_naive(x):
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def _softmax_global_max(x):
    e = torch.exp(x - x.max())
    return e / e.sum(-1, keepdim=True)


def _softmax_minus_min(x):
    e = torch.exp(x - x.amin(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def _softmax_first_axis(x):
    e = torch.exp(x - x.amax(0, keepdim=True))
    return e / e.sum(0, keepdim=True)


SOFTMAX_MISTAKES = {
    _softmax_naive: "that is what exp(x) / sum exp(x) gives without subtracting anything: exp overflows "
                    "(or underflows to 0 / 0) for large logits",
    _softmax_global_max: "that is what subtracting one maximum for the whole tensor gives: a row far below it "
                         "underflows to 0 / 0",
    _softmax_minus_min: "that is what subtracting the minimum gives: the largest exponent can still overflow",
    _softmax_first_axis: "that is a softmax over the first axis; each row (the last axis) must sum to 1",
}


@exercise(compare=against(reference_stable_softmax, SOFTMAX_MISTAKES, **TOL),
          hint="softmax(z) = softmax(z - c) for any constant c of a row: choose c so that no exponent can overflow "
               "and at least one term of the sum is 1; work along the last axis only")
def stable_softmax(r):
    """Check ``stable_softmax(x) -> (..., n)``: the softmax over the last axis, without overflow."""
    cases = [Case("small logits, shape (3, 4)", randn(r, 3, 4)),
             Case("large logits: rows around +1000, -1000, and from -100 to 100",
                  torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1002.0], [-100.0, 0.0, 100.0]])),
             Case("one vector of 5", torch.tensor([0.5, -1.0, 2.0, 0.0, 80.0])),
             Case("a batch (2, 3, 4) of large logits", randn(r, 2, 3, 4, scale=60.0))]
    for i in range(3):
        shape = tuple(int(s) for s in r.integers(2, 6, size=int(r.integers(1, 4))))
        scale = float(r.choice([1.0, 10.0, 100.0]))
        cases.append(Case(f"random #{i + 1}, shape {shape}, scale {scale:g}", randn(r, *shape, scale=scale)))
    return cases


# ---------------------------------------------------------------------------- scaled_dot_product_attention
def reference_scaled_dot_product_attention(q, k, v, mask=None):
    """``softmax(q k^T / sqrt(d_k)) v`` with -inf where mask is False (:mod:`course.nn.attention`)."""
    return _att.scaled_dot_product_attention(q, k, v, mask)


def _sdpa_seed_formula(q, k, v, mask=None):
    d_k = q.shape[-1]
    weights = torch.softmax(_masked(q @ k.transpose(-2, -1) / d_k, mask), dim=-1)
    return (1.0 / math.sqrt(d_k)) * weights @ v


def _sdpa_unscaled(q, k, v, mask=None):
    return torch.softmax(_masked(q @ k.transpose(-2, -1), mask), dim=-1) @ v


def _sdpa_scaled_by_dv(q, k, v, mask=None):
    return torch.softmax(_masked(q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1]), mask), dim=-1) @ v


def _sdpa_wrong_axis(q, k, v, mask=None):
    return torch.softmax(_masked(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), mask), dim=-2) @ v


def _sdpa_mask_after_softmax(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return (weights if mask is None else weights * mask) @ v


def _sdpa_mask_inverted(q, k, v, mask=None):
    return torch.softmax(_masked(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]),
                                 None if mask is None else ~mask), dim=-1) @ v


def _sdpa_mask_zero(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores if mask is None else scores.masked_fill(~mask, 0.0), dim=-1) @ v


def _sdpa_mask_ignored(q, k, v, mask=None):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def _sdpa_divided_by_dk(q, k, v, mask=None):
    return torch.softmax(_masked(q @ k.transpose(-2, -1) / q.shape[-1], mask), dim=-1) @ v


SDPA_MISTAKES = {
    _sdpa_seed_formula: "that is what the formula of the find-the-bug section gives: scores divided by d_k and "
                        "the output by sqrt(d_k)",
    _sdpa_unscaled: "that is what unscaled scores give",
    _sdpa_divided_by_dk: "that is what dividing the scores by d_k gives; their spread grows like the square root "
                         "of d_k, which is what they are divided by",
    _sdpa_scaled_by_dv: "that divides by sqrt(d_v), the values' size; the scale belongs to the dot products, of size d_k",
    _sdpa_wrong_axis: "that is what a softmax over the queries' axis gives; each query's weights over the keys "
                      "must sum to 1",
    _sdpa_mask_after_softmax: "that is what applying the mask after the softmax gives: the rows no longer sum to 1, "
                              "and the kept weights still depend on the blocked keys",
    _sdpa_mask_inverted: "that is the mask read the other way round: here True means attending is allowed",
    _sdpa_mask_zero: "that is what setting the blocked scores to 0 gives: e^0 = 1, so the blocked keys still get "
                     "weight; a blocked score must give a weight of exactly 0",
    _sdpa_mask_ignored: "that is what ignoring the mask gives: every key gets weight, blocked or not",
}


@exercise(compare=against(reference_scaled_dot_product_attention, SDPA_MISTAKES, **TOL),
          hint="follow the formula term by term: dot products of queries with keys, divided by the square root of "
               "their size; blocked scores become -inf before the softmax, which runs over the keys' axis; then the "
               "weights multiply v")
def scaled_dot_product_attention(r):
    """Check ``scaled_dot_product_attention(q, k, v, mask=None) -> (..., Lq, d_v)``."""
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    lengths = torch.tensor([6, 4])
    padding = (torch.arange(6)[None, :] < lengths[:, None])[:, None, None, :]      # (2, 1, 1, 6)
    cases = [Case("Lq=3, Lk=5, d_k=4, d_v=2, no mask", randn(r, 3, 4), randn(r, 5, 4), randn(r, 5, 2)),
             Case("a batch of 2, d_k=8, d_v=3, a causal (5, 5) mask for the whole batch",
                  randn(r, 2, 5, 8), randn(r, 2, 5, 8), randn(r, 2, 5, 3), mask=causal),
             Case("batch 2 x 3 heads, Lq=4, Lk=6, a padding mask (2, 1, 1, 6): lengths 6 and 4",
                  randn(r, 2, 3, 4, 6), randn(r, 2, 3, 6, 6), randn(r, 2, 3, 6, 5), mask=padding),
             Case("q (2, 3, 4, 4) against shared k (5, 4) and v (5, 3)",
                  randn(r, 2, 3, 4, 4), randn(r, 5, 4), randn(r, 5, 3))]
    for i in range(3):
        lq, lk, d, dv = (int(x) for x in r.integers(2, 9, size=4))
        batch = tuple(int(s) for s in r.integers(1, 4, size=int(r.integers(0, 3))))
        mask = _random_mask(r, lq, lk) if r.random() < 0.5 else _random_mask(r, *batch, lq, lk)
        cases.append(Case(f"random #{i + 1} (batch {batch}, Lq={lq}, Lk={lk}, d_k={d}, d_v={dv}, a random mask)",
                          randn(r, *batch, lq, d), randn(r, *batch, lk, d), randn(r, *batch, lk, dv), mask=mask))
    return cases


# ---------------------------------------------------------------------------- causal_mask
def reference_causal_mask(n):
    """``(n, n)`` bool, True where j <= i (:func:`course.nn.attention.causal_mask`)."""
    return _att.causal_mask(n)


def _causal_upper(n):
    return torch.ones(n, n, dtype=torch.bool).triu()


def _causal_strict(n):
    return torch.ones(n, n, dtype=torch.bool).tril(-1)


def _causal_everything(n):
    return torch.ones(n, n, dtype=torch.bool)


CAUSAL_MISTAKES = {
    _causal_upper: "that is the transposed (upper-triangular) mask: query i would see the future keys j >= i",
    _causal_strict: "that is the strict mask j < i: a query must be allowed to attend to its own position",
    _causal_everything: "that allows every key: nothing is masked",
}


def _bool_tensor(got):
    """The answer if it is a bool torch tensor; a CheckFailure that says what it is otherwise."""
    if isinstance(got, np.ndarray):
        raise CheckFailure(f"your function returned a NumPy array (dtype {got.dtype}); return a torch tensor of "
                           "dtype torch.bool")
    if not isinstance(got, torch.Tensor):
        raise CheckFailure(f"your function returned {type(got).__name__}; return a torch tensor of dtype torch.bool")
    if got.dtype != torch.bool:
        kind = "a float" if got.is_floating_point() else "an int"
        raise CheckFailure(f"your function returned {kind} tensor ({got.dtype}); a mask is a bool tensor "
                           "(True where attending is allowed): ~mask and masked_fill need torch.bool")
    return got


@exercise(compare=against(reference_causal_mask, CAUSAL_MISTAKES, convert=_bool_tensor, rtol=0, atol=0),
          hint="row i is the query and column j the key; query i may look at itself and at everything before it; "
               "return a bool tensor")
def causal_mask(r):
    """Check ``causal_mask(n) -> (n, n)`` bool, True where query i may attend to key j (j <= i)."""
    cases = [Case("n=4", 4), Case("n=1", 1), Case("n=2", 2), Case("n=7", 7)]
    for i, n in enumerate(r.choice(np.arange(8, 65), size=3, replace=False)):
        cases.append(Case(f"random #{i + 1} (n={int(n)})", int(n)))
    return cases


# ---------------------------------------------------------------------------- multi_head_attention
def reference_multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    """:func:`course.nn.attention.multi_head_attention` (tested equal to ``torch.nn.MultiheadAttention``)."""
    return _att.multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask)


def _heads_mask(mask):
    return None if mask is None else mask.unsqueeze(-3)


def _mha_parts(x, w_q, w_k, w_v, n_heads, order="heads_first"):
    B, L, D = x.shape
    d = D // n_heads

    def split(t):
        if order == "heads_first":
            return t.reshape(B, L, n_heads, d).transpose(1, 2)            # (B, H, L, d)
        return t.reshape(B, L, d, n_heads).permute(0, 3, 1, 2)            # (B, H, L, d), wrong layout

    return split(x @ w_q), split(x @ w_k), split(x @ w_v)


def _mha_merge(out, order="heads_first"):
    B, H, L, d = out.shape
    if order == "heads_first":
        return out.transpose(1, 2).reshape(B, L, H * d)
    if order == "not_moved_back":
        return out.reshape(B, L, H * d)                                   # (B, H, L, d) read as (B, L, D): wrong
    return out.permute(0, 2, 3, 1).reshape(B, L, H * d)


def _mha(x, w_q, w_k, w_v, w_o, n_heads, mask=None, *, scale=None, order="heads_first", merge=None, project=True,
         axis=-1, use_mask=True):
    q, k, v = _mha_parts(x, w_q, w_k, w_v, n_heads, order)
    scale = math.sqrt(q.shape[-1]) if scale is None else scale
    weights = torch.softmax(_masked(q @ k.transpose(-2, -1) / scale, _heads_mask(mask) if use_mask else None),
                            dim=axis)
    out = _mha_merge(weights @ v, merge or order)
    return out @ w_o if project else out


def _mha_one_scale(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, scale=math.sqrt(x.shape[-1]))


def _mha_split_order(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, order="size_first")


def _mha_no_projection(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, project=False)


def _mha_weights_transposed(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q.T, w_k.T, w_v.T, w_o.T, n_heads, mask)


def _mha_wrong_axis(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, axis=-2)


def _mha_merged_without_moving_back(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, merge="not_moved_back")


def _mha_mask_ignored(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return _mha(x, w_q, w_k, w_v, w_o, n_heads, mask, use_mask=False)


def _prepare_multi_head_attention(func):
    """The student's function, called as it is; a RuntimeError that comes from a mask without an axis for the
    heads is explained (the usual one: a ``(B, 1, L)`` padding mask meets the ``(B, H, L, L)`` scores)."""
    if not callable(func):
        return func                               # the guard says what it is

    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RuntimeError:
            why = _heads_mask_problem(func, args, kwargs)
            if why is None:
                raise
            raise RuntimeError(why) from None

    return call


def _heads_mask_problem(func, args, kwargs):
    """What to say when the mask (B, L, L) or (B, 1, L) did not fit the (B, H, L, L) scores and the same call, given
    the mask with an axis for the heads, runs: None when that is not the problem."""
    if len(args) < 6 or not isinstance(args[0], torch.Tensor) or args[0].dim() != 3:
        return None
    mask = kwargs.get("mask", args[6] if len(args) > 6 else None)
    if not isinstance(mask, torch.Tensor):
        return None
    B, L, _ = args[0].shape
    scores = (B, int(args[5]), L, L)
    try:
        torch.broadcast_shapes(mask.shape, scores)
        return None                               # the mask fits the heads as it is: something else went wrong
    except RuntimeError:
        pass
    with_axis = mask.unsqueeze(-3)
    try:
        torch.broadcast_shapes(with_axis.shape, scores)
        again_args, again_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
        if "mask" in again_kwargs:
            again_kwargs["mask"] = with_axis
        else:
            again_args = (*again_args[:6], with_axis, *again_args[7:])
        func(*again_args, **again_kwargs)         # the same call with the axis added: does it run now?
    except Exception:  # noqa: BLE001 - it does not: the error was something else, and is reported as it is
        return None
    return (f"a mask {tuple(mask.shape)} does not broadcast to the heads' scores {scores} until it has an axis for "
            "the heads")


MHA_MISTAKES = {
    _mha_one_scale: "that is what one scale sqrt(D) for all heads gives; each head's dot products have D // n_heads "
                    "terms",
    _mha_split_order: "that is the last axis split as (D // n_heads, n_heads); head h owns the h-th block of "
                      "D // n_heads consecutive features",
    _mha_no_projection: "that is the concatenated heads without the output projection w_o",
    _mha_weights_transposed: "that is what x @ w.T gives; here each weight is applied as x @ w",
    _mha_wrong_axis: "that is what a softmax over the queries' axis gives; it runs over the keys",
    _mha_merged_without_moving_back: "that is the heads' outputs (B, n_heads, L, D // n_heads) reshaped to (B, L, D) "
                                     "without first moving the head axis back behind the length axis",
    _mha_mask_ignored: "that is what ignoring the mask gives: every key gets weight, blocked or not",
}


@exercise(compare=against(reference_multi_head_attention, MHA_MISTAKES, **TOL), prepare=_prepare_multi_head_attention,
          hint="project with x @ w; read the last axis as (n_heads, D // n_heads) and move the head axis in front of "
               "the length axis; every head is the scaled dot-product attention of its own size; then concatenate "
               "the heads back in order and project")
def multi_head_attention(r):
    """Check ``multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask=None) -> (B, L, D)``."""
    def weights(D):
        return [randn(r, D, D, scale=1.0 / math.sqrt(D)) for _ in range(4)]

    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    padding = (torch.arange(6)[None, :] < torch.tensor([6, 3, 5])[:, None])[:, None, :]     # (3, 1, 6)
    cases = [Case("B=2, L=5, D=8, 2 heads", randn(r, 2, 5, 8), *weights(8), 2),
             Case("B=1, L=3, D=16, 4 heads, a causal mask (3, 3)", randn(r, 1, 3, 16), *weights(16), 4,
                  mask=torch.ones(3, 3, dtype=torch.bool).tril()),
             Case("B=3, L=6, D=12, 2 heads, a padding mask (3, 1, 6)", randn(r, 3, 6, 12), *weights(12), 2,
                  mask=padding),
             Case("B=2, L=5, D=8, 4 heads, a causal mask (5, 5)", randn(r, 2, 5, 8), *weights(8), 4, mask=causal),
             Case("B=2, L=4, D=6, 1 head", randn(r, 2, 4, 6), *weights(6), 1)]
    for i in range(3):
        H = int(r.choice([1, 2, 4]))
        D = H * int(r.integers(2, 5))
        L = int(r.choice([n for n in range(2, 9) if n != D]))
        B = int(r.integers(1, 4))
        mask = _random_mask(r, L, L) if r.random() < 0.5 else None
        extra = {} if mask is None else {"mask": mask}
        cases.append(Case(f"random #{i + 1} (B={B}, L={L}, D={D}, {H} head{'s' if H > 1 else ''}"
                          f"{', a random mask' if extra else ''})", randn(r, B, L, D), *weights(D), H, **extra))
    return cases
