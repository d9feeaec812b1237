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
