"""Datasets that hang, kill their worker, crash the interpreter or fail to load."""

from __future__ import annotations

import os
import signal
import time

import torch
from torch.utils.data import Dataset, get_worker_info

print("user code says hello on stdout")  # must never reach the JSON document


class Hangs(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> torch.Tensor:
        time.sleep(3600)
        return torch.zeros(1)


class KillsWorker(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> torch.Tensor:
        if get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.full((2,), float(i))


def broken_factory() -> Dataset:
    raise RuntimeError("database password rejected")


hangs = Hangs()
kills_worker = KillsWorker()
not_a_dataset = 42
