"""Open signalling sockets, by who opened them: limits per principal, and ending live access.

A WebSocket is authorised once, when it opens. Access can end while it stays open: a
sign-out, a revoked console credential, a password reset, a deactivated account, room or
unit, a changed role or unit. The directory calls :meth:`LiveSockets.revalidate_soon` after
each such change, and every socket's session is checked again at once (and every few
minutes regardless, which also catches sessions that simply expired): a socket whose
session no longer yields the same principal is closed, and with it the participant's
publications and subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..directory.errors import DirectoryError
from ..directory.principal import Principal, PrincipalKind
from ..directory.service import Directory

logger = logging.getLogger(__name__)

#: Close code for "your access ended": the console shows the sign-in again rather than retrying.
CLOSE_ACCESS_ENDED = 4001
#: Simultaneous signalling sockets per account (a few tabs: console, roll-call, wall) and per
#: console credential (one PC, plus a reconnect while the dead socket is not yet noticed).
MAX_SOCKETS_PER_ACCOUNT = 4
MAX_SOCKETS_PER_DEVICE = 2
SWEEP_INTERVAL = 300.0


@dataclass
class _Socket:
    principal: Principal
    token: str


def _key(principal: Principal) -> tuple[str, int]:
    return (principal.kind, principal.id)


def _same_access(a: Principal, b: Principal) -> bool:
    return (a.kind, a.id, a.role, a.unit_path, a.duty_room_id, a.session_id) == (
        b.kind, b.id, b.role, b.unit_path, b.duty_room_id, b.session_id)


class LiveSockets:
    """The signalling sockets that are open now, and who opened each."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._sockets: dict[web.WebSocketResponse, _Socket] = {}
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def count(self, principal: Principal) -> int:
        return sum(1 for s in self._sockets.values() if _key(s.principal) == _key(principal))

    def admit(self, principal: Principal) -> bool:
        """Whether this principal may open one more socket."""
        limit = MAX_SOCKETS_PER_DEVICE if principal.kind == PrincipalKind.DEVICE else MAX_SOCKETS_PER_ACCOUNT
        return self.count(principal) < limit

    def add(self, ws: web.WebSocketResponse, principal: Principal, token: str) -> None:
        self._sockets[ws] = _Socket(principal, token)

    def all(self) -> list[web.WebSocketResponse]:
        """Every open socket (to close them all at shutdown)."""
        return list(self._sockets)

    def discard(self, ws: web.WebSocketResponse) -> None:
        self._sockets.pop(ws, None)

    def revalidate_soon(self) -> None:
        """Access changed somewhere: check every open socket again (coalesced, never blocks)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._revalidate_all())

    def pending(self) -> Any:
        return self._task if self._task is not None else asyncio.sleep(0)

    async def sweep_forever(self, interval: float = SWEEP_INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._revalidate_all()

    async def _revalidate_all(self) -> None:
        while True:
            self._again = False
            ending: list[web.WebSocketResponse] = []
            for ws, socket in list(self._sockets.items()):
                if ws.closed:
                    self._sockets.pop(ws, None)
                    continue
                try:
                    now = await self.directory.principal(socket.token)
                except DirectoryError:
                    now = None
                except Exception:  # a database hiccup must not end everyone's access
                    logger.exception("could not re-check a signalling socket's session")
                    continue
                if now is None or not _same_access(now, socket.principal):
                    logger.info("access of %s:%s ended or changed: closing its signalling socket",
                                socket.principal.kind, socket.principal.id)
                    self._sockets.pop(ws, None)
                    ending.append(ws)
            # Closed together, each waiting at most a moment for its client's reply: one silent
            # client must not hold up the others' ends of access.
            await asyncio.gather(*(asyncio.wait_for(ws.close(code=CLOSE_ACCESS_ENDED, message=b"access ended"), 2.0)
                                   for ws in ending), return_exceptions=True)
            if not self._again:
                return

