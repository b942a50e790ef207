"""course.nn.melody: the melody LSTM's shapes, state, loss (shifted, padding ignored) and overfitting."""
import math

import pytest
import torch
import torch.nn.functional as F

from course import music, train
from course.errors import CourseError
from course.nn import melody

VOCAB = music.MelodyVocab()
TUNES = ["E4 G4 A4 G4 E4:2 D4 C4", "C4:0.5 D4:0.5 E4 F4 G4:2 r G4", "A4 A4 B4 C5:2 B4 A4:0.5 G4:0.5 E4:2"]


def tokens_of(texts, pad_to=None) -> torch.Tensor:
    seqs = [music.to_melody_tokens(music.from_text(t), VOCAB) for t in texts]
    T = pad_to or max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), VOCAB.PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s)
    return out


def small(**kw) -> melody.MelodyLSTM:
    torch.manual_seed(0)
    cfg = dict(emb=16, hidden=32, layers=2, dropout=0.0)
    cfg.update(kw)
    return melody.MelodyLSTM(melody.MelodyLSTMConfig(**cfg))


def test_shapes_and_state():
    model = small()
    x = tokens_of(TUNES)                                      # (3, T)
    logits, (h, c) = model(x)
    assert logits.shape == (3, x.shape[1], len(VOCAB))
    assert h.shape == c.shape == (2, 3, 32)
    assert model.config.vocab_size == len(VOCAB) == 164
    assert model.num_parameters() > 0


def test_feeding_one_token_at_a_time_with_the_state_gives_the_same_logits():
    model = small().eval()
    x = tokens_of(TUNES[:1])
    full, _ = model(x)
    state, steps = None, []
    for t in range(x.shape[1]):
        out, state = model(x[:, t : t + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_overfits_one_small_batch():
    model = small(layers=1, hidden=64)
    batch = tokens_of(TUNES)
    hist = train.train(model, [batch], melody.loss_fn, train.TrainConfig(steps=100, lr=3e-2, progress=False),
                       device=torch.device("cpu"))
    assert hist.train_loss[0] > 4.0                            # about log(164) = 5.1 at the start
    assert hist.train_loss[-1] < 0.15                          # only the first note after BOS stays uncertain
    with torch.no_grad():
        total, count = melody.loss_fn(model, batch)
    assert float(total / count) < 0.15


def test_lm_loss_is_shifted_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 9, generator=g)
    tokens = torch.randint(1, 9, (2, 6), generator=g)
    manual = -torch.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:, None]).mean()
    torch.testing.assert_close(melody.lm_loss(logits, tokens), manual)
    with pytest.raises(CourseError):
        melody.lm_loss(logits, tokens[:, :-1])


def test_loss_ignores_padding():
    model = small().eval()
    x = tokens_of(TUNES[:2])
    x_long = tokens_of(TUNES[:2], pad_to=x.shape[1] + 7)      # the same melodies with more padding
    with torch.no_grad():
        s1, n1 = melody.loss_fn(model, x)
        s2, n2 = melody.loss_fn(model, x_long)
        one, m1 = melody.loss_fn(model, tokens_of(TUNES[:1]))
    assert int(n1) == int(n2) == int((x[:, 1:] != VOCAB.PAD).sum())
    torch.testing.assert_close(s1, s2)
    # the padded second melody does not change the first one's loss either
    with torch.no_grad():
        per_item = [melody.loss_fn(model, x[i : i + 1, : int((x[i] != 0).sum())]) for i in range(2)]
    torch.testing.assert_close(s1, per_item[0][0] + per_item[1][0])
    torch.testing.assert_close(one, per_item[0][0])
    # lm_loss agrees with loss_fn on the mean
    with torch.no_grad():
        logits, _ = model(x)
    torch.testing.assert_close(melody.lm_loss(logits, x), s1 / n1)


def test_batch_formats():
    x = tokens_of(TUNES)
    a, b = melody.split_batch(x)
    assert torch.equal(a, x[:, :-1]) and torch.equal(b, x[:, 1:])
    assert melody.split_batch((x, x))[1] is x
    assert torch.equal(melody.split_batch({"tokens": x})[0], x[:, :-1])
    assert melody.split_batch({"inputs": a, "targets": b})[1] is b
    model = small().eval()
    with torch.no_grad():
        torch.testing.assert_close(melody.loss_fn(model, x)[0], melody.loss_fn(model, (a, b))[0])
    for bad in (x[:, :1], x[0], (x, x, x), {"notes": x}):
        with pytest.raises(CourseError):
            melody.split_batch(bad)


def test_padding_embedding_is_zero_and_config_is_validated():
    model = small()
    assert torch.count_nonzero(model.embed.weight[VOCAB.PAD]) == 0
    with pytest.raises(CourseError):
        melody.MelodyLSTMConfig(hidden=0)
    with pytest.raises(CourseError):
        melody.MelodyLSTMConfig(dropout=1.0)
    with pytest.raises(CourseError):
        melody.MelodyLSTMConfig(vocab_size=10, pad_id=10)
    with pytest.raises(CourseError):
        small()(torch.zeros(5, dtype=torch.long))
    m = melody.MelodyLSTM(hidden=24, layers=1)                # keyword overrides of the defaults
    assert m.config.hidden == 24 and m.lstm.num_layers == 1
    m2 = melody.MelodyLSTM(m.config, emb=8)
    assert m2.config.emb == 8 and m2.config.hidden == 24


def test_an_untrained_model_is_close_to_uniform():
    model = small().eval()
    x = tokens_of(TUNES)
    with torch.no_grad():
        s, n = melody.loss_fn(model, x)
    assert float(s / n) == pytest.approx(math.log(len(VOCAB)), abs=0.1)
    with torch.no_grad():
        p = F.softmax(model(x)[0], -1)
    assert float(p.max()) < 0.05


def test_the_benchmark_script_runs_in_fast_mode(repo_root, tmp_path):
    """``benchmarks/melody_lstm.py --fast``: lesson 03's training pipeline end to end, tiny (seconds)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "melody.json"
    run = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "melody_lstm.py"), "--fast", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["mode"] == "fast" and res["settings"]["steps"] == 40
    assert 0 < res["valid_nll_per_token"] < math.log(164)          # better than a uniform guess
    assert [s for s, _ in res["valid_curve"]] == [20, 40]
