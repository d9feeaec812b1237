"""Shape: map-style dataset, DataLoader(batch_size=32, shuffle=True) (seed 2-1)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from doctor_data._seed import CustomDataset

data = torch.randn(100, 3, 224, 224)
labels = torch.randint(0, 10, (100,))
dataset = CustomDataset(data, labels)
dataloader = DataLoader(dataset, batch_size=32, shuffle=True)
