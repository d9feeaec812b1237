"""dlcheck doctor: find the data-loading bugs that silently corrupt or slow training.

``dlcheck.doctor`` is both this package and the Python API function: once any submodule is
imported, Python binds the package to ``dlcheck.doctor`` and the lazy API attribute in
``dlcheck/__init__.py`` is bypassed. Making the package callable keeps ``dlcheck.doctor(obj)``
working either way.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, target: Any, **options: Any) -> Any:
        """Run the doctor probes on a TARGET string, Dataset or DataLoader; returns a report."""
        from dlcheck.doctor.service import run_doctor

        return run_doctor(target, **options)


sys.modules[__name__].__class__ = _CallableModule
