"""tune_malloc: large blocks keep their own mappings after large frees (glibc only).

Each case runs in a fresh interpreter: mallopt changes the whole process, and the check needs
an allocator that has not yet raised its threshold.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import ctypes, sys
    from monitor.daemon.housekeeping import tune_malloc

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "tuned":
        assert tune_malloc()
    # Freeing a 4 MiB mapped block is what makes glibc raise its threshold to 4 MiB.
    libc.free(libc.malloc(4 << 20))
    before = libc.mallinfo2().hblks
    block = libc.malloc(512 << 10)
    print(libc.mallinfo2().hblks - before)  # 1: the block has its own mapping
    libc.free(block)
    """
)


def _mapped_after_a_large_free(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def _has_glibc_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _has_glibc_mallinfo2(), reason="needs glibc 2.33+ (mallinfo2)")
def test_a_large_block_still_gets_its_own_mapping_after_a_larger_one_was_freed() -> None:
    assert _mapped_after_a_large_free("tuned") == 1


@pytest.mark.skipif(not _has_glibc_mallinfo2(), reason="needs glibc 2.33+ (mallinfo2)")
def test_without_tuning_glibc_carves_it_from_the_heap() -> None:
    # The default behaviour the tuning exists to stop; if glibc changes it, this says so.
    assert _mapped_after_a_large_free("default") == 0
