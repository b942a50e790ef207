"""course.nn.rnn: each from-scratch layer against its torch.nn counterpart, and a model that overfits."""
import pytest
import torch

from course.errors import CourseError
from course.nn import rnn

TOL = dict(rtol=1e-5, atol=1e-5)
B, T, D, H = 3, 7, 5, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g, dtype=dtype), torch.randn(B, H, generator=g, dtype=dtype)


def _torch_module(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, batch_first=True)
    with torch.no_grad():  # make the biases clearly nonzero and different, to catch bias mix-ups
        for p in mod.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return mod


def _grads(module):
    return {n: p.grad.clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_sequence_matches_torch_forward_and_gradients(kind):
    ref = _torch_module(kind)
    ours = rnn.RNN.from_torch(ref)
    x, h0 = _inputs()
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    if kind == "lstm":
        c0 = torch.randn(B, H, generator=torch.Generator().manual_seed(5))
        out_ref, (h_ref, c_ref) = ref(x_ref, (h0[None], c0[None]))
        out, (h, c) = ours(x_ours, (h0, c0))
        torch.testing.assert_close(c, c_ref[0], **TOL)
        final_ref, final = h_ref[0] + c_ref[0], h + c
    else:
        out_ref, h_ref = ref(x_ref, h0[None])
        out, h = ours(x_ours, h0)
        final_ref, final = h_ref[0], h
    torch.testing.assert_close(out, out_ref, **TOL)
    torch.testing.assert_close(h, h_ref[0], **TOL)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(9))
    ((out_ref * w).sum() + final_ref.square().sum()).backward()
    ((out * w).sum() + final.square().sum()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL)
    g_ref, g = _grads(ref), _grads(ours.cell)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(g[name], g_ref[name + "_l0"], **TOL)


@pytest.mark.parametrize("kind, torch_cell, ours", [("rnn", torch.nn.RNNCell, rnn.RNNCell),
                                                    ("lstm", torch.nn.LSTMCell, rnn.LSTMCell),
                                                    ("gru", torch.nn.GRUCell, rnn.GRUCell)])
def test_cells_match_torch_cells(kind, torch_cell, ours):
    torch.manual_seed(1)
    ref = torch_cell(D, H)
    cell = ours.from_torch(ref)
    x, h = _inputs(2)
    x = x[:, 0]
    if kind == "lstm":
        c = torch.randn(B, H)
        for a, b in zip(cell(x, (h, c)), ref(x, (h, c))):
            torch.testing.assert_close(a, b, **TOL)
    else:
        torch.testing.assert_close(cell(x, h), ref(x, h), **TOL)


