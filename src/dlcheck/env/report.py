"""EnvReport: the checks, the facts they came from, and the ``dlcheck.env/1`` document."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcheck.env.checks import Check
from dlcheck.env.facts import EnvFacts
from dlcheck.records import Status, exit_code_for, summary_line

SCHEMA = "dlcheck.env/1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")  # JSON Schema of the document

Comparable = dict[str, "str | int | float | None"]


def comparable_from_facts(facts: EnvFacts) -> Comparable:
    """Flat facts that should be identical on every rank and node of a job."""
    p, t, n, h = facts.python, facts.torch, facts.nvml, facts.host
    tok = t if t is not None and t.ok else None
    gpus = n.gpus if n is not None and n.available else ()
    from dlcheck.env.checks import cudnn_text

    return {
        "host": h.hostname if h else None,
        "python.version": p.version if p else None,
        "torch.version": tok.version if tok else None,
        "torch.cuda": tok.cuda if tok else None,
        "cudnn.version": cudnn_text(tok.cudnn) if tok else None,
        "nccl.version": tok.nccl if tok and tok.cuda else None,
        "nvidia.driver": n.driver_version if n else None,
        "gpu.models": ", ".join(g.name or "?" for g in gpus) if gpus else None,
        "gpu.count": len(gpus),
        "shm.total_bytes": h.shm.total_bytes if h else None,
        "shm.free_bytes": h.shm.free_bytes if h else None,
        "nofile.soft": h.nofile.soft if h else None,
        "nofile.hard": h.nofile.hard if h else None,
        "cpu.usable": h.cpu.usable if h else None,
        "memory.total_bytes": h.memory.total_bytes if h else None,
        "mp.start_method": h.start_method if h else None,
        "torch.sharing_strategy": tok.sharing_strategy if tok else None,
    }


@dataclass(frozen=True)
class EnvReport:
    """The result of ``dlcheck env``: records you can inspect, render or serialise."""

    checks: tuple[Check, ...]
    facts: dict[str, Any] = field(default_factory=dict)  # probe name -> JSON-able facts
    comparable: Comparable = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # dlcheck version, timing, created_at

    @property
    def statuses(self) -> list[Status]:
        return [c.status for c in self.checks]

    def exit_code(self, strict: bool = False) -> int:
        return exit_code_for(self.statuses, strict=strict)

    @property
    def summary(self) -> str:
        return summary_line(self.statuses)

    @property
    def ok(self) -> bool:
        return self.exit_code() == 0

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status in {Status.WARN, Status.FAIL, Status.ERROR}]

    def comparable_facts(self) -> Comparable:
        return dict(self.comparable)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for x in self.statuses if x is s) for s in Status}

    def to_dict(self, strict: bool = False) -> dict[str, Any]:
        from dlcheck.output import to_jsonable

        return {
            "schema": SCHEMA,
            **{k: to_jsonable(v) for k, v in self.meta.items()},
            "exit_code": self.exit_code(strict),
            "strict": strict,
            "summary": {"text": self.summary, **self.counts()},
            "checks": [c.to_dict() for c in self.checks],
            "comparable": dict(self.comparable),
            "facts": to_jsonable(self.facts),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EnvReport:
        """Rebuild a report from a ``dlcheck.env/1`` document (e.g. one merged from ranks)."""
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document: schema={doc.get('schema')!r}")
        meta_keys = {"dlcheck_version", "created_at", "duration_s", "torch_probe_s"}
        return cls(
            checks=tuple(Check.from_dict(c) for c in doc.get("checks", [])),
            facts=dict(doc.get("facts") or {}),
            comparable=dict(doc.get("comparable") or {}),
            meta={k: v for k, v in doc.items() if k in meta_keys},
        )

    def _repr_html_(self) -> str:  # notebooks
        from html import escape

        rows = "".join(
            f"<tr><td>{c.status.symbol} {c.status.value}</td><td><code>{escape(c.id)}</code></td>"
            f"<td>{escape(c.summary)}{'<br><i>fix: ' + escape(c.fix) + '</i>' if c.fix and c.status not in (Status.PASS, Status.SKIP) else ''}</td></tr>"  # noqa: E501
            for c in self.checks
        )
        from dlcheck.redact import scrub

        return scrub(
            f"<p><b>dlcheck env</b>: {escape(self.summary)}</p>"
            f"<table><tr><th>status</th><th>check</th><th>result</th></tr>{rows}</table>"
        )


def rank_input(entry: dict[str, Any]) -> dict[str, Any]:
    """One rank's entry of the distributed document as :mod:`dlcheck.dist.cluster` reads it."""
    out: dict[str, Any] = {
        "rank": entry["rank"],
        "local_rank": entry.get("local_rank"),
        "host": entry.get("host"),
    }
    if entry.get("error"):
        return {**out, "error": entry["error"]}
    return {**out, "facts": dict(entry.get("comparable") or {}), "checks": entry.get("checks", [])}


