"""Attention from first principles: softmax, scaled dot-product attention, masks, multi-head attention
and sinusoidal positional encodings.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V              (Vaswani et al. 2017)

Conventions used throughout:

- ``q`` is ``(..., Lq, d_k)``, ``k`` is ``(..., Lk, d_k)``, ``v`` is ``(..., Lk, d_v)``; the leading
  (batch, head) dimensions broadcast as in ``torch.matmul``.
- A mask is a bool tensor broadcastable to ``(..., Lq, Lk)``, **True where query i may attend to key j**:
  the convention of ``torch.nn.functional.scaled_dot_product_attention``. (``torch.nn.MultiheadAttention``'s
  bool ``attn_mask`` means the opposite: True there is *blocked*.) Blocked scores become ``-inf`` before the
  softmax. A query that may attend to nothing (a fully masked row) gets all-zero weights and a zero
  output here, always, instead of the NaN that ``softmax`` of a row of ``-inf`` gives. Recent PyTorch (2.5 and
  later) returns zeros for such a row in its math and CPU kernels; older versions and some GPU kernels return NaN,
  so do not rely on it.
- Projection weights of :func:`multi_head_attention` are ``(D, D)`` and applied as ``x @ w`` (the transpose
  of ``torch.nn.Linear``'s ``(out, in)`` layout); heads split the last dimension into
  ``(n_heads, D // n_heads)``, in that order.

Functions never change their inputs; wrong shapes raise :class:`course.errors.CourseError`.

Lesson: 05_attention_math
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import CourseError

__all__ = ["stable_softmax", "attention_weights", "scaled_dot_product_attention", "causal_mask", "padding_mask",
           "split_heads", "merge_heads", "multi_head_attention", "sinusoidal_positions",
           "MultiHeadAttentionConfig", "MultiHeadAttention"]


# ---------------------------------------------------------------------------- softmax
def stable_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """``softmax(x)`` along ``dim``, computed as ``exp(x - max) / sum exp(x - max)`` so nothing overflows.

    Subtracting the row's maximum changes nothing mathematically (the factor ``e^{-max}`` cancels) but keeps
    every exponent <= 0, so ``exp`` never overflows, and the largest term is exactly 1, so the sum is never 0.
    A row of all ``-inf`` gives NaN, as ``torch.softmax`` does.

    Lesson: 05_attention_math
    """
    _tensor(x, "stable_softmax", "x")
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))   # a row of -inf stays -inf (then 0/0)
    e = torch.exp(x - m)
    return e / e.sum(dim=dim, keepdim=True)


# ---------------------------------------------------------------------------- scaled dot-product attention
def _tensor(x, fn: str, name: str) -> None:
    if not isinstance(x, Tensor):
        raise CourseError(f"{fn}: {name} must be a torch tensor, got {type(x).__name__}.")


def _check_qk(q: Tensor, k: Tensor, mask: Tensor | None, fn: str) -> tuple:
    """Validate shapes; returns the scores' shape ``(..., Lq, Lk)``."""
    for name, t in (("q", q), ("k", k)):
        _tensor(t, fn, name)
        if t.dim() < 2:
            raise CourseError(f"{fn}: {name} must have shape (..., length, features), got {tuple(t.shape)}.")
    if q.shape[-1] != k.shape[-1]:
        raise CourseError(f"{fn}: q and k need the same feature size d_k to be compared by dot products; "
                          f"got q {tuple(q.shape)} and k {tuple(k.shape)}.")
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    except RuntimeError:
        raise CourseError(f"{fn}: the leading (batch, head) dimensions of q {tuple(q.shape)} and "
                          f"k {tuple(k.shape)} do not broadcast.") from None
    shape = (*batch, q.shape[-2], k.shape[-2])
    if mask is not None:
        _tensor(mask, fn, "mask")
        if mask.dtype != torch.bool:
            raise CourseError(f"{fn}: mask must be a bool tensor (True where attending is allowed), got {mask.dtype}.")
        try:
            ok = torch.broadcast_shapes(mask.shape, shape) == torch.Size(shape)
        except RuntimeError:
            ok = False
        if not ok:
            raise CourseError(f"{fn}: a mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                              f"{shape} (..., Lq, Lk).")
    return shape


def attention_weights(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """The attention weights ``softmax(q k^T / sqrt(d_k))``, with ``-inf`` where ``mask`` is False.

    Args:
        q: queries ``(..., Lq, d_k)``.
        k: keys ``(..., Lk, d_k)``.
        mask: bool, broadcastable to ``(..., Lq, Lk)``, True where query i may attend to key j.

    Returns:
        ``(..., Lq, Lk)``: each row sums to 1 (a fully masked row is all zeros).

    Lesson: 05_attention_math
    """
    _check_qk(q, k, mask, "attention_weights")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])          # (..., Lq, Lk)
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)   # fully masked rows: 0, not NaN


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
                                 return_weights: bool = False):
    """``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V``, with an optional mask (Vaswani et al. 2017).

    Args:
        q: queries ``(..., Lq, d_k)``.
        k: keys ``(..., Lk, d_k)``.
        v: values ``(..., Lk, d_v)``.
        mask: bool, broadcastable to ``(..., Lq, Lk)``, True where query i may attend to key j.
        return_weights: also return the weights ``(..., Lq, Lk)``.

    Returns:
        ``(..., Lq, d_v)``, or ``(output, weights)`` with ``return_weights=True``.

    Lesson: 05_attention_math
    """
    _tensor(v, "scaled_dot_product_attention", "v")
    if v.dim() < 2 or v.shape[-2] != k.shape[-2]:
        raise CourseError(f"scaled_dot_product_attention: v must have one row per key, (..., Lk, d_v); got "
                          f"k {tuple(k.shape)} and v {tuple(v.shape)}.")
    weights = attention_weights(q, k, mask)       # (..., Lq, Lk)
    out = weights @ v                             # (..., Lq, d_v)
    return (out, weights) if return_weights else out


