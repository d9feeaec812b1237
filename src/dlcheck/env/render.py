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
from dlcheck.env.records import DistEnvReport, EnvReport
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
    groups: dict[str, str] | None = None,
) -> None:
    """The grouped view: one line per check, fixes under problems, a closing summary.

    ``groups`` (group → title, in display order) comes before the env groups when given.
    """
    from rich.table import Table
    from rich.text import Text

    if header:
        console.print(Text(header, style="bold"))
        console.print()
    titles = {**(groups or {}), **GROUPS}
    group_order = list(titles) + sorted({c.group for c in checks} - set(titles))
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
            Text(titles.get(group, group), style="bold"),
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


# Skipped checks that say the same thing about different subjects fold into one line:
# (pattern with a `what` group, the folded line's prefix).
_FOLDS = (
    (re.compile(r"^(?P<what>.+): not installed$"), "not installed"),
    (re.compile(r"^(?P<what>\S+) not available on any rank$"), "not available on any rank"),
)


def _fold(summary: str) -> tuple[str, str] | None:
    for pattern, label in _FOLDS:
        m = pattern.match(summary)
        if m:
            return label, m.group("what")
    return None


def _collapse_skips(items: list[Check]) -> list[Check]:
    """Default view: fold skipped checks that say the same thing into one line."""
    out: list[Check] = []
    folded: dict[str, list[str]] = {}
    same: dict[str, int] = {}
    for c in items:
        if c.status is not Status.SKIP:
            continue
        hit = _fold(c.summary)
        if hit:
            folded.setdefault(hit[0], []).append(hit[1])
        else:
            same[c.summary] = same.get(c.summary, 0) + 1
    emitted: set[str] = set()
    for c in items:
        if c.status is not Status.SKIP:
            out.append(c)
            continue
        hit = _fold(c.summary)
        if hit:
            label = hit[0]
            if label not in emitted:
                emitted.add(label)
                summary = f"{label}: " + ", ".join(folded[label])
                out.append(dataclasses.replace(c, summary=summary))
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
        except (KeyError, OSError, ImportError):  # uid not in passwd (containers); no pwd module
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


# ---------------------------------------------------------------- across ranks

#: Title of the group of checks that compare the ranks (shown first).
CLUSTER_GROUPS = {"cluster": "Across ranks and nodes"}
# How each launcher is named in headers.
_LAUNCHERS = {"torchrun": "torchrun", "slurm": "srun", "env": "RANK/WORLD_SIZE"}


def _scale_line(report: DistEnvReport) -> str:
    """'2 ranks on 1 node (torchrun)'."""
    n_nodes = len(report.nodes)
    how = _LAUNCHERS.get(report.launcher, report.launcher)
    return f"{report.world_size} ranks on {n_nodes} node{'s' if n_nodes != 1 else ''} ({how})"


def _cluster_value(report: DistEnvReport, fact: str) -> tuple[Any, bool]:
    """(the value, whether ranks disagree) of one compared fact; (None, False) when unknown."""
    check = next((c for c in report.cluster_checks if c["id"] == f"cluster.{fact}"), None)
    values = (check or {}).get("facts", {}).get("values") or []
    if len(values) > 1:
        return None, True
    return (values[0]["value"] if values else None), False


def dist_header_line(report: DistEnvReport) -> str:
    parts = [_scale_line(report)]
    for fact, name in (("python.version", "Python"), ("torch.version", "torch")):
        value, differs = _cluster_value(report, fact)
        if differs:
            parts.append(f"{name} differs across ranks")
        elif value:
            parts.append(f"{name} {value}")
    models, differs = _cluster_value(report, "gpu.models")
    if differs:
        parts.append("GPU models differ")
    elif models:
        names = sorted(set(str(models).split(", ")))
        parts.append(names[0] if len(names) == 1 else str(models))
    else:
        parts.append("no NVIDIA GPU")
    return "dlcheck env · " + " · ".join(parts)


