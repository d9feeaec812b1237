"""Clean: a map-style dataset of float32 tensors, and a DataLoader over it."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class TensorPairs(Dataset):
    def __init__(self, n: int = 256):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 8, 8, generator=g)
        self.y = torch.arange(n) % 10

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


dataset = TensorPairs()


def make_loader() -> DataLoader:
    return DataLoader(TensorPairs(), batch_size=16, shuffle=True, num_workers=2)
