"""Lesson 08's bar data, bar GAN, conditional training with checkpoints, and its pictures."""
import numpy as np
import pytest
import torch

from course import CourseError, data, listen
from course.data.bars import KEY_PROFILES, estimate_key
from course.nn import bargan, gan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- data
def test_bars_start_on_downbeats_and_fit_the_range():
    per_piece = data.bars("chorales", "valid")
    assert per_piece and all(b.shape[1:] == (16, data.BAR_HIGH - data.BAR_LOW + 1) for b in per_piece)
    everything = np.concatenate(per_piece)
    onsets = np.diff(np.concatenate([np.zeros_like(everything[:, :1]), everything], 1).astype(int), axis=1) > 0
    per_step = onsets.sum((0, 2))
    assert per_step[[0, 4, 8, 12]].min() > 3 * per_step[[1, 3, 5, 7, 9, 11, 13, 15]].max()   # beats, not offbeats
    three_four = data.bars("chorales", "valid", time_signature=(3, 4))
    assert all(b.shape[1] == 12 for b in three_four)


def test_bars_are_in_c_major_or_a_minor_unless_asked_not_to():
    def c_major_share(per_piece, low):
        roll = np.concatenate(per_piece).reshape(-1, per_piece[0].shape[2])
        pcs = (np.arange(roll.shape[1]) + low) % 12
        in_c = np.isin(pcs, [0, 2, 4, 5, 7, 9, 11])
        return roll[:, in_c].sum() / roll.sum()

    assert c_major_share(data.bars("chorales", "test"), data.BAR_LOW) > 0.9
    raw = data.bars("chorales", "test", to_c=False, low=21, high=108)
    assert c_major_share(raw, 21) < 0.85


def test_estimate_key_on_scales_and_transpositions():
    roll = np.zeros((8, 128))
    for t, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72]):
        roll[t, p] = 1
    roll[:, [60, 64, 67]] = 1                                      # a C major chord held under the scale
    assert estimate_key(roll) == (0, "major")
    assert estimate_key(np.roll(roll, 3, axis=1)) == (3, "major")
    minor = np.zeros((4, 128))
    minor[:, [57, 60, 64]] = 1                                     # A minor triad, A doubled
    minor[:2, 57] = 2
    assert estimate_key(minor) == (9, "minor")
    assert len(KEY_PROFILES["major"]) == 12
    with pytest.raises(CourseError, match="non-silent"):
        estimate_key(np.zeros((4, 128)))


def test_bar_pairs_pair_each_bar_with_the_one_before():
    a = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    b = 100 + np.arange(2 * 2 * 2).reshape(2, 2, 2)
    prev, cur = data.bar_pairs([a, b])
    assert len(prev) == len(cur) == 5
    assert (prev[0] == 0).all() and (cur[0] == a[0]).all() and (prev[1] == a[0]).all() and (cur[2] == a[2]).all()
    assert (prev[3] == 0).all() and (cur[3] == b[0]).all() and (prev[4] == b[0]).all()
    prev, cur = data.bar_pairs([a], start_from_silence=False)
    assert len(prev) == 2 and (prev[0] == a[0]).all()
    with pytest.raises(CourseError):
        data.bar_pairs([])


# ---------------------------------------------------------------- models
def small():
    return bargan.BarGANConfig(n_pitches=12, steps=8, noise_dim=4, width=8)


def test_shapes_probabilities_and_errors():
    c = small()
    g, d = bargan.BarGenerator(c), bargan.BarCritic(c)
    prev = torch.zeros(5, 8, 12)
    out = g(torch.randn(5, 4), prev)
    assert out.shape == (5, 8, 12) and ((out > 0) & (out < 1)).all()
    assert d(out, prev).shape == (5,)
    with pytest.raises(CourseError, match=r"\(B, 8, 12\)"):
        g(torch.randn(5, 4), torch.zeros(5, 12, 8))
    with pytest.raises(CourseError, match="z must be"):
        g(torch.randn(4, 4), prev)
    with pytest.raises(CourseError, match="multiple of 4"):
        bargan.BarGenerator(n_pitches=12, steps=6)


