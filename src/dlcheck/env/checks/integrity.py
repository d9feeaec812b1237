"""Environment integrity: one copy of each package, and torch from the active environment."""

from __future__ import annotations

import os
from typing import Any

from dlcheck.env.checks.base import (
    TORCH_FAMILY,
    V,
    Verdict,
    check,
    group,
    is_relevant,
    torch_ok,
    torch_skip,
)
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("integrity", "Environment integrity")


def _public(version: str) -> str:
    return version.split("+", 1)[0]


@check("integrity.duplicates", "One copy of each package on sys.path", "dists", "torch")
def _duplicates(f: EnvFacts) -> Verdict:
    d = f.dists
    assert d is not None
    t = torch_ok(f)
    problems: list[str] = []
    copies: dict[str, list[str]] = {}
    severe = False
    names = sorted({x.name for x in d.dists if is_relevant(x.name)})
    for name in names:
        dists = d.all_named(name)
        if len(dists) < 2:
            continue
        listed = [f"{x.version} at {x.location}" for x in dists]
        copies[name] = listed
        problems.append(f"{name}: " + ", ".join(listed))
        if len({x.version for x in dists}) > 1 and name in TORCH_FAMILY:
            severe = True
    mismatch = None
    first = d.get("torch")
    # Compare public versions: wheels from download.pytorch.org record "2.11.0" in their
    # metadata while torch.__version__ says "2.11.0+cu130".
    if (
        t is not None
        and first is not None
        and t.version
        and _public(first.version) != _public(t.version)
    ):
        mismatch = (
            f"the torch metadata pip sees says {first.version} ({first.location}) but the "
            f"imported torch is {t.version} ({t.file})"
        )
        severe = True
    if not problems and not mismatch:
        return V(Status.PASS, "one distribution of torch and each domain library")
    summary = "; ".join(([mismatch] if mismatch else []) + problems)
    return V(
        Status.FAIL if severe else Status.WARN,
        "more than one installed copy: " + summary,
        "Keep one copy: remove the stale ones (each is a *.dist-info directory at the location "
        "shown: `python -m pip uninstall NAME` removes the first one on sys.path; check "
        "PYTHONPATH and ~/.local), then reinstall from one source (pip or conda, not both).",
        copies=copies,
        metadata_mismatch=mismatch,
    )


@check("integrity.torch_location", "torch comes from the active environment", "python", "torch")
def _torch_location(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    t = torch_ok(f)
    if t is None or not t.file:
        return torch_skip(f)
    where = os.path.abspath(t.file)

    def inside(root: str | None) -> bool:
        return bool(root) and where.startswith(os.path.join(os.path.abspath(str(root)), ""))

    facts: dict[str, Any] = {"torch_file": t.file, "prefix": p.prefix, "user_site": p.user_site}
    if inside(p.user_site):
        return V(
            Status.WARN,
            f"torch is imported from the user site ({p.user_site}), shadowing the environment's",
            "`python -m pip uninstall torch` (run it outside the env to remove the ~/.local copy),"
            " or set PYTHONNOUSERSITE=1.",
            **facts,
        )
    if inside(p.prefix):
        return V(Status.PASS, f"torch is imported from {os.path.dirname(t.file)}", **facts)
    if p.venv and inside(p.base_prefix):
        return V(
            Status.WARN,
            f"torch is imported from the base interpreter ({p.base_prefix}), not the venv",
            "Install torch into the venv, or recreate it without --system-site-packages.",
            **facts,
        )
    return V(
        Status.WARN,
        f"torch is imported from outside the active environment: {os.path.dirname(t.file)}",
        "Remove that directory from PYTHONPATH (or sys.path tweaks) and install torch into "
        f"{p.prefix}.",
        **facts,
    )
