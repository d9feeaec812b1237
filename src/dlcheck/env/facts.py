"""Typed facts collected by the probes. Pure data: no verdicts here.

"Not available" is a value (``None`` or an ``error`` string), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
