"""Datasets for benchmarks/gpu_check.sh: only meaningful on a CUDA machine."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class CudaTableDataset(Dataset):
    """Holds a CUDA tensor built in __init__: forked workers cannot use it (a planted defect)."""

    def __init__(self) -> None:
        self.table = torch.arange(256, device="cuda")

    def __len__(self) -> int:
        return 256

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((3, 32, 32), float(i))


class CpuImages(Dataset):
    """A clean map-style dataset of 600 KB float tensors (H2D copies are measurable)."""

    def __len__(self) -> int:
        return 2048

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((3, 224, 224), float(i % 7))


def cuda_dataset() -> CudaTableDataset:
    return CudaTableDataset()


def cpu_images() -> CpuImages:
    return CpuImages()
