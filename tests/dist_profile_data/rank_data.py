"""TARGETs for tests/test_dist_profile.py (imported by the measuring children, not collected)."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset, get_worker_info


class Small(Dataset):
    """Tiny map-style samples: a setting measures in about a second."""

    def __init__(self, n: int = 4000) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        return torch.full((8,), float(idx)), idx % 10


class FailsOnRank1(Small):
    """Every sample raises on rank 1 only (the children inherit the launcher's RANK)."""

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        if os.environ.get("RANK") == "1":
            raise ValueError(f"cannot read sample {idx}: shard file missing on this node")
        return super().__getitem__(idx)


small = Small()
fails_on_rank1 = FailsOnRank1()


def broken_on_rank1() -> Small:
    """A factory that raises on rank 1 only: TARGET cannot be loaded there."""
    if os.environ.get("RANK") == "1":
        raise FileNotFoundError("/data/shard-1.tar: no such file on this node")
    return Small()


class KillsRank1(Small):
    """On rank 1, a DataLoader worker (the num_workers=1 setting) SIGKILLs its rank process.

    Worker → measuring child → (template →) rank process, the first ancestor that is not a
    ``dlcheck._child``: the setting with 0 workers measures normally.
    """

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        if os.environ.get("RANK") == "1" and get_worker_info() is not None:
            import signal

            import psutil

            rank = psutil.Process().parent()
            while "dlcheck._child" in " ".join(rank.cmdline()) or rank.pid == os.getppid():
                rank = rank.parent()
            os.kill(rank.pid, signal.SIGKILL)
            os._exit(1)
        return super().__getitem__(idx)


kills_rank1 = KillsRank1()
