"""Renderers for the doctor report: the grouped text view (flutter doctor style), probe list."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from dlcheck.doctor.records import PROBES, PROBES_BY_ID, DoctorReport, Finding
from dlcheck.records import Status, summary_line

EVIDENCE_LINES = 12  # per finding on screen; -v shows all, --json has everything


def render_report(report: DoctorReport, console: Any, *, verbose: bool = False) -> None:
    info = report.target_info
    head = f"[bold]dlcheck doctor[/] {escape(report.target)}"
    if info is not None:
        what = f"{info.kind}: {info.dataset_class} ({info.style}-style"
        what += f", {info.length:,} samples)" if info.length is not None else ")"
        head += f"  [dim]{escape(what)}[/]"
    console.print(head, highlight=False)
    if report.world_size is not None:
        _render_ranks(report, console)
    for finding in report.findings:
        _render_finding(finding, console, verbose=verbose)
    statuses = report.statuses
    line = summary_line(statuses)
    style = "bold red" if report.exit_code else "green"
    console.print(
        f"\n[{style}]{escape(line)}[/] [dim]({len(report.findings)} findings, "
        f"{report.duration_s:.1f} s)[/]",
        highlight=False,
    )


def _render_ranks(report: DoctorReport, console: Any) -> None:
    """One line for the job, one per rank that is not fine (all of them with a few ranks)."""
    entries = report.ranks or []
    hosts = {e.get("host") for e in entries if e.get("host")}
    console.print(
        f"[dim]{report.world_size} ranks on {len(hosts) or '?'} "
        f"{'node' if len(hosts) == 1 else 'nodes'} ({escape(str(report.launcher))}); shards "
        "read by every rank, probes run on rank 0[/]",
        highlight=False,
    )
    for e in entries:
        if e.get("status") == "ok" and len(entries) > 8:
            continue
        where = f" on {e['host']}" if e.get("host") else ""
        if e.get("status") == "ok":
            n = e.get("samples")
            what = f"{n:,} samples" if isinstance(n, int) else "ok"
            console.print(f"    [dim]rank {e['rank']}{escape(where)}: {what}[/]", highlight=False)
        else:
            console.print(
                f"    [red]rank {e['rank']}{escape(where)}: {escape(str(e.get('status')))}[/]"
                f" — {escape(str(e.get('error') or ''))}",
                highlight=False,
            )


def _render_finding(f: Finding, console: Any, *, verbose: bool) -> None:
    status = f.status
    sym = f"[{status.style}]{escape(status.symbol)}[/]"
    console.print(f"{sym} [bold]{escape(f.title)}[/] [dim]({escape(f.probe)})[/]", highlight=False)
    show_detail = verbose or status in (Status.FAIL, Status.ERROR, Status.WARN, Status.INFO)
    if not show_detail and status is Status.PASS:
        return
    console.print(f"    {escape(f.message)}", highlight=False, soft_wrap=False)
    lines = f.evidence_text if verbose else f.evidence_text[:EVIDENCE_LINES]
    for line in lines:
        console.print(f"    [dim]•[/] {escape(line)}", highlight=False)
    if len(f.evidence_text) > len(lines):
        console.print(
            f"    [dim]• … {len(f.evidence_text) - len(lines)} more lines (-v or --json)[/]",
            highlight=False,
        )
    if f.fix and status in (Status.FAIL, Status.WARN, Status.ERROR, Status.INFO):
        console.print(f"    [bold]fix:[/] {escape(f.fix)}", highlight=False)


def render_probe_list(console: Any) -> None:
    from rich.table import Table

    table = Table(title="dlcheck doctor probes", show_lines=False)
    table.add_column("id", style="bold")
    table.add_column("detects")
    table.add_column("cost", style="dim")
    for p in PROBES:
        table.add_row(p.id, p.detects, p.cost)
    console.print(table)


def probe_list_doc() -> dict[str, Any]:
    return {
        "schema": "dlcheck.doctor.probes/1",
        "probes": [
            {"id": p.id, "title": p.title, "detects": p.detects, "cost": p.cost} for p in PROBES
        ],
    }


__all__ = ["PROBES_BY_ID", "probe_list_doc", "render_probe_list", "render_report"]
