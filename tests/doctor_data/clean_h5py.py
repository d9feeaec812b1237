"""Clean: an HDF5 file opened lazily, once per worker (the recommended pattern)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from doctor_data._paths import scratch


def h5_path() -> str:
    path = scratch("h5") / "data.h5"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with h5py.File(tmp, "w") as f:
            f["x"] = np.random.default_rng(0).standard_normal((128, 16)).astype(np.float32)
            f["y"] = np.arange(128, dtype=np.int64)
        tmp.rename(path)
    return str(path)


class LazyH5(Dataset):
    def __init__(self, path: str):
        self.path = path
        self.file = None
        with h5py.File(path, "r") as f:  # metadata only; closed before workers fork
            self.n = len(f["y"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if self.file is None:
            self.file = h5py.File(self.path, "r")
        return torch.from_numpy(self.file["x"][i]), int(self.file["y"][i])


def make_dataset() -> LazyH5:
    return LazyH5(h5_path())
