"""The study note's (seed's) user code, as written there: every loader shape doctor must handle.

The ``shape_*`` modules build one DataLoader each from these classes. Only what the note left
implicit is added: the missing ``import math``, and a log source that already holds logs.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, IterableDataset, Sampler


class CustomDataset(Dataset):
    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]


class RealTimeLogsDataset(IterableDataset):
    def __init__(self, log_source):
        self.log_source = log_source

    def __iter__(self):
        while True:
            log = self.log_source.get_new_log()
            if log is None:
                time.sleep(1)
                continue
            yield log


class LogSource:
    def __init__(self):
        self.logs = []

    def add_log(self, log):
        self.logs.append(log)

    def get_new_log(self):
        if self.logs:
            return self.logs.pop(0)
        else:
            return None


class MultiProcessIterableDataset(IterableDataset):
    def __init__(self, data):
        self.data = data

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None:
            iter_start = 0
            iter_end = len(self.data)
        else:
            per_worker = int(math.ceil(len(self.data) / float(worker_info.num_workers)))  # noqa: RUF046 - as the note wrote it
            worker_id = worker_info.id
            iter_start = worker_id * per_worker
            iter_end = min(iter_start + per_worker, len(self.data))
        return iter(self.data[iter_start:iter_end])


class CustomSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(np.random.permutation(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class ExampleDataset(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]


class CustomBatchSampler(BatchSampler):
    def __init__(self, sampler, batch_size):
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if len(batch) > 0 and not self.drop_last:
            yield batch


def collate_fn(batch):
    return torch.stack(batch, dim=0)
