"""Planted: resources (more workers than CPUs), determinism (unseeded RNG), sampler_epoch
(DistributedSampler never re-seeded), cuda_in_worker (CUDA initialised before fork, faked)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from doctor_data.clean_tensor import TensorPairs


def too_many_workers() -> DataLoader:
    return DataLoader(TensorPairs(64), batch_size=8, num_workers=64)


class Unseeded(Dataset):
    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.random.default_rng().standard_normal(3).astype(np.float32))


unseeded = Unseeded()


def distributed_loader() -> DataLoader:
    ds = TensorPairs(50)
    sampler = DistributedSampler(ds, num_replicas=4, rank=0, shuffle=True)
    return DataLoader(ds, batch_size=4, sampler=sampler)


def distributed_from_env() -> DataLoader:
    """Reads rank and world size from torch.distributed, like real DDP code."""
    ds = TensorPairs(50)
    return DataLoader(ds, batch_size=4, sampler=DistributedSampler(ds, shuffle=True))


def plain_random_loader() -> DataLoader:
    """Every rank would read every sample: no DistributedSampler."""
    return DataLoader(TensorPairs(40), batch_size=4, shuffle=True)


def cuda_initialised() -> DataLoader:
    # No GPU here: fake the fact the probe reads, as a training script that touched CUDA would.
    torch.cuda.is_initialized = lambda: True  # type: ignore[assignment]
    return DataLoader(TensorPairs(32), batch_size=4, num_workers=2)


class CudaLike(torch.Tensor):
    """Stands in for a CUDA tensor whose pickling would fail in a fork (no GPU here)."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise RuntimeError("CUDA error: initialization error")


class CudaLikeHolder:
    def __init__(self) -> None:
        self.table = torch.zeros(3).as_subclass(CudaLike)
