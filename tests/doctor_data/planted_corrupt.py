"""Planted (corrupt_samples): indices that raise, hold NaN/Inf, or return None."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

BAD_RAISE = {7, 300, 301}
BAD_NAN = {13}
BAD_NONE = {64}


class Corrupt(Dataset):
    def __len__(self) -> int:
        return 400

    def __getitem__(self, i: int):
        if i in BAD_RAISE:
            raise ValueError(f"cannot decode record {i}")
        if i in BAD_NONE:
            return {"x": torch.zeros(2), "y": None}
        x = torch.full((2,), float(i))
        if i in BAD_NAN:
            x[0] = float("nan")
        return {"x": x, "y": i % 2}


dataset = Corrupt()
