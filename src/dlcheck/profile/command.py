"""`dlcheck profile` command (placeholder until implemented)."""

from __future__ import annotations

import typer

from dlcheck.cliutil import JSON_OPTION


def profile_command(
    target: str = typer.Argument(None, help="module:attr or file.py:attr"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Measure a Dataset/DataLoader across settings and recommend the best."""
    raise typer.Exit(0)
