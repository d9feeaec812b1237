"""Shape: an IterableDataset in a single-process DataLoader (seed 2-2, no workers)."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import MultiProcessIterableDataset

dataset = MultiProcessIterableDataset(range(100))
dataloader = DataLoader(dataset, batch_size=10)
