"""A decoder-only music Transformer: causal self-attention over tokens, with relative positions.

The model reads tokens ``x_1 .. x_T`` and predicts each next one, like lesson 03's LSTM, but each
position looks back at every earlier one through attention instead of carrying a state
(Vaswani et al., 2017, "Attention Is All You Need"):

    h_0 = embed(x) (+ a learned position vector when ``relative=False``)
    h_l = h_l-1 + Attn(LN(h_l-1)),   h_l = h_l + MLP(LN(h_l))       (pre-LayerNorm blocks)
    logits = LN(h_L) W_embed^T                                        (output tied to the embedding)
    Attn:  softmax((Q K^T + S_rel) / sqrt(d_head) + causal mask) V

With ``relative=True`` there are no absolute positions: each layer learns, per head, one vector per
distance between query and key (Shaw et al., 2018), and ``S_rel`` is computed with the memory-saving
"skewing" of Huang et al. (2018, "Music Transformer"), see :mod:`course.nn.relative`. Music repeats
motifs at many positions, which relative positions capture directly.

The output layer shares its weights with the token embedding (weight tying): fewer parameters, and a
token's input and output vectors live in one space. PAD only goes at the end of a sequence: the causal
mask keeps it from touching earlier positions, and the loss ignores PAD targets.

Interfaces: ``model(tokens (B, T)) -> logits (B, T, V)`` (the stateless protocol of
``course.generate.sample_tokens``); training uses lesson 03's ``loss_fn`` unchanged (re-exported here);
``model.step(tokens, cache)`` runs new tokens against a key/value cache, and ``model.cached()`` is that
cache seen through ``sample_tokens``' recurrent protocol (temperature, top-k, top-p, melody rules, stop
tokens): the prompt is read once, then each new token alone; ``model.attention_maps`` for the plots.

Lesson: 06_music_transformer
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CourseError
from ..music import MelodyVocab
from .melody import lm_loss, loss_fn, split_batch
from .relative import relative_logits, relative_logits_last

__all__ = ["TransformerConfig", "MusicTransformer", "CausalSelfAttention", "CachedLM", "loss_fn", "split_batch"]

KV = tuple[Tensor, Tensor]                  # one layer's cached keys and values, each (B, H, S, d_head)


@dataclass
class TransformerConfig:
    """Size and kind of a :class:`MusicTransformer`.

    Lesson: 06_music_transformer
    """

    vocab_size: int = len(MelodyVocab())   # number of token ids (164 for the default MelodyVocab)
    context: int = 256                     # the most tokens the model reads at once (max_len)
    d_model: int = 256                     # width of the residual stream (embedding size)
    n_heads: int = 8                       # attention heads per layer; d_model / n_heads is d_head
    n_layers: int = 4                      # Transformer blocks
    d_ff: int = 1024                       # hidden units of each block's MLP (usually 4 * d_model)
    dropout: float = 0.1                   # dropout on embeddings, attention weights and residual branches
    relative: bool = True                  # relative position attention (True) or learned absolute positions
    max_relative: int | None = None        # distances with their own embedding, farther ones clipped; None: context
    pad_id: int = MelodyVocab.PAD          # the padding token: its targets are ignored by the loss

    def __post_init__(self):
        if self.max_relative is None:
            self.max_relative = self.context
        for name in ("vocab_size", "context", "d_model", "n_heads", "n_layers", "d_ff", "max_relative"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CourseError(f"TransformerConfig.{name} must be a whole number >= 1, got {v!r}.")
        if self.d_model % self.n_heads:
            raise CourseError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                              "(each head gets d_model / n_heads dimensions).")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise CourseError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}.")
        if not isinstance(self.relative, bool):
            raise CourseError(f"TransformerConfig.relative must be True or False, got {self.relative!r}.")
        if not 0 <= self.pad_id < self.vocab_size:
            raise CourseError(f"pad_id={self.pad_id} is not a token id of a {self.vocab_size}-token vocabulary.")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, with relative position logits when ``config.relative``.

    ``forward(x (B, T, C), past=None) -> (y (B, T, C), (k, v), weights (B, H, T, S))``. ``past`` holds
    the keys and values ``(B, H, P, d_head)`` of ``P`` earlier tokens (a cache), so ``S = P + T``; with
    relative positions a cache needs ``T = 1`` (one new token). The layer's distance table
    ``rel_emb`` ``(H, max_relative, d_head)`` is a registered parameter (learned, saved in ``state_dict``).

    Lesson: 06_music_transformer
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = config
        self.n_heads, self.d_head = c.n_heads, c.d_model // c.n_heads
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)      # x -> queries, keys, values of every head
        self.proj = nn.Linear(c.d_model, c.d_model)         # concatenated heads -> residual stream
        self.attn_drop = nn.Dropout(c.dropout)
        self.resid_drop = nn.Dropout(c.dropout)
        # row r is distance r - (max_relative - 1): the last row is distance 0 (the query itself)
        self.rel_emb = nn.Parameter(torch.randn(c.n_heads, c.max_relative, self.d_head) * 0.02) if c.relative else None

    def forward(self, x: Tensor, past: KV | None = None) -> tuple[Tensor, KV, Tensor]:
        B, T, C = x.shape
        H, hs = self.n_heads, self.d_head
        q, k, v = self.qkv(x).split(C, dim=-1)                                     # (B, T, C) each
        q, k, v = (t.reshape(B, T, H, hs).transpose(1, 2) for t in (q, k, v))      # (B, H, T, hs)
        P = 0 if past is None else past[0].shape[2]
        if past is not None:
            k = torch.cat([past[0], k], dim=2)                                     # (B, H, S, hs)
            v = torch.cat([past[1], v], dim=2)                                     # (B, H, S, hs)
        S = P + T
        att = q @ k.transpose(-2, -1)                                              # (B, H, T, S)
        if self.rel_emb is not None:
            if P == 0:
                att = att + relative_logits(q, self.rel_emb)                       # (B, H, T, T) by skewing
            elif T == 1:
                att = att + relative_logits_last(q, self.rel_emb, S)               # (B, H, 1, S), no skew
            else:
                raise CourseError("With relative attention and a cache, feed one new token at a time.")
        att = att / math.sqrt(hs)
        future = torch.arange(S, device=x.device)[None, :] > torch.arange(P, S, device=x.device)[:, None]  # (T, S)
        att = att.masked_fill(future, float("-inf"))
        weights = torch.softmax(att, dim=-1)                                       # (B, H, T, S)
        y = self.attn_drop(weights) @ v                                            # (B, H, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)                                     # (B, T, C)
        return self.resid_drop(self.proj(y)), (k, v), weights


class MLP(nn.Module):
    """Position-wise feed-forward layer ``Linear -> GELU -> Linear`` (Vaswani et al., 2017).

    Lesson: 06_music_transformer
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))                           # (B, T, C)


