"""course.nn.attention against PyTorch's own: F.scaled_dot_product_attention (with masks),
nn.MultiheadAttention (weights transposed), causality by perturbing the future, sinusoidal positions
against a direct loop, and clear errors for bad shapes."""
import math

import pytest
import torch
import torch.nn.functional as F

from course.errors import CourseError
from course.nn import attention as A

TOL = dict(rtol=1e-5, atol=1e-5)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- softmax
def test_stable_softmax_matches_torch_and_survives_large_logits():
    x = torch.randn(3, 4, 5, generator=_g())
    for dim in (-1, 0, 1):
        torch.testing.assert_close(A.stable_softmax(x, dim=dim), torch.softmax(x, dim=dim), **TOL)
    big = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    naive = torch.exp(big) / torch.exp(big).sum(-1, keepdim=True)
    assert torch.isnan(naive).all()
    torch.testing.assert_close(A.stable_softmax(big), torch.softmax(big, dim=-1), **TOL)
    assert torch.isnan(A.stable_softmax(torch.full((3,), float("-inf")))).all()      # as torch.softmax does
    assert torch.isnan(torch.softmax(torch.full((3,), float("-inf")), dim=-1)).all()


# ---------------------------------------------------------------------------- scaled dot-product attention
@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
def test_attention_matches_torch_without_a_mask(batch):
    g = _g(1)
    q, k, v = torch.randn(*batch, 4, 6, generator=g), torch.randn(*batch, 7, 6, generator=g), \
        torch.randn(*batch, 7, 3, generator=g)
    torch.testing.assert_close(A.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), **TOL)


def _masks():
    g = _g(2)
    random = torch.rand(2, 3, 5, 5, generator=g) < 0.5
    random[..., 0] = True
    lengths = torch.tensor([5, 2])
    return {"causal (5, 5)": A.causal_mask(5), "padding (2, 1, 5)": A.padding_mask(lengths, 5)[:, None],
            "causal & padding": A.causal_mask(5) & A.padding_mask(lengths, 5)[:, None], "random per head": random}


@pytest.mark.parametrize("which", list(_masks()))
def test_attention_matches_torch_with_bool_masks(which):
    mask = _masks()[which]
    g = _g(3)
    q, k, v = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g), \
        torch.randn(2, 3, 5, 4, generator=g)
    out, w = A.scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5), **TOL)
    assert (w[~mask.expand_as(w)] == 0).all()


def test_a_fully_masked_row_gives_zeros_not_nan():
    q, k, v = torch.randn(1, 3, 4, generator=_g(4)), torch.randn(1, 3, 4, generator=_g(5)), torch.randn(1, 3, 2)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    out, w = A.scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    assert torch.isfinite(out).all() and (w[0, 1] == 0).all() and (out[0, 1] == 0).all()
    # the rows with a key to attend to are PyTorch's; what PyTorch gives the empty row depends on its version and
    # kernel (zeros in the math and CPU kernels since 2.5, NaN before), so it is not compared
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out[:, [0, 2]], theirs[:, [0, 2]], **TOL)
    # and no NaN reaches the gradients either
    qq = q.clone().requires_grad_()
    A.scaled_dot_product_attention(qq, k, v, mask).sum().backward()
    assert torch.isfinite(qq.grad).all()


def test_attention_gradients_match_torch():
    g = _g(6)
    q, k, v = (torch.randn(2, 5, 4, generator=g, requires_grad=True) for _ in range(3))
    mask = A.causal_mask(5)
    ours = torch.autograd.grad(A.scaled_dot_product_attention(q, k, v, mask).square().sum(), (q, k, v))
    theirs = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).square().sum(), (q, k, v))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOL)


def test_functions_do_not_change_their_inputs():
    g = _g(7)
    q, k, v = torch.randn(2, 4, 6, generator=g), torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 3, generator=g)
    mask = torch.ones(4, 5, dtype=torch.bool)
    copies = [t.clone() for t in (q, k, v, mask)]
    A.scaled_dot_product_attention(q, k, v, mask)
    for a, b in zip((q, k, v, mask), copies):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------- masks
def test_causal_mask_and_padding_mask():
    m = A.causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert all(bool(m[i, j]) == (j <= i) for i in range(4) for j in range(4))
    p = A.padding_mask([3, 1], 4)
    assert p.shape == (2, 1, 4) and p.dtype == torch.bool
    assert p[:, 0].tolist() == [[True, True, True, False], [True, False, False, False]]
    assert A.padding_mask(torch.tensor([2, 5])).shape == (2, 1, 5)
    assert (m & p).shape == (2, 4, 4)


def test_causal_attention_ignores_the_future():
    """Changing the inputs at positions >= t changes no output before t."""
    torch.manual_seed(0)
    layer = A.MultiHeadAttention(d_model=8, n_heads=2, causal=True)
    x = torch.randn(2, 7, 8, generator=_g(8))
    before = layer(x)
    for t in range(1, 7):
        y = x.clone()
        y[:, t:] = torch.randn(2, 7 - t, 8, generator=_g(t))
        after = layer(y)
        torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(after[:, t:], before[:, t:])
    # without the mask the past does see the future
    free = A.MultiHeadAttention(layer.config, causal=False)
    free.load_state_dict(layer.state_dict())
    y = x.clone()
    y[:, -1] += 1.0
    assert not torch.allclose(free(y)[:, 0], free(x)[:, 0])


# ---------------------------------------------------------------------------- multi-head attention
def _torch_mha(D, H, seed=0):
    torch.manual_seed(seed)
    return torch.nn.MultiheadAttention(D, H, bias=False, batch_first=True)


