"""The one definition of "input-bound" that `watch`, `trace` (and later `profile --step`) share.

**Input-bound share** = time the training loop spends blocked waiting for the next batch
(the wait inside the DataLoader's ``next()``, which includes any host-to-device copy the loader
itself does without overlap) divided by the loop's wall time over the same steps.

Tiers: *not* input-bound below 5 %, *moderately* from 5 % to 20 %, *highly* at 20 % and above.

Pure functions, standard library only.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from enum import Enum

#: Below this share the loop is not input-bound.
MODERATE_FROM = 0.05
#: At or above this share the loop is highly input-bound.
HIGH_FROM = 0.20


class Tier(str, Enum):
    NOT = "not"
    MODERATE = "moderately"
    HIGH = "highly"


def input_bound_share(wait_s: float, wall_s: float) -> float | None:
    """Share of ``wall_s`` spent waiting for batches, clamped to [0, 1]; None without time."""
    if wall_s <= 0:
        return None
    return min(1.0, max(0.0, wait_s / wall_s))


def tier(share: float | None) -> Tier | None:
    if share is None:
        return None
    if share >= HIGH_FROM:
        return Tier.HIGH
    if share >= MODERATE_FROM:
        return Tier.MODERATE
    return Tier.NOT


def describe(share: float | None) -> str:
    """``"highly input-bound (69% of the loop waits for data)"``, or why there is no figure."""
    t = tier(share)
    if t is None or share is None:
        return "no figure (fewer than two batches)"
    return f"{t.value} input-bound ({100 * share:.0f}% of the loop waits for data)"


def advice(share: float | None) -> str | None:
    """One sentence of what to do, for the moderately and highly tiers."""
    t = tier(share)
    if t is Tier.HIGH:
        return (
            "The accelerator idles while it waits for data: raise num_workers, make "
            "__getitem__ cheaper, or run `dlcheck profile` on the loader to find a faster setting."
        )
    if t is Tier.MODERATE:
        return (
            "Some time goes to waiting for data: try more num_workers or a higher prefetch_factor."
        )
    return None


def straggler(wait_per_step_s: Mapping[int, float]) -> tuple[int | None, float | None]:
    """The slowest rank (most wait per step) and the straggler ratio.

    Straggler ratio = the slowest rank's mean wait per step divided by the median over all ranks
    (for two ranks the median is their mean, so the ratio is at most 2). None when the median is
    under a microsecond: no rank waits, or too few do to compare.
    """
    if not wait_per_step_s:
        return None, None
    slowest = max(wait_per_step_s, key=lambda r: (wait_per_step_s[r], -r))
    if wait_per_step_s[slowest] <= 0:
        return None, None
    mid = statistics.median(wait_per_step_s.values())
    ratio = wait_per_step_s[slowest] / mid if mid >= 1e-6 else None
    return slowest, ratio
