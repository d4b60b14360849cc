"""Followers of roll-call boards: told the board again whenever it may have changed.

The coordinator calls :meth:`BoardFollowers.changed` after every committed command and
every change of presence (a console starts or stops publishing in the roll-call's room),
and after evidence is kept. Changes close together coalesce: while one read of a board is
in flight, any number of further changes make exactly one more read. Nothing is read for a
roll-call nobody follows.

Followers are not checked here: whoever calls :meth:`follow` decided that the follower may
see that board (the web layer: an account whose scope covers the roll-call).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

Board = dict[str, Any]
BoardObserver = Callable[[Board], None]
ReadBoard = Callable[[int], Awaitable[Board | None]]


class BoardFollowers:
    """Who follows which roll-call's board, and the coalesced reads that tell them."""

    def __init__(self, read: ReadBoard) -> None:
        self._read = read
        self._observers: dict[int, list[BoardObserver]] = {}
        self._reading: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()

    def follow(self, roll_call_id: int, observer: BoardObserver) -> Callable[[], None]:
        """Call ``observer`` with the board of ``roll_call_id`` after each change; returns the
        function that stops it (idempotent)."""
        self._observers.setdefault(roll_call_id, []).append(observer)

        def unfollow() -> None:
            observers = self._observers.get(roll_call_id)
            if observers is not None and observer in observers:
                observers.remove(observer)
                if not observers:
                    del self._observers[roll_call_id]

        return unfollow

    def followed(self, roll_call_id: int) -> int:
        """How many follow the board of ``roll_call_id``."""
        return len(self._observers.get(roll_call_id, ()))

    def followed_ids(self) -> list[int]:
        """The roll-calls somebody follows."""
        return list(self._observers)

    def changed(self, roll_call_id: int) -> None:
        """The board of ``roll_call_id`` may have changed: read it soon and tell its followers."""
        if roll_call_id not in self._observers:
            return
        task = self._reading.get(roll_call_id)
        if task is not None and not task.done():
            self._again.add(roll_call_id)  # read once more when this read is done
            return
        self._reading[roll_call_id] = asyncio.ensure_future(self._tell(roll_call_id))

    async def close(self) -> None:
        """Stop every read in flight; followers are forgotten."""
        tasks = list(self._reading.values())
        for task in tasks:
            task.cancel()
        self._observers.clear()
        self._again.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _tell(self, roll_call_id: int) -> None:
        try:
            while roll_call_id in self._observers:
                # Every change before this point is in the read that follows.
                self._again.discard(roll_call_id)
                board = await self._read(roll_call_id)
                if board is not None:
                    for observer in tuple(self._observers.get(roll_call_id, ())):
                        try:
                            observer(board)
                        except Exception:  # one follower's bug must not silence the others
                            logger.exception("a board follower of roll-call %s failed", roll_call_id)
                if roll_call_id not in self._again:
                    return
        except Exception:
            logger.exception("could not read the board of roll-call %s for its followers", roll_call_id)
        finally:
            if self._reading.get(roll_call_id) is asyncio.current_task():
                del self._reading[roll_call_id]


Readiness = dict[int, list[str]]
ReadinessObserver = Callable[[Readiness], None]


class _Watch:
    __slots__ = ("room_ids", "rooms", "observer", "last")

    def __init__(self, room_ids: list[int], observer: ReadinessObserver, last: Readiness) -> None:
        self.room_ids = room_ids
        self.rooms = frozenset(room_ids)
        self.observer = observer
        self.last = last


class ReadinessWatchers:
    """Who watches the readiness of which duty rooms (the pre-check before a roll-call is
    created), told each room whose answer changed, pushed rather than polled by the page.

    Looked at soon after a console joins, leaves, starts or stops publishing anywhere
    (:meth:`changed`), and every ``interval`` s while anybody watches: a camera or microphone
    that stops (or starts) delivering changes nothing but the clock. The readiness read is the
    conference's in-memory state, never the database.
    """

    def __init__(self, readiness: Callable[[list[int]], Readiness], interval: float = 1.0) -> None:
        self._readiness = readiness
        self.interval = interval
        self._watches: list[_Watch] = []
        self._ticker: asyncio.Task[None] | None = None
        self._soon: set[int] = set()
        self._soon_handle: asyncio.Handle | None = None

    def watch(self, room_ids: list[int], observer: ReadinessObserver) -> tuple[Readiness, Callable[[], None]]:
        """The readiness of ``room_ids`` now, and from then on ``observer`` told the rooms whose
        readiness changed; with the function that stops it (idempotent). The caller answers
        with what this returns before it yields to the loop, so no change comes before it."""
        watch = _Watch(list(room_ids), observer, self._readiness(list(room_ids)))
        self._watches.append(watch)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick())

        def unwatch() -> None:
            if watch in self._watches:
                self._watches.remove(watch)

        return dict(watch.last), unwatch

    def watching(self) -> int:
        return len(self._watches)

    def changed(self, duty_room_id: int) -> None:
        """A console of ``duty_room_id`` joined, left or (un)published: look soon (once per
        turn of the loop however many change together)."""
        if not any(duty_room_id in watch.rooms for watch in self._watches):
            return
        self._soon.add(duty_room_id)
        if self._soon_handle is None:
            self._soon_handle = asyncio.get_running_loop().call_soon(self._check_soon)

    async def close(self) -> None:
        self._watches.clear()
        if self._soon_handle is not None:
            self._soon_handle.cancel()
            self._soon_handle = None
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None

    def _check_soon(self) -> None:
        self._soon_handle = None
        rooms, self._soon = self._soon, set()
        for watch in tuple(self._watches):
            if not watch.rooms.isdisjoint(rooms):
                self._check(watch)

    def _check(self, watch: _Watch) -> None:
        now = self._readiness(watch.room_ids)
        changed = {room_id: problems for room_id, problems in now.items() if watch.last.get(room_id) != problems}
        if not changed:
            return
        watch.last.update(changed)
        try:
            watch.observer(changed)
        except Exception:  # one watcher's bug must not silence the others
            logger.exception("a readiness watcher failed")

    async def _tick(self) -> None:
        while self._watches:
            await asyncio.sleep(self.interval)
            for watch in tuple(self._watches):
                self._check(watch)
