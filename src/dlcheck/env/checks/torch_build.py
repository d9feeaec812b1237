"""PyTorch build: does ``import torch`` work, and which build is it."""

from __future__ import annotations

import os
import re

from dlcheck.env.checks.base import (
    PYTORCH_INSTALL,
    V,
    Verdict,
    check,
    cudnn_text,
    group,
    torch_ok,
    torch_skip,
)
from dlcheck.env.records import EnvFacts
from dlcheck.records import Status

GROUP = group("torch", "PyTorch build")


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
    t = torch_ok(f)
    if t is None:
        return torch_skip(f)
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
