"""Lesson 08's music GAN: bars of the chorales as piano rolls, each generated from the bar before it.

In the spirit of MidiNet (Yang et al. 2017): a convolutional generator turns noise into one bar
``(steps, pitches)`` while a *conditioner* reads the previous bar and feeds its features into the
generator at every time resolution; the critic scores a bar together with the bar before it.
Convolutions run over time with the pitches as channels, so every filter sees whole chords. The
noise reaches every stage of the generator and the critic sees the spread of its batch
(:class:`MinibatchStd`), both against the generator ignoring its noise and making one bar for all.
Batch norm in the generator (as in DCGAN, Radford et al. 2016), none in the critic. Train it with
:func:`course.nn.gan.train_gan`, whose real batches are ``(bar, previous bar)`` pairs.

::

    from course import data
    from course.nn import bargan
    prev, cur = data.bar_pairs(data.bars("chorales", "train"))
    g, d = bargan.BarGenerator(), bargan.BarCritic()
    real = bargan.pair_sampler(prev, cur)                       # real(n, generator) -> (bars, previous bars)
    gan.train_gan(g, d, real, gan.GANConfig(steps=4000, batch_size=64, lr=2e-4))
    phrase = bargan.generate_phrase(g, n_bars=8, seed=0)          # (8, 16, 54) of 0/1

Lesson: 08_music_gan
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as tnn

from ..errors import CourseError

__all__ = ["BarGANConfig", "BarGenerator", "BarCritic", "MinibatchStd", "pair_sampler", "generate_phrase", "sample_bars"]


@dataclass
class BarGANConfig:
    """Sizes of the bar generator and critic. Lesson: 08_music_gan"""

    n_pitches: int = 54        # pitch rows of a bar (data.BAR_LOW .. data.BAR_HIGH)
    steps: int = 16            # time steps of a bar (16th notes of a 4/4 bar)
    noise_dim: int = 64        # size of the generator's noise z
    width: int = 64            # channels at the bar's full time resolution; doubled at each halving
    leak: float = 0.2          # slope of the critic's LeakyReLU for negative inputs


def _check_bars(x, c: BarGANConfig, name: str) -> None:
    if not torch.is_tensor(x) or x.dim() != 3 or tuple(x.shape[1:]) != (c.steps, c.n_pitches):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise CourseError(f"{name} must be a tensor of bars (B, {c.steps}, {c.n_pitches}); got {shape}.")


class _Conditioner(tnn.Module):
    """The previous bar ``(B, steps, P)`` -> features at 3 time resolutions: steps, steps/2, steps/4."""

    def __init__(self, c: BarGANConfig):
        super().__init__()
        w = c.width
        self.at_full = tnn.Conv1d(c.n_pitches, w, 3, padding=1)                 # (B, w, steps)
        self.at_half = tnn.Conv1d(w, 2 * w, 4, stride=2, padding=1)            # (B, 2w, steps/2)
        self.at_quarter = tnn.Conv1d(2 * w, 2 * w, 4, stride=2, padding=1)     # (B, 2w, steps/4)
        self.act = tnn.LeakyReLU(c.leak)

    def forward(self, prev: torch.Tensor) -> list[torch.Tensor]:
        a = self.act(self.at_full(prev.transpose(1, 2)))
        b = self.act(self.at_half(a))
        return [a, b, self.act(self.at_quarter(b))]


class BarGenerator(tnn.Module):
    """Noise ``(B, noise_dim)`` and the previous bar ``(B, steps, P)`` -> a bar of probabilities ``(B, steps, P)``.

    The noise becomes a ``(2w, steps/4)`` feature map, which is doubled in time twice by transposed
    convolutions; before each stage the conditioner's features of the previous bar at the same
    resolution are concatenated as extra channels. A sigmoid gives each cell's probability of
    sounding; :func:`sample_bars` thresholds it at 0.5 into a playable bar.

    Lesson: 08_music_gan
    """

    def __init__(self, config: BarGANConfig | None = None, **changes):
        super().__init__()
        c = config or BarGANConfig(**changes)
        if c.steps % 4:
            raise CourseError(f"steps must be a multiple of 4 (two halvings), got {c.steps}.")
        self.config, w = c, c.width
        self.noise_dim = c.noise_dim
        self.cond = _Conditioner(c)
        self.project = tnn.Linear(c.noise_dim, 2 * w * (c.steps // 4))                  # z -> (2w, steps/4)
        z_ch = c.noise_dim                       # the noise is also fed to every later stage, so it cannot be ignored
        self.up1 = tnn.ConvTranspose1d(4 * w + z_ch, 2 * w, 4, stride=2, padding=1)     # -> (2w, steps/2)
        self.up2 = tnn.ConvTranspose1d(4 * w + z_ch, w, 4, stride=2, padding=1)         # -> (w, steps)
        self.out = tnn.Conv1d(2 * w + z_ch, c.n_pitches, 3, padding=1)                   # -> (P, steps)
        self.norm0, self.norm1, self.norm2 = tnn.BatchNorm1d(2 * w), tnn.BatchNorm1d(2 * w), tnn.BatchNorm1d(w)
        self.act = tnn.ReLU()

    def forward(self, z: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        c = self.config
        _check_bars(prev, c, "prev")
        if z.dim() != 2 or z.shape[1] != c.noise_dim or len(z) != len(prev):
            raise CourseError(f"z must be (B, {c.noise_dim}) with B = len(prev) = {len(prev)}; got {tuple(z.shape)}.")
        full, half, quarter = self.cond(prev)
        h = self.act(self.norm0(self.project(z).reshape(len(z), 2 * c.width, c.steps // 4)))   # (B, 2w, steps/4)
        zs = [z[:, :, None].expand(-1, -1, c.steps // k) for k in (4, 2, 1)]            # z along time, 3 lengths
        h = self.act(self.norm1(self.up1(torch.cat([h, quarter, zs[0]], 1))))           # (B, 2w, steps/2)
        h = self.act(self.norm2(self.up2(torch.cat([h, half, zs[1]], 1))))             # (B, w, steps)
        return torch.sigmoid(self.out(torch.cat([h, full, zs[2]], 1))).transpose(1, 2)   # (B, steps, P)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class MinibatchStd(tnn.Module):
    """Append one channel: the minibatch standard deviation of the features, averaged (Karras et al. 2018).

    A batch of near-identical fakes has a small spread where real bars have a large one, so the critic
    can see mode collapse and the generator is pushed towards variety. ``(B, C, T) -> (B, C + 1, T)``.

    Lesson: 08_music_gan
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        spread = (h.var(0, unbiased=False) + 1e-8).sqrt().mean()                 # 1e-8: a finite gradient at 0
        return torch.cat([h, spread.expand(len(h), 1, h.shape[2])], 1)


