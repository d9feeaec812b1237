"""Shared helpers for the profile tests: run the CLI for real and check nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MARKER_ENV = "DLCHECK_PROFILE_TEST_MARKER"


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    marker: str
    shm_new: set[str]


def shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def env_for(marker: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env[MARKER_ENV] = marker
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), str(HERE), env.get("PYTHONPATH", "")) if p
    )
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    env.pop("DLCHECK_FAKE_CUDA", None)
    env.update(extra or {})
    return env


def run_cli(
    args: list[str], *, extra_env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    marker = uuid.uuid4().hex
    before = shm_entries()
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "dlcheck", "profile", *args],
        capture_output=True,
        text=True,
        env=env_for(marker, extra_env),
        cwd=HERE,
        timeout=timeout,
    )
    return Run(
        args,
        out.returncode,
        out.stdout,
        out.stderr,
        time.monotonic() - t,
        marker,
        leaked_shm(before),
    )


def _mapped_shm() -> set[str]:
    """/dev/shm names some live process still maps (in use, e.g. by a concurrent run)."""
    names = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as f:
            for line in f:
                if "/dev/shm/" in line:
                    names.add(line.rsplit("/dev/shm/", 1)[1].split()[0])
    return names


def leaked_shm(before: set[str]) -> set[str]:
    """New torch/multiprocessing /dev/shm entries that nothing alive uses any more (leaked).

    Entries still mapped by a live process belong to something running concurrently (other
    runs, other test suites) and are not ours to judge.
    """
    new = {n for n in shm_entries() - before if n.startswith(("torch_", "sem.mp-"))}
    if not new:
        return set()
    time.sleep(0.2)
    new &= shm_entries()
    in_use = _mapped_shm()
    leaked = set()
    for name in new - in_use:
        if name.startswith("torch_"):
            try:
                pid = int(name.split("_")[1])
            except (IndexError, ValueError):
                continue
            if psutil.pid_exists(pid):
                continue
        leaked.add(name)
    return leaked


def leftovers(marker: str, wait_s: float = 3.0) -> list[str]:
    """Processes still alive that carry this run's marker (dlcheck children, their workers)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, OSError):
                if p.environ().get(MARKER_ENV) == marker and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(f"{p.pid}: {' '.join(p.info['cmdline'] or [])}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
