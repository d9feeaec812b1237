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

    def move(self, batch: Any, *, non_blocking: bool) -> Any:
        """``batch`` on the device as training moves it, returned once the copy has landed."""
        ...

    def synchronize(self) -> None:
        """Wait for the device's queued work (a step's kernels) to finish."""
        ...


def map_tensors(batch: Any, fn: Any) -> Any:
    """``batch`` with ``fn`` applied to every tensor (dicts, lists and tuples rebuilt)."""
    if hasattr(batch, "element_size") and hasattr(batch, "numel"):
        return fn(batch)
    if isinstance(batch, Mapping):
        return type(batch)({k: map_tensors(v, fn) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(map_tensors(v, fn) for v in batch)
    return batch


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

    def move(self, batch: Any, *, non_blocking: bool) -> Any:
        # Pinned: non_blocking as training does; then wait on the stream, so that a copy the
        # step would wait for anyway is counted where it belongs (as waiting for data).
        moved = map_tensors(batch, lambda t: t.to(self.device, non_blocking=non_blocking))
        self._torch.cuda.current_stream(self.device).synchronize()
        return moved

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self.device)

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

    def move(self, batch: Any, *, non_blocking: bool) -> Any:
        import time

        time.sleep(self._ms(nbytes(batch), non_blocking) / 1e3)  # the copy takes this long
        return batch

    def synchronize(self) -> None:
        pass


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
