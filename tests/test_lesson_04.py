"""Lesson 04 checks: the reference solutions pass quickly; the stub and known-wrong implementations
fail; the random cases change under grading."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import check, metrics
from course.checks import exercises_of, lesson_04, pass_line
from course.nn import polyphonic
from exercise_helpers import contract_tests, run_check, seen_then_graded, stub

NAMES = ["bernoulli_nll_per_frame", "marginal_baseline_nll", "autoregressive_mask", "sample_frame_autoregressive"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def bernoulli_nll_per_frame(logits, rolls, mask):
    per_key = F.binary_cross_entropy_with_logits(logits, rolls, reduction="none")
    per_frame = per_key.sum(dim=-1)
    return (per_frame * mask).sum() / mask.sum()


def marginal_baseline_nll(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    test = np.concatenate(test_rolls).astype(float)
    p = (train.sum(axis=0) + smoothing) / (len(train) + 2 * smoothing)
    log_lik = test * np.log(p) + (1 - test) * np.log(1 - p)
    return -log_lik.sum(axis=1).mean()


def autoregressive_mask(n):
    return torch.tril(torch.ones(n, n), diagonal=-1)


def sample_frame_autoregressive(next_logit, n_keys, uniform):
    v = np.zeros(n_keys)
    for k in range(n_keys):
        p = 1 / (1 + math.exp(-next_logit(v[:k])))
        v[k] = 1.0 if uniform[k] < p else 0.0
    return v


SOLUTIONS = {"bernoulli_nll_per_frame": bernoulli_nll_per_frame, "marginal_baseline_nll": marginal_baseline_nll,
             "autoregressive_mask": autoregressive_mask, "sample_frame_autoregressive": sample_frame_autoregressive}


# ---------------------------------------------------------------- other right answers
def nll_with_a_loop(logits, rolls, mask):
    # written independently of the solution: a loop over the real frames, summing tensors (not .item())
    frame_costs = []
    for b in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            if mask[b, t]:
                frame_costs.append(F.binary_cross_entropy_with_logits(logits[b, t], rolls[b, t], reduction="sum"))
    return torch.stack(frame_costs).mean()


def nll_logsigmoid(logits, rolls, mask):
    ll = rolls * F.logsigmoid(logits) + (1 - rolls) * F.logsigmoid(-logits)
    return -(ll.sum(-1)[mask]).mean()


def mask_bool(n):
    return np.arange(n)[None, :] < np.arange(n)[:, None]


def sample_with_torch(next_logit, n_keys, uniform):
    v = torch.zeros(n_keys)
    for k in range(n_keys):
        p = torch.sigmoid(torch.tensor(next_logit(v[:k].numpy())))
        v[k] = (torch.tensor(uniform[k]) < p).float()
    return v


OTHER_RIGHT = {"bernoulli_nll_per_frame": [nll_with_a_loop, nll_logsigmoid],
               "autoregressive_mask": [mask_bool], "sample_frame_autoregressive": [sample_with_torch]}


# ---------------------------------------------------------------- known-wrong implementations
def nll_mean_over_keys(logits, rolls, mask):
    per_key = F.binary_cross_entropy_with_logits(logits, rolls, reduction="none")
    return per_key[mask].mean()


def nll_ignores_mask(logits, rolls, mask):
    return F.binary_cross_entropy_with_logits(logits, rolls, reduction="none").sum(-1).mean()


def nll_per_piece(logits, rolls, mask):
    per_frame = F.binary_cross_entropy_with_logits(logits, rolls, reduction="none").sum(-1)
    return (per_frame * mask).sum() / logits.shape[0]


def nll_naive_log(logits, rolls, mask):
    p = torch.sigmoid(logits)
    ll = rolls * torch.log(p) + (1 - rolls) * torch.log(1 - p)
    return -(ll.sum(-1) * mask).sum() / mask.sum()


def nll_sigmoid_twice(logits, rolls, mask):
    per_frame = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), rolls, reduction="none").sum(-1)
    return (per_frame * mask).sum() / mask.sum()


def nll_in_bits(logits, rolls, mask):
    return bernoulli_nll_per_frame(logits, rolls, mask) / math.log(2)


def nll_wrong_sign(logits, rolls, mask):
    return -bernoulli_nll_per_frame(logits, rolls, mask)


# right values, but no gradient reaches the logits: section 4's training would crash in backward()
def nll_returns_float(logits, rolls, mask):
    return float(bernoulli_nll_per_frame(logits, rolls, mask))


def nll_returns_item(logits, rolls, mask):
    return bernoulli_nll_per_frame(logits, rolls, mask).item()


def nll_detached(logits, rolls, mask):
    return bernoulli_nll_per_frame(logits.detach(), rolls, mask)


def nll_new_leaf_tensor(logits, rolls, mask):
    return torch.tensor(float(bernoulli_nll_per_frame(logits, rolls, mask)), requires_grad=True)


def nll_in_numpy(logits, rolls, mask):
    z = logits.detach().numpy().astype(np.float64)
    v, m = rolls.numpy().astype(np.float64), mask.numpy()
    per_frame = (np.logaddexp(0, z) - v * z).sum(-1)        # softplus(z) - v z, the BCE from logits
    return per_frame[m].mean()                             # a NumPy float64, no gradient


def marginal_no_smoothing(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    test = np.concatenate(test_rolls).astype(float)
    p = train.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(test * np.log(p) + (1 - test) * np.log(1 - p)).sum(axis=1).mean()


def marginal_clipped_instead_of_smoothed(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    test = np.concatenate(test_rolls).astype(float)
    p = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    return -(test * np.log(p) + (1 - test) * np.log(1 - p)).sum(axis=1).mean()


def marginal_per_piece(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    p = (train.sum(axis=0) + smoothing) / (len(train) + 2 * smoothing)
    per_piece = [-(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(axis=1).mean() for t in test_rolls]
    return float(np.mean(per_piece))


def marginal_numerator_only(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    test = np.concatenate(test_rolls).astype(float)
    p = (train.sum(axis=0) + smoothing) / (len(train) + smoothing)
    p = np.minimum(p, 1 - 1e-9)
    return -(test * np.log(p) + (1 - test) * np.log(1 - p)).sum(axis=1).mean()


def marginal_from_test(train_rolls, test_rolls, smoothing=1.0):
    return marginal_baseline_nll(test_rolls, test_rolls, smoothing)


def marginal_only_sounding_keys(train_rolls, test_rolls, smoothing=1.0):
    train = np.concatenate(train_rolls).astype(float)
    test = np.concatenate(test_rolls).astype(float)
    p = (train.sum(axis=0) + smoothing) / (len(train) + 2 * smoothing)
    return -(test * np.log(p)).sum(axis=1).mean()


def marginal_fixed_smoothing(train_rolls, test_rolls, smoothing=1.0):
    return marginal_baseline_nll(train_rolls, test_rolls, 1.0)


def mask_with_diagonal(n):
    return torch.tril(torch.ones(n, n))


def mask_transposed(n):
    return torch.triu(torch.ones(n, n), diagonal=1)


def mask_all_ones(n):
    return torch.ones(n, n)


def mask_off_by_one(n):
    return torch.tril(torch.ones(n, n), diagonal=-2)


def sample_without_feedback(next_logit, n_keys, uniform):
    v = np.zeros(n_keys)
    for k in range(n_keys):
        p = 1 / (1 + math.exp(-next_logit(np.zeros(k))))
        v[k] = float(uniform[k] < p)
    return v


def sample_all_from_empty_prefix(next_logit, n_keys, uniform):
    p = 1 / (1 + math.exp(-next_logit(np.zeros(0))))
    return (np.asarray(uniform) < p).astype(float)


def sample_inverted(next_logit, n_keys, uniform):
    v = np.zeros(n_keys)
    for k in range(n_keys):
        p = 1 / (1 + math.exp(-next_logit(v[:k])))
        v[k] = float(uniform[k] > p)
    return v


def sample_includes_current_key(next_logit, n_keys, uniform):
    v = np.zeros(n_keys)
    for k in range(n_keys):
        p = 1 / (1 + math.exp(-next_logit(v[:k + 1])))
        v[k] = float(uniform[k] < p)
    return v


def sample_returns_probabilities(next_logit, n_keys, uniform):
    v, probs = np.zeros(n_keys), np.zeros(n_keys)
    for k in range(n_keys):
        probs[k] = 1 / (1 + math.exp(-next_logit(v[:k])))
        v[k] = float(uniform[k] < probs[k])
    return probs


def sample_logit_as_probability(next_logit, n_keys, uniform):
    v = np.zeros(n_keys)
    for k in range(n_keys):
        v[k] = float(uniform[k] < next_logit(v[:k]))
    return v


WRONG = {
    "bernoulli_nll_per_frame": [nll_mean_over_keys, nll_ignores_mask, nll_per_piece, nll_naive_log,
                                nll_sigmoid_twice, nll_in_bits, nll_wrong_sign, nll_returns_float,
                                nll_returns_item, nll_detached, nll_new_leaf_tensor, nll_in_numpy],
    "marginal_baseline_nll": [marginal_no_smoothing, marginal_clipped_instead_of_smoothed, marginal_per_piece,
                              marginal_numerator_only, marginal_from_test, marginal_only_sounding_keys,
                              marginal_fixed_smoothing],
    "autoregressive_mask": [mask_with_diagonal, mask_transposed, mask_all_ones, mask_off_by_one],
    "sample_frame_autoregressive": [sample_without_feedback, sample_all_from_empty_prefix, sample_inverted,
                                    sample_includes_current_key, sample_returns_probabilities,
                                    sample_logit_as_probability],
}

# what the fail line should point at, for the wrong answers whose mistake the check can name
EXPECTED_MESSAGE = {
    nll_mean_over_keys: "sum over the keys",
    nll_naive_log: "log of 0",
    nll_returns_float: "number (float), not a tensor",
    nll_returns_item: "number (float), not a tensor",
    nll_detached: "detached from the logits",
    nll_new_leaf_tensor: "detached from the logits",
    nll_in_numpy: "not a tensor",
    mask_with_diagonal: "diagonal must be 0",
    mask_transposed: "transposed",
    sample_includes_current_key: "pass only v[:k]",
    sample_returns_probabilities: "only 0 and 1",
}


def test_the_lesson_registers_its_exercises_under_unique_names():
    assert [e.name for e in exercises_of("04_polyphonic_chorales")] == NAMES


@pytest.mark.parametrize("name, right", [(n, f) for n, fs in OTHER_RIGHT.items() for f in fs],
                         ids=[f.__name__ for fs in OTHER_RIGHT.values() for f in fs])
def test_other_right_answers_pass(name, right):
    assert run_check(name, right) == pass_line(name)


def test_the_reference_implementations_pass():
    # metrics.nll_per_frame reports a float, for evaluation; the exercise's answer must stay a tensor that trains
    assert "not a tensor" in run_check("bernoulli_nll_per_frame", metrics.nll_per_frame)
    assert run_check("marginal_baseline_nll", metrics.marginal_nll) == pass_line("marginal_baseline_nll")
    assert run_check("autoregressive_mask", polyphonic.autoregressive_mask) == pass_line("autoregressive_mask")
    assert run_check("sample_frame_autoregressive",
                     polyphonic.sample_frame_autoregressive) == pass_line("sample_frame_autoregressive")


def test_fail_lines_do_not_print_whole_answers():
    out = run_check("autoregressive_mask", mask_off_by_one)
    assert "[[" not in out and len(out) < 400


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    def key(args):
        parts = []
        for a in args:
            if torch.is_tensor(a):
                parts.append(a.detach().numpy().tobytes())
            elif isinstance(a, list):
                parts.append(b"".join(np.asarray(x).tobytes() for x in a))
            elif isinstance(a, np.ndarray):
                parts.append(a.tobytes())
            elif hasattr(a, "b"):
                parts.append(a.b.tobytes() + a.W.tobytes())
            else:
                parts.append(repr(a))
        return repr(parts)

    _, _, memorized = seen_then_graded(name, getattr(lesson_04, name).cases, SOLUTIONS[name], key, monkeypatch)
    assert run_check(name, memorized).startswith(f"FAIL {name}: case ")
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_checks_do_not_change_the_global_random_state():
    torch.manual_seed(5)
    np.random.seed(5)
    a, b = torch.rand(2), np.random.rand(2)
    torch.manual_seed(5)
    np.random.seed(5)
    for name in NAMES:
        run_check(name, SOLUTIONS[name])
    assert torch.equal(torch.rand(2), a) and np.array_equal(np.random.rand(2), b)


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=EXPECTED_MESSAGE)


# ---------------------------------------------------------------- the stored outputs of the solution notebook
def _stored_text(repo_root, marker):
    """The stored stdout of the one code cell of solutions/04 whose source contains ``marker``."""
    import json

    nb = json.loads((repo_root / "solutions" / "04_polyphonic_chorales.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(cells) == 1, f"expected one cell printing {marker!r}, found {len(cells)}"
    return "".join("".join(o.get("text", "")) for o in cells[0].get("outputs", []) if o.get("name") == "stdout")


def test_stored_final_nlls_of_both_models_beat_the_stored_floor(repo_root):
    import re

    text = _stored_text(repo_root, "test NLL in nats per frame: per-key marginal floor")
    found = re.search(r"per-key marginal floor ([\d.]+), PolyLSTM ([\d.]+), PolyNADE ([\d.]+)", text)
    assert found, f"no stored NLL line in: {text!r}"
    floor, lstm, nade = map(float, found.groups())
    assert 12 < floor < 14                                 # the marginal of the course's chorales: 12.73
    assert lstm < floor and nade < floor                   # every model must beat the floor
    assert nade < lstm - 1.0                               # the prose: within-frame keys gain more than a nat
