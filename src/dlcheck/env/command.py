"""`dlcheck env` command (placeholder until implemented)."""

from __future__ import annotations

import typer

from dlcheck.cliutil import JSON_OPTION


def env_command(json_out: bool = JSON_OPTION) -> None:
    """Check Python, PyTorch, CUDA, the driver, GPUs, libraries and host limits."""
    raise typer.Exit(0)
