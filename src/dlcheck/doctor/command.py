"""`dlcheck doctor` command (placeholder until implemented)."""

from __future__ import annotations

import typer

from dlcheck.cliutil import JSON_OPTION


def doctor_command(
    target: str = typer.Argument(..., help="module:attr or file.py:attr"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Find data-loading bugs that silently corrupt or slow training."""
    raise typer.Exit(0)
