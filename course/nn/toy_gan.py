"""Toy GANs: small MLP generators and critics, mixtures of Gaussians to learn, and mode counting.

The toys of lesson 07 are small enough to train in seconds on a CPU and to see whole: a mixture of
Gaussians on the line, and the ring of 8 Gaussians in the plane on which Metz et al. (2017) showed
mode collapse. :func:`modes_covered` counts how many of the mixture's components the generator's
samples reach; :class:`ModeTracker` records that count while :func:`course.nn.gan.train_gan` runs.

Lesson: 07_gan_fundamentals
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CourseError

__all__ = ["ToyConfig", "ToyGenerator", "ToyCritic", "Mixture", "mixture_1d", "ring_of_gaussians", "Dequantized",
           "modes_covered", "mode_shares", "ModeTracker"]


@dataclass
class ToyConfig:
    """Sizes of :class:`ToyGenerator` and :class:`ToyCritic`. Lesson: 07_gan_fundamentals"""

    data_dim: int = 2          # numbers per sample: 1 on the line, 2 in the plane
    noise_dim: int = 2         # size of the generator's input z ~ N(0, I)
    hidden: int = 128          # units per hidden layer
    layers: int = 3            # hidden layers in each network

    def __post_init__(self):
        for name in ("data_dim", "noise_dim", "hidden", "layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CourseError(f"ToyConfig.{name} must be a whole number >= 1, got {v!r}.")


def _mlp(sizes: list[int], seed: int) -> torch.nn.Sequential:
    """Linear layers with ReLU between them (none after the last), initialized from ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise CourseError(f"seed must be a whole number, got {seed!r}.")
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class ToyGenerator(torch.nn.Module):
    """An MLP from noise ``z`` (B, noise_dim) to samples (B, data_dim), its weights drawn from ``seed``.

    Lesson: 07_gan_fundamentals
    """

    def __init__(self, config: ToyConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config or ToyConfig()
        c = self.config
        self.noise_dim = c.noise_dim
        self.net = _mlp([c.noise_dim] + [c.hidden] * c.layers + [c.data_dim], seed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)                                                   # (B, data_dim)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` samples (n, data_dim) on the CPU from noise drawn with ``seed`` (the same seed, the same noise)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CourseError(f"n must be a whole number >= 1, got {n!r}.")
        z = torch.randn(n, self.noise_dim, generator=torch.Generator().manual_seed(seed))
        dev = next(self.parameters()).device
        return self.net(z.to(dev)).cpu()


class ToyCritic(torch.nn.Module):
    """An MLP from samples (B, data_dim) to one logit (or critic score) per sample, (B,); weights from ``seed``.

    No batch norm, so it serves WGAN-GP as well (Gulrajani et al. 2017). Lesson: 07_gan_fundamentals
    """

    def __init__(self, config: ToyConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config or ToyConfig()
        c = self.config
        self.net = _mlp([c.data_dim] + [c.hidden] * c.layers + [1], seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)                                       # (B,)


# ------------------------------------------------------------------------------------ data
@dataclass(frozen=True, eq=False)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians; call it as ``mixture(n, generator)`` to draw samples.

    Lesson: 07_gan_fundamentals
    """

    centers: np.ndarray      # (K, dim): the components' means
    std: float               # every component's standard deviation

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples (n, dim), float32, drawn with ``generator`` (a ``torch.Generator``; default seed 0)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CourseError(f"n must be a whole number >= 1, got {n!r}.")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        centers = torch.as_tensor(self.centers, dtype=torch.float32)
        which = torch.randint(len(centers), (n,), generator=g)
        return centers[which] + self.std * torch.randn(n, centers.shape[1], generator=g)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` samples drawn with a fresh generator seeded by ``seed``."""
        return self(n, torch.Generator().manual_seed(seed))

    def density(self, x) -> np.ndarray:
        """The mixture's density at points ``x``: (N,) for 1-D (or (N, dim))."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.centers.shape[1])
        d = self.centers.shape[1]
        sq = ((x[:, None, :] - self.centers[None]) ** 2).sum(-1)                    # (N, K)
        return np.exp(-sq / (2 * self.std ** 2)).mean(1) / (2 * math.pi * self.std ** 2) ** (d / 2)


def mixture_1d(centers=(-2.0, 0.0, 2.5), std: float = 0.3) -> Mixture:
    """A mixture of Gaussians on the line (equal weights). Lesson: 07_gan_fundamentals"""
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 1)
    if c.size == 0 or not std > 0:
        raise CourseError("a mixture needs at least one center and a std > 0.")
    return Mixture(c, float(std))


def ring_of_gaussians(modes: int = 8, radius: float = 2.0, std: float = 0.05) -> Mixture:
    """``modes`` Gaussians evenly spaced on a circle (Metz et al. 2017 used 8, radius 2, std 0.02).

    Lesson: 07_gan_fundamentals
    """
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 1 or not radius > 0 or not std > 0:
        raise CourseError("a ring needs modes >= 1 (a whole number), radius > 0 and std > 0.")
    angles = 2 * np.pi * np.arange(modes) / modes
    return Mixture(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), float(std))


class Dequantized:
    """Whole numbers (e.g. MIDI pitches) as a continuous distribution on the line, for a 1-D GAN.

    Each draw is a value of ``values`` (chosen uniformly) plus uniform noise in [-0.5, 0.5), then
    centred and scaled, ``(v + u - center) / scale``; :meth:`decode` maps generated numbers back to the
    nearest whole numbers. Call it as ``data(n, generator)`` -> (n, 1) float32.

    Lesson: 07_gan_fundamentals
    """

    def __init__(self, values, center: float | None = None, scale: float | None = None):
        v = np.asarray(values)
        if v.ndim != 1 or v.size == 0 or not np.issubdtype(v.dtype, np.integer):
            raise CourseError("Dequantized needs a non-empty 1-D array of whole numbers (e.g. MIDI pitches).")
        self.values = torch.as_tensor(v.astype(np.float32))
        self.low, self.high = int(v.min()), int(v.max())
        self.center = float(v.mean()) if center is None else float(center)
        self.scale = float(v.std() or 1.0) if scale is None else float(scale)
        if not self.scale > 0:
            raise CourseError(f"scale must be > 0, got {scale!r}.")

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CourseError(f"n must be a whole number >= 1, got {n!r}.")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        v = self.values[torch.randint(len(self.values), (n,), generator=g)]
        u = torch.rand(n, generator=g) - 0.5
        return ((v + u - self.center) / self.scale)[:, None]                     # (n, 1)

    def decode(self, x) -> np.ndarray:
        """Generated numbers (n,) or (n, 1) -> whole numbers (int64), clipped to the data's range."""
        a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)
        return np.clip(np.rint(a.reshape(-1) * self.scale + self.center), self.low, self.high).astype(np.int64)

    def __repr__(self) -> str:
        return f"Dequantized({len(self.values)} values in {self.low}..{self.high})"


# ------------------------------------------------------------------------------------ counting modes
def mode_shares(samples, centers, radius: float = math.inf) -> np.ndarray:
    """The share of ``samples`` (N, dim) whose nearest center (K, dim) is each center, counting only
    samples within ``radius`` of it: an array (K,). With ``radius=inf`` every sample counts for its
    nearest center. Lesson: 07_gan_fundamentals
    """
    x = samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if c.ndim == 1:
        c = c[:, None]
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0 or len(c) == 0:
        raise CourseError(f"samples (N, dim) and centers (K, dim) must agree in dim; got shapes {x.shape} and {c.shape}.")
    if not radius > 0:
        raise CourseError(f"radius must be > 0, got {radius!r}.")
    dist = np.sqrt(((x[:, None, :] - c[None]) ** 2).sum(-1))                            # (N, K)
    nearest = dist.argmin(1)
    near = dist[np.arange(len(x)), nearest] <= radius
    return np.bincount(nearest[near], minlength=len(c)) / len(x)


def modes_covered(samples, centers, radius: float, min_share: float = 0.01) -> int:
    """How many centers have at least ``min_share`` of the samples within ``radius``.

    With 8 modes a perfect generator puts 1/8 of its samples at each; the default threshold (1%)
    ignores a few stray samples. Lesson: 07_gan_fundamentals
    """
    return int((mode_shares(samples, centers, radius) >= min_share).sum())


class ModeTracker:
    """A :func:`course.nn.gan.train_gan` callback: at every call, from ``n`` samples of a fixed noise, it records

    - ``covered``: the modes with at least ``min_share`` of the samples within ``radius`` (default 3
      standard deviations) of the center: the samples sit on the mode;
    - ``reached``: the modes that are the nearest center of at least ``reach_share`` of the samples,
      however far: the generator sends samples that way at all (a collapsed one reaches 1 or 2);
    - ``near``: the share of all samples within ``radius`` of some center.

    Lesson: 07_gan_fundamentals
    """

    def __init__(self, mixture: Mixture, n: int = 2000, radius: float | None = None, min_share: float = 0.01,
                 reach_share: float = 0.05, seed: int = 1):
        self.centers, self.n, self.seed = mixture.centers, n, seed
        self.min_share, self.reach_share = min_share, reach_share
        self.radius = 3 * mixture.std if radius is None else radius
        self.steps: list[int] = []
        self.covered: list[int] = []
        self.reached: list[int] = []
        self.near: list[float] = []

    def update(self, step: int, generator, losses: dict | None = None) -> None:
        samples = generator.sample(self.n, seed=self.seed)
        shares = mode_shares(samples, self.centers, self.radius)
        self.steps.append(int(step))
        self.covered.append(int((shares >= self.min_share).sum()))
        self.reached.append(int((mode_shares(samples, self.centers) >= self.reach_share).sum()))
        self.near.append(float(shares.sum()))

    __call__ = update

    def __repr__(self) -> str:
        last = (f", last at step {self.steps[-1]}: {self.covered[-1]} covered, {self.reached[-1]} reached"
                if self.steps else "")
        return f"ModeTracker({len(self.centers)} modes{last})"
