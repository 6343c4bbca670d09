"""``DataLoader``, as ``torch.utils.data.DataLoader``: batches from a dataset, in the
order of a sampler, merged by ``collate_fn``.

``TensorDataset`` batches with the default collate take one gather per tensor (not one
index per sample). ``num_workers > 0`` loads the batches of a map-style dataset on that
many threads (in order, a few batches ahead); processes are not used.

>>> import lucid
>>> from lucid.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(lucid.arange(10.0).reshape(5, 2), lucid.arange(5))
>>> loader = DataLoader(ds, batch_size=2)
>>> len(loader), [y.tolist() for _, y in loader]
(3, [[0, 1], [2, 3], [4]])
>>> x, y = next(iter(DataLoader(ds, batch_size=4, shuffle=True, generator=lucid.Generator().manual_seed(0))))
>>> tuple(x.shape), sorted(y.tolist()) == y.tolist()
((4, 2), False)
"""
from __future__ import annotations

import collections

from .collate import default_collate, default_convert
from .dataset import IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoader:
    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("DataLoader: num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing. "
                             "let num_workers > 0 to enable multiprocessing")
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle not in (None, False) or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle, sampler and "
                             "batch_sampler options")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last, self.generator = dataset, batch_size, drop_last, generator
        self.sampler, self.batch_sampler, self.num_workers = sampler, batch_sampler, num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers else prefetch_factor
        self.pin_memory, self.timeout, self.worker_init_fn = pin_memory, timeout, worker_init_fn
        self.persistent_workers, self.in_order = persistent_workers, in_order
        self._auto_collation = batch_size is not None or batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self._auto_collation else self.sampler)

    def _fetch(self, indices):
        """One batch (or one sample, without auto-batching)."""
        if not self._auto_collation:
            return self.collate_fn(self.dataset[indices])
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
            return self.dataset.batch(indices)  # one gather per tensor
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(indices) if getitems else [self.dataset[i] for i in indices]
        return self.collate_fn(samples)

    def _iter_stream(self):
        it = iter(self.dataset)
        if self.batch_size is None:
            for sample in it:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in it:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def _iter_threads(self, keys):
        """``_fetch`` of each key on ``num_workers`` threads, yielded in order."""
        ahead = self.num_workers * self.prefetch_factor
        from concurrent.futures import ThreadPoolExecutor  # (not at import: it brings logging)
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="lucid-data") as pool:
            if self.worker_init_fn is not None:
                list(pool.map(self.worker_init_fn, range(self.num_workers)))
            pending = collections.deque()
            for key in keys:
                pending.append(pool.submit(self._fetch, key))
                if len(pending) > ahead:
                    yield pending.popleft().result(timeout=self.timeout or None)
            while pending:
                yield pending.popleft().result(timeout=self.timeout or None)

    def __iter__(self):
        if isinstance(self.dataset, IterableDataset):
            return self._iter_stream()
        keys = self.batch_sampler if self._auto_collation else self.sampler
        if self.num_workers:
            return self._iter_threads(iter(keys))
        return (self._fetch(key) for key in keys)
