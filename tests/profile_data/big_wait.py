"""Wait-bound samples of 1 MB each: many workers would hold many of them at once."""

from __future__ import annotations

import time

import torch
from torch.utils.data import Dataset


class BigWait(Dataset):
    def __len__(self) -> int:
        return 2048

    def __getitem__(self, idx: int) -> torch.Tensor:
        time.sleep(0.002)
        return torch.ones(256 * 1024)  # 1 MB of float32


def big_wait() -> BigWait:
    return BigWait()
