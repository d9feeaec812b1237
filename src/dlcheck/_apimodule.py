"""Let a command's subpackage double as its API function.

``dlcheck.env``, ``dlcheck.profile`` and ``dlcheck.doctor`` are both subpackages and the API
functions of the same names. Once any submodule is imported, Python binds the subpackage to
that attribute of ``dlcheck``, hiding the function; making the package callable keeps
``dlcheck.profile(...)`` working either way.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(package: str, service: str) -> None:
    """Make module ``package`` callable as ``service`` ("module:function"), lazily imported."""
    module_name, _, func_name = service.partition(":")

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(module_name), func_name)(*args, **kwargs)

    _CallableModule.__call__.__doc__ = f"Same as {service.replace(':', '.')}."
    sys.modules[package].__class__ = _CallableModule
