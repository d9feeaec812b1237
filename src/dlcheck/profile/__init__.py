"""dlcheck profile: measure a Dataset/DataLoader across settings and recommend one."""

from __future__ import annotations

from dlcheck._apimodule import make_callable

make_callable(__name__, "dlcheck.profile.run:run_profile")
