"""Typed records of `dlcheck env`: the facts the collectors gather (pure data, no verdicts),
one check's verdict, and the report with its ``dlcheck.env/1`` document.

"Not available" is a value (``None`` or an ``error`` string), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlcheck.records import Status, exit_code_for, summary_line

if TYPE_CHECKING:
    from dlcheck.host import CpuFacts, MemoryFacts, NofileFacts, ShmFacts


@dataclass(frozen=True)
class PythonFacts:
    version: str  # "3.11.7"
    implementation: str
    executable: str
    prefix: str
    base_prefix: str
    venv: bool
    conda_env: str | None  # CONDA_DEFAULT_ENV when this interpreter is a conda env's
    conda_prefix: str | None
    user_site: str | None
    user_site_enabled: bool
    platform: str  # sys.platform
    machine: str
    abi_tag: str  # "cp311"


@dataclass(frozen=True)
class Requirement:
    """One requirement of an installed distribution (markers already evaluated)."""

    text: str  # "nvidia-cudnn-cu12==9.1.0.70"
    name: str  # normalized
    specifier: str


@dataclass(frozen=True)
class DistFacts:
    """One installed distribution (an ``*.dist-info`` / ``*.egg-info``) found on sys.path."""

    name: str  # normalized (PEP 503)
    version: str
    location: str  # the sys.path entry that holds it
    installer: str | None  # "pip", "conda", "uv", ...
    requires: tuple[Requirement, ...] = ()
    wheel_tags: tuple[str, ...] = ()  # from WHEEL, e.g. "cp311-cp311-linux_x86_64"
    requires_python: str | None = None


@dataclass(frozen=True)
class DistsFacts:
    """Every distribution on sys.path, in sys.path order (the first of a name wins)."""

    dists: tuple[DistFacts, ...]
    error: str | None = None

    def all_named(self, name: str) -> tuple[DistFacts, ...]:
        return tuple(d for d in self.dists if d.name == name)

    def get(self, name: str) -> DistFacts | None:
        for d in self.dists:
            if d.name == name:
                return d
        return None


@dataclass(frozen=True)
class ModuleImport:
    """Result of importing one module in the torch child."""

    module: str
    found: bool  # importlib.util.find_spec found it
    ok: bool
    version: str | None = None
    file: str | None = None
    error: str | None = None  # the cause line: "OSError: libcudart.so.12: cannot open ..."
    traceback: str | None = None
    seconds: float | None = None
    how: str = "import"  # "import", or "extension": only its C++ extension was loaded


@dataclass(frozen=True)
class TorchFacts:
    """Facts from ``import torch`` in a child process."""

    ran: bool  # False when the probe was not run (not needed by the selected checks)
    ok: bool  # import succeeded
    error: str | None = None  # cause line, or a sentence (timeout, crash)
    traceback: str | None = None
    timed_out: bool = False
    import_seconds: float | None = None
    version: str | None = None
    file: str | None = None
    cuda: str | None = None  # torch.version.cuda
    hip: str | None = None  # torch.version.hip
    cudnn: int | None = None  # torch.backends.cudnn.version()
    cudnn_error: str | None = None
    cuda_available: bool | None = None
    cuda_init_error: str | None = None  # why is_available() is False (CUDA builds only)
    device_count: int | None = None
    arch_list: tuple[str, ...] = ()
    nccl: str | None = None
    sharing_strategy: str | None = None
    num_threads: int | None = None
    modules: tuple[ModuleImport, ...] = ()
    stderr_tail: str | None = None

    @property
    def variant(self) -> str | None:
        """'cpu', 'cu128', 'rocm6.2' ... from the build, not from the version string."""
        if not self.ok:
            return None
        if self.hip:
            return "rocm" + ".".join(self.hip.split(".")[:2])
        if self.cuda:
            major, _, minor = self.cuda.partition(".")
            return f"cu{major}{minor.split('.')[0]}"
        return "cpu"

    def module(self, name: str) -> ModuleImport | None:
        """The record for ``name``; a failure wins over a success (extension load + import)."""
        matches = [m for m in self.modules if m.module == name]
        failed = [m for m in matches if m.found and not m.ok]
        found = failed or matches
        return found[0] if found else None


@dataclass(frozen=True)
class GpuFacts:
    index: int
    name: str | None
    memory_total_bytes: int | None
    compute_capability: tuple[int, int] | None
    mig_enabled: bool | None
    uuid: str | None = None


@dataclass(frozen=True)
class NvmlFacts:
    """NVIDIA driver and GPUs as NVML sees them (all GPUs, whatever CUDA_VISIBLE_DEVICES says)."""

    available: bool
    error_code: str | None = None  # "NVML_ERROR_LIB_RM_VERSION_MISMATCH", "LIBRARY_NOT_FOUND" ...
    error: str | None = None  # the cause in words
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the newest CUDA the driver supports: "12.4"
    gpus: tuple[GpuFacts, ...] = ()


@dataclass(frozen=True)
class ToolkitFacts:
    nvcc_path: str | None
    nvcc_version: str | None
    cuda_home: str | None  # CUDA_HOME or CUDA_PATH
    cuda_home_version: str | None
    ld_library_path: tuple[str, ...]
    # LD_LIBRARY_PATH entries holding CUDA libraries, with the library names found there.
    cuda_lib_dirs: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class KernelSpec:
    name: str
    path: str  # kernel.json
    display_name: str | None
    argv0: str | None
    argv0_resolved: str | None  # absolute path after PATH lookup (None when not found)
    exists: bool
    runs_this_env: bool
    error: str | None = None  # unreadable / invalid kernel.json


@dataclass(frozen=True)
class JupyterFacts:
    search_path: tuple[str, ...]
    kernels: tuple[KernelSpec, ...]


@dataclass(frozen=True)
class HostFacts:
    cpu: CpuFacts
    shm: ShmFacts
    nofile: NofileFacts
    memory: MemoryFacts
    start_method: str | None
    hostname: str | None
    omp_num_threads: str | None


@dataclass(frozen=True)
class EnvVarFacts:
    """Relevant environment variables, values already redacted."""

    variables: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        for key, value in self.variables:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class EnvFacts:
    """Everything the checks look at. A probe that was not run leaves its field ``None``."""

    python: PythonFacts | None = None
    dists: DistsFacts | None = None
    torch: TorchFacts | None = None
    nvml: NvmlFacts | None = None
    toolkit: ToolkitFacts | None = None
    jupyter: JupyterFacts | None = None
    host: HostFacts | None = None
    envvars: EnvVarFacts | None = None


# ---------------------------------------------------------------- one check's verdict


@dataclass(frozen=True)
class Check:
    """One verdict: what was looked at, what it means, and what to do."""

    id: str
    group: str
    title: str
    status: Status
    summary: str
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None  # a traceback or long text: shown with -v only

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "fix": self.fix,
            "facts": self.facts,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Check:
        return cls(
            id=doc["id"],
            group=doc["group"],
            title=doc.get("title", doc["id"]),
            status=Status(doc["status"]),
            summary=doc.get("summary", ""),
            fix=doc.get("fix"),
            facts=dict(doc.get("facts") or {}),
            detail=doc.get("detail"),
        )


def cudnn_text(v: int | None) -> str | None:
    """cuDNN's integer version as text: 90100 → ``"9.1.0"``, 8902 → ``"8.9.2"``."""
    if v is None:
        return None
    if v >= 90000:  # cuDNN 9+: major*10000 + minor*100 + patch
        return f"{v // 10000}.{(v % 10000) // 100}.{v % 100}"
    return f"{v // 1000}.{(v % 1000) // 100}.{v % 100}"


