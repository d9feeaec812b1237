"""Shape: a custom Sampler (seed 2-3)."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import CustomSampler, ExampleDataset

data = [i for i in range(100)]
dataset = ExampleDataset(data)
custom_sampler = CustomSampler(dataset)
dataloader = DataLoader(dataset, sampler=custom_sampler, batch_size=10)
