"""Checks for lesson 07, GAN fundamentals: the WGAN-GP gradient penalty.

Written with the check kit (:mod:`course.checks.kit`); the lesson's other exercises are in
:mod:`course.checks.lesson_07`. The penalty is called with a critic: a small tanh/softplus network (its
second derivatives are not zero) built from weights drawn from the case's generator, afresh for every
call, from plain tensors that are compared before and after like every input. The value returned is
judged together with its gradient with respect to the critic's weights, so a penalty built from a
gradient taken without ``create_graph=True`` (right value, trains nothing) fails. Expected answers come
from :mod:`course.nn.gan`, computed in the comparison after the student's function has run.

Lesson: 07_gan_fundamentals
"""
from __future__ import annotations

import numpy as np
import torch

from ..nn import gan
from .kit import Case, CheckFailure, as_tensor, close, exercise, one_thread, randn
from .lesson_07 import GRAD_TOL, TOL

LESSON = "07_gan_fundamentals"


# ---------------------------------------------------------------------------- gradient_penalty
def _critic(spec: dict) -> torch.nn.Module:
    """A small critic built from ``spec``'s weights: an MLP over the flattened sample (tanh, softplus)
    or a conv net over (B, 1, H, W) images (tanh). Its output is (B, 1), or (B,) when ``spec["flat"]``."""
    w = spec["weights"]
    if spec["kind"] == "mlp":
        (W1, b1), (W2, b2), (W3, b3) = w
        layers = [torch.nn.Flatten(), torch.nn.Linear(W1.shape[1], W1.shape[0]), torch.nn.Tanh(),
                  torch.nn.Linear(W2.shape[1], W2.shape[0]), torch.nn.Softplus(), torch.nn.Linear(W3.shape[1], 1)]
        linears = [layers[1], layers[3], layers[5]]
    else:
        (K, bk), (W, b) = w
        layers = [torch.nn.Conv2d(K.shape[1], K.shape[0], K.shape[2], padding=K.shape[2] // 2), torch.nn.Tanh(),
                  torch.nn.Flatten(), torch.nn.Linear(W.shape[1], 1)]
        linears = [layers[0], layers[3]]
    if spec.get("flat"):
        layers.append(torch.nn.Flatten(0))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for layer, (weight, bias) in zip(linears, w):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    return net


def _grads(value: torch.Tensor, critic: torch.nn.Module):
    """The gradient of a scalar with respect to each of the critic's weights (zeros where it does not depend on one)."""
    params = list(critic.parameters())
    grads = torch.autograd.grad(value.reshape(()), params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)]


def _probe_penalty(func):
    """What the student passed turned into what the cases call: build the critic, call ``func`` on it, and
    return the answer with its gradient with respect to the critic's weights (None when it has none)."""
    def probe(spec, real, fake, alpha):
        critic = _critic(spec)
        before = [p.detach().clone() for p in critic.parameters()]
        with torch.random.fork_rng(), one_thread():
            out = func(critic, real, fake, alpha)
            changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, critic.parameters()))
            grads = None
            if not changed and torch.is_tensor(out) and out.numel() == 1 and out.requires_grad:
                try:
                    grads = _grads(out, critic)
                except RuntimeError as e:      # e.g. a graph that an in-place change broke
                    grads = " ".join(str(e).split())[:100]
        return {"penalty": out.detach() if torch.is_tensor(out) else out, "grads": grads, "critic_changed": changed}

    return probe


def _prepare_penalty(obj):
    if not callable(obj):
        raise CheckFailure(f"expected a function gradient_penalty(critic, real, fake, alpha), got {type(obj).__name__}")
    return _probe_penalty(obj)


def reference_gradient_penalty(spec, real, fake, alpha):
    """The penalty of :func:`course.nn.gan.gradient_penalty` on the case's critic, and its gradient."""
    critic = _critic(spec)
    with one_thread():
        value = gan.gradient_penalty(critic, real, fake, alpha)
        return value.detach(), _grads(value, critic)


def _penalty_of(norms: torch.Tensor) -> torch.Tensor:
    return ((norms - 1) ** 2).mean()


