"""Lesson 05 checks: the reference solutions pass, and so do independently written ones; the stub and
known-wrong implementations fail, naming the mistake; the random cases change under grading."""
import math

import numpy as np
import pytest
import torch

from course.checks import exercises_of, lesson_05, load, pass_line
from exercise_helpers import contract_tests, peeking_cheat, run_check, seen_then_graded

NAMES = ["stable_softmax", "scaled_dot_product_attention", "causal_mask", "multi_head_attention",
         "sinusoidal_positions"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def stable_softmax(x):
    z = x - x.amax(dim=-1, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def causal_mask(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    d_head = D // n_heads

    def split(t):
        return t.reshape(B, L, n_heads, d_head).transpose(1, 2)

    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    if mask is not None:
        mask = mask.unsqueeze(-3)
    heads = scaled_dot_product_attention(q, k, v, mask)
    return heads.transpose(1, 2).reshape(B, L, D) @ w_o


def sinusoidal_positions(n_positions, d_model):
    p = torch.arange(n_positions, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = p / 10000 ** (i / d_model)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe


SOLUTIONS = {f.__name__: f for f in [stable_softmax, scaled_dot_product_attention, causal_mask, multi_head_attention,
                                     sinusoidal_positions]}


# ---------------------------------------------------------------- independently written correct versions
def softmax_by_logsumexp(x):
    return torch.exp(x - torch.logsumexp(x, dim=-1, keepdim=True))


def attention_by_einsum(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, -1e30))   # a large finite number works too
    return torch.einsum("...qk,...kd->...qd", softmax_by_logsumexp(scores), v)


def causal_by_comparison(n):
    i = torch.arange(n)
    return i[None, :] <= i[:, None]


def multi_head_by_loop(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    D = x.shape[-1]
    d = D // n_heads
    heads = []
    for h in range(n_heads):
        cols = slice(h * d, (h + 1) * d)
        heads.append(attention_by_einsum(x @ w_q[:, cols], x @ w_k[:, cols], x @ w_v[:, cols], mask))
    return torch.cat(heads, dim=-1) @ w_o


def sinusoid_by_loop(n_positions, d_model):
    pe = np.zeros((n_positions, d_model))
    for p in range(n_positions):
        for j in range(d_model):
            i = j // 2
            angle = p / 10000 ** (2 * i / d_model)
            pe[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return torch.tensor(pe, dtype=torch.float32)


INDEPENDENT = {"stable_softmax": softmax_by_logsumexp, "scaled_dot_product_attention": attention_by_einsum,
               "causal_mask": causal_by_comparison, "multi_head_attention": multi_head_by_loop,
               "sinusoidal_positions": sinusoid_by_loop}


# ---------------------------------------------------------------- plausible wrong implementations
def softmax_naive(x):
    return torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)


def softmax_global_max(x):
    e = torch.exp(x - x.max())
    return e / e.sum(-1, keepdim=True)


def softmax_minus_min(x):
    e = torch.exp(x - x.min(dim=-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def softmax_first_axis(x):
    return torch.softmax(x, dim=0)


def seed_formula(q, k, v, mask=None):       # the find-the-bug formula, with a proper mask
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / d_k
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return (1 / math.sqrt(d_k)) * torch.softmax(scores, dim=-1) @ v


def attention_unscaled(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_softmax_over_queries(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-2) @ v


def attention_mask_after_softmax(q, k, v, mask=None):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        w = w.masked_fill(~mask, 0.0)
    return w @ v


def attention_mask_inverted(q, k, v, mask=None):   # torch.nn.MultiheadAttention's convention
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_scaled_by_dv(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_mask_filled_with_zero(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    return torch.softmax(scores, dim=-1) @ v


def attention_mask_ignored(q, k, v, mask=None):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def attention_divided_by_d_k(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def causal_upper(n):
    return torch.triu(torch.ones(n, n, dtype=torch.bool))


def causal_strict(n):
    return torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)


def causal_float(n):
    return torch.tril(torch.ones(n, n))


def causal_int(n):
    return torch.tril(torch.ones(n, n, dtype=torch.long))


def causal_numpy(n):
    return np.tril(np.ones((n, n), dtype=bool))


def mha_one_scale(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    split = lambda t: t.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)   # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    if mask is not None:
        scores = scores.masked_fill(~mask.unsqueeze(-3), float("-inf"))
    return (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, L, D) @ w_o


def mha_split_size_first(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    split = lambda t: t.reshape(B, L, D // n_heads, n_heads).permute(0, 3, 1, 2)   # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    out = scaled_dot_product_attention(q, k, v, None if mask is None else mask.unsqueeze(-3))
    return out.permute(0, 2, 3, 1).reshape(B, L, D) @ w_o


def mha_no_output_projection(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    split = lambda t: t.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)   # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    out = scaled_dot_product_attention(q, k, v, None if mask is None else mask.unsqueeze(-3))
    return out.transpose(1, 2).reshape(B, L, D)


def mha_torch_layout(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return multi_head_attention(x, w_q.T, w_k.T, w_v.T, w_o.T, n_heads, mask)


def mha_merged_without_moving_the_heads_back(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    split = lambda t: t.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)   # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    out = scaled_dot_product_attention(q, k, v, None if mask is None else mask.unsqueeze(-3))
    return out.reshape(B, L, D) @ w_o                                           # (B, H, L, d) read as (B, L, D)


def mha_mask_without_a_heads_axis(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    B, L, D = x.shape
    split = lambda t: t.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)   # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    return scaled_dot_product_attention(q, k, v, mask).transpose(1, 2).reshape(B, L, D) @ w_o


def mha_mask_ignored(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
    return multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads)


def pe_sin_cos_swapped(n_positions, d_model):
    pe = sinusoidal_positions(n_positions, d_model)
    return pe.reshape(n_positions, -1, 2).flip(-1).reshape(n_positions, d_model)


def pe_exponent_i_over_d(n_positions, d_model):
    p = torch.arange(n_positions, dtype=torch.float32)[:, None]
    i = torch.arange(d_model // 2, dtype=torch.float32)
    angle = p / 10000 ** (i / d_model)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(n_positions, d_model)


def pe_concatenated(n_positions, d_model):
    p = torch.arange(n_positions, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = p / 10000 ** (i / d_model)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


def pe_column_exponent(n_positions, d_model):
    p = torch.arange(n_positions, dtype=torch.float32)[:, None]
    j = torch.arange(d_model, dtype=torch.float32)
    angle = p / 10000 ** (j / d_model)
    return torch.where(torch.arange(d_model) % 2 == 0, torch.sin(angle), torch.cos(angle))


def pe_positions_from_one(n_positions, d_model):
    return sinusoidal_positions(n_positions + 1, d_model)[1:]


def pe_multiplied_by_the_frequency_term(n_positions, d_model):
    p = torch.arange(n_positions, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = p * 10000 ** (i / d_model)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe


WRONG = {
    "stable_softmax": [softmax_naive, softmax_global_max, softmax_minus_min, softmax_first_axis],
    "scaled_dot_product_attention": [seed_formula, attention_unscaled, attention_softmax_over_queries,
                                     attention_mask_after_softmax, attention_mask_inverted, attention_scaled_by_dv,
                                     attention_mask_filled_with_zero, attention_mask_ignored, attention_divided_by_d_k],
    "causal_mask": [causal_upper, causal_strict, causal_float, causal_int, causal_numpy],
    "multi_head_attention": [mha_one_scale, mha_split_size_first, mha_no_output_projection, mha_torch_layout,
                             mha_merged_without_moving_the_heads_back, mha_mask_without_a_heads_axis,
                             mha_mask_ignored],
    "sinusoidal_positions": [pe_sin_cos_swapped, pe_exponent_i_over_d, pe_concatenated, pe_column_exponent,
                             pe_positions_from_one, pe_multiplied_by_the_frequency_term],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

# what the fail line says for a wrong answer the check can recognize (never the fix itself)
MESSAGES = {
    softmax_naive: "without subtracting anything",
    softmax_global_max: "one maximum for the whole tensor",
    softmax_minus_min: "subtracting the minimum",
    softmax_first_axis: "over the first axis",
    seed_formula: "the find-the-bug section",
    attention_unscaled: "unscaled scores",
    attention_softmax_over_queries: "over the queries' axis",
    attention_mask_after_softmax: "after the softmax gives: the rows no longer sum to 1, and the kept weights still "
                                  "depend on the blocked keys",
    attention_mask_inverted: "the other way round",
    attention_scaled_by_dv: "sqrt(d_v)",
    attention_mask_filled_with_zero: "setting the blocked scores to 0",
    attention_mask_ignored: "ignoring the mask",
    attention_divided_by_d_k: "dividing the scores by d_k gives",
    causal_upper: "upper-triangular",
    causal_strict: "strict mask j < i",
    causal_float: "a float tensor",
    causal_int: "an int tensor",
    causal_numpy: "NumPy array",
    mha_one_scale: "one scale sqrt(D)",
    mha_split_size_first: "(D // n_heads, n_heads)",
    mha_no_output_projection: "without the output projection",
    mha_torch_layout: "x @ w.T",
    mha_merged_without_moving_the_heads_back: "without first moving the head axis back",
    mha_mask_without_a_heads_axis: "a mask (3, 1, 6) does not broadcast to the heads' scores (3, 2, 6, 6) until it "
                                   "has an axis for the heads",
    mha_mask_ignored: "ignoring the mask",
    pe_sin_cos_swapped: "sin and cos swapped",
    pe_exponent_i_over_d: "the exponent i/d",
    pe_concatenated: "all the sines followed by all the cosines",
    pe_column_exponent: "column index",
    pe_positions_from_one: "counts positions from 1",
    pe_multiplied_by_the_frequency_term: "p times 10000^(2i/d)",
}


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)


@pytest.mark.parametrize("name", NAMES)
def test_an_independently_written_solution_passes(name):
    assert run_check(name, INDEPENDENT[name]) == pass_line(name)


def test_the_lesson_registers_its_exercises_in_notebook_order():
    assert [e.name for e in exercises_of("05_attention_math")] == NAMES


def test_a_function_that_changes_its_input_fails():
    def in_place(q, k, v, mask=None):
        q.div_(math.sqrt(q.shape[-1]))
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v

    assert "changed its input" in run_check("scaled_dot_product_attention", in_place)


def test_renormalising_after_the_softmax_passes():
    """Zeroing the blocked weights after the softmax and renormalising the rest equals masking first: correct."""
    def renormalised(q, k, v, mask=None):
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        if mask is not None:
            w = w * mask
            w = w / w.sum(-1, keepdim=True)
        return w @ v

    assert run_check("scaled_dot_product_attention", renormalised) == pass_line("scaled_dot_product_attention")


def test_a_shape_error_that_is_not_the_masks_is_reported_as_it_is():
    def broken(x, w_q, w_k, w_v, w_o, n_heads, mask=None):    # fails on any mask that is not (L, L)
        if mask is not None and mask.dim() > 2:
            raise RuntimeError("The size of tensor a (7) must match the size of tensor b (9)")
        return multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask)

    out = run_check("multi_head_attention", broken)
    assert "must match the size of tensor b (9)" in out and "axis for the heads" not in out, out


def test_the_seed_formula_is_the_right_one_times_a_constant_when_the_weights_are_uniform():
    """The find-the-bug formula: equal scores (so equal weights either way) leave only the factor 1/sqrt(d_k)."""
    q, k, v = torch.zeros(3, 16), torch.randn(5, 16), torch.randn(5, 2)
    torch.testing.assert_close(seed_formula(q, k, v), scaled_dot_product_attention(q, k, v) / 4)


def test_no_case_has_a_fully_masked_row_and_cases_have_mismatched_sizes():
    for c in lesson_05.scaled_dot_product_attention.cases():
        mask = c.kwargs.get("mask")
        if mask is not None:
            assert mask.dtype == torch.bool and mask.any(-1).all(), c.name
    shapes = [(c.args[0].shape, c.args[1].shape, c.args[2].shape) for c in lesson_05.scaled_dot_product_attention.cases()]
    assert any(q[-2] != k[-2] for q, k, _ in shapes) and any(v[-1] != k[-1] for _, k, v in shapes)
    assert len({len(q) for q, _, _ in shapes}) >= 3                 # batch dimensions of different ranks
    for c in lesson_05.multi_head_attention.cases():
        x, n_heads = c.args[0], c.args[5]
        assert x.shape[1] != x.shape[2] and n_heads in (1, 2, 4), c.name
        mask = c.kwargs.get("mask")
        assert mask is None or mask.any(-1).all(), c.name
    assert {c.args[5] for c in lesson_05.multi_head_attention.cases()} >= {1, 2, 4}


def _key(args) -> str:
    return repr([a.numpy().tobytes() if hasattr(a, "numpy") else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, load(name).cases, SOLUTIONS[name], _key,
                                               monkeypatch)
    assert len(graded) == len(seen)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(changed) >= 3
    out = run_check(name, memorized)
    assert out.startswith(f"FAIL {name}: case "), out
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_fail_lines_do_not_print_the_fix():
    for name, ws in WRONG.items():
        for w in ws:
            out = run_check(name, w)
            assert "tril" not in out and "masked_fill(~" not in out and "transpose(" not in out, out
