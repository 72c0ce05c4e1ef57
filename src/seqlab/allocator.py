"""Keep the memory a training step frees for the next step: glibc's malloc set for training loops.

By default glibc's malloc hands large freed blocks back to the operating system: a block over its
mmap threshold (at most 32 MiB, adjusted as it goes) is unmapped when freed, and free memory at
the top of the heap is trimmed. A CPU training step allocates and frees the same activations and
gradients every step, so each step maps them afresh and the kernel zero-fills every page at its
first touch. On this project's 2-core benchmark (a 2 x 256 char-LSTM) that was about 18,000 page
faults and a quarter of the time of every step, in a plain PyTorch loop as much as in seqlab.

:func:`keep_freed_memory` sets the thresholds so freed blocks stay in the heap and the next
step reuses them: resident memory stays at the run's peak instead of dropping between steps,
which it reaches anyway. Blocks of 1 GiB and more are still mapped and unmapped (a whole corpus
read into memory, say). Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {
    M_MMAP_THRESHOLD: 1 << 30,  # blocks below 1 GiB come from the heap, and are reused there
    M_TRIM_THRESHOLD: 2**31 - 1,  # never give the heap's free top back
    M_TOP_PAD: 256 << 20,  # grow the heap 256 MiB at a time: fewer, larger system calls
}


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse; True where it did (Linux, glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own symbol: musl's mallopt is a stub
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    done = all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
    log.debug("glibc malloc keeps freed memory: %s", done)
    return done
