"""Renderers for the doctor report: the grouped text view (flutter doctor style), probe list."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from dlcheck.doctor.records import PROBES, PROBES_BY_ID, DoctorReport, Finding
from dlcheck.records import Status, summary_line

EVIDENCE_LINES = 12  # per finding on screen; -v shows all, --json has everything
INDENT = 4  # findings' details sit under their title


def _hanging(console: Any, prefix: str, body: str, indent: int = 0) -> None:
    """Print ``prefix body`` (Rich markup) with the body's wrapped lines under its first word,
    not under the prefix. Words wrap at spaces; only a word longer than a line (a path) is
    folded; nothing is cut, and no line ends in padding."""
    from rich.cells import cell_len
    from rich.text import Text

    lead = _text(prefix)
    hang = indent + (cell_len(lead.plain) + 1 if lead.plain else 0)
    width = max(20, console.width - hang)
    lines = _text(body).wrap(console, width, overflow="fold")
    for i, line in enumerate(lines):
        line.rstrip()
        if i == 0 and lead.plain:
            out = Text(" " * indent) + lead + Text(" ") + line
        else:
            out = Text(" " * hang) + line
        console.print(out, soft_wrap=True, highlight=False)


def _text(markup: str) -> Any:
    from rich.text import Text

    return Text.from_markup(markup)


def render_report(report: DoctorReport, console: Any, *, verbose: bool = False) -> None:
    from rich.cells import cell_len

    info = report.target_info
    head = f"[bold]dlcheck doctor[/] {escape(report.target)}"
    if info is not None:
        what = f"{info.kind}: {info.dataset_class} ({info.style}-style"
        what += f", {info.length:,} samples)" if info.length is not None else ")"
        plain = f"dlcheck doctor {report.target}  {what}"
        if cell_len(plain) > console.width:  # on a line of its own, not broken in the middle
            _hanging(console, "", head)
            _hanging(console, "", f"[dim]{escape(what)}[/]", 2)
            head = ""
        else:
            head += f"  [dim]{escape(what)}[/]"
    if head:
        _hanging(console, "", head)
    if info is not None and info.loader_class:
        _hanging(
            console,
            "",
            f"[dim]{escape(info.loader_class)} is a DataLoader subclass: the probes rebuild plain "
            "DataLoaders from its dataset and settings, so what it adds is not checked.[/]",
            2,
        )
    if report.world_size is not None:
        _render_ranks(report, console)
    for finding in report.findings:
        _render_finding(finding, console, verbose=verbose)
    statuses = report.statuses
    line = summary_line(statuses)
    style = "bold red" if report.exit_code else "green"
    n = len(report.findings)
    console.print()
    _hanging(
        console,
        "",
        f"[{style}]{escape(line)}[/] [dim]({n} finding{'s' if n != 1 else ''}, "
        f"{report.duration_s:.1f} s)[/]",
    )
    internal = sum(1 for f in report.findings if f.internal)
    if internal:
        errors = "1 error is" if internal == 1 else f"{internal} errors are"
        _hanging(
            console,
            "",
            f"[{Status.ERROR.style}]{errors} dlcheck's own (a dlcheck bug, not a finding about "
            f"your data): please report {'it' if internal == 1 else 'them'}; run with -v for "
            "the traceback.[/]",
        )


def _render_ranks(report: DoctorReport, console: Any) -> None:
    """One line for the job, one per rank that is not fine (all of them with a few ranks)."""
    entries = report.ranks or []
    hosts = {e.get("host") for e in entries if e.get("host")}
    _hanging(
        console,
        "",
        f"[dim]{report.world_size} ranks on {len(hosts) or '?'} "
        f"{'node' if len(hosts) == 1 else 'nodes'} ({escape(str(report.launcher))}); "
        "shards read by every rank, probes run on rank 0[/]",
    )
    for e in entries:
        if e.get("status") == "ok" and len(entries) > 8:
            continue
        where = f" on {e['host']}" if e.get("host") else ""
        if e.get("status") == "ok":
            n = e.get("samples")
            what = f"{n:,} samples" if isinstance(n, int) else "ok"
            line = f"[dim]rank {e['rank']}{escape(where)}: {what}[/]"
        else:
            line = (
                f"[red]rank {e['rank']}{escape(where)}: {escape(str(e.get('status')))}[/]"
                f" — {escape(str(e.get('error') or ''))}"
            )
        _hanging(console, "", line, INDENT)


def _render_finding(f: Finding, console: Any, *, verbose: bool) -> None:
    status = f.status
    sym = f"[{status.style}]{escape(status.symbol)}[/]"
    title = f"[bold]{escape(f.title)}[/] [dim]({escape(f.probe)})[/]"
    if f.internal:
        # Not a finding about the data: say so where the eye lands first.
        title += f" [{status.style}]dlcheck error[/]"
    _hanging(console, sym, title)
    show_detail = verbose or status in (Status.FAIL, Status.ERROR, Status.WARN, Status.INFO)
    if not show_detail and status is Status.PASS:
        return
    _hanging(console, "", escape(f.message), INDENT)
    lines = f.evidence_text if verbose else f.evidence_text[:EVIDENCE_LINES]
    for line in lines:
        _hanging(console, "[dim]•[/]", escape(line), INDENT)
    if len(f.evidence_text) > len(lines):
        more = f"{len(f.evidence_text) - len(lines)} more lines (-v or --json)"
        _hanging(console, "[dim]•[/]", f"[dim]and {more}[/]", INDENT)
    if f.fix and status in (Status.FAIL, Status.WARN, Status.ERROR, Status.INFO):
        _hanging(console, "[bold]fix:[/]", escape(f.fix), INDENT)
    # dlcheck's own traceback, or the user's code's one when it raised inside a probe.
    trace = (f.error or {}).get("traceback") or f.evidence.get("traceback")
    if verbose and isinstance(trace, str) and trace:
        # Raw, unwrapped and outside any layout, so it can be copied into a bug report.
        console.print(trace.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)


def render_probe_list(console: Any) -> None:
    from rich.table import Table

    table = Table(title="dlcheck doctor probes", show_lines=False)
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("detects", ratio=3, min_width=16)
    table.add_column("cost", style="dim", ratio=2, min_width=12)
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
