"""Lesson 03 checks: the reference solutions pass quickly; the stub and known-wrong implementations
fail; the random cases change under grading."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course import check
from course.checks import exercises_of, lesson_03, pass_line
from exercise_helpers import GRADING_SEEDS, contract_tests, run_check, seen_then_graded, stub

NAMES = ["melody_lm", "melody_lm_loss", "apply_temperature", "top_k_filter"]


class StubLM(nn.Module):
    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()


# ---------------------------------------------------------------- the solutions (as in the notebook)
class MelodyLM(nn.Module):
    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_size)
        self.lstm = nn.LSTM(emb_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        features, _ = self.lstm(self.embed(tokens))
        return self.head(features)


class MelodyGRU(nn.Module):
    """Another right answer: a GRU with one-hot inputs instead of an embedding."""

    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        self.V = vocab_size
        self.rnn = nn.GRU(vocab_size, hidden_size, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        h, _ = self.rnn(F.one_hot(tokens, self.V).float())
        return self.out(h)


def melody_lm_loss(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), ignore_index=pad_id)


def apply_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def top_k_filter(logits, k):
    k = min(k, logits.shape[-1])
    largest = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, largest.indices, largest.values)


SOLUTIONS = {"melody_lm": MelodyLM, "melody_lm_loss": melody_lm_loss, "apply_temperature": apply_temperature,
             "top_k_filter": top_k_filter}


# ---------------------------------------------------------------- other right answers
class MelodyLMWithDropout(MelodyLM):
    """Dropout on the embeddings and the features: the check trains in train mode and judges in eval mode."""

    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__(vocab_size, emb_size, hidden_size)
        self.drop = nn.Dropout(0.3)

    def forward(self, tokens):
        features, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.head(self.drop(features))


def temp_logsumexp(logits, temperature):
    z = logits / temperature
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))


def topk_by_sorting(logits, k):
    order = torch.argsort(logits, dim=-1, descending=True)[..., :k]
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, order, logits.gather(-1, order))


OTHER_RIGHT = {"melody_lm": [MelodyGRU, MelodyLMWithDropout], "apply_temperature": [temp_logsumexp],
               "top_k_filter": [topk_by_sorting]}


# ---------------------------------------------------------------- known-wrong implementations
class BrokenOriginal(nn.Module):
    """The broken example's model: LSTM features straight out, no projection to the vocabulary."""

    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_size)
        self.encoder = nn.LSTM(emb_size, hidden_size, batch_first=True)
        self.decoder = nn.LSTM(hidden_size, hidden_size, batch_first=True)

    def forward(self, tokens):
        encoded, _ = self.encoder(self.embed(tokens))
        decoded, _ = self.decoder(encoded)
        return decoded


class TanhLogits(MelodyLM):
    """Bug 2 of the find-the-bugs answer: the scores are squashed into (-1, 1)."""

    def forward(self, tokens):
        return torch.tanh(super().forward(tokens))


class NoLSTM(MelodyLM):
    """The embedding goes straight into the output layer: right shapes, but no memory of earlier tokens."""

    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__(vocab_size, emb_size, hidden_size)
        self.head = nn.Linear(emb_size, vocab_size)

    def forward(self, tokens):
        return self.head(self.embed(tokens))


class LSTMFeaturesAsLogits(nn.Module):
    """An LSTM as wide as the vocabulary, its outputs used as logits (bounded by (-1, 1))."""

    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_size)
        self.lstm = nn.LSTM(emb_size, vocab_size, batch_first=True)

    def forward(self, tokens):
        return self.lstm(self.embed(tokens))[0]


class SoftmaxOut(MelodyLM):
    def forward(self, tokens):
        return torch.softmax(super().forward(tokens), dim=-1)


class NotBatchFirst(MelodyLM):
    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__(vocab_size, emb_size, hidden_size)
        self.lstm = nn.LSTM(emb_size, hidden_size)


class Bidirectional(MelodyLM):
    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__(vocab_size, emb_size, hidden_size)
        self.lstm = nn.LSTM(emb_size, hidden_size, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden_size, vocab_size)


class ReturnsState(MelodyLM):
    def forward(self, tokens):
        features, state = self.lstm(self.embed(tokens))
        return self.head(features), state


class Frozen(MelodyLM):
    """Right shapes, but the logits never depend on the input or on trainable weights."""

    def forward(self, tokens):
        features, _ = self.lstm(self.embed(tokens))
        return self.head(features).detach() * 0 + torch.zeros(tokens.shape + (self.head.out_features,))


def loss_unshifted(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), tokens.reshape(-1), ignore_index=pad_id)


