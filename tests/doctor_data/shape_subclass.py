"""Shape: a DataLoader subclass that brings its own collate_fn, as torch_geometric's
DataLoader does (seed 2-6's data and collate)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from doctor_data._seed import ExampleDataset, collate_fn


class PairLoader(DataLoader):  # type: ignore[type-arg]
    def __init__(self, dataset: Any, batch_size: int = 1, **kwargs: Any) -> None:
        kwargs.pop("collate_fn", None)  # its own, whatever the caller passes
        super().__init__(dataset, batch_size=batch_size, collate_fn=collate_fn, **kwargs)


data = [torch.tensor([i]) for i in range(100)]
dataset = ExampleDataset(data)
dataloader = PairLoader(dataset, batch_size=10, num_workers=2)
