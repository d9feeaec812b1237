"""`dlcheck trace`: parse options, call the service, render. (No torch at import time.)"""

from __future__ import annotations

from pathlib import Path

import typer

from dlcheck.cliutil import JSON_OPTION, STRICT_OPTION, VERBOSE_OPTION, handle_errors


def trace_command(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="Chrome traces written by prof.export_chrome_trace (.json or .json.gz), one per rank.",
        show_default=False,
    ),
    max_input_bound: float = typer.Option(
        None,
        "--max-input-bound",
        metavar="SHARE",
        help="CI: exit 1 if any rank's input-bound share is above SHARE (e.g. 0.05).",
    ),
    strict: bool = STRICT_OPTION,
    json_out: bool = JSON_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """How input-bound a training loop was, from torch.profiler traces.

    Share: time inside the DataLoader's next() (and blocking host-to-device
    copies) over the wall time of the ProfilerStep#N spans.
    Tiers: not (<5%), moderately (5-20%), highly (>=20%); the last two warn.

    Exit codes: 0 ok, 1 above --max-input-bound (or a warning with --strict),
    2 unreadable file or no steps/DataLoader spans in it, 130 interrupted.
    """
    with handle_errors(verbose):
        from dlcheck.trace.run import run_trace

        report = run_trace(files, max_input_bound=max_input_bound, strict=strict)
        if json_out:
            from dlcheck.output import emit_json

            emit_json(report.to_dict())
        else:
            import sys

            from dlcheck.output import console

            report.render(console(width=None if sys.stdout.isatty() else 80))
    raise typer.Exit(report.exit_code)
