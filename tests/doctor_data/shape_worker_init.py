"""Shape: worker_init_fn and generator, PyTorch's reproducibility recipe (seed 2-6's workers)."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from doctor_data._seed import ExampleDataset


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


g = torch.Generator()
g.manual_seed(0)
dataset = ExampleDataset([torch.tensor([float(i)]) for i in range(100)])
dataloader = DataLoader(
    dataset, batch_size=10, shuffle=True, num_workers=2, worker_init_fn=seed_worker, generator=g
)