def loss_double_softmax(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    probs = torch.softmax(logits, dim=-1)
    return F.cross_entropy(probs[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), ignore_index=pad_id)


def loss_keeps_padding(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def loss_shift_wrong_way(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, 1:].reshape(-1, V), tokens[:, :-1].reshape(-1), ignore_index=pad_id)


def loss_nll_on_logits(logits, tokens, pad_id=0):
    V = logits.shape[-1]
    return F.nll_loss(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), ignore_index=pad_id)


def loss_item(logits, tokens, pad_id=0):
    return melody_lm_loss(logits, tokens, pad_id).item()


def loss_pad_zero_always(logits, tokens, pad_id=0):
    return melody_lm_loss(logits, tokens, 0)


def temp_multiplies(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)


def temp_ignored(logits, temperature):
    return torch.softmax(logits, dim=-1)


def temp_naive_exp(logits, temperature):
    e = torch.exp(logits / temperature)
    return e / e.sum(dim=-1, keepdim=True)


def temp_wrong_dim(logits, temperature):
    return torch.softmax(logits / temperature, dim=0)


def temp_no_softmax(logits, temperature):
    return logits / temperature


def topk_keeps_ties(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def topk_fails_when_k_exceeds_V(logits, k):
    top = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)


def topk_zero_not_inf(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return torch.where(logits >= kth, logits, torch.zeros_like(logits))


def topk_off_by_one(logits, k):
    ordered = torch.sort(logits, dim=-1, descending=True).values
    kth = ordered[..., min(k, logits.shape[-1] - 1)].unsqueeze(-1)
    return torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))


def topk_smallest(logits, k):
    kth = torch.topk(logits, k, dim=-1, largest=False).values[..., -1:]
    return torch.where(logits <= kth, logits, torch.full_like(logits, float("-inf")))


def topk_in_place(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    logits[logits < kth] = float("-inf")
    return logits


def topk_whole_tensor(logits, k):
    kth = torch.topk(logits.reshape(-1), k).values[-1]
    return torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))


