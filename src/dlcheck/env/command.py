"""`dlcheck env`: parse options, run the checks, render. Heavy imports happen inside."""

from __future__ import annotations

import sys

import typer

from dlcheck.cliutil import JSON_OPTION, STRICT_OPTION, VERBOSE_OPTION, handle_errors
from dlcheck.env.torchprobe import prestart_for_cli

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
) -> None:
    """Check Python, PyTorch, CUDA, the driver, GPUs, libraries and host limits.

    Every check gives a verdict and, when something is wrong, the fix.
    Exit codes: 0 nothing failed, 1 a check failed (or warned, with --strict), 2 usage error.
    """
    from dlcheck.errors import UsageError

    with handle_errors(verbose):
        if json_out and markdown:
            raise UsageError("--json and --markdown cannot be combined.", "Pick one format.")
        if list_checks:
            _list(json_out)
            return
        from dlcheck.env.service import run_env

        report = run_env(checks=check or None, timeout=timeout, deep=deep)
        _render(report, json_out=json_out, markdown=markdown, verbose=verbose, strict=strict)
        code = report.exit_code(strict)
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


def _render(report, *, json_out: bool, markdown: bool, verbose: bool, strict: bool) -> None:  # type: ignore[no-untyped-def]
    from dlcheck.output import console, emit_json

    if json_out:
        emit_json(report.to_dict(strict=strict))
    elif markdown:
        from dlcheck.env.render import render_markdown

        # Through the scrubbing console, so no secret can slip through; no wrapping.
        console(width=10_000).print(
            render_markdown(report, verbose=verbose), markup=False, highlight=False, end=""
        )
    else:
        from dlcheck.env.render import render_console

        render_console(report, console(), verbose=verbose)
