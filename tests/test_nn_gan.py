"""course.nn.gan and course.nn.toy_gan: the losses against torch's BCE and hand formulas; D* and the JS
identity on discrete distributions; the gradient penalty against a hand computation; the training loop
(seeded, deterministic, reaches modes of the ring in seconds); toy data and mode counting; bad input."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon

from course.errors import CourseError
from course.nn import gan, toy_gan

torch.set_num_threads(1)


def logits(*shape, seed=0, scale=2.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ losses
def test_discriminator_loss_is_bce_with_logits_and_minus_v():
    real, fake = logits(7, seed=1), logits(4, 1, seed=2)
    by_torch = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    V = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(gan.discriminator_loss(real, fake), by_torch)
    torch.testing.assert_close(gan.discriminator_loss(real, fake), -V)


def test_generator_losses_match_their_formulas_and_their_gradients():
    fake = logits(9, seed=3).requires_grad_(True)
    torch.testing.assert_close(gan.generator_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    torch.testing.assert_close(gan.saturating_generator_loss(fake), torch.log(1 - torch.sigmoid(fake)).mean())
    d = torch.sigmoid(fake).detach()
    (g_ns,) = torch.autograd.grad(gan.generator_loss(fake) * 9, fake)
    (g_sat,) = torch.autograd.grad(gan.saturating_generator_loss(fake) * 9, fake)
    torch.testing.assert_close(g_ns, -(1 - d))
    torch.testing.assert_close(g_sat, -d)


def test_losses_stay_finite_for_extreme_logits():
    x = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(gan.generator_loss(x)) and torch.isfinite(gan.saturating_generator_loss(x))
    assert torch.isfinite(gan.discriminator_loss(x, x))
    assert float(gan.generator_loss(torch.tensor([-120.0]))) == pytest.approx(120.0)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5, 1.0])
    assert float(gan.critic_loss(real, fake)) == pytest.approx(1 / 3 - 2.0)
    assert float(gan.critic_generator_loss(fake)) == pytest.approx(-1 / 3)


def test_losses_refuse_bad_input():
    with pytest.raises(CourseError):
        gan.discriminator_loss([1.0], torch.tensor([0.0]))
    with pytest.raises(CourseError):
        gan.generator_loss(torch.tensor([], dtype=torch.float32))
    with pytest.raises(CourseError):
        gan.generator_loss(torch.tensor([1, 2]))


# ------------------------------------------------------------------------------------ D* and JS
def _two_distributions(seed=0, n=50):
    r = np.random.default_rng(seed)
    p, q = r.random(n) * (r.random(n) > 0.3), r.random(n) * (r.random(n) > 0.3)
    p[:3], q[:3] = 0.0, 0.0
    return p / p.sum(), q / q.sum()


def test_optimal_discriminator_formula_and_the_empty_points():
    p, q = np.array([0.2, 0.0, 0.0, 0.5]), np.array([0.2, 0.3, 0.0, 0.0])
    np.testing.assert_allclose(gan.optimal_discriminator(p, q), [0.5, 0.0, 0.5, 1.0])
    before = p.copy()
    gan.optimal_discriminator(p, q)
    np.testing.assert_array_equal(p, before)                  # the input is left alone


def test_optimal_discriminator_maximizes_the_value():
    p, q = _two_distributions(1)
    d_star = gan.optimal_discriminator(p, q)
    best = gan.gan_value(p, q, d_star)
    r = np.random.default_rng(2)
    for _ in range(20):
        other = np.clip(d_star + r.normal(0, 0.05, size=d_star.shape), 1e-6, 1 - 1e-6)
        assert gan.gan_value(p, q, other) < best


def test_value_at_the_optimum_is_two_js_minus_log_4():
    for seed in range(3):
        p, q = _two_distributions(seed)
        value = gan.gan_value(p, q, gan.optimal_discriminator(p, q))
        js = gan.js_divergence(p, q)
        assert value == pytest.approx(2 * js - math.log(4), abs=1e-12)
        assert js == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-12)


def test_js_limits():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    assert gan.js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    assert gan.js_divergence(p, p[::-1]) == pytest.approx(math.log(2))
    assert gan.js_divergence([2, 2, 0, 0], p) == pytest.approx(0.0, abs=1e-15)     # counts are normalized
    assert gan.gan_value(p, p, gan.optimal_discriminator(p, p)) == pytest.approx(-math.log(4))


def test_theory_functions_refuse_bad_input():
    with pytest.raises(CourseError):
        gan.optimal_discriminator([0.1, -0.2], [0.1, 0.2])
    with pytest.raises(CourseError):
        gan.optimal_discriminator([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(CourseError):
        gan.js_divergence([0, 0], [1, 1])
    with pytest.raises(CourseError):
        gan.gan_value([0.5, 0.5], [0.5, 0.5], [0.5, 1.5])


# ------------------------------------------------------------------------------------ gradient penalty
def _critic(seed=0, d_in=6):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d_in, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _by_hand(critic, real, fake, alpha):
    terms = []
    for i in range(len(real)):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        terms.append((g.pow(2).sum().sqrt() - 1) ** 2)
    return torch.stack(terms).mean()


def test_gradient_penalty_matches_a_hand_computation_per_sample():
    critic = _critic()
    g = torch.Generator().manual_seed(1)
    real, fake, alpha = torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g), torch.rand(4, generator=g)
    ours, theirs = gan.gradient_penalty(critic, real, fake, alpha), _by_hand(critic, real, fake, alpha)
    torch.testing.assert_close(ours, theirs)
    params = list(critic.parameters())
    for a, b in zip(torch.autograd.grad(ours, params, allow_unused=True),
                    torch.autograd.grad(theirs, params, allow_unused=True)):
        if a is None or b is None:
            assert a is None and b is None          # the last bias does not change the input gradient
        else:
            torch.testing.assert_close(a, b)


def test_one_alpha_per_sample_and_the_end_points():
    critic = _critic(2)
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(3, 2, 3, generator=g), torch.randn(3, 2, 3, generator=g)
    at_real = gan.gradient_penalty(critic, real, fake, torch.ones(3))
    at_fake = gan.gradient_penalty(critic, real, fake, torch.zeros(3))
    torch.testing.assert_close(at_real, _by_hand(critic, real, real, torch.ones(3)))
    torch.testing.assert_close(at_fake, _by_hand(critic, fake, fake, torch.ones(3)))
    # one sample's alpha changes only that sample's term
    alpha = torch.tensor([0.3, 0.6, 0.9])
    moved = alpha.clone()
    moved[0] = 0.1
    single = lambda a, i: gan.gradient_penalty(critic, real[i:i + 1], fake[i:i + 1], a[i:i + 1])
    for i in (1, 2):
        torch.testing.assert_close(single(alpha, i), single(moved, i))


def test_a_linear_critic_has_penalty_norm_minus_one_squared():
    w = torch.tensor([3.0, 4.0])
    g = torch.Generator().manual_seed(0)
    real, fake, alpha = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g), torch.rand(6, generator=g)
    assert float(gan.gradient_penalty(lambda x: x @ w, real, fake, alpha)) == pytest.approx(16.0)


def test_the_penalty_trains_the_critic_toward_unit_gradient_norm():
    critic = toy_gan.ToyCritic(toy_gan.ToyConfig(data_dim=2, hidden=32, layers=2), seed=0)
    g = torch.Generator().manual_seed(0)
    real, fake, alpha = 2 * torch.randn(128, 2, generator=g), torch.randn(128, 2, generator=g), torch.rand(128, generator=g)
    x_hat = (alpha[:, None] * real + (1 - alpha[:, None]) * fake).requires_grad_(True)

    def distance_from_one():
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
        return float((grad.norm(dim=1) - 1).abs().mean())

    before = distance_from_one()
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    for _ in range(100):
        loss = gan.gradient_penalty(critic, real, fake, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert distance_from_one() < 0.3 * before


def test_gradient_penalty_leaves_its_inputs_alone_and_refuses_bad_shapes():
    critic = _critic()
    real, fake, alpha = torch.randn(3, 2, 3), torch.randn(3, 2, 3), torch.rand(3)
    copies = [real.clone(), fake.clone(), alpha.clone()]
    gan.gradient_penalty(critic, real, fake, alpha)
    for a, b in zip((real, fake, alpha), copies):
        assert torch.equal(a, b) and not a.requires_grad
    with pytest.raises(CourseError, match="one mixing weight per sample"):
        gan.gradient_penalty(critic, real, fake, torch.rand(3, 1))
    with pytest.raises(CourseError, match="same shape"):
        gan.gradient_penalty(critic, real, fake[:2], alpha)
    with pytest.raises(CourseError):
        gan.gradient_penalty(critic, torch.randn(3), torch.randn(3), alpha)


# ------------------------------------------------------------------------------------ training
RING = toy_gan.ring_of_gaussians(modes=8, radius=2.0, std=0.05)
PLANE = toy_gan.ToyConfig(data_dim=2, noise_dim=8, hidden=64, layers=2)


def _trained(config, steps, callbacks=()):
    G, D = toy_gan.ToyGenerator(PLANE, seed=0), toy_gan.ToyCritic(PLANE, seed=1)
    hist = gan.train_gan(G, D, RING, replace(config, steps=steps, progress=False), device=torch.device("cpu"),
                         callbacks=callbacks)
    return G, D, hist


def test_train_gan_is_seeded_and_reaches_modes_of_the_ring_in_seconds():
    tracker = toy_gan.ModeTracker(RING)
    config = gan.GANConfig(lr=1e-3, callback_every=25)
    G, D, hist = _trained(config, 300, [tracker])
    assert hist.seconds < 30 and len(hist.steps) == 300 and hist.device == "cpu"
    assert tracker.steps == list(range(25, 301, 25))
    assert max(tracker.covered) >= 1                          # samples sit on a mode (within 3 std) at some check
    radius = float(G.sample(2000).norm(dim=1).mean())
    assert 1.5 < radius < 3.0                                 # it left the origin for the ring of radius 2
    G2, D2, hist2 = _trained(config, 300)
    assert hist2.d_loss == hist.d_loss and hist2.g_loss == hist.g_loss
    for a, b in zip(G.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(a, b)


def test_train_gan_wgan_gp_runs_records_the_penalty_and_calls_callbacks():
    calls = []

    class Recorder:
        def update(self, step, generator, losses):
            calls.append((step, set(losses)))

        def finish(self):
            calls.append("finished")

    config = gan.GANConfig.wgan_gp(lr=5e-4, callback_every=10)
    assert (config.critic_steps, config.gp_weight, config.betas) == (5, 10.0, (0.5, 0.9))
    assert gan.GANConfig.wgan_gp().lr == 1e-4
    _, _, hist = _trained(config, 25, [Recorder()])
    assert [c[0] for c in calls[:-1]] == [10, 20, 25] and calls[-1] == "finished"
    assert calls[0][1] == {"d_loss", "g_loss", "penalty"}
    assert all(math.isfinite(p) and p >= 0 for p in hist.penalty)


def test_train_gan_takes_a_tensor_of_real_samples():
    x = RING.sample(500, seed=0)
    G, D = toy_gan.ToyGenerator(PLANE, seed=0), toy_gan.ToyCritic(PLANE, seed=1)
    hist = gan.train_gan(G, D, x, gan.GANConfig(steps=5, progress=False), device=torch.device("cpu"))
    assert len(hist.d_loss) == 5


def test_train_gan_refuses_bad_input():
    G, D = toy_gan.ToyGenerator(PLANE), toy_gan.ToyCritic(PLANE)
    cpu = torch.device("cpu")
    with pytest.raises(CourseError, match="loss must be one of"):
        gan.train_gan(G, D, RING, gan.GANConfig(loss="lsgan", progress=False), device=cpu)
    with pytest.raises(CourseError, match="critic_steps"):
        gan.train_gan(G, D, RING, gan.GANConfig(critic_steps=0, progress=False), device=cpu)
    with pytest.raises(CourseError, match="must match"):
        gan.train_gan(G, D, toy_gan.mixture_1d(), gan.GANConfig(steps=1, progress=False), device=cpu)
    with pytest.raises(CourseError, match="noise_dim"):
        gan.train_gan(torch.nn.Linear(2, 2), D, RING, gan.GANConfig(steps=1, progress=False), device=cpu)
    with pytest.raises(CourseError, match="batch norm"):
        bn_critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
        gan.train_gan(G, bn_critic, RING, gan.GANConfig.wgan_gp(steps=1, progress=False), device=cpu)
    with pytest.raises(CourseError, match="real must be"):
        gan.train_gan(G, D, [1, 2, 3], gan.GANConfig(steps=1, progress=False), device=cpu)


# ------------------------------------------------------------------------------------ toys
def test_mixtures_are_seeded_and_have_the_right_density():
    line = toy_gan.mixture_1d(centers=(-1.0, 2.0), std=0.5)
    assert torch.equal(line.sample(100, seed=3), line.sample(100, seed=3))
    assert not torch.equal(line.sample(100, seed=3), line.sample(100, seed=4))
    xs = np.linspace(-6, 8, 20001)
    assert np.trapezoid(line.density(xs), xs) == pytest.approx(1.0, abs=1e-6)
    x = line.sample(20000, seed=0).numpy()[:, 0]
    assert abs(x.mean() - 0.5) < 0.05 and abs(x.std() - math.sqrt(0.25 + 2.25)) < 0.05
    ring = toy_gan.ring_of_gaussians(modes=8, radius=2.0, std=0.02)
    np.testing.assert_allclose(np.linalg.norm(ring.centers, axis=1), 2.0)
    with pytest.raises(CourseError):
        toy_gan.ring_of_gaussians(modes=0)


def test_mode_counting():
    centers = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    samples = np.concatenate([np.zeros((90, 2)), np.full((9, 2), [5.0, 0.1]), [[0.5, 4.0]]])
    np.testing.assert_allclose(toy_gan.mode_shares(samples, centers, radius=0.5), [0.9, 0.09, 0.0])
    np.testing.assert_allclose(toy_gan.mode_shares(samples, centers), [0.9, 0.09, 0.01])
    assert toy_gan.modes_covered(samples, centers, radius=0.5) == 2
    assert toy_gan.modes_covered(samples, centers, radius=0.5, min_share=0.1) == 1
    with pytest.raises(CourseError):
        toy_gan.mode_shares(np.zeros((3, 3)), centers, radius=1.0)


def test_mode_tracker_counts_a_perfect_and_a_collapsed_generator():
    class Fixed:
        def __init__(self, x):
            self.x = x

        def sample(self, n, seed=0):
            return self.x[:n]

    ring = toy_gan.ring_of_gaussians(std=0.05)
    tracker = toy_gan.ModeTracker(ring, n=2000)
    tracker.update(1, Fixed(ring.sample(2000, seed=0)))
    collapsed = torch.as_tensor(ring.centers[3]) + 0.05 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    tracker.update(2, Fixed(collapsed.float()))
    assert tracker.covered == [8, 1] and tracker.reached == [8, 1]
    assert tracker.near[0] > 0.95 and tracker.near[1] > 0.95


def test_dequantized_pitches_round_trip():
    pitches = np.array([60, 62, 64, 64, 67, 72], dtype=np.int64)
    dq = toy_gan.Dequantized(pitches)
    x = dq(5000, torch.Generator().manual_seed(0))
    assert x.shape == (5000, 1) and x.dtype == torch.float32
    decoded = dq.decode(x)
    assert set(decoded.tolist()) == set(pitches.tolist())
    assert abs(float(x.mean())) < 0.05
    assert dq.decode(np.array([100.0, -100.0])).tolist() == [72, 60]    # clipped to the data's range
    with pytest.raises(CourseError):
        toy_gan.Dequantized(np.array([60.5, 61.0]))


def test_toy_models_are_seeded_and_shaped():
    a, b = toy_gan.ToyGenerator(PLANE, seed=4), toy_gan.ToyGenerator(PLANE, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.sample(7).shape == (7, 2) and torch.equal(a.sample(7, seed=1), b.sample(7, seed=1))
    assert toy_gan.ToyCritic(PLANE)(torch.zeros(5, 2)).shape == (5,)
    with pytest.raises(CourseError):
        toy_gan.ToyConfig(hidden=0)