# ---------------------------------------------------------------------------- masks
def _length(n, name: str, fn: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise CourseError(f"{fn}: {name} must be a whole number >= 1, got {n!r}.")
    return n


def causal_mask(n: int, *, device=None) -> Tensor:
    """``(n, n)`` bool: True where query i may attend to key j, that is j <= i (itself and the past).

    Lesson: 05_attention_math
    """
    n = _length(n, "n", "causal_mask")
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: Sequence[int] | Tensor, max_len: int | None = None, *, device=None) -> Tensor:
    """``(B, 1, max_len)`` bool: True at the real (not padded) key positions ``j < lengths[b]``.

    The middle axis of size 1 broadcasts over the queries, so it combines with a causal mask by ``&``:
    ``causal_mask(L) & padding_mask(lengths, L)`` is ``(B, L, L)``. Padded *queries* still get an output;
    a loss that ignores padded targets never looks at it.

    Args:
        lengths: the real length of each sequence of the batch, ``(B,)``.
        max_len: the padded length L; default: the longest.

    Lesson: 05_attention_math
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1 or lengths.numel() == 0 or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise CourseError(f"padding_mask: lengths must be a 1-d list or tensor of whole numbers, one per sequence; "
                          f"got {tuple(lengths.shape)} of {lengths.dtype}.")
    if int(lengths.min()) < 1:
        raise CourseError("padding_mask: every sequence needs at least one real position (a length >= 1).")
    L = int(lengths.max()) if max_len is None else _length(max_len, "max_len", "padding_mask")
    if int(lengths.max()) > L:
        raise CourseError(f"padding_mask: a length of {int(lengths.max())} does not fit in max_len={L}.")
    return (torch.arange(L, device=lengths.device)[None, :] < lengths[:, None])[:, None, :]   # (B, 1, L)


# ---------------------------------------------------------------------------- multi-head attention
def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(..., L, D) -> (..., n_heads, L, D // n_heads)``: the last axis read as ``(n_heads, D // n_heads)``.

    Lesson: 05_attention_math
    """
    D = x.shape[-1]
    if D % n_heads:
        raise CourseError(f"split_heads: D={D} features do not split into {n_heads} heads of equal size.")
    return x.unflatten(-1, (n_heads, D // n_heads)).transpose(-3, -2)


def merge_heads(x: Tensor) -> Tensor:
    """``(..., n_heads, L, d_head) -> (..., L, n_heads * d_head)``: the heads concatenated, head 0 first.

    Lesson: 05_attention_math
    """
    return x.transpose(-3, -2).flatten(-2)


def multi_head_attention(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor, n_heads: int,
                         mask: Tensor | None = None, *, return_weights: bool = False):
    """Multi-head self-attention: project, split into heads, attend per head, concatenate, project.

    With ``d = D // n_heads``, ``head_h = Attention(X W_Q[:, h*d:(h+1)*d], X W_K[:, h*d:(h+1)*d],
    X W_V[:, h*d:(h+1)*d])``, each head's scores divided by ``sqrt(d)``; ``MultiHead(X) = concat(head_0 ...
    head_{H-1}) W_O``, so head h's output meets the rows ``h*d:(h+1)*d`` of ``W_O``. Equal to
    ``torch.nn.MultiheadAttention(D, n_heads, bias=False)`` with each of its weights transposed (see
    :meth:`MultiHeadAttention.from_torch`).

    Args:
        x: ``(B, L, D)`` (any leading dimensions work).
        w_q, w_k, w_v, w_o: ``(D, D)`` each, applied as ``x @ w``.
        n_heads: number of heads; must divide D.
        mask: bool, broadcastable to ``(B, L, L)``, True where query i may attend to key j (the same for every
            head); a mask with one more dimension than ``x`` is taken as per head, ``(B, n_heads, L, L)``.
        return_weights: also return the weights ``(B, n_heads, L, L)``.

    Returns:
        ``(B, L, D)``, or ``(output, weights)``.

    Lesson: 05_attention_math
    """
    fn = "multi_head_attention"
    _tensor(x, fn, "x")
    if x.dim() < 2:
        raise CourseError(f"{fn}: x must be (B, L, D), got {tuple(x.shape)}.")
    D = x.shape[-1]
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        _tensor(w, fn, name)
        if tuple(w.shape) != (D, D):
            raise CourseError(f"{fn}: {name} must be (D, D) = ({D}, {D}) for x of shape {tuple(x.shape)}, "
                              f"got {tuple(w.shape)}.")
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1 or D % n_heads:
        raise CourseError(f"{fn}: n_heads must be a whole number >= 1 that divides D={D}, got {n_heads!r}.")
    q = split_heads(x @ w_q, n_heads)             # (B, H, L, D/H)
    k = split_heads(x @ w_k, n_heads)             # (B, H, L, D/H)
    v = split_heads(x @ w_v, n_heads)             # (B, H, L, D/H)
    if mask is not None and isinstance(mask, Tensor) and mask.dim() <= x.dim():
        mask = mask.unsqueeze(-3)                 # (B, 1, L, L): the same mask for every head
    out, weights = scaled_dot_product_attention(q, k, v, mask, return_weights=True)   # (B, H, L, D/H)
    out = merge_heads(out) @ w_o                  # (B, L, D)
    return (out, weights) if return_weights else out


# ---------------------------------------------------------------------------- positions
def sinusoidal_positions(n_positions: int, d_model: int, *, base: float = 10000.0,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    """The sinusoidal positional encodings of Vaswani et al. (2017), ``(n_positions, d_model)``.

    ``PE[p, 2i] = sin(p / base^(2i / d))`` and ``PE[p, 2i + 1] = cos(p / base^(2i / d))``: column pair i
    turns at the angular frequency ``base^(-2i/d)`` radians per position, from 1 down to about ``1 / base``.
    Computed in float64, returned as ``dtype``.

    Lesson: 05_attention_math
    """
    n = _length(n_positions, "n_positions", "sinusoidal_positions")
    d = _length(d_model, "d_model", "sinusoidal_positions")
    p = torch.arange(n, dtype=torch.float64)[:, None]            # (n, 1)
    pair = torch.arange(d) // 2                                  # i for columns 2i and 2i + 1
    angle = p / base ** (2 * pair.double() / d)                  # (n, d)
    even = (torch.arange(d) % 2 == 0)
    return torch.where(even, torch.sin(angle), torch.cos(angle)).to(dtype)


# ---------------------------------------------------------------------------- a module
@dataclass
class MultiHeadAttentionConfig:
    """Size of a :class:`MultiHeadAttention` layer.

    Lesson: 05_attention_math
    """

    d_model: int = 64          # D: features per position, in and out
    n_heads: int = 4           # H: heads, each of size D // H (H must divide D)
    causal: bool = False       # always apply the causal mask (a query sees itself and the past only)

    def __post_init__(self):
        for name in ("d_model", "n_heads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CourseError(f"MultiHeadAttentionConfig.{name} must be a whole number >= 1, got {v!r}.")
        if self.d_model % self.n_heads:
            raise CourseError(f"MultiHeadAttentionConfig: n_heads={self.n_heads} must divide d_model={self.d_model}.")


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention without biases: :func:`multi_head_attention` with learned weights.

    ``forward(x, mask=None, need_weights=False)`` with ``x`` ``(B, L, D)`` returns ``(B, L, D)`` (and the
    weights ``(B, H, L, L)`` with ``need_weights=True``). With ``config.causal`` the causal mask is combined
    (``&``) with any mask given.

    Lesson: 05_attention_math
    """

    def __init__(self, config: MultiHeadAttentionConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = MultiHeadAttentionConfig(**overrides)
        elif overrides:
            config = MultiHeadAttentionConfig(**{**config.__dict__, **overrides})
        self.config = config
        D = config.d_model
        self.w_q = nn.Parameter(torch.empty(D, D))   # (D, D), applied as x @ w_q
        self.w_k = nn.Parameter(torch.empty(D, D))
        self.w_v = nn.Parameter(torch.empty(D, D))
        self.w_o = nn.Parameter(torch.empty(D, D))
        for w in (self.w_q, self.w_k, self.w_v, self.w_o):
            nn.init.xavier_uniform_(w)

    def forward(self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.config.d_model:
            raise CourseError(f"MultiHeadAttention expects x of shape (B, L, {self.config.d_model}), "
                              f"got {tuple(x.shape)}.")
        if self.config.causal:
            causal = causal_mask(x.shape[1], device=x.device)
            mask = causal if mask is None else mask & causal
        out, weights = multi_head_attention(x, self.w_q, self.w_k, self.w_v, self.w_o, self.config.n_heads, mask,
                                            return_weights=True)
        return (out, weights) if need_weights else out

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention, causal: bool = False) -> "MultiHeadAttention":
        """A copy of the weights of a bias-free ``torch.nn.MultiheadAttention`` (transposed to ``x @ w``)."""
        if not isinstance(module, nn.MultiheadAttention):
            raise CourseError(f"from_torch copies a torch.nn.MultiheadAttention, got {type(module).__name__}.")
        if module.in_proj_bias is not None or module.out_proj.bias is not None or module.in_proj_weight is None:
            raise CourseError("from_torch copies a torch.nn.MultiheadAttention made with bias=False and equal "
                              "query, key and value sizes.")
        ours = cls(MultiHeadAttentionConfig(module.embed_dim, module.num_heads, causal))
        w_q, w_k, w_v = module.in_proj_weight.detach().chunk(3, dim=0)   # each (D, D) in (out, in) layout
        with torch.no_grad():
            for mine, theirs in ((ours.w_q, w_q), (ours.w_k, w_k), (ours.w_v, w_v),
                                 (ours.w_o, module.out_proj.weight.detach())):
                mine.copy_(theirs.T)
        return ours