def test_functional_steps_match_torch():
    x, h = _inputs(3)
    x = x[:, 0]
    ref = _torch_module("rnn")
    p = dict(ref.named_parameters())
    torch.testing.assert_close(
        rnn.rnn_step(x, h, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"] + p["bias_hh_l0"]),
        ref(x[:, None], h[None])[1][0], **TOL)
    ref = _torch_module("lstm")
    p = dict(ref.named_parameters())
    c = torch.randn(B, H)
    h1, c1 = rnn.lstm_step(x, h, c, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"] + p["bias_hh_l0"])
    _, (h_ref, c_ref) = ref(x[:, None], (h[None], c[None]))
    torch.testing.assert_close(h1, h_ref[0], **TOL)
    torch.testing.assert_close(c1, c_ref[0], **TOL)
    ref = _torch_module("gru")
    p = dict(ref.named_parameters())
    torch.testing.assert_close(
        rnn.gru_step(x, h, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]),
        ref(x[:, None], h[None])[1][0], **TOL)


def test_float64_and_zero_initial_state():
    ref = _torch_module("gru").double()
    ours = rnn.RNN.from_torch(ref)
    x, _ = _inputs(4, torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=1e-10, atol=1e-10)


def test_from_torch_rejects_what_it_cannot_copy():
    with pytest.raises(CourseError):
        rnn.RNN.from_torch(torch.nn.LSTM(D, H, num_layers=2))
    with pytest.raises(CourseError):
        rnn.RNN.from_torch(torch.nn.RNN(D, H, nonlinearity="relu"))
    with pytest.raises(CourseError):
        rnn.RNN.from_torch(torch.nn.Linear(D, H))
    with pytest.raises(CourseError):
        rnn.LSTMCell.from_torch(torch.nn.GRU(D, H))
    with pytest.raises(CourseError):
        rnn.RNNConfig(cell="transformer")
    with pytest.raises(CourseError):
        rnn.RNN(input_size=D, hidden_size=H)(torch.zeros(B, D))


def test_rnn_does_not_change_its_input_and_handles_empty_sequences():
    model = rnn.RNN(input_size=D, hidden_size=H, cell="lstm")
    x, _ = _inputs()
    before = x.clone()
    model(x)
    assert torch.equal(x, before)
    out, (h, c) = model(torch.zeros(B, 0, D))
    assert out.shape == (B, 0, H) and h.shape == (B, H)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_token_model_overfits_one_batch(cell):
    torch.manual_seed(0)
    vocab = 12
    tokens = torch.randint(0, vocab, (4, 12), generator=torch.Generator().manual_seed(0))
    model = rnn.TokenRNN(rnn.RNNConfig(input_size=16, hidden_size=48, cell=cell, vocab_size=vocab))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = float(model.loss(tokens).detach())
    for _ in range(150):
        loss = model.loss(tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0
    assert float(loss.detach()) < 0.1, f"{cell}: loss {float(loss.detach()):.3f} after 150 steps on one batch"


def test_continue_tokens_greedy_reproduces_a_memorized_sequence():
    torch.manual_seed(0)
    seq = torch.tensor([[1, 5, 7, 5, 9, 3, 8, 8, 2]])
    model = rnn.TokenRNN(rnn.RNNConfig(input_size=8, hidden_size=32, cell="gru", vocab_size=10))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        loss = model.loss(seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model.continue_tokens([1, 5], 20, temperature=0, stop=2)
    assert out == seq[0].tolist()
    sampled = model.continue_tokens([1], 5, temperature=1.0, seed=3)
    assert len(sampled) == 6 and sampled == model.continue_tokens([1], 5, temperature=1.0, seed=3)
    with pytest.raises(CourseError):
        model.continue_tokens([], 3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fused_and_from_scratch_token_models_agree(cell):
    torch.manual_seed(0)
    config = rnn.RNNConfig(input_size=6, hidden_size=10, cell=cell, vocab_size=9, fused=True)
    fused = rnn.TokenRNN(config)
    scratch = fused.convert(fused=False)
    assert isinstance(scratch.rnn, rnn.RNN) and not scratch.config.fused
    tokens = torch.randint(0, 9, (2, 11), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(scratch(tokens), fused(tokens), **TOL)
    fused.loss(tokens).backward()
    scratch.loss(tokens).backward()
    torch.testing.assert_close(scratch.embed.weight.grad, fused.embed.weight.grad, **TOL)
    torch.testing.assert_close(scratch.rnn.cell.weight_hh.grad, fused.rnn.module.weight_hh_l0.grad, **TOL)
    back = scratch.convert(fused=True)
    torch.testing.assert_close(back(tokens), fused(tokens), **TOL)
    assert fused.continue_tokens([1, 2], 6, temperature=0) == scratch.continue_tokens([1, 2], 6, temperature=0)


def test_to_torch_round_trip():
    model = rnn.RNN(input_size=D, hidden_size=H, cell="lstm")
    x, _ = _inputs(6)
    torch.testing.assert_close(model.to_torch()(x)[0], model(x)[0], **TOL)


def test_step_jacobian_matches_autograd():
    torch.manual_seed(0)
    W_xh, W_hh, b, x, h = torch.randn(H, D), torch.randn(H, H), torch.randn(H), torch.randn(D), torch.randn(H)
    step = lambda h_prev: rnn.rnn_step(x, h_prev, W_xh, W_hh, b)    # unbatched vectors work too
    torch.testing.assert_close(rnn.step_jacobian(step(h), W_hh), torch.autograd.functional.jacobian(step, h))
