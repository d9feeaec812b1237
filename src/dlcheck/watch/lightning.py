"""`dlcheck.watch` for PyTorch Lightning: a Callback that times the gaps between batches.

Lightning iterates the DataLoader itself, so the callback measures from the end of one training
batch (or the start of the epoch) to the start of the next: the wait for data as the loop sees
it (plus Lightning's own small bookkeeping between batches)::

    from dlcheck.watch.lightning import WatchCallback

    cb = WatchCallback(name="train", output="watch.json")
    trainer = lightning.Trainer(callbacks=[cb], ...)
    trainer.fit(model, train_loader)
    print(cb.summary())            # under DDP: cb.summary(gather=True) on every rank

Importing this module imports Lightning (``lightning`` or ``pytorch_lightning``), the
``lightning`` extra; without either it raises an ImportError that says how to install it.
"""

from __future__ import annotations

import os
import time
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    try:
        # Same class under its older import path; mypy sees two distinct types.
        from pytorch_lightning.callbacks import Callback  # type: ignore[assignment]
    except ImportError:
        # Lightning is optional (the `lightning` extra): name the fix, not the fallback's
        # "No module named 'pytorch_lightning'".
        raise ImportError(
            "dlcheck.watch.lightning needs PyTorch Lightning: pip install 'dlcheck[lightning]' "
            "(or pip install lightning); without Lightning use dlcheck.watch(loader)"
        ) from None

from dlcheck.watch.core import Watch
from dlcheck.watch.records import WatchSummary


class WatchCallback(Callback):
    """Times every training batch's wait; a verdict line at each epoch end, like ``watch``."""

    def __init__(
        self,
        name: str | None = None,
        output: str | os.PathLike[str] | None = None,
        *,
        verdict: bool = True,
    ):
        super().__init__()
        self.watch: Watch[Any] = Watch((), name, output, verdict=verdict)
        self._clock = time.perf_counter_ns
        self._asked = 0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._asked = self._clock()
        self.watch._begin_epoch(self._asked)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self.watch._batch(self._asked, self._clock())

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._asked = self._clock()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # The epoch's loop ends with its last batch: validation and checkpoints come after.
        self.watch._end_epoch(self._asked)

    def summary(self, gather: bool = False) -> WatchSummary:
        """As :meth:`dlcheck.watch.core.Watch.summary`; ``gather=True`` is a collective."""
        return self.watch.summary(gather=gather)
