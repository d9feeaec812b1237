"""Planted (shared_rng): a numpy Generator created in __init__ drives the augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class NoisyAugment(Dataset):
    def __init__(self) -> None:
        self.rng = np.random.default_rng(1234)
        self.base = torch.zeros(32, 4)

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> torch.Tensor:
        noise = self.rng.standard_normal(4).astype(np.float32)
        return self.base[i] + torch.from_numpy(noise)


class GlobalRngAugment(NoisyAugment):
    """Correct: draws from torch's global RNG, which the DataLoader seeds per worker."""

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.base[i] + torch.randn(4)


dataset = NoisyAugment()
clean = GlobalRngAugment()
