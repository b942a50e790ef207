"""Generative adversarial networks: the losses, the optimal discriminator, the gradient penalty and
one two-player training loop.

- :func:`discriminator_loss`, :func:`generator_loss` (non-saturating), :func:`saturating_generator_loss`
  (the minimax one), :func:`critic_loss` / :func:`critic_generator_loss` (Wasserstein);
- :func:`optimal_discriminator`, :func:`gan_value`, :func:`js_divergence`: the theory of Goodfellow et al.
  (2014) on discrete distributions, where every integral is a sum;
- :func:`gradient_penalty`: WGAN-GP (Gulrajani et al. 2017);
- :func:`train_gan` with :class:`GANConfig`: the loop for a generator and a discriminator (or critic),
  optionally both conditioned on something (lesson 08: the previous bar), with checkpoints.

The small models and data of lesson 07 are in :mod:`course.nn.toy_gan`, lesson 08's bar GAN in
:mod:`course.nn.bargan`.

Lesson: 07_gan_fundamentals
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CourseError
from ..runtime import device as pick_device
from ..runtime import seed_everything
from .ganstate import load_state, save_state

__all__ = ["discriminator_loss", "generator_loss", "saturating_generator_loss", "critic_loss",
           "critic_generator_loss", "optimal_discriminator", "gan_value", "js_divergence", "gradient_penalty",
           "GANConfig", "GANHistory", "train_gan", "LOSSES"]

LOSSES = ("gan", "wgan-gp")


# ------------------------------------------------------------------------------------ the losses
def _logits(x, name: str) -> torch.Tensor:
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise CourseError(f"{name} must be a float tensor of logits, got {type(x).__name__}"
                          f"{'' if not torch.is_tensor(x) else ' of dtype ' + str(x.dtype)}.")
    if x.numel() == 0:
        raise CourseError(f"{name} is empty: a batch needs at least one sample.")
    return x


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-V(D, G)`` on a batch: BCE with logits, real labelled 1, fake 0; mean over real + mean over fake.

    ``= -mean log D(x) - mean log(1 - D(G(z)))`` with ``D = sigmoid(logit)``. The two batches may
    differ in size; each term is the mean over its own batch. Returns a scalar tensor.

    Lesson: 07_gan_fundamentals
    """
    real_logits, fake_logits = _logits(real_logits, "real_logits"), _logits(fake_logits, "fake_logits")
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``mean(-log sigmoid(fake_logits))`` (Goodfellow et al. 2014).

    Computed with ``F.logsigmoid``, which stays finite for very negative logits. Lesson: 07_gan_fundamentals
    """
    return -F.logsigmoid(_logits(fake_logits, "fake_logits")).mean()


def saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss ``mean(log(1 - sigmoid(fake_logits)))`` = ``mean(logsigmoid(-logits))``.

    Its gradient vanishes where the discriminator rejects the fakes (D(G(z)) near 0), i.e. early in
    training. Lesson: 07_gan_fundamentals
    """
    return F.logsigmoid(-_logits(fake_logits, "fake_logits")).mean()


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein critic's loss ``mean f(fake) - mean f(real)`` (add the gradient penalty to it).

    Lesson: 07_gan_fundamentals
    """
    return _logits(fake_scores, "fake_scores").mean() - _logits(real_scores, "real_scores").mean()


def critic_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein generator's loss ``-mean f(G(z))``. Lesson: 07_gan_fundamentals"""
    return -_logits(fake_scores, "fake_scores").mean()


# ------------------------------------------------------------------------------------ the theory, on a grid
def _densities(p, name: str) -> np.ndarray:
    try:
        a = np.array(p.detach().cpu().numpy() if torch.is_tensor(p) else p, dtype=np.float64)
    except (TypeError, ValueError):
        raise CourseError(f"{name} must be an array of numbers, got {type(p).__name__}.") from None
    if a.size == 0:
        raise CourseError(f"{name} is empty.")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise CourseError(f"{name} must hold finite, non-negative densities.")
    return a


