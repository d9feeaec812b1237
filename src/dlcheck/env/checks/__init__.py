"""The checks: pure functions from facts to a verdict. No I/O here.

One module per group, in the order the report shows them (:data:`GROUP_MODULES`); each holds
its checks, their fix texts and its helpers, and registers them with ``@check`` from
:mod:`.base` when imported. Each check has a stable id (``group.name``), declares the probes it
needs, and returns a :class:`Check` whose ``facts`` are the values it looked at.

A new check goes into its group's module; a new group is a new module (it calls
:func:`~.base.group` once) named in :data:`GROUP_MODULES` where the report should show it.
"""

from __future__ import annotations

import importlib

from dlcheck.env.checks.base import (
    GROUPS,
    PYTORCH_INSTALL,
    REGISTRY,
    RELEVANT,
    SPECS,
    TORCH_FAMILY,
    Check,
    CheckFn,
    CheckSpec,
    V,
    Verdict,
    check,
    cudnn_text,
    group,
    is_relevant,
    skip,
)
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

#: The group modules, in report order: importing them registers their checks (once).
GROUP_MODULES: tuple[str, ...] = (
    "python_env",
    "torch_build",
    "integrity",
    "nvidia_driver",
    "cuda_layers",
    "cuda_toolkit",
    "domain_libs",
    "jupyter_kernels",
    "host_limits",
    "env_vars",
)
for _name in GROUP_MODULES:
    importlib.import_module(f"{__name__}.{_name}")

# What the other env modules and the tests use; a group's own helpers stay in its module.
__all__ = [
    "GROUPS",
    "GROUP_MODULES",
    "PYTORCH_INSTALL",
    "REGISTRY",
    "RELEVANT",
    "SPECS",
    "TORCH_FAMILY",
    "Check",
    "CheckFn",
    "CheckSpec",
    "V",
    "Verdict",
    "check",
    "cudnn_text",
    "evaluate",
    "group",
    "is_relevant",
    "needed_probes",
    "select",
]


def select(ids: list[str] | None) -> list[CheckSpec]:
    """The specs named by ``ids`` (exact ids or group names), in registry order.

    Raises KeyError with the unknown names.
    """
    if not ids:
        return list(REGISTRY)
    wanted: set[str] = set()
    unknown = []
    for raw in ids:
        key = raw.strip()
        if key in SPECS:
            wanted.add(key)
        elif any(s.group == key for s in REGISTRY):
            wanted.update(s.id for s in REGISTRY if s.group == key)
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(unknown)
    return [s for s in REGISTRY if s.id in wanted]


def needed_probes(specs: list[CheckSpec]) -> set[str]:
    return {n for s in specs for n in s.probes}


def _run_one(spec: CheckSpec, facts: EnvFacts) -> Check:
    missing = [n for n in spec.required if getattr(facts, n) is None]
    if missing:
        v = skip(f"not checked: {', '.join(missing)} facts not collected")
    else:
        try:
            v = spec.fn(facts)
        except Exception as exc:  # a bug in a check must not hide the others
            v = Verdict(Status.ERROR, f"the check itself failed: {type(exc).__name__}: {exc}")
    return Check(
        id=spec.id,
        group=spec.group,
        title=spec.title,
        status=v.status,
        summary=v.summary,
        fix=v.fix,
        facts=v.facts,
        detail=v.detail,
    )


def evaluate(facts: EnvFacts, ids: list[str] | None = None) -> list[Check]:
    """Run the selected checks (all by default) over ``facts``."""
    return [_run_one(s, facts) for s in select(ids)]
