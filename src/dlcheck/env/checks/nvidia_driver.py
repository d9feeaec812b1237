"""NVIDIA driver and GPUs, as NVML reports them."""

from __future__ import annotations

from dlcheck.env.checks.base import V, Verdict, check, group, skip, torch_ok
from dlcheck.env.nvml import ABSENT_CODES, cause_and_fix
from dlcheck.env.records import EnvFacts
from dlcheck.fmt import size
from dlcheck.records import Status

GROUP = group("nvidia", "NVIDIA driver and GPUs")


def _cuda_build(f: EnvFacts) -> bool:
    t = torch_ok(f)
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
        return skip(f"no NVIDIA driver: {n.error}", error_code=n.error_code)
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
        return skip("no GPUs visible to NVML")
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
        lines.append(f"{g.index}: {g.name} ({size(g.memory_total_bytes)}, {cc}{mig})")
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
