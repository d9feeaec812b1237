"""dlcheck trace: how input-bound a loop was, read from torch.profiler Chrome traces."""

from __future__ import annotations

from dlcheck._apimodule import make_callable

make_callable(__name__, "dlcheck.api:trace")  # trace(*paths, **options)
