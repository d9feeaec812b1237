"""Loaders whose input-bound share is known by construction, and a loop timed by hand.

Samples that sleep ``sample_s`` each, batches of ``batch_size``, a loop body of ``step_s``:
with W workers a batch takes ``batch_size * sample_s / W`` to make, so the loop waits
``max(0, that - step_s)`` per step. 4 ms x 16 with a 20 ms step: 0.69 (1 worker), 0.38 (2), 0 (4).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

SAMPLE_S = 0.004
BATCH = 16
STEP_S = 0.020
#: workers -> input-bound share by construction
EXPECTED = {1: 1 - STEP_S / (BATCH * SAMPLE_S), 2: 1 - STEP_S / (BATCH * SAMPLE_S / 2), 4: 0.0}


class SleepyDataset(Dataset):
    def __init__(self, n: int, sample_s: float = SAMPLE_S):
        self.n, self.sample_s = n, sample_s

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        time.sleep(self.sample_s)
        return torch.full((4,), float(i))


def sleepy_loader(workers: int, batches: int, sample_s: float = SAMPLE_S) -> DataLoader:
    """Persistent workers: a second epoch starts them all at once, free of start-up skew."""
    return DataLoader(
        SleepyDataset(BATCH * batches, sample_s),
        batch_size=BATCH,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


@dataclass
class HandTimed:
    share: float  # waits after the first batch / (end of loop - first batch)
    wait_s: float
    wall_s: float
    batches: int
    waits_s: list[float]
    step_marks: list[float]  # perf_counter at each on_step call (after the loop body)


def hand_timed_loop(
    iterable: Iterable, step_s: float = STEP_S, on_step: Callable[[], None] | None = None
) -> HandTimed:
    """Iterate ``iterable`` with a sleeping loop body, timing every next() by hand."""
    it = iter(iterable)
    waits: list[float] = []
    marks: list[float] = []
    first_at = end = None
    while True:
        a = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            end = a
            break
        b = time.perf_counter()
        if first_at is None:
            first_at = b
        else:
            waits.append(b - a)
        time.sleep(step_s)
        if on_step is not None:
            on_step()
        marks.append(time.perf_counter())
    assert first_at is not None and end is not None
    wall = end - first_at
    return HandTimed(sum(waits) / wall, sum(waits), wall, len(waits) + 1, waits, marks)


def profiled_loop(
    loader: Iterable, path: str, *, skip: int = 2, active: int = 8, step_s: float = STEP_S
) -> dict[int, tuple[float, float]]:
    """Profile ``active`` steps after ``skip`` and export the Chrome trace to ``path``.

    Returns, per step number (N of ProfilerStep#N), (wait in next(), step wall) timed by hand.
    """
    from torch.profiler import ProfilerActivity, profile, schedule

    it = iter(loader)
    timed: dict[int, tuple[float, float]] = {}
    sched = schedule(wait=1, warmup=skip - 1, active=active, repeat=1)
    with profile(activities=[ProfilerActivity.CPU], schedule=sched) as prof:
        start = time.perf_counter()
        for k in range(skip + active):
            a = time.perf_counter()
            next(it)
            b = time.perf_counter()
            torch.nn.functional.relu(torch.ones(8))  # some ops, as a real step has
            time.sleep(step_s)
            timed[k] = (b - a, time.perf_counter() - start)
            prof.step()
            start = time.perf_counter()
    prof.export_chrome_trace(path)
    return timed
