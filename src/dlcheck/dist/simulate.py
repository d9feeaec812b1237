"""Make user code in this process believe it is rank ``rank`` of ``world_size`` (no peers).

For ``dlcheck doctor --world-size N``: inside a child process that plays rank r, a dataset that
shards with ``torch.distributed.get_rank()`` / ``get_world_size()`` (or reads ``RANK`` /
``WORLD_SIZE`` like WebDataset does) sees the simulated values. Uses torch's communication-free
"fake" process group, so any collective the user code makes returns garbage instead of hanging;
DataLoader workers started by fork inherit it, spawned ones see the environment variables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from dlcheck.errors import UsageError

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@contextlib.contextmanager
def simulated_rank(rank: int, world_size: int) -> Iterator[bool]:
    """Yield True when ``torch.distributed`` reports the simulated rank, False when only the
    environment variables could be set (no torch.distributed or a group already exists)."""
    if not 0 <= rank < world_size:
        raise UsageError(f"Rank {rank} is not in 0..{world_size - 1}.", "Check --world-size.")
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
    )  # fmt: skip
    initialised = False
    try:
        with contextlib.suppress(Exception):
            import torch.distributed as dist

            if dist.is_available() and not dist.is_initialized():
                # Registers the "fake" backend; the module is torch's own testing helper.
                from torch.testing._internal.distributed.fake_pg import FakeStore

                dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world_size)
                initialised = True
        yield initialised
    finally:
        if initialised:
            import torch.distributed as dist

            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
