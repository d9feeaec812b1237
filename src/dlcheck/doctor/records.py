"""Typed records of `dlcheck doctor`: the probe registry, findings and the report.

Imported by the CLI at --help time, so stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlcheck.doctor.spec import ProbeSpec
from dlcheck.records import Status

SCHEMA = "dlcheck.doctor/1"


def _module_probes() -> tuple[ProbeSpec, ...]:
    from dlcheck.doctor.probes import probe_modules

    return tuple(m.SPEC for m in probe_modules())


# Every probe is one module under doctor/probes/ (its ``SPEC``), listed in ``list_order``.
PROBES: tuple[ProbeSpec, ...] = tuple(sorted(_module_probes(), key=lambda p: p.list_order))
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
    # A DataLoader subclass TARGET (its qualified name): probes rebuild plain DataLoaders from
    # its dataset and settings, so what the subclass adds is not probed.
    loader_class: str | None = None


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