def topk_large_negative(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return torch.where(logits >= kth, logits, torch.full_like(logits, -1e9))


WRONG = {
    "melody_lm": [BrokenOriginal, SoftmaxOut, NotBatchFirst, Bidirectional, ReturnsState, Frozen, TanhLogits,
                  NoLSTM, LSTMFeaturesAsLogits],
    "melody_lm_loss": [loss_unshifted, loss_double_softmax, loss_keeps_padding, loss_shift_wrong_way,
                       loss_nll_on_logits, loss_item, loss_pad_zero_always],
    "apply_temperature": [temp_multiplies, temp_ignored, temp_naive_exp, temp_wrong_dim, temp_no_softmax],
    "top_k_filter": [topk_zero_not_inf, topk_off_by_one, topk_smallest, topk_in_place, topk_whole_tensor,
                     topk_large_negative, topk_keeps_ties, topk_fails_when_k_exceeds_V],
}

# what the fail line should point at, for the wrong answers whose mistake the check can name
EXPECTED_MESSAGE = {
    BrokenOriginal: "not vocab_size",
    SoftmaxOut: "probabilities",
    NotBatchFirst: "batch_first=True",
    Bidirectional: "peeks",
    ReturnsState: "tuple",
    Frozen: "no gradient",
    TanhLogits: "(-1, 1)",
    NoLSTM: "LSTM's features",
    LSTMFeaturesAsLogits: "(-1, 1)",
    loss_item: "Python number",
    topk_zero_not_inf: "-inf",
    topk_off_by_one: "exactly k",
    topk_in_place: "changed its input",
    topk_large_negative: "-inf",
    temp_naive_exp: "NaN",
    topk_keeps_ties: "tie",
    topk_fails_when_k_exceeds_V: "k larger than the vocabulary",
}


def test_the_lesson_registers_its_exercises_under_unique_names():
    assert [e.name for e in exercises_of("03_melody_lstm")] == NAMES


@pytest.mark.parametrize("name, right", [(n, f) for n, fs in OTHER_RIGHT.items() for f in fs],
                         ids=[f.__name__ for fs in OTHER_RIGHT.values() for f in fs])
@pytest.mark.parametrize("seed", (None,) + GRADING_SEEDS)
def test_other_right_answers_pass(name, right, seed, monkeypatch):
    if seed is None:
        monkeypatch.delenv("COURSE_GRADING_SEED", raising=False)
    else:
        monkeypatch.setenv("COURSE_GRADING_SEED", seed)
    assert run_check(name, right) == pass_line(name)


def test_the_learning_case_separates_working_models_from_memoryless_and_squashed_ones():
    """The margins behind the 0.4-nat threshold: working models end far below it, wrong ones far above."""
    import numpy as np

    from course.nn.melody import lm_loss

    case = next(c for c in lesson_03.melody_lm.cases() if c.args[0] == "learn")
    tokens_t, held_t = case.args[4], case.args[5]
    got = {cls: lesson_03._probe_melody_lm(cls)(*case.args) for cls in (MelodyLM, MelodyLMWithDropout, TanhLogits, NoLSTM)}
    final = {cls: float(lm_loss(g["logits"], tokens_t)) for cls, g in got.items()}      # the judge's own scoring
    held = {cls: float(lm_loss(g["held_out"], held_t)) for cls, g in got.items()}
    assert final[MelodyLM] < 0.1 and final[MelodyLMWithDropout] < 0.2
    assert final[TanhLogits] > 0.8 and final[NoLSTM] > 0.55
    # on the scale started at notes training never began on, working models stay well under the held-out bound
    assert held[MelodyLM] < 0.5 * lesson_03._LEARNED_HELD_OUT and held[MelodyLMWithDropout] < 0.5 * lesson_03._LEARNED_HELD_OUT
    # a model without memory cannot beat the best next-token table of the tune: check that bound by counting
    tokens = tokens_t.numpy()
    pairs = {}
    for row in tokens:
        for a, b in zip(row[:-1], row[1:]):
            pairs.setdefault(int(a), []).append(int(b))
    floor = -np.mean([np.log(nxt.count(b) / len(nxt)) for nxt in pairs.values() for b in nxt])
    assert floor > 0.55 > lesson_03._LEARNED


def test_the_reference_implementations_pass():
    from course import generate
    from course.nn import melody

    class Reference(nn.Module):
        def __init__(self, V, E, H):
            super().__init__()
            self.m = melody.MelodyLSTM(vocab_size=V, emb=E, hidden=H, layers=1, dropout=0.0)

        def forward(self, tokens):
            return self.m(tokens)[0]

    assert run_check("melody_lm", Reference) == pass_line("melody_lm")
    assert run_check("melody_lm_loss", melody.lm_loss) == pass_line("melody_lm_loss")
    assert run_check("apply_temperature", generate.apply_temperature) == pass_line("apply_temperature")
    assert run_check("top_k_filter", generate.top_k_filter) == pass_line("top_k_filter")


def test_passing_a_model_instead_of_the_class_fails_clearly():
    out = run_check("melody_lm", MelodyLM(10, 4, 8))
    assert out.startswith("FAIL melody_lm: case 'setup'") and "class" in out


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    a = torch.rand(3)
    torch.manual_seed(123)
    run_check("melody_lm", MelodyLM)
    assert torch.equal(torch.rand(3), a)


@pytest.mark.parametrize("name", ["melody_lm_loss", "apply_temperature", "top_k_filter"])
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    def key(args):
        return repr([a.detach().numpy().tobytes() if torch.is_tensor(a) else a for a in args])

    _, _, memorized = seen_then_graded(name, getattr(lesson_03, name).cases, SOLUTIONS[name], key, monkeypatch)
    assert run_check(name, memorized).startswith(f"FAIL {name}: case ")
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


def test_grading_seed_changes_the_model_sizes(monkeypatch):
    monkeypatch.delenv("COURSE_GRADING_SEED", raising=False)
    seen = [c.name for c in lesson_03.melody_lm.cases()]
    monkeypatch.setenv("COURSE_GRADING_SEED", "grading-2024")
    graded = [c.name for c in lesson_03.melody_lm.cases()]
    assert seen != graded
    assert run_check("melody_lm", MelodyLM) == pass_line("melody_lm")


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, stubs={"melody_lm": StubLM}, expected_message=EXPECTED_MESSAGE)


def test_the_lessons_draw_from_the_exercises_samples_what_generate_samples():
    from course import generate, music, nn as course_nn
    m, v = course_nn.melody.MelodyLSTM(emb=8, hidden=16, layers=1, dropout=0.0), music.MelodyVocab()
    draw = lambda z, t, k, g: torch.multinomial(torch.softmax(generate.top_k_filter(z, k) / t, -1), 1, generator=g)[0]
    for t, k in [(1.0, None), (0.7, 5), (1.5, 20)]:       # the notebook's draw: top-k, temperature, a draw
        knobs = dict(temperature=t, top_k=k, seed=3, rules=generate.melody_rules(v), forbid=(v.PAD, v.BOS))
        ours, theirs = (generate.sample_tokens(m, [v.BOS], 40, draw=d, **knobs) for d in (draw, None))
        assert ours.tolist() == theirs.tolist()