def optimal_discriminator(p_data, p_g) -> np.ndarray:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` elementwise; 0.5 where both densities are 0.

    Args: two arrays of densities (or probabilities) of the same shape. Returns a float64 array.
    Lesson: 07_gan_fundamentals
    """
    p, q = _densities(p_data, "p_data"), _densities(p_g, "p_g")
    if p.shape != q.shape:
        raise CourseError(f"p_data and p_g must have the same shape, got {p.shape} and {q.shape}.")
    total = p + q
    return np.divide(p, total, out=np.full_like(total, 0.5), where=total > 0)


def _probabilities(p, name: str) -> np.ndarray:
    a = _densities(p, name).ravel()
    if a.sum() <= 0:
        raise CourseError(f"{name} has no mass: its weights sum to 0.")
    return a / a.sum()


def gan_value(p_data, p_g, d) -> float:
    """``V(D, G) = sum_x p_data(x) log D(x) + p_g(x) log(1 - D(x))`` for discrete distributions (nats).

    ``p_data`` and ``p_g`` are weights over the same points (normalized to sum 1 here), ``d`` the
    discriminator's probabilities there. Terms with zero weight count 0 (0 log 0 = 0).
    Lesson: 07_gan_fundamentals
    """
    p, q = _probabilities(p_data, "p_data"), _probabilities(p_g, "p_g")
    d = _densities(d, "d").ravel()
    if not (p.shape == q.shape == d.shape):
        raise CourseError(f"p_data, p_g and d must have the same size, got {p.size}, {q.size} and {d.size}.")
    if np.any(d > 1):
        raise CourseError("d must hold probabilities in [0, 1].")
    with np.errstate(divide="ignore", invalid="ignore"):
        real = np.where(p > 0, p * np.log(d), 0.0)
        fake = np.where(q > 0, q * np.log1p(-d), 0.0)
    return float(real.sum() + fake.sum())


def js_divergence(p, q) -> float:
    """Jensen-Shannon divergence in nats: ``KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``.

    ``p`` and ``q`` are weights (counts or probabilities) over the same points, normalized to sum 1.
    Between 0 (equal) and ``log 2`` (disjoint). Lesson: 07_gan_fundamentals
    """
    p, q = _probabilities(p, "p"), _probabilities(q, "q")
    if p.shape != q.shape:
        raise CourseError(f"p and q must have the same size, got {p.size} and {q.size}.")
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(kl_p / 2 + kl_q / 2)


# ------------------------------------------------------------------------------------ WGAN-GP
def gradient_penalty(critic: Callable, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``mean_i (||grad_x critic(x_hat_i)||_2 - 1)^2`` at ``x_hat = alpha * real + (1 - alpha) * fake``.

    One ``alpha`` per sample (shape ``(B,)``, broadcast over the other dimensions); the norm of each
    sample's gradient is taken over all its non-batch dimensions. The gradient is built with
    ``create_graph=True``, so the penalty trains the critic. Without lambda (multiply by it outside).
    Gulrajani et al. (2017). Returns a scalar tensor.

    Lesson: 07_gan_fundamentals
    """
    for name, x in (("real", real), ("fake", fake)):
        if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 2:
            raise CourseError(f"{name} must be a float tensor of shape (B, ...) with at least 2 dimensions.")
    if real.shape != fake.shape:
        raise CourseError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}.")
    B = real.shape[0]
    if not torch.is_tensor(alpha) or tuple(alpha.shape) != (B,):
        raise CourseError(f"alpha must be a tensor of shape (B,) = ({B},): one mixing weight per sample.")
    a = alpha.to(device=real.device, dtype=real.dtype).reshape(B, *([1] * (real.dim() - 1)))   # (B, 1, ..., 1)
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    norms = grad.reshape(B, -1).norm(2, dim=1)                                 # (B,)
    return ((norms - 1) ** 2).mean()


# ------------------------------------------------------------------------------------ training
@dataclass
class GANConfig:
    """Settings of :func:`train_gan`. ``GANConfig.wgan_gp()`` gives Gulrajani et al.'s (2017).

    Lesson: 07_gan_fundamentals
    """

    loss: str = "gan"                 # "gan": BCE discriminator + non-saturating generator; "wgan-gp"
    steps: int = 1000                 # generator steps
    critic_steps: int = 1             # discriminator (critic) steps per generator step
    batch_size: int = 256             # real and fake samples per step
    lr: float = 2e-4                  # Adam learning rate of both players
    betas: tuple = (0.5, 0.999)       # Adam betas of both players
    gp_weight: float = 10.0           # lambda of the gradient penalty ("wgan-gp" only)
    diversity_weight: float = 0.0     # weight of the mode-seeking term (Mao et al. 2019); 0: off
    seed: int = 0                     # seeds the noise, the real batches and alpha (the models seed their own weights)
    progress: bool = True             # show a progress bar
    callback_every: int = 50          # call the callbacks every this many generator steps (and at the end)
    checkpoint: str | None = None     # file saved every checkpoint_every steps and at the end; resumed from if it exists
    checkpoint_every: int = 250       # generator steps between two checkpoints

    @classmethod
    def wgan_gp(cls, **changes) -> "GANConfig":
        """WGAN-GP's settings: lambda 10, 5 critic steps, Adam(1e-4, betas=(0.5, 0.9)) as in the authors' code
        (Algorithm 1 of the paper lists beta1 = 0)."""
        return replace(cls(loss="wgan-gp", critic_steps=5, lr=1e-4, betas=(0.5, 0.9), gp_weight=10.0), **changes)


@dataclass
class GANHistory:
    """What :func:`train_gan` recorded, one entry per generator step. Lesson: 07_gan_fundamentals"""

    steps: list = field(default_factory=list)
    d_loss: list = field(default_factory=list)     # the last critic step's loss (penalty included)
    g_loss: list = field(default_factory=list)
    penalty: list = field(default_factory=list)    # the gradient penalty without lambda (NaN for "gan")
    seconds: float = 0.0
    device: str = ""


def _check_config(c: GANConfig) -> None:
    if c.loss not in LOSSES:
        raise CourseError(f"loss must be one of {LOSSES}, got {c.loss!r}.")
    for name in ("steps", "critic_steps", "batch_size", "callback_every", "checkpoint_every"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "steps" else 1):
            raise CourseError(f"{name} must be a whole number >= {0 if name == 'steps' else 1}, got {v!r}.")
    if not c.lr > 0:
        raise CourseError(f"lr must be > 0, got {c.lr!r}.")


def _real_batches(real, batch_size: int, gen: torch.Generator) -> Callable[[], torch.Tensor]:
    """A function giving the next batch of real samples (on the CPU): a tensor, or a pair (samples, condition)."""
    if torch.is_tensor(real):
        if real.dim() < 2 or len(real) == 0 or not real.is_floating_point():
            raise CourseError("real must be a float tensor of samples, shape (N, ...), or a function "
                              "real(n, generator) -> (n, ...).")
        data = real.detach().cpu()
        return lambda: data[torch.randint(len(data), (batch_size,), generator=gen)]
    if callable(real):
        return lambda: real(batch_size, gen)
    raise CourseError(f"real must be a tensor of samples or a function real(n, generator), got {type(real).__name__}.")


def train_gan(generator: torch.nn.Module, critic: torch.nn.Module, real, config: GANConfig | None = None, *,
              device=None, callbacks: Iterable = ()) -> GANHistory:
    """Train ``generator`` against ``critic`` (the discriminator) for ``config.steps`` generator steps.

    Args:
        generator: a module with an int attribute ``noise_dim``, mapping noise ``(B, noise_dim)`` to samples.
        critic: a module mapping samples to one logit (score) per sample, ``(B,)`` or ``(B, 1)``.
        real: a tensor of real samples ``(N, ...)`` (batches drawn with replacement), or a function
            ``real(n, generator) -> (n, ...)`` drawing with the given ``torch.Generator``. A *conditional*
            GAN: the function returns a pair ``(samples, condition)``; then the generator is called as
            ``generator(noise, condition)`` and the critic as ``critic(samples, condition)`` (fakes are made
            for the real batch's conditions, and the penalty differentiates with respect to the samples only).
        config: a :class:`GANConfig`: ``"gan"`` trains with :func:`discriminator_loss` and
            :func:`generator_loss`; ``"wgan-gp"`` with :func:`critic_loss` plus ``gp_weight`` times
            :func:`gradient_penalty` and :func:`critic_generator_loss`. Both players use Adam.
        device: a torch device; default ``course.device()``.
        callbacks: objects with ``update(step, generator, losses)`` or plain callables with that
            signature, called every ``config.callback_every`` generator steps and after the last one;
            ``losses`` is ``{"d_loss": float, "g_loss": float, "penalty": float}``. A ``finish()`` method
            is called at the end (e.g. :class:`course.listen.LiveSamples`).

    With ``config.checkpoint`` set, both models, both optimizers, the step, the history and the random
    state are saved every ``checkpoint_every`` steps and at the end; a later call with the same file
    resumes from there (delete it to start afresh).

    Returns: a :class:`GANHistory`. Seeded by ``config.seed``: the same call gives the same models on a CPU
    (also across a resume).
    Lesson: 07_gan_fundamentals (conditioning and checkpoints: 08_music_gan)
    """
    c = config or GANConfig()
    _check_config(c)
    noise_dim = getattr(generator, "noise_dim", None)
    if isinstance(noise_dim, bool) or not isinstance(noise_dim, int) or noise_dim < 1:
        raise CourseError("the generator needs an int attribute noise_dim (the size of its input noise).")
    if c.loss == "wgan-gp" and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules()):
        raise CourseError("a WGAN-GP critic must not use batch norm: the penalty is a per-sample gradient, and "
                          "batch norm mixes the samples of a batch (use layer norm or none).")
    dev = device if device is not None else pick_device(verbose=c.progress)
    seed_everything(c.seed)
    gen = torch.Generator().manual_seed(c.seed)
    next_real = _real_batches(real, c.batch_size, gen)
    generator.to(dev).train()
    critic.to(dev).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=c.lr, betas=tuple(c.betas))
    opt_d = torch.optim.Adam(critic.parameters(), lr=c.lr, betas=tuple(c.betas))
    cbs = [cb.update if hasattr(cb, "update") else cb for cb in callbacks]
    hist = GANHistory(device=str(dev))

    def noise() -> torch.Tensor:
        return torch.randn(c.batch_size, noise_dim, generator=gen).to(dev)

    def draw() -> tuple:
        got = next_real()
        if isinstance(got, (tuple, list)):
            if len(got) != 2 or not all(torch.is_tensor(t) for t in got):
                raise CourseError("a conditional real(n, generator) must return two tensors: (samples, condition).")
            return got[0].to(dev), got[1].to(dev)
        return got.to(dev), None

    def play(fn, cond, *args):
        return fn(*args) if cond is None else fn(*args, cond)

    first, ckpt = 1, (Path(c.checkpoint) if c.checkpoint else None)
    parts = {"generator": generator, "critic": critic, "opt_g": opt_g, "opt_d": opt_d}
    if ckpt is not None and ckpt.exists():
        saved, last = load_state(ckpt, parts, gen, dev)
        hist, first = GANHistory(**saved), last + 1

    def save(step: int) -> None:
        hist.seconds = time.perf_counter() - t0
        save_state(ckpt, parts, gen, asdict(hist), step)

    bar = None
    if c.progress and first <= c.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=c.steps, initial=first - 1, desc=f"training ({c.loss})", unit="step", leave=True)
    t0 = time.perf_counter() - hist.seconds
    try:
        for step in range(first, c.steps + 1):
            for _ in range(c.critic_steps):
                x, cond = draw()
                with torch.no_grad():
                    fake = play(generator, cond, noise())
                if x.shape != fake.shape:
                    raise CourseError(f"real batches have shape {tuple(x.shape)} but the generator makes "
                                      f"{tuple(fake.shape)}: they must match.")
                real_out, fake_out = play(critic, cond, x), play(critic, cond, fake)
                if c.loss == "gan":
                    d_loss, gp = discriminator_loss(real_out, fake_out), None
                else:
                    alpha = torch.rand(c.batch_size, generator=gen).to(dev)
                    gp = gradient_penalty(critic if cond is None else (lambda v: critic(v, cond)), x, fake, alpha)
                    d_loss = critic_loss(real_out, fake_out) + c.gp_weight * gp
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            z = noise()
            fake = play(generator, cond, z)
            fake_out = play(critic, cond, fake)
            g_loss = generator_loss(fake_out) if c.loss == "gan" else critic_generator_loss(fake_out)
            if c.diversity_weight:   # mode seeking: two noises for the same conditions must give different samples
                z2 = noise()
                ratio = (fake - play(generator, cond, z2)).abs().mean() / (z - z2).abs().mean()
                g_loss = g_loss + c.diversity_weight / (ratio + 1e-5)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            losses = {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
                      "penalty": float(gp.detach()) if gp is not None else math.nan}
            if not (math.isfinite(losses["d_loss"]) and math.isfinite(losses["g_loss"])):
                raise CourseError(f"a loss became {losses} at step {step}: lower the learning rate.")
            hist.steps.append(step)
            hist.d_loss.append(losses["d_loss"])
            hist.g_loss.append(losses["g_loss"])
            hist.penalty.append(losses["penalty"])
            if cbs and (step % c.callback_every == 0 or step == c.steps):
                generator.eval()
                for cb in cbs:
                    cb(step, generator, losses)
                generator.train()
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"d": f"{losses['d_loss']:.3f}", "g": f"{losses['g_loss']:.3f}"}, refresh=False)
            if ckpt is not None and (step % c.checkpoint_every == 0 or step == c.steps):
                save(step)
    finally:
        if bar is not None:
            bar.close()
        for cb in callbacks:
            finish = getattr(cb, "finish", None)
            if callable(finish):
                finish()
    if first <= c.steps:
        hist.seconds = time.perf_counter() - t0
    generator.eval()
    critic.eval()
    return hist
