"""Typed records of `dlcheck trace`: spans read from a file, per-step and per-rank figures.

Plain frozen dataclasses (no torch). Figures are derived in :mod:`dlcheck.trace.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck.inputbound import Tier
from dlcheck.records import Status

SCHEMA = "dlcheck.trace/1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")  # JSON Schema of the document


@dataclass(frozen=True)
class Span:
    name: str
    start_us: float
    dur_us: float
    tid: Any = None

    @property
    def end_us(self) -> float:
        return self.start_us + self.dur_us


@dataclass(frozen=True)
class TraceFile:
    """What the reader found in one exported trace (facts, no judgement)."""

    path: str
    rank: int | None  # from the trace's distributedInfo, when torch.distributed was initialised
    steps: tuple[Span, ...]  # ProfilerStep#N
    loader_spans: tuple[Span, ...]  # the DataLoader iterator's __next__
    h2d_spans: tuple[Span, ...]  # CPU-side CUDA runtime calls that issued a host-to-device copy
    has_cuda: bool  # the trace holds GPU activity at all


@dataclass(frozen=True)
class StepFigures:
    step: int  # N of ProfilerStep#N
    wall_ms: float
    loader_wait_ms: float  # inside DataLoader __next__
    h2d_wait_ms: float  # blocked issuing a host-to-device copy, outside __next__
    input_bound_share: float | None

    @property
    def wait_ms(self) -> float:
        return self.loader_wait_ms + self.h2d_wait_ms


@dataclass(frozen=True)
class RankFigures:
    path: str
    rank: int
    steps: tuple[StepFigures, ...]
    steps_without_loader: int  # steps with no DataLoader __next__ inside
    loader_kind: str  # e.g. _MultiProcessingDataLoaderIter
    has_cuda: bool
    wall_s: float
    loader_wait_s: float
    h2d_wait_s: float
    input_bound_share: float | None
    tier: Tier | None

    @property
    def wait_s(self) -> float:
        return self.loader_wait_s + self.h2d_wait_s

    @property
    def wait_per_step_s(self) -> float:
        return self.wait_s / len(self.steps) if self.steps else 0.0


@dataclass(frozen=True)
class Finding:
    """One verdict about the traces: what was seen and what to do."""

    id: str
    status: Status
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class TraceReport:
    ranks: tuple[RankFigures, ...]
    findings: tuple[Finding, ...]
    slowest_rank: int | None
    straggler_ratio: float | None
    max_input_bound: float | None
    strict: bool
    exit_code: int

    @property
    def worst(self) -> RankFigures:
        """The rank with the highest input-bound share (the one a threshold is judged on)."""
        return max(self.ranks, key=lambda r: (r.input_bound_share or 0.0, -r.rank))

    def to_dict(self) -> dict[str, Any]:
        from dlcheck.trace.render import json_document

        return json_document(self)

    def render(self, console: Any, *, verbose: bool = False) -> None:
        console.print(self)

    def __rich__(self) -> Any:
        from dlcheck.trace.render import report_renderable

        return report_renderable(self)
