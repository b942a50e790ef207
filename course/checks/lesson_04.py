"""Checks for lesson 04, polyphonic chorales: the piano-roll NLL in nats per frame, the per-key marginal
baseline, the autoregressive mask and sampling a frame key by key.

Written with the check kit (:mod:`course.checks.kit`): each ``@exercise`` function builds the cases
from the generator it is handed; expected answers come from the reference code in ``course.metrics``
and ``course.nn.polyphonic``, computed in the comparison after the student's function has run.
Sampling is checked without luck: the random numbers are an argument, so one answer is right.

Lesson: 04_polyphonic_chorales
"""
from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..nn import polyphonic
from .kit import Case, CheckFailure, as_tensor, exercise, number

LESSON = "04_polyphonic_chorales"
_UNIT = "nats per frame"


def _close(got: float, expected: float, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """One number against another, with this lesson's messages (a non-finite NLL is usually a log of 0)."""
    if not np.isfinite(got):
        raise CheckFailure(f"your result is {got} (a log of 0 somewhere?)")
    if not np.isclose(got, expected, rtol=rtol, atol=atol):
        raise CheckFailure(f"wrong value: expected {expected:.6g}, got {got:.6g}")


# ---------------------------------------------------------------------------- bernoulli_nll_per_frame
def reference_bernoulli_nll_per_frame(logits, rolls, mask) -> float:
    return metrics.nll_per_frame(logits, rolls, mask)


def _carries_gradients(got, logits) -> None:
    """Section 4 trains the LSTM with ``loss.backward()`` on this function's result: it must be a torch
    tensor computed from the logits, with a ``grad_fn``, not a number cut off from them."""
    if got is None:
        raise CheckFailure("your function returned None; did you forget `return`?")
    if isinstance(got, (bool, int, float)):        # a NumPy scalar arrives here too, as a float
        raise CheckFailure(f"you returned a number ({type(got).__name__}), not a tensor; return the tensor "
                           "itself, without .item(), float() or NumPy, so that section 4 can train the LSTM "
                           "with loss.backward()")
    if isinstance(got, (np.ndarray, np.generic)):
        raise CheckFailure(f"you returned a NumPy value ({type(got).__name__}); compute with torch operations on "
                           "the logits: NumPy cuts the gradient that section 4 trains the LSTM with")
    if not torch.is_tensor(got):
        raise CheckFailure(f"expected a torch tensor (one number), got {type(got).__name__}")
    if logits.requires_grad and got.grad_fn is None:
        raise CheckFailure("your tensor is detached from the logits (no gradient: .detach(), torch.tensor(...) "
                           "of a number, or a NumPy detour?); compute it with torch operations on the logits, "
                           "so that section 4 can train the LSTM with loss.backward()")


def _compare_nll(got, logits, rolls, mask):
    _carries_gradients(got, logits)
    g = number(got, unit=_UNIT)
    e = reference_bernoulli_nll_per_frame(logits.detach(), rolls, mask)
    n_keys = logits.shape[-1]
    if np.isfinite(g) and e and np.isclose(g * n_keys, e, rtol=1e-4):
        raise CheckFailure(f"got {g:.6g}, {n_keys} times too small: sum over the keys of a frame, "
                           "average only over the frames")
    _close(g, e)


@exercise(compare=_compare_nll,
          hint="a frame costs the sum of its keys' binary cross-entropies, computed from the logits in a way "
               "that stays finite for very confident guesses (section 2); then average these frame costs over "
               "the real frames only, the ones the mask marks, whatever piece they belong to, and keep the "
               "result a torch tensor computed from the logits, so that gradients can flow back")
def bernoulli_nll_per_frame(r):
    """Check ``bernoulli_nll_per_frame(logits (B, T, P), rolls (B, T, P), mask (B, T)) -> nats per frame``,
    a scalar tensor that carries gradients: every case's logits require them, as in training."""
    def batch(B, T, P, density=0.25, scale=2.0, lengths=None):
        logits = as_tensor(r.normal(size=(B, T, P)) * scale).requires_grad_(True)
        rolls = as_tensor(r.random((B, T, P)) < density)
        lengths = lengths or [T] * B
        mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
        rolls = rolls * mask[..., None]                 # padding frames are silent, as collate makes them
        return logits, rolls, mask

    cases = [
        Case("one frame of two keys, logits 0 (p = 1/2 each)",
             torch.zeros(1, 1, 2, requires_grad=True), as_tensor([[[1.0, 0.0]]]),
             torch.ones(1, 1, dtype=torch.bool)),
        Case("one piece, no padding", *batch(1, 6, 5)),
        Case("two pieces, no padding", *batch(2, 5, 8)),
        Case("padding frames are left out (lengths 7 and 3)", *batch(2, 7, 6, lengths=[7, 3])),
        Case("three pieces of lengths 4, 9 and 1", *batch(3, 9, 88, density=0.05, lengths=[4, 9, 1])),
    ]
    z, v, m = batch(1, 3, 4)
    # confident and wrong: log(sigmoid(-120)) underflows
    z = as_tensor([[[120.0, -120.0, 30.0, -30.0]] * 3]).requires_grad_(True)
    v = as_tensor([[[0.0, 1.0, 1.0, 0.0]] * 3])
    cases.append(Case("very confident wrong guesses (logits of +-120)", z, v, m))
    for i in range(3):
        B, T, P = int(r.integers(1, 5)), int(r.integers(2, 12)), int(r.integers(3, 30))
        lengths = [int(x) for x in r.integers(1, T + 1, size=B)]
        lengths[0] = T
        cases.append(Case(f"random #{i + 1}", *batch(B, T, P, density=float(r.uniform(0.05, 0.5)),
                                                      scale=float(r.uniform(0.5, 4)), lengths=lengths)))
    return cases


# ---------------------------------------------------------------------------- marginal_baseline_nll
def reference_marginal_baseline_nll(train_rolls, test_rolls, smoothing: float = 1.0) -> float:
    return metrics.marginal_nll(train_rolls, test_rolls, smoothing)


def _compare_marginal(got, train_rolls, test_rolls, smoothing=1.0):
    _close(number(got, unit=_UNIT), reference_marginal_baseline_nll(train_rolls, test_rolls, smoothing))


@exercise(compare=_compare_marginal,
          hint="count over all training frames together how often each key sounds and smooth the counts as "
               "the formula says (alpha imagined frames with the key on, alpha with it off); a test frame then "
               "costs the log-probabilities of its sounding and of its silent keys, and the answer averages "
               "that cost over all test frames as one pool, not piece by piece")
def marginal_baseline_nll(r):
    """Check ``marginal_baseline_nll(train_rolls, test_rolls, smoothing=1.0) -> nats per frame``."""
    def rolls(n, P, lo=2, hi=12, density=None):
        dens = r.uniform(0.05, 0.6, size=P) if density is None else np.full(P, density)
        return [(r.random((int(r.integers(lo, hi + 1)), P)) < dens).astype(np.uint8) for _ in range(n)]

    hand_train = [np.array([[1, 0], [1, 0], [0, 0]], np.uint8)]
    hand_test = [np.array([[1, 0], [0, 1]], np.uint8)]
    silent_key = rolls(3, 6)
    for x in silent_key:
        x[:, 4] = 0                                        # key 4 never sounds in training ...
    unseen_test = rolls(2, 6)
    unseen_test[0][0, 4] = 1                               # ... but does in the test
    cases = [
        Case("by hand: 3 training frames, 2 test frames", hand_train, hand_test),
        Case("a key that never sounds in training (smoothing keeps it possible)", silent_key, unseen_test),
        Case("smoothing=0.5", rolls(2, 5), rolls(2, 5), smoothing=0.5),
        Case("pieces of very different lengths: average over frames, not pieces",
             rolls(3, 4), [rolls(1, 4, 1, 1)[0], rolls(1, 4, 40, 40)[0]]),
    ]
    for i in range(3):
        P = int(r.integers(3, 20))
        cases.append(Case(f"random #{i + 1}", rolls(int(r.integers(1, 6)), P), rolls(int(r.integers(1, 4)), P),
                          smoothing=float(np.round(r.uniform(0.1, 2.0), 2))))
    return cases


# ---------------------------------------------------------------------------- autoregressive_mask
def reference_autoregressive_mask(n: int):
    return polyphonic.autoregressive_mask(n)


def _compare_mask(got, n):
    if hasattr(got, "detach"):
        g = got.detach().cpu().numpy()
    elif isinstance(got, (np.ndarray, list, tuple)):
        g = np.asarray(got)
    else:
        raise CheckFailure(f"expected a tensor or array of shape ({n}, {n}), got {type(got).__name__}")
    try:
        g = g.astype(np.float64)
    except (TypeError, ValueError):
        raise CheckFailure("the mask must hold numbers or booleans (1/True = connected)") from None
    if g.shape != (n, n):
        raise CheckFailure(f"wrong shape: expected ({n}, {n}), got {g.shape}")
    e = reference_autoregressive_mask(n).numpy().astype(np.float64)
    if np.array_equal(g, e):
        return
    if n > 1 and np.array_equal(g, e.T):
        raise CheckFailure("the mask is transposed: row k is output k, column j is input j, and output k may "
                           "see input j only when j < k")
    if np.any(np.diag(g) != 0):
        raise CheckFailure("the diagonal must be 0: output k must not see input k, the very value it predicts")
    k, j = (int(x) for x in np.argwhere(g != e)[0])
    raise CheckFailure(f"wrong entry at [{k}, {j}]: expected {e[k, j]:g}, got {g[k, j]:g}")


@exercise(compare=_compare_mask,
          hint="row k is output k and column j is input j; output k may read only the inputs that come "
               "strictly before it, never itself or a later one. Draw the 3 x 3 case by hand first")
def autoregressive_mask(r):
    """Check ``autoregressive_mask(n) -> (n, n)`` with ``mask[k, j] = 1`` exactly when ``j < k``."""
    cases = [Case(f"n = {n}", n) for n in (3, 1, 2, 88)]
    return cases + [Case(f"random #{i + 1}", int(n)) for i, n in enumerate(r.integers(4, 40, size=3))]


# ---------------------------------------------------------------------------- sample_frame_autoregressive
class _Conditional:
    """A small fully visible sigmoid belief net: ``logit_k = b_k + sum_{j<k} W[k, j] v_j``.

    Called with the keys decided so far, ``v[:k]`` (any sequence of 0/1), it returns the logit of key ``k``.
    """

    def __init__(self, b, W):
        self.b, self.W = np.asarray(b, np.float64), np.asarray(W, np.float64)

    def __call__(self, prefix) -> float:
        if hasattr(prefix, "detach"):
            prefix = prefix.detach().cpu().numpy()
        v = np.asarray(prefix, dtype=np.float64).reshape(-1)
        k = len(v)
        if k >= len(self.b):
            raise ValueError(f"next_logit got {k} keys, but it predicts key k from the k keys before it "
                             f"(0 to {len(self.b) - 1} of them); pass only v[:k]")
        return float(self.b[k] + self.W[k, :k] @ v)

    def __eq__(self, other) -> bool:
        return (isinstance(other, _Conditional) and np.array_equal(self.b, other.b)
                and np.array_equal(self.W, other.W))

    __hash__ = None


def reference_sample_frame_autoregressive(next_logit, n_keys: int, uniform):
    return polyphonic.sample_frame_autoregressive(next_logit, n_keys, uniform)


def _compare_sample(got, next_logit, n_keys, uniform):
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    if not isinstance(got, (np.ndarray, list, tuple)):
        raise CheckFailure(f"expected an array of {n_keys} zeros and ones, got {type(got).__name__}")
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailure(f"expected an array of {n_keys} zeros and ones") from None
    if g.shape != (n_keys,):
        raise CheckFailure(f"wrong shape: expected ({n_keys},), got {g.shape}")
    if not np.isin(g, (0.0, 1.0)).all():
        raise CheckFailure("a frame holds only 0 and 1 (return the samples, not the probabilities)")
    e = reference_sample_frame_autoregressive(next_logit, n_keys, uniform)
    if not np.array_equal(g, e):
        k = int(np.flatnonzero(g != e)[0])
        raise CheckFailure(f"key {k} should be {int(e[k])}, got {int(g[k])} (keys before it agree: "
                           f"{'yes' if np.array_equal(g[:k], e[:k]) else 'no'})")


@exercise(compare=_compare_sample,
          hint="decide the keys one at a time, from the lowest: the probability of key k comes from the keys "
               "already decided (and only those), key k sounds when its own uniform number falls below that "
               "probability, and that decision becomes part of what the next key is conditioned on")
def sample_frame_autoregressive(r):
    """Check ``sample_frame_autoregressive(next_logit, n_keys, uniform) -> (n_keys,) 0/1 array``."""
    def fvsbn(n, coupling=3.0, bias=-1.0):
        b = r.normal(size=n) + bias
        W = np.tril(r.normal(size=(n, n)) * coupling, -1)
        return _Conditional(b, W)

    n = 12
    chord_b = np.full(n, -4.0)
    chord_b[0] = 3.0                                     # key 0 almost surely on ...
    chord_W = np.zeros((n, n))
    for k in range(n):
        for j in range(k):
            if k - j in (4, 7):
                chord_W[k, j] = 6.0                      # ... and each key a third or a fifth above a sounding one
    cases = [
        Case("independent keys (the logit ignores the keys before)",
             _Conditional(r.normal(size=6), np.zeros((6, 6))), 6, r.random(6)),
        Case("a chord: each key turns on a third and a fifth above it",
             _Conditional(chord_b, chord_W), n, r.uniform(0.05, 0.95, size=n)),
        Case("one key", _Conditional([0.3], [[0.0]]), 1, np.array([0.4])),
        Case("strongly coupled keys", fvsbn(10, coupling=5.0), 10, r.random(10)),
    ]
    for i in range(3):
        m = int(r.integers(4, 30))
        cases.append(Case(f"random #{i + 1}", fvsbn(m, coupling=float(r.uniform(1, 5))), m, r.random(m)))
    return cases


__all__ = ["bernoulli_nll_per_frame", "marginal_baseline_nll", "autoregressive_mask", "sample_frame_autoregressive"]
