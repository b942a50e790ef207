"""course.generate: temperature, top-k, top-p, seeded sampling, whole sequences, call and response."""
import math

import numpy as np
import pytest
import torch

from course import generate, music
from course.errors import CourseError
from course.nn import melody

VOCAB = music.MelodyVocab()


def model(seed=0):
    torch.manual_seed(seed)
    return melody.MelodyLSTM(melody.MelodyLSTMConfig(emb=8, hidden=16, layers=1, dropout=0.0))


class Stateless(torch.nn.Module):
    """A recurrent model seen through the stateless protocol: tokens -> logits, the whole sequence each time."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def forward(self, tokens):
        self.calls.append(tokens.shape[1])
        return self.inner(tokens)[0]


class FixedLogits(torch.nn.Module):
    """A stateless model that always predicts the same distribution."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def forward(self, tokens):
        return self.logits.expand(tokens.shape[0], tokens.shape[1], -1)


# ---------------------------------------------------------------- temperature
def test_temperature_one_is_softmax_and_rows_sum_to_one():
    z = torch.tensor([[2.0, 1.0, 0.1], [0.0, -1.0, 3.0]])
    p = generate.apply_temperature(z, 1.0)
    torch.testing.assert_close(p, torch.softmax(z, -1))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))
    torch.testing.assert_close(generate.apply_temperature(z, 0.5), torch.softmax(z / 0.5, -1))
    torch.testing.assert_close(generate.apply_temperature(z + 100.0, 0.7), generate.apply_temperature(z, 0.7))


def test_temperature_limits():
    z = torch.tensor([1.0, 3.0, 2.0, -1.0])
    torch.testing.assert_close(generate.apply_temperature(z, 1e-4), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(generate.apply_temperature(z, 1e6), torch.full((4,), 0.25), atol=1e-5, rtol=0)
    big = generate.apply_temperature([1000.0, 999.0, 0.0], 1.0)        # lists work; no overflow
    assert torch.isfinite(big).all() and big[0] == pytest.approx(1 / (1 + math.exp(-1)))
    masked = generate.apply_temperature(torch.tensor([0.0, float("-inf"), 0.0]), 2.0)
    torch.testing.assert_close(masked, torch.tensor([0.5, 0.0, 0.5]))


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "hot", True])
def test_temperature_is_validated(bad):
    with pytest.raises(CourseError, match="temperature"):
        generate.apply_temperature(torch.zeros(3), bad)


# ---------------------------------------------------------------- top-k, top-p
def test_top_k_keeps_exactly_k_per_row_and_renormalizes():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 10, generator=g)
    f = generate.top_k_filter(z, 3)
    assert (torch.isfinite(f).sum(-1) == 3).all()
    kept = torch.isfinite(f)
    assert torch.equal(f[kept], z[kept])
    assert (z[kept].reshape(4, 3).min(-1).values >= z.masked_fill(kept, -1e9).max(-1).values).all()
    p, q = torch.softmax(z, -1), torch.softmax(f, -1)
    torch.testing.assert_close(q[kept], (p * kept).div((p * kept).sum(-1, keepdim=True))[kept])
    assert torch.equal(z, torch.randn(4, 10, generator=torch.Generator().manual_seed(0)))   # input unchanged


def test_top_k_with_ties_and_edge_values():
    z = torch.tensor([1.0, 2.0, 2.0, 2.0, 0.0])
    assert int(torch.isfinite(generate.top_k_filter(z, 2)).sum()) == 2
    torch.testing.assert_close(generate.top_k_filter(z, 5), z)
    torch.testing.assert_close(generate.top_k_filter(z, 50), z)
    torch.testing.assert_close(generate.top_k_filter(z, None), z)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(CourseError, match="top_k"):
            generate.top_k_filter(z, bad)