def test_the_generator_reads_both_the_noise_and_the_previous_bar():
    torch.manual_seed(0)
    g = bargan.BarGenerator(small()).eval()
    z = torch.randn(1, 4)
    prev = (torch.rand(1, 8, 12) > 0.7).float()
    base = g(z, prev)
    assert (g(torch.randn(1, 4), prev) - base).abs().max() > 1e-4
    assert (g(z, 1 - prev) - base).abs().max() > 1e-4


def test_minibatch_std_sees_a_collapsed_batch():
    layer = bargan.MinibatchStd()
    same = torch.ones(4, 3, 5)
    varied = torch.randn(4, 3, 5)
    assert layer(same).shape == (4, 4, 5) and layer(same)[:, -1].abs().max() < 1e-3
    assert layer(varied)[:, -1].min() > 0.1


def test_pair_sampler_transposes_within_the_roll():
    prev = np.zeros((2, 4, 6), np.uint8)
    cur = np.zeros((2, 4, 6), np.uint8)
    cur[0, :, 1] = 1                                   # pitch 1: shifts down by at most 1
    cur[1, :, 4] = 1                                   # pitch 4: shifts up by at most 1
    real = bargan.pair_sampler(prev, cur, transpose=(-3, 3))
    seen = set()
    for seed in range(40):
        bars, before = real(8, torch.Generator().manual_seed(seed))
        assert bars.shape == before.shape == (8, 4, 6) and (before == 0).all()
        assert (bars.sum((1, 2)) == 4).all()           # nothing lost off the edges
        seen |= {int(k) for k in bars.amax(1).argmax(1)}
    assert seen == {0, 1, 2, 3, 4, 5}
    fixed, _ = bargan.pair_sampler(prev, cur)(8, torch.Generator().manual_seed(0))
    assert set(fixed.amax(1).argmax(1).tolist()) <= {1, 4}
    with pytest.raises(CourseError):
        bargan.pair_sampler(prev, cur[:1])


def test_generate_phrase_chains_bars_from_silence_or_an_opening():
    torch.manual_seed(0)
    g = bargan.BarGenerator(small())
    one = bargan.generate_phrase(g, 3, seed=1)
    assert one.shape == (3, 8, 12) and one.dtype == np.uint8 and set(np.unique(one)) <= {0, 1}
    assert np.array_equal(one, bargan.generate_phrase(g, 3, seed=1))
    opening = np.zeros((8, 12))
    opening[:, 3] = 1
    many = bargan.generate_phrase(g, 4, first=opening, seed=2, n=5)
    assert many.shape == (5, 4, 8, 12) and (many[:, 0] == opening).all()
    with pytest.raises(CourseError, match="n_bars"):
        bargan.generate_phrase(g, 0)
    with pytest.raises(CourseError, match="first must be one bar"):
        bargan.generate_phrase(g, 2, first=np.zeros((4, 12)))


# ---------------------------------------------------------------- conditional training and checkpoints
def _toy_pairs():
    rng = np.random.default_rng(0)
    prev = (rng.random((32, 8, 12)) > 0.8).astype(np.uint8)
    return prev, np.roll(prev, 2, axis=2)                  # the next bar: the previous one two keys up


