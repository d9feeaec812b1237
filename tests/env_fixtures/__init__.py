"""Builders of fake env facts for the dlcheck env tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from dlcheck.env.nvml import FakeGpu, FakeNvml, probe_nvml
from dlcheck.env.records import (
    DistFacts,
    DistsFacts,
    EnvFacts,
    EnvVarFacts,
    HostFacts,
    JupyterFacts,
    ModuleImport,
    NvmlFacts,
    PythonFacts,
    Requirement,
    ToolkitFacts,
    TorchFacts,
)
from dlcheck.host import CpuFacts, MemoryFacts, NofileFacts, ShmFacts

GIB = 1024**3
SITE = "/envs/dl/lib/python3.11/site-packages"
ARCHS = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")


def python(**kw: Any) -> PythonFacts:
    base = dict(
        version="3.11.7",
        implementation="CPython",
        executable="/envs/dl/bin/python",
        prefix="/envs/dl",
        base_prefix="/usr",
        venv=True,
        conda_env=None,
        conda_prefix=None,
        user_site="/home/alice/.local/lib/python3.11/site-packages",
        user_site_enabled=False,
        platform="linux",
        machine="x86_64",
        abi_tag="cp311",
    )
    base.update(kw)
    return PythonFacts(**base)


def dist(
    name: str, version: str, location: str = SITE, requires: tuple[str, ...] = (), **kw: Any
) -> DistFacts:
    from packaging.requirements import Requirement as R

    reqs = tuple(
        Requirement(text=t, name=R(t).name.lower(), specifier=str(R(t).specifier)) for t in requires
    )
    return DistFacts(
        name=name, version=version, location=location, installer="pip", requires=reqs, **kw
    )


def dists(*extra: DistFacts) -> DistsFacts:
    return DistsFacts(
        (
            dist(
                "torch",
                "2.5.1+cu124",
                wheel_tags=("cp311-cp311-linux_x86_64",),
                requires=("nvidia-cudnn-cu12==9.1.0.70",),
            ),
            dist("nvidia-cudnn-cu12", "9.1.0.70"),
            *extra,
        )
    )


def torch(**kw: Any) -> TorchFacts:
    base = dict(
        ran=True,
        ok=True,
        import_seconds=1.2,
        version="2.5.1+cu124",
        file=f"{SITE}/torch/__init__.py",
        cuda="12.4",
        cudnn=90100,
        cuda_available=True,
        device_count=1,
        arch_list=ARCHS,
        nccl="2.21.5",
        sharing_strategy="file_descriptor",
        num_threads=8,
    )
    base.update(kw)
    return TorchFacts(**base)


def nvml(
    driver: str = "550.54.15",
    cuda_driver: int = 12040,
    gpus: list[FakeGpu] | None = None,
    **kw: Any,
) -> NvmlFacts:
    return probe_nvml(FakeNvml(driver=driver, cuda_driver=cuda_driver, gpus=gpus, **kw))


def host(
    cpu: CpuFacts | None = None,
    shm: ShmFacts | None = None,
    nofile: NofileFacts | None = None,
    **kw: Any,
) -> HostFacts:
    base = dict(
        cpu=cpu or CpuFacts(8, 8, None, 2),
        shm=shm or ShmFacts("/dev/shm", 16 * GIB, 15 * GIB),
        nofile=nofile or NofileFacts(65536, 65536),
        memory=MemoryFacts(64 * GIB, 60 * GIB, None),
        start_method="fork",
        hostname="gpu-node-7",
        omp_num_threads=None,
    )
    base.update(kw)
    return HostFacts(**base)


def toolkit(**kw: Any) -> ToolkitFacts:
    base = dict(
        nvcc_path=None,
        nvcc_version=None,
        cuda_home=None,
        cuda_home_version=None,
        ld_library_path=(),
        cuda_lib_dirs=(),
    )
    base.update(kw)
    return ToolkitFacts(**base)


def healthy(**overrides: Any) -> EnvFacts:
    """A healthy CUDA machine: torch 2.5.1+cu124, driver 550, one A100."""
    facts = EnvFacts(
        python=python(),
        dists=dists(),
        torch=torch(),
        nvml=nvml(),
        toolkit=toolkit(),
        jupyter=JupyterFacts((), ()),
        host=host(),
        envvars=EnvVarFacts(()),
    )
    return dataclasses.replace(facts, **overrides)


def module(
    name: str, ok: bool = True, error: str | None = None, version: str | None = "1.0"
) -> ModuleImport:
    return ModuleImport(
        name,
        found=True,
        ok=ok,
        version=version,
        error=error,
        traceback="Traceback (most recent call last):\n  ...\n" + (error or "") if error else None,
    )


__all__ = [
    "ARCHS",
    "GIB",
    "SITE",
    "FakeGpu",
    "FakeNvml",
    "dist",
    "dists",
    "healthy",
    "host",
    "module",
    "nvml",
    "python",
    "toolkit",
    "torch",
]