class Block(nn.Module):
    """One pre-LayerNorm Transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Lesson: 06_music_transformer
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, past: KV | None = None) -> tuple[Tensor, KV, Tensor]:
        a, kv, weights = self.attn(self.ln1(x), past)
        x = x + a                                                                  # (B, T, C)
        x = x + self.mlp(self.ln2(x))                                              # (B, T, C)
        return x, kv, weights


@contextlib.contextmanager
def _evaluating(model: nn.Module):
    """Eval mode and no gradients inside; the model's own mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class MusicTransformer(nn.Module):
    """Token embedding -> ``n_layers`` pre-LN blocks -> LayerNorm -> tied output layer.

    ``forward(tokens (B, T)) -> logits (B, T, V)``; ``T`` is at most ``config.context``.

    Lesson: 06_music_transformer
    """

    def __init__(self, config: TransformerConfig | None = None, **overrides):
        super().__init__()
        if config is None:
            config = TransformerConfig(**overrides)
        elif overrides:
            config = TransformerConfig(**{**config.__dict__, **overrides})
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = None if c.relative else nn.Embedding(c.context, c.d_model)   # learned absolute positions
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.embed.weight                                      # weight tying
        for name, p in self.named_parameters():
            if p.dim() == 2 and "ln" not in name:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for block in self.blocks:    # residual branches start small, so the stream grows slowly with depth
            for p in (block.attn.proj.weight, block.mlp.proj.weight):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layers))

    # --------------------------------------------------------------------------- checks
    def _check_tokens(self, tokens, past: int = 0) -> None:
        c = self.config
        if not torch.is_tensor(tokens):
            raise CourseError(f"MusicTransformer expects a tensor of token ids, got {type(tokens).__name__}.")
        if tokens.dim() != 2:
            raise CourseError(f"MusicTransformer expects tokens of shape (batch, time), got {tuple(tokens.shape)}; "
                              "for one sequence use tokens[None].")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise CourseError(f"Token ids must be whole numbers (torch.long), got {tokens.dtype}.")
        if tokens.shape[1] == 0:
            raise CourseError("MusicTransformer got an empty sequence; give it at least one token (e.g. BOS).")
        if past + tokens.shape[1] > c.context:
            raise CourseError(f"The model reads at most context={c.context} tokens, got {past + tokens.shape[1]}"
                              f"{f' ({past} cached + {tokens.shape[1]} new)' if past else ''}: keep the last "
                              f"{c.context} (tokens[:, -{c.context}:]) or build the model with a larger context.")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= c.vocab_size:
            raise CourseError(f"Token ids must lie in 0..{c.vocab_size - 1} (vocab_size={c.vocab_size}), "
                              f"got ids from {lo} to {hi}: was the data made with another vocabulary?")

    # --------------------------------------------------------------------------- the network
    def _run(self, tokens: Tensor, cache: tuple[KV, ...] | None = None):
        """logits (B, T, V), the new cache (one ``(k, v)`` per layer), attention weights per layer."""
        P = 0 if cache is None else cache[0][0].shape[2]
        self._check_tokens(tokens, P)
        T = tokens.shape[1]
        x = self.embed(tokens)                                                     # (B, T, C)
        if self.pos is not None:
            x = x + self.pos(torch.arange(P, P + T, device=tokens.device))         # (B, T, C) + (T, C)
        x = self.drop(x)
        new_cache, maps = [], []
        for i, block in enumerate(self.blocks):
            x, kv, weights = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
            maps.append(weights)
        logits = self.head(self.ln_f(x))                                           # (B, T, V)
        return logits, tuple(new_cache), maps

    def forward(self, tokens: Tensor) -> Tensor:
        return self._run(tokens)[0]

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean next-token cross-entropy in nats per token over the non-PAD targets of ``tokens`` ``(B, T)``."""
        return lm_loss(self(tokens), tokens, self.config.pad_id)

    def num_parameters(self) -> int:
        """How many trainable numbers the model has (the tied output layer counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def attention_maps(self, tokens: Tensor) -> list[Tensor]:
        """The attention weights of every layer, each ``(B, H, T, T)`` (rows sum to 1, zero above the
        diagonal), computed in eval mode without gradients, for the lesson's heat maps."""
        with _evaluating(self):
            return [w.detach() for w in self._run(tokens)[2]]

    # --------------------------------------------------------------------------- generation
    def step(self, tokens: Tensor, cache: tuple[KV, ...] | None = None) -> tuple[Tensor, tuple[KV, ...]]:
        """Run ``tokens`` with a key/value cache: ``(logits (B, T, V), new cache)``.

        Without a cache, ``tokens`` is the whole prompt ``(B, T)``; with one, the next token ``(B, 1)``.
        The cache holds every layer's keys and values ``(B, H, S, d_head)`` of the ``S`` tokens read so
        far; a new one is returned (the given one is not changed).
        """
        if cache is not None:
            if not isinstance(cache, (tuple, list)) or len(cache) != len(self.blocks):
                raise CourseError(f"The cache must be what step() returned: one (keys, values) per layer "
                                  f"({len(self.blocks)}).")
            self._check_tokens(tokens, cache[0][0].shape[2])
            if tokens.shape[1] != 1 or tokens.shape[0] != cache[0][0].shape[0]:
                raise CourseError(f"With a cache, feed one new token per sequence, shape ({cache[0][0].shape[0]}, 1); "
                                  f"got {tuple(tokens.shape)}.")
        logits, cache, _ = self._run(tokens, cache)
        return logits, cache

    def cached(self) -> CachedLM:
        """This model behind ``course.generate.sample_tokens``' recurrent protocol, with a key/value cache."""
        return CachedLM(self)


class CachedLM(nn.Module):
    """A :class:`MusicTransformer` seen as a recurrent model whose state is its key/value cache:
    ``forward(tokens, state=None) -> (logits, state)``. ``course.generate.sample_tokens`` then reads
    the prompt once and each new token alone (with its rules, stop token and melody helpers).

    Lesson: 06_music_transformer
    """

    def __init__(self, model: MusicTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, state: tuple[KV, ...] | None = None) -> tuple[Tensor, tuple[KV, ...]]:
        return self.model.step(tokens, state)
