"""Datasets whose behaviour depends on the real rank (read from ``RANK``, as a job's own code
might pick a per-rank file): for `dlcheck doctor` under torchrun / manual launches."""

from __future__ import annotations

import os
import signal
import time

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


class PerRankFiles(Dataset):
    """Rank 1's "file" is missing: every fetch on rank 1 raises, rank 0 is fine."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        rank = os.environ.get("RANK", "0")
        if rank == "1":
            raise FileNotFoundError(f"/data/shard-{rank}.bin")
        return torch.full((4,), float(i))


class KillsRankOne(PerRankFiles):
    """On rank 1, fetching a sample kills the dlcheck process that reads the shard's parent
    (the rank itself): a rank that dies in the middle of the run."""

    def __getitem__(self, i: int) -> torch.Tensor:
        if os.environ.get("RANK") == "1":
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(30)
        return torch.full((4,), float(i))


class HangsOnRankOne(PerRankFiles):
    def __getitem__(self, i: int) -> torch.Tensor:
        if os.environ.get("RANK") == "1":
            time.sleep(3600)
        return torch.full((4,), float(i))


def make_loader() -> DataLoader:
    """A correct DDP loader: DistributedSampler built from torch.distributed's rank."""
    ds = TensorRows()
    return DataLoader(ds, sampler=DistributedSampler(ds, shuffle=True, seed=0), batch_size=8)


class TensorRows(Dataset):
    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((4,), float(i))


fails_on_rank_1 = PerRankFiles()
kills_rank_1 = KillsRankOne()
hangs_on_rank_1 = HangsOnRankOne()
