"""Typed records of a profile run: settings, raw traces, per-setting results, the recommendation.

Plain dataclasses only (no torch): the parent builds them from what the child processes send.
Raw per-batch arrival times are kept; every statistic is derived from them in
:mod:`dlcheck.profile.stats`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dlcheck.records import Status

SCHEMA = "dlcheck.profile/1"


@dataclass(frozen=True)
class Setting:
    """One DataLoader configuration to measure (the DataLoader's own argument names)."""

    num_workers: int
    batch_size: int | None  # None: the loader's own batching (batch_sampler or batch_size=None)
    pin_memory: bool = False
    prefetch_factor: int | None = None  # None with 0 workers (DataLoader forbids it)
    persistent_workers: bool = False
    start_method: str | None = None  # None: the platform default (fork on Linux)

    @property
    def depth(self) -> int:
        """Batches in flight: the pipeline buffer a warm-up fills and a window must drain."""
        if self.num_workers == 0:
            return 0
        return self.num_workers * (self.prefetch_factor or 2)

    def key(self) -> tuple[Any, ...]:
        return (
            self.num_workers,
            self.batch_size,
            self.pin_memory,
            self.prefetch_factor,
            self.persistent_workers,
            self.start_method,
        )

    def label(self) -> str:
        parts = [f"workers={self.num_workers}", f"batch={self.batch_size or 'own'}"]
        if self.pin_memory:
            parts.append("pin")
        if self.num_workers and self.prefetch_factor not in (None, 2):
            parts.append(f"prefetch={self.prefetch_factor}")
        if self.num_workers and self.persistent_workers:
            parts.append("persistent")
        if self.start_method:
            parts.append(self.start_method)
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Setting:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})

    def normalised(self) -> Setting:
        """The form DataLoader accepts: no prefetch/persistence without workers."""
        if self.num_workers == 0:
            return replace(self, prefetch_factor=None, persistent_workers=False, start_method=None)
        return replace(self, prefetch_factor=self.prefetch_factor or 2)


@dataclass(frozen=True)
class EpochTrace:
    """One pass over the loader: batch arrival times (s since the run began) and sizes."""

    started_s: float  # when iter(loader) was called
    times_s: tuple[float, ...]
    samples: tuple[int, ...]
    complete: bool  # reached the end of the epoch (StopIteration)
    # when StopIteration came (non-persistent workers are shut down before it); None: not known
    ended_s: float | None = None
    capped: bool = False  # a bounded "epoch" of a larger dataset (see stats.training_rate)


@dataclass(frozen=True)
class GpuFigures:
    """Host-to-device copy of every batch, timed with CUDA events (or why it was not)."""

    available: bool
    reason: str = ""  # e.g. "no CUDA" when not available
    device: str | None = None
    h2d_ms_p50: float | None = None
    h2d_gb_per_s: float | None = None
    peak_gb_per_s: float | None = None  # raw pinned-copy reference on this link
    pct_of_peak: float | None = None
    bytes_per_batch: int | None = None
    end_to_end_samples_per_s: float | None = None  # steady state with the copy in the loop


@dataclass(frozen=True)
class CostFigures:
    """Where a setting's time goes: the evidence a bottleneck is named from."""

    worker_cpu_ms_per_sample: float | None  # CPU time of all workers per sample delivered
    main_cpu_ms_per_batch: float | None  # the main process's CPU time per batch received
    main_busy: float | None  # share of one core the main process used while measuring
    batch_bytes: int | None  # bytes of tensors per batch (through shared memory with workers)
    # cores other processes kept busy meanwhile (on the CPUs the loader may use): what the
    # loader could not have
    others_busy: float | None = None

    def workers_busy_cores(self, samples_per_s: float | None) -> float | None:
        """Cores the workers keep busy at this rate."""
        if self.worker_cpu_ms_per_sample is None or not samples_per_s:
            return None
        return self.worker_cpu_ms_per_sample / 1000 * samples_per_s


@dataclass(frozen=True)
class Steady:
    """Steady-state statistics derived from the raw traces."""

    samples_per_s: float | None
    batches_per_s: float | None
    spread: tuple[float, float] | None  # min/max of the window rates (samples/s)
    rel_noise: float | None  # relative standard error of samples_per_s
    windows: int
    steady_batches: int
    steady_s: float
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50/p95/p99 inter-arrival
    stalls: int = 0
    spans_depths: float | None = None  # steady batches / pipeline depth
    first_batch_s: float | None = None
    epoch_restart_s: float | None = None
    # "steady": windows after the pipeline drained; "epoch": whole short epochs, start-up included;
    # "epochs": samples over wall time across whole epochs, as training gets them (the ranking
    # figure); "epochs-extrapolated": per-epoch overhead measured on bounded epochs of a large
    # dataset, spread over its real epoch length
    basis: str = "steady"
    steady_samples_per_s: float | None = None  # the steady-state rate, beside the ranking figure
    epochs_timed: int = 0  # whole epochs behind the ranking figure
    epoch_overhead_s: float | None = None  # per epoch: start-up + drain + shutdown beyond steady
    real_epoch_samples: int | None = None  # samples in one real epoch (len(loader) batches)
    reliable: bool = True  # False: too little measured to recommend from (a note says why)