# ---------------------------------------------------------------- the report

SCHEMA = "dlcheck.env/1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")  # JSON Schema of the document

Comparable = dict[str, "str | int | float | None"]


def comparable_from_facts(facts: EnvFacts) -> Comparable:
    """Flat facts that should be identical on every rank and node of a job."""
    p, t, n, h = facts.python, facts.torch, facts.nvml, facts.host
    tok = t if t is not None and t.ok else None
    gpus = n.gpus if n is not None and n.available else ()
    return {
        "host": h.hostname if h else None,
        "python.version": p.version if p else None,
        "torch.version": tok.version if tok else None,
        "torch.cuda": tok.cuda if tok else None,
        "cudnn.version": cudnn_text(tok.cudnn) if tok else None,
        "nccl.version": tok.nccl if tok and tok.cuda else None,
        "nvidia.driver": n.driver_version if n else None,
        "gpu.models": ", ".join(g.name or "?" for g in gpus) if gpus else None,
        "gpu.count": len(gpus),
        "shm.total_bytes": h.shm.total_bytes if h else None,
        "shm.free_bytes": h.shm.free_bytes if h else None,
        "nofile.soft": h.nofile.soft if h else None,
        "nofile.hard": h.nofile.hard if h else None,
        "cpu.usable": h.cpu.usable if h else None,
        "memory.total_bytes": h.memory.total_bytes if h else None,
        "mp.start_method": h.start_method if h else None,
        "torch.sharing_strategy": tok.sharing_strategy if tok else None,
    }


