"""Renderers for a TraceReport: the JSON document and Rich tables (80 columns).

Renderers decide nothing: findings, tiers and the slowest rank are already in the report. The
terminal shows a summary and the worst steps; every step is in the JSON document.
"""

from __future__ import annotations

from typing import Any

from dlcheck.inputbound import tier
from dlcheck.profile.stats import median
from dlcheck.trace.records import SCHEMA, RankFigures, TraceReport
from dlcheck.trace.stats import worst_steps

#: Steps shown in the terminal, per report (the JSON document has them all).
WORST_SHOWN = 5


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _tier(share: float | None) -> str | None:
    t = tier(share)
    return t.value if t else None


def rank_dict(r: RankFigures) -> dict[str, Any]:
    return {
        "rank": r.rank,
        "path": r.path,
        "loader": r.loader_kind,
        "has_cuda": r.has_cuda,
        "steps_count": len(r.steps),
        "steps_without_loader": r.steps_without_loader,
        "wall_s": r.wall_s,
        "loader_wait_s": r.loader_wait_s,
        "h2d_wait_s": r.h2d_wait_s,
        "wait_s": r.wait_s,
        "input_bound_share": r.input_bound_share,
        "tier": r.tier.value if r.tier else None,
        "steps": [
            {
                "step": s.step,
                "wall_ms": s.wall_ms,
                "loader_wait_ms": s.loader_wait_ms,
                "h2d_wait_ms": s.h2d_wait_ms,
                "input_bound_share": s.input_bound_share,
                "tier": _tier(s.input_bound_share),
            }
            for s in r.steps
        ],
    }


def json_document(report: TraceReport) -> dict[str, Any]:
    from dlcheck.output import to_jsonable

    worst = report.worst
    return {
        "schema": SCHEMA,
        "input_bound_share": worst.input_bound_share,
        "tier": worst.tier.value if worst.tier else None,
        "worst_rank": worst.rank,
        "slowest_rank": report.slowest_rank,
        "straggler_ratio": report.straggler_ratio,
        "max_input_bound": report.max_input_bound,
        "strict": report.strict,
        "ranks": [rank_dict(r) for r in report.ranks],
        "findings": to_jsonable(report.findings),
        "exit_code": report.exit_code,
    }


def _ranks_table(report: TraceReport) -> Any:
    from rich.table import Table

    t = Table(box=None, pad_edge=False, title_justify="left")
    for col in ("rank", "steps", "step ms p50", "wait ms p50", "wait/step ms", "share", "tier"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in report.ranks:
        mark = " *" if r.rank == report.slowest_rank else ""
        t.add_row(
            f"{r.rank}{mark}",
            str(len(r.steps)),
            _ms(median([s.wall_ms for s in r.steps])),
            _ms(median([s.wait_ms for s in r.steps])),
            _ms(r.wait_per_step_s * 1e3),
            _pct(r.input_bound_share),
            r.tier.value if r.tier else "-",
        )
    return t


def _worst_table(r: RankFigures) -> Any:
    from rich.table import Table

    shown = worst_steps(r.steps, WORST_SHOWN)
    t = Table(box=None, pad_edge=False)
    for col in ("step", "step ms", "next() ms", "h2d ms", "share", "tier"):
        t.add_column(col, justify="right", no_wrap=True)
    for s in shown:
        t.add_row(
            str(s.step),
            _ms(s.wall_ms),
            _ms(s.loader_wait_ms),
            _ms(s.h2d_wait_ms) if r.has_cuda else "-",
            _pct(s.input_bound_share),
            _tier(s.input_bound_share) or "-",
        )
    return t


def report_renderable(report: TraceReport) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text

    parts: list[Any] = []
    for r in report.ranks:
        parts.append(
            Text.from_markup(
                f"[bold]rank {r.rank}[/]  {escape(r.path)}  [dim]{escape(r.loader_kind)}[/]",
                overflow="fold",
            )
        )
    parts.append(_ranks_table(report))
    parts.append(Text(""))
    worst = report.worst
    shown = min(WORST_SHOWN, len(worst.steps))
    parts.append(
        Text(f"Longest waits, rank {worst.rank}: {shown} of {len(worst.steps)} steps (all: --json)")
    )
    parts.append(_worst_table(worst))
    parts.append(Text(""))
    parts.append(_findings(report))
    return Group(*parts)


def _findings(report: TraceReport) -> Any:
    """Symbol, then the message and its fix, wrapped under the message."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for f in report.findings:
        grid.add_row(Text(f.status.symbol, style=f.status.style), Text(f.message))
        if f.fix:
            grid.add_row("", Text(f"fix: {f.fix}", style="dim"))
    return grid
