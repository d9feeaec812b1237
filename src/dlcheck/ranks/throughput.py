"""Pure aggregation for ``dlcheck profile`` under a launcher: ranks measured in lockstep.

Input: per-rank result records, each a dict with ``rank``, ``setting`` (the swept options, e.g.
``{"num_workers": 2, "batch_size": 64}``), ``samples_per_s`` (None when the setting failed) and
``error`` (None, a message, or an error dict). Nothing here measures or prints.

Definitions (documented in docs/distributed.md):

* aggregate samples/s — the sum over the ranks that measured the setting;
* lockstep samples/s — ranks × the slowest rank's samples/s: what synchronous data-parallel
  training (DDP/FSDP) can consume, since every step waits for the slowest rank's batch;
* straggler ratio — median rank samples/s ÷ slowest rank samples/s (1.0 = balanced). The median,
  not the fastest, so one unusually fast rank does not make the others look like stragglers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_STRAGGLER_THRESHOLD = 1.2
DEFAULT_NOISE = 0.05


def setting_key(setting: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent key for a setting dict."""
    return tuple(sorted((str(k), _freeze(v)) for k, v in setting.items()))


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, Mapping):
        return str(error.get("message") or error.get("kind") or "failed")
    return str(error)


def _ok(record: Mapping[str, Any]) -> bool:
    sps = record.get("samples_per_s")
    return (
        not record.get("error")
        and isinstance(sps, (int, float))
        and math.isfinite(sps)
        and sps >= 0
    )


def aggregate_settings(
    records: Iterable[Mapping[str, Any]],
    *,
    world_size: int | None = None,
    straggler_threshold: float = DEFAULT_STRAGGLER_THRESHOLD,
) -> list[dict[str, Any]]:
    """One aggregate per setting, in the order settings first appear.

    Each: ``setting``, ``per_rank`` ([{rank, samples_per_s}] of ranks that measured it),
    ``failed_ranks`` ({rank: message}), ``missing_ranks`` (no record at all; needs
    ``world_size``), ``complete``, ``aggregate_samples_per_s``, ``lockstep_samples_per_s``,
    ``slowest_rank``, ``slowest_samples_per_s``, ``fastest_rank``, ``median_samples_per_s``,
    ``straggler_ratio`` and ``straggler`` (ratio above ``straggler_threshold``). Figures are
    None when no rank measured the setting.
    """
    order: list[tuple] = []
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for rec in records:
        key = setting_key(rec.get("setting") or {})
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(rec)
    out = []
    for key in order:
        recs = sorted(groups[key], key=lambda r: int(r["rank"]))
        ok = [r for r in recs if _ok(r)]
        failed = {
            int(r["rank"]): _error_text(r.get("error")) or "no measurement"
            for r in recs
            if not _ok(r)
        }
        seen = {int(r["rank"]) for r in recs}
        missing = sorted(set(range(world_size)) - seen) if world_size else []
        per_rank = [
            {"rank": int(r["rank"]), "samples_per_s": float(r["samples_per_s"])} for r in ok
        ]
        agg: dict[str, Any] = {
            "setting": dict(recs[0].get("setting") or {}),
            "per_rank": per_rank,
            "failed_ranks": failed,
            "missing_ranks": missing,
            "complete": not failed and not missing and bool(ok),
            "aggregate_samples_per_s": None,
            "lockstep_samples_per_s": None,
            "slowest_rank": None,
            "slowest_samples_per_s": None,
            "fastest_rank": None,
            "median_samples_per_s": None,
            "straggler_ratio": None,
            "straggler": False,
        }
        if per_rank:
            values = [p["samples_per_s"] for p in per_rank]
            slowest = min(per_rank, key=lambda p: (p["samples_per_s"], p["rank"]))
            fastest = max(per_rank, key=lambda p: (p["samples_per_s"], -p["rank"]))
            median = statistics.median(values)
            ratio = median / slowest["samples_per_s"] if slowest["samples_per_s"] > 0 else None
            agg.update(
                aggregate_samples_per_s=sum(values),
                lockstep_samples_per_s=len(values) * slowest["samples_per_s"],
                slowest_rank=slowest["rank"],
                slowest_samples_per_s=slowest["samples_per_s"],
                fastest_rank=fastest["rank"],
                median_samples_per_s=median,
                straggler_ratio=ratio,
                straggler=ratio is None or ratio > straggler_threshold,
            )
        out.append(agg)
    return out


def _cost(setting: Mapping[str, Any]) -> tuple:
    # Cheaper first: fewer workers, smaller prefetch, no pinning, no persistent workers.
    return (
        setting.get("num_workers") or 0,
        setting.get("prefetch_factor") or 0,
        bool(setting.get("pin_memory")),
        bool(setting.get("persistent_workers")),
    )


def best_lockstep(
    aggregates: Sequence[Mapping[str, Any]], *, noise: float = DEFAULT_NOISE
) -> Mapping[str, Any] | None:
    """The cheapest complete setting whose lockstep samples/s is within ``noise`` of the best.

    Compare settings of one batch size at a time (samples/s at different batch sizes answer
    different questions); None when no setting was measured on every rank.
    """
    done = [a for a in aggregates if a.get("complete") and a.get("lockstep_samples_per_s")]
    if not done:
        return None
    top = max(a["lockstep_samples_per_s"] for a in done)
    near = [a for a in done if a["lockstep_samples_per_s"] >= top * (1 - noise)]
    return min(near, key=lambda a: (_cost(a["setting"]), -a["lockstep_samples_per_s"]))


