"""Rich renderers for the records of dlcheck.ranks (they decide nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dlcheck.ranks.cluster import compress_ranks, format_value


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def node_table(nodes: Sequence[Mapping[str, Any]]) -> Any:
    """host → ranks → GPUs, one row per node."""
    from rich.table import Table

    table = Table(title="Nodes", title_justify="left", show_edge=False)
    for col in ("host", "ranks", "GPUs", "driver"):
        table.add_column(col)
    for n in nodes:
        ranks = compress_ranks(n["ranks"])
        if n.get("failed_ranks"):
            ranks += f" (failed: {compress_ranks(n['failed_ranks'])})"
        count = n.get("gpu_count")
        gpus = "none" if not count else f"{count}× {format_value(n.get('gpu_models'))}"
        table.add_row(str(n["host"]), ranks, gpus, format_value(n.get("nvidia_driver")))
    return table


def throughput_table(aggregates: Sequence[Mapping[str, Any]]) -> Any:
    """Per setting: aggregate and lockstep samples/s, slowest rank, straggler ratio."""
    from rich.table import Table

    table = Table(title="All ranks", title_justify="left", show_edge=False, pad_edge=False)
    for col, justify in (
        ("setting", "left"),
        ("ranks", "right"),
        ("total/s", "right"),
        ("lockstep/s", "right"),
        ("slowest rank", "right"),
        ("straggler", "right"),
        ("failed", "left"),
    ):
        # Figures and headers never wrap or shrink to "…" at 80 columns: the setting and the
        # failure text take the squeeze.
        fixed = col not in ("setting", "failed")
        table.add_column(
            col,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=fixed,
            min_width=len(max(col.split(), key=len)),
        )
    for a in aggregates:
        setting = " ".join(f"{k.removeprefix('num_')}={v}" for k, v in a["setting"].items())
        slowest = (
            "—"
            if a["slowest_rank"] is None
            else f"{a['slowest_rank']} ({_num(a['slowest_samples_per_s'])}/s)"
        )
        ratio = _num(a["straggler_ratio"], "{:.2f}×")
        if a.get("straggler"):
            ratio = f"[yellow]{ratio}[/]"
        failed = ", ".join(f"rank {r}: {m}" for r, m in a["failed_ranks"].items())
        if a.get("missing_ranks"):
            failed = ", ".join(
                x for x in (failed, f"no result: {compress_ranks(a['missing_ranks'])}") if x
            )
        table.add_row(
            setting,
            str(len(a["per_rank"])),
            _num(a["aggregate_samples_per_s"]),
            _num(a["lockstep_samples_per_s"]),
            slowest,
            ratio,
            failed,
        )
    return table


def workers_table(entries: Sequence[Mapping[str, Any]]) -> Any:
    """Per rank: CPUs it can use and the num_workers recommended for it."""
    from rich.table import Table

    table = Table(title="num_workers per rank", title_justify="left", show_edge=False)
    for col, justify in (
        ("rank", "right"),
        ("host", "left"),
        ("CPUs (share)", "right"),
        ("num_workers", "right"),
        ("why", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for e in entries:
        table.add_row(
            str(e["rank"]),
            str(e["host"]),
            f"{e['usable_cpus']} ({e['cpu_share']:g})",
            str(e["recommended_num_workers"]),
            str(e["reason"]),
        )
    return table
