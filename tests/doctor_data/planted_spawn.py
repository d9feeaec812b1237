"""Planted (spawn_safety): a lambda held by the dataset; a loader that starts workers by spawn."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class WithLambda(Dataset):
    def __init__(self) -> None:
        self.f = lambda x: x * 2
        self.data = torch.arange(16, dtype=torch.float32)

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.f(self.data[i : i + 1])


dataset = WithLambda()


def spawn_loader() -> DataLoader:
    return DataLoader(WithLambda(), batch_size=4, num_workers=2, multiprocessing_context="spawn")
