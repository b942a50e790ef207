"""Several processes for :func:`course.train.train`: the process group, each process's share, the global loss.

Under ``torchrun --nproc_per_node N script.py`` every process runs the same script; ``train`` finds
torchrun's ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` here, joins (or makes) the process group and
wraps the model in PyTorch's ``DistributedDataParallel``. Outside torchrun nothing here runs.

- :func:`join`: the group and this process's device (GPU ``LOCAL_RANK`` with NCCL, or the CPU with gloo).
- :func:`share`: process ``r`` takes batch ``r`` of every ``N`` consecutive batches.
- :func:`drawn_alike`: the batches are drawn on a random state of their own, the same on every
  process, so a shuffling ``DataLoader`` gives every process the same order to share out (the
  model's own draws, such as dropout, are seeded ``config.seed + rank``: they differ between processes).
- :func:`global_loss`: the loss of the whole global batch, averaged exactly over the processes.
- :func:`main_process`: the one process that prints and writes files.

Lesson: none (the README's "Training on several GPUs or a cluster"); used by ``course.train``.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Callable

from .errors import CourseError

__all__ = ["main_process"]


@dataclass
class Group:
    """Where this process stands among the processes of one training run."""

    rank: int = 0          # this process's number, 0 .. world - 1
    world: int = 1         # number of processes (1: a plain single-process run, no torch.distributed)
    created: bool = False  # train() initialised the process group, so train() destroys it

    @property
    def main(self) -> bool:
        return self.rank == 0


_groups_made = 0   # process groups join() has initialised in this process (the same count on every process)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise CourseError(f"The environment variable {name}={value!r} is not a whole number; torchrun sets it, "
                          "so launch with torchrun or unset it.") from None


def main_process() -> bool:
    """True in a single process, and in process 0 of a ``torchrun`` launch: the one that should print and write files.

    :func:`course.train.train` already keeps its progress bar, callbacks and checkpoints to process 0;
    a script's own outputs (results files, plots, weights) go under ``if train.main_process():``.
    """
    import torch

    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return _env_int("RANK", 0) == 0


def join(device, verbose: bool):
    """This process's :class:`Group` and device; ``Group().world == 1`` (and ``device`` unchanged) for a plain run.

    A process group that is already initialised (by the caller) is used as it is; otherwise torchrun's
    ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` decide, and the group is initialised here: NCCL when the
    device is a GPU, gloo on the CPU. Each process uses GPU ``LOCAL_RANK`` unless ``device`` names one.
    """
    import torch

    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if ready:
        world, rank = dist.get_world_size(), dist.get_rank()
    else:
        world, rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0)
    if world <= 1:
        return Group(), device
    if not dist.is_available():
        raise CourseError(f"WORLD_SIZE={world} asks for {world} processes, but this PyTorch build has no "
                          "torch.distributed: train in one process (unset WORLD_SIZE) or install a full PyTorch.")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    local = _env_int("LOCAL_RANK", rank % max(gpus, 1))
    if device is None:
        dev = torch.device("cuda", local) if gpus else torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local)
    if dev.type not in ("cpu", "cuda"):
        raise CourseError(f"Training on several processes needs CUDA GPUs or the CPU, not {dev.type}.")
    if dev.type == "cuda":
        if dev.index >= gpus:
            raise CourseError(f"Process {rank} wants GPU {dev.index}, but this machine has {gpus}: start at most "
                              f"{gpus} processes per machine (torchrun --nproc_per_node {gpus}).")
        torch.cuda.set_device(dev)
    created = False
    if not ready:
        # env:// (torchrun's MASTER_ADDR/PORT), under key names of this group's own: torchrun's store outlives a
        # group, and a second group under the first one's names can read its stale addresses and hang (a script
        # that calls train() twice)
        global _groups_made
        store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world))
        store = dist.PrefixStore(f"course.train/{_groups_made}", store)
        _groups_made += 1
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", store=store, rank=rank, world_size=world)
        created = True
    if verbose and rank == 0:
        print(f"course.train: {world} processes ({dist.get_backend()}), process 0 on {dev}")
    return Group(rank, world, created), dev


def leave(group: Group) -> None:
    """Destroy the process group if :func:`join` made it; a caller's group stays."""
    if group.created:
        import torch

        torch.distributed.destroy_process_group()


def presplit(batches):
    """The ``DistributedSampler`` of a ``DataLoader`` that already gives each process its own batches, else None."""
    from torch.utils.data.distributed import DistributedSampler

    sampler = getattr(batches, "sampler", None)
    return sampler if isinstance(sampler, DistributedSampler) else None


def share(batches, rank: int, world: int):
    """One pass over ``batches``, keeping batch ``rank`` of every complete group of ``world`` consecutive ones."""
    mine = None
    for i, b in enumerate(batches):
        if i % world == rank:
            mine = b
        if i % world == world - 1:
            yield mine
            mine = None


def _rng_state():
    import numpy as np
    import torch

    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_state(state) -> None:
    import numpy as np
    import torch

    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def drawn_alike(gen):
    """Run the batch generator ``gen`` on random state of its own (Python's, NumPy's and torch's CPU generators).

    Every process reads the same sequence of batches and keeps its share, so a shuffling ``DataLoader``
    must draw the same order everywhere. The global generators serve the model too (dropout), and
    differently on each process, so the batches get a state of their own: the global state at this
    call, which ``train`` makes the same on every process (seeded with ``config.seed``).
    """
    state = _rng_state()

    def draws(state):
        while True:
            outer = _rng_state()
            _set_rng_state(state)
            try:
                batch = next(gen)
            finally:
                state = _rng_state()
                _set_rng_state(outer)
            yield batch

    return draws(state)


def wrap(model, loss_fn: Callable, dev):
    """``DistributedDataParallel`` around a module whose forward is ``loss_fn(model, batch)``.

    DDP synchronises the gradients of what runs inside its own forward; wrapping the loss, not the model,
    lets a ``loss_fn`` call any method or attribute of the model (``model.context``, ``model.config``).
    The model's parameters are shared, not copied: ``model`` itself is trained.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, batch):
            return loss_fn(self.model, batch)

    return DistributedDataParallel(WithLoss(), device_ids=[dev.index] if dev.type == "cuda" else None)


def forward(net, batch):
    """``net(batch)``, with DDP's error about parameters that got no gradient explained."""
    try:
        return net(batch)
    except RuntimeError as e:
        if "Expected to have finished reduction" not in str(e):
            raise
        raise CourseError("Some parameters of the model got no gradient in the last step, which training on several "
                          "processes does not allow: make every parameter take part in the loss, or freeze the unused "
                          "ones (p.requires_grad_(False)) before calling train().") from None


def from_main(obj):
    """Process 0's ``obj`` (any picklable object), on every process."""
    import torch

    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def add_up(values, dev) -> list:
    """The sums of ``values`` (floats) over all processes, in float64."""
    import torch

    sums = torch.tensor(values, dtype=torch.float64, device=dev)
    torch.distributed.all_reduce(sums)
    return sums.tolist()


def global_loss(out, dev, world: int):
    """``loss_fn`` output on this process -> (loss to backpropagate, mean loss of the global batch).

    The summed losses and counts of all processes are added up, and each process backpropagates its
    summed loss times ``world / global count``. DDP averages the gradients over the ``world`` processes,
    so the step follows the gradient of the mean over the whole global batch, as one process would on the
    batches joined together (a plain mean loss counts 1 per process: the mean of the processes' means).
    """
    import torch

    total, count = out if isinstance(out, tuple) else (out, 1.0)
    stats = torch.stack([total.detach().to(torch.float64).reshape(()),
                         torch.as_tensor(count, device=dev).to(torch.float64).reshape(())])
    torch.distributed.all_reduce(stats)
    g_total, g_count = stats.tolist()
    if g_count <= 0:
        raise CourseError("loss_fn returned a count of 0; a batch must contain at least one item.")
    return total * (world / g_count), g_total / g_count
