"""CUDA cross-layer: does the torch wheel fit the driver, the GPUs and the environment."""

from __future__ import annotations

import re
from typing import Any

from dlcheck.env import tables
from dlcheck.env.checks.base import (
    V,
    Verdict,
    check,
    cudnn_text,
    group,
    nvml_gpus,
    skip,
    torch_ok,
    torch_skip,
)
from dlcheck.env.nvml import ABSENT_CODES, cause_and_fix
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("cuda", "CUDA cross-layer")


def wheel_index(cuda: str | None) -> str:
    """The PyTorch wheel index for a CUDA version (or the newest the driver supports)."""
    known = ["11.8", "12.1", "12.4", "12.6", "12.8", "12.9", "13.0"]
    if not cuda:
        return "https://download.pytorch.org/whl/cu128"
    target = tables.version_tuple(cuda)
    fit = [k for k in known if tables.version_tuple(k) <= target]
    pick = fit[-1] if fit else known[0]
    return "https://download.pytorch.org/whl/cu" + pick.replace(".", "")


@check("cuda.driver_floor", "Driver new enough for the wheel's CUDA", "torch", "nvml", "python?")
def _driver_floor(f: EnvFacts) -> Verdict:
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
    if not t.cuda:
        return skip(f"torch is a {t.variant} build (no CUDA runtime to match)")
    n = f.nvml
    assert n is not None
    if not n.driver_version:
        return skip("no NVIDIA driver to compare with", cuda=t.cuda)
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
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
    gpus = nvml_gpus(f)
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
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
    if not t.cuda:
        return skip(f"torch is a {t.variant} build")
    gpus = [g for g in nvml_gpus(f) if g.compute_capability]
    if not gpus:
        return skip("no GPU compute capability to compare")
    if not t.arch_list:
        return skip("torch reported no arch list")
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
    gpus = nvml_gpus(f)
    if value is None:
        if not gpus:
            return skip("not set, and no GPU")
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
    t = torch_ok(f)
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
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
    if not (t.cuda or t.hip):
        return skip("CPU build: CUDA is not compiled in")
    gpus = nvml_gpus(f)
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
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
    if not t.cuda:
        return skip(f"torch is a {t.variant} build (no cuDNN)")
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
