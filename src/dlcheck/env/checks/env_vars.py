"""Environment variables that change what PyTorch and CUDA do."""

from __future__ import annotations

from typing import Any

from dlcheck.env.checks.base import V, Verdict, check, group
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("envvars", "Environment variables")


@check("envvars.relevant", "Relevant environment variables", "envvars")
def _envvars(f: EnvFacts) -> Verdict:
    e = f.envvars
    assert e is not None
    facts: dict[str, Any] = {"variables": dict(e.variables)}
    if e.get("CUDA_LAUNCH_BLOCKING") == "1":
        return V(
            Status.WARN,
            "CUDA_LAUNCH_BLOCKING=1 makes every CUDA call synchronous (for debugging only: slow)",
            "`unset CUDA_LAUNCH_BLOCKING` outside debugging sessions.",
            **facts,
        )
    if not e.variables:
        return V(Status.INFO, "none of the relevant variables is set", **facts)
    return V(Status.INFO, "set: " + ", ".join(n for n, _ in e.variables), **facts)
