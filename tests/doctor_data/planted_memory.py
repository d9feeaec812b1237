"""Planted (memory_growth): a million Python strings held in a list (copy-on-read)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class ListOfStrings(Dataset):
    def __init__(self, n: int = 1_000_000) -> None:
        self.records = [f"/data/images/{i:08d}.jpg|label={i % 1000}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([len(self.records[i])])


def make_dataset() -> ListOfStrings:
    return ListOfStrings()
