"""The coordinator's clock: what time it is, and a timer at a given instant.

Every instant a roll-call records (called, answered, deadlines) and every timer it arms
(answer windows, polling steps) goes through one :class:`Clock`, so tests can move time
on instead of waiting out real answer windows.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """An armed timer (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Seconds since the epoch when called; ``call_at`` runs a callback at such an instant."""

    def __call__(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class SystemClock:
    """The wall clock, with timers on the running event loop."""

    def __call__(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        # By delay, not loop.call_at: the loop's clock is monotonic, ours is the wall's.
        return asyncio.get_running_loop().call_later(max(0.0, when - time.time()), callback)


class _CallableClock:
    """A bare ``() -> float`` as a clock: timers wait real time until its instant."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def __call__(self) -> float:
        return self._now()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, when - self._now()), callback)


def as_clock(clock: Clock | Callable[[], float] | None) -> Clock:
    """``clock`` as a :class:`Clock` (None: the system clock)."""
    if clock is None:
        return SystemClock()
    if hasattr(clock, "call_at"):
        return clock
    return _CallableClock(clock)


class _ManualTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told (tests): ``advance`` runs the timers it passes."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._timers: list[tuple[float, int, _ManualTimer, Callable[[], None]]] = []
        self._order = itertools.count()  # timers due at the same instant run in the order armed

    def __call__(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer()
        heapq.heappush(self._timers, (when, next(self._order), timer, callback))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every timer due by then, in order."""
        self.now += seconds
        while self._timers and self._timers[0][0] <= self.now:
            _, _, timer, callback = heapq.heappop(self._timers)
            if not timer.cancelled:
                callback()
