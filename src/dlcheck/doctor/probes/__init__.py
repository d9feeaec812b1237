"""The doctor probes, one module each: spec, typed facts, collector and judge together.

Adding a probe is adding a file here; discovery registers it (run in ``SPEC.run_order``,
listed in ``SPEC.list_order``). A probe module holds, importable with the stdlib only (the
CLI lists probes at --help time; heavy imports go inside the functions):

- ``SPEC``: a :class:`dlcheck.doctor.spec.ProbeSpec` whose id is the module name;
- ``FACTS``: the frozen dataclass of its facts, with an ``example()``; its ``to_dict()`` and
  ``from_dict()`` come from :class:`dlcheck.doctor.probe_facts.ProbeFacts`;
- ``collect(ctx, send) -> dict``: runs in the child, returns ``FACTS(...).to_dict()``;
- ``judge(facts, extra) -> list[Finding]``: pure, reads ``FACTS.from_dict(facts)``.

and, where the probe needs them, hooks the runner and the judgement look up:

- ``bounded_by_progress(ctx) -> bool``: bound this run by progress (a stall) instead of
  total time (``corrupt_samples --scan``);
- ``REPORTS_DATASET_EXCEPTIONS = True``: this probe's failure is the root cause that other
  probes' identical dataset exceptions defer to
  (:func:`dlcheck.doctor.judge.dedupe_dataset_exceptions`).

What the probes share stays in :mod:`dlcheck.doctor.facts` (child side: the context, loader
rebuilding, sample helpers, the attribute walk) and :mod:`dlcheck.doctor.judge` (findings,
sizes, loader errors).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType


@functools.cache
def probe_modules() -> tuple[ModuleType, ...]:
    """Every probe module of this package (names not starting with ``_``), by run order."""
    mods = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return tuple(sorted(mods, key=lambda m: m.SPEC.run_order))


def probe_module(probe_id: str) -> ModuleType:
    """The module of probe ``probe_id``."""
    return next(m for m in probe_modules() if m.SPEC.id == probe_id)
