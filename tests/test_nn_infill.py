"""The capstone's in-filling model (Coconet-style): shapes, masks, the loss, Yao's schedule, Gibbs filling."""
import numpy as np
import pytest
import torch

from course import CourseError
from course.nn import infill

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small():
    return infill.InfillConfig(n_voices=4, n_pitches=12, channels=8, layers=3)


def test_one_hot_round_trips_and_rests_are_empty_rows():
    voices = np.array([[60, 62, -1], [55, 55, 57], [50, -1, 52], [48, 47, 45]])
    x = infill.one_hot(voices, low=45, n_pitches=18)
    assert x.shape == (4, 3, 18) and x.sum() == 10 and x[0, 2].sum() == 0
    assert np.array_equal(infill.from_one_hot(x, low=45), voices)
    with pytest.raises(CourseError, match="outside 45..62"):
        infill.one_hot(np.array([[70]]), low=45, n_pitches=18)


def test_the_network_sees_only_the_visible_cells():
    torch.manual_seed(0)
    model = infill.Infiller(small()).eval()
    x = torch.as_tensor(infill.one_hot(np.random.default_rng(0).integers(60, 72, (4, 8)), 60, 12))[None]
    mask = torch.zeros(1, 4, 8)
    mask[0, 1, 3] = 1
    changed = x.clone()
    changed[0, 1, 3] = torch.roll(changed[0, 1, 3], 5)           # another pitch under the hidden cell
    with torch.no_grad():
        assert torch.equal(model(x, mask), model(changed, mask))
        assert not torch.equal(model(x, torch.zeros(1, 4, 8)), model(changed, torch.zeros(1, 4, 8)))
    with pytest.raises(CourseError, match="mask must be"):
        model(x, torch.zeros(1, 4, 7))


def test_masks_hide_at_a_random_rate_and_the_loss_counts_hidden_notes_only():
    masks = infill.random_mask(400, 4, 16, generator=torch.Generator().manual_seed(0))
    rates = masks.flatten(1).mean(1)
    assert masks.shape == (400, 4, 16) and (masks.flatten(1).sum(1) >= 1).all()
    assert rates.min() < 0.1 and rates.max() > 0.9 and abs(rates.mean().item() - 0.5) < 0.05
    x = torch.zeros(1, 1, 2, 3)
    x[0, 0, 0, 2] = 1                                           # step 0 plays pitch 2; step 1 is a rest
    logits = torch.tensor([[[[0.0, 0.0, 2.0], [9.0, 9.0, -9.0]]]])
    mask = torch.ones(1, 1, 2)
    expected = -torch.log_softmax(logits[0, 0, 0], -1)[2]
    assert torch.isclose(infill.masked_loss(logits, x, mask), expected)
    assert infill.masked_loss(logits, x, torch.zeros(1, 1, 2)) == 0


def test_yaos_schedule_anneals_from_everything_to_a_few_cells():
    p = infill.yao_schedule(100)
    assert p[0] == 0.9 and p[-1] == 0.1 and (np.diff(p) <= 0).all()
    assert p[69] == pytest.approx(max(0.1, 0.9 - 69 * 0.8 / 70)) and p[71] == 0.1   # the floor after eta N steps
    assert infill.yao_schedule(4, p_min=0.05, p_max=1.0, eta=0.75).tolist() == pytest.approx([1.0, 0.6833333, 0.3666667, 0.05])
    with pytest.raises(CourseError):
        infill.yao_schedule(0)


def test_gibbs_keeps_the_given_cells_and_fills_every_free_one():
    torch.manual_seed(0)
    model = infill.Infiller(small())
    soprano = np.array([64, 64, 65, 67, 67, 65, 64, 62])
    out = infill.harmonize(model, soprano, low=60, n_steps=6, seed=1)
    assert out.shape == (4, 8) and np.array_equal(out[0], soprano)
    assert ((out[1:] >= 60) & (out[1:] < 72)).all()                          # every lower cell got a pitch
    assert np.array_equal(out, infill.harmonize(model, soprano, low=60, n_steps=6, seed=1))


