"""NVIDIA driver and GPUs through NVML (nvidia-ml-py), behind a small interface.

Every NVML call goes through :func:`_query`, which turns NVML error codes into causes a user
can act on. Nothing here raises: a missing library, driver or GPU is a value in ``NvmlFacts``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from dlcheck.env.records import GpuFacts, NvmlFacts

T = TypeVar("T")

# NVML return codes (nvml.h); the names are the ones users search for.
ERROR_NAMES: dict[int, str] = {
    1: "NVML_ERROR_UNINITIALIZED",
    2: "NVML_ERROR_INVALID_ARGUMENT",
    3: "NVML_ERROR_NOT_SUPPORTED",
    4: "NVML_ERROR_NO_PERMISSION",
    6: "NVML_ERROR_NOT_FOUND",
    8: "NVML_ERROR_INSUFFICIENT_POWER",
    9: "NVML_ERROR_DRIVER_NOT_LOADED",
    10: "NVML_ERROR_TIMEOUT",
    11: "NVML_ERROR_IRQ_ISSUE",
    12: "NVML_ERROR_LIBRARY_NOT_FOUND",
    13: "NVML_ERROR_FUNCTION_NOT_FOUND",
    14: "NVML_ERROR_CORRUPTED_INFOROM",
    15: "NVML_ERROR_GPU_IS_LOST",
    16: "NVML_ERROR_RESET_REQUIRED",
    17: "NVML_ERROR_OPERATING_SYSTEM",
    18: "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
    999: "NVML_ERROR_UNKNOWN",
}

# Cause and fix per error code, for errors that stop NVML as a whole.
CAUSES: dict[str, tuple[str, str]] = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": (
        "NVML library (libnvidia-ml.so) not found: no NVIDIA driver is installed",
        "Nothing to do on a machine without an NVIDIA GPU; otherwise install the NVIDIA driver "
        "(in a container: run it with `--gpus all` and the NVIDIA Container Toolkit).",
    ),
    "NVML_ERROR_DRIVER_NOT_LOADED": (
        "the NVIDIA kernel driver is not loaded",
        "Load it with `sudo modprobe nvidia` (see `dmesg | grep -i nvidia` for why it did not "
        "load, e.g. Secure Boot or a kernel update without rebuilding the module).",
    ),
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": (
        "driver/library version mismatch: the loaded kernel module and the user-space driver "
        "libraries are different versions (the driver was updated without a reboot)",
        "Reboot, or reload the kernel module: `sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset "
        "nvidia && sudo modprobe nvidia` (stop every process that uses the GPU first).",
    ),
    "NVML_ERROR_NO_PERMISSION": (
        "no permission to open the NVIDIA device files (/dev/nvidia*)",
        "Check the permissions of /dev/nvidia* (group `video`/`render`); in a container, start "
        "it with `--gpus all`.",
    ),
    "NVML_ERROR_GPU_IS_LOST": (
        "a GPU has fallen off the bus",
        "Reboot; if it happens again, check `dmesg` for Xid 79 errors (power, cooling, riser).",
    ),
    "NVML_ERROR_RESET_REQUIRED": (
        "a GPU needs a reset",
        "Reset it with `sudo nvidia-smi --gpu-reset -i N` or reboot.",
    ),
    "NVML_ERROR_INSUFFICIENT_POWER": (
        "a GPU's external power cables are not connected properly",
        "Check the GPU's power connectors.",
    ),
    "NVML_ERROR_IRQ_ISSUE": (
        "the NVIDIA kernel driver has an interrupt (IRQ) problem",
        "Check `dmesg` for NVRM messages; reboot.",
    ),
}
# These mean "no NVIDIA stack here", not "a broken one".
ABSENT_CODES = {"NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_UNAVAILABLE"}


class NvmlCallError(Exception):
    """An NVML call failed with ``code`` (the fake raises this; pynvml's errors look alike)."""

    def __init__(self, value: int, message: str = ""):
        super().__init__(message or ERROR_NAMES.get(value, f"NVML error {value}"))
        self.value = value


class Nvml(Protocol):
    """The few NVML calls dlcheck makes. Handles are opaque."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def driver_version(self) -> str: ...
    def cuda_driver_version(self) -> int: ...  # 12040 for CUDA 12.4
    def device_count(self) -> int: ...
    def handle(self, index: int) -> Any: ...
    def name(self, handle: Any) -> str: ...
    def memory_total(self, handle: Any) -> int: ...
    def compute_capability(self, handle: Any) -> tuple[int, int]: ...
    def mig_mode(self, handle: Any) -> int: ...  # current mode: 1 enabled, 0 disabled
    def uuid(self, handle: Any) -> str: ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PynvmlBackend:
    """The real NVML, through nvidia-ml-py's ``pynvml`` module."""

    def __init__(self) -> None:
        import pynvml  # nvidia-ml-py

        self._n = pynvml

    def init(self) -> None:
        self._n.nvmlInit()

    def shutdown(self) -> None:
        self._n.nvmlShutdown()

    def driver_version(self) -> str:
        return _text(self._n.nvmlSystemGetDriverVersion())

    def cuda_driver_version(self) -> int:
        return int(self._n.nvmlSystemGetCudaDriverVersion())

    def device_count(self) -> int:
        return int(self._n.nvmlDeviceGetCount())

    def handle(self, index: int) -> Any:
        return self._n.nvmlDeviceGetHandleByIndex(index)

    def name(self, handle: Any) -> str:
        return _text(self._n.nvmlDeviceGetName(handle))

    def memory_total(self, handle: Any) -> int:
        return int(self._n.nvmlDeviceGetMemoryInfo(handle).total)

    def compute_capability(self, handle: Any) -> tuple[int, int]:
        major, minor = self._n.nvmlDeviceGetCudaComputeCapability(handle)
        return int(major), int(minor)

    def mig_mode(self, handle: Any) -> int:
        current, _pending = self._n.nvmlDeviceGetMigMode(handle)
        return int(current)

    def uuid(self, handle: Any) -> str:
        return _text(self._n.nvmlDeviceGetUUID(handle))


class FakeGpu:
    def __init__(
        self,
        name: str = "NVIDIA A100-SXM4-80GB",
        memory_total: int = 80 * 1024**3,
        capability: tuple[int, int] = (8, 0),
        mig: int | None = 0,
    ):
        self.name, self.memory_total, self.capability, self.mig = (
            name,
            memory_total,
            capability,
            mig,
        )


class FakeNvml:
    """An NVML for tests: a driver version, GPUs, and error codes to raise from chosen calls."""

    def __init__(
        self,
        driver: str = "550.54.15",
        cuda_driver: int = 12040,
        gpus: list[FakeGpu] | None = None,
        fail: dict[str, int] | None = None,
    ):
        self.driver, self.cuda_driver = driver, cuda_driver
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.fail = fail or {}
        self.shut_down = False

    def _maybe_fail(self, call: str) -> None:
        if call in self.fail:
            raise NvmlCallError(self.fail[call])

    def init(self) -> None:
        self._maybe_fail("init")

    def shutdown(self) -> None:
        self.shut_down = True

    def driver_version(self) -> str:
        self._maybe_fail("driver_version")
        return self.driver

    def cuda_driver_version(self) -> int:
        self._maybe_fail("cuda_driver_version")
        return self.cuda_driver

    def device_count(self) -> int:
        self._maybe_fail("device_count")
        return len(self.gpus)

    def handle(self, index: int) -> Any:
        self._maybe_fail("handle")
        return self.gpus[index]

    def name(self, handle: Any) -> str:
        self._maybe_fail("name")
        return handle.name

    def memory_total(self, handle: Any) -> int:
        self._maybe_fail("memory_total")
        return handle.memory_total

    def compute_capability(self, handle: Any) -> tuple[int, int]:
        self._maybe_fail("compute_capability")
        return handle.capability

    def mig_mode(self, handle: Any) -> int:
        if handle.mig is None:
            raise NvmlCallError(3)
        return handle.mig

    def uuid(self, handle: Any) -> str:
        return f"GPU-fake-{id(handle) % 1000:03d}"


class NvmlFailure(Exception):
    """Raised by :func:`_query` with the error's name; caught inside this module only."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _query(fn: Callable[..., T], *args: Any) -> T:
    """The one place NVML is called: any failure becomes an NvmlFailure with a named code."""
    try:
        return fn(*args)
    except Exception as exc:
        # Broad on purpose: besides NVMLError, a binding/driver mismatch raises ctypes errors or
        # AttributeError (a function the driver lacks); every failure gets a named code.
        value = getattr(exc, "value", None)
        code = ERROR_NAMES.get(value, f"NVML_ERROR_{value}") if isinstance(value, int) else None
        raise NvmlFailure(code or "NVML_ERROR_UNKNOWN", str(exc) or type(exc).__name__) from exc


def _optional(fn: Callable[..., T], *args: Any) -> T | None:
    """A per-GPU field: NOT_SUPPORTED / FUNCTION_NOT_FOUND (old driver) become None."""
    try:
        return _query(fn, *args)
    except NvmlFailure:
        return None


def _cuda_version(value: int | None) -> str | None:
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _failed(code: str, message: str) -> NvmlFacts:
    cause = CAUSES.get(code, (message, ""))[0]
    return NvmlFacts(available=False, error_code=code, error=cause)


def probe_nvml(backend: Nvml | None = None) -> NvmlFacts:
    """Driver, its CUDA version and every GPU. Never raises."""
    if backend is None:
        try:
            backend = PynvmlBackend()
        except Exception as exc:  # nvidia-ml-py missing, or broken: its import may raise anything
            return NvmlFacts(
                available=False,
                error_code="NVML_UNAVAILABLE",
                error=f"nvidia-ml-py (pynvml) cannot be imported: {exc}",
            )
    try:
        _query(backend.init)
    except NvmlFailure as exc:
        return _failed(exc.code, exc.message)
    try:
        driver = _optional(backend.driver_version)
        cuda_driver = _cuda_version(_optional(backend.cuda_driver_version))
        try:
            count = _query(backend.device_count)
        except NvmlFailure as exc:
            return NvmlFacts(
                available=False,
                error_code=exc.code,
                error=CAUSES.get(exc.code, (exc.message, ""))[0],
                driver_version=driver,
                cuda_driver_version=cuda_driver,
            )
        gpus: list[Any] = []
        for i in range(count):
            try:
                h = _query(backend.handle, i)
            except NvmlFailure as exc:
                # One broken GPU (lost, needs reset) must not hide the others.
                return NvmlFacts(
                    available=False,
                    error_code=exc.code,
                    error=f"GPU {i}: " + CAUSES.get(exc.code, (exc.message, ""))[0],
                    driver_version=driver,
                    cuda_driver_version=cuda_driver,
                    gpus=tuple(gpus),
                )
            mig = _optional(backend.mig_mode, h)
            gpus.append(
                GpuFacts(
                    index=i,
                    name=_optional(backend.name, h),
                    memory_total_bytes=_optional(backend.memory_total, h),
                    compute_capability=_optional(backend.compute_capability, h),
                    mig_enabled=None if mig is None else bool(mig),
                    uuid=_optional(backend.uuid, h),
                )
            )
        return NvmlFacts(
            available=True,
            driver_version=driver,
            cuda_driver_version=cuda_driver,
            gpus=tuple(gpus),
        )
    finally:
        with contextlib.suppress(NvmlFailure):
            _query(backend.shutdown)


def cause_and_fix(code: str | None) -> tuple[str, str] | None:
    return CAUSES.get(code or "")
