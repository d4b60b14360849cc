"""How things in a room end: close reasons, and the background tasks an owner keeps.

Lifetimes flow downward, as in mediasoup (``doc/Closures.md``): a parent closes its
children; a child that ends by itself (its peer connection failed, its media stopped)
never reaches up into its parent's collections, it reports through a callback the parent
registered, and the parent removes it and tells the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)


class CloseReason(StrEnum):
    """Why a participant, publication or subscription ended.

    The values are the ``reason`` strings of the protocol (docs/protocol.md): they go on the
    wire as they are and must not change.
    """

    #: The participant asked to leave.
    LEFT = "left"
    #: Its signalling socket closed.
    DISCONNECTED = "disconnected"
    #: The server closed the room (or is shutting down).
    ROOM_CLOSED = "room_closed"
    #: The publisher asked to stop publishing.
    UNPUBLISHED = "unpublished"
    #: The subscriber asked to stop receiving.
    UNSUBSCRIBED = "unsubscribed"
    #: A subscription's publication ended.
    PUBLICATION_CLOSED = "publication_closed"
    #: A publication's media stopped for ``media_timeout`` seconds.
    MEDIA_TIMEOUT = "media_timeout"
    #: A publication never delivered media within ``connect_timeout``.
    NO_MEDIA = "no_media"
    #: The peer connection failed (ICE or DTLS).
    PEER_FAILED = "connection_failed"
    #: The peer connection was closed from the other side.
    PEER_CLOSED = "connection_closed"
    #: A published track ended.
    TRACK_ENDED = "ended"
    #: The participant left while its publish or subscribe was being negotiated.
    PARTICIPANT_LEFT = "participant_left"
    #: Closed without a more precise reason.
    CLOSED = "closed"


#: Subscriptions ended for these reasons were ended by their own subscriber: it is not told.
SUBSCRIBER_CAUSED = frozenset({CloseReason.UNSUBSCRIBED, CloseReason.LEFT, CloseReason.DISCONNECTED,
                               CloseReason.ROOM_CLOSED})


class Tasks:
    """The background tasks of one owner, referenced until they end (asyncio keeps only weak
    references to tasks: one nobody holds can be garbage-collected mid-flight)."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in a task this owner keeps until it ends; its failure is logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: background task failed", self._owner, exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Wait until every task has ended, those started meanwhile included."""
        current = asyncio.current_task()
        while pending := [t for t in self._tasks if t is not current]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel every task and wait for them to end."""
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
