"""course.train on several processes: two CPU processes under torchrun (gloo) train exactly like one.

The test launches this file with the real launcher, ``python -m torch.distributed.run --standalone
--nproc_per_node 2``; each process runs :func:`worker` (the ``__main__`` block), which trains a tiny
melody LSTM through ``course.train.train`` and writes what it saw to a folder. The test process then
trains the same model alone on the global batches (each the two processes' batches joined) and
compares: the weights, the training and validation losses, who printed and who wrote the checkpoint,
a resume from a checkpoint, and how a shuffling DataLoader is split.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from torch import nn

from course import train
from course.errors import CourseError
from course.nn import melody

CPU = torch.device("cpu")
WORLD = 2
STEPS = 6          # 4 global batches a pass: the run wraps around into a second pass
HALF = 3           # the first run of the resume check stops here


def _distributed_ok() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_gloo_available()


# ------------------------------------------------------------------ shared by the processes and the test

def tiny_lstm(seed: int) -> melody.MelodyLSTM:
    torch.manual_seed(seed)
    return melody.MelodyLSTM(melody.MelodyLSTMConfig(vocab_size=20, emb=8, hidden=16, layers=1, dropout=0.0))


def rank_batches() -> list:
    """8 batches of (4, 12) token ids padded at the end by different amounts, so the processes' token counts differ."""
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(8):
        tokens = torch.randint(1, 20, (4, 12), generator=g)
        for row in range(4):
            tokens[row, 12 - (i * 3 + row) % 9:] = melody.PAD
        out.append(tokens)
    return out


def global_batches() -> list:
    """What one process reads for the same steps: the batches of processes 0 and 1 joined."""
    b = rank_batches()
    return [torch.cat(b[i : i + WORLD]) for i in range(0, len(b), WORLD)]


def valid_batches() -> list:
    """Three validation batches: an odd number, so the two processes evaluate different amounts."""
    g = torch.Generator().manual_seed(2)
    return [torch.randint(1, 20, (3 + i, 10), generator=g) for i in range(3)]


def settings(steps: int, **kw) -> train.TrainConfig:
    return train.TrainConfig(steps=steps, lr=1e-2, eval_every=3, **kw)


