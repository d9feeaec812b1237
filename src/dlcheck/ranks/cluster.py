"""Pure judgement for ``dlcheck env`` across ranks: per-node summary, ``cluster`` checks, merge.

Input everywhere: one dict per rank, ``{"rank", "local_rank", "host", "facts": {…}, "checks": […]}``
(``facts`` as ``EnvReport.comparable_facts()``; an optional ``"error": {"message": …}`` marks a
rank whose env run failed). Output: plain dicts shaped like env check records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dlcheck.fmt import size

PASS, INFO, SKIP, WARN, FAIL, ERROR = "pass", "info", "skip", "warn", "fail", "error"
GROUP = "cluster"

# Worst first wins when merging one check across ranks.
_RANK = {SKIP: 0, PASS: 1, INFO: 2, WARN: 3, FAIL: 4, ERROR: 5}


@dataclass(frozen=True)
class FactSpec:
    """How one comparable fact is judged when ranks disagree."""

    name: str
    title: str
    status: str  # status when values differ: fail / warn / info
    fix: str
    scope: str = "rank"  # "node": a property of the machine; "rank": can differ per process
    kind: str = "text"  # "bytes" → shown as MiB/GiB
    # Optional refinement: the status for the distinct values seen (e.g. python patch → warn).
    judge: Callable[[list[Any]], str] | None = None


def _python_judge(values: list[Any]) -> str:
    minors = {".".join(str(v).split(".")[:2]) for v in values if v is not None}
    return FAIL if len(minors) > 1 or None in values else WARN


_SAME_STACK = (
    "Install the same stack on every node (one container image or one lock file); ranks built "
    "differently can fail in collectives or disagree on results."
)

FACT_SPECS: tuple[FactSpec, ...] = (
    FactSpec("python.version", "Python version", FAIL, _SAME_STACK, judge=_python_judge),
    FactSpec("torch.version", "PyTorch version", FAIL, _SAME_STACK),
    FactSpec("torch.cuda", "CUDA version of the torch build", FAIL, _SAME_STACK),
    FactSpec("cudnn.version", "cuDNN version", FAIL, _SAME_STACK),
    FactSpec(
        "nccl.version",
        "NCCL version",
        FAIL,
        "Use the same torch build (which bundles NCCL) everywhere; mixed NCCL versions can hang "
        "or crash collectives.",
    ),
    FactSpec(
        "nvidia.driver",
        "NVIDIA driver version",
        FAIL,
        "Install the same NVIDIA driver on every node (or at least one that supports the wheel's "
        "CUDA everywhere), then rerun `dlcheck env` under the launcher.",
        scope="node",
    ),
    FactSpec(
        "gpu.models",
        "GPU models",
        WARN,
        "Mixed GPU models make every step wait for the slowest GPU; schedule the job on "
        "identical nodes (e.g. a SLURM constraint) unless this is intended.",
        scope="node",
    ),
    FactSpec(
        "gpu.count",
        "GPUs visible",
        WARN,
        "Give every rank the same GPUs: check CUDA_VISIBLE_DEVICES and the launcher's "
        "--gpus-per-task / --nproc-per-node per node.",
        scope="node",
    ),
    FactSpec(
        "shm.total_bytes",
        "/dev/shm size",
        WARN,
        "Give every node the same /dev/shm (docker run --shm-size=16g or --ipc=host; "
        "Kubernetes: an emptyDir with medium: Memory); DataLoader workers pass batches through it.",
        scope="node",
        kind="bytes",
    ),
    FactSpec(
        "shm.free_bytes",
        "/dev/shm free space",
        INFO,
        "Free space varies with what runs; see the `/dev/shm` check of each rank.",
        scope="node",
        kind="bytes",
    ),
    FactSpec(
        "nofile.soft",
        "Open-files soft limit",
        WARN,
        "Raise the limit on the low ranks before launching (`ulimit -n 65536` in the job "
        "script, LimitNOFILE= for a service, docker --ulimit nofile=65536:65536).",
    ),
    FactSpec(
        "nofile.hard",
        "Open-files hard limit",
        WARN,
        "Raise the hard limit where it is low (/etc/security/limits.conf, docker --ulimit, "
        "LimitNOFILE=); the soft limit cannot go above it.",
    ),
    FactSpec(
        "cpu.usable",
        "Usable CPUs",
        WARN,
        "Give every rank the same CPUs (SLURM --cpus-per-task, container --cpus, taskset/"
        "numactl binding); a rank with fewer CPUs feeds its GPU slower and paces the whole job.",
    ),
    FactSpec(
        "memory.total_bytes",
        "Memory",
        WARN,
        "Run on nodes with the same memory (or size DataLoader workers and prefetching for "
        "the smallest one).",
        scope="node",
        kind="bytes",
    ),
    FactSpec(
        "memory.available_bytes",
        "Memory available",
        INFO,
        "Available memory varies with what runs; see each rank's memory check.",
        scope="node",
        kind="bytes",
    ),
    FactSpec(
        "mp.start_method",
        "multiprocessing start method",
        WARN,
        "Set the same start method everywhere (e.g. DataLoader(multiprocessing_context=...)); "
        "ranks that fork and ranks that spawn behave differently.",
    ),
    FactSpec(
        "torch.sharing_strategy",
        "torch sharing strategy",
        WARN,
        "Set the same strategy everywhere with torch.multiprocessing.set_sharing_strategy(...).",
    ),
)
SPECS_BY_NAME = {s.name: s for s in FACT_SPECS}
# Grouping key, not a fact to compare.
_NOT_COMPARED = {"host"}


def compress_ranks(ranks: Iterable[int]) -> str:
    """[0, 1, 2, 3, 5] → '0-3, 5'."""
    out: list[str] = []
    items = sorted(set(ranks))
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        if j - i >= 2:  # a run of three or more reads better as a range
            out.append(f"{items[i]}-{items[j]}")
        else:
            out.extend(str(x) for x in items[i : j + 1])
        i = j + 1
    return ", ".join(out)


def ranks_label(ranks: Iterable[int]) -> str:
    """'rank 1' or 'ranks 0-3, 5'."""
    ranks = sorted(set(ranks))
    return ("rank " if len(ranks) == 1 else "ranks ") + compress_ranks(ranks)


def format_value(value: Any, kind: str = "text") -> str:
    if value is None:
        return "n/a"
    if kind == "bytes" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return size(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _host(report: Mapping[str, Any]) -> str:
    return str(report.get("host") or report.get("facts", {}).get("host") or "?")


def _ok_reports(reports: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((r for r in reports if not r.get("error")), key=lambda r: r["rank"])


def group_values(reports: Sequence[Mapping[str, Any]], fact: str) -> list[dict[str, Any]]:
    """Distinct values of one fact: ``[{"value", "ranks", "hosts"}]`` in order of first rank."""
    groups: dict[Any, dict[str, Any]] = {}
    for r in _ok_reports(reports):
        value = r.get("facts", {}).get(fact)
        g = groups.setdefault(_hashable(value), {"value": value, "ranks": [], "hosts": []})
        g["ranks"].append(int(r["rank"]))
        if _host(r) not in g["hosts"]:
            g["hosts"].append(_host(r))
    return list(groups.values())


def _node_uniform(groups: list[dict[str, Any]]) -> bool:
    """True when no host appears under two values (then differences are between nodes)."""
    seen: set[str] = set()
    for g in groups:
        if seen & set(g["hosts"]):
            return False
        seen |= set(g["hosts"])
    return len(seen) > 1


def _label(group: Mapping[str, Any], by_node: bool) -> str:
    if not by_node:
        return ranks_label(group["ranks"])
    hosts = list(group["hosts"])
    shown = ", ".join(hosts[:3]) + (f" +{len(hosts) - 3} more" if len(hosts) > 3 else "")
    return f"{shown} ({ranks_label(group['ranks'])})"


def _describe(fact: str, groups: list[dict[str, Any]], kind: str, by_node: bool) -> str:
    parts = [f"{_label(g, by_node)} = {format_value(g['value'], kind)}" for g in groups]
    return f"{fact} differs: " + ", ".join(parts)


def _info_range(fact: str, groups: list[dict[str, Any]], kind: str) -> str:
    numeric = [g for g in groups if isinstance(g["value"], (int, float)) and g["value"] is not None]
    if len(numeric) == len(groups) and numeric:
        lo = min(numeric, key=lambda g: g["value"])
        hi = max(numeric, key=lambda g: g["value"])
        return (
            f"{fact} varies from {format_value(lo['value'], kind)} ({ranks_label(lo['ranks'])}) "
            f"to {format_value(hi['value'], kind)} ({ranks_label(hi['ranks'])}); "
            "this varies naturally"
        )
    return _describe(fact, groups, kind, by_node=False)


def fact_check(
    reports: Sequence[Mapping[str, Any]], fact: str, spec: FactSpec | None = None
) -> dict[str, Any]:
    """One ``cluster.<fact>`` check record comparing the fact over the ranks that reported."""
    spec = spec or SPECS_BY_NAME.get(fact) or FactSpec(fact, fact, INFO, "")
    groups = group_values(reports, fact)
    ok = _ok_reports(reports)
    n_ranks = len(ok)
    n_nodes = len({_host(r) for r in ok})
    facts = {
        "fact": fact,
        "scope": spec.scope,
        "values": [{**g, "value": g["value"]} for g in groups],
    }
    record = {"id": f"{GROUP}.{fact}", "group": GROUP, "title": spec.title, "facts": facts}
    if not groups:
        return {**record, "status": SKIP, "summary": "no rank reported", "fix": None}
    if len(groups) == 1:
        value = groups[0]["value"]
        if value is None:
            return {
                **record,
                "status": SKIP,
                "summary": f"{fact} not available on any rank",
                "fix": None,
            }
        where = (
            f"all {n_nodes} nodes"
            if spec.scope == "node" and n_nodes > 1
            else f"all {n_ranks} ranks"
        )
        return {
            **record,
            "status": PASS,
            "summary": f"{fact} = {format_value(value, spec.kind)} on {where}",
            "fix": None,
        }
    status = spec.judge([g["value"] for g in groups]) if spec.judge else spec.status
    if status == INFO:
        summary = _info_range(fact, groups, spec.kind)
    else:
        by_node = spec.scope == "node" and _node_uniform(groups)
        summary = _describe(fact, groups, spec.kind, by_node=by_node)
    return {**record, "status": status, "summary": summary, "fix": spec.fix or None}


def ranks_check(reports: Sequence[Mapping[str, Any]], world_size: int | None = None) -> dict:
    """``cluster.ranks``: every rank reported (fail naming ranks whose run failed or is absent)."""
    world = world_size if world_size is not None else len(reports)
    got = {int(r["rank"]) for r in reports}
    absent = sorted(set(range(world)) - got)
    errors = {int(r["rank"]): r["error"] for r in reports if r.get("error")}
    hosts = {_host(r) for r in reports}
    problems = [
        f"rank {rank} failed: {(err or {}).get('message', 'failed')}"
        for rank, err in sorted(errors.items())
    ]
    if absent:
        problems.append(f"{ranks_label(absent)} did not report")
    record = {
        "id": f"{GROUP}.ranks",
        "group": GROUP,
        "title": "Every rank reported",
        "facts": {
            "world_size": world,
            "reported": sorted(got - set(errors)),
            "failed": sorted(errors),
            "absent": absent,
            "nodes": len(hosts),
        },
    }
    if problems:
        return {
            **record,
            "status": FAIL,
            "summary": "; ".join(problems),
            "fix": "Read the failing rank's stderr; every rank must be able to run dlcheck.",
        }
    summary = f"{world} ranks on {len(hosts)} node{'s' if len(hosts) != 1 else ''} reported"
    return {**record, "status": PASS, "summary": summary, "fix": None}


def cluster_checks(
    reports: Sequence[Mapping[str, Any]], world_size: int | None = None
) -> list[dict[str, Any]]:
    """``cluster.ranks`` plus one ``cluster.<fact>`` check per comparable fact, in spec order
    (facts unknown to :data:`FACT_SPECS` follow, judged ``info`` when they differ)."""
    seen = {k for r in _ok_reports(reports) for k in r.get("facts", {})} - _NOT_COMPARED
    names = [s.name for s in FACT_SPECS if s.name in seen]
    names += sorted(seen - set(names))
    return [ranks_check(reports, world_size)] + [fact_check(reports, n) for n in names]


def node_summary(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """host → ranks → GPUs, one dict per host in order of its first rank."""
    nodes: dict[str, dict[str, Any]] = {}
    for r in sorted(reports, key=lambda r: r["rank"]):
        host = _host(r)
        node = nodes.setdefault(
            host,
            {
                "host": host,
                "ranks": [],
                "local_ranks": {},
                "failed_ranks": [],
                "gpu_count": None,
                "gpu_models": None,
                "nvidia_driver": None,
            },
        )
        node["ranks"].append(int(r["rank"]))
        node["local_ranks"][str(r["rank"])] = r.get("local_rank")
        if r.get("error"):
            node["failed_ranks"].append(int(r["rank"]))
            continue
        facts = r.get("facts", {})
        for key, fact in (
            ("gpu_count", "gpu.count"),
            ("gpu_models", "gpu.models"),
            ("nvidia_driver", "nvidia.driver"),
        ):
            if node[key] is None and facts.get(fact) is not None:
                node[key] = facts[fact]
    return list(nodes.values())


def merge_checks(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each per-rank check id once: the worst status over ranks, naming the ranks per status.

    The record keeps the worst rank's title, summary, fix and facts, adds
    ``"ranks": {status: [ranks]}``, and, when ranks disagree, says which ranks in the summary.
    """
    order: list[str] = []
    by_id: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for r in sorted(reports, key=lambda r: r["rank"]):
        for check in r.get("checks", []) or []:
            cid = str(check["id"])
            if cid not in by_id:
                order.append(cid)
                by_id[cid] = []
            by_id[cid].append((int(r["rank"]), check))
    merged = []
    for cid in order:
        items = by_id[cid]
        worst_rank, worst = max(items, key=lambda it: (_RANK.get(str(it[1]["status"]), 0), -it[0]))
        by_status: dict[str, list[int]] = {}
        for rank, check in items:
            by_status.setdefault(str(check["status"]), []).append(rank)
        record = dict(worst)
        record["ranks"] = by_status
        worst_status = str(worst["status"])
        summaries = {str(c.get("summary")) for _, c in items}
        # Passing checks whose wording differs per rank (timings, paths) need no rank notes.
        differing = len(summaries) > 1 and _RANK.get(worst_status, 0) >= _RANK[WARN]
        if len(by_status) > 1 or differing:
            worst_ranks = by_status[worst_status]
            if differing and len(worst_ranks) > 1:
                parts = [f"rank {worst_rank}", f"{worst_status} on {ranks_label(worst_ranks)}"]
            else:
                parts = [ranks_label(worst_ranks)]
            parts += [
                f"{s} on {ranks_label(rs)}"
                for s, rs in sorted(by_status.items(), key=lambda kv: -_RANK.get(kv[0], 0))
                if s != worst_status
            ]
            record["summary"] = f"{worst.get('summary')} ({'; '.join(parts)})"
        merged.append(record)
    return merged


def merge_env_reports(
    reports: Sequence[Mapping[str, Any]], world_size: int | None = None
) -> dict[str, Any]:
    """Everything rank 0 adds for ``dlcheck env`` across ranks, as plain JSON-able dicts.

    ``nodes``: :func:`node_summary`; ``cluster_checks``: :func:`cluster_checks`;
    ``checks``: the ranks' own checks merged by :func:`merge_checks`; ``statuses``: every
    status in ``cluster_checks`` + ``checks`` (feed them to ``records.exit_code_for``).
    """
    cluster = cluster_checks(reports, world_size)
    merged = merge_checks(reports)
    return {
        "nodes": node_summary(reports),
        "cluster_checks": cluster,
        "checks": merged,
        "statuses": [c["status"] for c in [*cluster, *merged]],
    }
