"""Gather every rank's watch summary (a collective: every rank must call it)."""

from __future__ import annotations

import sys
from typing import Any


def dist_rank() -> tuple[int, int] | None:
    """(rank, world_size) when torch.distributed is already imported and initialised."""
    dist: Any = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist.get_rank(), dist.get_world_size()


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``all_gather_object``)."""
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
