"""Test-only: a dlcheck bug, planted. Importing this TARGET (in doctor's child process) puts
back the bug issue 8 reported: rebuilding a loader that has a custom BatchSampler passed
batch_size too, which DataLoader refuses. The probe that rebuilds it must come out as
dlcheck's own error, not as a finding about the data."""

from __future__ import annotations

from typing import Any

from dlcheck.doctor import facts
from doctor_data.shape_batch_sampler import dataloader

_fixed = facts.loader_options


def _with_the_old_bug(loader: Any, num_workers: int, *, batching: bool = True) -> dict[str, Any]:
    opts = _fixed(loader, num_workers, batching=batching)
    if "batch_sampler" in opts:
        opts["batch_size"] = 10
    return opts


facts.loader_options = _with_the_old_bug

__all__ = ["dataloader"]