@pytest.mark.parametrize("loss", ["gan", "wgan-gp"])
def test_conditional_training_runs_and_resumes_exactly(loss, tmp_path):
    prev, cur = _toy_pairs()
    make = lambda: (bargan.BarGenerator(small()), bargan.BarCritic(small()))   # noqa: E731
    base = gan.GANConfig(loss=loss, steps=6, batch_size=8, progress=False, seed=3, critic_steps=2)
    torch.manual_seed(0)
    g1, d1 = make()
    gan.train_gan(g1, d1, bargan.pair_sampler(prev, cur), base, device="cpu")
    ckpt = tmp_path / "bar.pt"
    torch.manual_seed(0)
    g2, d2 = make()
    first = gan.train_gan(g2, d2, bargan.pair_sampler(prev, cur),
                          gan.GANConfig(**{**base.__dict__, "steps": 4, "checkpoint": str(ckpt), "checkpoint_every": 2}),
                          device="cpu")
    assert ckpt.exists() and len(first.steps) == 4
    torch.manual_seed(123)                                     # other weights: the checkpoint must replace them
    g3, d3 = make()
    hist = gan.train_gan(g3, d3, bargan.pair_sampler(prev, cur),
                         gan.GANConfig(**{**base.__dict__, "checkpoint": str(ckpt), "checkpoint_every": 2}), device="cpu")
    assert hist.steps == list(range(1, 7))
    for a, b in zip(g1.state_dict().values(), g3.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_a_damaged_checkpoint_or_a_bad_condition_is_a_clear_error(tmp_path):
    prev, cur = _toy_pairs()
    g, d = bargan.BarGenerator(small()), bargan.BarCritic(small())
    ckpt = tmp_path / "bad.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CourseError, match="Delete it to start afresh"):
        gan.train_gan(g, d, bargan.pair_sampler(prev, cur),
                      gan.GANConfig(steps=2, batch_size=4, progress=False, checkpoint=str(ckpt)), device="cpu")
    three = lambda n, generator: (torch.zeros(n, 8, 12), torch.zeros(n, 8, 12), torch.zeros(n))   # noqa: E731
    with pytest.raises(CourseError, match="two tensors"):
        gan.train_gan(g, d, three, gan.GANConfig(steps=1, batch_size=4, progress=False), device="cpu")


# ---------------------------------------------------------------- pictures
def test_live_bars_records_and_the_scrubber_shows_each_snapshot():
    torch.manual_seed(0)
    g = bargan.BarGenerator(small())
    live = listen.LiveBars(lambda b: float(np.mean(b)), 0.1, low=60, metric_name="density", n=3, n_bars=2,
                           display=False)
    prev, cur = _toy_pairs()
    gan.train_gan(g, bargan.BarCritic(small()), bargan.pair_sampler(prev, cur),
                  gan.GANConfig(steps=4, batch_size=4, progress=False, callback_every=2), device="cpu", callbacks=[live])
    assert live.steps == [2, 4] and len(live.snapshots) == 2 and live.snapshots[0][1].shape == (2, 8, 12)
    assert live.figure() is not None
    scrub = live.scrubber()
    assert scrub.slider.max == 1 and scrub.image.value[:4] == b"\x89PNG"
    scrub.slider.value = 0
    assert scrub.label.value.startswith("step 2")
    with pytest.raises(CourseError, match="no snapshots"):
        listen.BarScrubber([], low=60)
    with pytest.raises(CourseError, match="metric must be"):
        listen.LiveBars(None, 0.1, low=60)


def test_bars_to_music_and_plot_bars():
    bars = np.zeros((2, 16, 12), np.uint8)
    bars[0, :8, 0] = 1                                           # C (low = 60) for two beats
    bars[1, 4:, 4] = 1                                           # E from beat 2 of bar 2 to the end
    m = listen.bars_to_music(bars, low=60)
    assert [(n.pitch, n.start, n.end) for n in m.notes] == [(60, 0.0, 1.0), (64, 2.5, 4.0)]   # 120 qpm: 0.5 s a beat
    fig, ax = listen.plot_bars(bars, low=60, title="two bars")
    assert ax.get_title() == "two bars"
    listen.plot_bars(np.zeros((1, 16, 12)), low=60)                 # silence draws, saying so
    with pytest.raises(CourseError, match="n_bars, steps_per_bar, n_pitches"):
        listen.plot_bars(np.zeros(5), low=60)


def test_the_mode_seeking_term_adds_the_inverse_spread_of_two_noises():
    """With diversity_weight, the generator's loss is the plain one plus weight / (|G(z1) - G(z2)| / |z1 - z2|)."""
    prev, cur = _toy_pairs()
    losses = {}
    for w in (0.0, 0.5):
        torch.manual_seed(0)
        g, d = bargan.BarGenerator(small()), bargan.BarCritic(small())
        h = gan.train_gan(g, d, bargan.pair_sampler(prev, cur),
                          gan.GANConfig(steps=1, batch_size=8, progress=False, diversity_weight=w), device="cpu")
        losses[w] = h.g_loss[0]
    assert losses[0.5] > losses[0.0] + 0.5                  # a fresh generator's spread ratio is well below 1
