"""Renderers for a WatchSummary: the one-line verdict, a Rich table, HTML and the JSON document.

Renderers decide nothing: the summary already holds the share, the tier and the straggler.
"""

from __future__ import annotations

from typing import Any

from dlcheck.inputbound import advice
from dlcheck.watch.records import SCHEMA, WatchSummary


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:,.1f}"


def _s(x: float) -> str:
    return f"{1e3 * x:.1f} ms" if x < 1 else f"{x:,.2f} s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _label(s: WatchSummary) -> str:
    who = f"[{s.name}]" if s.name else ""
    if s.rank is not None:
        who += f"[rank {s.rank}]"
    return f"dlcheck.watch{who}"


def verdict_line(s: WatchSummary) -> str:
    """``dlcheck.watch[train] epoch 2: highly input-bound (69% ...) - 40 steps, ...``.

    The figures are the whole run's so far (every epoch), not the last epoch's alone."""
    first = s.time_to_first_batch_s[-1] if s.time_to_first_batch_s else None
    parts = [
        f"{s.steps} steps",
        f"wait p50 {_ms(s.wait_p50_ms)} ms",
        f"step p50 {_ms(s.step_p50_ms)} ms",
    ]
    if first is not None:
        parts.append(f"first batch {_s(first)}")
    return f"{_label(s)} epoch {s.epochs}: {s.verdict} - {', '.join(parts)}"


def json_document(s: WatchSummary) -> dict[str, Any]:
    from dlcheck.output import to_jsonable

    doc: dict[str, Any] = {"schema": SCHEMA, "verdict": s.verdict}
    body = to_jsonable(s)
    body["ranks"] = [_rank_dict(r) for r in s.ranks]
    doc.update(body)
    return doc


def _rank_dict(s: WatchSummary) -> dict[str, Any]:
    from dlcheck.output import to_jsonable

    d = to_jsonable(s)
    d.pop("ranks", None)
    d.pop("slowest_rank", None)
    d.pop("straggler_ratio", None)
    return d


def summary_renderable(s: WatchSummary) -> Any:
    """The verdict, a figure/value table, and with gathered ranks a per-rank table (80 cols)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    t = Table(title=escape(_label(s)), title_justify="left", box=None, pad_edge=False)
    t.add_column("figure", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    first = s.time_to_first_batch_s
    rows = [
        ("input-bound share", f"{_pct(s.input_bound_share)} ({s.tier.value if s.tier else '-'})"),
        ("steps / epochs", f"{s.steps:,} / {s.epochs}"),
        ("wait in next() p50 / p95 / p99", " / ".join(_ms(x) for x in _waits(s)) + " ms"),
        ("step (loop body) p50", f"{_ms(s.step_p50_ms)} ms"),
        ("time to first batch", _firsts(first)),
        ("waiting / loop wall time", f"{_s(s.wait_s)} / {_s(s.wall_s)}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    parts: list[Any] = [Text(s.verdict, style=_style(s))]
    tip = advice(s.input_bound_share)
    if tip:
        parts.append(Text(tip, style="dim"))
    parts.append(t)
    if s.ranks:
        parts.append(_ranks_table(s))
    return Group(*parts)


def _waits(s: WatchSummary) -> tuple[float | None, ...]:
    return (s.wait_p50_ms, s.wait_p95_ms, s.wait_p99_ms)


def _firsts(first: tuple[float, ...]) -> str:
    if not first:
        return "-"
    if len(first) == 1:
        return _s(first[0])
    return f"{_s(first[0])}, then up to {_s(max(first[1:]))}"


def _style(s: WatchSummary) -> str:
    return {"highly": "bold red", "moderately": "yellow", "not": "green"}.get(
        s.tier.value if s.tier else "", ""
    )


def _ranks_table(s: WatchSummary) -> Any:
    from rich.table import Table

    ratio = "-" if s.straggler_ratio is None else f"{s.straggler_ratio:.2f}x"
    t = Table(
        title=f"ranks: slowest {s.slowest_rank if s.slowest_rank is not None else '-'}, "
        f"straggler ratio {ratio} (its wait per step / the median rank's)",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    for col in ("rank", "steps", "wait/step ms", "wait p95 ms", "step p50 ms", "share"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in s.ranks:
        mark = " *" if r.rank == s.slowest_rank else ""
        t.add_row(
            f"{r.rank}{mark}",
            f"{r.steps:,}",
            _ms(r.wait_per_step_s * 1e3),
            _ms(r.wait_p95_ms),
            _ms(r.step_p50_ms),
            _pct(r.input_bound_share),
        )
    return t


def summary_text(s: WatchSummary, width: int = 80) -> str:
    import io

    from dlcheck.output import console

    buf = io.StringIO()
    con = console(file=buf, width=width)
    con.print(s)
    return buf.getvalue().rstrip("\n")


def summary_html(s: WatchSummary) -> str:
    import io

    from dlcheck.output import console

    buf = io.StringIO()
    con = console(file=buf, width=80)
    con.record = True
    con.print(s)
    return con.export_html(inline_styles=True)
