"""dlcheck env: the install checker (probes → checks → renderers).

``dlcheck.env`` is both this package and the Python API function: once any ``dlcheck.env.*``
module is imported, Python binds the package to the ``env`` attribute of ``dlcheck``, hiding
the API function. Making the package callable keeps ``dlcheck.env(...)`` working either way.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, **options: Any) -> Any:
        """Run the `dlcheck env` checks and return the EnvReport (same as dlcheck.api.env)."""
        from dlcheck.env.service import run_env

        return run_env(**options)


sys.modules[__name__].__class__ = _CallableModule