@dataclass(frozen=True)
class EnvReport:
    """The result of ``dlcheck env``: records you can inspect, render or serialise."""

    checks: tuple[Check, ...]
    facts: dict[str, Any] = field(default_factory=dict)  # probe name -> JSON-able facts
    comparable: Comparable = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # dlcheck version, timing, created_at
    strict: bool = False  # --strict: a warning fails too

    @property
    def statuses(self) -> list[Status]:
        return [c.status for c in self.checks]

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.statuses, strict=self.strict)

    @property
    def summary(self) -> str:
        return summary_line(self.statuses)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status in {Status.WARN, Status.FAIL, Status.ERROR}]

    def comparable_facts(self) -> Comparable:
        return dict(self.comparable)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for x in self.statuses if x is s) for s in Status}

    def to_dict(self) -> dict[str, Any]:
        from dlcheck.output import to_jsonable

        return {
            "schema": SCHEMA,
            **{k: to_jsonable(v) for k, v in self.meta.items()},
            "exit_code": self.exit_code,
            "strict": self.strict,
            "summary": {"text": self.summary, **self.counts()},
            "checks": [c.to_dict() for c in self.checks],
            "comparable": dict(self.comparable),
            "facts": to_jsonable(self.facts),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EnvReport:
        """Rebuild a report from a ``dlcheck.env/1`` document (e.g. one merged from ranks)."""
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document: schema={doc.get('schema')!r}")
        meta_keys = {"dlcheck_version", "created_at", "duration_s", "torch_probe_s"}
        return cls(
            checks=tuple(Check.from_dict(c) for c in doc.get("checks", [])),
            facts=dict(doc.get("facts") or {}),
            comparable=dict(doc.get("comparable") or {}),
            meta={k: v for k, v in doc.items() if k in meta_keys},
            strict=bool(doc.get("strict")),
        )

    def render(self, console: Any, *, verbose: bool = False) -> None:
        from dlcheck.env.render import render_console

        render_console(self, console, verbose=verbose)

    def _repr_html_(self) -> str:  # notebooks
        from html import escape

        rows = "".join(
            f"<tr><td>{c.status.symbol} {c.status.value}</td><td><code>{escape(c.id)}</code></td>"
            f"<td>{escape(c.summary)}{'<br><i>fix: ' + escape(c.fix) + '</i>' if c.fix and c.status not in (Status.PASS, Status.SKIP) else ''}</td></tr>"  # noqa: E501
            for c in self.checks
        )
        from dlcheck.redact import scrub

        return scrub(
            f"<p><b>dlcheck env</b>: {escape(self.summary)}</p>"
            f"<table><tr><th>status</th><th>check</th><th>result</th></tr>{rows}</table>"
        )


def rank_input(entry: dict[str, Any]) -> dict[str, Any]:
    """One rank's entry of the distributed document as :mod:`dlcheck.ranks.cluster` reads it."""
    out: dict[str, Any] = {
        "rank": entry["rank"],
        "local_rank": entry.get("local_rank"),
        "host": entry.get("host"),
    }
    if entry.get("error"):
        return {**out, "error": entry["error"]}
    return {**out, "facts": dict(entry.get("comparable") or {}), "checks": entry.get("checks", [])}


@dataclass(frozen=True)
class DistEnvReport:
    """``dlcheck env`` across ranks, as rank 0 sees it: every rank's report, merged.

    ``ranks`` holds one entry per rank, in rank order: that rank's ``dlcheck.env/1`` document
    with ``rank``, ``local_rank`` and ``host`` added, or ``{"rank", "local_rank", "host",
    "error": {"kind", "message", "hint", "exit_code"}}`` when its run failed. ``nodes``,
    ``cluster_checks`` and ``checks`` (the per-rank checks merged: worst status, plus
    ``"ranks": {status: [ranks]}``) come from :func:`dlcheck.ranks.cluster.merge_env_reports`.
    """

    launcher: str
    world_size: int
    ranks: tuple[dict[str, Any], ...]
    nodes: tuple[dict[str, Any], ...]
    cluster_checks: tuple[dict[str, Any], ...]
    checks: tuple[dict[str, Any], ...]
    meta: dict[str, Any] = field(default_factory=dict)
    # The code every rank exits with (agreed across ranks); None until it is known.
    agreed_exit: int | None = None
    strict: bool = False  # --strict: a warning fails too

    @classmethod
    def from_ranks(
        cls,
        entries: list[dict[str, Any]],
        *,
        launcher: str,
        world_size: int,
        meta: dict[str, Any] | None = None,
        strict: bool = False,
    ) -> DistEnvReport:
        from dlcheck.ranks.cluster import merge_env_reports

        entries = sorted(entries, key=lambda e: int(e["rank"]))
        merged = merge_env_reports([rank_input(e) for e in entries], world_size)
        return cls(
            launcher=launcher,
            world_size=world_size,
            ranks=tuple(entries),
            nodes=tuple(merged["nodes"]),
            cluster_checks=tuple(merged["cluster_checks"]),
            checks=tuple(merged["checks"]),
            meta=dict(meta or {}),
            strict=strict,
        )

    @property
    def statuses(self) -> list[Status]:
        return [Status(c["status"]) for c in (*self.cluster_checks, *self.checks)]

    @property
    def exit_code(self) -> int:
        """The agreed code when known, else what the merged checks say."""
        own = exit_code_for(self.statuses, strict=self.strict)
        return max(own, self.agreed_exit) if self.agreed_exit is not None else own

    @property
    def summary(self) -> str:
        return summary_line(self.statuses)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for x in self.statuses if x is s) for s in Status}

    def failed_ranks(self) -> list[int]:
        return [int(e["rank"]) for e in self.ranks if e.get("error")]

    def node_labels(self) -> dict[str, str]:
        """host → ``node0``, ``node1``, … in order of each host's first rank."""
        return {str(n["host"]): f"node{i}" for i, n in enumerate(self.nodes)}

    def check_records(self, *, with_ranks: bool = False) -> list[Check]:
        """Cluster checks then merged per-rank checks, as :class:`Check` records for rendering.

        ``with_ranks`` adds the ``{status: [ranks]}`` map to each merged check's facts.
        """
        out = [Check.from_dict(c) for c in self.cluster_checks]
        for c in self.checks:
            check = Check.from_dict(c)
            if with_ranks and c.get("ranks"):
                check = Check.from_dict({**c, "facts": {"ranks": c["ranks"], **check.facts}})
            out.append(check)
        return out

    def to_dict(self) -> dict[str, Any]:
        from dlcheck.output import to_jsonable

        return {
            "schema": SCHEMA,
            **{k: to_jsonable(v) for k, v in self.meta.items()},
            "exit_code": self.exit_code,
            "strict": self.strict,
            "launcher": self.launcher,
            "world_size": self.world_size,
            "summary": {"text": self.summary, **self.counts()},
            "nodes": to_jsonable(list(self.nodes)),
            "cluster_checks": to_jsonable(list(self.cluster_checks)),
            "checks": to_jsonable(list(self.checks)),
            "ranks": to_jsonable(list(self.ranks)),
        }

    def render(self, console: Any, *, verbose: bool = False) -> None:
        from dlcheck.env.render import render_dist_console

        render_dist_console(self, console, verbose=verbose)
