"""Checks for lesson 07, GAN fundamentals: the discriminator's loss, the non-saturating generator loss
and the optimal discriminator (the WGAN-GP gradient penalty is checked in
:mod:`course.checks.lesson_07_penalty`).

Written with the check kit (:mod:`course.checks.kit`). Expected answers come from
:mod:`course.nn.gan` (tested against ``F.binary_cross_entropy_with_logits`` and hand formulas), computed
in the comparison after the student's function has run. Real and fake batches differ in size, so a
mean over the concatenated batch shows; the penalty's inputs have more than two dimensions, so a norm
over one dimension shows, and some have a last dimension equal to the batch size, so an alpha that
varies inside a sample runs and is named.

The gradient penalty is called with a critic: a small tanh/softplus network (its second derivatives
are not zero) built from weights drawn from the case's generator. The critic is built afresh for every
call from those weights (plain tensors, compared before and after like every input), and the value
returned is judged together with its gradient with respect to the critic's weights: a penalty built
from a gradient taken without ``create_graph=True`` has the right value but trains nothing.

Lesson: 07_gan_fundamentals
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from ..nn import gan
from .kit import Case, CheckFailure, against, as_array, exercise, randn

LESSON = "07_gan_fundamentals"
TOL = dict(rtol=1e-4, atol=1e-5)
GRAD_TOL = dict(rtol=1e-3, atol=1e-5)


def _loss_compare(reference, mistakes: dict):
    """A scalar loss tensor that keeps its gradient, then its value against ``reference`` (mistakes named)."""
    judge = against(reference, mistakes, **TOL)

    def compare(got, *args):
        if isinstance(got, (float, int, np.floating, np.integer)):
            raise CheckFailure("you returned a Python number; return the loss tensor itself (no .item()) so that "
                               "loss.backward() can train the network")
        if not torch.is_tensor(got):
            raise CheckFailure(f"expected a torch tensor, got {type(got).__name__}")
        if got.numel() != 1:
            raise CheckFailure(f"expected one number (a scalar loss), got a tensor of shape {tuple(got.shape)}")
        if any(a.requires_grad for a in args) and not got.requires_grad:
            raise CheckFailure("the loss is cut off from the logits (no gradient): compute it with torch operations "
                               "on the logits, without .detach(), .item() or NumPy")
        judge(got.detach().reshape(()), *[a.detach() for a in args])

    return compare


def _bce(logits, label: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label), reduction="none")


# ---------------------------------------------------------------------------- discriminator_loss
def reference_discriminator_loss(real_logits, fake_logits):
    """Mean BCE of the real logits against 1 plus mean BCE of the fake logits against 0."""
    return gan.discriminator_loss(real_logits, fake_logits)


def _d_swapped(real_logits, fake_logits):
    return _bce(real_logits, 0.0).mean() + _bce(fake_logits, 1.0).mean()


def _d_sigmoid_twice(real_logits, fake_logits):
    return _bce(torch.sigmoid(real_logits), 1.0).mean() + _bce(torch.sigmoid(fake_logits), 0.0).mean()


def _d_sum(real_logits, fake_logits):
    return _bce(real_logits, 1.0).sum() + _bce(fake_logits, 0.0).sum()


def _d_concatenated(real_logits, fake_logits):
    return torch.cat([_bce(real_logits, 1.0).reshape(-1), _bce(fake_logits, 0.0).reshape(-1)]).mean()


def _d_halved(real_logits, fake_logits):
    return (_bce(real_logits, 1.0).mean() + _bce(fake_logits, 0.0).mean()) / 2


def _d_value_itself(real_logits, fake_logits):
    return -(_bce(real_logits, 1.0).mean() + _bce(fake_logits, 0.0).mean())


def _d_naive_log(real_logits, fake_logits):
    return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()


NAIVE_LOG = ("that is log(sigmoid(...)) computed as written: for a confident logit the sigmoid rounds to 0 or 1 and "
             "its log to -inf; compute the loss from the logits (binary cross-entropy with logits, or F.logsigmoid)")

D_MISTAKES = {
    _d_swapped: "that is what swapped labels give (real labelled 0, fake 1)",
    _d_sigmoid_twice: "that is what a sigmoid applied twice gives: the inputs are logits, and BCE with logits "
                      "applies the sigmoid itself",
    _d_sum: "that is the sum over each batch; take the mean",
    _d_concatenated: "that is one mean over the concatenated batch; take the mean over the real logits plus the "
                     "mean over the fake logits (the batches differ in size here)",
    _d_halved: "that is half the loss: add the two means, do not average them",
    _d_value_itself: "that is V(D, G) itself, which the discriminator maximizes; its loss is the negative",
    _d_naive_log: NAIVE_LOG,
}


@exercise(compare=_loss_compare(reference_discriminator_loss, D_MISTAKES),
          hint="the discriminator wants D(x) = sigmoid(logit) near 1 on real samples and near 0 on fakes: "
               "binary cross-entropy with those labels, computed from the logits; each batch is averaged on "
               "its own, and the two averages are added")
def discriminator_loss(r):
    """Check ``discriminator_loss(real_logits, fake_logits) -> scalar tensor``."""
    real = torch.tensor([2.0, 0.5, -1.0, 3.0, 0.0])
    fake = torch.tensor([-2.0, 1.0, -0.5])
    cases = [
        Case("5 real and 3 fake logits", real, fake),
        Case("logits of shape (B, 1), batches of 4 and 6", randn(r, 4, 1, scale=2.0), randn(r, 6, 1, scale=2.0)),
        Case("returns a tensor that can be back-propagated", randn(r, 3, scale=1.5).requires_grad_(True),
             randn(r, 5, scale=1.5).requires_grad_(True)),
        Case("a confident discriminator (large logits)", torch.tensor([8.0, 6.0, 9.5]), torch.tensor([-7.0, -9.0])),
        Case("a fooled discriminator (confident and wrong)", torch.tensor([-20.0, -30.0]), torch.tensor([20.0, 25.0, 18.0])),
    ]
    for i in range(3):
        n_real = int(r.integers(2, 9))
        n_fake = int(r.choice([n for n in range(2, 9) if n != n_real]))
        scale = float(r.uniform(0.5, 4.0))
        cases.append(Case(f"random #{i + 1} ({n_real} real, {n_fake} fake)", randn(r, n_real, scale=scale),
                          randn(r, n_fake, scale=scale) - 1.0))
    return cases


# ---------------------------------------------------------------------------- generator_loss
def reference_generator_loss(fake_logits):
    """The non-saturating loss ``mean(-log sigmoid(fake_logits))``."""
    return gan.generator_loss(fake_logits)


def _g_saturating(fake_logits):
    return F.logsigmoid(-fake_logits).mean()


def _g_fake_label(fake_logits):
    return _bce(fake_logits, 0.0).mean()


def _g_sigmoid_twice(fake_logits):
    return _bce(torch.sigmoid(fake_logits), 1.0).mean()


def _g_sum(fake_logits):
    return _bce(fake_logits, 1.0).sum()


def _g_no_minus(fake_logits):
    return F.logsigmoid(fake_logits).mean()


def _g_naive_log(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits)).mean()


G_MISTAKES = {
    _g_saturating: "that is the saturating minimax loss mean(log(1 - D(G(z)))), whose gradient vanishes while "
                   "the discriminator rejects the fakes",
    _g_fake_label: "that is what labelling the fakes 0 gives (swapped labels): the generator wants its samples "
                   "called real",
    _g_sigmoid_twice: "that is what a sigmoid applied twice gives: the inputs are logits",
    _g_sum: "that is the sum over the batch; take the mean",
    _g_no_minus: "the sign is flipped: a loss to minimize is -log D(G(z))",
    _g_naive_log: NAIVE_LOG,
}


@exercise(compare=_loss_compare(reference_generator_loss, G_MISTAKES),
          hint="the generator wants the discriminator to call its samples real: the same binary cross-entropy "
               "as for a real sample, label 1, on the fake logits, averaged over the batch")
def generator_loss(r):
    """Check ``generator_loss(fake_logits) -> scalar tensor`` (non-saturating)."""
    cases = [
        Case("4 fake logits", torch.tensor([-3.0, -1.0, 0.0, 2.0])),
        Case("logits of shape (B, 1)", randn(r, 5, 1, scale=2.0)),
        Case("returns a tensor that can be back-propagated", randn(r, 6, scale=2.0).requires_grad_(True)),
        Case("fakes the discriminator rejects (very negative logits)", torch.tensor([-8.0, -6.5, -9.0, -7.0])),
        Case("fakes rejected with full confidence", torch.tensor([-120.0, -90.0, -100.0])),
    ]
    for i in range(3):
        n = int(r.integers(2, 12))
        cases.append(Case(f"random #{i + 1} ({n} logits)", randn(r, n, scale=float(r.uniform(0.5, 4.0)))))
    return cases


# ---------------------------------------------------------------------------- optimal_discriminator
def reference_optimal_discriminator(p_data, p_g):
    """``p_data / (p_data + p_g)`` elementwise, 0.5 where both are 0."""
    return gan.optimal_discriminator(p_data, p_g)


def _dstar_swapped(p_data, p_g):
    return reference_optimal_discriminator(p_g, p_data)


def _dstar_nan(p_data, p_g):
    with np.errstate(divide="ignore", invalid="ignore"):
        return p_data / (p_data + p_g)


def _dstar_zero(p_data, p_g):
    total = p_data + p_g
    return np.divide(p_data, total, out=np.zeros_like(total), where=total > 0)


def _dstar_ratio(p_data, p_g):
    with np.errstate(divide="ignore", invalid="ignore"):
        return p_data / p_g


DSTAR_MISTAKES = {
    _dstar_swapped: "that is p_g / (p_data + p_g): D(x) is the probability that x is real",
    _dstar_nan: "that is what p_data / (p_data + p_g) gives where both densities are 0: 0 / 0 is NaN; there D* is 1/2",
    _dstar_zero: "where both densities are 0 the answer is 1/2 (neither side is more likely), not 0",
    _dstar_ratio: "that is the density ratio p_data / p_g; D* divides by the sum p_data + p_g",
}


@exercise(compare=against(reference_optimal_discriminator, DSTAR_MISTAKES, convert=lambda g: as_array(g, "an array"),
                          rtol=1e-6, atol=1e-9),
          hint="maximize p_data log D + p_g log(1 - D) for each x on its own (set the derivative to zero); "
               "then decide the points where both densities are 0 without dividing by zero")
def optimal_discriminator(r):
    """Check ``optimal_discriminator(p_data, p_g) -> D*`` elementwise (arrays of densities)."""
    cases = [
        Case("five points", np.array([0.1, 0.4, 0.0, 0.5, 0.0]), np.array([0.3, 0.4, 0.2, 0.0, 0.0])),
        Case("equal densities give 1/2", np.array([0.25, 1.5, 3.0]), np.array([0.25, 1.5, 3.0])),
        Case("a grid of densities (2-D)", np.array([[0.0, 0.2, 1.0], [0.5, 0.0, 0.05]]),
             np.array([[0.0, 0.6, 0.0], [0.5, 0.3, 0.15]])),
    ]
    for i in range(3):
        shape = (int(r.integers(4, 12)),) if i < 2 else (int(r.integers(2, 5)), int(r.integers(2, 6)))
        p = r.gamma(1.0, 1.0, size=shape) * (r.random(shape) > 0.3)
        q = r.gamma(1.0, 1.0, size=shape) * (r.random(shape) > 0.3)
        both = r.random(shape) < 0.2
        p[both], q[both] = 0.0, 0.0
        p.flat[0], q.flat[0] = 0.0, 0.0                                    # at least one point where both are 0
        p.flat[-1], q.flat[-1] = float(r.uniform(0.1, 2.0)), float(r.uniform(0.1, 2.0))
        cases.append(Case(f"random #{i + 1} (shape {shape})", p, q))
    return cases
