"""Relative position attention logits: the "skewing" trick of the Music Transformer.

In relative attention (Shaw et al., 2018) a query at position ``i`` looking at a key at position
``j <= i`` adds ``q_i . e_(j-i)`` to its logit, where ``e_r`` is a learned vector for the distance
``r = j - i`` (``r = 0`` for itself, ``-1`` for the token before, ...):

    S_rel[i, j] = q_i . e_(j - i),      logits = (Q K^T + S_rel) / sqrt(d_head)

The distances of a length-``L`` sequence run from ``-(L-1)`` to ``0``; stack their embeddings as the
rows of ``E`` ``(L, d)``, farthest first, so row ``L-1`` is distance 0.

- :func:`relative_logits_naive` builds ``S_rel`` the way Shaw et al. wrote it: gather ``e_(j-i)`` for
  every pair into an ``(L, L, d)`` tensor ``R`` and take dot products. Memory ``O(L^2 d)``.
- :func:`relative_logits` computes ``Q E^T`` ``(L, L)`` once - entry ``[i, c]`` is ``q_i`` against distance
  ``c - (L-1)`` - and moves every entry to its column with :func:`skew`. Memory ``O(L d + L^2)``
  (Huang et al., 2018, "Music Transformer", section 3.4.1).
- :func:`relative_logits_last` is the one-query case used with a key/value cache: the newest query's
  row of ``Q E^T`` is already in place, so no skewing is needed.

Only the entries on and below the diagonal (``j <= i``) mean anything, so all of this is defined
under a causal mask only. Distances farther than the ``M`` rows of a learned table are clipped to the
farthest learned one, ``-(M-1)`` (Shaw et al. clip the same way): :func:`distance_embeddings`.

Lesson: 06_music_transformer
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import CourseError

__all__ = ["skew", "distance_embeddings", "relative_logits", "relative_logits_naive", "relative_logits_last"]


def skew(rel: Tensor) -> Tensor:
    """Move each entry of ``rel = Q E^T`` from its distance column to its key column.

    ``rel[..., i, c]`` is query ``i`` scored against distance ``c - (L-1)``; the key at that distance is
    ``j = i + c - (L-1)``. The result satisfies

        out[..., i, j] = rel[..., i, L - 1 - i + j]      for j <= i

    and is obtained without any gather: pad one column of zeros on the **left** ``(..., L, L+1)``,
    reshape to ``(..., L+1, L)``, drop the **first** row ``(..., L, L)``. Entries above the diagonal
    are left-over values (junk); mask them. Returns a view of a new padded tensor; ``rel`` is unchanged.

    Args:
        rel: ``(..., L, L)`` relative logits, columns ordered from distance ``-(L-1)`` to ``0``.

    Lesson: 06_music_transformer
    """
    if rel.dim() < 2 or rel.shape[-1] != rel.shape[-2]:
        raise CourseError(f"skew needs a tensor whose last two dimensions are equal (..., L, L), "
                          f"got shape {tuple(rel.shape)}.")
    L = rel.shape[-1]
    padded = F.pad(rel, (1, 0))                               # (..., L, L+1): a zero column on the left
    flat = padded.reshape(*rel.shape[:-2], L + 1, L)          # (..., L+1, L): rows slide one step each
    return flat[..., 1:, :]                                   # (..., L, L): drop the first row


def distance_embeddings(E: Tensor, L: int) -> Tensor:
    """The embeddings of distances ``-(L-1) .. 0`` from a table ``E`` ``(..., M, d)`` of distances
    ``-(M-1) .. 0``: its last ``L`` rows when ``L <= M`` (a view), else the table with its farthest row
    repeated ``L - M`` times in front (distances beyond ``M - 1`` are clipped to ``-(M-1)``).

    Returns ``(..., L, d)``.

    Lesson: 06_music_transformer
    """
    M = E.shape[-2]
    if L <= M:
        return E[..., M - L:, :]                                          # (..., L, d)
    far = E[..., :1, :].expand(*E.shape[:-2], L - M, E.shape[-1])          # (..., L-M, d)
    return torch.cat([far, E], dim=-2)                                    # (..., L, d)


def _check_q(q: Tensor, E: Tensor, name: str) -> None:
    if q.dim() < 2 or E.dim() < 2 or q.shape[-1] != E.shape[-1]:
        raise CourseError(f"{name} needs queries (..., L, d) and embeddings (..., M, d) with the same d; "
                          f"got {tuple(q.shape)} and {tuple(E.shape)}.")


def relative_logits(q: Tensor, E: Tensor) -> Tensor:
    """``S_rel`` by skewing: ``skew(Q E_L^T)`` with ``E_L = distance_embeddings(E, L)``.

    Args:
        q: ``(..., L, d)`` queries (e.g. ``(B, H, L, d)``).
        E: ``(..., M, d)`` distance table (e.g. ``(H, M, d)``, broadcast over the batch).

    Returns:
        ``(..., L, L)``; valid on and below the diagonal only.

    Lesson: 06_music_transformer
    """
    _check_q(q, E, "relative_logits")
    L = q.shape[-2]
    rel = q @ distance_embeddings(E, L).transpose(-1, -2)     # (..., L, L): query i x distance c-(L-1)
    return skew(rel)                                          # (..., L, L): query i x key j


def relative_logits_naive(q: Tensor, E: Tensor) -> Tensor:
    """``S_rel`` the direct way (Shaw et al., 2018): gather ``R[i, j] = e_(j-i)`` ``(L, L, d)``, then
    ``S_rel[i, j] = q_i . R[i, j]``. Memory ``O(L^2 d)``: the reference :func:`skew` must agree with.

    Distances beyond the table's ``M`` rows are clipped to ``-(M-1)``; entries above the diagonal
    (keys in the future) are set to 0.

    Args:
        q: ``(..., L, d)`` queries.
        E: ``(..., M, d)`` distance table, row ``M-1`` is distance 0.

    Returns:
        ``(..., L, L)``.

    Lesson: 06_music_transformer
    """
    _check_q(q, E, "relative_logits_naive")
    L, M = q.shape[-2], E.shape[-2]
    pos = torch.arange(L, device=q.device)
    dist = pos[None, :] - pos[:, None]                        # (L, L): j - i
    row = dist.clamp(min=-(M - 1), max=0) + (M - 1)           # (L, L): row of E for each pair
    R = E[..., row, :]                                        # (..., L, L, d): the O(L^2 d) tensor
    out = (q[..., :, None, :] * R).sum(-1)                    # (..., L, L)
    return out.masked_fill(dist > 0, 0.0)


def relative_logits_last(q: Tensor, E: Tensor, n_keys: int) -> Tensor:
    """``S_rel`` of one query that comes after ``n_keys - 1`` earlier tokens (so it sees ``n_keys`` keys,
    itself last): ``q . e_r`` for ``r = -(n_keys-1) .. 0``, which is already in key order.

    Equal to the last row of :func:`relative_logits` over the whole sequence; used when generating with
    a key/value cache.

    Args:
        q: ``(..., 1, d)`` the newest query.
        E: ``(..., M, d)`` distance table.
        n_keys: number of keys (cached ones plus the new one).

    Returns:
        ``(..., 1, n_keys)``.

    Lesson: 06_music_transformer
    """
    _check_q(q, E, "relative_logits_last")
    if q.shape[-2] != 1:
        raise CourseError(f"relative_logits_last takes one query (..., 1, d), got {tuple(q.shape)}.")
    return q @ distance_embeddings(E, n_keys).transpose(-1, -2)          # (..., 1, n_keys)
