"""dlcheck: check a PyTorch install, then profile and debug your own Dataset/DataLoader.

The public API is imported lazily so that ``import dlcheck`` (and ``dlcheck --help``) never
imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "doctor", "env", "profile", "trace", "watch"]

if TYPE_CHECKING:  # pragma: no cover
    from dlcheck.api import doctor, env, profile, trace, watch


def __getattr__(name: str) -> Any:
    if name in {"env", "profile", "doctor", "trace", "watch"}:
        from dlcheck import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlcheck' has no attribute {name!r}")