class BarCritic(tnn.Module):
    """A bar ``(B, steps, P)`` and the bar before it -> one score per bar ``(B,)`` (higher: more real).

    The two bars are stacked as ``2P`` channels and read by strided convolutions over time; no batch
    norm (WGAN-GP's penalty is a per-sample gradient).

    Lesson: 08_music_gan
    """

    def __init__(self, config: BarGANConfig | None = None, **changes):
        super().__init__()
        c = config or BarGANConfig(**changes)
        self.config, w = c, c.width
        self.body = tnn.Sequential(
            tnn.Conv1d(2 * c.n_pitches, w, 3, padding=1), tnn.LeakyReLU(c.leak),         # (B, w, steps)
            tnn.Conv1d(w, 2 * w, 4, stride=2, padding=1), tnn.LeakyReLU(c.leak),         # (B, 2w, steps/2)
            tnn.Conv1d(2 * w, 2 * w, 4, stride=2, padding=1), tnn.LeakyReLU(c.leak),     # (B, 2w, steps/4)
            MinibatchStd(),                                                               # (B, 2w + 1, steps/4)
            tnn.Flatten(), tnn.Linear((2 * w + 1) * (c.steps // 4), 1))                  # (B, 1)

    def forward(self, bar: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        _check_bars(bar, self.config, "bar")
        _check_bars(prev, self.config, "prev")
        return self.body(torch.cat([bar, prev], 2).transpose(1, 2))[:, 0]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def pair_sampler(prev, cur, transpose: tuple = (0, 0)):
    """Real batches for :func:`course.nn.gan.train_gan`: ``real(n, generator) -> (bars, previous bars)``.

    Draws ``n`` of the ``(prev, cur)`` pairs (with replacement) and shifts each pair by a random number
    of semitones in ``transpose = (lowest, highest)``, limited so that no note leaves the roll.

    Lesson: 08_music_gan
    """
    p = torch.as_tensor(np.asarray(prev), dtype=torch.float32)
    q = torch.as_tensor(np.asarray(cur), dtype=torch.float32)
    if p.shape != q.shape or p.dim() != 3 or len(p) == 0:
        raise CourseError(f"prev and cur must be two arrays of the same shape (N, steps, pitches); got "
                          f"{tuple(p.shape)} and {tuple(q.shape)}.")
    lo_t, hi_t = (int(v) for v in transpose)
    if lo_t > 0 or hi_t < 0:
        raise CourseError(f"transpose must be (lowest <= 0, highest >= 0) semitones, got {transpose!r}.")
    P = p.shape[2]
    used = (p + q).amax(1) > 0                                                          # (N, P)
    any_used = used.any(1)
    lowest = torch.where(any_used, used.float().argmax(1), torch.zeros_like(any_used, dtype=torch.long))
    highest = torch.where(any_used, P - 1 - used.flip(1).float().argmax(1), torch.full_like(lowest, P - 1))
    down = torch.clamp(-lowest, min=lo_t)                                               # (N,) most negative shift
    up = torch.clamp(P - 1 - highest, max=hi_t)                                         # (N,) largest shift

    def real(n: int, generator: torch.Generator):
        i = torch.randint(len(p), (n,), generator=generator)
        span = (up[i] - down[i] + 1).float()
        shift = down[i] + (torch.rand(n, generator=generator) * span).long().clamp(max=(span - 1).long())
        keys = (torch.arange(P)[None, :] - shift[:, None]) % P                        # (n, P): source column
        index = keys[:, None, :].expand(n, p.shape[1], P)
        return torch.gather(q[i], 2, index), torch.gather(p[i], 2, index)

    return real


@torch.no_grad()
def sample_bars(generator: BarGenerator, prev, *, seed: int = 0, threshold: float = 0.5) -> np.ndarray:
    """One generated bar for each previous bar in ``prev`` ``(B, steps, P)``: uint8 ``(B, steps, P)``.

    Lesson: 08_music_gan
    """
    dev = next(generator.parameters()).device
    p = torch.as_tensor(np.asarray(prev), dtype=torch.float32, device=dev)
    z = torch.randn(len(p), generator.noise_dim, generator=torch.Generator().manual_seed(int(seed))).to(dev)
    was = generator.training
    generator.eval()
    out = (generator(z, p) > threshold).to(torch.uint8).cpu().numpy()
    generator.train(was)
    return out


def generate_phrase(generator: BarGenerator, n_bars: int = 8, *, first=None, seed: int = 0, n: int | None = None,
                    threshold: float = 0.5) -> np.ndarray:
    """Chain bars into a phrase: each bar generated from the one before it (from silence, or ``first``).

    ``first`` (optional, ``(steps, P)``) is a real opening bar, kept as the phrase's first bar. Returns
    uint8 ``(n_bars, steps, P)``; with ``n`` given, ``n`` phrases at once: ``(n, n_bars, steps, P)``.

    Lesson: 08_music_gan
    """
    if isinstance(n_bars, bool) or not isinstance(n_bars, (int, np.integer)) or n_bars < 1:
        raise CourseError(f"n_bars must be a whole number >= 1, got {n_bars!r}.")
    c = generator.config
    k = 1 if n is None else int(n)
    bars = []
    if first is None:
        prev = np.zeros((k, c.steps, c.n_pitches), np.uint8)
    else:
        f = np.asarray(first)
        if f.shape != (c.steps, c.n_pitches):
            raise CourseError(f"first must be one bar ({c.steps}, {c.n_pitches}); got shape {f.shape}.")
        prev = np.repeat((f > 0.5).astype(np.uint8)[None], k, 0)
        bars.append(prev)
    while len(bars) < n_bars:
        prev = sample_bars(generator, prev, seed=int(seed) * 1000 + len(bars), threshold=threshold)
        bars.append(prev)
    out = np.stack(bars, 1)                                                            # (k, n_bars, steps, P)
    return out[0] if n is None else out


def config_dict(generator: BarGenerator) -> dict:
    """The generator's config as a plain dict (for a pretrained card)."""
    return asdict(generator.config)
