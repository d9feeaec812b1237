"""Shape: automatic batching off, DataLoader(dataset, batch_size=None) (seed 2-4)."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import ExampleDataset

dataset = ExampleDataset([i for i in range(100)])
dataloader = DataLoader(dataset, batch_size=None)