@dataclass(frozen=True)
class DistEnvReport:
    """``dlcheck env`` across ranks, as rank 0 sees it: every rank's report, merged.

    ``ranks`` holds one entry per rank, in rank order: that rank's ``dlcheck.env/1`` document
    with ``rank``, ``local_rank`` and ``host`` added, or ``{"rank", "local_rank", "host",
    "error": {"kind", "message", "hint", "exit_code"}}`` when its run failed. ``nodes``,
    ``cluster_checks`` and ``checks`` (the per-rank checks merged: worst status, plus
    ``"ranks": {status: [ranks]}``) come from :func:`dlcheck.dist.cluster.merge_env_reports`.
    """

    launcher: str
    world_size: int
    ranks: tuple[dict[str, Any], ...]
    nodes: tuple[dict[str, Any], ...]
    cluster_checks: tuple[dict[str, Any], ...]
    checks: tuple[dict[str, Any], ...]
    meta: dict[str, Any] = field(default_factory=dict)
    # The code every rank exits with (agreed across ranks); None until it is known.
    agreed_exit: int | None = None

    @classmethod
    def from_ranks(
        cls,
        entries: list[dict[str, Any]],
        *,
        launcher: str,
        world_size: int,
        meta: dict[str, Any] | None = None,
    ) -> DistEnvReport:
        from dlcheck.dist.cluster import merge_env_reports

        entries = sorted(entries, key=lambda e: int(e["rank"]))
        merged = merge_env_reports([rank_input(e) for e in entries], world_size)
        return cls(
            launcher=launcher,
            world_size=world_size,
            ranks=tuple(entries),
            nodes=tuple(merged["nodes"]),
            cluster_checks=tuple(merged["cluster_checks"]),
            checks=tuple(merged["checks"]),
            meta=dict(meta or {}),
        )

    @property
    def statuses(self) -> list[Status]:
        return [Status(c["status"]) for c in (*self.cluster_checks, *self.checks)]

    def exit_code(self, strict: bool = False) -> int:
        """The agreed code when known, else what the merged checks say."""
        own = exit_code_for(self.statuses, strict=strict)
        return max(own, self.agreed_exit) if self.agreed_exit is not None else own

    @property
    def summary(self) -> str:
        return summary_line(self.statuses)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for x in self.statuses if x is s) for s in Status}

    def failed_ranks(self) -> list[int]:
        return [int(e["rank"]) for e in self.ranks if e.get("error")]

    def node_labels(self) -> dict[str, str]:
        """host → ``node0``, ``node1``, … in order of each host's first rank."""
        return {str(n["host"]): f"node{i}" for i, n in enumerate(self.nodes)}

    def check_records(self, *, with_ranks: bool = False) -> list[Check]:
        """Cluster checks then merged per-rank checks, as :class:`Check` records for rendering.

        ``with_ranks`` adds the ``{status: [ranks]}`` map to each merged check's facts.
        """
        out = [Check.from_dict(c) for c in self.cluster_checks]
        for c in self.checks:
            check = Check.from_dict(c)
            if with_ranks and c.get("ranks"):
                check = Check.from_dict({**c, "facts": {"ranks": c["ranks"], **check.facts}})
            out.append(check)
        return out

    def to_dict(self, strict: bool = False) -> dict[str, Any]:
        from dlcheck.output import to_jsonable

        return {
            "schema": SCHEMA,
            **{k: to_jsonable(v) for k, v in self.meta.items()},
            "exit_code": self.exit_code(strict),
            "strict": strict,
            "launcher": self.launcher,
            "world_size": self.world_size,
            "summary": {"text": self.summary, **self.counts()},
            "nodes": to_jsonable(list(self.nodes)),
            "cluster_checks": to_jsonable(list(self.cluster_checks)),
            "checks": to_jsonable(list(self.checks)),
            "ranks": to_jsonable(list(self.ranks)),
        }
