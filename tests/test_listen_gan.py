"""course.listen.gan: plot_samples draws 1-D and 2-D samples; LiveSamples records snapshots as a
train_gan callback and draws only in a notebook (or when asked)."""
import numpy as np
import pytest
import torch

from course import listen
from course.errors import CourseError
from course.nn import gan, toy_gan

torch.set_num_threads(1)


def test_plot_samples_in_one_and_two_dimensions():
    fig, ax = listen.plot_samples(np.random.default_rng(0).normal(size=200), torch.randn(100, 1), title="line")
    assert ax.get_title() == "line" and len(ax.patches) > 0          # two histograms
    fig, ax = listen.plot_samples(np.zeros((50, 2)), np.ones((30, 2)), lim=(-3, 3))
    assert ax.get_xlim() == (-3.0, 3.0) and len(ax.collections) == 2  # two point clouds
    with pytest.raises(CourseError):
        listen.plot_samples(np.zeros((5, 2)), np.zeros((5, 1)))
    with pytest.raises(CourseError):
        listen.plot_samples(np.zeros((5, 3)), np.zeros((5, 3)))


def test_live_samples_records_snapshots_during_training_without_drawing_outside_a_notebook():
    ring = toy_gan.ring_of_gaussians()
    config = toy_gan.ToyConfig(data_dim=2, noise_dim=2, hidden=16, layers=1)
    live = listen.LiveSamples(ring.sample(200), n=50)
    gan.train_gan(toy_gan.ToyGenerator(config), toy_gan.ToyCritic(config), ring,
                  gan.GANConfig(steps=6, callback_every=2, progress=False), device=torch.device("cpu"), callbacks=[live])
    assert [s for s, _ in live.snapshots] == [2, 4, 6] and live.snapshots[0][1].shape == (50, 2)
    assert live.draws == 0 and "3 snapshots" in repr(live)


def test_live_samples_draws_when_asked(monkeypatch):
    shown = []
    live = listen.LiveSamples(np.zeros((20, 1)), n=10, display=True, interval=0)
    monkeypatch.setattr(live, "draw", lambda: shown.append(live.snapshots[-1][0]))
    gen = toy_gan.ToyGenerator(toy_gan.ToyConfig(data_dim=1, hidden=8, layers=1))
    live.update(1, gen)
    live.update(2, gen)
    assert shown == [1, 2]


def test_live_samples_refuses_bad_input():
    with pytest.raises(CourseError):
        listen.LiveSamples(np.zeros((5, 2)), n=0)
    live = listen.LiveSamples(np.zeros((5, 2)))
    with pytest.raises(CourseError, match="sample"):
        live.update(1, torch.nn.Linear(2, 2))