def cpu_shares(ranks: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """CPUs each rank can really use, sharing its node's CPUs with the other ranks there.

    ``ranks``: ``{"rank", "host", "usable_cpus"}`` plus, optionally, ``"cpu_set"`` (the CPU ids
    of its affinity mask). With CPU sets, each CPU is split between the ranks of that host whose
    mask contains it (ranks pinned to disjoint CPUs keep theirs whole). Without, the usable CPUs
    are split evenly between the ranks on the host (torchrun does not pin ranks).
    """
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for r in ranks:
        by_host.setdefault(str(r.get("host")), []).append(r)
    shares: dict[int, float] = {}
    for members in by_host.values():
        if all(m.get("cpu_set") for m in members):
            users: dict[int, int] = {}
            for m in members:
                for cpu in set(m["cpu_set"]):
                    users[int(cpu)] = users.get(int(cpu), 0) + 1
            for m in members:
                share = sum(1 / users[int(c)] for c in set(m["cpu_set"]))
                shares[int(m["rank"])] = min(share, float(m.get("usable_cpus") or share))
        else:
            for m in members:
                shares[int(m["rank"])] = float(m.get("usable_cpus") or 1) / len(members)
    return shares


def cpu_bound_workers(share: float) -> int:
    """Workers a CPU-bound pipeline can keep busy: the rank's CPUs less one for its main process."""
    return max(0, math.floor(share + 1e-9) - 1)


def recommend_workers(
    records: Iterable[Mapping[str, Any]],
    ranks: Sequence[Mapping[str, Any]],
    *,
    noise: float = DEFAULT_NOISE,
) -> list[dict[str, Any]]:
    """Per-rank num_workers advice from its own measurements and the CPUs it can really use.

    For each rank (``ranks`` as in :func:`cpu_shares`): among its measured settings at the batch
    size (and other options) of its fastest one, the fewest workers within ``noise`` of that
    fastest; without measurements, the CPU-bound estimate. Each entry: ``rank``, ``host``,
    ``usable_cpus``, ``ranks_on_host``, ``cpu_share``, ``cpu_bound_num_workers``,
    ``measured_best_num_workers``, ``recommended_num_workers``, ``samples_per_s``, ``reason``.
    """
    shares = cpu_shares(ranks)
    per_host: dict[str, int] = {}
    for r in ranks:
        per_host[str(r.get("host"))] = per_host.get(str(r.get("host")), 0) + 1
    by_rank: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        if _ok(rec):
            by_rank.setdefault(int(rec["rank"]), []).append(rec)
    out = []
    for r in sorted(ranks, key=lambda r: int(r["rank"])):
        rank = int(r["rank"])
        share = shares[rank]
        cpu_bound = cpu_bound_workers(share)
        entry: dict[str, Any] = {
            "rank": rank,
            "host": r.get("host"),
            "usable_cpus": r.get("usable_cpus"),
            "ranks_on_host": per_host[str(r.get("host"))],
            "cpu_share": round(share, 2),
            "cpu_bound_num_workers": cpu_bound,
            "measured_best_num_workers": None,
            "recommended_num_workers": cpu_bound,
            "samples_per_s": None,
        }
        mine = by_rank.get(rank, [])
        if not mine:
            entry["reason"] = (
                f"no measurement on this rank: {cpu_bound} worker(s) keep its "
                f"{share:g} CPU share busy when loading is CPU-bound"
            )
            out.append(entry)
            continue
        best = max(mine, key=lambda rec: rec["samples_per_s"])
        others = {k: v for k, v in best["setting"].items() if k != "num_workers"}
        peers = [
            rec
            for rec in mine
            if {k: v for k, v in rec["setting"].items() if k != "num_workers"} == others
        ]
        near = [p for p in peers if p["samples_per_s"] >= best["samples_per_s"] * (1 - noise)]
        pick = min(near, key=lambda rec: rec["setting"].get("num_workers") or 0)
        workers = int(pick["setting"].get("num_workers") or 0)
        entry.update(
            measured_best_num_workers=int(best["setting"].get("num_workers") or 0),
            recommended_num_workers=workers,
            samples_per_s=float(pick["samples_per_s"]),
        )
        if workers > share:
            why = (
                f"{workers} workers measured fastest although this rank has about {share:g} "
                "CPUs: the loading waits on I/O more than on CPU"
            )
        else:
            why = (
                f"fewest workers within {noise:.0%} of its best, measured with "
                f"{per_host[str(r.get('host'))]} ranks loading on {r.get('host')} at once"
            )
        entry["reason"] = why
        out.append(entry)
    return out


def local_cpu_info() -> dict[str, Any]:
    """This rank's usable CPUs and affinity CPU ids, as :func:`cpu_shares` takes them."""
    from dlcheck.host import affinity_cpus, cpu_facts

    return {"usable_cpus": cpu_facts().usable, "cpu_set": affinity_cpus()}
