"""Cross-layer compatibility tables. Every row cites where it comes from.

Update these when NVIDIA or PyTorch publish a release; the checks only read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

CUDA_RELEASE_NOTES = (
    "NVIDIA CUDA Toolkit Release Notes, table 'CUDA Toolkit and Minimum Required Driver Version "
    "for CUDA Minor Version Compatibility' (docs.nvidia.com/cuda/cuda-toolkit-release-notes)"
)


@dataclass(frozen=True)
class DriverFloor:
    cuda_major: int
    linux: str
    windows: str
    source: str


# A wheel built with CUDA X.y runs on any driver at or above the floor for major X
# (minor-version compatibility); below it, CUDA initialisation fails.
DRIVER_FLOORS: tuple[DriverFloor, ...] = (
    DriverFloor(11, "450.80.02", "452.39", CUDA_RELEASE_NOTES),
    DriverFloor(12, "525.60.13", "528.33", CUDA_RELEASE_NOTES),
    DriverFloor(13, "580", "580", CUDA_RELEASE_NOTES),
)


def driver_floor(cuda_version: str, windows: bool = False) -> DriverFloor | None:
    try:
        major = int(cuda_version.split(".")[0])
    except ValueError:
        return None
    for row in DRIVER_FLOORS:
        if row.cuda_major == major:
            return row
    return None


def version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def driver_at_least(driver: str, floor: str) -> bool:
    return version_tuple(driver) >= version_tuple(floor)


PYTORCH_RELEASE_MATRIX = (
    "pytorch/pytorch RELEASE.md, 'Release Compatibility Matrix' (Python versions per release)"
)

# torch (major, minor) -> (oldest, newest) supported Python (major, minor). The newest includes
# versions the matrix lists as "experimental" when wheels were published for them (2.2/2.3 for
# 3.12, 2.5 for 3.13), so a working install is never flagged.
TORCH_PYTHON: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {
    (1, 13): ((3, 7), (3, 10)),
    (2, 0): ((3, 8), (3, 11)),
    (2, 1): ((3, 8), (3, 11)),
    (2, 2): ((3, 8), (3, 12)),
    (2, 3): ((3, 8), (3, 12)),
    (2, 4): ((3, 8), (3, 12)),
    (2, 5): ((3, 9), (3, 13)),
    (2, 6): ((3, 9), (3, 13)),
    (2, 7): ((3, 9), (3, 13)),
    (2, 8): ((3, 9), (3, 13)),
    (2, 9): ((3, 10), (3, 14)),
    (2, 10): ((3, 10), (3, 14)),
}


@dataclass(frozen=True)
class Pairing:
    """The release of a domain library built against a torch release."""

    library: str
    expected: str  # "0.20" (major.minor), or "" when no release pairs with that torch
    source: str
    note: str = ""


VISION_SOURCE = "pytorch/vision README.md, 'Installation' compatibility table (torch ↔ torchvision)"
AUDIO_SOURCE = "pytorch/audio docs, 'Installing pre-built binaries' compatibility matrix"
TEXT_SOURCE = "pytorch/text README.md, 'Installation' version table (development ended at 0.18)"

# Explicit rows from the sources; releases newer than the table follow the same rule
# (torchvision 0.(minor+15), torchaudio same major.minor), marked as extrapolated.
VISION: dict[tuple[int, int], str] = {
    (1, 12): "0.13",
    (1, 13): "0.14",
    (2, 0): "0.15",
    (2, 1): "0.16",
    (2, 2): "0.17",
    (2, 3): "0.18",
    (2, 4): "0.19",
    (2, 5): "0.20",
    (2, 6): "0.21",
    (2, 7): "0.22",
    (2, 8): "0.23",
    (2, 9): "0.24",
}
AUDIO: dict[tuple[int, int], str] = {
    (1, 12): "0.12",
    (1, 13): "0.13",
    **{(2, m): f"2.{m}" for m in range(0, 10)},
}
TEXT: dict[tuple[int, int], str] = {
    (1, 12): "0.13",
    (1, 13): "0.14",
    (2, 0): "0.15",
    (2, 1): "0.16",
    (2, 2): "0.17",
    (2, 3): "0.18",
}
TEXT_LAST_TORCH = (2, 3)


def _mm(version: str) -> tuple[int, int] | None:
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    return (v.major, v.minor)


def expected_pairing(library: str, torch_version: str) -> Pairing | None:
    """Which release of ``library`` pairs with ``torch_version``; None when not tied/unknown."""
    tv = _mm(torch_version)
    if tv is None:
        return None
    if library == "torchvision":
        if tv in VISION:
            return Pairing(library, VISION[tv], VISION_SOURCE)
        if tv[0] == 2 and tv[1] > max(m for (major, m) in VISION if major == 2):
            return Pairing(library, f"0.{tv[1] + 15}", VISION_SOURCE, "extrapolated")
        return None
    if library == "torchaudio":
        if tv in AUDIO:
            return Pairing(library, AUDIO[tv], AUDIO_SOURCE)
        if tv[0] == 2:
            return Pairing(library, f"2.{tv[1]}", AUDIO_SOURCE, "extrapolated")
        return None
    if library == "torchtext":
        if tv in TEXT:
            return Pairing(library, TEXT[tv], TEXT_SOURCE)
        if tv > TEXT_LAST_TORCH:
            return Pairing(
                library, "", TEXT_SOURCE, "torchtext's last release (0.18) pairs with torch 2.3"
            )
        return None
    return None


def library_matches(installed: str, expected: str) -> bool:
    mm = _mm(installed)
    return mm is not None and ".".join(map(str, mm)) == expected


def torch_python_range(torch_version: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    tv = _mm(torch_version)
    return TORCH_PYTHON.get(tv) if tv else None


# GPU name of the compute capability, for messages.
ARCH_NAMES = {
    5: "Maxwell",
    6: "Pascal",
    7: "Volta/Turing",
    8: "Ampere/Ada",
    9: "Hopper",
    10: "Blackwell",
    12: "Blackwell (consumer)",
}


def arch_support(capability: tuple[int, int], arch_list: tuple[str, ...]) -> str:
    """'native' (a cubin runs), 'ptx' (JIT from PTX at first use) or 'none' (no kernel image).

    Cubins run on GPUs of the same major with an equal or higher minor; PTX runs on any equal
    or newer GPU after JIT compilation (CUDA C Programming Guide, 'Binary Compatibility' and
    'PTX Compatibility'). Arch-specific targets (sm_90a) are not forward compatible.
    """
    major, minor = capability
    cap = major * 10 + minor
    natives: list[int] = []
    ptx: list[int] = []
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        if num.endswith(("a", "f")):
            continue
        try:
            value = int(num)
        except ValueError:
            continue
        (natives if kind == "sm" else ptx if kind == "compute" else []).append(value)
    if any(v // 10 == major and v <= cap for v in natives):
        return "native"
    if any(v <= cap for v in ptx):
        return "ptx"
    return "none"
