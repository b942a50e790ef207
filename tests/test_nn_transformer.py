"""course.nn.transformer and course.nn.relative: attention against torch's, causality, skewing against the
naive relative logits (and the known-wrong variants), the distance table as a parameter, key/value-cache
generation, overfitting, input checks and the loss."""
import io
import math

import pytest
import torch
import torch.nn.functional as F

from course import generate, train
from course.errors import CourseError
from course.nn import relative, transformer
from course.nn.transformer import MusicTransformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")        # tiny models: one thread is fastest

V = 24
PHRASE = [3, 5, 6, 5, 7, 5, 8, 9, 8, 10, 8, 11, 12, 13, 12, 4]     # 16 tokens; 5, 8 and 12 need context


def small(relative_: bool = True, **kw) -> MusicTransformer:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, context=32, d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0,
               relative=relative_, max_relative=12)
    cfg.update(kw)
    return MusicTransformer(TransformerConfig(**cfg))


def lower(L: int) -> torch.Tensor:
    return torch.ones(L, L, dtype=torch.bool).tril()


both = pytest.mark.parametrize("rel", [True, False], ids=["relative", "absolute"])


# ---------------------------------------------------------------- config and shapes
def test_config_is_validated_and_overridable():
    assert TransformerConfig(context=64).max_relative == 64             # None means every distance its own
    for bad in (dict(d_model=30, n_heads=4), dict(n_layers=0), dict(dropout=1.0), dict(vocab_size=5, pad_id=5),
                dict(relative="yes"), dict(max_relative=0), dict(context=2.5)):
        with pytest.raises(CourseError):
            TransformerConfig(**bad)
    m = MusicTransformer(vocab_size=V, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    assert m.config.d_model == 16 and len(m.blocks) == 1
    assert MusicTransformer(m.config, n_layers=3).config.n_layers == 3
    assert m.head.weight is m.embed.weight                               # tied output layer


@both
def test_shapes_and_attention_maps(rel):
    model = small(rel).eval()
    x = torch.randint(0, V, (3, 20))
    assert model(x).shape == (3, 20, V)
    maps = model.attention_maps(x)
    assert len(maps) == 2 and all(w.shape == (3, 4, 20, 20) for w in maps)
    for w in maps:
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 20))
        assert (w[..., ~lower(20)] == 0).all()                         # nothing attends to the future
    model.train()
    model.attention_maps(x)
    assert model.training                                                # the mode is restored


# ---------------------------------------------------------------- attention against torch's own
def test_absolute_attention_layer_equals_torch_sdpa_and_multihead_attention():
    torch.manual_seed(1)
    cfg = TransformerConfig(vocab_size=V, context=16, d_model=32, n_heads=4, dropout=0.0, relative=False)
    attn = transformer.CausalSelfAttention(cfg).eval()
    x = torch.randn(2, 11, 32)
    y, (k, v), w = attn(x)
    q, k2, v2 = (t.reshape(2, 11, 4, 8).transpose(1, 2) for t in attn.qkv(x).split(32, dim=-1))
    ref = F.scaled_dot_product_attention(q, k2, v2, is_causal=True)    # (B, H, T, hs)
    ref = attn.proj(ref.transpose(1, 2).reshape(2, 11, 32))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    y2, w2 = mha(x, x, x, attn_mask=~lower(11), need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(y, y2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, w2, atol=1e-5, rtol=1e-5)


def test_relative_attention_layer_adds_the_naive_relative_logits():
    torch.manual_seed(2)
    cfg = TransformerConfig(vocab_size=V, context=16, d_model=32, n_heads=4, dropout=0.0, max_relative=6)
    attn = transformer.CausalSelfAttention(cfg).eval()
    x = torch.randn(2, 10, 32)
    y, _, w = attn(x)
    q, k, v = (t.reshape(2, 10, 4, 8).transpose(1, 2) for t in attn.qkv(x).split(32, dim=-1))
    logits = (q @ k.transpose(-1, -2) + relative.relative_logits_naive(q, attn.rel_emb)) / math.sqrt(8)
    ref_w = torch.softmax(logits.masked_fill(~lower(10), float("-inf")), -1)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, attn.proj((ref_w @ v).transpose(1, 2).reshape(2, 10, 32)), atol=1e-5, rtol=1e-5)


@both
def test_future_tokens_do_not_change_earlier_logits(rel):
    model = small(rel).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, V, (2, 24), generator=g)
    with torch.no_grad():
        base = model(x)
        for t in (1, 7, 23):
            y = x.clone()
            y[:, t:] = (x[:, t:] + torch.randint(1, V, y[:, t:].shape, generator=g)) % V   # every one changes
            out = model(y)
            torch.testing.assert_close(out[:, :t], base[:, :t], atol=1e-6, rtol=1e-6)
            assert (out[:, t] - base[:, t]).abs().max() > 1e-4        # position t does see its own token


