"""`dlcheck profile`: parse options, call the service, render. (No torch at import time.)"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import typer

from dlcheck.cliutil import DIST_TIMEOUT_OPTION, JSON_OPTION, VERBOSE_OPTION, handle_errors


def _int_list(raw: str | None, name: str, *, minimum: int = 0) -> list[int] | None:
    from dlcheck.errors import UsageError

    if raw is None or raw.strip().lower() == "auto":
        return None
    try:
        values = [int(x) for x in raw.replace(" ", "").split(",") if x]
    except ValueError:
        raise UsageError(
            f"{name} {raw!r} is not a comma-separated list of integers.",
            f"Example: {name} 0,2,4" + (" or auto" if name == "--workers" else ""),
        ) from None
    if not values or any(v < minimum for v in values):
        raise UsageError(f"{name} values must be integers ≥ {minimum}, got {raw!r}.")
    return values


def profile_command(
    target: str = typer.Argument(
        None,
        help="module:attr or file.py:attr naming a Dataset, IterableDataset, DataLoader or a "
        "zero-argument factory. Without it: a built-in image-folder demo.",
        show_default=False,
    ),
    workers: str = typer.Option(
        "auto", "--workers", "-w", help="num_workers to try: a list like 0,2,4 or auto (search)."
    ),
    batch_size: str = typer.Option(
        None, "--batch-size", "-b", help="Batch sizes (list). Default: the loader's own, else 64."
    ),
    pin_memory: str = typer.Option(
        None, "--pin-memory", help="on, off or both. Default: both with CUDA, else off."
    ),
    prefetch: str = typer.Option(None, "--prefetch", help="prefetch_factor values (list)."),
    persistent_workers: str = typer.Option(
        None, "--persistent-workers", help="on, off or both. Default: the loader's own (off)."
    ),
    start_method: str = typer.Option(
        None, "--start-method", help="fork, spawn or forkserver. Default: the loader's/platform's."
    ),
    duration: float = typer.Option(
        None, "--duration", "-d", help="Steady-state seconds per setting. Default: adaptive."
    ),
    stall_timeout: float = typer.Option(
        30.0, "--stall-timeout", help="Seconds without a batch before a setting is stalled."
    ),
    need: float = typer.Option(
        None,
        "--need",
        help="Samples/s your training step consumes: recommend the cheapest setting that meets it.",
    ),
    budget: float = typer.Option(
        90.0, "--budget", help="Total seconds the automatic search may spend."
    ),
    step: str = typer.Option(
        None,
        "--step",
        help="module:attr or file.py:attr of a function taking one batch (your training step): "
        "measure the loop's input-bound share and recommend the cheapest setting it does not "
        "wait on.",
    ),
    step_time: str = typer.Option(
        None,
        "--step-time",
        help="Without a step function: a step of this fixed duration (20ms, 0.02s), as --step.",
    ),
    max_workers: int = typer.Option(64, "--max-workers", help="Most workers --workers auto tries."),
    output: str = typer.Option(
        None, "--output", "-o", help="Write results to FILE.json or FILE.csv (after every setting)."
    ),
    plot: str = typer.Option(None, "--plot", help="Save a chart to FILE.png or FILE.svg."),
    min_throughput: float = typer.Option(
        None, "--min-throughput", help="CI: exit 1 if the recommended setting is below N samples/s."
    ),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="CI: compare with a previous --output FILE.json; exit 1 on a regression.",
    ),
    tolerance: float = typer.Option(
        0.10, "--tolerance", help="Allowed drop vs --baseline (0.10 = 10%)."
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Treat warnings (an unmet --need, a baseline from another machine) as failures.",
    ),
    max_memory: str = typer.Option(
        None,
        "--max-memory",
        help="Most memory a setting may hold (PSS of its processes + /dev/shm), e.g. 2GB. "
        "Default: half the available memory.",
    ),
    isolation: str = typer.Option(
        "auto",
        "--isolation",
        help="auto: build the dataset once and fork each setting from it; fresh: a new "
        "process (and a new build) per setting.",
    ),
    wide: bool = typer.Option(
        False, "--wide", help="Show every column (the default fits 80 columns)."
    ),
    raw: bool = typer.Option(
        False, "--raw", help="With --json: include every batch's arrival time (--output has it)."
    ),
    dist_timeout: float | None = DIST_TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Measure a Dataset/DataLoader across settings and recommend the best.

    The dataset is built once; each setting runs in a child forked from that build (its own
    process group). Under torchrun/srun every rank profiles its own shard at the same time,
    settings in lockstep, and rank 0 reports per-rank and all-ranks figures.
    Exit codes: 0 ok, 1 a setting failed or a CI threshold was missed,
    2 bad TARGET/options, 130 interrupted.
    """
    with handle_errors(verbose):
        from dlcheck.errors import UsageError
        from dlcheck.profile.run import ProfileOptions

        if start_method and start_method not in ("fork", "spawn", "forkserver"):
            raise UsageError(f"--start-method {start_method!r}: use fork, spawn or forkserver.")
        for name, v in (("--duration", duration), ("--stall-timeout", stall_timeout)):
            if v is not None and v <= 0:
                raise UsageError(f"{name} must be positive, got {v:g}.")
        memory_cap = None
        if max_memory is not None:
            from dlcheck.profile.budget import parse_size

            try:
                memory_cap = parse_size(max_memory)
            except ValueError:
                raise UsageError(
                    f"--max-memory {max_memory!r} is not a size.", "Use e.g. 2GB, 512MB or 1.5GiB."
                ) from None
        step_s = None
        if step and step_time:
            raise UsageError("--step and --step-time exclude each other: give one of them.")
        if step:
            from dlcheck.profile.step import check_step_spec

            step = check_step_spec(step)
        if step_time:
            from dlcheck.profile.step import parse_step_time

            step_s = parse_step_time(step_time)
        if isolation not in ("auto", "fresh"):
            raise UsageError(f"--isolation {isolation!r}: use auto or fresh.")
        if output and not output.lower().endswith((".json", ".csv")):
            raise UsageError(f"--output {output}: use a .json or .csv file name.")
        if output:
            from dlcheck.output import check_writable

            check_writable(output, "--output")
        if baseline:
            from dlcheck.profile.run import load_baseline

            load_baseline(baseline)  # a bad file is a usage error before minutes of sweeping
        if plot:
            from dlcheck.profile.plot import check_plot_path

            check_plot_path(plot)
        opts = ProfileOptions(
            workers=_int_list(workers, "--workers"),
            batch_size=_int_list(batch_size, "--batch-size", minimum=1),
            pin_memory=pin_memory,
            prefetch=_int_list(prefetch, "--prefetch", minimum=1),
            persistent_workers=persistent_workers,
            start_method=start_method,
            duration=duration,
            stall_timeout=stall_timeout,
            need=need,
            budget=budget,
            max_workers=max_workers,
            min_throughput=min_throughput,
            baseline=baseline,
            tolerance=tolerance,
            strict=strict,
            output=output,
            isolation=isolation,
            max_memory=memory_cap,
            step=step,
            step_s=step_s,
        )
        for flag in (opts.pin_memory, opts.persistent_workers):
            if flag is not None and flag.lower() not in ("on", "off", "both"):
                raise UsageError(f"Expected on, off or both, got {flag!r}.")
        from dlcheck.cliutil import detect_launch

        launch = detect_launch()
        if launch is not None:
            if plot:
                raise UsageError("--plot is not available under a launcher yet.")
            view = _View(json_out, verbose, wide, raw)
            code = _run_distributed(launch, target, opts, dist_timeout, view)
            raise typer.Exit(code)
        report = _run_with_progress(target, opts, verbose)
        if plot:
            from dlcheck.profile.plot import write_plot

            write_plot(report, plot)
        _show(report, _View(json_out, verbose, wide, raw))
    raise typer.Exit(report.exit_code)


