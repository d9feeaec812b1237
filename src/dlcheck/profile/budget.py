"""Stay inside the machine: a memory budget per setting, predicted before and watched during.

Pure functions plus one parser; the child enforces the budget it is given (see
:class:`dlcheck.profile.measure._Peaks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dlcheck.profile.records import Setting, SettingResult

#: Share of available memory, and of free /dev/shm, a setting may use by default.
SAFE_SHARE = 0.5

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.I)
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def parse_size(text: str) -> int:
    """'2GB', '512M', '1.5GiB', '300000000' → bytes; ValueError otherwise."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(text)
    unit = m.group(2).upper()
    binary = bool(unit) and (m.group(3) or "").lower() == "ib"
    base = 1024 ** ("KMGT".index(unit) + 1) if binary else _UNITS[unit]
    return int(float(m.group(1)) * base)


@dataclass(frozen=True)
class Budget:
    """Most bytes a setting's process tree may hold (PSS plus /dev/shm), and /dev/shm alone."""

    memory_bytes: int
    shm_bytes: int | None
    source: str  # "--max-memory" or "default"

    def describe(self) -> str:
        return f"{self.memory_bytes / 1e9:.1f} GB ({self.source})"


def default_budget(max_memory: int | None) -> Budget:
    """``--max-memory``, else a safe share of available memory; and of free /dev/shm."""
    from dlcheck.host import memory_facts, shm_facts

    mem = memory_facts()
    avail = mem.available_bytes or mem.total_bytes or 8 * 10**9
    if mem.cgroup_limit_bytes:
        avail = min(avail, mem.cgroup_limit_bytes)
    shm = None
    f = shm_facts("/dev/shm")
    if f.free_bytes is not None:
        shm = int(SAFE_SHARE * f.free_bytes)
    if max_memory is not None:
        return Budget(max_memory, shm, "--max-memory")
    return Budget(int(SAFE_SHARE * avail), shm, "default: half the available memory")


def predict_footprint(setting: Setting, measured: list[SettingResult]) -> int | None:
    """Bytes the setting's process tree would hold: per-process memory from the settings
    measured so far, plus the batches in flight through shared memory."""
    done = [r for r in measured if r.ok and r.peak_pss_bytes and r.cost and r.cost.batch_bytes]
    if not done:
        return None
    batch = max(r.cost.batch_bytes for r in done)  # type: ignore[union-attr,type-var]
    w = setting.num_workers
    in_flight = setting.depth * batch  # type: ignore[operator]
    alone = [r.peak_pss_bytes for r in done if r.setting.num_workers == 0]
    with_workers = [r for r in done if r.setting.num_workers]
    if alone and with_workers:
        # The main process alone, plus what each worker added (the largest share seen).
        main = min(alone)  # type: ignore[type-var]
        per_worker = max(
            max(0, r.peak_pss_bytes - main) / r.setting.num_workers  # type: ignore[operator]
            for r in with_workers
        )
        return int(main + per_worker * w + in_flight)  # type: ignore[operator]
    # Otherwise the largest (PSS of the tree) / (workers + 1) seen, a cautious figure.
    per_proc = max(r.peak_pss_bytes / (r.setting.num_workers + 1) for r in done)  # type: ignore[operator]
    return int(per_proc * (w + 1) + in_flight)


def skip_reason(setting: Setting, measured: list[SettingResult], budget: Budget) -> str | None:
    """Why ``setting`` is not started (its predicted footprint is over the budget), or None."""
    need = predict_footprint(setting, measured)
    if need is None:
        return None
    if need > budget.memory_bytes:
        return (
            f"skipped: predicted to hold {need / 1e9:.1f} GB, over the memory budget of "
            f"{budget.describe()}"
        )
    in_flight = setting.depth * max(
        (r.cost.batch_bytes or 0 for r in measured if r.cost), default=0
    )
    if budget.shm_bytes is not None and in_flight > budget.shm_bytes:
        return (
            f"skipped: {in_flight / 1e9:.1f} GB of batches in flight through /dev/shm, over "
            f"the /dev/shm budget of {budget.shm_bytes / 1e9:.1f} GB"
        )
    return None
