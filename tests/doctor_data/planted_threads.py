"""Planted (threads): numpy BLAS work in __getitem__, with BLAS using every core per worker."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class MatmulTransform(Dataset):
    def __init__(self) -> None:
        self.m = np.random.default_rng(0).standard_normal((256, 256))

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        out = self.m
        for _ in range(3):
            out = out @ self.m
            out /= np.abs(out).max()
        return torch.from_numpy(out[:4, :4].astype(np.float32))


dataset = MatmulTransform()
