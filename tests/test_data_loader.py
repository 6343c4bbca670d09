"""``lucid.utils.data`` against ``torch.utils.data``'s behaviour: lengths, batch
boundaries, drop_last, deterministic orders from seeded generators, collation of nested
structures into lucid tensors (dtypes as PyTorch's), samplers and their errors."""
import collections
import time

import numpy as np
import pytest

import lucid
from lucid.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                              SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                              WeightedRandomSampler, default_collate, random_split)

torch = pytest.importorskip("torch")
tud = torch.utils.data


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.full(3, i, np.float32), "y": i, "w": float(i) / 2, "name": f"s{i}",
                "pair": (i, [i * 2, np.int64(i)])}


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


class TorchStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


class TorchSquares(tud.Dataset):
    def __init__(self, n):
        self.inner = Squares(n)

    def __len__(self):
        return self.inner.n

    def __getitem__(self, i):
        return self.inner[i]


def flatten(batch):
    """A collated structure as nested Python values with each leaf's dtype name."""
    if isinstance(batch, lucid.Tensor):
        return ("tensor", str(batch.dtype).replace("lucid.", ""), batch.tolist())
    if isinstance(batch, torch.Tensor):
        return ("tensor", str(batch.dtype).replace("torch.", ""), batch.tolist())
    if isinstance(batch, dict):
        return {k: flatten(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch).__name__, [flatten(v) for v in batch]
    return batch


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False),
                                                    (0, 2, False), (7, 1, False), (11, 11, True)])
def test_batches_and_lengths_match_torch(n, batch_size, drop_last):
    ours = DataLoader(Squares(n), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchSquares(n), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    got, want = [flatten(b) for b in ours], [flatten(b) for b in theirs]
    assert len(got) == len(ours)
    assert got == want


def test_collate_of_nested_structures_and_dtypes():
    Point = collections.namedtuple("Point", "a b")
    samples = [(Point(np.float64(i), lucid.Tensor([i, i + 1.0])), {"k": [True, i], "s": b"x"}) for i in range(3)]
    batch = default_collate(samples)
    assert isinstance(batch, list) and isinstance(batch[0], Point)
    assert batch[0].a.dtype == lucid.float64 and batch[0].a.tolist() == [0.0, 1.0, 2.0]
    assert batch[0].b.shape == (3, 2) and batch[0].b.dtype == lucid.float32
    assert batch[1]["k"][0].dtype == lucid.bool and batch[1]["k"][1].dtype == lucid.int64
    assert batch[1]["s"] == [b"x"] * 3
    ints = default_collate([np.int32(1), np.int32(2)])
    assert ints.dtype == lucid.int32
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])


def test_tensor_dataset_batches_are_one_gather_and_right():
    x = lucid.Tensor(np.arange(40.0).reshape(20, 2))
    y = lucid.tensor(np.arange(20))
    ds = TensorDataset(x, y)
    g = lucid.Generator().manual_seed(3)
    batches = list(DataLoader(ds, batch_size=6, shuffle=True, generator=g))
    order = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(order.tolist()) == list(range(20)) and order.tolist() != list(range(20))
    for bx, by in batches:
        assert isinstance(bx, lucid.Tensor) and by.dtype == lucid.int64
        np.testing.assert_array_equal(bx.numpy(), x.numpy()[by.numpy()])
    # the same as collating sample by sample
    slow = [default_collate([ds[i] for i in idx]) for idx in BatchSampler(SequentialSampler(ds), 6, False)]
    fast = list(DataLoader(ds, batch_size=6))
    for (a, b), (c, d) in zip(slow, fast):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(b.numpy(), d.numpy())
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, lucid.zeros(3))
    big = TensorDataset(lucid.zeros(20000, 8), lucid.tensor(np.arange(20000)))
    start = time.perf_counter()
    assert sum(b[1].shape[0] for b in DataLoader(big, batch_size=500, shuffle=True)) == 20000
    assert time.perf_counter() - start < 1.0  # 40 batches: gathers, not 20000 sample lookups


