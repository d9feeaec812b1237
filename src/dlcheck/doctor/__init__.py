"""dlcheck doctor: find the data-loading bugs that silently corrupt or slow training."""

from __future__ import annotations

from dlcheck._apimodule import make_callable

make_callable(__name__, "dlcheck.doctor.run:run_doctor")