def test_a_few_steps_of_training_learn_a_copy_rule():
    """Four voices that always sing the same pitch: a hidden cell can be read off the visible voices at its step.

    The loss cannot reach 0 (a step whose four cells are all hidden is a guess, log 12 nats), but it falls well
    below a guess within a few dozen steps."""
    torch.manual_seed(0)
    model = infill.Infiller(small())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        line = torch.randint(0, 12, (16, 1, 8), generator=gen).expand(16, 4, 8)
        x = F_one_hot(line)
        mask = infill.random_mask(16, 4, 8, generator=gen)
        loss = infill.masked_loss(model(x, mask), x, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.65 * np.mean(losses[:10]) and np.mean(losses[-10:]) < 0.6 * np.log(12)


def F_one_hot(index):
    return torch.nn.functional.one_hot(index, 12).float()


def test_loss_fn_sums_over_the_hidden_sounding_cells_and_counts_them():
    torch.manual_seed(0)
    model = infill.Infiller(infill.InfillConfig(n_pitches=24, channels=8, layers=2))
    voices = np.array([[[67, 67, -1, 69], [60, 62, 64, 65], [55, 55, 57, 59], [48, 50, 52, 53]]])
    x = torch.as_tensor(np.stack([infill.one_hot(v, 48, 24) for v in voices]))
    mask = torch.zeros(1, 4, 4)
    mask[0, 0, 1:3] = 1                                              # one sounding cell and one rest hidden
    mask[0, 3, 0] = 1
    total, n = infill.loss_fn(model, (x, mask))
    assert n == 2
    logp = torch.log_softmax(model(x, mask), -1)
    expected = -(logp[0, 0, 1, 67 - 48] + logp[0, 3, 0, 48 - 48])
    assert float(total) == pytest.approx(float(expected), rel=1e-5)


def test_crop_batches_draw_new_windows_each_pass_unless_fixed():
    from course import data

    pieces = data.voices("chorales", "valid")[:6]
    fresh = infill.CropBatches(pieces, 16, 4, 2, low=data.VOICE_LOW, n_pitches=46, seed=0)
    fixed = infill.CropBatches(pieces, 16, 4, 2, low=data.VOICE_LOW, n_pitches=46, seed=0, fixed=True)
    (x1, m1), (x2, _) = list(fresh)
    (y1, _), _ = list(fresh)
    assert x1.shape == (4, 4, 16, 46) and m1.shape == (4, 4, 16) and len(fresh) == 2
    assert not torch.equal(x1, y1)                                   # a new pass, new windows
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(fixed, fixed))
    assert set(x1.sum(-1).unique().tolist()) <= {0.0, 1.0}           # one pitch per sounding cell


@pytest.mark.parametrize("steps", [5, 24])
def test_lower_voices_nll_is_the_chain_rule_cell_by_cell(steps):
    """On the whole chorale, cell by cell; with 24 steps the function scores 7-step windows (3 layers: radius 3)."""
    from course import data

    torch.manual_seed(1)
    model = infill.Infiller(infill.InfillConfig(n_pitches=46, channels=8, layers=3)).eval()
    v = np.array([[67, 67, 69, -1, 71], [62, 64, 64, 65, 67], [55, 55, 57, 59, 59], [43, 48, 45, 50, 43]])
    if steps != 5:
        v = data.voices("chorales", "test")[0][:, :steps].astype(np.int64)
    got = infill.lower_voices_nll(model, v, 36)
    x = torch.as_tensor(infill.one_hot(v, 36, 46))[None]
    total, n = 0.0, 0
    for t in range(v.shape[1]):
        for voice in (1, 2, 3):
            if v[voice, t] < 0:
                continue
            mask = torch.zeros(1, 4, v.shape[1])
            mask[0, 1:, t + 1:] = 1
            mask[0, voice:, t] = 1
            with torch.no_grad():
                total -= float(torch.log_softmax(model(x, mask)[0, voice, t], -1)[v[voice, t] - 36])
            n += 1
    assert got == pytest.approx(total / n, rel=1e-5)
    each = infill.lower_voices_nll(model, v, 36, per_cell=True)
    assert each.shape == v.shape and np.isnan(each[0]).all() and np.isnan(each[v < 0]).all()
    assert np.nanmean(each) == pytest.approx(got, rel=1e-9)
