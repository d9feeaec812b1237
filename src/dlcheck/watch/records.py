"""Typed records of a watched loop: one per epoch, one summary (optionally with every rank's).

Plain frozen dataclasses (no torch). The figures are derived in :mod:`dlcheck.watch.stats`;
the tier and the straggler ratio come from :mod:`dlcheck.inputbound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck.inputbound import Tier, describe

SCHEMA = "dlcheck.watch/1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")  # JSON Schema of the document


@dataclass(frozen=True)
class EpochFigures:
    """One pass over the loader (one ``iter()``)."""

    epoch: int
    steps: int  # batches yielded
    complete: bool  # the loader was exhausted (False: the loop broke out, or is still running)
    time_to_first_batch_s: float | None  # iter() to the first batch; None without a batch
    wait_s: float  # waiting in next(), after the first batch
    wall_s: float  # loop wall time from the first batch to the end of the epoch
    input_bound_share: float | None


@dataclass(frozen=True)
class WatchSummary:
    """What `dlcheck.watch` measured. Steady figures exclude each epoch's first batch."""

    name: str | None
    steps: int  # batches yielded, all epochs
    epochs: int
    steady_steps: int  # next() waits that count towards the share (all but each first batch)
    wait_p50_ms: float | None
    wait_p95_ms: float | None
    wait_p99_ms: float | None
    step_p50_ms: float | None  # your loop body: from next() returning to the next next() call
    time_to_first_batch_s: tuple[float, ...]  # per epoch that yielded a batch
    wait_s: float
    wall_s: float
    input_bound_share: float | None
    tier: Tier | None
    epoch_figures: tuple[EpochFigures, ...] = ()
    rank: int | None = None  # under torch.distributed
    world_size: int | None = None
    # Filled by summary(gather=True): every rank's own summary, the slowest and how much slower.
    ranks: tuple[WatchSummary, ...] = ()
    slowest_rank: int | None = None
    straggler_ratio: float | None = None

    @property
    def wait_per_step_s(self) -> float:
        return self.wait_s / self.steady_steps if self.steady_steps else 0.0

    @property
    def verdict(self) -> str:
        return describe(self.input_bound_share)

    def to_dict(self) -> dict[str, Any]:
        from dlcheck.watch.render import json_document

        return json_document(self)

    def __str__(self) -> str:  # print(summary): the table as plain text, 80 columns
        from dlcheck.watch.render import summary_text

        return summary_text(self)

    def __rich__(self) -> Any:
        from dlcheck.watch.render import summary_renderable

        return summary_renderable(self)

    def _repr_html_(self) -> str:
        from dlcheck.watch.render import summary_html

        return summary_html(self)
