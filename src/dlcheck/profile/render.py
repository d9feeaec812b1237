"""Renderers for a ProfileReport: the JSON document, CSV, Rich tables and a terminal chart.

Renderers decide nothing: the report already holds the statistics, the recommendation and the
checks.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from dlcheck.profile.records import SCHEMA, SettingResult

if TYPE_CHECKING:
    from dlcheck.profile.records import ProfileReport

CSV_COLUMNS = [
    "num_workers",
    "batch_size",
    "pin_memory",
    "prefetch_factor",
    "persistent_workers",
    "start_method",
    "baseline",
    "round",
    "rank",
    "ok",
    "samples_per_s",
    "batches_per_s",
    "spread_min",
    "spread_max",
    "rel_noise",
    "first_batch_s",
    "epoch_restart_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "stalls",
    "steady_batches",
    "peak_uss_bytes",
    "peak_pss_bytes",
    "peak_shm_bytes",
    "h2d_ms",
    "h2d_gb_per_s",
    "pct_of_peak",
    "error_kind",
    "error",
    # --step / --step-time only (empty otherwise)
    "input_bound",
    "tier",
    "step_ms",
    "wait_p50_ms",
    "wait_p95_ms",
]


def result_dict(r: SettingResult, *, raw: bool = False) -> dict[str, Any]:
    """One result as JSON: flat figures, then (``raw``) every batch's arrival time."""
    from dlcheck.output import to_jsonable

    st = r.stats
    doc = {
        "setting": r.setting.to_dict(),
        "baseline": r.baseline,
        "rank": r.rank,
        "round": r.round,
        "ok": r.ok,
        "error_kind": r.error_kind,
        "error": r.error,
        "hint": r.hint,
        "samples_per_s": st.samples_per_s if st else None,
        "batches_per_s": st.batches_per_s if st else None,
        "spread": list(st.spread) if st and st.spread else None,
        "rel_noise": st.rel_noise if st else None,
        "windows": st.windows if st else 0,
        "steady_batches": st.steady_batches if st else 0,
        "steady_s": st.steady_s if st else 0.0,
        "spans_depths": st.spans_depths if st else None,
        "first_batch_s": st.first_batch_s if st else None,
        "epoch_restart_s": st.epoch_restart_s if st else None,
        "latency_ms": st.latency_ms if st else {},
        "stalls": st.stalls if st else 0,
        "interval": list(r.interval) if r.interval else None,
        "cost": to_jsonable(r.cost) if r.cost else None,
        "basis": st.basis if st else None,
        "steady_samples_per_s": st.steady_samples_per_s if st else None,
        "epochs_timed": st.epochs_timed if st else 0,
        "epoch_overhead_s": st.epoch_overhead_s if st else None,
        "real_epoch_samples": r.real_epoch_samples,
        "reliable": st.reliable if st else False,
        "peak_uss_bytes": r.peak_uss_bytes,
        "peak_pss_bytes": r.peak_pss_bytes,
        "peak_shm_bytes": r.peak_shm_bytes,
        "gpu": to_jsonable(r.gpu) if r.gpu else {"available": False, "reason": "no CUDA"},
        "notes": r.notes,
        "output": r.output,
        "wall_s": r.wall_s,
    }
    lp = r.loop
    if lp is not None:  # --step / --step-time: the training loop's figures
        doc.update(
            input_bound=lp.input_bound,
            tier=lp.tier,
            step_ms=lp.step_ms,
            wait_ms=lp.wait_ms,
            loop_first_batch_ms=lp.first_batch_ms,
            loop_samples_per_s=lp.samples_per_s,
        )
    if raw:
        raw_doc: dict[str, Any] = {
            "epochs": [
                {
                    "started_s": e.started_s,
                    "times_s": list(e.times_s),
                    "samples": list(e.samples),
                    "complete": e.complete,
                    "ended_s": e.ended_s,
                    "capped": e.capped,
                }
                for e in r.epochs
            ]
        }
        if r.loop_epochs:
            raw_doc["loop"] = [e.to_dict() for e in r.loop_epochs]
        doc["raw"] = raw_doc
    return doc


