"""Doctor probes that are one module each: spec, typed facts, collector and judge together.

Adding such a probe is adding a file here; discovery registers it (ordered by its
``SPEC.run_order``). A probe module holds, importable with the stdlib only (the CLI lists
probes at --help time; heavy imports go inside the functions):

- ``SPEC``: a :class:`dlcheck.doctor.spec.ProbeSpec` whose id is the module name;
- ``FACTS``: the frozen dataclass of its facts, with ``to_dict()`` and ``from_dict()``;
- ``collect(ctx, send) -> dict``: runs in the child, returns ``FACTS(...).to_dict()``;
- ``judge(facts, extra) -> list[Finding]``: pure, reads ``FACTS.from_dict(facts)``.
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
