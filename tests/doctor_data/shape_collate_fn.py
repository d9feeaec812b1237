"""Shape: a custom collate_fn with 4 workers (seed 2-6)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from doctor_data._seed import ExampleDataset, collate_fn

data = [torch.tensor([i]) for i in range(100)]
dataset = ExampleDataset(data)
dataloader = DataLoader(dataset, batch_size=10, num_workers=4, collate_fn=collate_fn)