def json_document(report: ProfileReport, *, raw: bool = False) -> dict[str, Any]:
    """The ``dlcheck.profile/1`` document; per-batch times only with ``raw`` (--raw, files)."""
    from dlcheck.output import to_jsonable

    rec = report.recommended
    return {
        "schema": SCHEMA,
        "target": report.target,
        "dataset": to_jsonable(report.shape) if report.shape else None,
        "machine": report.machine,
        "options": to_jsonable(report.options),
        "results": [result_dict(r, raw=raw) for r in report.results],
        "recommendations": to_jsonable(report.recommendations),
        "recommended": to_jsonable(rec) if rec else None,
        "checks": to_jsonable(report.checks),
        "interrupted": report.interrupted,
        "budget_exhausted": report.budget_exhausted,
        "wall_s": report.wall_s,
        "exit_code": report.exit_code,
    }


def csv_text(report: ProfileReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in report.results:
        s, st, g, lp = r.setting, r.stats, r.gpu, r.loop
        w.writerow(
            {
                "num_workers": s.num_workers,
                "batch_size": s.batch_size,
                "pin_memory": s.pin_memory,
                "prefetch_factor": s.prefetch_factor,
                "persistent_workers": s.persistent_workers,
                "start_method": s.start_method,
                "baseline": r.baseline,
                "round": r.round,
                "rank": r.rank,
                "ok": r.ok,
                "samples_per_s": _num(st.samples_per_s if st else None),
                "batches_per_s": _num(st.batches_per_s if st else None),
                "spread_min": _num(st.spread[0] if st and st.spread else None),
                "spread_max": _num(st.spread[1] if st and st.spread else None),
                "rel_noise": _num(st.rel_noise if st else None, 4),
                "first_batch_s": _num(st.first_batch_s if st else None, 4),
                "epoch_restart_s": _num(st.epoch_restart_s if st else None, 4),
                "latency_p50_ms": _num(st.latency_ms.get("p50") if st else None, 3),
                "latency_p95_ms": _num(st.latency_ms.get("p95") if st else None, 3),
                "latency_p99_ms": _num(st.latency_ms.get("p99") if st else None, 3),
                "stalls": st.stalls if st else "",
                "steady_batches": st.steady_batches if st else "",
                "peak_uss_bytes": r.peak_uss_bytes or "",
                "peak_pss_bytes": r.peak_pss_bytes or "",
                "peak_shm_bytes": r.peak_shm_bytes if r.peak_shm_bytes is not None else "",
                "h2d_ms": _num(g.h2d_ms_p50 if g else None, 4),
                "h2d_gb_per_s": _num(g.h2d_gb_per_s if g else None, 3),
                "pct_of_peak": _num(g.pct_of_peak if g else None, 1),
                "error_kind": r.error_kind or "",
                "error": r.error or "",
                "input_bound": _num(lp.input_bound if lp else None, 4),
                "tier": (lp.tier or "") if lp else "",
                "step_ms": _num(lp.step_ms if lp else None, 3),
                "wait_p50_ms": _num(lp.wait_ms.get("p50") if lp else None, 3),
                "wait_p95_ms": _num(lp.wait_ms.get("p95") if lp else None, 3),
            }
        )
    return buf.getvalue()


def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


# ---------------------------------------------------------------- Rich


def _mb(b: int | None) -> str:
    return "-" if not b else f"{b / 2**20:,.0f}"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _noise(r: SettingResult) -> str:
    st = r.stats
    if not st or st.samples_per_s is None:
        return "-"
    if r.interval is not None and sum(r.interval) > 0:
        # The setting's interval (all runs, between-run noise included), as a ± share.
        pct = 100 * (r.interval[1] - r.interval[0]) / sum(r.interval)
        return f"±{pct:.1f}%" if pct < 10 else f"±{pct:.0f}%"
    if st.rel_noise is None:
        return "±?"
    pct = 100 * st.rel_noise
    return f"±{pct:.1f}%" if pct < 10 else f"±{pct:.0f}%"


def _gpu_cell(r: SettingResult, *, wide: bool = True) -> str:
    g = r.gpu
    if g is None or not g.available:
        if not wide:
            return "-"
        return "no CUDA" if g is None or not g.reason or g.reason == "no CUDA" else g.reason
    if g.h2d_ms_p50 is None:
        return (g.reason or "-") if wide else "-"
    pct = f" {g.pct_of_peak:.0f}%" if g.pct_of_peak is not None else ""
    bw = f" {g.h2d_gb_per_s:.1f}GB/s" if g.h2d_gb_per_s and wide else ""
    return f"{g.h2d_ms_p50:.2f}ms{bw}{pct}"


#: Lines of a failed setting's own output shown beside its error (all are in JSON).
FAILED_OUTPUT_LINES = 5

#: A console at least this wide shows every column, as ``--wide`` does.
WIDE_FROM_COLUMNS = 150


def _shows_gpu(report: ProfileReport) -> bool:
    return any(r.gpu is not None and r.gpu.available for r in report.results)


def results_table(report: ProfileReport, batch_size: int | None, *, wide: bool = False) -> Any:
    """One batch size's settings. The default columns are the ones that decide and fit 80
    columns; ``wide`` adds the rest (always in JSON/CSV)."""
    from rich import box
    from rich.table import Table

    rows = [r for r in report.results if r.setting.batch_size == batch_size]
    rec = next((x for x in report.recommendations if x.batch_size == batch_size), None)
    ok = [r for r in rows if r.ok and r.samples_per_s]
    best = max(ok, key=lambda r: r.samples_per_s or 0.0) if ok else None
    title = f"batch size {batch_size}" if batch_size is not None else "the loader's own batching"
    with_workers = [r.setting for r in rows if r.setting.num_workers]
    varies = {
        "pin": len({r.setting.pin_memory for r in rows}) > 1,
        "prefetch": len({s.prefetch_factor for s in with_workers}) > 1,
        "persist": len({s.persistent_workers for s in with_workers}) > 1,
    }
    fixed = []
    if not varies["pin"] and rows:
        fixed.append(f"pin_memory={rows[0].setting.pin_memory}")
    if not varies["prefetch"] and with_workers:
        fixed.append(f"prefetch_factor={with_workers[0].prefetch_factor}")
    if not varies["persist"] and with_workers:
        fixed.append(f"persistent_workers={with_workers[0].persistent_workers}")
    if fixed:
        title += " · " + ", ".join(fixed)
    gpu = _shows_gpu(report)
    step = any(r.loop is not None for r in rows)
    # (header, justify, shown): headers are short so that no column is ever cut at 80.
    columns = [
        ("", "left", True),
        ("workers", "right", True),
        ("pin", "center", varies["pin"]),
        ("prefetch", "right", varies["prefetch"]),
        ("persist", "center", varies["persist"]),
        ("samples/s", "right", True),
        ("batches/s", "right", wide),
        ("1st batch", "right", True),
        ("p95 ms", "right", not wide and not step),
        ("step ms", "right", step and wide),  # the reason line quotes it
        ("wait ms", "right", step and wide),
        ("wait %", "right", step),
        ("p50/p95/p99 ms", "right", wide),
        ("stalls", "right", wide),
        ("PSS MB", "right", not wide and not step),
        ("USS/PSS MB", "right", wide),
        ("shm MB", "right", wide),
        ("restart", "right", wide),
        ("H2D", "right", gpu or wide),
    ]
    t = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )
    for name, just, shown in columns:
        if shown:
            t.add_column(name, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        s, st = r.setting, (r.stats if r.ok else None)
        mark = ""
        style = None
        if (
            rec
            and r.ok
            and (s.num_workers, s.pin_memory, s.prefetch_factor, s.persistent_workers)
            == (rec.num_workers, rec.pin_memory, rec.prefetch_factor, rec.persistent_workers)
        ):
            mark = "→"
        if r is best:
            style = "bold green"
        if not r.ok:
            style = "red"
        if r.baseline:
            mark += " yours"
        if r.round:
            mark += f" #{r.round + 1}"
        lat = st.latency_ms if st else {}
        lp = r.loop if r.ok else None
        cells = [
            mark.strip(),
            str(s.num_workers),
            "✓" if s.pin_memory else "",
            str(s.prefetch_factor) if s.num_workers else "-",
            "✓" if s.persistent_workers and s.num_workers else "",
            _rate_noise(r),
            f"{st.batches_per_s:,.1f}" if st and st.batches_per_s else "-",
            f"{st.first_batch_s:.2f}s" if st and st.first_batch_s is not None else "-",
            f"{lat['p95']:,.0f}" if lat.get("p95") is not None else "-",
            f"{lp.step_ms:,.1f}" if lp and lp.step_ms is not None else "-",
            "/".join(f"{lp.wait_ms[q]:.1f}" for q in ("p50", "p95")) if lp and lp.wait_ms else "-",
            _share_cell(lp),
            "/".join(f"{lat[q]:.0f}" for q in ("p50", "p95", "p99")) if lat else "-",
            str(st.stalls) if st else "-",
            _mb(r.peak_pss_bytes),
            f"{_mb(r.peak_uss_bytes)}/{_mb(r.peak_pss_bytes)}",
            _mb(r.peak_shm_bytes),
            f"{st.epoch_restart_s:.2f}s" if st and st.epoch_restart_s is not None else "-",
            _gpu_cell(r, wide=wide),
        ]
        t.add_row(
            *[c for c, (_, _, shown) in zip(cells, columns, strict=True) if shown], style=style
        )
    return t


def _share_cell(lp: Any) -> str:
    """``38% HIGH``: the loop's input-bound share with its tier (not / moderately / highly)."""
    if lp is None or lp.input_bound is None:
        return "-"
    word = {"not": "not", "moderately": "mod", "highly": "HIGH"}.get(lp.tier or "", "")
    return f"{100 * lp.input_bound:.0f}% {word:<4}"


def _rate_noise(r: SettingResult) -> str:
    """samples/s with its uncertainty, the figure a decision rests on: ``2,540 ±6%``."""
    if not r.ok:
        # The memory budget skipped or stopped it: a limit the user set, not a failure.
        return "over budget" if r.error_kind == "over_budget" else "✗ failed"
    rate = _rate(r.samples_per_s)
    noise = _noise(r)
    return rate if noise in ("-", "") else f"{rate} {noise}"


def chart(report: ProfileReport, batch_size: int | None, width: int = 40) -> Any:
    """Throughput vs workers as horizontal bars (best of the measured settings per count)."""
    from rich.text import Text

    from dlcheck.profile.search import estimates

    per_w: dict[int, float] = {}
    for e in estimates([r for r in report.results if r.setting.batch_size == batch_size]).values():
        if e.samples_per_s:
            w = e.setting.num_workers
            per_w[w] = max(per_w.get(w, 0.0), e.samples_per_s)
    text = Text()
    if len(per_w) < 2:
        return text
    top = max(per_w.values())
    rec = next((x for x in report.recommendations if x.batch_size == batch_size), None)
    text.append("samples/s by num_workers\n", style="bold")
    for w in sorted(per_w):
        v = per_w[w]
        n = v / top * width
        full = int(n)
        bar = "█" * full + ("▌" if n - full >= 0.5 else "")
        style = "green" if rec and rec.num_workers == w else "cyan"
        text.append(f"{w:>4} │", style="dim")
        text.append(bar.ljust(width + 1), style=style)
        text.append(f" {v:,.0f}\n")
    return text


def report_renderable(report: ProfileReport, *, wide: bool = False) -> Any:
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    shape = report.shape
    if shape:
        desc = f"{report.target}: {shape.kind}-style {shape.dataset_type}"
        if shape.length is not None:
            desc += f", {shape.length:,} samples"
        if shape.is_loader:
            desc += (
                f"; your DataLoader: num_workers={shape.num_workers}, batch_size={shape.batch_size}"
            )
        parts.append(Text(desc, style="dim"))
    sizes: list[int | None] = []
    for r in report.results:
        if r.setting.batch_size not in sizes:
            sizes.append(r.setting.batch_size)
    for bs in sizes:
        parts.append(results_table(report, bs, wide=wide))
        c = chart(report, bs)
        if c.plain:
            parts.append(c)
    errors = [r for r in report.results if not r.ok]
    for r in errors:
        line = Text("✗ ", style="bold red")
        line.append(f"{r.setting.label()}: ", style="bold")
        line.append(r.error or "failed")
        if r.hint:
            line.append(f"\n  hint: {r.hint}", style="dim")
        if r.output:
            line.append("\n  its last output:", style="dim")
            for out in r.output[-FAILED_OUTPUT_LINES:]:
                line.append(f"\n  │ {out}", style="dim")
        parts.append(line)
    notes = list(report.options.get("notes") or [])
    for r in report.results:
        for n in r.notes:
            item = f"{r.setting.label()}: {n}"
            if item not in notes:
                notes.append(item)
    for n in notes:
        parts.append(Text(f"note: {n}", style="yellow"))
    if report.budget_exhausted:
        parts.append(
            Text(
                "note: the time budget ran out; the search stopped early (--budget)", style="yellow"
            )
        )
    for rec in report.recommendations:
        head = Text("recommended", style="bold green")
        if len(report.recommendations) > 1:
            head.append(f" (batch size {rec.batch_size})", style="green")
        head.append(f": num_workers={rec.num_workers} → {_rate(rec.samples_per_s)} samples/s\n")
        head.append(f"  {rec.reason}\n", style="italic")
        head.append(f"  {rec.dataloader}", style="bold")
        parts.append(head)
    if not report.recommendations and report.results:
        parts.append(Text("no setting could be measured: nothing to recommend", style="bold red"))
    for c in report.checks:
        parts.append(Text(f"{c.status.symbol} {c.message}", style=c.status.style))
    if report.interrupted:
        parts.append(Text("interrupted: partial results", style="bold yellow"))
    return Group(*parts)


# ---------------------------------------------------------------- under a launcher


def dist_renderable(merged: Any) -> Any:
    """Rank 0's report of a ``DistProfileReport``: per rank, all ranks, the advice."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from dlcheck.ranks.render import throughput_table, workers_table

    report = merged.report
    parts: list[Any] = []
    shape = report.shape
    hosts = len({r.get("host") for r in merged.ranks})
    head = f"{report.target}: {merged.world_size} ranks on {hosts} host{'s' if hosts != 1 else ''}"
    if shape:
        head += f", {shape.kind}-style {shape.dataset_type}"
        if shape.length is not None:
            head += f", {shape.length:,} samples (each rank loads its shard)"
    parts.append(Text(head, style="dim"))
    per = Table(title="Per rank", title_justify="left", show_edge=False, pad_edge=False)
    for name, just in (
        ("setting", "left"),
        ("rank", "right"),
        ("samples/s", "right"),
        ("noise", "right"),
        ("1st batch", "right"),
        ("USS/PSS MB", "right"),
        ("error", "left"),
    ):
        per.add_column(name, justify=just)  # type: ignore[arg-type]
    for r in report.results:
        st = r.stats if r.ok else None
        again = f" (repeat {r.round})" if r.round else ""
        per.add_row(
            r.setting.label() + again,
            str(r.rank),
            _rate(r.samples_per_s) if r.ok else "✗ failed",
            _noise(r),
            f"{st.first_batch_s:.2f}s" if st and st.first_batch_s is not None else "-",
            f"{_mb(r.peak_uss_bytes)}/{_mb(r.peak_pss_bytes)}",
            "" if r.ok else (r.error or "failed"),
            style=None if r.ok else "red",
        )
    parts.append(per)
    if merged.aggregates:
        parts.append(throughput_table(merged.aggregates))
    best = merged.best
    if best:
        line = Text("all ranks", style="bold green")
        setting = " ".join(f"{k}={v}" for k, v in best["setting"].items())
        line.append(
            f": {setting} → {_rate(best['aggregate_samples_per_s'])} samples/s in total, "
            f"{_rate(best['lockstep_samples_per_s'])}/s in lockstep (slowest rank "
            f"{best['slowest_rank']} at {_rate(best['slowest_samples_per_s'])}/s, straggler "
            f"ratio {best['straggler_ratio']:.2f}×)"
        )
        parts.append(line)
    if merged.workers:
        parts.append(workers_table(merged.workers))
    for r in report.results:
        if not r.ok:
            line = Text("✗ ", style="bold red")
            line.append(f"rank {r.rank}, {r.setting.label()}: ", style="bold")
            line.append(r.error or "failed")
            if r.hint:
                line.append(f"\n  hint: {r.hint}", style="dim")
            parts.append(line)
    for n in report.options.get("notes") or []:
        parts.append(Text(f"note: {n}", style="yellow"))
    if report.budget_exhausted:
        parts.append(
            Text("note: the time budget ran out; the search stopped early", style="yellow")
        )
    for rec in report.recommendations:
        head_t = Text("recommended per rank", style="bold green")
        if len(report.recommendations) > 1:
            head_t.append(f" (batch size {rec.batch_size})", style="green")
        head_t.append(
            f": num_workers={rec.num_workers} → {_rate(rec.samples_per_s)} samples/s on the "
            "slowest rank\n"
        )
        head_t.append(f"  {rec.reason}\n", style="italic")
        head_t.append(f"  {rec.dataloader}", style="bold")
        parts.append(head_t)
    for c in report.checks:
        parts.append(Text(f"{c.status.symbol} {c.message}", style=c.status.style))
    if merged.lost:
        parts.append(Text(f"✗ {merged.lost['message']} Results so far:", style="bold red"))
    if merged.failed_ranks:
        ranks = ", ".join(str(r) for r in merged.failed_ranks)
        parts.append(Text(f"✗ failed on rank {ranks}", style="bold red"))
    return Group(*parts)


def print_failure_details(report: ProfileReport, console: Any) -> None:
    """-v: each failed setting's traceback, as is (soft_wrap: never re-wrapped mid-word)."""
    for r in report.failed:
        if r.detail:
            label = r.setting.label() + (f" (rank {r.rank})" if r.rank is not None else "")
            console.print(f"\n[bold]{label}[/]", highlight=False)
            console.print(r.detail, markup=False, highlight=False, soft_wrap=True)