class Indexed(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return torch.full((1,), float(i)), i


# ------------------------------------------------------------------ one process of the torchrun launch

def worker(out: Path) -> None:
    dist = torch.distributed
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    report = {}

    # A: train() initialises the process group itself (and destroys it)
    model, calls = tiny_lstm(0), []
    err, text = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(text):
        hist = train.train(model, rank_batches(), melody.loss_fn, settings(STEPS, checkpoint=str(out / f"a-{rank}.pt")),
                           valid_batches=valid_batches(), device=CPU, callbacks=[lambda s, l, v=None: calls.append(s)])
    torch.save(model.state_dict(), out / f"a-model-{rank}.pt")
    report["a"] = {"train_loss": hist.train_loss, "valid_loss": hist.valid_loss, "valid_steps": hist.valid_steps,
                   "calls": calls, "stderr": err.getvalue(), "stdout": text.getvalue(),
                   "group_left": dist.is_initialized(), "eval_mode": not model.training}

    # B, C: stop after HALF steps, then resume in fresh models inside a group the caller made (which stays)
    quiet = dict(progress=False)
    train.train(tiny_lstm(1), rank_batches(), melody.loss_fn, settings(HALF, checkpoint=str(out / f"b-{rank}.pt"), **quiet),
                valid_batches=valid_batches(), device=CPU)
    dist.init_process_group("gloo")
    resumed, calls = tiny_lstm(2 + rank), []    # other weights on each process: all must come from process 0's file
    hist = train.train(resumed, rank_batches(), melody.loss_fn, settings(STEPS, checkpoint=str(out / f"b-{rank}.pt"), **quiet),
                       valid_batches=valid_batches(), device=CPU, callbacks=[lambda s, l, v=None: calls.append(s)])
    torch.save(resumed.state_dict(), out / f"c-model-{rank}.pt")
    report["c"] = {"steps": hist.steps, "train_loss": hist.train_loss, "calls": calls,
                   "group_kept": dist.is_initialized()}

    # D: a shuffling DataLoader; the model draws from the global generator a different amount on each process
    seen = []

    def loss(m, batch):
        x, idx = batch
        seen.append(idx.tolist())
        torch.rand(1 + 7 * rank)
        return ((m(x) - 1.0) ** 2).mean()

    loader = torch.utils.data.DataLoader(Indexed(), batch_size=2, shuffle=True)
    train.train(nn.Linear(1, 1), loader, loss, settings(8, **quiet), device=CPU)
    report["d"] = {"seen": seen}

    # E: a DataLoader that a DistributedSampler already splits: every batch of it, a new order each pass
    seen = []
    sampler = torch.utils.data.distributed.DistributedSampler(Indexed(), shuffle=True, seed=5)
    loader = torch.utils.data.DataLoader(Indexed(), batch_size=2, sampler=sampler)
    train.train(nn.Linear(1, 1), loader, loss, settings(8, **quiet), device=CPU)
    report["e"] = {"seen": seen}
    dist.destroy_process_group()
    (out / f"report-{rank}.json").write_text(json.dumps(report))


# ------------------------------------------------------------------ the test

def _launch(out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           str(Path(__file__).resolve()), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    if not _distributed_ok():
        pytest.skip("torch.distributed with the gloo backend is not available in this PyTorch build")
    out = tmp_path_factory.mktemp("ddp")
    _launch(out)
    reports = [json.loads((out / f"report-{r}.json").read_text()) for r in range(WORLD)]
    return out, reports


def _alone(model, steps: int, **kw):
    return train.train(model, global_batches(), melody.loss_fn, settings(steps, progress=False, **kw),
                       valid_batches=valid_batches(), device=CPU)


def _assert_same_weights(state: dict, model: nn.Module) -> None:
    mine = model.state_dict()
    assert state.keys() == mine.keys()                     # the plain module's names, no "module." prefix
    for k in mine:
        torch.testing.assert_close(state[k], mine[k], rtol=0, atol=1e-5, msg=lambda m: f"{k}: {m}")


def test_two_processes_train_like_one_on_the_global_batch(launched):
    out, reports = launched
    torch.set_num_threads(1)
    alone = tiny_lstm(0)
    hist = _alone(alone, STEPS)
    for r in range(WORLD):
        _assert_same_weights(torch.load(out / f"a-model-{r}.pt"), alone)
        a = reports[r]["a"]
        assert a["train_loss"] == pytest.approx(hist.train_loss, rel=1e-5)    # the global batch's loss, every process
        assert a["valid_steps"] == hist.valid_steps == [3, 6]
        assert a["valid_loss"] == pytest.approx(hist.valid_loss, rel=1e-5)    # the whole validation split
        assert a["group_left"] is False                                        # train() made the group, so it is gone
        assert a["eval_mode"]


def test_only_process_0_prints_calls_back_and_writes(launched):
    out, reports = launched
    first, second = reports[0]["a"], reports[1]["a"]
    assert first["calls"] == list(range(1, STEPS + 1)) and second["calls"] == []
    assert "training" in first["stderr"] and second["stderr"] == ""             # the progress bar
    assert "2 processes (gloo)" in first["stdout"] and second["stdout"] == ""
    assert (out / "a-0.pt").exists() and not (out / "a-1.pt").exists()         # each named its own file
    saved = torch.load(out / "a-0.pt", weights_only=False)
    assert saved["step"] == STEPS and saved["history"]["train_loss"] == pytest.approx(first["train_loss"])
    assert not (out / "b-1.pt").exists()


def test_a_resumed_run_reads_process_0s_checkpoint(tmp_path, launched):
    out, reports = launched
    torch.set_num_threads(1)
    ckpt = tmp_path / "alone.pt"
    _alone(tiny_lstm(1), HALF, checkpoint=str(ckpt))
    alone = tiny_lstm(2)
    hist = _alone(alone, STEPS, checkpoint=str(ckpt))
    for r in range(WORLD):
        c = reports[r]["c"]
        assert c["steps"] == list(range(1, STEPS + 1))
        assert c["train_loss"] == pytest.approx(hist.train_loss, rel=1e-5)
        assert c["group_kept"] is True                    # the caller's group is left alone
        _assert_same_weights(torch.load(out / f"c-model-{r}.pt"), alone)
    assert reports[0]["c"]["calls"] == list(range(HALF + 1, STEPS + 1)) and reports[1]["c"]["calls"] == []


def test_a_shuffling_loader_is_split_without_overlap(launched):
    _, reports = launched
    seen = [reports[r]["d"]["seen"] for r in range(WORLD)]
    assert [len(s) for s in seen] == [8, 8]
    passes = []
    for p in range(2):                                    # 8 batches of 2 a pass: 4 steps per process
        mine = [sorted(i for b in s[4 * p : 4 * p + 4] for i in b) for s in seen]
        assert set(mine[0]).isdisjoint(mine[1])
        assert sorted(mine[0] + mine[1]) == list(range(16))
        passes.append([b for s in seen for b in s[4 * p : 4 * p + 4]])
    assert passes[0] != passes[1]                          # and it does shuffle


def test_a_distributed_sampler_is_taken_as_already_split(launched):
    _, reports = launched
    seen = [reports[r]["e"]["seen"] for r in range(WORLD)]
    assert [len(s) for s in seen] == [8, 8]                # 4 batches of 2 per process and pass: both passes
    for p in range(2):
        mine = [sorted(i for b in s[4 * p : 4 * p + 4] for i in b) for s in seen]
        assert sorted(mine[0] + mine[1]) == list(range(16))
    assert seen[0][:4] != seen[0][4:]                      # set_epoch: another order in the second pass


def test_each_process_takes_one_batch_of_every_n():
    from course import distributed

    assert list(distributed.share(range(7), 0, 3)) == [0, 3]     # the incomplete last group (6) is left out
    assert list(distributed.share(range(7), 2, 3)) == [2, 5]
    assert list(distributed.share(range(7), 0, 1)) == list(range(7))
    with pytest.raises(CourseError, match="fewer than 2 batches"):
        next(train._forever([torch.ones(1)], rank=1, world=2))


def test_one_process_is_the_main_one(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert train.main_process()
    monkeypatch.setenv("RANK", "1")
    assert not train.main_process()
    monkeypatch.setenv("RANK", "0")
    assert train.main_process()


def test_world_size_1_is_a_plain_run(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    model = nn.Linear(3, 1)
    hist = train.train(model, [torch.ones(2, 3)], lambda m, x: m(x).pow(2).mean(), train.TrainConfig(steps=2, progress=False),
                       device=CPU)
    assert hist.steps == [1, 2] and not torch.distributed.is_initialized()


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
