"""course.nn.polyphonic: shapes, the loss against a hand computation, proper distributions, strict
autoregression, overfitting one batch, sampling, batching; and the training options lesson 04 uses."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import CourseError, data, train
from course.nn import polyphonic as P

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rolls_of(lengths, n_keys=88, density=0.06, seed=0):
    r = np.random.default_rng(seed)
    return [(r.random((T, n_keys)) < density).astype(np.uint8) for T in lengths]


def quiet(**kw):
    return train.TrainConfig(progress=False, **kw)


def tiny_lstm(n_keys=88, hidden=16):
    torch.manual_seed(0)
    return P.PolyLSTM(P.PolyLSTMConfig(n_keys=n_keys, hidden=hidden, dropout=0.0))


def tiny_nade(n_keys=88, hidden=16, nade_hidden=8):
    torch.manual_seed(0)
    return P.PolyNADE(P.PolyNADEConfig(n_keys=n_keys, hidden=hidden, dropout=0.0, nade_hidden=nade_hidden))


# ------------------------------------------------------------------------------------- batches
def test_shift_frames_puts_silence_first():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    s = P.shift_frames(x)
    assert s.shape == x.shape
    assert torch.equal(s[:, 0], torch.zeros(2, 4)) and torch.equal(s[:, 1:], x[:, :-1])


def test_unpack_batch_reads_every_format():
    batch = data.collate([torch.ones(3, 5), torch.ones(1, 5)])
    rolls, mask = P.unpack_batch(batch)
    assert rolls.shape == (2, 3, 5) and mask.tolist() == [[True] * 3, [True, False, False]]
    for other in [(batch.rolls, batch.mask), {"rolls": batch.rolls, "lengths": batch.lengths},
                  {"rolls": batch.rolls, "mask": batch.mask}]:
        r2, m2 = P.unpack_batch(other)
        assert torch.equal(r2, rolls) and torch.equal(m2, mask)
    r3, m3 = P.unpack_batch(batch.rolls)
    assert m3.all()
    with pytest.raises(CourseError):
        P.unpack_batch(torch.zeros(3, 5))
    with pytest.raises(CourseError):
        P.unpack_batch((batch.rolls, torch.ones(2, 7, dtype=torch.bool)))


def test_batches_of_pieces_cover_every_piece_once_per_epoch():
    rolls = rolls_of([5, 9, 3, 12, 7, 4, 8])
    batches = P.batches_of_pieces(rolls, batch_size=3, seed=1)
    assert len(batches) == 3
    for _ in range(2):
        seen = []
        for b in batches:
            assert isinstance(b, data.RollBatch)
            seen += b.lengths.tolist()
            assert torch.equal(b.mask, torch.arange(b.rolls.shape[1])[None] < b.lengths[:, None])
        assert sorted(seen) == sorted(len(r) for r in rolls)
    fixed = [b.lengths.tolist() for b in P.batches_of_pieces(rolls, 3, shuffle=False, by_length=False)]
    assert fixed == [[5, 9, 3], [12, 7, 4], [8]]


def test_grouping_by_length_cuts_padding():
    rolls = rolls_of(list(range(10, 200, 6)), seed=2)

    def padding(batches):
        return sum(int((~b.mask).sum()) for b in batches)

    assert padding(P.batches_of_pieces(rolls, 8, seed=0)) < 0.3 * padding(
        P.batches_of_pieces(rolls, 8, seed=0, by_length=False))


def test_transposition_keeps_every_note_on_the_keyboard():
    roll = np.zeros((4, 88), np.uint8)
    roll[:, [1, 40, 85]] = 1                       # room for 1 semitone down and 2 up
    shifts = set()
    for b in P.batches_of_pieces([roll] * 20, 20, seed=3, transpose=(-5, 6)):
        for r in b.rolls.numpy():
            assert r.sum() == roll.sum()
            shifts.add(int(np.flatnonzero(r[0])[0]) - 1)
    assert shifts <= {-1, 0, 1, 2} and len(shifts) > 1


# ------------------------------------------------------------------------------------- the LSTM
def test_poly_lstm_shapes_and_state():
    model = tiny_lstm()
    logits, (h, c) = model(torch.zeros(3, 7, 88))
    assert logits.shape == (3, 7, 88) and h.shape == (1, 3, 16)
    # reading in two pieces with the state gives the same logits as reading at once
    x = torch.rand(2, 6, 88).round()
    model.eval()
    full, _ = model(x)
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], 1), full, atol=1e-6)


def test_loss_is_the_summed_bernoulli_nll_over_real_frames():
    model = tiny_lstm(n_keys=6)
    model.eval()
    rolls = rolls_of([4, 2], n_keys=6, density=0.4)
    batch = data.collate(rolls)
    total, count = P.loss_fn(model, batch)
    assert count == 6
    # by hand: predict frame t from frames before it, p = sigmoid(logit), sum over keys, over real frames
    expected = 0.0
    for r in rolls:
        x = torch.tensor(r, dtype=torch.float32)
        prev = torch.cat([torch.zeros(1, 6), x[:-1]])[None]
        with torch.no_grad():
            p = torch.sigmoid(model(prev)[0][0])
        expected -= float((x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum())
    assert math.isclose(float(total.detach()), expected, rel_tol=1e-5)
    # the first frames left out
    t2, c2 = P.loss_fn(model, batch, skip_first=True)
    assert c2 == 4 and float(t2.detach()) < float(total.detach())


def test_evaluate_gives_nats_per_frame_exactly():
    model = tiny_lstm()
    rolls = rolls_of([5, 9, 3, 12, 7])
    batches = list(P.batches_of_pieces(rolls, 2, shuffle=False))
    whole = data.collate(rolls)
    total, count = P.loss_fn(model.eval(), whole)
    assert count == sum(len(r) for r in rolls)
    assert math.isclose(train.evaluate(model, batches, P.loss_fn), float(total.detach()) / count, rel_tol=1e-5)


def test_padding_does_not_change_the_loss():
    model = tiny_lstm().eval()
    r = rolls_of([5])[0]
    alone, n1 = P.loss_fn(model, data.collate([r]))
    padded = data.collate([r, rolls_of([11], seed=4)[0]])
    first_only = P.frame_nll(model, padded.rolls)[0, :5].sum()
    assert n1 == 5 and torch.allclose(alone, first_only, atol=1e-5)


@pytest.mark.parametrize("make", [tiny_lstm, tiny_nade], ids=["PolyLSTM", "PolyNADE"])
def test_each_model_overfits_one_small_batch(make):
    model = make(n_keys=12, hidden=32)
    batch = data.collate(rolls_of([10, 8], n_keys=12, density=0.3, seed=5))
    start = float(P.loss_fn(model, batch)[0].detach()) / 18
    train.train(model, [batch], P.loss_fn, quiet(steps=150, lr=2e-2), device=CPU)
    end = float(P.loss_fn(model.eval(), batch)[0].detach()) / 18
    assert end < 0.25 * start, (start, end)


# ------------------------------------------------------------------------------------- the NADE
def test_nade_is_a_proper_distribution_over_all_frames():
    model = tiny_nade(n_keys=4, hidden=8, nade_hidden=5).eval()
    for p in model.parameters():                       # make the keys depend on each other strongly
        p.data.normal_(0, 1.0)
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))      # all 16 frames
    h = torch.randn(1, 8).expand(16, 8)
    with torch.no_grad():
        nll = model.nll(h, frames)                     # (16,)
    assert math.isclose(float(torch.exp(-nll).sum()), 1.0, rel_tol=1e-5)
    # ... and not an independent one: p(frame) differs from the product of its marginals
    probs = torch.exp(-nll)
    marg = (probs[:, None] * frames).sum(0)
    indep = torch.prod(torch.where(frames > 0, marg, 1 - marg), dim=1)
    assert (probs - indep).abs().max() > 1e-3


def test_nade_logits_are_strictly_autoregressive():
    model = tiny_nade(n_keys=10, hidden=8, nade_hidden=6).eval()
    for p in model.parameters():
        p.data.normal_(0, 1.0)
    h = torch.randn(8)
    v = torch.rand(10).round().requires_grad_(True)
    jac = torch.autograd.functional.jacobian(lambda x: model.conditional_logits(h, x), v)   # (out k, in j)
    j_ge_k = ~P.autoregressive_mask(10).bool()
    assert jac[j_ge_k].abs().max() == 0
    assert jac[~j_ge_k].abs().min() > 0                # and every key below k does reach logit k


def test_nade_cumulative_sum_equals_the_masked_sum():
    model = tiny_nade(n_keys=7, hidden=8, nade_hidden=5).eval()
    h, v = torch.randn(3, 8), torch.rand(3, 7).round()
    M = P.autoregressive_mask(7)                        # (k, j)
    with torch.no_grad():
        a = model.to_c(h)[:, None, :] + torch.einsum("bj,kj,jn->bkn", v, M, model.W)     # (B, P, N)
        by_mask = model.out(h) + (torch.sigmoid(a) * model.U).sum(-1)
        assert torch.allclose(model.conditional_logits(h, v), by_mask, atol=1e-5)


def test_nade_sampler_matches_the_generic_key_by_key_sampler():
    model = tiny_nade(n_keys=16, hidden=8, nade_hidden=6).eval()
    for p in model.parameters():
        p.data.normal_(0, 1.5)
    h = torch.randn(1, 8)
    u = torch.rand(1, 16, generator=torch.Generator().manual_seed(3))

    def next_logit(prefix):
        frame = torch.zeros(16)
        frame[: len(prefix)] = torch.as_tensor(prefix, dtype=torch.float32)
        with torch.no_grad():
            return float(model.conditional_logits(h[0], frame)[len(prefix)])

    expected = P.sample_frame_autoregressive(next_logit, 16, u[0].numpy())
    assert np.array_equal(model.sample_frame(h, u)[0].numpy(), expected)


def test_nade_forward_needs_the_frames():
    model = tiny_nade()
    x = torch.rand(2, 5, 88).round()
    logits, _ = model(P.shift_frames(x), frames=x)
    assert logits.shape == (2, 5, 88)
    with pytest.raises(CourseError, match="frames"):
        model(x)


# ------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("make", [tiny_lstm, tiny_nade], ids=["PolyLSTM", "PolyNADE"])
def test_sample_shapes_seeds_and_prime(make):
    model = make()
    roll = P.sample(model, 6, seed=1)
    assert roll.shape == (6, 88) and roll.dtype == np.uint8 and set(np.unique(roll)) <= {0, 1}
    assert np.array_equal(roll, P.sample(model, 6, seed=1))
    assert not np.array_equal(P.sample(model, 20, seed=1), P.sample(model, 20, seed=2))
    prime = rolls_of([3])[0]
    cont = P.sample(model, 4, seed=0, prime=prime)
    assert cont.shape == (7, 88) and np.array_equal(cont[:3], prime)
    assert P.sample(model, 5, n=3).shape == (3, 5, 88)
    assert model.training is False or model.training is True      # restored, whatever it was
    with pytest.raises(CourseError):
        P.sample(model, -1)
    with pytest.raises(CourseError):
        P.sample(model, 3, temperature=0)
    with pytest.raises(CourseError):
        P.sample(model, 3, prime=np.zeros((3, 12)))


def test_sampling_restores_training_mode():
    model = tiny_lstm().train()
    P.sample(model, 2)
    assert model.training


def test_low_temperature_plays_fewer_unlikely_notes():
    model = tiny_lstm()
    hot = P.sample(model, 30, seed=0, temperature=2.0).sum()
    cold = P.sample(model, 30, seed=0, temperature=0.5).sum()
    assert cold < hot


def test_sample_frame_autoregressive_feeds_back_its_draws():
    def next_logit(prefix):                            # key k copies key k-1, strongly
        return 10.0 if len(prefix) and prefix[-1] == 1 else -10.0

    u = np.full(5, 0.5)
    assert P.sample_frame_autoregressive(lambda prefix: 10.0 if len(prefix) == 0 else next_logit(prefix), 5,
                                         u).tolist() == [1, 1, 1, 1, 1]
    assert P.sample_frame_autoregressive(next_logit, 5, u).tolist() == [0, 0, 0, 0, 0]


def test_autoregressive_mask():
    m = P.autoregressive_mask(4)
    assert m.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]


# ------------------------------------------------------------------------------------- training
def test_trains_from_a_dataloader_of_roll_batches():
    """``course.data.PianoRollDataset`` + ``collate`` batches (a NamedTuple) go through ``train``."""
    ds = data.PianoRollDataset(rolls_of([6, 9, 4, 7]), transpose=(-2, 2))
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, collate_fn=data.collate)
    hist = train.train(tiny_lstm(), loader, P.loss_fn, quiet(steps=3, eval_every=3), valid_batches=loader,
                       device=CPU)
    assert len(hist.valid_loss) == 1 and np.isfinite(hist.valid_loss[0])


def test_cosine_decay_anneals_the_learning_rate():
    model = tiny_lstm()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []
    batch = data.collate(rolls_of([4]))
    train.train(model, [batch], P.loss_fn, quiet(steps=5, lr=1.0, decay="cosine"), device=CPU, optimizer=opt,
                callbacks=[lambda step, loss, val=None: seen.append(opt.param_groups[0]["lr"])])
    expected = [0.5 * (1 + math.cos(math.pi * s / 5)) for s in range(5)]
    assert np.allclose(seen, expected)
    with pytest.raises(CourseError):
        train.train(model, [batch], P.loss_fn, quiet(steps=1, decay="linear"), device=CPU)


def test_keep_best_restores_the_best_validation_weights():
    model = tiny_lstm()
    batch = data.collate(rolls_of([6, 6], seed=7))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    snapshots = {}

    def remember_then_climb(step, loss, val=None):
        if val is not None:
            snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        if step == 20:
            opt.param_groups[0]["lr"] = -0.05          # from here on, gradient ascent: the loss gets worse

    hist = train.train(model, [batch], P.loss_fn, quiet(steps=40, eval_every=5, keep_best=True), optimizer=opt,
                       valid_batches=[batch], device=CPU, callbacks=[remember_then_climb])
    best_step = hist.valid_steps[int(np.argmin(hist.valid_loss))]
    assert best_step == 20 and hist.valid_loss[-1] > hist.best_valid
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[best_step][k])
    assert math.isclose(train.evaluate(model, [batch], P.loss_fn), hist.best_valid, rel_tol=1e-5)


# ------------------------------------------------------------------------------------- MADE outputs
def tiny_made(n_keys=88, hidden=16, made_hidden=24, made_layers=2):
    torch.manual_seed(0)
    return P.PolyMADE(P.PolyMADEConfig(n_keys=n_keys, hidden=hidden, dropout=0.0, made_hidden=made_hidden,
                                       made_layers=made_layers))


def tiny_transformer(n_keys=88, context=8, made_layers=2):
    torch.manual_seed(0)
    return P.PolyTransformer(P.PolyTransformerConfig(n_keys=n_keys, d_model=16, n_heads=2, n_layers=2, d_ff=32,
                                                     dropout=0.0, context=context, made_hidden=24,
                                                     made_layers=made_layers))


MADE_MODELS = [tiny_made, tiny_transformer]


def test_made_degrees_spread_over_every_key_but_the_last():
    d = P.made_degrees(5, 10)
    assert d.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("make", MADE_MODELS)
def test_made_models_shapes(make):
    model = make().eval()
    rolls = torch.tensor(np.stack(rolls_of([11, 11], seed=3)), dtype=torch.float32)   # (2, 11, 88)
    logits, _ = model(P.shift_frames(rolls), frames=rolls)
    assert logits.shape == (2, 11, 88)
    assert P.frame_nll(model, rolls).shape == (2, 11)
    with pytest.raises(CourseError):
        model(P.shift_frames(rolls))                    # the frames themselves are needed
    total, count = P.loss_fn(model, data.collate([rolls[0], rolls[1, :4]]))
    assert count == 15 and total.ndim == 0


@pytest.mark.parametrize("make", MADE_MODELS)
def test_made_logit_of_key_k_sees_only_keys_below_and_earlier_frames(make):
    """d logit[t, k] / d roll[s, j] is zero unless s < t, or s == t and j < k (with 12 frames the
    Transformer of context 8 also reads a piece in overlapping windows)."""
    model = make(n_keys=6).eval()
    rolls = torch.tensor(rolls_of([12], n_keys=6, density=0.4, seed=1)[0], dtype=torch.float32)[None]
    rolls.requires_grad_(True)
    logits, _ = model(P.shift_frames(rolls), frames=rolls)                  # (1, 12, 6)
    for t in range(12):
        for k in range(6):
            (g,) = torch.autograd.grad(logits[0, t, k], rolls, retain_graph=True)
            g = g[0]
            assert torch.all(g[t + 1:] == 0), (t, k)
            assert torch.all(g[t, k:] == 0), (t, k)
    # and it is not vacuous: the keys below and the earlier frames do reach the logits
    (g,) = torch.autograd.grad(logits[0, 5, 5], rolls)
    assert g[0, 5, :5].abs().sum() > 0 and g[0, :5].abs().sum() > 0


@pytest.mark.parametrize("make", MADE_MODELS)
def test_made_models_are_proper_distributions_over_a_frame(make):
    """Summed over all 2^6 frames, p(frame | history) is 1: the NLL is an exact, normalized likelihood."""
    model = make(n_keys=6).eval()
    history = torch.tensor(rolls_of([3], n_keys=6, density=0.4, seed=2)[0], dtype=torch.float32)  # (3, 6)
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))                           # (64, 6)
    rolls = torch.cat([history.expand(64, -1, -1), frames[:, None, :]], 1)                         # (64, 4, 6)
    with torch.no_grad():
        nll = P.frame_nll(model, rolls)[:, -1]                                                     # (64,)
    assert math.isclose(float(torch.exp(-nll).sum()), 1.0, rel_tol=1e-5)


def test_transformer_reads_a_long_piece_in_half_overlapping_windows():
    """Context 8, 14 frames: frames 0..7 from the first window, 8..11 from window 4..11, 12..13 from 6..13."""
    model = tiny_transformer(context=8).eval()
    x = torch.tensor(rolls_of([14], seed=4)[0], dtype=torch.float32)[None]
    with torch.no_grad():
        h, state = model.context(x)
        want = torch.cat([model._features(x[:, :8]), model._features(x[:, 4:12])[:, 4:],
                          model._features(x[:, 6:14])[:, 6:]], 1)
    assert h.shape == (1, 14, 16) and torch.allclose(h, want, atol=1e-6)
    assert state.shape == (1, 7, 88)                    # what a continuation needs: the last context - 1 frames


@pytest.mark.parametrize("make", MADE_MODELS)
def test_made_models_overfit_one_small_batch(make):
    model = make()
    batch = data.collate(rolls_of([10, 8], seed=5))
    before = train.evaluate(model, [batch], P.loss_fn)
    train.train(model, [batch], P.loss_fn, quiet(steps=60, lr=1e-2), device=CPU)
    assert train.evaluate(model, [batch], P.loss_fn) < 0.5 * before


@pytest.mark.parametrize("make", MADE_MODELS)
def test_made_models_sample_and_continue_a_prime(make):
    model = make()
    prime = rolls_of([3], seed=6)[0]
    a = P.sample(model, 5, seed=1, prime=prime)
    assert a.shape == (8, 88) and a.dtype == np.uint8 and np.array_equal(a[:3], prime)
    assert np.array_equal(a, P.sample(model, 5, seed=1, prime=prime))
    assert P.sample(model, 4, n=2, seed=0).shape == (2, 4, 88)
