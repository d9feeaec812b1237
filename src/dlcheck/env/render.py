"""Renderers for env reports: grouped console view, facts (-v), markdown. They only render.

All take an :class:`EnvReport` (which can be rebuilt from a ``dlcheck.env/1`` dict, e.g. a
report merged from several ranks) or, for the console view, a plain list of Check records.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dlcheck.env.checks import GROUPS, Check
from dlcheck.env.report import EnvReport
from dlcheck.records import Status, summary_line

_PROBLEM = {Status.WARN, Status.FAIL, Status.ERROR}


def _fact_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_checks(
    checks: Sequence[Check],
    console: Any,
    *,
    verbose: bool = False,
    header: str | None = None,
) -> None:
    """The grouped view: one line per check, fixes under problems, a closing summary."""
    from rich.table import Table
    from rich.text import Text

    if header:
        console.print(Text(header, style="bold"))
        console.print()
    group_order = list(GROUPS) + sorted({c.group for c in checks} - set(GROUPS))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    if verbose:  # ids are what --check takes; the default view stays narrow
        grid.add_column(no_wrap=True, justify="right")
    for group in group_order:
        items = [c for c in checks if c.group == group]
        if not items:
            continue
        worst = max((c.status for c in items), key=_severity)
        grid.add_row(
            Text(f"[{worst.symbol}]", style=worst.style),
            Text(GROUPS.get(group, group), style="bold"),
            *([""] if verbose else []),
        )
        for c in items if verbose else _collapse_skips(items):
            body = Text(c.summary, style="dim" if c.status is Status.SKIP else "")
            if c.fix and (c.status in _PROBLEM or (c.status is Status.INFO and verbose)):
                body.append("\n→ ", style="cyan")
                body.append(c.fix)
            if verbose:
                for key, value in c.facts.items():
                    body.append(f"\n{key}: {_fact_text(value)}", style="dim")
                if c.detail:
                    body.append("\n" + _indent(c.detail.rstrip(), "| "), style="dim")
            grid.add_row(
                Text(f" {c.status.symbol}", style=c.status.style),
                body,
                *([Text(c.id, style="dim")] if verbose else []),
            )
    console.print(grid)
    statuses = [c.status for c in checks]
    console.print()
    tail = Text()
    worst = max(statuses, key=_severity) if statuses else Status.PASS
    tail.append(f"{worst.symbol} ", style=worst.style)
    n = len(checks)
    tail.append(f"{summary_line(statuses)} ({n} check{'s' if n != 1 else ''})", style="bold")
    console.print(tail)


_NOT_INSTALLED = re.compile(r"^(?P<what>.+): not installed$")


def _collapse_skips(items: list[Check]) -> list[Check]:
    """Default view: fold skipped checks that say the same thing into one line."""
    out: list[Check] = []
    not_installed: list[str] = []
    same: dict[str, int] = {}
    for c in items:
        if c.status is not Status.SKIP:
            continue
        m = _NOT_INSTALLED.match(c.summary)
        if m:
            not_installed.append(m.group("what"))
        else:
            same[c.summary] = same.get(c.summary, 0) + 1
    emitted: set[str] = set()
    for c in items:
        if c.status is not Status.SKIP:
            out.append(c)
            continue
        if _NOT_INSTALLED.match(c.summary):
            if "not installed" not in emitted:
                emitted.add("not installed")
                out.append(
                    dataclasses.replace(c, summary="not installed: " + ", ".join(not_installed))
                )
            continue
        if c.summary in emitted:
            continue
        emitted.add(c.summary)
        n = same[c.summary]
        out.append(c if n == 1 else dataclasses.replace(c, summary=f"{c.summary} ({n} checks)"))
    return out


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


_ORDER = [Status.PASS, Status.SKIP, Status.INFO, Status.WARN, Status.FAIL, Status.ERROR]


def _severity(s: Status) -> int:
    return _ORDER.index(s)


def header_line(report: EnvReport) -> str:
    cf = report.comparable
    parts = [f"Python {cf.get('python.version') or '?'}"]
    parts.append(
        f"torch {cf['torch.version']}" if cf.get("torch.version") else "torch: not importable"
    )
    models = str(cf.get("gpu.models") or "")
    names = sorted(set(models.split(", "))) if models else []
    if not names:
        parts.append("no NVIDIA GPU")
    elif len(names) == 1:
        parts.append(f"{cf.get('gpu.count')}× {names[0]}")
    else:
        parts.append(models)
    return "dlcheck env · " + " · ".join(parts)


def render_console(report: EnvReport, console: Any, *, verbose: bool = False) -> None:
    render_checks(list(report.checks), console, verbose=verbose, header=header_line(report))


# ---------------------------------------------------------------- markdown


def privacy_filter(
    text: str, *, home: str | None = None, user: str | None = None, host: str | None = None
) -> str:
    """Home directory → ``~``; user and host names → ``<user>`` / ``<host>``."""
    home = home if home is not None else str(Path.home())
    if user is None:
        try:
            user = getpass.getuser()
        except Exception:
            user = None
    if host is None:
        try:
            host = socket.gethostname()
        except OSError:
            host = None
    if home and home not in {"/", ""}:
        text = re.sub(re.escape(home.rstrip("/")) + r"(?=/|\b|$)", "~", text)
    # Short or generic names would mangle ordinary words; only replace whole path components
    # and words for them.
    for name, mask in ((host, "<host>"), (user, "<user>")):
        if name and name not in {"root", "user"} and len(name) >= 3:
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", mask, text)
        elif name:
            text = re.sub(rf"(?<=/){re.escape(name)}(?=/)", mask, text)
    return text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: EnvReport, *, verbose: bool = False) -> str:
    """A block to paste into a bug report: summary, every check, fixes, key facts."""
    lines = [
        f"#### `dlcheck env` — {report.summary}",
        "",
        "| | Check | Result |",
        "|---|---|---|",
    ]
    shown = [c for c in report.checks if c.status is not Status.SKIP]
    skipped = [c for c in report.checks if c.status is Status.SKIP]
    for c in shown:
        cell = _md_cell(c.summary)
        if c.fix and c.status in _PROBLEM:
            cell += f"<br>**fix:** {_md_cell(c.fix)}"
        lines.append(f"| {c.status.symbol} {c.status.value} | `{c.id}` | {cell} |")
    if skipped:
        lines += ["", f"<details><summary>{len(skipped)} skipped</summary>", ""]
        lines += [f"- `{c.id}`: {_md_cell(c.summary)}" for c in skipped]
        lines += ["", "</details>"]
    key = {k: v for k, v in report.comparable.items() if k != "host"}
    lines += ["", "<details><summary>Key facts</summary>", "", "```"]
    lines += [f"{k}: {v}" for k, v in key.items()]
    if verbose:
        for c in report.checks:
            for k, v in c.facts.items():
                lines.append(f"{c.id}.{k}: {_fact_text(v)}")
    lines += ["```", "", "</details>"]
    version = report.meta.get("dlcheck_version")
    if version:
        lines += ["", f"<sub>dlcheck {version}, schema dlcheck.env/1</sub>"]
    hostname = report.comparable.get("host")
    return privacy_filter("\n".join(lines) + "\n", host=str(hostname) if hostname else None)


def list_checks_rows() -> Iterable[tuple[str, str, str]]:
    from dlcheck.env.checks import REGISTRY

    for spec in REGISTRY:
        yield spec.id, GROUPS.get(spec.group, spec.group), spec.title


def render_list(console: Any) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("what it checks")
    group = None
    for check_id, group_title, title in list_checks_rows():
        if group_title != group:
            group = group_title
            table.add_row(f"[dim]{group_title}[/]", "")
        table.add_row(f"  {check_id}", title)
    console.print(table)
    console.print(
        "\nRun some: dlcheck env --check ID [--check ID ...]  (a group name, e.g. `host`, "
        "selects the group)",
        highlight=False,
    )


def home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home and path.startswith(home + os.sep) else path
