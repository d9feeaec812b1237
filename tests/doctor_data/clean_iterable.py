"""Clean: the seed's MultiProcessIterableDataset, sharded by worker with get_worker_info."""

from __future__ import annotations

import math

import torch
from torch.utils.data import IterableDataset


class MultiProcessIterableDataset(IterableDataset):
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


dataset = MultiProcessIterableDataset(range(100))
