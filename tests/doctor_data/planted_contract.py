"""Planted (sample_contract): __len__ too long, ragged shapes, changing keys, float64."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class LenTooLong(Dataset):
    def __init__(self) -> None:
        self.items = [torch.tensor([float(i)]) for i in range(90)]

    def __len__(self) -> int:
        return 100  # 10 more than __getitem__ can serve

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.items[i]


class Ragged(Dataset):
    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict:
        return {"tokens": torch.ones(5 + i % 7, dtype=torch.long), "label": i % 2}


class ChangingKeys(Dataset):
    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict:
        sample = {"x": torch.zeros(3), "label": 1}
        if i % 2:
            sample["weight"] = torch.ones(1)
        return sample


class Float64(Dataset):
    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int):
        return np.full(3, i, dtype=np.float64), 0


class Empty(Dataset):
    def __len__(self) -> int:
        return 0

    def __getitem__(self, i: int):
        raise IndexError(i)


len_too_long = LenTooLong()
ragged = Ragged()
changing_keys = ChangingKeys()
float64 = Float64()
empty = Empty()
