"""One training loop for every model in the course.

``train(model, batches, loss_fn, TrainConfig(...))`` handles the device, mixed precision
on CUDA, gradient clipping, a progress bar, periodic validation, checkpoint and resume,
and seeds. A model family supplies only ``loss_fn(model, batch)``, which returns either
a scalar mean loss or a pair ``(summed_loss, count)`` (so evaluation can average exactly,
e.g. nats per frame over a whole split).

The same call runs unchanged on several processes under ``torchrun`` (one per GPU, or several
CPU processes): see :func:`train` and the README's "Training on several GPUs or a cluster".

Lesson: 03_melody_lstm (first used), 04_polyphonic_chorales, 06_music_transformer
"""
from __future__ import annotations


import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import distributed
from .errors import CourseError
from .files import atomic_path
from .runtime import device as pick_device
from .runtime import fast_mode, seed_everything

__all__ = ["TrainConfig", "History", "train", "evaluate", "to_device", "main_process"]


@dataclass
class TrainConfig:
    """Settings of :func:`train`."""

    steps: int = 1000                 # optimizer steps in total (a resumed run continues up to this)
    lr: float = 1e-3                  # AdamW learning rate
    weight_decay: float = 0.0         # AdamW weight decay
    grad_clip: float | None = 1.0     # clip the gradient norm to this (None: no clipping)
    eval_every: int = 100             # validate every this many steps (and at the end)
    eval_batches: int | None = None   # validate on at most this many batches (None: all)
    amp: bool = True                  # mixed precision (bfloat16/float16 autocast) when on CUDA
    seed: int = 0                     # seeds torch/numpy/random before building the optimizer
    checkpoint: str | None = None     # file to save to at every validation; resumed from if it exists
    progress: bool = True             # show a progress bar
    warmup: int = 0                   # linear learning-rate warm-up steps
    decay: str | None = None          # "cosine": anneal the learning rate to 0 at the last step (None: constant)
    keep_best: bool = False           # at the end, restore the weights of the best validation loss seen


@dataclass
class History:
    """What happened during training: losses by step and the wall time (draw it with ``listen.plot_training``)."""

    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    valid_steps: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""

    @property
    def last_valid(self) -> float:
        return self.valid_loss[-1] if self.valid_loss else float("nan")

    @property
    def best_valid(self) -> float:
        return min(self.valid_loss) if self.valid_loss else float("nan")


