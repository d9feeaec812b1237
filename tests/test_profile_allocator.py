"""settle_allocator: every measured child starts with glibc's allocator where training runs it.

A block of a few MB must come from the heap (reused, no fresh pages) after settling, as it does
in a training process whose step has freed tensors of that size; before, it is mmapped afresh
(and page-faulted) every time. Observed through mallinfo2's count of mmapped blocks, in a fresh
interpreter so nothing else in the test process has moved the threshold.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's dynamic mmap threshold",
)

PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from dlcheck.profile.measure import settle_allocator

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        print("skip"); sys.exit(0)
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def mmapped(size):
        before = libc.mallinfo2().hblks
        block = libc.malloc(size)
        during = libc.mallinfo2().hblks
        libc.free(block)
        return during > before

    if sys.argv[1] == "settle":
        settle_allocator()
    print(mmapped(16 << 20))
    """
)


def _probe(mode: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "skip":
        pytest.skip("glibc without mallinfo2")
    return out.stdout.strip()


def test_a_fresh_process_mmaps_a_16_mb_block() -> None:
    assert _probe("as-is") == "True"


def test_after_settling_a_16_mb_block_comes_from_the_heap() -> None:
    assert _probe("settle") == "False"
