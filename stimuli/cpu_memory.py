"""How the C library's allocator treats the buffers of forward passes on the CPU.

Every batch allocates activation buffers of tens of megabytes and frees them
before the next. By default glibc serves each from a fresh mmap and unmaps it
when it is freed, so the next batch faults every page in again: for
EfficientNet-Lite0 at batch 16 on a 2-core machine, about 6,500 page faults and
9.5 ms of kernel time per image, 40% of the forward pass. Served from the heap,
and kept there once freed, the buffers are reused: 1.7x the raw forward pass
(80 to 134 images/s) and 1.5x the recording, for about 30 MB more peak memory.
"""

from __future__ import annotations

import ctypes
import functools

# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Free memory the heap keeps rather than returning to the system: more than a
# forward pass's buffers at the batch sizes loader_defaults picks.
KEPT_FREE_BYTES = 1 << 30


@functools.cache
def reuse_freed_buffers() -> bool:
    """Make this process's allocator keep freed buffers for reuse; False where it cannot.

    Process-wide and applied once. Other C libraries (musl, macOS) have no
    such settings or ignore them, and keep their defaults.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
