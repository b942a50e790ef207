"""course.train: the one training loop (overfitting, averaging, checkpoint and resume, errors)."""
import math

import pytest
import torch
from torch import nn

from course import train
from course.errors import CourseError

CPU = torch.device("cpu")


def quiet(**kw) -> train.TrainConfig:
    kw.setdefault("progress", False)
    return train.TrainConfig(**kw)


def one_batch(seed=0, n=16, d=5, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def mean_ce(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def summed_ce(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y, reduction="sum"), len(y)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 3))


def test_overfits_one_batch():
    model = mlp()
    batch = one_batch()
    with torch.no_grad():
        before = float(mean_ce(model, batch))
    hist = train.train(model, [batch], mean_ce, quiet(steps=300, lr=1e-2), device=CPU)
    assert hist.steps == list(range(1, 301))
    assert len(hist.train_loss) == 300
    with torch.no_grad():
        assert float(mean_ce(model, batch)) < 0.05 < before
    assert not model.training            # train() leaves the model in eval mode
    assert hist.device == "cpu" and hist.seconds > 0


def test_summed_losses_average_by_count():
    model = mlp()
    big, small = one_batch(1, n=30), one_batch(2, n=2)
    got = train.evaluate(model, [big, small], summed_ce, device=CPU)
    with torch.no_grad():
        total = float(summed_ce(model, big)[0] + summed_ce(model, small)[0])
    assert got == pytest.approx(total / 32, rel=1e-6)
    with torch.no_grad():
        mean_of_means = (float(mean_ce(model, big)) + float(mean_ce(model, small))) / 2
    assert abs(got - mean_of_means) > 1e-4                      # not the mean of batch means
    # the training loss of a step is the batch's summed loss over its count
    hist = train.train(mlp(), [big], summed_ce, quiet(steps=1, lr=0.0), device=CPU)
    with torch.no_grad():
        assert hist.train_loss[0] == pytest.approx(float(mean_ce(mlp(), big)), rel=1e-5)


def test_evaluate_respects_max_batches_and_restores_mode():
    model = mlp()
    model.train()
    a, b = one_batch(1), one_batch(2)
    with torch.no_grad():
        first = float(mean_ce(model, a))
    assert train.evaluate(model, [a, b], mean_ce, max_batches=1) == pytest.approx(first)
    assert model.training
    with pytest.raises(CourseError, match="no batches"):
        train.evaluate(model, [], mean_ce)


def test_validation_history_and_callbacks():
    seen, calls = [], []

    class Recorder:
        def update(self, step, loss, valid=None):
            seen.append((step, valid))

    batch = one_batch()
    hist = train.train(mlp(), [batch], mean_ce, quiet(steps=10, eval_every=4), device=CPU,
                       valid_batches=[one_batch(3)], callbacks=[Recorder(), lambda s, l, v=None: calls.append(s)])
    assert hist.valid_steps == [4, 8, 10]
    assert len(hist.valid_loss) == 3 and math.isfinite(hist.best_valid)
    assert hist.last_valid == hist.valid_loss[-1]
    assert [s for s, _ in seen] == list(range(1, 11)) and calls == list(range(1, 11))
    assert [s for s, v in seen if v is not None] == [4, 8, 10]


def test_checkpoint_resume_continues_step_count_and_history(tmp_path):
    ckpt = tmp_path / "sub" / "model.pt"
    batch = one_batch()
    valid = [one_batch(3)]

    # one uninterrupted run of 40 steps
    straight = mlp()
    h_straight = train.train(straight, [batch], mean_ce, quiet(steps=40, eval_every=10), device=CPU,
                             valid_batches=valid)

    # the same run, stopped after 20 steps and resumed in a fresh model
    first = mlp()
    h1 = train.train(first, [batch], mean_ce, quiet(steps=20, eval_every=10, checkpoint=str(ckpt)), device=CPU,
                     valid_batches=valid)
    assert ckpt.exists() and h1.steps[-1] == 20
    steps_seen = []
    resumed = mlp(seed=99)                              # different initial weights: all come from the file
    h2 = train.train(resumed, [batch], mean_ce, quiet(steps=40, eval_every=10, checkpoint=str(ckpt)), device=CPU,
                     valid_batches=valid, callbacks=[lambda s, l, v=None: steps_seen.append(s)])
    assert steps_seen == list(range(21, 41))            # continued, not restarted
    assert h2.steps == list(range(1, 41))               # one history across both runs
    assert h2.valid_steps == [10, 20, 30, 40]
    assert h2.train_loss[:20] == h1.train_loss
    assert h2.train_loss == pytest.approx(h_straight.train_loss, rel=1e-5)
    for p, q in zip(resumed.parameters(), straight.parameters()):   # optimizer state was restored too
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)

    # a finished run resumes to nothing: the same history, no training
    again = mlp(seed=7)
    h3 = train.train(again, [batch], mean_ce, quiet(steps=40, checkpoint=str(ckpt)), device=CPU,
                     callbacks=[lambda s, l, v=None: pytest.fail("trained again")])
    assert h3.steps == h2.steps
    for p, q in zip(again.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)


