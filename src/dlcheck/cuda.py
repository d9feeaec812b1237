"""CUDA behind a small interface (host-to-device copies timed with CUDA events), with a fake.

``get_cuda()`` returns ``None`` when torch has no usable CUDA device; nothing here raises for
a missing GPU or driver. Setting ``DLCHECK_FAKE_CUDA=<GB/s>`` (tests) returns :class:`FakeCuda`,
which "copies" at that bandwidth without a GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

FAKE_ENV = "DLCHECK_FAKE_CUDA"


class Cuda(Protocol):
    name: str

    def copy(self, batch: Any, *, non_blocking: bool) -> tuple[float, int]:
        """Copy every tensor of ``batch`` to the device; return (milliseconds, bytes)."""
        ...

    def reference_gb_per_s(self, nbytes: int, *, pinned: bool) -> float:
        """Raw copy bandwidth of one ``nbytes`` buffer (the link's practical peak)."""
        ...


def tensors(batch: Any) -> list[Any]:
    """Every tensor in a (nested) batch."""
    if hasattr(batch, "element_size") and hasattr(batch, "numel"):
        return [batch]
    if isinstance(batch, Mapping):
        return [t for v in batch.values() for t in tensors(v)]
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        return [t for v in batch for t in tensors(v)]
    return []


def nbytes(batch: Any) -> int:
    return sum(int(t.element_size() * t.numel()) for t in tensors(batch))


class TorchCuda:
    """The real device: copies with ``tensor.to(device, non_blocking=...)`` between events."""

    def __init__(self, index: int = 0):
        import torch

        self._torch = torch
        self.device = torch.device("cuda", index)
        self.name = torch.cuda.get_device_name(index)

    def copy(self, batch: Any, *, non_blocking: bool) -> tuple[float, int]:
        torch = self._torch
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        items = tensors(batch)
        start.record()
        moved = [t.to(self.device, non_blocking=non_blocking) for t in items]
        end.record()
        end.synchronize()
        del moved
        return float(start.elapsed_time(end)), sum(int(t.element_size() * t.numel()) for t in items)

    def reference_gb_per_s(self, nbytes: int, *, pinned: bool) -> float:
        torch = self._torch
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
        dev = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        dev.copy_(host, non_blocking=pinned)  # warm-up
        torch.cuda.synchronize(self.device)
        times = []
        for _ in range(10):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            dev.copy_(host, non_blocking=pinned)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        best_ms = min(times)
        return (nbytes / 1e9) / (best_ms / 1e3) if best_ms > 0 else 0.0


class FakeCuda:
    """A device that copies at a fixed bandwidth (pageable copies at half of it)."""

    def __init__(self, gb_per_s: float = 12.0, name: str = "Fake GPU"):
        self.gb_per_s = gb_per_s
        self.name = name

    def _ms(self, n: int, pinned: bool) -> float:
        bw = self.gb_per_s if pinned else self.gb_per_s / 2
        return (n / 1e9) / bw * 1e3

    def copy(self, batch: Any, *, non_blocking: bool) -> tuple[float, int]:
        n = nbytes(batch)
        return self._ms(n, non_blocking), n

    def reference_gb_per_s(self, nbytes: int, *, pinned: bool) -> float:
        return self.gb_per_s if pinned else self.gb_per_s / 2


def get_cuda() -> Cuda | None:
    """The first CUDA device, the fake when ``DLCHECK_FAKE_CUDA`` is set, or None."""
    fake = os.environ.get(FAKE_ENV)
    if fake:
        with contextlib.suppress(ValueError):
            return FakeCuda(float(fake))
        return FakeCuda()
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return TorchCuda(0)
    except Exception:  # a broken driver must not crash the profile
        return None
