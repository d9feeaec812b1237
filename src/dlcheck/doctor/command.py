"""`dlcheck doctor`: find the data-loading bugs that silently corrupt or slow training."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import typer

from dlcheck.cliutil import (
    DIST_TIMEOUT_OPTION,
    JSON_OPTION,
    STRICT_OPTION,
    VERBOSE_OPTION,
    detect_launch,
    handle_errors,
    print_rank_error,
)


def doctor_command(
    target: str = typer.Argument(
        None,
        help="module:attr or path/to/file.py:attr — a Dataset, IterableDataset, DataLoader "
        "or a zero-argument factory returning one.",
        show_default=False,
    ),
    probe: list[str] = typer.Option(
        None, "--probe", "-p", help="Run only this probe (repeatable; see --list-probes)."
    ),
    list_probes: bool = typer.Option(False, "--list-probes", help="List the probes and exit."),
    scan: bool = typer.Option(
        False, "--scan", help="Check every sample (in parallel, with a progress bar)."
    ),
    workers: int = typer.Option(2, "--workers", "-w", help="Workers the probes use.", min=1),
    world_size: int = typer.Option(
        None,
        "--world-size",
        help="Simulate N distributed ranks and audit their shards (overlap, coverage, lengths).",
        show_default=False,
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", help="Seconds each probe may take before it counts as hung."
    ),
    dist_timeout: float | None = DIST_TIMEOUT_OPTION,
    strict: bool = STRICT_OPTION,
    json_out: bool = JSON_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Find data-loading bugs that silently corrupt or slow training.

    Each probe runs in its own child process with a timeout; exit 0 when nothing failed,
    1 when a probe failed (or warned, with --strict), 2 for usage errors. Under torchrun, srun
    or any launcher that sets RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, every rank reads its own
    shard, rank 0 runs the probes and prints one report for the whole job.
    """
    from dlcheck.output import console, emit_json

    with handle_errors(verbose):
        from dlcheck.doctor import render

        launch = detect_launch()
        if list_probes:
            if launch is not None and not launch.is_root:  # one listing per job
                raise typer.Exit(0)
            if json_out:
                emit_json(render.probe_list_doc())
            else:
                render.render_probe_list(console())
            raise typer.Exit(0)
        if not target:
            from dlcheck.errors import UsageError

            raise UsageError(
                "Missing TARGET.",
                "Give the dataset or loader to check, e.g. `dlcheck doctor data.py:train_loader`.",
            )
        err = console(stderr=True)
        if launch is not None:
            from dlcheck.doctor.ranks import run_doctor_distributed

            with _progress(err, scan and launch.is_root, launch.is_root) as on_progress:
                code = run_doctor_distributed(
                    launch,
                    target,
                    lambda report: _render(report, json_out=json_out, verbose=verbose),
                    probes=probe or None,
                    scan=scan,
                    workers=workers,
                    world_size=world_size,
                    timeout=timeout,
                    strict=strict,
                    verbose=verbose,
                    dist_timeout=dist_timeout,
                    on_progress=on_progress,
                    report_error=lambda e: print_rank_error(e, launch.rank, verbose),
                )
            raise typer.Exit(code)
        from dlcheck.doctor.run import run_doctor, validate_probes

        validate_probes(probe)
        with _progress(err, scan) as on_progress:
            report = run_doctor(
                target,
                probes=probe or None,
                scan=scan,
                workers=workers,
                world_size=world_size,
                timeout=timeout,
                strict=strict,
                verbose=verbose,
                on_progress=on_progress,
            )
        _render(report, json_out=json_out, verbose=verbose)
        raise typer.Exit(report.exit_code)


def _render(report: Any, *, json_out: bool, verbose: bool) -> None:
    from dlcheck.output import console, emit_json

    if json_out:
        emit_json(report.to_dict())
    else:
        report.render(console(), verbose=verbose)


@contextlib.contextmanager
def _progress(
    err: Any, scan: bool, show: bool = True
) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """An on_progress callback: a progress bar for --scan, a transient status on a terminal."""
    if not show or not (scan or err.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=not scan,
    )
    task = progress.add_task("loading target", total=None)

    def on_progress(ev: dict[str, Any]) -> None:
        kind = ev.get("kind")
        if kind == "output":  # the user's own print or warning, as printed
            progress.console.print(
                f"  │ {ev['line']}", markup=False, highlight=False, soft_wrap=True, style="dim"
            )
        elif kind == "probe_start":
            progress.update(task, description=f"probe {ev['probe']}", total=None, completed=0)
        elif kind == "rank_start":
            progress.update(task, description=f"shard audit: rank {ev['rank']}")
        elif kind == "progress" and ev.get("probe") == "corrupt_samples":
            progress.update(
                task,
                description="scanning samples",
                completed=ev.get("done") or 0,
                total=ev.get("total"),
            )

    with progress:
        yield on_progress