@dataclass(frozen=True)
class _View:
    """How the report is shown: the output flags."""

    json_out: bool
    verbose: bool
    wide: bool
    raw: bool


def _run_distributed(
    launch: Any,
    target: str | None,
    opts: Any,
    dist_timeout: float | None,
    view: _View,
) -> int:
    """This rank's part of a torchrun/srun job; rank 0 renders the merged report."""
    from dlcheck.profile.ranks import run_profile_distributed

    verbose = view.verbose

    def render(merged: Any) -> None:
        _show(merged, view)
        if merged.lost and view.json_out:  # the table says so; with --json, on stderr too
            from dlcheck.cliutil import print_error
            from dlcheck.errors import DlcheckError

            print_error(DlcheckError(merged.lost["message"]), verbose=False)

    def rank_error(err: dict[str, Any]) -> None:
        from dlcheck.cliutil import print_rank_error

        print_rank_error(err, launch.rank, verbose)

    with _progress_display(opts) as progress:
        return run_profile_distributed(
            launch,
            target,
            opts,
            render,
            progress=progress if launch.is_root else None,
            dist_timeout=dist_timeout,
            report_error=rank_error,
        )


def _show(report: Any, view: _View) -> None:
    if view.json_out:
        from dlcheck.output import emit_json

        emit_json(report.to_dict(raw=view.raw))
        return
    import os
    import sys

    from dlcheck.output import console

    # Piped output (CI logs, files) is as wide as every column, unless COLUMNS says otherwise.
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    report.render(
        console(width=160 if piped else None), verbose=view.verbose, wide=view.wide or None
    )


