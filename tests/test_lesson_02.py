"""Lesson 02 checks: the reference solutions pass; the stub and known-wrong implementations fail;
the random cases change under grading."""


import numpy as np
import pytest
import torch

from course import check
from course.checks import exercises_of, lesson_02, pass_line
from course.checks.guard import run_cases
from course.checks.kit import Case, needs_case_compare, close
from exercise_helpers import contract_tests, peeking_cheat, run_check, seen_then_graded, stub

NAMES = ["rnn_cell_step", "fixed_rnn_step", "rnn_jacobian", "lstm_cell_step", "gru_cell_step"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def rnn_cell_step(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh.T + b)


def fixed_rnn_step(x, h, W_h, b_h):
    return torch.tanh(torch.cat([h, x], dim=-1) @ W_h.T + b_h)


def rnn_jacobian(h_new, W_hh):
    return torch.diag(1 - h_new ** 2) @ W_hh


def lstm_cell_step(x, h, c, W_ih, W_hh, b):
    i, f, g, o = (x @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new


def gru_cell_step(x, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


SOLUTIONS = {f.__name__: f for f in [rnn_cell_step, fixed_rnn_step, rnn_jacobian, lstm_cell_step, gru_cell_step]}


# ---------------------------------------------------------------- plausible wrong implementations
def rnn_no_transpose(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh + b)                 # W_hh used as (in, out)


def rnn_sigmoid(x, h, W_xh, W_hh, b):
    return torch.sigmoid(x @ W_xh.T + h @ W_hh.T + b)


def rnn_bias_outside(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh.T) + b


def fixed_the_circulated_bug(x, h, W_h, b_h):
    return torch.sigmoid(torch.cat([h, x], dim=-1) @ W_h.T) + b_h   # the form shown in the lesson


def fixed_bias_still_outside(x, h, W_h, b_h):
    return torch.tanh(torch.cat([h, x], dim=-1) @ W_h.T) + b_h


def fixed_concat_order_swapped(x, h, W_h, b_h):
    return torch.tanh(torch.cat([x, h], dim=-1) @ W_h.T + b_h)    # [x, h]: x meets h's weights


def fixed_sigmoid_inside(x, h, W_h, b_h):
    return torch.sigmoid(torch.cat([h, x], dim=-1) @ W_h.T + b_h)


def jacobian_columns_scaled(h_new, W_hh):
    return W_hh @ torch.diag(1 - h_new ** 2)                      # diag on the wrong side


def jacobian_without_tanh_derivative(h_new, W_hh):
    return W_hh.clone()


def jacobian_wrong_derivative(h_new, W_hh):
    return torch.diag(1 - h_new) @ W_hh


def lstm_gate_order_ifog(x, h, c, W_ih, W_hh, b):
    i, f, o, g = (x @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def lstm_no_tanh_on_cell(x, h, c, W_ih, W_hh, b):
    i, f, g, o = (x @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * c_new, c_new


def lstm_no_input_gate(x, h, c, W_ih, W_hh, b):
    i, f, g, o = (x @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def gru_reset_before_matmul(x, h, W_ih, W_hh, b_ih, b_hh):
    # the original paper's form: r multiplies h before W_hn (not what torch computes)
    H = h.shape[-1]
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, _ = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h


def gru_update_swapped(x, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return z * n + (1 - z) * h


def gru_bias_outside_reset(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[-1]
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * (h_n - b_hh[2 * H:]) + b_hh[2 * H:])
    return (1 - z) * n + z * h


def lstm_returns_only_h(x, h, c, W_ih, W_hh, b):
    return lstm_cell_step(x, h, c, W_ih, W_hh, b)[0]


def lstm_pair_swapped(x, h, c, W_ih, W_hh, b):
    h_new, c_new = lstm_cell_step(x, h, c, W_ih, W_hh, b)
    return c_new, h_new


def gru_output_transposed(x, h, W_ih, W_hh, b_ih, b_hh):
    return gru_cell_step(x, h, W_ih, W_hh, b_ih, b_hh).T


WRONG = {
    "rnn_cell_step": [rnn_no_transpose, rnn_sigmoid, rnn_bias_outside],
    "fixed_rnn_step": [fixed_the_circulated_bug, fixed_bias_still_outside, fixed_concat_order_swapped,
                       fixed_sigmoid_inside],
    "rnn_jacobian": [jacobian_columns_scaled, jacobian_without_tanh_derivative, jacobian_wrong_derivative],
    "lstm_cell_step": [lstm_gate_order_ifog, lstm_no_tanh_on_cell, lstm_no_input_gate, lstm_returns_only_h,
                       lstm_pair_swapped],
    "gru_cell_step": [gru_reset_before_matmul, gru_update_swapped, gru_bias_outside_reset, gru_output_transposed],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

# what the fail line says for a wrong answer the check can recognize (never the fix itself)
MESSAGES = {
    rnn_no_transpose: "not transposed",
    rnn_sigmoid: "logistic sigmoid",
    rnn_bias_outside: "adding b after the nonlinearity",
    fixed_the_circulated_bug: "the circulated formula, unchanged",
    fixed_bias_still_outside: "still outside the nonlinearity",
    fixed_concat_order_swapped: "the order [x, h]",
    fixed_sigmoid_inside: "logistic sigmoid",
    jacobian_columns_scaled: "scale the columns",
    jacobian_without_tanh_derivative: "slope of the tanh is missing",
    jacobian_wrong_derivative: "is not 1 - h",
    lstm_gate_order_ifog: "torch's order is i, f, g, o",
    lstm_no_tanh_on_cell: "through a tanh",
    lstm_no_input_gate: "without the input gate",
    lstm_returns_only_h: "return the pair (h_new, c_new)",
    lstm_pair_swapped: "(c_new, h_new)",
    gru_reset_before_matmul: "the paper's form",
    gru_update_swapped: "the other way round",
    gru_bias_outside_reset: "outside the reset gate",
    gru_output_transposed: "wrong shape",
}


def test_the_lesson_registers_its_exercises_under_unique_names():
    assert [e.name for e in exercises_of("02_rnn_from_scratch")] == NAMES


def test_a_function_that_changes_its_input_fails():
    def in_place(x, h, W_xh, W_hh, b):
        h.mul_(0)
        return torch.tanh(x @ W_xh.T + b)

    assert "changed its input" in run_check("rnn_cell_step", in_place)


def test_the_circulated_form_and_the_fix_differ_only_by_where_the_bias_goes():
    case = lesson_02.fixed_rnn_step.cases()[0]
    x, h, W_h, b_h = case.args
    fixed = fixed_rnn_step(*case.args)
    torch.testing.assert_close(fixed, torch.tanh(torch.cat([h, x], -1) @ W_h.T + b_h))
    # the concatenated weights are [W_hh | W_xh]: the fix is the lesson's rnn_cell_step
    H = h.shape[-1]
    torch.testing.assert_close(fixed, rnn_cell_step(x, h, W_h[:, H:], W_h[:, :H], b_h))


def test_jacobian_reference_matches_autograd():
    torch.manual_seed(0)
    H, D = 5, 3
    W_xh, W_hh, b, x = torch.randn(H, D), torch.randn(H, H), torch.randn(H), torch.randn(D)
    h = torch.randn(H)
    step = lambda h_prev: torch.tanh(W_xh @ x + W_hh @ h_prev + b)
    J = torch.autograd.functional.jacobian(step, h)
    torch.testing.assert_close(lesson_02.reference_rnn_jacobian(step(h), W_hh), J)


@pytest.mark.parametrize("name", NAMES)
def test_a_cheat_that_reads_the_checks_stack_fails(name):
    cheat = peeking_cheat(name)
    ex = getattr(lesson_02, name)
    cases = ex.cases()

    # the cheat is real: a check that prepared its answers before calling it would pass it
    def run_prepared(case):
        expected = SOLUTIONS[name](*case.args)
        return run_cases(name, cheat, [Case(case.name, *case.args)],
                         compare=lambda got, *args: close(got, expected), print_line=False)

    assert all(run_prepared(c) for c in cases)
    # the lesson's checks compute each answer only after the student's function has returned
    assert all(getattr(c, "expected", None) is None and (c.compare or ex.compare) is not needs_case_compare
               for c in cases)
    out = run_check(name, cheat)
    assert out.startswith(f"FAIL {name}: case '") and "None" in out, out


def test_a_wrong_answer_is_named_but_the_fix_is_not_printed():
    out = run_check("lstm_cell_step", lstm_returns_only_h)
    assert "[0]" not in out and "wrong shape" not in out, out
    out = run_check("lstm_cell_step", lstm_no_tanh_on_cell)
    assert "of h_new" in out, out
    for name, ws in WRONG.items():
        for w in ws:
            out = run_check(name, w)
            assert "@" not in out and ".T" not in out and "diag(" not in out, out


def test_lstm_and_gru_cases_have_batch_size_different_from_hidden_size():
    for name in ["lstm_cell_step", "gru_cell_step"]:
        for c in getattr(lesson_02, name).cases():
            assert c.args[0].shape[0] != c.args[1].shape[-1], (name, c.name)


def _key(args) -> str:
    return repr([a.numpy().tobytes() if hasattr(a, "numpy") else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, getattr(lesson_02, name).cases, SOLUTIONS[name], _key,
                                               monkeypatch)
    assert [c.name for c in graded] != [] and len(graded) == len(seen)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(changed) >= 4
    out = run_check(name, memorized)
    assert out.startswith(f"FAIL {name}: case "), out
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_cases_use_inputs_where_mixups_show():
    for name in ["rnn_cell_step", "fixed_rnn_step", "lstm_cell_step", "gru_cell_step"]:
        for c in getattr(lesson_02, name).cases():
            x, h = c.args[0], c.args[1]
            assert x.shape[-1] != h.shape[-1], (name, c.name)
            assert x.dtype == torch.float32
    assert np.isfinite([float(lesson_02.reference_rnn_jacobian(*c.args).abs().max())
                        for c in lesson_02.rnn_jacobian.cases()]).all()


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)
