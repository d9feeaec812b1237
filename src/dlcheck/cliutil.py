"""Shared plumbing for the Typer commands: error display, exit codes, common options."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import typer

from dlcheck.errors import DlcheckError
from dlcheck.exitcodes import ExitCode

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout.")
STRICT_OPTION = typer.Option(False, "--strict", help="Treat warnings as failures (exit 1).")
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="Show every fact and tracebacks.")
DIST_TIMEOUT_OPTION = typer.Option(
    None,
    "--dist-timeout",
    metavar="SECONDS",
    min=0.1,
    help="Under torchrun/srun: how long to wait for a rank that does not arrive or goes "
    "silent before reporting it (default: $DLCHECK_DIST_TIMEOUT or 60).",
)


def print_error(exc: DlcheckError, *, verbose: bool = False) -> None:
    from rich.markup import escape

    from dlcheck.output import console

    err = console(stderr=True)
    # escape(): messages quote user text and commands such as `pip install 'dlcheck[plot]'`.
    # soft_wrap: one message is one line (the terminal wraps it), so a log or `grep` keeps
    # a path or command whole.
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
    if verbose and exc.detail:
        err.print(exc.detail, markup=False, highlight=False, soft_wrap=True)  # as is, unwrapped


@contextlib.contextmanager
def handle_errors(verbose: bool = False) -> Iterator[None]:
    """Turn user-caused failures into one message + exit code; Ctrl-C into exit 130."""
    try:
        yield
    except DlcheckError as exc:
        print_error(exc, verbose=verbose)
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def detect_launch() -> Any:
    """The launch this rank belongs to (torchrun, srun, RANK/WORLD_SIZE), or None.

    Without the variables a launcher sets, skip importing dlcheck.ranks entirely: the
    single-process path stays as fast as it was.
    """
    import os

    if not any(name in os.environ for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID")):
        return None
    from dlcheck.ranks.launch import detect_launch as _detect

    return _detect()


def print_rank_error(error: dict[str, Any], rank: int, verbose: bool) -> None:
    """This rank's own failure, on its own stderr (rank 0 names it in the report)."""
    exc = DlcheckError(
        f"rank {rank}: {error.get('message')}", error.get("hint"), detail=error.get("detail")
    )
    print_error(exc, verbose=verbose)
