"""dlcheck env: the install checker (probes → checks → renderers)."""

from __future__ import annotations

from dlcheck._apimodule import make_callable

make_callable(__name__, "dlcheck.env.run:run_env")
