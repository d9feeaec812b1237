"""`dlcheck profile`: measure a Dataset/DataLoader across settings and recommend one.

Importing this subpackage rebinds ``dlcheck.profile`` from the API function to this module, so
the module itself is made callable: ``dlcheck.profile(target, **options)`` keeps working
(it is :func:`dlcheck.profile.service.run_profile`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, target: Any = None, **options: Any) -> Any:
        from dlcheck.profile.service import run_profile

        return run_profile(target, **options)


sys.modules[__name__].__class__ = _CallableModule
