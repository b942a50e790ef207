"""Checks for lesson 06, a music Transformer: the skewing of relative logits, causal relative attention,
nucleus (top-p) filtering and one attention step with a key/value cache.

Written with the check kit (:mod:`course.checks.kit`). Inputs are float32 torch tensors; expected answers
come from :mod:`course.nn.relative` and :mod:`course.generate` (tested against a naive loop, Shaw et al.'s
gather and ``torch``'s attention in ``tests/``) or from a loop written here, and are computed in the
comparison, after the student's function has run. Cases use random values (so a misplaced entry shows),
several lengths including 1 and 2, and batch dimensions of different ranks. Only the entries on and below
the diagonal of a skewed tensor are compared: the ones above it are left-over values by construction.

Lesson: 06_music_transformer
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import generate as _gen
from ..nn import relative as _rel
from .kit import Case, CheckFailure, against, as_array, as_tensor, close, exercise, matches, randn, short

LESSON = "06_music_transformer"
TOL = dict(rtol=1e-4, atol=1e-5)
NEG_INF = float("-inf")


def _batch(r: np.random.Generator, rank: int) -> tuple[int, ...]:
    return tuple(int(s) for s in r.integers(1, 4, size=rank))


def _lower_only(x) -> np.ndarray:
    """``x`` as float64 with every entry above the diagonal (of the last two axes) set to 0."""
    a = as_array(x)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        return a                      # the comparison names the wrong shape
    keep = np.tril(np.ones(a.shape[-2:], dtype=bool))
    return np.where(keep, a, 0.0)


# ---------------------------------------------------------------------------- skew
def reference_skew(rel):
    """``out[..., i, j] = rel[..., i, L - 1 - i + j]`` for ``j <= i``, 0 above the diagonal: a plain loop."""
    L = rel.shape[-1]
    out = torch.zeros_like(rel)
    for i in range(L):
        for j in range(i + 1):
            out[..., i, j] = rel[..., i, L - 1 - i + j]
    return _lower_only(out)


def _skew_by(pad: tuple[int, int], rows: slice):
    def wrong(rel):
        L = rel.shape[-1]
        flat = F.pad(rel, pad).reshape(*rel.shape[:-2], L + 1, L)
        return _lower_only(flat[..., rows, :])
    return wrong


_skew_drop_last_row = _skew_by((1, 0), slice(None, -1))
_skew_pad_right = _skew_by((0, 1), slice(1, None))
_skew_pad_right_drop_last = _skew_by((0, 1), slice(None, -1))


def _skew_not_skewed(rel):
    return _lower_only(rel)


SKEW_MISTAKES = {
    _skew_drop_last_row: "that is what dropping the last row instead of the first gives (the classic off-by-one: "
                         "every row ends up one distance off)",
    _skew_pad_right: "that is what padding the zero column on the right gives; it goes on the left, in front of "
                     "the farthest distance",
    _skew_pad_right_drop_last: "that is a pad on the right and the last row dropped: both steps on the wrong side",
    _skew_not_skewed: "that is rel itself, not skewed: its column c is the distance c - (L - 1), not the key c",
}


def _skew_convert(got):
    if got is None:
        raise CheckFailure("your function returned None: did you forget `return`")
    return _lower_only(got)


@exercise(compare=against(reference_skew, SKEW_MISTAKES, convert=_skew_convert, **TOL),
          hint="pad one column of zeros on the LEFT of the last axis, reshape the last two axes to (L + 1, L), "
               "then drop the FIRST row; keep the leading (batch, head) axes as they are, and check entry [i, j] "
               "against rel[i, L - 1 - i + j] on a 3 x 3 example by hand")
def skew(r):
    """Check ``skew(rel) -> (..., L, L)`` with ``out[..., i, j] = rel[..., i, L - 1 - i + j]`` for ``j <= i``
    (entries above the diagonal are not checked)."""
    cases = [Case("L=3, no batch axes", randn(r, 3, 3)),
             Case("L=1 (one position: distance 0 only)", randn(r, 1, 1)),
             Case("L=2", randn(r, 2, 2)),
             Case("L=4, batch (2,)", randn(r, 2, 4, 4)),
             Case("L=5, batch (2, 3): batch and heads", randn(r, 2, 3, 5, 5)),
             Case("L=2, batch (3, 1, 2)", randn(r, 3, 1, 2, 2))]
    for i in range(3):
        L = int(r.integers(3, 11))
        batch = _batch(r, int(r.integers(0, 4)))
        cases.append(Case(f"random #{i + 1} (L={L}, batch {batch})", randn(r, *batch, L, L)))
    return cases


# ---------------------------------------------------------------------------- relative_attention
def reference_relative_attention(q, k, v, E):
    """``softmax((Q K^T + S_rel) / sqrt(d) + causal mask) V`` with ``S_rel`` from :mod:`course.nn.relative`."""
    L, d = q.shape[-2], q.shape[-1]
    logits = (q @ k.transpose(-2, -1) + _rel.relative_logits(q, E)) / math.sqrt(d)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    return torch.softmax(logits.masked_fill(~causal, NEG_INF), dim=-1) @ v


def _relattn(q, k, v, E, *, rel="skew", mask=True, scale_rel=True, scale=None):
    L, d = q.shape[-2], q.shape[-1]
    raw = q @ E.transpose(-1, -2)                                             # (..., L, L): distance columns
    S = {"skew": _rel.skew(raw), "none": torch.zeros_like(raw), "raw": raw,
         "drop_last": F.pad(raw, (1, 0)).reshape(*raw.shape[:-2], L + 1, L)[..., :-1, :]}[rel]
    s = math.sqrt(d) if scale is None else scale
    logits = (q @ k.transpose(-2, -1) + S) / s if scale_rel else q @ k.transpose(-2, -1) / s + S
    if mask:
        logits = logits.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), NEG_INF)
    return torch.softmax(logits, dim=-1) @ v


def _relattn_no_mask(q, k, v, E):
    return _relattn(q, k, v, E, mask=False)


def _relattn_no_relative(q, k, v, E):
    return _relattn(q, k, v, E, rel="none")


def _relattn_not_skewed(q, k, v, E):
    return _relattn(q, k, v, E, rel="raw")


def _relattn_drop_last_row(q, k, v, E):
    return _relattn(q, k, v, E, rel="drop_last")


def _relattn_rel_outside_scale(q, k, v, E):
    return _relattn(q, k, v, E, scale_rel=False)


def _relattn_unscaled(q, k, v, E):
    return _relattn(q, k, v, E, scale=1.0)


RELATTN_MISTAKES = {
    _relattn_no_mask: "the causal mask is missing: above the diagonal the skewed logits are left-over values (and "
                      "the keys are in the future), so skewing is only defined under the mask",
    _relattn_no_relative: "that is plain causal attention: the relative term S_rel is missing",
    _relattn_not_skewed: "that adds Q E^T without skewing it: its columns are distances, not keys",
    _relattn_drop_last_row: "that skews by dropping the last row instead of the first (every query one distance off)",
    _relattn_rel_outside_scale: "S_rel is added after the division: it belongs inside, (Q K^T + S_rel) / sqrt(d)",
    _relattn_unscaled: "the logits are not divided by sqrt(d)",
}


@exercise(compare=against(reference_relative_attention, RELATTN_MISTAKES, **TOL),
          hint="the logits are (Q K^T + skew(Q E^T)) / sqrt(d) with d the size of a query; set the entries above "
               "the diagonal to -inf before the softmax over the keys, then multiply by v")
def relative_attention(r):
    """Check ``relative_attention(q, k, v, E) -> (..., L, d_v)``: causal attention with relative logits."""
    def case(name, batch, L, d, dv, heads_table=False):
        table = (batch[-1:] if heads_table else ()) + (L, d)
        return Case(name, randn(r, *batch, L, d), randn(r, *batch, L, d), randn(r, *batch, L, dv),
                    randn(r, *table))
    cases = [case("L=4, d=3, d_v=2, no batch", (), 4, 3, 2),
             case("L=1 (attends to itself only)", (), 1, 4, 3),
             case("L=2, batch (3,)", (3,), 2, 4, 2),
             case("L=6, batch 2 x 4 heads, one table E (4, 6, d) per head", (2, 4), 6, 4, 5, heads_table=True)]
    for i in range(3):
        L, d, dv = int(r.integers(3, 9)), int(r.integers(2, 7)), int(r.integers(2, 6))
        batch = _batch(r, int(r.integers(0, 3)))
        cases.append(case(f"random #{i + 1} (batch {batch}, L={L}, d={d}, d_v={dv})", batch, L, d, dv))
    return cases


# ---------------------------------------------------------------------------- top_p_filter
def reference_top_p_filter(logits, p):
    """The smallest set of most likely tokens whose probabilities reach ``p`` (at least one) kept, others -inf."""
    return _gen.top_p_filter(logits, p)


def _sorted_probs(logits):
    return torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)


def _unsort(logits, drop_sorted, order):
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def _top_p_no_shift(logits, p):                           # keep while the running total is at most p
    probs, order = _sorted_probs(logits)
    return _unsort(logits, probs.cumsum(-1) > p, order)


def _top_p_no_shift_keep_one(logits, p):                  # the same, with the most likely token forced in
    probs, order = _sorted_probs(logits)
    drop = probs.cumsum(-1) > p
    drop[..., 0] = False
    return _unsort(logits, drop, order)


def _top_p_unsorted(logits, p):                           # running total in vocabulary order
    probs = torch.softmax(logits, dim=-1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, NEG_INF)


def _top_p_probabilities(logits, p):                      # probabilities (zeros) instead of logits (-inf)
    return torch.softmax(_gen.top_p_filter(logits, p), dim=-1)


def _top_p_drop_nucleus(logits, p):                       # the set inverted: the tail kept
    kept = torch.isfinite(_gen.top_p_filter(logits, p))
    return logits.masked_fill(kept, NEG_INF)


TOP_P_MISTAKES = {
    _top_p_no_shift_keep_one: "that drops the token that makes the running total reach p: the nucleus is the "
                              "smallest set whose total is at least p, so that token belongs in it",
    _top_p_no_shift: "that keeps only the tokens whose running total stays at most p: the token that makes it "
                     "reach p is dropped, and when the most likely token alone has more than p nothing is left",
    _top_p_unsorted: "that adds up the probabilities in vocabulary order; the running total must go from the "
                     "most likely token down (sort first)",
    _top_p_probabilities: "that returns probabilities; return the logits, with -inf for the removed tokens",
    _top_p_drop_nucleus: "that removes the nucleus and keeps the tail: the set the other way round",
}


def _nucleus_case(r: np.random.Generator, shape: tuple, scale: float, p_range=(0.3, 0.95), margin: float = 2e-3):
    """Logits and a p that no running total comes within ``margin`` of (so float rounding cannot decide)."""
    for _ in range(200):
        z = r.standard_normal(shape) * scale
        p = float(r.uniform(*p_range))
        probs = np.sort(np.exp(z - z.max(-1, keepdims=True)), axis=-1)[..., ::-1]
        probs = probs / probs.sum(-1, keepdims=True)
        if np.abs(np.cumsum(probs, -1) - p).min() > margin:
            return as_tensor(z), round(p, 4)
    raise RuntimeError("no nucleus case found")           # pragma: no cover


@exercise(compare=against(reference_top_p_filter, TOP_P_MISTAKES, rtol=1e-6, atol=1e-7),
          hint="softmax, then sort each row's probabilities from the largest down and add them up; keep every "
               "token up to and including the one where the total first reaches p (so at least one), put the "
               "decision back in vocabulary order, and set the others to -inf in a copy of the logits")
def top_p_filter(r):
    """Check ``top_p_filter(logits, p) -> logits``: the nucleus kept, every other entry set to ``-inf``."""
    confident = np.array([4.0, 1.0, 0.5, 0.0, -1.0, -2.0])        # the largest alone has probability 0.90
    cases = [Case("a confident model: the most likely token alone has more than p = 0.6",
                  as_tensor(confident[r.permutation(6)]), 0.6)]
    fixed = [("8 tokens", (8,), 1.5),
             ("a batch of 4 rows, one p for all", (4, 10), 2.0),
             ("flat logits: the nucleus is most of the vocabulary", (12,), 0.3),
             ("a batch (2, 3) of rows", (2, 3, 7), 1.0)]
    for name, shape, scale in fixed:
        z, p = _nucleus_case(r, shape, scale)
        cases.append(Case(f"{name}, p = {p}", z, p))
    for i in range(3):
        shape = (int(r.integers(5, 30)),) if i != 1 else (int(r.integers(2, 5)), int(r.integers(5, 20)))
        z, p = _nucleus_case(r, shape, float(r.uniform(0.5, 3.0)), p_range=(0.1, 0.97))
        cases.append(Case(f"random #{i + 1} (shape {shape}, p = {p})", z, p))
    return cases


# ---------------------------------------------------------------------------- kv_cache_step
def reference_kv_cache_step(q, k, v, past_k, past_v):
    """Append the new key and value at the end of the time axis, then attend with the one new query."""
    keys, values = torch.cat([past_k, k], dim=-2), torch.cat([past_v, v], dim=-2)
    w = torch.softmax(q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ values, keys, values


def _kv_attend(q, keys, values, scale=True):
    s = q @ keys.transpose(-2, -1)
    if scale:
        s = s / math.sqrt(q.shape[-1])
    return torch.softmax(s, dim=-1) @ values


def _kv_past_only(q, k, v, past_k, past_v):
    return _kv_attend(q, past_k, past_v), torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)


def _kv_not_extended(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    return _kv_attend(q, keys, values), past_k, past_v


def _kv_prepended(q, k, v, past_k, past_v):
    keys, values = torch.cat([k, past_k], -2), torch.cat([v, past_v], -2)
    return _kv_attend(q, keys, values), keys, values


def _kv_new_only(q, k, v, past_k, past_v):
    return _kv_attend(q, k, v), torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)


def _kv_unscaled(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    return _kv_attend(q, keys, values, scale=False), keys, values


KV_MISTAKES = {
    _kv_not_extended: "the returned cache must hold the new key and value too: P + 1 of each",
    _kv_prepended: "the new key and value go at the END of the cache: it is in time order, oldest first",
    _kv_past_only: "the new query attends to the cached tokens only; it must see itself too (append first, "
                   "then attend)",
    _kv_new_only: "that attends to the new token alone; the cache is there so that it sees every earlier token",
    _kv_unscaled: "the scores are not divided by sqrt(d)",
}

_PARTS = ("the output", "the keys", "the values")


def _validate_kv(got, *args, **kwargs):
    """The triple (out, keys, values), each compared with the reference's (computed only now)."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        what = f"a {type(got).__name__} of {len(got)} items" if isinstance(got, (tuple, list)) else short(got)
        raise CheckFailure(f"return the triple (out, keys, values); got {what}")
    expected = reference_kv_cache_step(*args, **kwargs)
    try:
        for g, e, part in zip(got, expected, _PARTS):
            close(g, e, where=f"of {part}", **TOL)
    except CheckFailure as e:
        for mistake, what in KV_MISTAKES.items():
            if matches(tuple(got), mistake, args, kwargs, **TOL):
                raise CheckFailure(f"{str(e).rstrip('. ')}; {what}") from None
        raise