def _run_with_progress(target: str | None, opts: Any, verbose: bool) -> Any:
    """Run the service under a Rich progress display on stderr (one line per finished setting)."""
    from dlcheck.profile.run import run_profile

    with _progress_display(opts) as progress:
        return run_profile(target, progress=progress, _opts=opts)


@contextlib.contextmanager
def _progress_display(opts: Any) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A Rich progress display on stderr; yields the callback for the service's events."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dlcheck.output import console

    err = console(stderr=True)
    steady_goal = opts.duration
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("resolving TARGET", total=None)
        count = {"n": 0}

        def progress(ev: dict[str, Any]) -> None:
            kind = ev["type"]
            if kind == "start":
                count["n"] += 1
                s = ev["setting"]
                again = f" (repeat {ev['round']})" if ev.get("round") else ""
                bar.update(
                    task,
                    description=f"#{count['n']} {s.label()}{again}: starting",
                    total=steady_goal or None,
                    completed=0,
                )
            elif kind == "batch" and ev.get("phase") == "batch":
                s = ev["setting"]
                bar.update(
                    task,
                    description=f"#{count['n']} {s.label()}: {ev.get('batches', 0)} batches",
                    completed=min(float(ev.get("steady_s") or 0.0), steady_goal or 1e9),
                )
            elif kind == "output":
                # The user's own prints and warnings, each distinct line once, as printed.
                bar.console.print(
                    f"  │ {ev['line']}", markup=False, highlight=False, soft_wrap=True, style="dim"
                )
            elif kind == "done":
                r = ev["result"]
                label = escape(r.setting.label())
                if r.ok:
                    st = r.stats
                    lp = r.loop
                    rate = f"{r.samples_per_s:>8,.0f} samples/s"
                    waits = ""
                    if lp is not None and lp.input_bound is not None:
                        # Within 80 columns: the loop's share takes the unit's place.
                        rate = f"{r.samples_per_s:>8,.0f}/s"
                        waits = f", waits {100 * lp.input_bound:.0f}%"
                    bar.console.print(
                        f"  [green]✓[/] {label:<28} {rate}, "
                        f"1st batch {st.first_batch_s or 0:.2f}s{waits}",
                        highlight=False,
                    )
                else:
                    bar.console.print(
                        f"  [red]✗[/] {label:<28} {escape(r.error or 'failed')}", highlight=False
                    )
            elif kind == "ranks_done":
                a = ev.get("aggregate") or {}
                label = ev["setting"].label()
                if a.get("failed_ranks") or a.get("missing_ranks"):
                    bad = "; ".join(f"rank {k}: {m}" for k, m in a.get("failed_ranks", {}).items())
                    bar.console.print(f"  [red]✗[/] {label:<28} {bad}", highlight=False)
                elif a:
                    bar.console.print(
                        f"  [green]✓[/] {label:<24} {a['aggregate_samples_per_s']:>10,.0f}/s "
                        f"all ranks, slowest rank {a['slowest_rank']} "
                        f"{a['slowest_samples_per_s']:,.0f}/s",
                        highlight=False,
                    )

        yield progress