@pytest.mark.parametrize("H", [1, 2, 4])
def test_multi_head_attention_equals_torch_with_transposed_weights(H):
    D, L, B = 12 if H != 4 else 16, 5, 3
    mha = _torch_mha(D, H, seed=H)
    w_q, w_k, w_v = (w.T for w in mha.in_proj_weight.detach().chunk(3))
    w_o = mha.out_proj.weight.detach().T
    x = torch.randn(B, L, D, generator=_g(9))
    expected, expected_w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    out, weights = A.multi_head_attention(x, w_q, w_k, w_v, w_o, H, return_weights=True)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(weights, expected_w, **TOL)
    causal = A.causal_mask(L)
    torch.testing.assert_close(A.multi_head_attention(x, w_q, w_k, w_v, w_o, H, causal),
                               mha(x, x, x, attn_mask=~causal, need_weights=False)[0], **TOL)   # torch: True = blocked
    lengths = torch.tensor([5, 2, 4])
    pad = A.padding_mask(lengths, L)
    torch.testing.assert_close(A.multi_head_attention(x, w_q, w_k, w_v, w_o, H, pad),
                               mha(x, x, x, key_padding_mask=~pad[:, 0], need_weights=False)[0], **TOL)


def test_module_from_torch_matches_forward_and_gradients():
    mha = _torch_mha(8, 2, seed=3)
    ours = A.MultiHeadAttention.from_torch(mha, causal=True)
    x = torch.randn(2, 6, 8, generator=_g(10), requires_grad=True)
    mask = A.causal_mask(6)
    expected = mha(x, x, x, attn_mask=~mask, need_weights=False)[0]
    got, weights = ours(x, need_weights=True)
    torch.testing.assert_close(got, expected, **TOL)
    assert weights.shape == (2, 2, 6, 6) and (weights.triu(1) == 0).all()
    g_theirs = torch.autograd.grad(expected.sum(), mha.in_proj_weight)[0]
    g_ours = torch.autograd.grad(ours(x).sum(), ours.w_q)[0]
    torch.testing.assert_close(g_ours, g_theirs[:8].T, **TOL)


def test_split_and_merge_heads_are_inverse_and_keep_blocks_together():
    x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    h = A.split_heads(x, 4)
    assert h.shape == (2, 4, 3, 2)
    assert torch.equal(h[0, 1, 0], x[0, 0, 2:4])            # head 1 holds features 2 and 3
    assert torch.equal(A.merge_heads(h), x)


def test_config_validation():
    with pytest.raises(CourseError, match="divide"):
        A.MultiHeadAttentionConfig(d_model=10, n_heads=4)
    with pytest.raises(CourseError, match="whole number"):
        A.MultiHeadAttentionConfig(d_model=0)
    with pytest.raises(CourseError, match="bias=False"):
        A.MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(8, 2))


# ---------------------------------------------------------------------------- positions
@pytest.mark.parametrize("n, d", [(1, 4), (7, 6), (50, 16), (9, 5)])
def test_sinusoidal_positions_against_a_direct_loop(n, d):
    pe = A.sinusoidal_positions(n, d)
    assert pe.shape == (n, d) and pe.dtype == torch.float32
    for p in range(n):
        for j in range(d):
            angle = p / 10000 ** (2 * (j // 2) / d)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(float(pe[p, j]) - want) < 1e-6, (p, j)


def test_a_fixed_offset_is_a_rotation_of_the_sinusoidal_code():
    """PE[p + k] is a fixed linear map (one 2x2 rotation per pair) of PE[p], for every p."""
    d, k = 8, 3
    pe = A.sinusoidal_positions(40, d, dtype=torch.float64)
    omega = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    sin, cos = pe[:-k, 0::2], pe[:-k, 1::2]
    shifted = torch.stack([sin * c + cos * s, cos * c - sin * s], dim=-1).reshape(-1, d)
    torch.testing.assert_close(shifted, pe[k:])


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, message", [
    (lambda: A.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(5, 3), torch.randn(5, 2)), "same feature size"),
    (lambda: A.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(5, 4), torch.randn(6, 2)), "one row per key"),
    (lambda: A.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2),
                                            torch.ones(3, 5)), "bool tensor"),
    (lambda: A.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2),
                                            torch.ones(5, 3, dtype=torch.bool)), "does not broadcast"),
    (lambda: A.scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 2)),
     "do not broadcast"),
    (lambda: A.scaled_dot_product_attention([[1.0]], torch.randn(1, 1), torch.randn(1, 1)), "torch tensor"),
    (lambda: A.attention_weights(torch.randn(4), torch.randn(4)), "(..., length, features)"),
    (lambda: A.multi_head_attention(torch.randn(2, 3, 8), *[torch.randn(8, 8)] * 3, torch.randn(8, 4), 2), "w_o must be"),
    (lambda: A.multi_head_attention(torch.randn(2, 3, 8), *[torch.randn(8, 8)] * 4, 3), "divides D=8"),
    (lambda: A.causal_mask(0), "whole number >= 1"),
    (lambda: A.causal_mask(2.5), "whole number >= 1"),
    (lambda: A.padding_mask([3, 0]), "at least one real position"),
    (lambda: A.padding_mask([3, 5], 4), "does not fit"),
    (lambda: A.padding_mask([[1, 2]]), "1-d"),
    (lambda: A.sinusoidal_positions(4, 0), "d_model"),
    (lambda: A.MultiHeadAttention(d_model=8, n_heads=2)(torch.randn(2, 3, 6)), "(B, L, 8)"),
])
def test_bad_input_raises_a_clear_course_error(call, message):
    with pytest.raises(CourseError) as e:
        call()
    assert message in str(e.value)
