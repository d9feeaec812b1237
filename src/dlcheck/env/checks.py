"""The checks: pure functions from facts to a verdict. No I/O here.

Each check has a stable id (``group.name``), declares the probes it needs, and returns a
:class:`Check` whose ``facts`` are the values it looked at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlcheck.env import tables
from dlcheck.env.facts import DistFacts, EnvFacts, GpuFacts, TorchFacts
from dlcheck.env.nvml import ABSENT_CODES, cause_and_fix
from dlcheck.records import Status

GROUPS: dict[str, str] = {
    "python": "Python and environment",
    "torch": "PyTorch build",
    "integrity": "Environment integrity",
    "nvidia": "NVIDIA driver and GPUs",
    "cuda": "CUDA cross-layer",
    "toolkit": "CUDA toolkit (for building extensions)",
    "libs": "Domain libraries",
    "jupyter": "Jupyter",
    "host": "Host limits for data loading",
    "envvars": "Environment variables",
}

PYTORCH_INSTALL = "https://pytorch.org/get-started/locally/"


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


@dataclass(frozen=True)
class Verdict:
    status: Status
    summary: str
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None


CheckFn = Callable[[EnvFacts], Verdict]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    # Probes it reads: python dists torch nvml toolkit jupyter host envvars; a trailing "?"
    # marks one the check can do without (it degrades to a weaker verdict).
    needs: tuple[str, ...]
    fn: CheckFn

    @property
    def probes(self) -> set[str]:
        """Probes to run for this check: optional ones only run when another check needs them
        (so ``--check host`` stays instant instead of waiting for ``import torch``)."""
        return set(self.required)

    @property
    def required(self) -> list[str]:
        return [n for n in self.needs if not n.endswith("?")]

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: list[CheckSpec] = []


def check(id: str, title: str, *needs: str) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        REGISTRY.append(CheckSpec(id, title, tuple(needs), fn))
        return fn

    return deco


def V(
    status: Status, summary: str, fix: str | None = None, detail: str | None = None, **facts: Any
) -> Verdict:
    return Verdict(status, summary, fix, facts, detail)


def _skip(summary: str, **facts: Any) -> Verdict:
    return Verdict(Status.SKIP, summary, None, facts)


def gib(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"


def _mm(version: str | None) -> str:
    return ".".join((version or "").split("+")[0].split(".")[:2])


def _public(version: str) -> str:
    return version.split("+", 1)[0]


def _torch_ok(f: EnvFacts) -> TorchFacts | None:
    return f.torch if f.torch is not None and f.torch.ok else None


def _torch_skip(f: EnvFacts) -> Verdict:
    if f.torch is None or not f.torch.ran:
        return _skip("not checked: torch facts not collected")
    return _skip("not checked: torch does not import (see torch.import)")


def _gpus(f: EnvFacts) -> tuple[GpuFacts, ...]:
    return f.nvml.gpus if f.nvml is not None and f.nvml.available else ()


def cudnn_text(v: int | None) -> str | None:
    if v is None:
        return None
    if v >= 90000:  # cuDNN 9+: major*10000 + minor*100 + patch
        return f"{v // 10000}.{(v % 10000) // 100}.{v % 100}"
    return f"{v // 1000}.{(v % 1000) // 100}.{v % 100}"


def wheel_index(cuda: str | None) -> str:
    """The PyTorch wheel index for a CUDA version (or the newest the driver supports)."""
    known = ["11.8", "12.1", "12.4", "12.6", "12.8", "12.9", "13.0"]
    if not cuda:
        return "https://download.pytorch.org/whl/cu128"
    target = tables.version_tuple(cuda)
    fit = [k for k in known if tables.version_tuple(k) <= target]
    pick = fit[-1] if fit else known[0]
    return "https://download.pytorch.org/whl/cu" + pick.replace(".", "")


# ---------------------------------------------------------------- Python and environment


@check("python.version", "Python interpreter", "python")
def _python_version(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    return V(
        Status.PASS,
        f"Python {p.version} ({p.implementation}) at {p.executable}",
        version=p.version,
        executable=p.executable,
        platform=p.platform,
        machine=p.machine,
    )


@check("python.environment", "Virtual environment or conda env", "python")
def _python_env(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    facts: dict[str, Any] = {
        "prefix": p.prefix,
        "base_prefix": p.base_prefix,
        "conda_env": p.conda_env,
    }
    if p.conda_env:
        return V(Status.PASS, f"conda env '{p.conda_env}' at {p.prefix}", kind="conda", **facts)
    if p.venv:
        return V(Status.PASS, f"virtual environment at {p.prefix}", kind="venv", **facts)
    return V(
        Status.INFO,
        f"no virtual environment: the system interpreter at {p.prefix}",
        "Use a virtual environment per project: `python -m venv .venv && . .venv/bin/activate`.",
        kind="system",
        **facts,
    )


@check("python.torch_support", "torch supports this Python", "python", "dists")
def _torch_python(f: EnvFacts) -> Verdict:
    p, d = f.python, f.dists
    assert p is not None and d is not None
    dist = d.get("torch")
    if dist is None:
        return _skip("torch is not installed")
    py = tuple(int(x) for x in p.version.split(".")[:2])
    facts: dict[str, Any] = {
        "python": p.version,
        "torch": dist.version,
        "wheel_tags": list(dist.wheel_tags),
        "requires_python": dist.requires_python,
    }
    interp = sorted({t.split("-")[0] for t in dist.wheel_tags if t.startswith("cp")})
    if interp and p.abi_tag not in interp:
        return V(
            Status.FAIL,
            f"torch {dist.version} was built for {', '.join(interp)}, but this is {p.abi_tag} "
            f"(Python {p.version})",
            "Install torch for this Python: `python -m pip install --force-reinstall torch` "
            f"(command for your CUDA at {PYTORCH_INSTALL}).",
            **facts,
        )
    rng = tables.torch_python_range(dist.version)
    if rng is not None:
        lo, hi = rng
        facts["supported"] = f"{lo[0]}.{lo[1]}–{hi[0]}.{hi[1]}"
        facts["source"] = tables.PYTORCH_RELEASE_MATRIX
        if not lo <= py <= hi:
            return V(
                Status.WARN,
                f"torch {_mm(dist.version)} supports Python {facts['supported']}, this is "
                f"{p.version}",
                "Use a supported Python, or a torch release that supports this one.",
                **facts,
            )
        return V(
            Status.PASS,
            f"torch {_mm(dist.version)} supports Python {facts['supported']}",
            **facts,
        )
    if dist.requires_python:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            ok = SpecifierSet(dist.requires_python).contains(p.version)
        except InvalidSpecifier:
            ok = True
        if not ok:
            return V(
                Status.WARN,
                f"torch {dist.version} requires Python {dist.requires_python}, this is {p.version}",
                "Use a supported Python, or a torch release that supports this one.",
                **facts,
            )
        return V(
            Status.PASS,
            f"torch {dist.version} requires Python {dist.requires_python}: {p.version} is in range",
            **facts,
        )
    return V(Status.INFO, f"no support data for torch {dist.version}", **facts)


RELEVANT = {
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "triton",
    "lightning",
    "pytorch-lightning",
    "hydra-core",
    "tensorboard",
    "tensorboardx",
    "timm",
    "transformers",
    "jupyter",
    "notebook",
    "jupyterlab",
    "ipykernel",
    "jupyter-client",
    "pyzmq",
    "numpy",
}
TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "torchtext", "triton"}


def _is_relevant(name: str) -> bool:
    return name in RELEVANT or name.startswith("nvidia-")


@check("python.requirements", "Requirements of the relevant packages", "dists")
def _requirements(f: EnvFacts) -> Verdict:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    d = f.dists
    assert d is not None
    first: dict[str, DistFacts] = {}
    for dist in d.dists:
        first.setdefault(dist.name, dist)
    broken: list[str] = []
    fixes: list[str] = []
    severe = False
    for name, dist in sorted(first.items()):
        if not _is_relevant(name):
            continue
        for req in dist.requires:
            have = first.get(req.name)
            if have is None:
                problem = f"{dist.name} {dist.version} requires {req.text}, which is not installed"
            else:
                try:
                    ok = SpecifierSet(req.specifier).contains(have.version, prereleases=True)
                except InvalidSpecifier:
                    ok = True
                if ok:
                    continue
                problem = (
                    f"{dist.name} {dist.version} requires {req.text}, "
                    f"but {have.version} is installed"
                )
            broken.append(problem)
            fixes.append(f"python -m pip install '{req.name}{req.specifier}'")
            if (
                dist.name in TORCH_FAMILY
                or req.name in TORCH_FAMILY
                or req.name.startswith("nvidia-")
            ):
                severe = True
    if d.error:
        return V(Status.WARN, f"could not read every package's metadata: {d.error}", error=d.error)
    if not broken:
        return V(Status.PASS, "requirements of torch and the domain libraries are satisfied")
    shown = "; ".join(broken[:3]) + (f" (and {len(broken) - 3} more)" if len(broken) > 3 else "")
    return V(
        Status.FAIL if severe else Status.WARN,
        shown,
        "Install the required versions: `"
        + " && ".join(dict.fromkeys(fixes[:3]))
        + "`"
        + " (or reinstall the package that pins them).",
        broken=broken,
    )


# ---------------------------------------------------------------- PyTorch build

_IMPORT_FIXES: tuple[tuple[str, str], ...] = (
    (
        r"No module named 'torch\._C'",
        "A `torch/` directory without the compiled extension shadows the install — usually the "
        "PyTorch source tree in the current directory: run from another directory.",
    ),
    (
        r"No module named 'torch'$",
        f"Install PyTorch with the command for your platform from {PYTORCH_INSTALL}.",
    ),
    (
        r"lib(cudart|cublas|cublasLt|cudnn|nccl|cusparse|cufft|curand|nvJitLink|cupti)\S*\.so",
        "A CUDA library that this torch build needs cannot be loaded. Reinstall torch with its "
        "CUDA dependencies: `python -m pip install --force-reinstall torch --index-url "
        "https://download.pytorch.org/whl/cu128` (pick your CUDA at "
        f"{PYTORCH_INSTALL}); if you set LD_LIBRARY_PATH, unset it and retry.",
    ),
    (
        r"undefined symbol",
        "Two incompatible builds are mixed (torch and its libraries, or pip and conda). "
        "Uninstall torch until `python -c 'import torch'` fails with 'No module named torch', "
        "then reinstall once.",
    ),
    (
        r"numpy|_ARRAY_API",
        "This torch was built against a different NumPy major version: "
        "`python -m pip install 'numpy<2'` or upgrade torch.",
    ),
)


def import_fix(error: str | None, timed_out: bool = False) -> str:
    if timed_out:
        return (
            "Retry with a longer limit (`dlcheck env --timeout 300`); if it still hangs, run "
            "`python -X importtime -c 'import torch'` to see which module stalls."
        )
    for pattern, fix in _IMPORT_FIXES:
        if error and re.search(pattern, error):
            return fix
    return (
        "Run `python -c 'import torch'` to see the full error; reinstall torch with the "
        f"command from {PYTORCH_INSTALL}."
    )


@check("torch.import", "import torch", "torch")
def _torch_import(f: EnvFacts) -> Verdict:
    t = f.torch
    assert t is not None
    if t.ok:
        return V(
            Status.PASS,
            f"import torch {t.version} in {t.import_seconds or 0:.1f} s",
            version=t.version,
            file=t.file,
            import_seconds=round(t.import_seconds or 0, 3),
        )
    where = f" ({os.path.dirname(t.file)})" if t.file else ""
    return V(
        Status.FAIL,
        f"import torch{where} failed: {t.error}",
        import_fix(t.error, t.timed_out),
        detail=t.traceback or t.stderr_tail,
        error=t.error,
        file=t.file,
        timed_out=t.timed_out,
    )


@check("torch.build", "torch build variant", "torch")
def _torch_build(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    parts = [f"torch {t.version}", f"variant {t.variant}"]
    if t.cuda:
        parts.append(f"CUDA {t.cuda}")
    if t.cudnn:
        parts.append(f"cuDNN {cudnn_text(t.cudnn)}")
    if t.hip:
        parts.append(f"HIP {t.hip}")
    return V(
        Status.PASS,
        ", ".join(parts),
        version=t.version,
        variant=t.variant,
        cuda=t.cuda,
        hip=t.hip,
        cudnn=cudnn_text(t.cudnn),
        arch_list=list(t.arch_list),
        nccl=t.nccl,
        num_threads=t.num_threads,
        file=t.file,
    )


# ---------------------------------------------------------------- integrity


@check("integrity.duplicates", "One copy of each package on sys.path", "dists", "torch")
def _duplicates(f: EnvFacts) -> Verdict:
    d = f.dists
    assert d is not None
    t = _torch_ok(f)
    problems: list[str] = []
    copies: dict[str, list[str]] = {}
    severe = False
    names = sorted({x.name for x in d.dists if _is_relevant(x.name)})
    for name in names:
        dists = d.all_named(name)
        if len(dists) < 2:
            continue
        listed = [f"{x.version} at {x.location}" for x in dists]
        copies[name] = listed
        problems.append(f"{name}: " + ", ".join(listed))
        if len({x.version for x in dists}) > 1 and name in TORCH_FAMILY:
            severe = True
    mismatch = None
    first = d.get("torch")
    # Compare public versions: wheels from download.pytorch.org record "2.11.0" in their
    # metadata while torch.__version__ says "2.11.0+cu130".
    if (
        t is not None
        and first is not None
        and t.version
        and _public(first.version) != _public(t.version)
    ):
        mismatch = (
            f"the torch metadata pip sees says {first.version} ({first.location}) but the "
            f"imported torch is {t.version} ({t.file})"
        )
        severe = True
    if not problems and not mismatch:
        return V(Status.PASS, "one distribution of torch and each domain library")
    summary = "; ".join(([mismatch] if mismatch else []) + problems)
    return V(
        Status.FAIL if severe else Status.WARN,
        "more than one installed copy: " + summary,
        "Keep one copy: remove the stale ones (each is a *.dist-info directory at the location "
        "shown: `python -m pip uninstall NAME` removes the first one on sys.path; check "
        "PYTHONPATH and ~/.local), then reinstall from one source (pip or conda, not both).",
        copies=copies,
        metadata_mismatch=mismatch,
    )


@check("integrity.torch_location", "torch comes from the active environment", "python", "torch")
def _torch_location(f: EnvFacts) -> Verdict:
    p = f.python
    assert p is not None
    t = _torch_ok(f)
    if t is None or not t.file:
        return _torch_skip(f)
    where = os.path.abspath(t.file)

    def inside(root: str | None) -> bool:
        return bool(root) and where.startswith(os.path.join(os.path.abspath(str(root)), ""))

    facts: dict[str, Any] = {"torch_file": t.file, "prefix": p.prefix, "user_site": p.user_site}
    if inside(p.user_site):
        return V(
            Status.WARN,
            f"torch is imported from the user site ({p.user_site}), shadowing the environment's",
            "`python -m pip uninstall torch` (run it outside the env to remove the ~/.local copy),"
            " or set PYTHONNOUSERSITE=1.",
            **facts,
        )
    if inside(p.prefix):
        return V(Status.PASS, f"torch is imported from {os.path.dirname(t.file)}", **facts)
    if p.venv and inside(p.base_prefix):
        return V(
            Status.WARN,
            f"torch is imported from the base interpreter ({p.base_prefix}), not the venv",
            "Install torch into the venv, or recreate it without --system-site-packages.",
            **facts,
        )
    return V(
        Status.WARN,
        f"torch is imported from outside the active environment: {os.path.dirname(t.file)}",
        "Remove that directory from PYTHONPATH (or sys.path tweaks) and install torch into "
        f"{p.prefix}.",
        **facts,
    )


# ---------------------------------------------------------------- NVIDIA


def _cuda_build(f: EnvFacts) -> bool:
    t = _torch_ok(f)
    return bool(t and (t.cuda or t.hip))


@check("nvidia.driver", "NVIDIA driver (NVML)", "nvml", "torch?")
def _nvidia_driver(f: EnvFacts) -> Verdict:
    n = f.nvml
    assert n is not None
    if n.available:
        return V(
            Status.PASS,
            f"NVIDIA driver {n.driver_version} (supports CUDA up to {n.cuda_driver_version})",
            driver=n.driver_version,
            cuda_driver=n.cuda_driver_version,
        )
    if n.error_code in ABSENT_CODES:
        return _skip(f"no NVIDIA driver: {n.error}", error_code=n.error_code)
    cf = cause_and_fix(n.error_code)
    status = Status.FAIL
    if n.error_code == "NVML_ERROR_DRIVER_NOT_LOADED" and not _cuda_build(f):
        status = Status.WARN
    return V(
        status,
        f"NVML: {n.error} ({n.error_code})",
        cf[1] if cf else "Check `dmesg` for NVIDIA (NVRM/Xid) messages and reboot.",
        error_code=n.error_code,
        driver=n.driver_version,
    )


@check("nvidia.gpus", "GPUs", "nvml")
def _nvidia_gpus(f: EnvFacts) -> Verdict:
    n = f.nvml
    assert n is not None
    if not n.available:
        return _skip("no GPUs visible to NVML")
    if not n.gpus:
        return V(Status.INFO, "the NVIDIA driver is loaded but reports no GPU")
    lines = []
    for g in n.gpus:
        cc = (
            f"sm_{g.compute_capability[0]}{g.compute_capability[1]}"
            if g.compute_capability
            else "sm_?"
        )
        mig = ", MIG on" if g.mig_enabled else ""
        lines.append(f"{g.index}: {g.name} ({gib(g.memory_total_bytes)}, {cc}{mig})")
    fix = None
    if any(g.mig_enabled for g in n.gpus):
        fix = "MIG is on: select instances with CUDA_VISIBLE_DEVICES=MIG-<uuid> (`nvidia-smi -L`)."
    return V(
        Status.PASS,
        f"{len(n.gpus)} GPU{'s' if len(n.gpus) != 1 else ''}: " + "; ".join(lines),
        fix,
        gpus=[
            {
                "index": g.index,
                "name": g.name,
                "memory_total_bytes": g.memory_total_bytes,
                "compute_capability": ".".join(map(str, g.compute_capability))
                if g.compute_capability
                else None,
                "mig_enabled": g.mig_enabled,
            }
            for g in n.gpus
        ],
    )


# ---------------------------------------------------------------- CUDA cross-layer


@check("cuda.driver_floor", "Driver new enough for the wheel's CUDA", "torch", "nvml", "python?")
def _driver_floor(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    if not t.cuda:
        return _skip(f"torch is a {t.variant} build (no CUDA runtime to match)")
    n = f.nvml
    assert n is not None
    if not n.driver_version:
        return _skip("no NVIDIA driver to compare with", cuda=t.cuda)
    windows = f.python is not None and f.python.platform == "win32"
    row = tables.driver_floor(t.cuda, windows)
    if row is None:
        return V(Status.INFO, f"no driver table row for CUDA {t.cuda}", cuda=t.cuda)
    floor = row.windows if windows else row.linux
    facts: dict[str, Any] = {
        "cuda": t.cuda,
        "driver": n.driver_version,
        "driver_cuda": n.cuda_driver_version,
        "minimum_driver": floor,
        "source": row.source,
    }
    if not tables.driver_at_least(n.driver_version, floor):
        return V(
            Status.FAIL,
            f"driver {n.driver_version} is older than {floor}, the minimum for CUDA "
            f"{row.cuda_major}.x wheels (torch is built with CUDA {t.cuda}): CUDA cannot start",
            f"Upgrade the NVIDIA driver to {floor} or newer, or install a torch wheel for the "
            "CUDA your driver supports: `python -m pip install --force-reinstall torch "
            f"--index-url {wheel_index(n.cuda_driver_version)}`.",
            **facts,
        )
    note = ""
    if n.cuda_driver_version and tables.version_tuple(n.cuda_driver_version) < tables.version_tuple(
        t.cuda
    ):
        note = (
            f" (the driver supports CUDA {n.cuda_driver_version} < {t.cuda}: minor-version "
            "compatibility, PTX JIT of newer kernels needs a newer driver)"
        )
    return V(
        Status.PASS,
        f"driver {n.driver_version} ≥ {floor} for CUDA {t.cuda}{note}",
        **facts,
    )


@check("cuda.cpu_wheel", "GPU build when a GPU is present", "torch", "nvml")
def _cpu_wheel(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    gpus = _gpus(f)
    if t.cuda or t.hip:
        return V(Status.PASS, f"{t.variant} build", variant=t.variant)
    if not gpus:
        return V(Status.PASS, "CPU build and no NVIDIA GPU", variant=t.variant)
    n = f.nvml
    assert n is not None
    return V(
        Status.FAIL,
        f"a CPU-only torch ({t.version}) while {len(gpus)} NVIDIA GPU"
        f"{'s are' if len(gpus) != 1 else ' is'} present: the GPU cannot be used",
        "Install the CUDA build: `python -m pip install --force-reinstall torch --index-url "
        f"{wheel_index(n.cuda_driver_version)}`.",
        variant=t.variant,
        gpus=len(gpus),
    )


@check("cuda.arch_list", "The wheel has kernels for each GPU", "torch", "nvml")
def _arch_list(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    if not t.cuda:
        return _skip(f"torch is a {t.variant} build")
    gpus = [g for g in _gpus(f) if g.compute_capability]
    if not gpus:
        return _skip("no GPU compute capability to compare")
    if not t.arch_list:
        return _skip("torch reported no arch list")
    worst = Status.PASS
    lines, missing = [], []
    for g in gpus:
        assert g.compute_capability is not None
        sm = f"sm_{g.compute_capability[0]}{g.compute_capability[1]}"
        how = tables.arch_support(g.compute_capability, t.arch_list)
        lines.append(f"{g.name} ({sm}): {how}")
        if how == "none":
            worst = Status.FAIL
            missing.append(sm)
        elif how == "ptx" and worst is Status.PASS:
            worst = Status.WARN
    archs = " ".join(t.arch_list)
    facts: dict[str, Any] = {"arch_list": list(t.arch_list), "gpus": lines}
    if worst is Status.FAIL:
        return V(
            Status.FAIL,
            f"this torch has no kernels for {', '.join(sorted(set(missing)))} (its arch list: "
            f"{archs}): CUDA calls fail with 'no kernel image is available for execution'",
            f"Install a wheel built for {', '.join(sorted(set(missing)))}: newer GPUs need newer "
            "CUDA wheels (Blackwell sm_100/sm_120 needs CUDA ≥ 12.8): `python -m pip install "
            "--force-reinstall torch --index-url https://download.pytorch.org/whl/cu128`.",
            **facts,
        )
    if worst is Status.WARN:
        return V(
            Status.WARN,
            "no native kernels for: "
            + "; ".join(x for x in lines if x.endswith("ptx"))
            + " — PTX is JIT-compiled at first use (slow start, may fail)",
            "Install a wheel whose arch list includes your GPU (see pytorch.org for the CUDA "
            "versions that support it).",
            **facts,
        )
    return V(Status.PASS, "kernels for every GPU: " + "; ".join(lines), **facts)


def hidden_by_visible_devices(value: str | None, gpu_count: int) -> bool | None:
    """True when CUDA_VISIBLE_DEVICES hides every GPU; None when it cannot tell (UUIDs)."""
    if value is None:
        return False
    v = value.strip()
    if v in {"", "-1", "none", "NoDevFiles", "void"}:
        return True
    first = v.split(",")[0].strip()
    if first.startswith(("GPU-", "MIG-")):
        return None
    try:
        idx = int(first)
    except ValueError:
        return True  # CUDA stops at the first invalid entry
    return idx < 0 or idx >= gpu_count


@check("cuda.visible_devices", "CUDA_VISIBLE_DEVICES", "envvars", "nvml", "torch?")
def _visible_devices(f: EnvFacts) -> Verdict:
    e = f.envvars
    assert e is not None
    value = e.get("CUDA_VISIBLE_DEVICES")
    gpus = _gpus(f)
    if value is None:
        if not gpus:
            return _skip("not set, and no GPU")
        return V(Status.PASS, f"not set: all {len(gpus)} GPU(s) visible to CUDA")
    hidden = hidden_by_visible_devices(value, len(gpus))
    if gpus and hidden:
        return V(
            Status.FAIL,
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU ({len(gpus)} present)",
            "Unset it (`unset CUDA_VISIBLE_DEVICES`) or list GPUs that exist, e.g. "
            "CUDA_VISIBLE_DEVICES=0.",
            value=value,
            gpus=len(gpus),
        )
    t = _torch_ok(f)
    visible = t.device_count if t is not None and (t.cuda or t.hip) else None
    return V(
        Status.INFO if not gpus else Status.PASS,
        f"CUDA_VISIBLE_DEVICES={value!r}"
        + (
            f": {visible} of {len(gpus)} GPUs visible to torch"
            if visible is not None and gpus
            else ""
        ),
        value=value,
        visible=visible,
        gpus=len(gpus),
    )


@check("cuda.available", "torch.cuda.is_available()", "torch", "nvml", "envvars")
def _cuda_available(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    if not (t.cuda or t.hip):
        return _skip("CPU build: CUDA is not compiled in")
    gpus = _gpus(f)
    facts: dict[str, Any] = {
        "cuda_available": t.cuda_available,
        "device_count": t.device_count,
        "nvml_gpus": len(gpus),
        "cuda_init_error": t.cuda_init_error,
    }
    if t.cuda_available:
        return V(Status.PASS, f"CUDA available: {t.device_count} device(s)", **facts)
    if not gpus:
        n = f.nvml
        if n is not None and not n.available and n.error_code not in ABSENT_CODES:
            return V(
                Status.FAIL,
                f"CUDA is not available: {n.error}",
                (
                    cause_and_fix(n.error_code)
                    or ("", "See the NVIDIA driver check above (nvidia.driver).")
                )[1],
                **facts,
            )
        return V(Status.INFO, "CUDA build, but no NVIDIA GPU here: torch runs on the CPU", **facts)
    # GPUs exist but torch cannot use them: say why.
    cause, fix = None, None
    e = f.envvars
    if e is not None and hidden_by_visible_devices(e.get("CUDA_VISIBLE_DEVICES"), len(gpus)):
        cause, fix = (
            "CUDA_VISIBLE_DEVICES hides every GPU",
            "Fix CUDA_VISIBLE_DEVICES (see cuda.visible_devices above).",
        )
    elif t.cuda and f.nvml and f.nvml.driver_version:
        row = tables.driver_floor(t.cuda)
        if row and not tables.driver_at_least(f.nvml.driver_version, row.linux):
            cause, fix = (
                "the driver is too old for this wheel",
                "Upgrade the driver or change the wheel (see cuda.driver_floor above).",
            )
    if cause is None:
        cause = t.cuda_init_error or "unknown"
        fix = (
            "Check `dmesg` for NVIDIA errors; in a container, start it with `--gpus all`; "
            "make sure /dev/nvidia* exist and are readable."
        )
    return V(
        Status.FAIL,
        f"torch.cuda.is_available() is False although NVML sees {len(gpus)} GPU(s): {cause}",
        fix,
        **facts,
    )


@check("cuda.cudnn", "cuDNN", "torch", "dists?")
def _cudnn(f: EnvFacts) -> Verdict:
    t = _torch_ok(f)
    if t is None:
        return _torch_skip(f)
    if not t.cuda:
        return _skip(f"torch is a {t.variant} build (no cuDNN)")
    if t.cudnn_error:
        return V(
            Status.FAIL,
            f"cuDNN cannot be used: {t.cudnn_error}",
            "The cuDNN that loads is not the one torch was built with: unset LD_LIBRARY_PATH "
            "and reinstall torch (`python -m pip install --force-reinstall torch`).",
            error=t.cudnn_error,
        )
    if t.cudnn is None:
        return V(
            Status.FAIL,
            "cuDNN is missing: torch.backends.cudnn.version() is None in a CUDA build",
            "Reinstall torch with its dependencies (it pulls nvidia-cudnn-cuXX): "
            "`python -m pip install --force-reinstall torch`.",
        )
    loaded = cudnn_text(t.cudnn)
    d = f.dists
    dist = None
    if d is not None:
        dist = next((x for x in d.dists if re.fullmatch(r"nvidia-cudnn-cu\d+", x.name)), None)
    if dist is not None and loaded and dist.version.split(".")[0] != loaded.split(".")[0]:
        return V(
            Status.FAIL,
            f"cuDNN {loaded} is loaded but {dist.name} {dist.version} is installed: another "
            "cuDNN shadows the wheel's",
            "Remove the system cuDNN directory from LD_LIBRARY_PATH (see toolkit.ld_library_path)"
            f", or `python -m pip install --force-reinstall {dist.name}`.",
            loaded=loaded,
            installed=dist.version,
        )
    return V(Status.PASS, f"cuDNN {loaded}", loaded=loaded)


# ---------------------------------------------------------------- toolkit


@check("toolkit.nvcc", "nvcc / CUDA_HOME", "toolkit", "torch?")
def _nvcc(f: EnvFacts) -> Verdict:
    k = f.toolkit
    assert k is not None
    t = _torch_ok(f)
    facts: dict[str, Any] = {
        "nvcc": k.nvcc_path,
        "nvcc_version": k.nvcc_version,
        "cuda_home": k.cuda_home,
        "cuda_home_version": k.cuda_home_version,
    }
    if k.cuda_home and not os.path.isdir(k.cuda_home):
        return V(
            Status.WARN,
            f"CUDA_HOME points to {k.cuda_home}, which does not exist",
            "Unset CUDA_HOME or point it at an installed toolkit (e.g. /usr/local/cuda).",
            **facts,
        )
    if not k.nvcc_path:
        return V(
            Status.INFO,
            "no nvcc: only needed to build CUDA extensions; torch ships its own CUDA runtime",
            **facts,
        )
    ver = k.nvcc_version or "?"
    if t and t.cuda:
        runtime = f"torch uses its own CUDA {t.cuda} runtime"
    elif t:
        runtime = "torch here is a CPU build"
    else:
        runtime = "not the runtime torch uses"
    if t and t.cuda and k.nvcc_version and k.nvcc_version.split(".")[0] != t.cuda.split(".")[0]:
        return V(
            Status.WARN,
            f"nvcc {ver} (toolkit for building extensions) has a different major version than "
            f"torch's CUDA {t.cuda}: building CUDA extensions will fail",
            f"Install CUDA toolkit {t.cuda.split('.')[0]}.x and point CUDA_HOME at it before "
            "building extensions.",
            **facts,
        )
    return V(
        Status.INFO,
        f"nvcc {ver} at {k.nvcc_path}: the toolkit for building extensions ({runtime})",
        **facts,
    )


@check(
    "toolkit.ld_library_path",
    "LD_LIBRARY_PATH does not shadow the wheel's CUDA",
    "toolkit",
    "dists?",
)
def _ld_library_path(f: EnvFacts) -> Verdict:
    k = f.toolkit
    assert k is not None
    d = f.dists
    if not k.cuda_lib_dirs:
        return V(
            Status.PASS,
            "no CUDA libraries on LD_LIBRARY_PATH"
            if k.ld_library_path
            else "LD_LIBRARY_PATH not set",
            ld_library_path=list(k.ld_library_path),
        )
    bundled = d is not None and any(x.name.startswith("nvidia-") for x in d.dists)
    found = "; ".join(f"{p} ({', '.join(libs)})" for p, libs in k.cuda_lib_dirs)
    facts: dict[str, Any] = {"cuda_lib_dirs": {p: list(libs) for p, libs in k.cuda_lib_dirs}}
    if bundled:
        return V(
            Status.WARN,
            "LD_LIBRARY_PATH holds CUDA libraries that can shadow the ones the wheel ships: "
            + found,
            "Remove these directories from LD_LIBRARY_PATH when running PyTorch (the pip wheel "
            "brings its own CUDA libraries as nvidia-* packages).",
            **facts,
        )
    return V(Status.INFO, f"CUDA libraries on LD_LIBRARY_PATH: {found}", **facts)


# ---------------------------------------------------------------- domain libraries


@dataclass(frozen=True)
class Library:
    check_id: str
    title: str
    dists: tuple[str, ...]
    modules: tuple[str, ...]
    tied: bool  # releases are built against one torch release
    needs_torch: bool = True  # importing it imports torch


LIBRARIES: tuple[Library, ...] = (
    Library("libs.torchvision", "torchvision", ("torchvision",), ("torchvision",), True),
    Library("libs.torchaudio", "torchaudio", ("torchaudio",), ("torchaudio",), True),
    Library("libs.torchtext", "torchtext", ("torchtext",), ("torchtext",), True),
    Library(
        "libs.lightning",
        "Lightning",
        ("lightning", "pytorch-lightning"),
        ("lightning", "pytorch_lightning"),
        False,
    ),
    Library("libs.hydra", "hydra-core", ("hydra-core",), ("hydra",), False, False),
    Library(
        "libs.tensorboard",
        "TensorBoard / tensorboardX",
        ("tensorboard", "tensorboardx"),
        ("tensorboard", "tensorboardX"),
        False,
        False,
    ),
    Library("libs.timm", "timm", ("timm",), ("timm",), False),
    Library(
        "libs.transformers", "transformers", ("transformers",), ("transformers",), False, False
    ),
)


def _library_check(lib: Library) -> CheckFn:
    def fn(f: EnvFacts) -> Verdict:
        d = f.dists
        assert d is not None
        installed = [x for name in lib.dists if (x := d.get(name)) is not None]
        if not installed:
            return _skip(f"{lib.title}: not installed")
        versions = ", ".join(f"{x.name} {x.version}" for x in installed)
        facts: dict[str, Any] = {"installed": {x.name: x.version for x in installed}}
        t = f.torch
        if t is None or not t.ran:
            return V(Status.INFO, versions, **facts)
        if not t.ok and lib.needs_torch:
            return _skip(f"{versions}: not imported (torch does not import)", **facts)
        for dist_name, mod_name in zip(lib.dists, lib.modules, strict=True):
            m = t.module(mod_name)
            if m is None or d.get(dist_name) is None:
                continue  # not that library's distribution, or the child never got to it
            if not m.found:
                return V(
                    Status.FAIL,
                    f"{versions} is installed but `import {mod_name}` finds no module",
                    f"Reinstall it: `python -m pip install --force-reinstall {dist_name}`.",
                    **facts,
                )
            if not m.ok and m.how == "extension":
                pairing = tables.expected_pairing(installed[0].name, t.version or "")
                pkg = installed[0].name
                fix = (
                    f"Reinstall {pkg} built for this torch: `python -m pip install "
                    f"--force-reinstall {pkg}` from the same index URL as torch."
                )
                if pairing and pairing.expected:
                    fix = (
                        f"Install the {pkg} release built for torch {_mm(t.version)}: "
                        f"`python -m pip install '{pkg}=={pairing.expected}.*'` "
                        "(from the same index URL as torch)."
                    )
                return V(
                    Status.FAIL,
                    f"{versions}: its C++ extension does not load with torch {t.version} "
                    f"(`import {mod_name}` fails or its ops are missing): {m.error}",
                    fix,
                    detail=m.traceback,
                    error=m.error,
                    extension=m.file,
                    **facts,
                )
            if not m.ok:
                pairing = tables.expected_pairing(installed[0].name, t.version or "")
                pkg = installed[0].name
                fix = (
                    f"Reinstall {pkg} for this environment: "
                    f"`python -m pip install --force-reinstall {pkg}`."
                )
                if pairing and pairing.expected:
                    fix = (
                        f"Install the {pkg} release built for torch {_mm(t.version)}: "
                        f"`python -m pip install '{pkg}=={pairing.expected}.*'` "
                        "(from the same index URL as torch)."
                    )
                return V(
                    Status.FAIL,
                    f"import {mod_name} failed: {m.error}",
                    fix,
                    detail=m.traceback,
                    error=m.error,
                    **facts,
                )
        if lib.tied and t.version:
            x = installed[0]
            pairing = tables.expected_pairing(x.name, t.version)
            if pairing is not None:
                facts.update(expected=pairing.expected, source=pairing.source, note=pairing.note)
                if not pairing.expected:
                    return V(
                        Status.WARN,
                        f"{x.name} {x.version} with torch {t.version}: {pairing.note}; "
                        "torchtext is no longer developed",
                        f"Uninstall it (`python -m pip uninstall {x.name}`) or use torch 2.3 with "
                        f"{x.name} 0.18.",
                        **facts,
                    )
                if not tables.library_matches(x.version, pairing.expected):
                    return V(
                        Status.FAIL,
                        f"{x.name} {x.version} does not pair with torch {t.version} (torch "
                        f"{_mm(t.version)} needs {x.name} {pairing.expected}.x)",
                        f"`python -m pip install '{x.name}=={pairing.expected}.*'` from the same "
                        "index URL as torch (or install both in one command).",
                        **facts,
                    )
                return V(
                    Status.PASS,
                    f"{versions} (pairs with torch {_mm(t.version)})",
                    **facts,
                )
        return V(Status.PASS, versions, **facts)

    return fn


for _lib in LIBRARIES:
    REGISTRY.append(CheckSpec(_lib.check_id, _lib.title, ("dists", "torch"), _library_check(_lib)))


# ---------------------------------------------------------------- Jupyter


@check("jupyter.kernels", "Jupyter kernels point at existing interpreters", "jupyter")
def _kernels(f: EnvFacts) -> Verdict:
    j = f.jupyter
    assert j is not None
    if not j.kernels:
        return _skip("no kernelspecs on the Jupyter path", search_path=list(j.search_path))
    dead = [k for k in j.kernels if k.argv0 and not k.exists]
    broken = [k for k in j.kernels if k.error]
    facts: dict[str, Any] = {
        "kernels": [
            {"name": k.name, "path": k.path, "argv0": k.argv0, "exists": k.exists}
            for k in j.kernels
        ]
    }
    problems = [
        f"kernel '{k.name}' ({k.path}) runs {k.argv0}, which no longer exists" for k in dead
    ] + [f"kernel '{k.name}' ({k.path}) is unreadable: {k.error}" for k in broken]
    if problems:
        names = " ".join(k.name for k in dead + broken)
        return V(
            Status.WARN,
            "; ".join(problems),
            f"Remove dead kernels: `jupyter kernelspec remove {names}` (or delete their "
            "directories).",
            **facts,
        )
    return V(Status.PASS, f"{len(j.kernels)} kernel(s), all interpreters exist", **facts)


@check("jupyter.this_env", "A Jupyter kernel runs this environment", "jupyter", "dists", "python")
def _this_env(f: EnvFacts) -> Verdict:
    j, d, p = f.jupyter, f.dists, f.python
    assert j is not None and d is not None and p is not None
    mine = [k for k in j.kernels if k.runs_this_env]
    if mine:
        return V(
            Status.PASS,
            "kernel " + ", ".join(f"'{k.name}'" for k in mine) + " runs this environment",
            kernels=[k.name for k in mine],
        )
    if d.get("ipykernel") is None:
        return _skip("ipykernel is not installed in this environment")
    name = p.conda_env or os.path.basename(p.prefix.rstrip("/")) or "myenv"
    return V(
        Status.INFO,
        "ipykernel is installed but no kernelspec runs this environment",
        f"Register it: `python -m ipykernel install --user --name {name} --display-name "
        f"'Python ({name})'`.",
    )


@check("jupyter.zmq", "pyzmq imports (ipykernel needs it)", "dists", "torch")
def _zmq(f: EnvFacts) -> Verdict:
    d = f.dists
    assert d is not None
    if d.get("ipykernel") is None:
        return _skip("ipykernel is not installed")
    t = f.torch
    m = t.module("zmq") if t is not None else None
    if m is None:
        return _skip("zmq import not checked")
    if not m.found or not m.ok:
        return V(
            Status.FAIL,
            f"ipykernel is installed but `import zmq` fails: {m.error or 'pyzmq is not installed'}",
            "Reinstall pyzmq: `python -m pip uninstall -y pyzmq && python -m pip install pyzmq`.",
            detail=m.traceback,
            error=m.error,
        )
    return V(Status.PASS, f"pyzmq {m.version or ''} imports".replace("  ", " "), version=m.version)


# ---------------------------------------------------------------- host

SHM_FAIL = 128 * 1024**2
SHM_WARN = 1024**3


@check("host.shm", "/dev/shm size", "host")
def _shm(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    s = h.shm
    facts: dict[str, Any] = {
        "path": s.path,
        "total_bytes": s.total_bytes,
        "free_bytes": s.free_bytes,
    }
    if s.total_bytes is None:
        return _skip(f"{s.path} not found (DataLoader workers use another mechanism)", **facts)
    fix = (
        "Give the container more shared memory: `docker run --shm-size=8g …` (or `--ipc=host`); "
        "on Kubernetes mount an emptyDir with `medium: Memory` at /dev/shm."
    )
    if s.total_bytes <= SHM_FAIL:
        return V(
            Status.FAIL,
            f"{s.path} is {gib(s.total_bytes)} (Docker's default is 64 MiB): DataLoader workers "
            "die with 'bus error' / 'No space left on device'",
            fix,
            **facts,
        )
    if s.total_bytes < SHM_WARN:
        return V(
            Status.WARN,
            f"{s.path} is only {gib(s.total_bytes)}: large batches from worker processes can "
            "exhaust it",
            fix,
            **facts,
        )
    if s.free_bytes is not None and s.free_bytes < min(SHM_WARN, s.total_bytes // 4):
        return V(
            Status.WARN,
            f"{s.path} is almost full: {gib(s.free_bytes)} free of {gib(s.total_bytes)}",
            "Look for leftovers from killed runs: `ls -la /dev/shm` (torch_* files) and delete "
            "those no process uses.",
            **facts,
        )
    return V(
        Status.PASS,
        f"{s.path}: {gib(s.total_bytes)} ({gib(s.free_bytes)} free)",
        **facts,
    )


NOFILE_WARN = 1024


@check("host.nofile", "Open-files limit", "host", "torch?")
def _nofile(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    n = h.nofile
    t = _torch_ok(f)
    strategy = t.sharing_strategy if t else None
    facts: dict[str, Any] = {"soft": n.soft, "hard": n.hard, "sharing_strategy": strategy}
    if n.soft is None:
        return V(Status.PASS, "open-files limit: unlimited", **facts)
    if n.soft < NOFILE_WARN:
        target = 65536 if n.hard is None else min(n.hard, 65536)
        if target <= n.soft:
            how = (
                f"The hard limit is {n.hard} too, so only root can raise it: add "
                "`* soft nofile 65536` and `* hard nofile 65536` to /etc/security/limits.conf "
                "(or `docker run --ulimit nofile=65536:65536`), then log in again; meanwhile "
                "`torch.multiprocessing.set_sharing_strategy('file_system')` avoids the limit."
            )
        else:
            how = (
                f"Raise it in the shell that starts Python: `ulimit -n {target}`; or in code "
                "`resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))`; or "
                "`torch.multiprocessing.set_sharing_strategy('file_system')`."
            )
        extra = f" ({strategy} sharing passes one descriptor per shared tensor)" if strategy else ""
        return V(
            Status.WARN,
            f"open-files soft limit is {n.soft} (hard {n.hard or 'unlimited'}): DataLoader "
            f"workers can fail with 'Too many open files'{extra}",
            how,
            **facts,
        )
    return V(Status.PASS, f"open-files limit {n.soft} (hard {n.hard or 'unlimited'})", **facts)


@check("host.cpus", "Usable CPUs", "host")
def _cpus(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    c = h.cpu
    facts: dict[str, Any] = {
        "os_cpu_count": c.os_cpu_count,
        "affinity": c.affinity,
        "cgroup_quota": c.cgroup_quota,
        "cgroup_version": c.cgroup_version,
        "usable": c.usable,
        "limited_by": c.limited_by,
        "omp_num_threads": h.omp_num_threads,
    }
    if c.limited_by == "cgroup quota" and (c.os_cpu_count or 0) > c.usable:
        return V(
            Status.WARN,
            f"{c.usable} usable CPUs (cgroup quota {c.cgroup_quota:g}), but os.cpu_count() says "
            f"{c.os_cpu_count} and the affinity mask {c.affinity}: code that sizes num_workers "
            "or thread pools from them oversubscribes",
            f"Size num_workers from the quota (≤ {c.usable}) and set OMP_NUM_THREADS={c.usable} "
            "(or ask for more CPUs).",
            **facts,
        )
    why = {"affinity": " (limited by the affinity mask)", "none": ""}.get(c.limited_by, "")
    return V(Status.PASS, f"{c.usable} usable CPUs{why}", **facts)


@check("host.memory", "Memory and cgroup limit", "host")
def _memory(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    m = h.memory
    facts: dict[str, Any] = {
        "total_bytes": m.total_bytes,
        "available_bytes": m.available_bytes,
        "cgroup_limit_bytes": m.cgroup_limit_bytes,
    }
    if m.total_bytes is None:
        return _skip("memory size unknown", **facts)
    limit = m.total_bytes
    text = f"{gib(m.total_bytes)} RAM, {gib(m.available_bytes)} available"
    if m.cgroup_limit_bytes and m.cgroup_limit_bytes < m.total_bytes:
        limit = m.cgroup_limit_bytes
        text += f", cgroup limit {gib(m.cgroup_limit_bytes)}"
    if m.available_bytes is not None and m.available_bytes < limit // 10:
        return V(
            Status.WARN,
            text + ": less than 10% free, DataLoader workers may be OOM-killed",
            "Free memory, lower num_workers / prefetch_factor, or ask for a larger limit.",
            **facts,
        )
    return V(Status.PASS, text, **facts)


@check(
    "host.multiprocessing", "Multiprocessing start method and sharing strategy", "host", "torch?"
)
def _mp(f: EnvFacts) -> Verdict:
    h = f.host
    assert h is not None
    t = _torch_ok(f)
    strategy = t.sharing_strategy if t else None
    text = f"start method {h.start_method or '?'}"
    if strategy:
        text += f", torch sharing strategy {strategy}"
    return V(Status.PASS, text, start_method=h.start_method, sharing_strategy=strategy)


# ---------------------------------------------------------------- environment variables


@check("envvars.relevant", "Relevant environment variables", "envvars")
def _envvars(f: EnvFacts) -> Verdict:
    e = f.envvars
    assert e is not None
    facts: dict[str, Any] = {"variables": dict(e.variables)}
    if e.get("CUDA_LAUNCH_BLOCKING") == "1":
        return V(
            Status.WARN,
            "CUDA_LAUNCH_BLOCKING=1 makes every CUDA call synchronous (for debugging only: slow)",
            "`unset CUDA_LAUNCH_BLOCKING` outside debugging sessions.",
            **facts,
        )
    if not e.variables:
        return V(Status.INFO, "none of the relevant variables is set", **facts)
    return V(Status.INFO, "set: " + ", ".join(n for n, _ in e.variables), **facts)


# ---------------------------------------------------------------- evaluation

SPECS: dict[str, CheckSpec] = {s.id: s for s in REGISTRY}


def select(ids: list[str] | None) -> list[CheckSpec]:
    """The specs named by ``ids`` (exact ids or group names), in registry order.

    Raises KeyError with the unknown names.
    """
    if not ids:
        return list(REGISTRY)
    wanted: set[str] = set()
    unknown = []
    for raw in ids:
        key = raw.strip()
        if key in SPECS:
            wanted.add(key)
        elif any(s.group == key for s in REGISTRY):
            wanted.update(s.id for s in REGISTRY if s.group == key)
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(unknown)
    return [s for s in REGISTRY if s.id in wanted]


def needed_probes(specs: list[CheckSpec]) -> set[str]:
    return {n for s in specs for n in s.probes}


def _run_one(spec: CheckSpec, facts: EnvFacts) -> Check:
    missing = [n for n in spec.required if getattr(facts, n) is None]
    if missing:
        v = _skip(f"not checked: {', '.join(missing)} facts not collected")
    else:
        try:
            v = spec.fn(facts)
        except Exception as exc:  # a bug in a check must not hide the others
            v = Verdict(Status.ERROR, f"the check itself failed: {type(exc).__name__}: {exc}")
    return Check(
        id=spec.id,
        group=spec.group,
        title=spec.title,
        status=v.status,
        summary=v.summary,
        fix=v.fix,
        facts=v.facts,
        detail=v.detail,
    )


def evaluate(facts: EnvFacts, ids: list[str] | None = None) -> list[Check]:
    """Run the selected checks (all by default) over ``facts``."""
    return [_run_one(s, facts) for s in select(ids)]
