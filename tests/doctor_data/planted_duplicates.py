"""Planted (duplicates): IterableDatasets that every worker, or every rank, reads in full."""

from __future__ import annotations

import math

import torch
from torch.utils.data import IterableDataset


class Unsharded(IterableDataset):
    """Ignores get_worker_info(): each worker yields the whole stream."""

    def __init__(self, n: int = 120):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield torch.tensor([i, i * i])


class MultiProcessIterableDataset(IterableDataset):
    """The seed's dataset: sharded by worker only, so every rank reads the same samples."""

    def __init__(self, data):
        self.data = data

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:
            iter_start, iter_end = 0, len(self.data)
        else:
            per_worker = math.ceil(len(self.data) / float(worker_info.num_workers))
            iter_start = worker_info.id * per_worker
            iter_end = min(iter_start + per_worker, len(self.data))
        return iter(self.data[iter_start:iter_end])


class RankAndWorkerSharded(IterableDataset):
    """Correct: shards by rank and by worker."""

    def __init__(self, n: int = 100):
        self.n = n

    def __iter__(self):
        import torch.distributed as dist

        rank, world = 0, 1
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        for i in range(self.n):
            if i % (world * nw) == rank * nw + wid:
                yield i


class Gappy(IterableDataset):
    """Sharded, but the last worker's shard is cut short: samples go missing."""

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        if info is None:
            yield from range(100)
            return
        per = 100 // info.num_workers
        end = (info.id + 1) * per - (5 if info.id == info.num_workers - 1 else 0)
        yield from range(info.id * per, end)


unsharded = Unsharded()
worker_only = MultiProcessIterableDataset(range(100))
rank_and_worker = RankAndWorkerSharded()
gappy = Gappy()


class RankGap(RankAndWorkerSharded):
    """Shards by rank and worker, but the last rank stops 10 samples early."""

    def __iter__(self):
        import torch.distributed as dist

        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        last = world > 1 and dist.get_rank() == world - 1
        for i in super().__iter__():
            if not (last and i >= self.n - 20):
                yield i


rank_gap = RankGap()
