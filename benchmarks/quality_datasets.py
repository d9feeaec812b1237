"""The six cost structures of the profile-quality benchmark (usable as dlcheck TARGETs).

- ``tiny``: a few bytes per sample; worker IPC costs more than the work.
- ``cpu``: ~1 ms of pure-Python CPU work per sample (holds the GIL; scales with cores).
- ``io``: ~4 ms of sleeping "I/O" per sample (scales with workers well past the cores).
- ``big``: ~600 KB float32 tensors (3x224x224) per sample, 20,000 of them; copying dominates.
- ``demo``: dlcheck's own demo, 4,096 JPEGs decoded per sample: short epochs, CPU-bound.
- ``slow``: like ``cpu`` (20,000 samples), but its factory takes 3 s (a slow index build).

``cpu``'s loop count comes from ``DLCHECK_BENCH_CPU_ITERS`` (calibrated once by the benchmark
so every process does the same work).
"""

from __future__ import annotations

import os
import time

import torch
from torch.utils.data import Dataset

CPU_ITERS_ENV = "DLCHECK_BENCH_CPU_ITERS"


def calibrate_cpu_iters(target_s: float = 0.001) -> int:
    """Loop iterations of :func:`burn` that take ``target_s`` here (median of a few tries)."""
    n = 20_000
    times = []
    for _ in range(7):
        t = time.perf_counter()
        burn(n)
        times.append(time.perf_counter() - t)
    per = sorted(times)[len(times) // 2] / n
    return max(1000, int(target_s / per))


def burn(n: int) -> int:
    x = 12345
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


class Tiny(Dataset):
    def __len__(self) -> int:
        return 5_000_000

    def __getitem__(self, idx: int) -> tuple[int, int]:
        return idx, idx % 10


class CpuBound(Dataset):
    def __init__(self, iters: int, length: int = 200_000):
        self.iters = iters
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([burn(self.iters) % 1000], dtype=torch.float32), idx % 10


class SleepIO(Dataset):
    def __len__(self) -> int:
        return 500_000

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        time.sleep(0.004)
        return torch.zeros(16), idx % 10


class BigTensors(Dataset):
    def __init__(self) -> None:
        self.base = torch.rand(3, 224, 224)  # 602 KB of float32

    def __len__(self) -> int:
        return 20_000

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        return self.base.clone(), idx % 10


def tiny() -> Dataset:
    return Tiny()


def cpu() -> Dataset:
    iters = int(os.environ.get(CPU_ITERS_ENV) or calibrate_cpu_iters())
    return CpuBound(iters)


def io() -> Dataset:
    return SleepIO()


def big() -> Dataset:
    return BigTensors()


def demo() -> Dataset:
    from dlcheck.profile.demo import demo_dataset

    return demo_dataset()


def slow() -> Dataset:
    time.sleep(3.0)  # what a slow factory (listing a bucket, building an index) costs
    iters = int(os.environ.get(CPU_ITERS_ENV) or calibrate_cpu_iters())
    return CpuBound(iters, 20_000)


FACTORIES = {"tiny": tiny, "cpu": cpu, "io": io, "big": big, "demo": demo, "slow": slow}