# ---------------------------------------------------------------- skewing
def skew_drop_last_row(rel):          # the classic off-by-one
    L = rel.shape[-1]
    return F.pad(rel, (1, 0)).reshape(*rel.shape[:-2], L + 1, L)[..., :-1, :]


def skew_pad_right(rel):              # the zero column on the wrong side
    L = rel.shape[-1]
    return F.pad(rel, (0, 1)).reshape(*rel.shape[:-2], L + 1, L)[..., 1:, :]


@pytest.mark.parametrize("L", [1, 2, 3, 5, 16])
def test_skew_equals_the_naive_relative_logits_and_the_wrong_variants_do_not(L):
    torch.manual_seed(L)
    q, E = torch.randn(2, 3, L, 8), torch.randn(L, 8)
    naive = relative.relative_logits_naive(q, E)                           # (2, 3, L, L)
    rel = q @ E.T                                                          # (2, 3, L, L): distance columns
    ok = lower(L)
    torch.testing.assert_close(relative.skew(rel)[..., ok], naive[..., ok], atol=1e-5, rtol=1e-5)
    i, j = torch.nonzero(ok, as_tuple=True)
    torch.testing.assert_close(relative.skew(rel)[..., i, j], rel[..., i, L - 1 - i + j])   # the definition
    torch.testing.assert_close(relative.relative_logits(q, E)[..., ok], naive[..., ok], atol=1e-5, rtol=1e-5)
    per_head = torch.randn(3, L, 8)                                        # one table per head
    torch.testing.assert_close(relative.relative_logits(q, per_head)[..., ok],
                               relative.relative_logits_naive(q, per_head)[..., ok], atol=1e-5, rtol=1e-5)
    for wrong in (skew_drop_last_row, skew_pad_right):
        assert not torch.allclose(wrong(rel)[..., ok], naive[..., ok], atol=1e-3)
    assert torch.equal(rel, q @ E.T)                                       # the input is unchanged
    with pytest.raises(CourseError):
        relative.skew(torch.zeros(3, 4))


def test_short_sequences_use_the_nearest_distances_and_far_ones_are_clipped():
    torch.manual_seed(4)
    E = torch.randn(2, 6, 4)                                               # distances -5 .. 0, per head
    q = torch.randn(1, 2, 4, 4)                                            # L = 4 < 6: the last 4 rows
    ok = lower(4)
    torch.testing.assert_close(relative.relative_logits(q, E)[..., ok],
                               relative.relative_logits_naive(q, E[:, -4:])[..., ok], atol=1e-5, rtol=1e-5)
    q = torch.randn(1, 2, 10, 4)                                           # L = 10 > 6: distances <= -5 share row 0
    full = relative.relative_logits(q, E)
    ok = lower(10)
    torch.testing.assert_close(full[..., ok], relative.relative_logits_naive(q, E)[..., ok], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full[..., 9, 0], (q[..., 9, :] * E[:, 0]).sum(-1))          # distance -9 -> -5
    torch.testing.assert_close(full[..., 9, 4], (q[..., 9, :] * E[:, 0]).sum(-1))          # distance -5
    torch.testing.assert_close(full[..., 9, 5], (q[..., 9, :] * E[:, 1]).sum(-1))          # distance -4


@pytest.mark.parametrize("n", [1, 2, 7, 15])
def test_one_query_relative_logits_equal_the_last_row_of_the_skewed_ones(n):
    torch.manual_seed(n)
    q, E = torch.randn(2, 3, n, 8), torch.randn(3, 9, 8)
    last = relative.relative_logits_last(q[..., -1:, :], E, n)            # (2, 3, 1, n), no skewing
    torch.testing.assert_close(last[..., 0, :], relative.relative_logits(q, E)[..., -1, :], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- the distance table is learned and saved
@both
def test_parameters_are_saved_learned_and_reload(rel):
    model = small(rel).eval()
    sd = model.state_dict()
    names = [k for k in sd if k.endswith("rel_emb")]
    if rel:
        assert names == ["blocks.0.attn.rel_emb", "blocks.1.attn.rel_emb"]
        assert sd[names[0]].shape == (4, 12, 8)
        assert all(isinstance(b.attn.rel_emb, torch.nn.Parameter) for b in model.blocks)
        x = torch.randint(0, V, (2, 20))
        model.loss(x).backward()
        for b in model.blocks:
            assert b.attn.rel_emb.grad is not None and b.attn.rel_emb.grad.abs().sum() > 0
    else:
        assert names == [] and "pos.weight" in sd
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    other = small(rel).eval()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)                                                    # make sure the load does the work
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    x = torch.randint(0, V, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x), atol=0, rtol=0)


