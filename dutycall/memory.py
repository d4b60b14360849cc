"""Native memory: give freed heap pages back to the system (glibc's ``malloc_trim``).

Every peer connection allocates native buffers (DTLS/OpenSSL, SRTP, sockets, aiortc's
packet queues) from several threads; glibc keeps what is freed inside its arenas, so after
a burst of connections (a roll-call moves every console twice) the server's resident memory
stays at the burst's high-water mark although the objects are gone. ``malloc_trim(0)``
returns the free pages of every arena to the system (``madvise(MADV_DONTNEED)``); nothing
in use moves. ``MemoryTrimmer`` runs it periodically in a thread of its own, never on the
event loop. Where the C library is not glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Seconds between trims by default: a roll-call of 150 rooms takes several minutes, and a
#: trim of a ~600 MB heap takes tens of milliseconds (bench/pc_churn.py measures both).
DEFAULT_INTERVAL = 60.0

#: The environment variable that sets the interval (seconds; 0 turns trimming off).
INTERVAL_VARIABLE = "DUTYCALL_MALLOC_TRIM_INTERVAL"

_libc: ctypes.CDLL | None = None
_looked_up = False


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc with ``malloc_trim``, else None."""
    global _libc, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "malloc_trim") and hasattr(libc, "gnu_get_libc_version"):
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.malloc_trim.restype = ctypes.c_int
                _libc = libc
        except OSError:
            _libc = None
    return _libc


def trim() -> bool:
    """``malloc_trim(0)``: True if glibc gave memory back. Blocks (run it off the event loop)."""
    libc = glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def allocator_stats() -> dict[str, int] | None:
    """glibc's ``mallinfo2()`` in bytes, over all arenas: ``arena`` (heap obtained with
    brk/arenas), ``mmapped`` (large blocks), ``in_use``, ``free`` (held but unused), or None."""
    libc = glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"arena": info.arena, "mmapped": info.hblkhd, "in_use": info.uordblks, "free": info.fordblks}


def resident_bytes() -> int:
    """This process's resident memory (VmRSS), 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


@dataclass
class TrimResult:
    """One trim: resident memory before and after (bytes) and how long it took (seconds)."""

    rss_before: int
    rss_after: int
    seconds: float


def trim_and_measure() -> TrimResult:
    """Trim, measuring resident memory around it. Blocks."""
    before, start = resident_bytes(), time.perf_counter()
    trim()
    return TrimResult(before, resident_bytes(), time.perf_counter() - start)


class MemoryTrimmer:
    """Trims the heap every ``interval`` seconds in its own thread while the server runs."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.trims = 0
        self.last: TrimResult | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the periodic task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start trimming (a no-op off glibc)."""
        if glibc() is None or self.running:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="malloc-trim")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="malloc-trim")

    async def trim_now(self) -> TrimResult:
        """One trim in the trimmer's thread."""
        result = await asyncio.get_running_loop().run_in_executor(self._executor, trim_and_measure)
        self.trims += 1
        self.last = result
        log.debug("malloc_trim: %.1f -> %.1f MB in %.1f ms", result.rss_before / 2**20,
                  result.rss_after / 2**20, result.seconds * 1000)
        return result

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.trim_now()
            except Exception:  # never let a trim end the server's task
                log.exception("malloc_trim failed")

    async def close(self) -> None:
        """Stop the task and the thread; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


def interval_from_env() -> float:
    """The trim interval from ``DUTYCALL_MALLOC_TRIM_INTERVAL`` (default 60 s, 0: off)."""
    value = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not value:
        return DEFAULT_INTERVAL
    try:
        interval = float(value)
    except ValueError:
        raise SystemExit(f"{INTERVAL_VARIABLE}: not a number of seconds: {value!r}") from None
    if not interval >= 0 or interval == float("inf"):
        raise SystemExit(f"{INTERVAL_VARIABLE}: expected 0 (off) or a positive number of seconds")
    return interval


@asynccontextmanager
async def trimming(interval: float) -> AsyncIterator[MemoryTrimmer | None]:
    """A ``MemoryTrimmer`` for the server's lifetime; ``interval`` 0 turns it off."""
    if interval <= 0:
        yield None
        return
    trimmer = MemoryTrimmer(interval)
    trimmer.start()
    try:
        yield trimmer
    finally:
        await trimmer.close()
