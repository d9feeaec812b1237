"""Launch detection: was this process started as one rank of a distributed job?

Pure functions over an environ mapping (stdlib only, no torch): torchrun / torchelastic, any
launcher that sets ``RANK``/``WORLD_SIZE``/``MASTER_*``, and SLURM ``srun`` steps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dlcheck.errors import UsageError

#: Set to 0/false/no to make dlcheck ignore every launcher variable (run single-process).
DISABLE_VAR = "DLCHECK_DISTRIBUTED"

# SLURM gives no port; derive one from the job id so every rank of a step computes the same one.
SLURM_PORT_BASE = 15000
SLURM_PORT_SPAN = 20000


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process sits in a distributed launch (``world_size`` ≥ 2)."""

    launcher: str  # "torchrun" | "env" | "slurm"
    rank: int
    world_size: int
    master_addr: str
    master_port: int
    local_rank: int | None = None  # None: unknown, derived from hosts once the group forms
    local_world_size: int | None = None
    node_rank: int | None = None  # GROUP_RANK (torchrun) or SLURM_NODEID
    run_id: str | None = None  # TORCHELASTIC_RUN_ID or SLURM_JOB_ID[.step]
    # torchrun's agent already hosts the TCPStore at MASTER_ADDR:MASTER_PORT: every rank,
    # rank 0 included, connects to it as a client.
    agent_store: bool = False

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def key_prefix(self) -> str:
        """Store-key namespace, unique per run (and per torchrun restart)."""
        return f"dlcheck/{self.run_id or 'run'}/"