@dataclass
class SettingResult:
    """The measurement (or failure) of one setting in one child process."""

    setting: Setting
    ok: bool
    baseline: bool = False  # the user's own DataLoader settings
    rank: int | None = None  # distributed rank that measured it (None: not distributed)
    round: int = 0  # 0 first measurement; >0 a repeat spent on an uncertain decision
    error_kind: str | None = None  # sample, collate, worker_killed, stall, empty, crash, ...
    error: str | None = None  # one sentence
    hint: str | None = None
    detail: str | None = field(default=None, metadata={"json_skip": True})  # traceback (-v)
    stats: Steady | None = None
    peak_uss_bytes: int | None = None
    peak_pss_bytes: int | None = None
    peak_shm_bytes: int | None = None
    gpu: GpuFigures | None = None
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    epochs: list[EpochTrace] = field(default_factory=list)
    output: list[str] = field(default_factory=list)  # the user's prints/warnings, deduplicated
    real_epoch_samples: int | None = None  # samples in one real epoch (bounded epochs scale to it)
    cost: CostFigures | None = None
    # about 95 % of where this setting's figure lies: all its runs pooled, between-run noise
    # included (set by the judgement once the sweep has measured it)
    interval: tuple[float, float] | None = None
    # --step / --step-time: the training loop's raw epochs and figures (input-bound share)
    loop_epochs: list[Any] = field(default_factory=list, metadata={"json_skip": True})
    loop: Any = None  # dlcheck.profile.step.LoopFigures

    @property
    def samples_per_s(self) -> float | None:
        return self.stats.samples_per_s if self.stats else None


@dataclass(frozen=True)
class Recommendation:
    """The setting to use, per batch size, with a one-line reason."""

    num_workers: int
    batch_size: int | None
    pin_memory: bool
    prefetch_factor: int | None
    persistent_workers: bool
    samples_per_s: float | None
    reason: str
    dataloader: str  # copy-paste DataLoader(...) line
    best_samples_per_s: float | None = None
    meets_need: bool | None = None
    interval: tuple[float, float] | None = None  # the recommended setting's, as in the table
    best_interval: tuple[float, float] | None = None
    input_bound: float | None = None  # with --step: the loop's share of time waiting for data
    tier: str | None = None


@dataclass
class LoaderShape:
    """What the describe child learnt about TARGET (without fetching any sample)."""

    kind: str  # "map" or "iterable"
    is_loader: bool
    dataset_type: str
    length: int | None  # len(dataset) when defined
    batch_size: int | None
    own_batching: str | None  # "batch_sampler" / "none" (batch_size=None) / None
    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int | None = None
    persistent_workers: bool = False
    start_method: str | None = None
    sampler: str | None = None
    batch_sampler: str | None = None
    collate_fn: str | None = None
    drop_last: bool = False
    cuda: bool = False
    cuda_device: str | None = None
    torch_version: str | None = None
    # A DataLoader subclass TARGET (its qualified name): each setting is measured with a plain
    # DataLoader built from its settings, so what the subclass adds is not in the figures.
    loader_type: str | None = None

    def baseline(self) -> Setting | None:
        """The user's own DataLoader settings (only for DataLoader targets)."""
        if not self.is_loader:
            return None
        return Setting(
            num_workers=self.num_workers,
            batch_size=self.batch_size,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            persistent_workers=self.persistent_workers,
            start_method=self.start_method,
        ).normalised()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoaderShape:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class Check:
    """A CI verdict (min throughput, baseline regression, need, failed settings)."""

    id: str
    status: Status
    message: str


@dataclass
class ProfileReport:
    """Everything measured and decided; renders as the Rich table (also in Jupyter)."""

    target: str
    shape: LoaderShape | None
    machine: dict[str, Any]
    options: dict[str, Any]
    results: list[SettingResult] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    interrupted: bool = False
    budget_exhausted: bool = False
    wall_s: float = 0.0

    @property
    def recommended(self) -> Recommendation | None:
        # The fastest batch size's (the JSON's `recommended`).
        if not self.recommendations:
            return None
        return max(self.recommendations, key=lambda r: r.samples_per_s or 0.0)

    @property
    def failed(self) -> list[SettingResult]:
        return [r for r in self.results if not r.ok]

    @property
    def broken(self) -> list[SettingResult]:
        """Failed settings, less those the memory budget skipped or stopped (a limit, not a
        fault of the user's code)."""
        return [r for r in self.failed if r.error_kind != "over_budget"]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.broken or any(c.status is Status.FAIL for c in self.checks):
            return 1
        if self.options.get("strict") and any(c.status is Status.WARN for c in self.checks):
            return 1
        return 0

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        """The ``dlcheck.profile/1`` document; ``raw`` adds every batch's arrival time."""
        from dlcheck.profile.render import json_document

        return json_document(self, raw=raw)

    def render(self, console: Any, *, verbose: bool = False, wide: bool | None = None) -> None:
        """The tables on ``console``; ``wide`` (default: a console of 150+ columns) shows
        every column."""
        from dlcheck.profile.render import WIDE_FROM_COLUMNS, report_renderable

        if wide is None:
            wide = console.width >= WIDE_FROM_COLUMNS
        console.print(report_renderable(self, wide=wide))
        if verbose:
            from dlcheck.profile.render import print_failure_details

            print_failure_details(self, console)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from dlcheck.profile.render import WIDE_FROM_COLUMNS, report_renderable

        yield report_renderable(self, wide=options.max_width >= WIDE_FROM_COLUMNS)

    def _repr_html_(self) -> str:
        import io

        from dlcheck.output import console

        buf = io.StringIO()
        con = console(file=buf, width=120)
        con.record = True
        con.print(self)
        return con.export_html(inline_styles=True)