def to_device(batch, device):
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if hasattr(batch, "to"):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):   # a NamedTuple, e.g. course.data.RollBatch
        return type(batch)(*(to_device(b, device) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _split_loss(out):
    """``loss_fn`` output -> (mean loss tensor, summed loss float, count)."""
    if isinstance(out, tuple):
        total, count = out
        count = float(count)
        if count <= 0:
            raise CourseError("loss_fn returned a count of 0; a batch must contain at least one item.")
        return total / count, float(total.detach()), count
    return out, float(out.detach()), 1.0


def _autocast(dev, enabled: bool):
    import contextlib

    import torch

    if enabled and dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _eval_sums(model, batches: Iterable, loss_fn: Callable, dev, max_batches: int | None, amp: bool,
               rank: int = 0, world: int = 1) -> tuple[float, float]:
    """(summed loss, count) over this process's share of ``batches``: batch ``i`` belongs to rank ``i % world``."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            if i % world != rank:
                continue
            with _autocast(dev, amp):
                _, s, c = _split_loss(loss_fn(model, to_device(batch, dev)))
            total += s
            count += c
    model.train(was_training)
    return total, count


def evaluate(model, batches: Iterable, loss_fn: Callable, *, device=None, max_batches: int | None = None,
             amp: bool = False) -> float:
    """Average loss over ``batches``: sum of summed losses / sum of counts when ``loss_fn`` returns pairs.

    One process reads all the batches, also under ``torchrun`` (inside :func:`train` the
    validation is shared out between the processes instead).
    """
    dev = device or next(model.parameters()).device
    total, count = _eval_sums(model, batches, loss_fn, dev, max_batches, amp)
    if count == 0:
        raise CourseError("evaluate() got no batches: is the validation set empty?")
    return total / count


def _forever(batches, rank: int = 0, world: int = 1):
    sampler = distributed.presplit(batches) if world > 1 else None
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        n = 0
        for b in (batches if world == 1 or sampler is not None else distributed.share(batches, rank, world)):
            n += 1
            yield b
        if n == 0 and world > 1 and sampler is None:
            raise CourseError(f"The training data gave fewer than {world} batches in a pass: each of the {world} "
                              f"processes takes one of every {world} consecutive batches (make the batches smaller "
                              "or the data set larger).")
        if n == 0:
            raise CourseError("The training data gave no batches: is the data set empty, or batch_size too large "
                              "with drop_last=True?")
        epoch += 1


def main_process() -> bool:
    """True in a single process, and in process 0 of a ``torchrun`` launch: the one that should print and write files.

    :func:`train` already keeps its progress bar, callbacks and checkpoints to process 0; a script's own
    outputs (results files, plots, weights) go under ``if train.main_process():``.
    """
    return distributed.main_process()


def train(model, batches: Iterable, loss_fn: Callable, config: TrainConfig | None = None, *,
          valid_batches: Iterable | None = None, device=None, callbacks: Iterable = (), optimizer=None) -> History:
    """Train ``model`` on ``batches`` (re-iterated as often as needed) for ``config.steps`` steps.

    Args:
        model: a ``torch.nn.Module``; moved to ``device``.
        batches: an iterable of batches, e.g. a ``DataLoader``.
        loss_fn: ``loss_fn(model, batch) -> loss`` or ``(summed_loss, count)``.
        config: a :class:`TrainConfig`.
        valid_batches: validation batches, evaluated every ``config.eval_every`` steps.
        device: a torch device; default ``course.device()``.
        callbacks: objects with ``update(step, train_loss, valid_loss=None)`` or plain callables
            with that signature (e.g. ``course.listen.LivePlot()``).
        optimizer: default AdamW(lr, weight_decay).

    Returns:
        a :class:`History`. With ``config.checkpoint`` set, the model, optimizer, step and
        history are saved at each validation and a later call resumes from the file.
        With ``config.keep_best`` the model ends with the weights of its best validation
        (early stopping); on a resumed run, the best of the validations made in this call.

    Several processes (``torchrun --nproc_per_node N script.py``, or a process group the caller
    initialised): each process runs the same script and the same call. ``train`` then

    - initialises the process group from torchrun's variables if it is not initialised yet (NCCL on
      GPU ``LOCAL_RANK``, gloo on CPU) and destroys it at the end only if it initialised it;
    - wraps the model in ``DistributedDataParallel`` (the initial weights of process 0 go to all)
      and trains ``model`` itself, in place; the model's random draws (dropout) are seeded with
      ``config.seed + rank``, so they differ between processes;
    - gives process ``r`` batch ``r`` of every ``N`` consecutive batches of ``batches`` (an incomplete
      last group of a pass is skipped), so the global batch is ``N`` times the batch of ``batches``;
      ``batches`` must give the same sequence on every process (a shuffling ``DataLoader`` does:
      batches are drawn on a random state of their own, the same everywhere). A ``DataLoader``
      whose sampler is a ``DistributedSampler`` is taken as already split: each process uses all of
      its batches (and ``set_epoch`` is called at each pass);
    - averages the loss over the global batch (summed losses and counts are added over the
      processes), so a step equals one process's step on the ``N`` batches joined together, and the
      recorded training loss is the global batch's;
    - shares the validation batches out (batch ``i`` to process ``i % N``) and adds up the results,
      so the validation loss is that of the whole split, the same on every process;
    - shows the progress bar, calls the callbacks and writes the checkpoint on process 0 only; a
      resumed run reads process 0's checkpoint and sends it to the others.

    Every process returns the same history (``seconds`` is its own).
    """
    config = config or TrainConfig()
    if config.steps < 0:
        raise CourseError(f"steps must be >= 0, got {config.steps}.")
    if config.decay not in (None, "cosine"):
        raise CourseError(f"decay must be None or 'cosine', got {config.decay!r}.")
    group, device = distributed.join(device, config.progress)
    try:
        return _train(model, batches, loss_fn, config, group, valid_batches=valid_batches, device=device,
                      callbacks=callbacks, optimizer=optimizer)
    finally:
        distributed.leave(group)


def _train(model, batches: Iterable, loss_fn: Callable, config: TrainConfig, group: distributed.Group, *,
           valid_batches, device, callbacks, optimizer) -> History:
    import torch

    many = group.world > 1
    dev = device if device is not None else pick_device(verbose=config.progress)
    seed_everything(config.seed)
    it = _forever(batches, group.rank, group.world)
    if many:
        it = distributed.drawn_alike(it)              # the batches: config.seed on every process
        seed_everything(config.seed + group.rank)     # the model's draws (dropout): another stream on each process
    model.to(dev)
    model.train()
    opt = optimizer or torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    use_amp = config.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported())
    hist = History(device=str(dev))
    step = 0
    ckpt = Path(config.checkpoint) if config.checkpoint else None
    if ckpt is not None:
        state, problem = None, None
        if group.main and ckpt.exists():
            try:
                state = torch.load(ckpt, map_location="cpu" if many else dev, weights_only=False)
            except Exception as e:
                problem = str(e)
        if many:                                      # process 0's file decides, for every process
            state, problem = distributed.from_main((state, problem))
        try:
            if problem is not None:
                raise RuntimeError(problem)
            if state is not None:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                step = int(state["step"])
                hist = History(**state["history"])
        except Exception as e:
            raise CourseError(f"Could not resume from checkpoint {ckpt}: {e}. Delete it to start afresh.") from None
    base_lrs = [g["lr"] for g in opt.param_groups]
    cbs = [c.update if hasattr(c, "update") else c for c in callbacks] if group.main else []
    bar = None
    if config.progress and group.main and step < config.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="training", unit="step", leave=True)
    t0 = time.perf_counter() - hist.seconds
    if many:
        net = distributed.wrap(model, loss_fn, dev)
    best = None   # (valid loss, weights) for keep_best
    try:
        while step < config.steps:
            batch = to_device(next(it), dev)
            if config.warmup or config.decay:
                f = min(1.0, (step + 1) / config.warmup) if config.warmup else 1.0
                if config.decay == "cosine":
                    f *= 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
                for g, lr in zip(opt.param_groups, base_lrs):
                    g["lr"] = lr * f
            if many:
                with _autocast(dev, use_amp):
                    out = distributed.forward(net, batch)
                loss, lv = distributed.global_loss(out, dev, group.world)
                finite = math.isfinite(lv)
            else:
                with _autocast(dev, use_amp):
                    loss, _, _ = _split_loss(loss_fn(model, batch))
                finite = bool(torch.isfinite(loss))
            if not finite:
                shown = lv if many else loss.item()
                raise CourseError(f"The loss became {shown} at step {step}: lower the learning rate "
                                  "or check the loss function.")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(opt)
            scaler.update()
            step += 1
            if not many:
                lv = float(loss.detach())
            hist.steps.append(step)
            hist.train_loss.append(lv)
            vl = None
            if valid_batches is not None and (step % config.eval_every == 0 or step == config.steps):
                vl = _validate(model, valid_batches, loss_fn, dev, config.eval_batches, use_amp, group)
                hist.valid_steps.append(step)
                hist.valid_loss.append(vl)
                if config.keep_best and (best is None or vl < best[0]):
                    best = (vl, {k: v.detach().clone() for k, v in model.state_dict().items()})
            for cb in cbs:
                cb(step, lv, vl)
            if bar is not None:
                bar.update(1)
                post = {"loss": f"{lv:.3f}"}
                if hist.valid_loss:
                    post["valid"] = f"{hist.valid_loss[-1]:.3f}"
                bar.set_postfix(post, refresh=False)
            if ckpt is not None and group.main and (step % config.eval_every == 0 or step == config.steps):
                hist.seconds = time.perf_counter() - t0
                _save(ckpt, model, opt, step, hist, config)
    finally:
        if bar is not None:
            bar.close()
        if group.main:
            for c in callbacks:
                finish = getattr(c, "finish", None)
                if callable(finish):
                    finish()
    hist.seconds = time.perf_counter() - t0
    if best is not None:
        model.load_state_dict(best[1])
    model.eval()
    return hist


def _validate(model, valid_batches, loss_fn: Callable, dev, max_batches, amp: bool, group: distributed.Group) -> float:
    """The validation loss inside :func:`train`: on several processes, each takes its share and the sums are added."""
    if group.world == 1:
        return evaluate(model, valid_batches, loss_fn, device=dev, max_batches=max_batches, amp=amp)
    total, count = _eval_sums(model, valid_batches, loss_fn, dev, max_batches, amp, group.rank, group.world)
    total, count = distributed.add_up([total, count], dev)
    if count == 0:
        raise CourseError("evaluate() got no batches: is the validation set empty?")
    return total / count


def _save(path: Path, model, opt, step: int, hist: History, config: TrainConfig) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "history": asdict(hist), "config": asdict(config)}, tmp)


def scaled_steps(full: int, fast: int) -> int:
    """``fast`` steps in fast mode (``COURSE_FAST=1``), else ``full``: for notebook training cells."""
    return fast if fast_mode() else full


__all__.append("scaled_steps")
