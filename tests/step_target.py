"""TARGET and --step for tests/test_profile_step.py (run with tests/ as the working directory)."""

from __future__ import annotations

import time

from inputbound_loops import STEP_S, sleepy_loader

#: Batches per epoch: long enough that start-up is a small share, short enough for a quick test.
BATCHES = 24


def loader():
    return sleepy_loader(1, BATCHES)


def train_step(batch) -> None:
    time.sleep(STEP_S)


not_callable = 3


def failing_step(batch) -> None:
    raise ValueError("shapes do not match")
