"""`dlcheck env`: parse options, run the checks, render. Heavy imports happen inside."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

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
from dlcheck.env.collect_torch import prestart_for_cli

if TYPE_CHECKING:
    from dlcheck.env.records import DistEnvReport, EnvReport

# `import torch` is the slow part of `dlcheck env`: start it now, before Typer parses argv.
prestart_for_cli(sys.argv)


def env_command(
    json_out: bool = JSON_OPTION,
    markdown: bool = typer.Option(
        False, "--markdown", help="Print a Markdown block for a bug report (no user/host names)."
    ),
    verbose: bool = VERBOSE_OPTION,
    strict: bool = STRICT_OPTION,
    list_checks: bool = typer.Option(False, "--list-checks", help="List the check ids and exit."),
    check: list[str] = typer.Option(
        [],
        "--check",
        metavar="ID",
        help="Run only this check (repeatable); a group name (e.g. host) runs the group.",
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Import every installed domain library (finds any import error; seconds each). "
        "By default torchvision/torchaudio/torchtext are checked by loading their C++ extension.",
    ),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        metavar="SECONDS",
        min=0.1,
        help="Limit for `import torch` in the child process (slow filesystems need more).",
    ),
    dist_timeout: float | None = DIST_TIMEOUT_OPTION,
) -> None:
    """Check Python, PyTorch, CUDA, the driver, GPUs, libraries and host limits.

    Every check gives a verdict and, when something is wrong, the fix. Under torchrun, srun or
    any launcher that sets RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, every rank checks itself and
    rank 0 prints one report for the whole job.
    Exit codes: 0 nothing failed, 1 a check failed (or warned, with --strict), 2 usage error.
    """
    from dlcheck.errors import UsageError

    with handle_errors(verbose):
        if json_out and markdown:
            raise UsageError("--json and --markdown cannot be combined.", "Pick one format.")
        launch = detect_launch()
        if list_checks:
            if launch is None or launch.is_root:  # one listing per job, not one per rank
                _list(json_out)
            return
        if launch is not None:
            from dlcheck.env.ranks import run_env_distributed

            code = run_env_distributed(
                launch,
                lambda rep: _render(rep, json_out=json_out, markdown=markdown, verbose=verbose),
                checks=check or None,
                timeout=timeout,
                deep=deep,
                strict=strict,
                dist_timeout=dist_timeout,
                report_error=lambda err: print_rank_error(err, launch.rank, verbose),
            )
            raise typer.Exit(code)
        from dlcheck.env.run import run_env

        report = run_env(checks=check or None, timeout=timeout, deep=deep, strict=strict)
        _render(report, json_out=json_out, markdown=markdown, verbose=verbose)
        code = report.exit_code
    raise typer.Exit(code)


def _list(json_out: bool) -> None:
    from dlcheck.env.render import list_checks_rows

    if json_out:
        from dlcheck.output import emit_json

        emit_json(
            {
                "schema": "dlcheck.env-checks/1",
                "checks": [{"id": i, "group": g, "title": t} for i, g, t in list_checks_rows()],
            }
        )
        return
    from dlcheck.env.render import render_list
    from dlcheck.output import console

    render_list(console())


def _render(
    report: EnvReport | DistEnvReport, *, json_out: bool, markdown: bool, verbose: bool
) -> None:
    from dlcheck.output import console, emit_json

    if json_out:
        emit_json(report.to_dict())
    elif markdown:
        from dlcheck.env.records import DistEnvReport
        from dlcheck.env.render import render_dist_markdown, render_markdown

        text = (
            render_dist_markdown(report, verbose=verbose)
            if isinstance(report, DistEnvReport)
            else render_markdown(report, verbose=verbose)
        )
        # Through the scrubbing console, so no secret can slip through; no wrapping.
        console(width=10_000).print(text, markup=False, highlight=False, end="")
    else:
        report.render(console(), verbose=verbose)
