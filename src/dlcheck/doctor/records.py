"""Typed records of `dlcheck doctor`: the probe registry, findings and the report.

Imported by the CLI at --help time, so stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlcheck.doctor.spec import ProbeSpec
from dlcheck.records import Status

SCHEMA = "dlcheck.doctor/1"


PROBES: tuple[ProbeSpec, ...] = (
    ProbeSpec(
        "duplicates",
        "Samples delivered once",
        "an IterableDataset that every worker (or rank) reads in full",
        "one pass with 0 and one with N workers (capped at 20,000 samples)",
        True,
        80,
    ),
    ProbeSpec(
        "shared_rng",
        "Random augmentations differ per worker",
        "an RNG created in __init__ that repeats its draws in every worker and epoch",
        "4 fetches of one index in 2 workers, 2 epochs",
        True,
        90,
    ),
    ProbeSpec(
        "spawn_safety",
        "Works under spawn/forkserver",
        "dataset, collate_fn or worker_init_fn that cannot be pickled (lambdas, handles)",
        "one pickle of the dataset (no sample fetched)",
        False,
        30,
    ),
    ProbeSpec(
        "fork_safety",
        "No handles shared across fork",
        "h5py files, LMDB envs, sqlite3, open files, sockets, threads, held locks",
        "an attribute walk (no sample fetched)",
        False,
        10,
    ),
    ProbeSpec(
        "corrupt_samples",
        "Samples load cleanly",
        "exceptions, NaN/Inf and None in samples",
        "64 spread indices (all with --scan, in parallel)",
        True,
        60,
    ),
    ProbeSpec(
        "sample_contract",
        "len, indexing and collation agree",
        "__len__ vs __getitem__, ragged shapes, changing keys/dtypes, float64",
        "32 spread indices and one collate call",
        True,
        50,
    ),
    ProbeSpec(
        "memory_growth",
        "No copy-on-read memory growth",
        "large Python containers whose pages every worker copies while reading",
        "an attribute walk; if suspicious, up to 3 s of fetches in a forked worker",
        True,
        100,
    ),
    ProbeSpec(
        "resources",
        "Batch fits /dev/shm, open files and CPUs",
        "batches × workers × prefetch over /dev/shm, fd limit, more workers than CPUs",
        "one real batch with 0 workers",
        True,
        70,
    ),
    ProbeSpec(
        "threads",
        "No thread oversubscription",
        "torch, BLAS/OpenMP and OpenCV threads × workers above the usable cores",
        "up to 8 samples in each of N workers",
        True,
        110,
    ),
    ProbeSpec(
        "determinism",
        "Same seed, same batches",
        "a seeded run that differs between processes, or depends on num_workers",
        "first 4 batches in 2 fresh processes and with 0 workers",
        True,
        120,
    ),
    ProbeSpec(
        "sampler_epoch",
        "DistributedSampler reshuffles each epoch",
        "set_epoch never called (same order every epoch); eval padding duplicates",
        "two sampler passes (no sample fetched)",
        False,
        40,
    ),
    ProbeSpec(
        "cuda_in_worker",
        "No CUDA before workers fork",
        "CUDA tensors held by the dataset, CUDA initialised before fork",
        "an attribute walk (no sample fetched)",
        False,
        20,
    ),
)


def _module_probes() -> tuple[ProbeSpec, ...]:
    from dlcheck.doctor.probes import probe_modules

    return tuple(m.SPEC for m in probe_modules())


# Built-in probes above; a probe that is one module under doctor/probes/ adds itself.
PROBES = PROBES + _module_probes()
PROBE_IDS: tuple[str, ...] = tuple(p.id for p in PROBES)
PROBES_BY_ID: dict[str, ProbeSpec] = {p.id: p for p in PROBES}
# Order the runner uses, derived from each spec's ``run_order`` (the one place it is set).
RUN_ORDER: tuple[str, ...] = tuple(p.id for p in sorted(PROBES, key=lambda p: p.run_order))


# ``Finding.error["kind"]`` of a probe that crashed inside dlcheck: a dlcheck bug, never a
# finding about the user's data.
INTERNAL = "internal"
# ... of a probe that never ran because the process running the probes stopped.
RUNNER_STOPPED = "runner_stopped"


@dataclass
class Finding:
    """What one probe found. ``evidence`` is structured; ``evidence_text`` is for people.

    ``error`` is None except for status ``error`` (the probe could not be completed):
    ``{"kind": "internal" | "runner_stopped", "exception", "where", "traceback"}``.
    """

    probe: str
    status: Status
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    evidence_text: list[str] = field(default_factory=list)
    fix: str | None = None
    duration_s: float | None = None
    error: dict[str, Any] | None = None

    @property
    def internal(self) -> bool:
        """A crash inside dlcheck (a bug of ours), not a finding about the data."""
        return self.status is Status.ERROR and (self.error or {}).get("kind") == INTERNAL


@dataclass
class TargetInfo:
    """What TARGET resolved to (collected in the child; the parent never imports it)."""

    raw: str
    kind: str  # "loader" | "dataset"
    dataset_class: str
    style: str  # "map" | "iterable"
    length: int | None
    num_workers: int | None = None  # the loader's own
    batch_size: int | None = None
    sampler: str | None = None
    collate_fn: str | None = None
    start_method: str | None = None
    torch_version: str | None = None


@dataclass
class DoctorReport:
    """The whole `dlcheck doctor` result; ``to_dict()`` is the dlcheck.doctor/1 document."""

    target: str
    target_info: TargetInfo | None
    findings: list[Finding]
    options: dict[str, Any]
    duration_s: float
    strict: bool = False
    schema: str = SCHEMA
    # Under torchrun / srun / a manual launch (None otherwise): who launched, how many ranks,
    # one entry per rank (rank, host, local_rank, status, shard size, error), and the exit
    # code the ranks agreed on (the worst).
    launcher: str | None = None
    world_size: int | None = None
    ranks: list[dict[str, Any]] | None = None
    agreed_exit: int | None = None

    @property
    def statuses(self) -> list[Status]:
        return [f.status for f in self.findings]

    @property
    def exit_code(self) -> int:
        from dlcheck.records import exit_code_for

        code = exit_code_for(self.statuses, strict=self.strict)
        if self.agreed_exit is not None:
            from dlcheck.exitcodes import worst_exit

            code = worst_exit([code, self.agreed_exit])
        return code

    def render(self, console: Any, *, verbose: bool = False) -> None:
        from dlcheck.doctor.render import render_report

        render_report(self, console, verbose=verbose)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for f in self.findings if f.status is s) for s in Status}

    def by_probe(self, probe: str) -> list[Finding]:
        return [f for f in self.findings if f.probe == probe]

    def to_dict(self) -> dict[str, Any]:
        from dlcheck import __version__
        from dlcheck.output import to_jsonable
        from dlcheck.records import summary_line

        doc = {
            "schema": self.schema,
            "dlcheck_version": __version__,
            "target": self.target,
            "target_info": to_jsonable(self.target_info),
            "options": to_jsonable(self.options),
            "findings": [to_jsonable(f) for f in self.findings],
            "counts": self.counts(),
            # Probes that crashed inside dlcheck (a dlcheck bug; also counted under "error").
            "internal_errors": sum(1 for f in self.findings if f.internal),
            "summary": summary_line(self.statuses),
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
        }
        if self.world_size is not None:
            doc.update(
                launcher=self.launcher,
                world_size=self.world_size,
                ranks=to_jsonable(self.ranks or []),
            )
        return doc