def test_a_checkpoint_of_another_model_is_explained(tmp_path):
    ckpt = tmp_path / "model.pt"
    train.train(mlp(), [one_batch()], mean_ce, quiet(steps=2, checkpoint=str(ckpt)), device=CPU)
    other = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    with pytest.raises(CourseError, match="Delete it"):
        train.train(other, [one_batch()], mean_ce, quiet(steps=4, checkpoint=str(ckpt)), device=CPU)


def test_nan_loss_is_a_course_error():
    def nan_loss(model, batch):
        return mean_ce(model, batch) * float("nan")

    with pytest.raises(CourseError, match="lower the learning rate"):
        train.train(mlp(), [one_batch()], nan_loss, quiet(steps=5), device=CPU)


def test_bad_inputs_are_course_errors():
    with pytest.raises(CourseError, match="no batches"):
        train.train(mlp(), [], mean_ce, quiet(steps=1), device=CPU)
    with pytest.raises(CourseError, match="count of 0"):
        train.train(mlp(), [one_batch()], lambda m, b: (mean_ce(m, b), 0), quiet(steps=1), device=CPU)
    with pytest.raises(CourseError, match="steps"):
        train.train(mlp(), [one_batch()], mean_ce, quiet(steps=-1), device=CPU)


def test_warmup_ramps_the_learning_rate():
    lrs = []
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.train(model, [one_batch()], mean_ce, quiet(steps=6, warmup=4), device=CPU, optimizer=opt,
                callbacks=[lambda s, l, v=None: lrs.append(opt.param_groups[0]["lr"])])
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_scaled_steps_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert train.scaled_steps(3000, 40) == 40
    monkeypatch.setenv("COURSE_FAST", "0")
    assert train.scaled_steps(3000, 40) == 3000


def test_cosine_decay_anneals_to_zero():
    lrs = []
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.train(model, [one_batch()], mean_ce, quiet(steps=4, decay="cosine"), device=CPU, optimizer=opt,
                callbacks=[lambda s, l, v=None: lrs.append(opt.param_groups[0]["lr"])])
    assert lrs == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)])
    with pytest.raises(CourseError, match="decay"):
        train.train(mlp(), [one_batch()], mean_ce, quiet(steps=1, decay="linear"), device=CPU)


def test_keep_best_restores_the_best_validated_weights():
    # one weight w, trained towards 1 by SGD (w: 0 -> 0.6 -> 0.84 -> 0.936) but validated against 0.5
    def run(keep_best):
        model = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            model.weight.zero_()
        one = torch.ones(1, 1)
        fit = lambda m, target: ((m(one) - target) ** 2).sum()
        opt = torch.optim.SGD(model.parameters(), lr=0.3)
        hist = train.train(model, [1.0], fit, quiet(steps=3, eval_every=1, grad_clip=None, keep_best=keep_best),
                           device=CPU, optimizer=opt, valid_batches=[0.5])
        return model.weight.item(), hist

    w, hist = run(keep_best=True)
    assert hist.valid_loss == pytest.approx([0.1**2, 0.34**2, 0.436**2], rel=1e-4)
    assert w == pytest.approx(0.6)
    assert run(keep_best=False)[0] == pytest.approx(0.936)


def test_a_callback_is_finished_at_the_end():
    class Live:
        def __init__(self):
            self.points, self.finished = 0, 0

        def update(self, step, loss, valid=None):
            self.points += 1

        def finish(self):
            self.finished += 1

    live = Live()
    train.train(mlp(), [one_batch()], mean_ce, quiet(steps=3), device=CPU, callbacks=[live])
    assert (live.points, live.finished) == (3, 1)
