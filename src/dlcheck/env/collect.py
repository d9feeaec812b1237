"""In-process probes: Python, installed distributions, toolkit, Jupyter, host, env vars.

Each returns a frozen record and never raises; paths and mappings are parameters for tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import site
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dlcheck import host as hostmod
from dlcheck.env.records import (
    DistFacts,
    DistsFacts,
    EnvVarFacts,
    HostFacts,
    JupyterFacts,
    KernelSpec,
    PythonFacts,
    Requirement,
    ToolkitFacts,
)
from dlcheck.redact import redact_value

if TYPE_CHECKING:
    from importlib.metadata import Distribution

_NORMALIZE = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    return _NORMALIZE.sub("-", name).lower()


def probe_python() -> PythonFacts:
    conda_prefix = os.environ.get("CONDA_PREFIX")
    in_conda = (Path(sys.prefix) / "conda-meta").is_dir()
    user_site: str | None
    try:
        user_site = site.getusersitepackages()
    except (AttributeError, KeyError, OSError):
        # An old virtualenv's own site.py lacks the function; a uid with no home entry.
        user_site = None
    return PythonFacts(
        version=platform.python_version(),
        implementation=platform.python_implementation(),
        executable=sys.executable,
        prefix=sys.prefix,
        base_prefix=sys.base_prefix,
        venv=sys.prefix != sys.base_prefix,
        conda_env=(os.environ.get("CONDA_DEFAULT_ENV") or Path(sys.prefix).name)
        if in_conda
        else None,
        conda_prefix=sys.prefix if in_conda else conda_prefix,
        user_site=user_site,
        user_site_enabled=bool(site.ENABLE_USER_SITE),
        platform=sys.platform,
        machine=platform.machine(),
        abi_tag=f"cp{sys.version_info.major}{sys.version_info.minor}",
    )


def _requirements(dist: Distribution) -> tuple[Requirement, ...]:
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as PkgRequirement

    out = []
    for text in dist.requires or ():
        try:
            req = PkgRequirement(text)
        except InvalidRequirement:
            continue
        try:
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
        except (ValueError, KeyError):  # packaging's UndefinedComparison / UndefinedEnvironmentName
            continue
        out.append(Requirement(text=text, name=normalize(req.name), specifier=str(req.specifier)))
    return tuple(out)


# Reading one distribution's metadata: unreadable file (OSError), bad encoding or syntax
# (ValueError: UnicodeDecodeError, packaging's parse errors), a missing header (KeyError on
# newer Pythons).
_METADATA_ERRORS = (OSError, ValueError, KeyError)


def probe_dists(path: Sequence[str] | None = None, relevant: set[str] | None = None) -> DistsFacts:
    """Distributions on ``path`` (default sys.path) in path order, duplicates included.

    Requirements and wheel tags are read only for ``relevant`` names (reading every METADATA
    file costs time on large environments).
    """
    from importlib import metadata

    entries = list(sys.path if path is None else path)
    seen: set[str] = set()
    out: list[DistFacts] = []
    try:
        for entry in entries:
            real = os.path.realpath(entry or ".")
            if real in seen:
                continue
            seen.add(real)
            for dist in metadata.distributions(path=[entry or "."]):
                try:
                    raw = dist.metadata["Name"]
                except _METADATA_ERRORS:
                    raw = None
                if not raw:
                    continue
                name = normalize(raw)
                want_details = relevant is None or name in relevant or name.startswith("nvidia-")
                installer = None
                tags: tuple[str, ...] = ()
                requires: tuple[Requirement, ...] = ()
                requires_python = None
                if want_details:
                    with contextlib.suppress(*_METADATA_ERRORS):
                        installer = (dist.read_text("INSTALLER") or "").strip() or None
                    with contextlib.suppress(*_METADATA_ERRORS):
                        wheel = dist.read_text("WHEEL") or ""
                        tags = tuple(
                            line.split(":", 1)[1].strip()
                            for line in wheel.splitlines()
                            if line.startswith("Tag:")
                        )
                    with contextlib.suppress(*_METADATA_ERRORS):
                        requires = _requirements(dist)
                    with contextlib.suppress(*_METADATA_ERRORS):
                        requires_python = dist.metadata["Requires-Python"]
                out.append(
                    DistFacts(
                        name=name,
                        version=str(dist.version),
                        location=entry or os.getcwd(),
                        installer=installer,
                        requires=requires,
                        wheel_tags=tags,
                        requires_python=requires_python or None,
                    )
                )
    except Exception as exc:
        # Broad on purpose: distributions() runs every finder on sys.meta_path, third-party
        # ones included (editable installs), and a corrupt metadata dir must not stop the report.
        return DistsFacts(tuple(out), error=f"{type(exc).__name__}: {exc}")
    return DistsFacts(tuple(out))


_CUDA_LIBS = re.compile(r"^lib(cudart|cudnn|cublas|cublasLt|nccl|cufft|cusparse|nvrtc)\.so")


def _toolkit_version(home: str | None) -> str | None:
    if not home:
        return None
    # Unreadable (OSError), not JSON (ValueError), or JSON of another shape (KeyError, TypeError).
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        doc = json.loads((Path(home) / "version.json").read_text())
        return str(doc["cuda"]["version"])
    with contextlib.suppress(OSError, ValueError):
        m = re.search(r"(\d+\.\d+(\.\d+)?)", (Path(home) / "version.txt").read_text())
        if m:
            return m.group(1)
    return None


def _nvcc_version(nvcc: str) -> str | None:
    # Not runnable (OSError), too slow (TimeoutExpired), output not text (UnicodeDecodeError).
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(
            [nvcc, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        m = re.search(r"release (\d+\.\d+)", out)
        if m:
            return m.group(1)
    return None


def probe_toolkit(environ: Mapping[str, str] | None = None) -> ToolkitFacts:
    env = os.environ if environ is None else environ
    nvcc = shutil.which("nvcc", path=env.get("PATH"))
    cuda_home = env.get("CUDA_HOME") or env.get("CUDA_PATH")
    if not nvcc and cuda_home and (Path(cuda_home) / "bin" / "nvcc").exists():
        nvcc = str(Path(cuda_home) / "bin" / "nvcc")
    nvcc_version = None
    if nvcc:
        # version.json next to nvcc is cheaper than running it.
        nvcc_version = _toolkit_version(str(Path(nvcc).resolve().parent.parent)) or _nvcc_version(
            nvcc
        )
    ld = tuple(p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p)
    lib_dirs = []
    for d in ld:
        with contextlib.suppress(OSError):
            names = sorted({m.group(1) for f in os.listdir(d) if (m := _CUDA_LIBS.match(f))})
            if names:
                lib_dirs.append((d, tuple(names)))
    return ToolkitFacts(
        nvcc_path=nvcc,
        nvcc_version=nvcc_version,
        cuda_home=cuda_home,
        cuda_home_version=_toolkit_version(cuda_home),
        ld_library_path=ld,
        cuda_lib_dirs=tuple(lib_dirs),
    )


def jupyter_path(environ: Mapping[str, str] | None = None) -> list[str]:
    """Jupyter's data directories in its own order (JUPYTER_PATH, user, env, system)."""
    env = os.environ if environ is None else environ
    dirs: list[str] = [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if env.get("JUPYTER_DATA_DIR"):
        dirs.append(env["JUPYTER_DATA_DIR"])
    elif sys.platform == "darwin":
        dirs.append(str(Path.home() / "Library" / "Jupyter"))
    elif os.name == "nt":
        dirs.append(os.path.join(env.get("APPDATA", str(Path.home())), "jupyter"))
    else:
        xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        dirs.append(os.path.join(xdg, "jupyter"))
    dirs.append(os.path.join(sys.prefix, "share", "jupyter"))
    if os.name == "nt":
        dirs.append(os.path.join(env.get("PROGRAMDATA", r"C:\ProgramData"), "jupyter"))
    else:
        dirs += ["/usr/local/share/jupyter", "/usr/share/jupyter"]
    out: list[str] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _runs_this_env(argv0: str, resolved: str | None, prefix: str) -> bool:
    if not resolved:
        return False
    # Compare unresolved paths: a venv's python is a symlink to the base interpreter.
    cand = os.path.abspath(resolved)
    return cand == os.path.abspath(sys.executable) or cand.startswith(
        os.path.join(os.path.abspath(prefix), "")
    )


def probe_jupyter(
    search_path: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> JupyterFacts:
    env = os.environ if environ is None else environ
    dirs = list(search_path) if search_path is not None else jupyter_path(env)
    kernels: list[KernelSpec] = []
    seen: set[str] = set()
    for d in dirs:
        kdir = Path(d) / "kernels"
        try:
            entries = sorted(kdir.iterdir())
        except OSError:
            continue
        for spec_dir in entries:
            spec = spec_dir / "kernel.json"
            if not spec.is_file():
                continue
            # A kernel name found earlier on the path shadows later ones (Jupyter's rule).
            if spec_dir.name.lower() in seen:
                continue
            seen.add(spec_dir.name.lower())
            try:
                doc = json.loads(spec.read_text(encoding="utf-8"))
                argv = doc.get("argv") or []
                argv0 = str(argv[0]) if argv else None
            except (OSError, ValueError, AttributeError) as exc:
                kernels.append(
                    KernelSpec(
                        spec_dir.name,
                        str(spec),
                        None,
                        None,
                        None,
                        False,
                        False,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                )
                continue
            resolved: str | None = None
            if argv0:
                if os.path.isabs(argv0):
                    resolved = argv0 if os.path.exists(argv0) else None
                elif argv0 in {"python", "python3"} and "{resource_dir}" not in argv0:
                    # Jupyter runs its own interpreter for the native "python3" kernel.
                    resolved = shutil.which(argv0, path=env.get("PATH")) or sys.executable
                else:
                    resolved = shutil.which(argv0, path=env.get("PATH"))
            kernels.append(
                KernelSpec(
                    name=spec_dir.name,
                    path=str(spec),
                    display_name=doc.get("display_name"),
                    argv0=argv0,
                    argv0_resolved=resolved,
                    exists=resolved is not None,
                    runs_this_env=bool(argv0) and _runs_this_env(argv0 or "", resolved, sys.prefix),
                )
            )
    return JupyterFacts(tuple(dirs), tuple(kernels))


def _start_method() -> str | None:
    try:
        import multiprocessing

        return multiprocessing.get_start_method(allow_none=True) or (
            multiprocessing.get_context().get_start_method()
        )
    except (ImportError, ValueError, RuntimeError):
        # No _multiprocessing in this build; a default method the platform cannot start.
        return None


def probe_host() -> HostFacts:
    try:
        hostname: str | None = socket.gethostname()
    except OSError:
        hostname = None
    return HostFacts(
        cpu=hostmod.cpu_facts(),
        shm=hostmod.shm_facts(),
        nofile=hostmod.nofile_facts(),
        memory=hostmod.memory_facts(),
        start_method=_start_method(),
        hostname=hostname,
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
    )


RELEVANT_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_MODULE_LOADING",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "PYTHONPATH",
    "PYTHONNOUSERSITE",
    "CONDA_PREFIX",
    "VIRTUAL_ENV",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG",
    "JUPYTER_PATH",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "HF_HOME",
    "TORCH_HOME",
)
RELEVANT_PREFIXES = ("PYTORCH_", "TORCH_", "NCCL_", "TORCHINDUCTOR_", "CUDNN_", "HF_")


def probe_envvars(environ: Mapping[str, str] | None = None) -> EnvVarFacts:
    """Relevant variables with their values redacted (a secret never leaves this function)."""
    env = os.environ if environ is None else environ
    names = [n for n in RELEVANT_VARS if n in env]
    names += sorted(n for n in env if n.startswith(RELEVANT_PREFIXES) and n not in RELEVANT_VARS)
    return EnvVarFacts(tuple((n, redact_value(n, env[n])) for n in names))
