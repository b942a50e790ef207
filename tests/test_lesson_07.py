"""Lesson 07 checks: the reference solutions and independently written correct ones pass; the stub and
known-wrong implementations fail, naming the mistake; the random cases change under grading."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course.checks import exercises_of, lesson_07, lesson_07_penalty, load, pass_line
from course.checks.env import SEED
from exercise_helpers import also_correct_test, contract_tests, peeking_cheat, run_check, seen_then_graded

torch.set_num_threads(1)

NAMES = ["discriminator_loss", "generator_loss", "optimal_discriminator", "gradient_penalty"]


# ---------------------------------------------------------------- the solutions (as in the notebook)
def discriminator_loss(real_logits, fake_logits):
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term


def generator_loss(fake_logits):
    return -F.logsigmoid(fake_logits).mean()


def optimal_discriminator(p_data, p_g):
    total = p_data + p_g
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, p_data / safe, 0.5)


def gradient_penalty(critic, real, fake, alpha):
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    norms = grad.flatten(start_dim=1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


SOLUTIONS = {f.__name__: f for f in [discriminator_loss, generator_loss, optimal_discriminator, gradient_penalty]}


# ---------------------------------------------------------------- correct, written another way
def discriminator_loss_by_logsigmoid(real_logits, fake_logits):
    # log(1 - sigmoid(x)) = logsigmoid(-x)
    return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()


def discriminator_loss_with_bce_helper(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def d_bce_on_probabilities(real_logits, fake_logits):       # right in exact arithmetic, wrong for a fooled D
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))


def generator_loss_by_softplus(fake_logits):
    return F.softplus(-fake_logits).mean()          # -log sigmoid(x) = log(1 + e^-x)


def generator_loss_as_bce(fake_logits):
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def optimal_discriminator_in_torch(p_data, p_g):
    p, q = torch.as_tensor(p_data), torch.as_tensor(p_g)
    return torch.where(p + q > 0, p / (p + q).clamp_min(1e-300), torch.full_like(p, 0.5))


def optimal_discriminator_with_divide(p_data, p_g):
    total = p_data + p_g
    return np.divide(p_data, total, out=np.full(total.shape, 0.5), where=total != 0)


def gradient_penalty_sample_by_sample(critic, real, fake, alpha):
    terms = []
    for i in range(real.shape[0]):
        x = (alpha[i] * real[i:i + 1] + (1 - alpha[i]) * fake[i:i + 1]).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        terms.append((torch.sqrt((g ** 2).sum()) - 1) ** 2)
    return torch.stack(terms).mean()


def gradient_penalty_with_linalg(critic, real, fake, alpha):
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    x_hat = torch.lerp(fake, real, alpha.view(shape)).requires_grad_()     # fake + alpha * (real - fake)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), [x_hat], create_graph=True)
    return (torch.linalg.vector_norm(grad, dim=tuple(range(1, grad.dim()))) - 1).pow(2).mean()


ALSO_CORRECT = {
    "discriminator_loss": [discriminator_loss_by_logsigmoid, discriminator_loss_with_bce_helper],
    "generator_loss": [generator_loss_by_softplus, generator_loss_as_bce],
    "optimal_discriminator": [optimal_discriminator_in_torch, optimal_discriminator_with_divide],
    "gradient_penalty": [gradient_penalty_sample_by_sample, gradient_penalty_with_linalg],
}


# ---------------------------------------------------------------- plausible wrong implementations
def bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def d_labels_swapped(real_logits, fake_logits):
    return bce(real_logits, 0.0) + bce(fake_logits, 1.0)


def d_sigmoid_twice(real_logits, fake_logits):
    return bce(torch.sigmoid(real_logits), 1.0) + bce(torch.sigmoid(fake_logits), 0.0)


def d_sum_not_mean(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="sum")
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="sum"))


def d_one_mean_over_both_batches(real_logits, fake_logits):
    logits = torch.cat([real_logits.flatten(), fake_logits.flatten()])
    labels = torch.cat([torch.ones(real_logits.numel()), torch.zeros(fake_logits.numel())])
    return F.binary_cross_entropy_with_logits(logits, labels)


def d_averaged_halves(real_logits, fake_logits):
    return (bce(real_logits, 1.0) + bce(fake_logits, 0.0)) / 2


def d_value_not_loss(real_logits, fake_logits):
    return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()


def d_returns_item(real_logits, fake_logits):
    return (bce(real_logits, 1.0) + bce(fake_logits, 0.0)).item()


def g_saturating(fake_logits):
    return torch.log(1 - torch.sigmoid(fake_logits)).mean()


def g_fake_labelled_0(fake_logits):
    return bce(fake_logits, 0.0)


def g_sigmoid_twice(fake_logits):
    return bce(torch.sigmoid(fake_logits), 1.0)


def g_sum_not_mean(fake_logits):
    return -F.logsigmoid(fake_logits).sum()


def g_minus_sign_missing(fake_logits):
    return torch.log(torch.sigmoid(fake_logits)).mean()


def g_detached(fake_logits):
    return -F.logsigmoid(fake_logits.detach()).mean()


def dstar_swapped(p_data, p_g):
    return optimal_discriminator(p_g, p_data)


def dstar_nan_where_both_zero(p_data, p_g):
    with np.errstate(invalid="ignore"):
        return p_data / (p_data + p_g)


def dstar_zero_where_both_zero(p_data, p_g):
    total = p_data + p_g
    return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.0)


def dstar_density_ratio(p_data, p_g):
    with np.errstate(divide="ignore", invalid="ignore"):
        return p_data / p_g


def dstar_epsilon_fudge(p_data, p_g):
    return p_data / (p_data + p_g + 1e-3)          # 0 where both are 0, and off everywhere else


def _input_grad(critic, x, create_graph=True):
    x = x.detach().requires_grad_(True)
    out = critic(x)
    return torch.autograd.grad(out, x, torch.ones_like(out), create_graph=create_graph)[0]


def _mix(alpha, real, fake):
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    return a * real + (1 - a) * fake


def gp_alpha_broadcast_over_last_dim(critic, real, fake, alpha):
    g = _input_grad(critic, alpha * real + (1 - alpha) * fake)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_own_alpha_per_element(critic, real, fake, alpha):
    a = torch.rand(real.shape, generator=torch.Generator().manual_seed(0))   # one alpha per entry, not per sample
    g = _input_grad(critic, a * real + (1 - a) * fake)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_norm_over_dim_1(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake))
    return ((g.norm(2, dim=1) - 1) ** 2).mean()


def gp_at_real_points_only(critic, real, fake, alpha):
    g = _input_grad(critic, real)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_squared_norm(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake))
    return (g.flatten(1).norm(dim=1) ** 2).mean()


def gp_without_create_graph(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake), create_graph=False)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_mix_swapped(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, fake, real))
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_times_lambda(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake))
    return 10 * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_sum_over_batch(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake))
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).sum()


def d_log_of_sigmoid(real_logits, fake_logits):              # unstable: log(sigmoid) of a confident logit
    return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()


def g_log_of_sigmoid(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits)).mean()


def gp_one_alpha_for_the_batch(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha[:1].expand_as(alpha), real, fake))
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


def gp_one_sided(critic, real, fake, alpha):
    g = _input_grad(critic, _mix(alpha, real, fake))
    return (torch.clamp(g.flatten(1).norm(dim=1) - 1, min=0) ** 2).mean()


WRONG = {
    "discriminator_loss": [d_log_of_sigmoid, d_bce_on_probabilities, d_labels_swapped, d_sigmoid_twice, d_sum_not_mean, d_one_mean_over_both_batches,
                           d_averaged_halves, d_value_not_loss, d_returns_item],
    "generator_loss": [g_log_of_sigmoid, g_saturating, g_fake_labelled_0, g_sigmoid_twice, g_sum_not_mean, g_minus_sign_missing,
                       g_detached],
    "optimal_discriminator": [dstar_swapped, dstar_nan_where_both_zero, dstar_zero_where_both_zero,
                              dstar_density_ratio, dstar_epsilon_fudge],
    "gradient_penalty": [gp_alpha_broadcast_over_last_dim, gp_own_alpha_per_element, gp_norm_over_dim_1,
                         gp_at_real_points_only, gp_squared_norm, gp_without_create_graph, gp_mix_swapped,
                         gp_times_lambda, gp_sum_over_batch, gp_one_alpha_for_the_batch, gp_one_sided],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

MESSAGES = {
    d_labels_swapped: "swapped labels",
    d_sigmoid_twice: "sigmoid applied twice",
    d_sum_not_mean: "the sum over each batch",
    d_one_mean_over_both_batches: "one mean over the concatenated batch",
    d_averaged_halves: "half the loss",
    d_value_not_loss: "V(D, G) itself",
    d_returns_item: "Python number",
    g_saturating: "saturating minimax loss",
    g_fake_labelled_0: "swapped labels",
    g_sigmoid_twice: "sigmoid applied twice",
    g_sum_not_mean: "the sum over the batch",
    g_minus_sign_missing: "sign is flipped",
    g_detached: "cut off from the logits",
    dstar_swapped: "p_g / (p_data + p_g)",
    dstar_nan_where_both_zero: "0 / 0 is NaN",
    dstar_zero_where_both_zero: "not 0",
    dstar_density_ratio: "density ratio",
    gp_alpha_broadcast_over_last_dim: "alpha varies inside a sample",
    gp_norm_over_dim_1: "norm over dimension 1 only",
    gp_at_real_points_only: "R1-like",
    gp_squared_norm: "mean squared norm",
    gp_without_create_graph: "create_graph=True",
    gp_mix_swapped: "alpha * fake + (1 - alpha) * real",
    gp_times_lambda: "lambda (10)",
    gp_sum_over_batch: "the sum over the batch",
    d_log_of_sigmoid: "log(sigmoid(...)) computed as written",
    g_log_of_sigmoid: "log(sigmoid(...)) computed as written",
    gp_one_alpha_for_the_batch: "one alpha for the whole batch",
    gp_one_sided: "one-sided penalty",
}


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)


test_a_correct_answer_written_another_way_passes = also_correct_test(ALSO_CORRECT)


def test_the_lesson_registers_its_exercises_in_order():
    assert [e.name for e in exercises_of("07_gan_fundamentals")] == NAMES


def test_a_function_that_changes_its_input_fails():
    def scales_real_in_place(critic, real, fake, alpha):
        real.mul_(alpha.reshape(-1, *([1] * (real.dim() - 1))))
        return gradient_penalty(critic, real, fake, torch.ones_like(alpha))

    assert "changed its input" in run_check("gradient_penalty", scales_real_in_place)

    def halves_logits(real_logits, fake_logits):
        with torch.no_grad():
            real_logits.mul_(0.5)
        return discriminator_loss(real_logits, fake_logits)

    assert "changed its input" in run_check("discriminator_loss", halves_logits)


def test_a_penalty_that_trains_the_critic_itself_fails():
    def takes_a_step(critic, real, fake, alpha):
        gp = gradient_penalty(critic, real, fake, alpha)
        with torch.no_grad():
            for p in critic.parameters():
                p.mul_(0.5)
        return gp

    assert "changed the critic's weights" in run_check("gradient_penalty", takes_a_step)


def test_a_penalty_with_the_right_value_but_a_wrong_gradient_fails():
    def constant_plus_a_graph(critic, real, fake, alpha):
        value = gp_without_create_graph(critic, real, fake, alpha)
        return value + 0 * critic(real).sum()           # carries a gradient, but the wrong one (zero)

    out = run_check("gradient_penalty", constant_plus_a_graph)
    assert out.startswith("FAIL gradient_penalty: case '") and "gradient with respect to the critic" in out, out


def test_loss_cases_have_batches_of_different_sizes():
    for c in lesson_07.discriminator_loss.cases():
        real, fake = c.args
        assert real.numel() != fake.numel(), c.name
        torch.testing.assert_close(d_one_mean_over_both_batches(real, fake) != discriminator_loss(real, fake),
                                   torch.tensor(True))


def test_penalty_cases_show_the_shape_mistakes():
    cases = lesson_07_penalty.gradient_penalty.cases()
    assert all(c.args[1].dim() >= 2 and c.args[3].shape == (c.args[1].shape[0],) for c in cases)
    assert sum(c.args[1].dim() > 2 for c in cases) >= 4
    assert any(c.args[1].dim() > 2 and c.args[1].shape[-1] == c.args[1].shape[0] for c in cases)
    for c in cases:
        spec = c.args[0]
        critic = lesson_07_penalty._critic(spec)
        assert not any(isinstance(m, torch.nn.ReLU) for m in critic.modules())
        value, grads = lesson_07_penalty.reference_gradient_penalty(*c.args)
        assert float(value) > 1e-3                       # the norms are not all 1 already
        assert sum(float(g.abs().sum()) for g in grads) > 1e-4   # second derivatives are not zero


def _key(args) -> str:
    def flat(x):
        if torch.is_tensor(x):
            return x.detach().numpy().tobytes()
        if isinstance(x, np.ndarray):
            return x.tobytes()
        if isinstance(x, dict):
            return {k: flat(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [flat(v) for v in x]
        return x
    return repr(flat(list(args)))


@pytest.mark.parametrize("name", ["discriminator_loss", "generator_loss", "optimal_discriminator"])
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, load(name).cases, SOLUTIONS[name], _key, monkeypatch)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(graded) == len(seen) and len(changed) >= 3
    out = run_check(name, memorized)
    assert out.startswith(f"FAIL {name}: case "), out
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_grading_seed_changes_the_penalty_cases(monkeypatch):
    """The critics and inputs change under grading; memorized values could not pass anyway, since the
    answer must also carry the right gradient to the critic the check builds for each call."""
    monkeypatch.delenv(SEED, raising=False)
    seen = lesson_07_penalty.gradient_penalty.cases()
    answers = {_key(c.args[1:]): gradient_penalty(lesson_07_penalty._critic(c.args[0]), *c.args[1:]) for c in seen}

    def memorized(critic, real, fake, alpha):
        return answers.get(_key((real, fake, alpha)))

    assert "gradient with respect to the critic" in run_check("gradient_penalty", memorized)
    monkeypatch.setenv(SEED, "grading-2024")
    graded = lesson_07_penalty.gradient_penalty.cases()
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(graded) == len(seen) and len(changed) == len(seen)    # the fixed cases' critics are drawn too
    assert run_check("gradient_penalty", gradient_penalty) == pass_line("gradient_penalty")
