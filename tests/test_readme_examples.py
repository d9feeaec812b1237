"""Every README example a test can run is run by a test (issue 8).

The shell examples are the lines of the README's fenced ``bash`` blocks. Each ``dlcheck …``
line runs as ``python -m dlcheck …`` in a temporary directory holding the README's own
``data.py`` snippet, and must exit with the code the README claims: 0, unless the line's
comment says ``exit N``. Lines that cannot run here are listed below with the reason; a line
that is neither runnable nor listed fails the test, so a new example is never silently
skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Lines starting with these are never run by this test.
SKIP_PREFIXES = {
    "python -m venv ": "README commands 1 and 2 build a fresh environment: .ci/run runs them",
    "pip install ": "installs packages",
    "python -m pytest": "the test suite itself",
    "ruff ": "the linter: .ci/run runs it",
    "bash .ci/run": "CI itself",
    "torchrun ": "needs a launcher: tests/test_dist_*.py cover launches",
    "srun ": "needs SLURM",
    "sbatch ": "needs SLURM",
}

# dlcheck lines that are not run here, each with its reason.
SKIP = {
    "dlcheck profile": "the built-in demo (about 30 s): .ci/run runs it as README command 1",
    "dlcheck trace trace.json": "needs a torch.profiler trace file: tests/test_trace.py",
}

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
_PY_SNIPPET = re.compile(r"^# (\S+\.py)\n")
_EXIT_CLAIM = re.compile(r"\bexits? (\d+)\b")


def _blocks(lang: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [body for tag, body in _FENCE.findall(text) if tag == lang]


def _shell_examples() -> list[tuple[str, str]]:
    """(command, comment) for every command line of the bash blocks."""
    examples = []
    for body in _blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", body)  # continuation lines
        for line in joined.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            command, _, comment = line.partition(" # ")
            examples.append((command.strip(), comment.strip()))
    return examples


def _skip_reason(command: str) -> str | None:
    if command in SKIP:
        return SKIP[command]
    for prefix, reason in SKIP_PREFIXES.items():
        if command.startswith(prefix):
            return reason
    return None


def _runnable() -> list[tuple[str, str]]:
    return [
        (c, comment)
        for c, comment in _shell_examples()
        if c.startswith("dlcheck ") and _skip_reason(c) is None
    ]


def test_every_example_is_run_or_skipped_with_a_reason() -> None:
    unclassified = [
        c for c, _ in _shell_examples() if not c.startswith("dlcheck ") and _skip_reason(c) is None
    ]
    assert not unclassified, f"README lines neither run nor in the skip lists: {unclassified}"
    assert _runnable(), "no runnable dlcheck example found in README.md"


def test_skip_list_is_current() -> None:
    commands = {c for c, _ in _shell_examples()}
    stale = sorted(set(SKIP) - commands)
    assert not stale, f"SKIP names lines the README no longer has: {stale}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the files the README shows (``# data.py`` snippets)."""
    d = tmp_path_factory.mktemp("readme")
    for body in _blocks("python"):
        m = _PY_SNIPPET.match(body)
        if m:
            (d / m.group(1)).write_text(body, encoding="utf-8")
    return d


@pytest.mark.parametrize(("command", "comment"), _runnable(), ids=[c for c, _ in _runnable()])
def test_readme_example_runs(command: str, comment: str, workdir: Path) -> None:
    args = shlex.split(command)
    for arg in args:
        if ".py:" in arg:
            path = arg.split(":", 1)[0]
            assert (workdir / path).exists(), f"README shows no `# {path}` snippet for {command}"
    claim = _EXIT_CLAIM.search(comment)
    expected = int(claim.group(1)) if claim else 0
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", "dlcheck", *args[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == expected, (
        f"`{command}` exited {result.returncode}, the README says {expected}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
