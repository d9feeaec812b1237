"""CUDA toolkit (for building extensions): nvcc, CUDA_HOME and LD_LIBRARY_PATH."""

from __future__ import annotations

import os
from typing import Any

from dlcheck.env.checks.base import V, Verdict, check, group, torch_ok
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("toolkit", "CUDA toolkit (for building extensions)")


@check("toolkit.nvcc", "nvcc / CUDA_HOME", "toolkit", "torch?")
def _nvcc(f: EnvFacts) -> Verdict:
    k = f.toolkit
    assert k is not None
    t = torch_ok(f)
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
