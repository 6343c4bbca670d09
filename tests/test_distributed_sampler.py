"""``lucid.utils.data.distributed.DistributedSampler`` against PyTorch's (orders without
shuffling are identical; shuffled orders partition the dataset the same way)."""
from __future__ import annotations

import pytest
import torch.utils.data as tud

from lucid.utils.data import DistributedSampler


@pytest.mark.parametrize("n,replicas", [(10, 3), (9, 3), (2, 3), (1, 2), (0, 2), (7, 1), (13, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shares_match_torch(n, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n,replicas", [(12, 3), (10, 4)])
def test_shuffled_shares_partition_the_dataset(n, replicas):
    def shares(epoch):
        out = []
        for rank in range(replicas):
            s = DistributedSampler(range(n), replicas, rank, seed=5)
            s.set_epoch(epoch)
            out.append(list(s))
        return out
    first = shares(0)
    assert shares(0) == first                                  # same order on every rank
    assert shares(1) != first                                  # a new epoch, a new order
    flat = [i for share in first for i in share]
    assert sorted(set(flat)) == list(range(n))                 # every index is read
    assert len(flat) == replicas * -(-n // replicas)           # padded to divide evenly


def test_bad_rank_and_missing_group():
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