def test_top_p_keeps_the_smallest_nucleus():
    p = torch.tensor([0.5, 0.05, 0.3, 0.15])
    z = p.log()
    kept = lambda q: torch.isfinite(generate.top_p_filter(z, q)).tolist()
    assert kept(0.5) == [True, False, False, False]
    assert kept(0.6) == [True, False, True, False]
    assert kept(0.8) == [True, False, True, False]
    assert kept(0.81) == [True, False, True, True]
    assert kept(1.0) == [True] * 4
    assert kept(0.01) == [True, False, False, False]             # never empty
    with pytest.raises(CourseError):
        generate.top_p_filter(z, 0.0)


# ---------------------------------------------------------------- one draw
def test_sample_next_is_reproducible_and_shaped():
    z = torch.randn(5, 12, generator=torch.Generator().manual_seed(3))
    a = generate.sample_next(z, 1.0, None, torch.Generator().manual_seed(7))
    b = generate.sample_next(z, 1.0, None, torch.Generator().manual_seed(7))
    assert a.shape == (5,) and a.dtype == torch.long and torch.equal(a, b)
    one = generate.sample_next(z[0], generator=torch.Generator().manual_seed(1))
    assert one.shape == () and 0 <= int(one) < 12


def test_sample_next_respects_top_k_temperature_and_masks():
    z = torch.randn(200, 9, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(generate.sample_next(z, 1.0, top_k=1, generator=g), z.argmax(-1))
    assert torch.equal(generate.sample_next(z, 1e-6, generator=g), z.argmax(-1))
    top3 = torch.topk(z, 3, -1).indices
    draws = generate.sample_next(z, 2.0, top_k=3, generator=g)
    assert (top3 == draws[:, None]).any(-1).all()
    masked = z.clone()
    masked[:, 0] = float("-inf")
    assert (generate.sample_next(masked, 5.0, generator=g) != 0).all()
    with pytest.raises(CourseError, match="forbidden"):
        generate.sample_next(torch.full((3,), float("-inf")))
    with pytest.raises(CourseError, match="NaN"):
        generate.sample_next(torch.tensor([0.0, float("nan")]))


def test_sample_next_follows_the_distribution():
    # a seeded, fixed draw: 20k samples land within 2% of the probabilities
    z = torch.tensor([2.0, 1.0, 0.0, -1.0])
    draws = generate.sample_next(z.expand(20000, 4), 1.5, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / 20000
    torch.testing.assert_close(freq, torch.softmax(z / 1.5, -1), atol=0.02, rtol=0)


# ---------------------------------------------------------------- whole sequences
def test_sample_tokens_keeps_the_prompt_and_length_and_is_seeded():
    m = model()
    prompt = [VOCAB.BOS, VOCAB.pitch(64), VOCAB.dur0 + 3]
    out = generate.sample_tokens(m, prompt, 20, seed=5)
    assert out.dtype == np.int64 and len(out) == 23 and out[:3].tolist() == prompt
    assert np.array_equal(out, generate.sample_tokens(m, np.array(prompt), 20, seed=5))
    assert not np.array_equal(out, generate.sample_tokens(m, prompt, 20, seed=6))
    assert len(generate.sample_tokens(m, prompt, 0)) == 3


def test_recurrent_and_stateless_models_give_the_same_tokens():
    m = model()
    wrapped = Stateless(m)
    prompt = [VOCAB.BOS, VOCAB.pitch(60)]
    a = generate.sample_tokens(m, prompt, 15, seed=2, top_k=10)
    b = generate.sample_tokens(wrapped, prompt, 15, seed=2, top_k=10)
    assert np.array_equal(a, b)
    assert wrapped.calls == list(range(2, 17))                   # the whole sequence, once per draw
    wrapped.calls.clear()
    generate.sample_tokens(wrapped, prompt * 3, 4, context=4)
    assert wrapped.calls == [4] * 4


def test_stop_token_forbid_and_rules():
    out = generate.sample_tokens(FixedLogits([0.0, 0.0, 5.0, 0.0]), [1], 50, stop_token=2, seed=0)
    assert out[-1] == 2 and len(out) < 51 and (out[1:-1] != 2).all()
    out = generate.sample_tokens(FixedLogits([9.0, 0.0, 0.0, 0.0]), [1], 30, forbid=[0], seed=0)
    assert 0 not in out[1:].tolist()
    alternate = lambda toks: torch.tensor([toks[-1] == 1, toks[-1] != 1, False, False])
    out = generate.sample_tokens(FixedLogits([0.0, 0.0, 0.0, 0.0]), [1], 10, rules=alternate, seed=0)
    assert out.tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    out = generate.sample_tokens(FixedLogits([0.0, 0.0, 0.0, 0.0]), [1], 100, until=lambda t: len(t) == 7)
    assert len(out) == 7


def test_sample_tokens_leaves_the_model_as_it_was():
    m = model()
    m.train()
    generate.sample_tokens(m, [1], 5)
    assert m.training
    assert all(p.grad is None for p in m.parameters())


def test_sample_tokens_validates_its_arguments():
    m = model()
    for kw in (dict(temperature=0), dict(top_k=0), dict(steps=-1), dict(seed=1.5), dict(context=0)):
        args = dict(steps=3)
        args.update(kw)
        with pytest.raises(CourseError):
            generate.sample_tokens(m, [1], **args)
    for bad in ([], [[1, 2], [3, 4]], [1.5], ["BOS"]):
        with pytest.raises(CourseError, match="prompt"):
            generate.sample_tokens(m, bad, 3)


# ---------------------------------------------------------------- melodies
def test_melody_rules_make_well_formed_melodies():
    rules = generate.melody_rules(VOCAB)
    assert rules([VOCAB.BOS])[VOCAB.pitch(60)] and not rules([VOCAB.BOS])[VOCAB.dur0]
    assert rules([VOCAB.BOS, VOCAB.pitch(60)]).sum() == VOCAB.max_steps
    after = rules([VOCAB.BOS, VOCAB.pitch(60), VOCAB.dur0])
    assert after[VOCAB.EOS] and after[VOCAB.REST] and after[VOCAB.dur0] and not after[VOCAB.PAD] and not after[VOCAB.BOS]
    toks = generate.sample_tokens(model(), [VOCAB.BOS], 60, rules=rules, seed=1, temperature=2.0)
    music.from_melody_tokens(toks, VOCAB, strict=True)           # no stray tokens


def test_sample_melody_and_continue_melody():
    m = model()
    song = generate.sample_melody(m, bars=2, seed=3)
    assert isinstance(song, music.Music) and song.time_signature == (4, 4)
    opening = music.from_text("E4 G4 A4 G4 E4:2 D4:2", qpm=100)
    full = generate.continue_melody(m, opening, bars=2, seed=0)
    assert full.qpm == 100
    assert [n.pitch for n in full.notes[:5]] == [64, 67, 69, 67, 64]
    assert full.notes[5].pitch == 62 and full.notes[5].end >= opening.notes[5].end - 1e-9
    assert full.duration >= opening.duration + 2 * 4 * 60 / 100 - 1e-6       # at least two bars more
    again = generate.continue_melody(m, "E4 G4 A4 G4 E4:2 D4:2", bars=2, seed=0)
    assert [n.pitch for n in again.notes] == [n.pitch for n in full.notes]
    reply = generate.continue_melody(m, opening, bars=2, seed=0, include_opening=False)
    assert all(n.start >= 0 for n in reply.notes)
    assert len(reply.notes) <= len(full.notes) - 5
    assert song.title == "sample (T=1.00, seed=3)"
    tune = opening.replace(title="7th Regiment -- Reel")
    assert generate.continue_melody(m, tune, bars=1).title == "7th Regiment -- Reel, continued by the model", \
        "the model's continuation is not titled (nor downloaded) as the real tune"
    with pytest.raises(CourseError):
        generate.continue_melody(m, opening, bars=0)
    with pytest.raises(CourseError):
        generate.continue_melody(m, 42)