def _int(env: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise UsageError(
            f"The launcher variable {name}={raw!r} is not an integer.",
            "Check how the job was launched (torchrun, srun or your own launcher sets it), "
            f"or set {DISABLE_VAR}=0 to run dlcheck on this process alone.",
        ) from None
    if value < minimum:
        raise UsageError(
            f"The launcher variable {name}={value} must be at least {minimum}.",
            "Check how the job was launched.",
        )
    return value


def _port(env: Mapping[str, str]) -> int | None:
    port = _int(env, "MASTER_PORT", minimum=1)
    if port is not None and port > 65535:
        raise UsageError(
            f"MASTER_PORT={port} is not a TCP port (1-65535).", "Pick a free port, e.g. 29500."
        )
    return port


def _disabled(env: Mapping[str, str]) -> bool:
    return env.get(DISABLE_VAR, "").strip().lower() in {"0", "false", "no", "off"}


def detect_launch(environ: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """The launch this process belongs to, or None when it runs alone (incl. WORLD_SIZE=1).

    ``RANK``/``WORLD_SIZE`` (torchrun or any launcher) take precedence over SLURM variables,
    so ``srun torchrun …`` is read as torchrun. Raises :class:`UsageError` on malformed values.
    """
    env = os.environ if environ is None else environ
    if _disabled(env):
        return None
    if "RANK" in env or "WORLD_SIZE" in env:
        return _from_env(env)
    if "SLURM_PROCID" in env:
        return _from_slurm(env)
    return None


def _from_env(env: Mapping[str, str]) -> LaunchInfo | None:
    world = _int(env, "WORLD_SIZE", minimum=1)
    rank = _int(env, "RANK")
    if world is None or rank is None:
        missing = "WORLD_SIZE" if world is None else "RANK"
        raise UsageError(
            f"{'RANK' if missing == 'WORLD_SIZE' else 'WORLD_SIZE'} is set but {missing} is not.",
            "A distributed launch sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT together; "
            f"set the missing ones, or unset them (or set {DISABLE_VAR}=0) to run alone.",
        )
    if rank >= world:
        raise UsageError(
            f"RANK={rank} is not below WORLD_SIZE={world}.",
            "Ranks run from 0 to WORLD_SIZE-1; check the launch command.",
        )
    if world == 1:
        return None
    addr = env.get("MASTER_ADDR", "").strip()
    port = _port(env)
    if not addr or port is None:
        missing = "MASTER_ADDR" if not addr else "MASTER_PORT"
        raise UsageError(
            f"WORLD_SIZE={world} but {missing} is not set, so rank {rank} cannot find rank 0.",
            "Set MASTER_ADDR (rank 0's host) and MASTER_PORT (a free port on it), or launch "
            "with `torchrun`, which sets both.",
        )
    local_rank = _int(env, "LOCAL_RANK")
    local_world = _int(env, "LOCAL_WORLD_SIZE", minimum=1)
    if local_rank is not None and local_world is not None and local_rank >= local_world:
        raise UsageError(
            f"LOCAL_RANK={local_rank} is not below LOCAL_WORLD_SIZE={local_world}.",
            "Check the launch command.",
        )
    run_id = env.get("TORCHELASTIC_RUN_ID")
    torchrun = run_id is not None
    if torchrun:
        restart = env.get("TORCHELASTIC_RESTART_COUNT", "0").strip() or "0"
        run_id = f"{run_id}.{restart}"
    return LaunchInfo(
        launcher="torchrun" if torchrun else "env",
        rank=rank,
        world_size=world,
        master_addr=addr,
        master_port=port,
        local_rank=local_rank,
        local_world_size=local_world,
        node_rank=_int(env, "GROUP_RANK"),
        run_id=run_id,
        agent_store=env.get("TORCHELASTIC_USE_AGENT_STORE", "").strip() == "True",
    )


# Step ids Slurm uses for the batch script and the extern step (SLURM_BATCH_SCRIPT and
# SLURM_EXTERN_CONT in slurm.h); neither runs one task per rank.
_NOT_SRUN_STEPS = {"batch", "extern", "4294967294", "4294967295"}


def _in_slurm_step(env: Mapping[str, str]) -> bool:
    # The batch script itself (or an salloc shell) also has SLURM_PROCID=0 and SLURM_NTASKS,
    # but it is one process: only `srun` steps run one task per rank.
    step = (env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID") or "").strip().lower()
    if step in _NOT_SRUN_STEPS:
        return False
    return bool(step) or "SLURM_STEP_NUM_TASKS" in env


def _from_slurm(env: Mapping[str, str]) -> LaunchInfo | None:
    if not _in_slurm_step(env):
        return None
    world = _int(env, "SLURM_STEP_NUM_TASKS", minimum=1) or _int(env, "SLURM_NTASKS", minimum=1)
    rank = _int(env, "SLURM_PROCID")
    if world is None or rank is None:
        return None
    if rank >= world:
        raise UsageError(
            f"SLURM_PROCID={rank} is not below the step's task count {world}.",
            "Check the srun command (--ntasks / --ntasks-per-node).",
        )
    if world == 1:
        return None
    addr = env.get("MASTER_ADDR", "").strip()
    if not addr:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        if not nodelist.strip():
            raise UsageError(
                "SLURM step without SLURM_STEP_NODELIST / SLURM_JOB_NODELIST or MASTER_ADDR.",
                "Set MASTER_ADDR to the first node's host name in the job script.",
            )
        addr = expand_nodelist(nodelist)[0]
    port = _port(env)
    job_id = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if port is None:
        if job_id is None or not job_id.strip().isdigit():
            raise UsageError(
                "SLURM step without MASTER_PORT or a numeric SLURM_JOB_ID to derive one from.",
                "Set MASTER_PORT to a free port in the job script (`export MASTER_PORT=29500`).",
            )
        port = slurm_port(int(job_id))
    step = env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID")
    local_world = None
    tasks_per_node = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    node_id = _int(env, "SLURM_NODEID")
    if tasks_per_node and node_id is not None:
        counts = _expand_tasks_per_node(tasks_per_node)
        if counts is not None and node_id < len(counts):
            local_world = counts[node_id]
    return LaunchInfo(
        launcher="slurm",
        rank=rank,
        world_size=world,
        master_addr=addr,
        master_port=port,
        local_rank=_int(env, "SLURM_LOCALID"),
        local_world_size=local_world,
        node_rank=node_id,
        run_id=f"{job_id}.{step}" if job_id and step else job_id,
    )


def slurm_port(job_id: int) -> int:
    """The port every task of a SLURM job derives from its job id (15000-34999)."""
    return SLURM_PORT_BASE + job_id % SLURM_PORT_SPAN


def _expand_tasks_per_node(text: str) -> list[int] | None:
    """'2(x3),1' → [2, 2, 2, 1]; None when unreadable (then derived from hosts instead)."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            return None
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return out


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ']'")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError("unbalanced '['")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _expand_range_list(body: str) -> list[str]:
    values: list[str] = []
    for item in body.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise ValueError(f"bad range {item!r}")
        lo, hi = m.group(1), m.group(2)
        if hi is None:
            values.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"descending range {item!r}")
        width = len(lo)  # Slurm keeps the zero padding of the lower bound: 01-03 → 01 02 03
        values.extend(str(i).zfill(width) for i in range(int(lo), int(hi) + 1))
    return values


def _expand_host(pattern: str) -> list[str]:
    m = re.search(r"\[([^\[\]]*)\]", pattern)
    if not m:
        if "[" in pattern or "]" in pattern:
            raise ValueError("unbalanced brackets")
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    return [
        head + value + rest
        for value in _expand_range_list(m.group(1))
        for rest in _expand_host(tail)
    ]


def expand_nodelist(nodelist: str) -> list[str]:
    """Expand a Slurm host list: ``node[01-03,7],gpu-a[1-2]-ib`` → node01 … gpu-a2-ib.

    Raises :class:`UsageError` when the list cannot be read.
    """
    try:
        hosts = [h for part in _split_top_level(nodelist) for h in _expand_host(part)]
    except ValueError as exc:
        raise UsageError(
            f"Cannot read the SLURM node list {nodelist!r} ({exc}).",
            "Set MASTER_ADDR to the first node's host name in the job script.",
        ) from None
    if not hosts:
        raise UsageError(f"The SLURM node list {nodelist!r} is empty.", "Set MASTER_ADDR.")
    return hosts
