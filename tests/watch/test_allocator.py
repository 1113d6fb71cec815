"""The server's C heap settings (``tune_allocator``): what a long-running process keeps."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import ctypes, sys
from clawstats.watch.store import tune_allocator
big = bytearray(16 << 20)
del big  # glibc now takes blocks up to 16 MiB from the heap (its threshold follows freed blocks)
if sys.argv[1] == "tuned":
    assert tune_allocator()
block = bytearray(4 << 20)
address = ctypes.addressof((ctypes.c_char * 1).from_buffer(block))
for line in open("/proc/self/maps"):
    span, _, rest = line.partition(" ")
    start, end = (int(x, 16) for x in span.split("-"))
    if start <= address < end:
        print("own" if end - start < 8 << 20 and "[heap]" not in rest else "heap")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_buffer_of_a_mebibyte_or_more_gets_its_own_mapping_once_tuned() -> None:
    def where(mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    assert where("default") == "heap"  # what fragmented a server's heap
    assert where("tuned") == "own"  # unmapped whole when freed
