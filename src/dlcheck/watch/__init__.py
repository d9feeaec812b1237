"""dlcheck watch: time the wait for data inside your own training loop."""

from __future__ import annotations

from dlcheck._apimodule import make_callable

make_callable(__name__, "dlcheck.watch.core:watch")