def test_seeded_orders_are_reproducible():
    def order(seed, **kw):
        loader = DataLoader(Squares(13), batch_size=4, shuffle=True, generator=lucid.Generator().manual_seed(seed), **kw)
        return [b["y"].tolist() for b in loader]
    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(sum(order(1), [])) == list(range(13))
    assert order(5, num_workers=2) == order(5)  # threads keep the order
    lucid.manual_seed(4)
    a = list(RandomSampler(range(9)))
    lucid.manual_seed(4)
    assert list(RandomSampler(range(9))) == a
    loader = DataLoader(Squares(13), batch_size=4, shuffle=True, generator=lucid.Generator().manual_seed(1))
    assert [b["y"].tolist() for b in loader] != [b["y"].tolist() for b in loader]  # a new order per epoch


def test_samplers():
    g = lambda s: lucid.Generator().manual_seed(s)  # noqa: E731
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    rs = RandomSampler(range(5), num_samples=12, generator=g(0))
    drawn = list(rs)
    assert len(rs) == 12 and len(drawn) == 12
    assert sorted(drawn[:5]) == list(range(5)) and sorted(drawn[5:10]) == list(range(5))
    with_replacement = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g(1)))
    assert len(with_replacement) == 50 and set(with_replacement) == {0, 1, 2}
    assert sorted(SubsetRandomSampler([7, 3, 9], generator=g(2))) == [3, 7, 9]
    ws = list(WeightedRandomSampler([0.0, 1.0, 3.0], 400, generator=g(3)))
    assert 0 not in ws and 2.0 < ws.count(2) / ws.count(1) < 4.5
    assert sorted(WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False, generator=g(4))) == [0, 1, 2]
    assert len(BatchSampler(range(10), 4, drop_last=True)) == 2 and len(BatchSampler(range(10), 4, False)) == 3
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="1d"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(RuntimeError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


def test_subset_concat_random_split():
    ds = Squares(10)
    sub = Subset(ds, [4, 1, 7])
    assert len(sub) == 3 and sub[1]["y"] == 1
    cat = ds + Squares(3)
    assert isinstance(cat, ConcatDataset) and len(cat) == 13 and cat[11]["y"] == 1 and cat[-1]["y"] == 2
    with pytest.raises(IndexError):
        cat[13]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    parts = random_split(range(10), [3, 7], generator=lucid.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7] and sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    again = random_split(range(10), [3, 7], generator=lucid.Generator().manual_seed(0))
    assert list(again[0]) == list(parts[0])
    fractions = random_split(range(11), [0.5, 0.3, 0.2], generator=lucid.Generator().manual_seed(0))
    want = tud.random_split(range(11), [0.5, 0.3, 0.2])
    assert [len(p) for p in fractions] == [len(p) for p in want]
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(range(10), [3, 3])
    loader = DataLoader(sub, batch_size=2)
    assert [b["y"].tolist() for b in loader] == [[4, 1], [7]]


def test_iterable_dataset_and_no_auto_batching():
    got = [b.tolist() for b in DataLoader(Stream(7), batch_size=3)]
    want = [b.tolist() for b in tud.DataLoader(TorchStream(7), batch_size=3)]
    assert got == want and len(DataLoader(Stream(7), batch_size=3)) == 3
    assert len(DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    unbatched = list(DataLoader(Squares(2), batch_size=None))
    assert isinstance(unbatched[0]["x"], lucid.Tensor) and unbatched[1]["y"] == 1
    custom = list(DataLoader(Squares(4), batch_size=2, collate_fn=lambda b: [s["y"] for s in b]))
    assert custom == [[0, 1], [2, 3]]
    bs = list(DataLoader(Squares(5), batch_sampler=[[4, 0], [2]]))
    assert [b["y"].tolist() for b in bs] == [[4, 0], [2]]


def test_bad_options():
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(Squares(3), sampler=SequentialSampler(range(3)), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Squares(3), batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="drop_last"):
        DataLoader(Squares(3), batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(3), num_workers=-1)