# ---------------------------------------------------------------- generation with a key/value cache
@both
def test_cached_steps_equal_the_full_recomputation(rel):
    model = small(rel).eval()
    x = torch.randint(0, V, (2, 20))
    with torch.no_grad():
        full = model(x)                                                    # (2, 20, V)
        logits, cache = model.step(x[:, :5])
        steps = [logits]
        for t in range(5, 20):
            logits, cache = model.step(x[:, t : t + 1], cache)
            steps.append(logits)
    assert cache[0][0].shape == (2, 4, 20, 8)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@both
def test_generation_with_and_without_the_cache_agree(rel):
    """``course.generate.sample_tokens`` drives the model two ways: through its key/value cache
    (``model.cached()``, read the prompt once, then one token at a time) and by recomputing the whole
    prefix every step; the tokens are the same, greedy or sampled."""
    model = small(rel)
    for kw in (dict(top_k=1), dict(top_p=1e-6), dict(temperature=1.5, top_k=10, top_p=0.9)):
        cached = generate.sample_tokens(model.cached(), [3, 5, 6], 20, seed=7, forbid=[0], **kw)
        again = generate.sample_tokens(model, [3, 5, 6], 20, seed=7, forbid=[0], **kw)
        assert len(cached) == 23 and list(cached[:3]) == [3, 5, 6] and list(cached) == list(again), kw
    greedy = generate.sample_tokens(model.cached(), [3, 5, 6], 20, top_k=1, forbid=[0])
    assert list(greedy) == list(generate.sample_tokens(model.cached(), [3, 5, 6], 20, top_p=1e-6, forbid=[0], seed=3))
    assert model.training                                                  # the model's mode is restored


def test_generation_arguments_are_checked():
    model = small(context=10)
    prompt = torch.tensor([[3, 5, 6]])
    _, cache = model.step(prompt)
    with pytest.raises(CourseError, match="one new token"):
        model.step(prompt, cache)
    with pytest.raises(CourseError, match="cache"):
        model.step(prompt[:, :1], cache[:1])


# ---------------------------------------------------------------- training
@both
def test_overfits_one_small_batch(rel):
    model = small(rel, context=48, d_model=32, n_heads=2)
    rows = [(PHRASE * 4)[o : o + 48] for o in (0, 4)]                      # a 16-token phrase, repeated
    batch = torch.tensor(rows)
    hist = train.train(model, [batch], transformer.loss_fn, train.TrainConfig(steps=100, lr=1e-2, progress=False),
                       device=torch.device("cpu"))
    assert hist.train_loss[0] > 2.5                                        # about log(24) = 3.2 at the start
    with torch.no_grad():
        assert float(model.loss(batch)) < 0.1


def test_an_untrained_model_is_close_to_uniform():
    model = small().eval()
    with torch.no_grad():
        assert float(model.loss(torch.randint(1, V, (4, 30)))) == pytest.approx(math.log(V), abs=0.1)


# ---------------------------------------------------------------- bad input and the loss
@pytest.mark.parametrize("bad,match", [
    (torch.zeros(2, 33, dtype=torch.long), "context=32"),
    (torch.full((2, 5), V), "0..23"),
    (torch.full((2, 5), -1), "0..23"),
    (torch.zeros(5, dtype=torch.long), "batch, time"),
    (torch.zeros(2, 3, 4, dtype=torch.long), "batch, time"),
    (torch.zeros(2, 5), "whole numbers"),
    (torch.zeros(2, 0, dtype=torch.long), "empty"),
    ([[1, 2, 3]], "tensor"),
])
def test_bad_input_raises_a_course_error(bad, match):
    with pytest.raises(CourseError, match=match):
        small()(bad)


def test_loss_ignores_pad_targets_and_equals_cross_entropy():
    model = small().eval()
    pad = model.config.pad_id
    x = torch.tensor([[3, 5, 6, 5, 7, 4, pad, pad], [3, 9, 8, 10, 8, 11, 12, 4]])
    with torch.no_grad():
        logits = model(x)
        loss = model.loss(x)
        targets = x[:, 1:]
        keep = targets != pad
        manual = F.cross_entropy(logits[:, :-1][keep], targets[keep])             # only the real targets
        longer = torch.cat([x, torch.full((2, 5), pad)], dim=1)                    # more padding at the end
        total, count = transformer.loss_fn(model, x)                              # what course.train uses
    torch.testing.assert_close(loss, manual)
    assert int(keep.sum()) == 12 and int(count) == 12
    torch.testing.assert_close(total / count, manual)
    with torch.no_grad():
        torch.testing.assert_close(model.loss(longer), manual)
        torch.testing.assert_close(model.loss(x[:1, :6]) * 5 + model.loss(x[1:]) * 7, manual * 12)