@exercise(compare=_validate_kv,
          hint="concatenate the new key and value after the cached ones along the time axis (-2); the one new "
               "query attends to all P + 1 keys (no mask is needed: none of them is in its future), with the "
               "usual softmax(q k^T / sqrt(d)); return the output and the longer cache")
def kv_cache_step(r):
    """Check ``kv_cache_step(q, k, v, past_k, past_v) -> (out, keys, values)``: one token against a cache."""
    def case(name, batch, P, d, dv):
        return Case(name, randn(r, *batch, 1, d), randn(r, *batch, 1, d), randn(r, *batch, 1, dv),
                    randn(r, *batch, P, d), randn(r, *batch, P, dv))
    cases = [case("3 cached tokens, d=4, d_v=2, no batch", (), 3, 4, 2),
             case("an empty cache (P=0): the first token", (), 0, 3, 3),
             case("P=1, batch (2,)", (2,), 1, 5, 3),
             case("P=6, batch 2 x 4 heads", (2, 4), 6, 4, 4)]
    for i in range(3):
        P, d, dv = int(r.integers(2, 12)), int(r.integers(2, 7)), int(r.integers(2, 6))
        batch = _batch(r, int(r.integers(0, 3)))
        cases.append(case(f"random #{i + 1} (batch {batch}, P={P}, d={d}, d_v={dv})", batch, P, d, dv))
    return cases
