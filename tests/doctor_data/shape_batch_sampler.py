"""Shape: a custom BatchSampler (seed 2-3): DataLoader(dataset, batch_sampler=...), which
forbids batch_size, shuffle, sampler and drop_last."""

from __future__ import annotations

from torch.utils.data import DataLoader

from doctor_data._seed import CustomBatchSampler, CustomSampler, ExampleDataset

data = [i for i in range(100)]
dataset = ExampleDataset(data)
custom_sampler = CustomSampler(dataset)
batch_sampler = CustomBatchSampler(custom_sampler, batch_size=10)
dataloader = DataLoader(dataset, batch_sampler=batch_sampler)
