"""Native memory: give freed heap pages back to the system (glibc's ``malloc_trim``); and the
cyclic garbage collector's pauses (:func:`freeze_startup_objects`, :class:`GcPauses`).

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
import gc
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


# -- the cyclic garbage collector ----------------------------------------------------------------

def freeze_startup_objects() -> int:
    """Collect the start-up's garbage, then move every object still alive (modules, the app, the
    database's metadata, the codecs' tables: what lives as long as the process) out of the cyclic
    collector's reach with ``gc.freeze()``; returns how many were moved.

    A full (generation 2) collection walks every tracked object the process holds: in a server
    forwarding to 150 subscribers that was ~430,000 objects, 360,000 of them from start-up, and
    each such pause stopped the event loop for 100-180 ms (so every frame in flight arrived that
    much later: the fan-out's p99 latency). Frozen objects are never examined again, which is
    right for what lives until exit; objects made later (connections, rooms) are collected as
    before, so cyclic garbage from closed connections is still freed. The price: an object alive at
    start-up that is later dropped inside a reference cycle is never freed (a replaced cache, a
    pooled database connection opened during start-up); such objects are few and made once. Call
    it once, when start-up is done.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses:
    """How long each cyclic collection stopped the process, by generation, for ``/metrics``.

    ``gc.callbacks`` run wherever a collection starts (any allocation, any thread), so the callback
    only does arithmetic on plain lists: no lock, no allocation-heavy work, no I/O.
    """

    #: Upper bounds of the histogram's buckets, in seconds.
    BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

    def __init__(self) -> None:
        #: Per generation: bucket counts (the last one: above every bound), sum of seconds.
        self.buckets = [[0] * (len(self.BUCKETS) + 1) for _ in range(3)]
        self.sums = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started
        generation = min(max(info.get("generation", 2), 0), 2)
        self.sums[generation] += seconds
        bounds = self.BUCKETS
        i = 0
        while i < len(bounds) and seconds > bounds[i]:
            i += 1
        self.buckets[generation][i] += 1

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
