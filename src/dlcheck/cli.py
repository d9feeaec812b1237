"""The `dlcheck` command line. Thin: parse options, call a service, render.

Command modules are imported here for --help, so they must not import torch (tested).
"""

from __future__ import annotations

import typer

from dlcheck import __version__
from dlcheck.doctor.command import doctor_command
from dlcheck.env.command import env_command
from dlcheck.profile.command import profile_command
from dlcheck.trace.command import trace_command

app = typer.Typer(
    name="dlcheck",
    help="Check a PyTorch install, then profile and debug your own Dataset/DataLoader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Exit codes: 0 ok (warnings allowed), 1 something failed, 2 usage error, 130 interrupted."""


app.command("env")(env_command)
app.command("profile")(profile_command)
app.command("doctor")(doctor_command)
app.command("trace")(trace_command)


def main() -> None:
    import os

    # Click exits 2 on usage errors already; everything else is mapped in each command.
    app(prog_name=os.environ.get("DLCHECK_PROG_NAME", "dlcheck"))