def _input_grad(critic, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = critic(x)
    return torch.autograd.grad(out, x, torch.ones_like(out), create_graph=create_graph)[0]


def _mix(alpha, real, fake):
    a = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    return a * real + (1 - a) * fake


def _gp_alpha_last_dim(critic, real, fake, alpha):
    g = _input_grad(critic, alpha * real + (1 - alpha) * fake)          # alpha broadcast along the last dimension
    return _penalty_of(g.flatten(1).norm(dim=1))


def _gp_alpha_second_last_dim(critic, real, fake, alpha):
    a = alpha[:, None]
    g = _input_grad(critic, a * real + (1 - a) * fake)
    return _penalty_of(g.flatten(1).norm(dim=1))


def _gp_norm_dim1(critic, real, fake, alpha):
    return _penalty_of(_input_grad(critic, _mix(alpha, real, fake)).norm(2, dim=1))


def _gp_at_real(critic, real, fake, alpha):
    return _penalty_of(_input_grad(critic, real).flatten(1).norm(dim=1))


def _gp_squared_norm(critic, real, fake, alpha):
    return (_input_grad(critic, _mix(alpha, real, fake)).flatten(1).norm(dim=1) ** 2).mean()


def _gp_swapped_mix(critic, real, fake, alpha):
    return _penalty_of(_input_grad(critic, _mix(alpha, fake, real)).flatten(1).norm(dim=1))


def _gp_sum(critic, real, fake, alpha):
    return ((_input_grad(critic, _mix(alpha, real, fake)).flatten(1).norm(dim=1) - 1) ** 2).sum()


def _gp_one_alpha(critic, real, fake, alpha):
    return _penalty_of(_input_grad(critic, _mix(alpha[:1].expand_as(alpha), real, fake)).flatten(1).norm(dim=1))


def _gp_one_sided(critic, real, fake, alpha):
    norms = _input_grad(critic, _mix(alpha, real, fake)).flatten(1).norm(dim=1)
    return (torch.clamp(norms - 1, min=0) ** 2).mean()


def _gp_with_lambda(critic, real, fake, alpha):
    return 10 * _penalty_of(_input_grad(critic, _mix(alpha, real, fake)).flatten(1).norm(dim=1))


_ALPHA_INSIDE = ("alpha varies inside a sample (it was broadcast along a sample's own dimensions): give each "
                 "sample one alpha for all its entries, shaped (B, 1, ..., 1)")
GP_MISTAKES = {
    _gp_alpha_last_dim: _ALPHA_INSIDE,
    _gp_alpha_second_last_dim: _ALPHA_INSIDE,
    _gp_norm_dim1: "that is the norm over dimension 1 only; each sample's gradient norm runs over all its "
                   "non-batch dimensions (flatten them first)",
    _gp_at_real: "that is the penalty at the real points only (an R1-like penalty, a different method); WGAN-GP "
                 "takes it at the interpolates x_hat",
    _gp_squared_norm: "that is the mean squared norm; the penalty is (norm - 1)^2, pulling the norm toward 1",
    _gp_swapped_mix: "that is alpha * fake + (1 - alpha) * real; here alpha weighs the real samples",
    _gp_sum: "that is the sum over the batch; take the mean",
    _gp_with_lambda: "that is lambda (10) times the penalty; return the penalty alone (the training step multiplies)",
    _gp_one_alpha: "that uses one alpha for the whole batch; each sample has its own alpha[i]",
    _gp_one_sided: "that is a one-sided penalty (only norms above 1); WGAN-GP penalizes (norm - 1)^2 on both sides",
}


def _v_penalty(got, spec, real, fake, alpha):
    value = got["penalty"]
    if value is None:
        raise CheckFailure("your function returned None: did you forget `return`")
    if isinstance(value, (float, int, np.floating, np.integer)):
        raise CheckFailure("you returned a Python number; return the penalty tensor itself (no .item()) so that it "
                           "can train the critic")
    if not torch.is_tensor(value):
        raise CheckFailure(f"expected a torch tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise CheckFailure(f"expected one number (the mean over the batch), got a tensor of shape {tuple(value.shape)}")
    if got["critic_changed"]:
        raise CheckFailure("your function changed the critic's weights; only compute the penalty")
    expected, expected_grads = reference_gradient_penalty(spec, real, fake, alpha)
    try:
        close(value.reshape(()), expected, **TOL)
    except CheckFailure as e:
        for mistake, what in GP_MISTAKES.items():
            try:
                with one_thread():
                    theirs = mistake(_critic(spec), real, fake, alpha).detach()
                close(value.reshape(()), theirs, **TOL)
            except Exception:   # noqa: BLE001 - a mistake that does not apply to this case (shapes that do not broadcast)
                continue
            raise CheckFailure(f"{str(e).rstrip('. ')}; {what}") from None
        raise
    if got["grads"] is None:
        raise CheckFailure("the value is right but carries no gradient to the critic's weights: that is what a "
                           "gradient taken without create_graph=True gives, and such a penalty trains nothing")
    if isinstance(got["grads"], str):
        raise CheckFailure(f"the value is right but its gradient with respect to the critic's weights could not be "
                           f"computed ({got['grads']})")
    close(got["grads"], expected_grads, where="of the penalty's gradient with respect to the critic's weights",
          **GRAD_TOL)


def _mlp_spec(r, d_in: int, hidden: tuple = (6, 5), flat: bool = False) -> dict:
    h1, h2 = hidden
    return {"kind": "mlp", "flat": flat,
            "weights": [(randn(r, h1, d_in, scale=0.9), randn(r, h1, scale=0.3)),
                        (randn(r, h2, h1, scale=0.8), randn(r, h2, scale=0.3)),
                        (randn(r, 1, h2, scale=0.8), randn(r, 1, scale=0.3))]}


def _conv_spec(r, size: int, channels: int = 3, flat: bool = False) -> dict:
    return {"kind": "conv", "flat": flat,
            "weights": [(randn(r, channels, 1, 3, 3, scale=0.5), randn(r, channels, scale=0.2)),
                        (randn(r, 1, channels * size * size, scale=0.4), randn(r, 1, scale=0.2))]}


@exercise(prepare=_prepare_penalty, compare=_v_penalty,
          hint="mix each real sample with its fake using that sample's own alpha, let autograd take the critic's "
               "gradient at the mixtures in a way that can itself be differentiated, then per sample: the "
               "Euclidean norm of the whole gradient, its distance from 1 squared, averaged over the batch")
def gradient_penalty(r):
    """Check ``gradient_penalty(critic, real, fake, alpha) -> scalar tensor`` (WGAN-GP, without lambda)."""
    cases = [
        Case("B=4 images (1, 4, 4), a conv critic", _conv_spec(r, 4), randn(r, 4, 1, 4, 4), randn(r, 4, 1, 4, 4),
             torch.tensor([0.7, 0.1, 0.4, 0.95])),
        Case("B=3 samples of shape (2, 3), an MLP critic", _mlp_spec(r, 6), randn(r, 3, 2, 3), randn(r, 3, 2, 3),
             torch.tensor([0.2, 0.9, 0.5])),
        Case("B=5 points in the plane, a critic that returns shape (B,)", _mlp_spec(r, 2, flat=True),
             randn(r, 5, 2, scale=1.5), randn(r, 5, 2), torch.tensor([0.0, 1.0, 0.3, 0.6, 0.8])),
    ]
    for i in range(3):
        B = int(r.integers(2, 6))
        if i == 1:
            shape = (1, B, B)
            spec = _conv_spec(r, B, channels=2, flat=bool(r.integers(0, 2)))
            shape = (B, *shape)
        else:
            shape = (B, int(r.integers(2, 4)), B if i == 0 else int(r.integers(2, 5)))
            spec = _mlp_spec(r, shape[1] * shape[2], hidden=(int(r.integers(3, 8)), int(r.integers(3, 8))))
        alpha = as_tensor(r.uniform(0.0, 1.0, size=B))
        cases.append(Case(f"random #{i + 1} (samples of shape {shape[1:]}, B={B})", spec, randn(r, *shape),
                          randn(r, *shape, scale=1.5), alpha))
    return cases
