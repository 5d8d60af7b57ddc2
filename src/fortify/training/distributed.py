"""Data-parallel training over several processes (torch DDP semantics, ``torchrun`` underneath).

``ft.train`` trains data-parallel by itself when it runs inside an initialised ``torch.distributed``
process group of two or more processes (``torchrun --nproc-per-node N``; ``fortify train --nproc N``
launches that; ``init_from_env()`` joins the group torchrun describes, gloo on CPU, NCCL on GPU).

What each of the ``W`` processes (ranks) does, and why it gives the single-process run:

- every rank holds the whole data set and draws the same shuffle from the seed; each global batch of
  ``batch_size`` samples is cut into ``W`` contiguous parts and rank ``r`` trains on part ``r`` (so
  ``batch_size`` stays the global batch: the run sees the batches one process would);
- after the backward pass the gradients are all-reduced, each rank's weighted by its part's size, so
  every rank steps with the gradient of the global batch's mean loss, the gradient one process takes
  (losses that are means over samples, as every fortify method's are; BatchNorm statistics are per
  part, as in plain DDP, and floating buffers are averaged after each step);
- the weights are broadcast from rank 0 at the start, so every rank starts, steps and ends with the
  same weights; the history's loss is the global batch's; the attacks inside adversarial training
  draw their random starts from a generator seeded per rank (each part gets its own draws);
- only rank 0 writes checkpoints (``is_main``); DP training (Opacus) and resuming are refused.

Wall time falls by up to ``W`` when the per-batch work (the attack's passes) dominates; every rank
still runs the per-epoch validation on all the validation data, so keep that small.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from fortify.model import Classifier
from fortify.training.source import BatchSource, TensorSource
from fortify.types import FortifyError

RANK_SEED_STRIDE = 1_000_003
"""Added to the seed of the attacks' generator once per rank, so ranks draw different random starts."""


def init_from_env(timeout_s: float = 600.0) -> bool:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``...): NCCL when CUDA is available (each rank on GPU ``LOCAL_RANK``), gloo otherwise.

    Returns ``True`` when this process is one of two or more ranks (after joining, or if already
    joined); ``False`` when the environment describes no group. A peer that stops answering fails the
    collective calls after ``timeout_s``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    if dist.is_initialized():
        return True
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    return True


class Replicas:
    """The ranks of the current process group, as the training loop uses them (module docstring)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    @classmethod
    def current(cls) -> Replicas | None:
        """The group this process trains in, or ``None`` outside an initialised group of 2+ ranks."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files."""
        return self.rank == 0

    def prepare(self, clf: Classifier, source: TensorSource | BatchSource, private: bool) -> Any:
        """Broadcast rank 0's weights and buffers to every rank, and return ``source`` sharded for this
        rank. DP training is refused (its accounting assumes one process)."""
        if private:
            raise FortifyError("DP training runs in one process: drop --nproc (or the process group)")
        for tensor in [*clf.module.parameters(), *clf.module.buffers()]:
            dist.broadcast(tensor.data, src=0)
        if isinstance(source, TensorSource):
            return ShardedTensorSource(source, self.rank, self.world)
        return ShardedBatchSource(source, self.rank, self.world)

    def seed_offset(self) -> int:
        """What this rank adds to the seed of the attacks' generator."""
        return self.rank * RANK_SEED_STRIDE

    def sync(self, clf: Classifier, loss: Tensor, n: int) -> tuple[float, int]:
        """After ``loss.backward()`` on this rank's ``n`` samples: replace every gradient by the global
        batch's (all-reduced, weighted by each rank's ``n``) and return the global batch's mean loss and
        size. Call it on every rank at every step (it is a collective)."""
        grads = [p.grad for p in clf.module.parameters() if p.grad is not None]
        device = loss.device
        flat = torch.cat(
            [
                *(g.detach().reshape(-1).to(torch.float64) * n for g in grads),
                torch.tensor([float(loss.detach()) * n, float(n)], dtype=torch.float64, device=device),
            ]
        )
        dist.all_reduce(flat)
        total = float(flat[-1])
        offset = 0
        for g in grads:
            size = g.numel()
            g.copy_((flat[offset : offset + size] / total).view_as(g).to(g.dtype))
            offset += size
        return float(flat[-2]) / total, int(round(total))

    def sync_buffers(self, clf: Classifier) -> None:
        """Average floating buffers (BatchNorm statistics) over ranks; others take rank 0's."""
        for buffer in clf.module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer.data)
                buffer.data /= self.world
            else:
                dist.broadcast(buffer.data, src=0)


def _part(x: Tensor, y: Tensor, rank: int, world: int) -> tuple[Tensor, Tensor]:
    """Rank ``rank``'s contiguous part of one global batch (parts differ by at most one sample)."""
    return x.tensor_split(world)[rank], y.tensor_split(world)[rank]


class ShardedTensorSource(TensorSource):
    """A ``TensorSource`` whose every batch is this rank's part of the global batch: the same data,
    steps, head and shuffle generator as the source it wraps (so a checkpoint sees the same run)."""

    def __init__(self, source: TensorSource, rank: int, world: int) -> None:
        self.__dict__.update(source.__dict__)
        self.rank, self.world = rank, world
        last = self.x.shape[0] % self.batch_size
        if self.batch_size < world or 0 < last < world:
            raise FortifyError(
                f"every batch must have at least one sample per process: batch_size {self.batch_size} "
                f"and {self.x.shape[0]} samples (last batch {last or self.batch_size}) over {world} processes"
            )

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in super().epoch():
            yield _part(x, y, self.rank, self.world)


class ShardedBatchSource(BatchSource):
    """A ``BatchSource`` whose every batch is this rank's part of the loader's batch (every rank must
    read the same batches in the same order: seed the loader's generator)."""

    def __init__(self, source: BatchSource, rank: int, world: int) -> None:
        self.__dict__.update(source.__dict__)
        self.rank, self.world = rank, world

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in super().epoch():
            if x.shape[0] < self.world:
                raise FortifyError(
                    f"a batch of {x.shape[0]} samples cannot be split over {self.world} processes"
                )
            yield _part(x, y, self.rank, self.world)
