from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dlcheck import __version__
from dlcheck.cli import app


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from dlcheck.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='dlcheck')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'numpy', 'pynvml'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_subcommand_help_does_not_import_torch() -> None:
    for cmd in ("env", "profile", "doctor", "trace"):
        code = (
            "import sys\n"
            "from dlcheck.cli import app\n"
            "try:\n"
            f"    app(['{cmd}', '--help'], prog_name='dlcheck')\n"
            "except SystemExit:\n"
            "    pass\n"
            "assert 'torch' not in sys.modules, cmd\n"
        )
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dlcheck", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_bad_option_is_usage_error() -> None:
    result = CliRunner().invoke(app, ["env", "--no-such-option"])
    assert result.exit_code == 2


def test_error_text_is_not_read_as_rich_markup(capsys: pytest.CaptureFixture[str]) -> None:
    from dlcheck.cliutil import print_error
    from dlcheck.errors import UsageError

    print_error(UsageError("bad [bold]x[/bold]", "pip install 'dlcheck[plot]'"))
    err = capsys.readouterr().err
    assert "dlcheck[plot]" in err and "[bold]x[/bold]" in err
