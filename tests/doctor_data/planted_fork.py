"""Planted (fork_safety): h5py file and LMDB environment opened in __init__."""

from __future__ import annotations

import lmdb
import numpy as np
import torch
from torch.utils.data import Dataset

from doctor_data._paths import scratch
from doctor_data.clean_h5py import LazyH5, h5_path


class EagerH5(LazyH5):
    def __init__(self, path: str):
        super().__init__(path)
        import h5py

        self.file = h5py.File(path, "r")  # inherited by every forked worker


def _lmdb_path() -> str:
    path = scratch("lmdb") / "db"
    if not path.exists():
        env = lmdb.open(str(path), map_size=1 << 24)
        with env.begin(write=True) as txn:
            for i in range(64):
                txn.put(f"{i}".encode(), np.full(4, i, dtype=np.float32).tobytes())
        env.close()
    return str(path)


class EagerLmdb(Dataset):
    def __init__(self) -> None:
        self.env = lmdb.open(_lmdb_path(), readonly=True, lock=False)

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        with self.env.begin() as txn:
            return torch.from_numpy(
                np.frombuffer(txn.get(f"{i}".encode()), dtype=np.float32).copy()
            )


class LazyLmdb(EagerLmdb):
    """Correct: opened on first use in each worker."""

    def __init__(self) -> None:
        self.path = _lmdb_path()
        self.env = None

    def __getitem__(self, i: int) -> torch.Tensor:
        if self.env is None:
            self.env = lmdb.open(self.path, readonly=True, lock=False)
        return super().__getitem__(i)


def eager_h5() -> EagerH5:
    return EagerH5(h5_path())


def eager_lmdb() -> EagerLmdb:
    return EagerLmdb()


def lazy_lmdb() -> LazyLmdb:
    return LazyLmdb()


class EagerSqliteAndFile(Dataset):
    """A sqlite3 connection and an open file, both created before the workers fork."""

    def __init__(self) -> None:
        import sqlite3

        self.db = sqlite3.connect(":memory:")
        self.index = open(__file__, "rb")  # noqa: SIM115 - the defect under test

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(1)


class WithThread(Dataset):
    """Starts a background thread in __init__ (a prefetcher): it does not exist in workers."""

    def __init__(self) -> None:
        import threading
        import time

        self.prefetcher = threading.Thread(target=time.sleep, args=(600,), daemon=True)
        self.prefetcher.start()

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(1)


def with_thread() -> WithThread:
    return WithThread()
