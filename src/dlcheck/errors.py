"""Errors a user can cause. Each carries one sentence of what happened and one of what to do."""

from __future__ import annotations

from dlcheck.exitcodes import ExitCode


class DlcheckError(Exception):
    """A failure shown to the user as a message (never a traceback) with an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None, *, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # A traceback or other long text, shown only with -v.
        self.detail = detail


class UsageError(DlcheckError):
    """Bad option or a TARGET that cannot be resolved: exit 2."""

    exit_code = ExitCode.USAGE


class TorchMissingError(DlcheckError):
    """The command needs torch and it is not importable."""

    exit_code = ExitCode.USAGE

    def __init__(self, command: str, cause: str | None = None):
        msg = f"`dlcheck {command}` needs PyTorch, which is not importable here"
        if cause:
            msg += f" ({cause})"
        super().__init__(
            msg + ".",
            "Install it for your platform (https://pytorch.org/get-started/locally/), "
            "or `pip install 'dlcheck[torch]'`; run `dlcheck env` to see what is wrong.",
        )
