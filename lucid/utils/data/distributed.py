"""``DistributedSampler``: each rank of a data-parallel job reads its own share of the
dataset's indices, as in PyTorch.

Every rank draws the same permutation (seeded with ``seed + epoch``: call
``set_epoch(epoch)`` at the start of each epoch for a new order), pads it by repeating
its start until it divides evenly (or drops the tail with ``drop_last=True``) and takes
every ``num_replicas``-th index from ``rank`` on.

>>> s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
>>> list(s), len(s)
([1, 4, 7, 0], 4)
>>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False, drop_last=True))
[1, 4, 7]
"""
from __future__ import annotations

import math

import numpy as np

from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices of one rank's share of ``dataset`` (``num_replicas`` and ``rank`` default
    to the process group's world size and rank)."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from ... import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "lucid.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n).tolist()
        else:
            order = list(range(n))
        if self.drop_last:
            order = order[:self.total_size]
        else:
            pad = self.total_size - len(order)
            if pad and order:
                order += (order * math.ceil(pad / len(order)))[:pad]
        return iter(order[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shuffled order ``__iter__`` gives (the same on every rank)."""
        self.epoch = int(epoch)
