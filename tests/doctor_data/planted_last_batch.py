"""Planted: 101 samples in batches of 10 leave a last batch of 1 (BatchNorm raises in training)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class Features(Dataset):
    def __init__(self, n: int = 101):
        self.x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


dataset = Features()
loader = DataLoader(dataset, batch_size=10)
fixed = DataLoader(dataset, batch_size=10, drop_last=True)