def render_dist_console(report: DistEnvReport, console: Any, *, verbose: bool = False) -> None:
    """Rank 0's view: header, the node table (host → ranks → GPUs), then the cluster checks and
    every per-rank check merged (worst status, naming the ranks), with one closing summary."""
    from rich.text import Text

    from dlcheck.ranks.render import node_table

    console.print(Text(dist_header_line(report), style="bold"))
    console.print()
    console.print(node_table(report.nodes))
    console.print()
    render_checks(
        report.check_records(with_ranks=verbose), console, verbose=verbose, groups=CLUSTER_GROUPS
    )


def _replace_hosts(text: str, labels: dict[str, str]) -> str:
    for host in sorted(labels, key=len, reverse=True):
        if host and host != "?":
            text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", labels[host], text)
    return text


def _md_value(value: Any) -> str:
    from dlcheck.ranks.cluster import format_value

    return _md_cell(format_value(value))


def render_dist_markdown(report: DistEnvReport, *, verbose: bool = False) -> str:
    """The merged report as a bug-report block; hosts appear as ``node0``, ``node1``, …"""
    from dlcheck.ranks.cluster import SPECS_BY_NAME, compress_ranks, format_value, ranks_label

    def fmt(fact: str, value: Any) -> str:
        spec = SPECS_BY_NAME.get(fact)
        return format_value(value, spec.kind if spec else "text")

    labels = report.node_labels()
    lines = [
        f"#### `dlcheck env` across {_scale_line(report)} — {report.summary}",
        "",
        "| Node | Ranks | GPUs | Driver |",
        "|---|---|---|---|",
    ]
    for n in report.nodes:
        ranks = compress_ranks(n["ranks"])
        if n.get("failed_ranks"):
            ranks += f" (failed: {compress_ranks(n['failed_ranks'])})"
        count = n.get("gpu_count")
        gpus = "none" if not count else f"{count}× {_md_value(n.get('gpu_models'))}"
        lines.append(
            f"| {labels[str(n['host'])]} | {ranks} | {gpus} | {_md_value(n.get('nvidia_driver'))} |"
        )
    lines += ["", "| | Check | Result |", "|---|---|---|"]
    records = report.check_records(with_ranks=verbose)
    for c in records:
        if c.status is Status.SKIP:
            continue
        cell = _md_cell(c.summary)
        if c.fix and c.status in _PROBLEM:
            cell += f"<br>**fix:** {_md_cell(c.fix)}"
        lines.append(f"| {c.status.symbol} {c.status.value} | `{c.id}` | {cell} |")
    skipped = [c for c in records if c.status is Status.SKIP]
    if skipped:
        lines += ["", f"<details><summary>{len(skipped)} skipped</summary>", ""]
        lines += [f"- `{c.id}`: {_md_cell(c.summary)}" for c in skipped]
        lines += ["", "</details>"]
    lines += ["", "<details><summary>Key facts</summary>", "", "```"]
    for cluster in report.cluster_checks:
        values = cluster.get("facts", {}).get("values")
        if values is None:
            continue
        fact = cluster["facts"]["fact"]
        if len(values) == 1:
            lines.append(f"{fact}: {fmt(fact, values[0]['value'])}")
        else:
            shown = "; ".join(
                f"{fmt(fact, v['value'])} ({ranks_label(v['ranks'])})" for v in values
            )
            lines.append(f"{fact}: {shown}")
    if verbose:
        for c in records:
            for k, v in c.facts.items():
                lines.append(f"{c.id}.{k}: {_fact_text(v)}")
    lines += ["```", "", "</details>"]
    version = report.meta.get("dlcheck_version")
    if version:
        lines += ["", f"<sub>dlcheck {version}, schema dlcheck.env/1</sub>"]
    text = _replace_hosts("\n".join(lines) + "\n", labels)
    return privacy_filter(text)
