"""Shape: an IterableDataset sharded by get_worker_info(), 4 workers (seed 2-2)."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import MultiProcessIterableDataset

data = range(100)
dataset = MultiProcessIterableDataset(data)
dataloader = DataLoader(dataset, batch_size=10, num_workers=4)
