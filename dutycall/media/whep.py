"""Watching a live footage source over WHEP (draft-ietf-wish-whep): a player or another system.

The shape is WHIP's (``ingest.py``) the other way round: ``POST /api/whep/{source_id}`` with a
recvonly SDP offer answers 201 with the SDP answer and a Location; DELETE on it ends the viewing;
no trickle (PATCH 405). Who may watch: a signed-in account (the session cookie, with its CSRF
token on writes, as every other write) that may read incidents and whose scope holds the
source's incident; any other account gets 404 for a source it cannot see, a role without
``incidents.read`` 403. The viewer joins the incident's footage room as a participant of its own
(identity kind "whep") and subscribes to the source's publication: forwarded, never re-encoded.

Every viewing is audited: a ``watched_live`` row in the footage access record (``audit.py``:
who, the source, when, from which address) as it starts, and ``footage_watched`` on the
incident's timeline as it ends (who, the source, when it started, how long, why it ended).
A viewing ends by DELETE, when its source stops, when its connection fails, or at server stop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..conference import CloseReason, Conference, Participant, parse_offer
from ..conference.subscription import Subscription
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from .audit import access_row
from .errors import Forbidden, NotFound, TooMany
from .models import FootageSource
from .naming import footage_room
from .relay import source_tag

logger = logging.getLogger(__name__)

#: Viewings at once, server-wide, and per account.
MAX_VIEWINGS = 64
MAX_VIEWINGS_PER_ACCOUNT = 8
#: Why a viewing ended, by why the room closed its subscription (the room tells the viewer).
END_REASONS: dict[str, str] = {CloseReason.PUBLICATION_CLOSED: "source_ended",
                               CloseReason.PEER_FAILED: "connection_failed",
                               CloseReason.PEER_CLOSED: "connection_closed"}


@dataclass
class Viewing:
    """One WHEP session (the resource its Location names)."""

    id: str
    account_id: int
    who: str
    incident_id: int
    source_id: int
    participant: Participant
    subscription: Subscription
    started_at: dt.datetime
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Whep:
    """WHEP viewings of live footage sources."""

    def __init__(self, sessionmaker: Any, conference: Conference, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        self.clock = clock
        self.viewings: dict[str, Viewing] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def _source(self, who: Principal, source_id: int) -> FootageSource:
        """The source, if ``who`` may watch it: 403 for a role that reads no incidents, 404 for a
        source that does not exist or is not in the account's scope."""
        if who.kind != "account" or not who.may("incidents.read"):
            raise Forbidden("footage.no_watch_right")
        async with self.sessionmaker() as db:
            source = await db.get(FootageSource, source_id)
            incident = await db.get(Incident, source.incident_id) if source is not None else None
            if source is None or incident is None or not who.covers(incident.unit_path):
                raise NotFound("footage.source_not_found", id=source_id)
            return source

    async def watch(self, who: Principal, source_id: int, sdp: str, address: str | None) -> tuple[Viewing, str]:
        """Answer a player's recvonly offer with the live source's tracks.

        Raises Forbidden / NotFound (above; NotFound too when the source is not live), the
        conference's SdpError for a bad offer, TooMany past the limits."""
        source = await self._source(who, source_id)
        offer = parse_offer(sdp, "subscribe")
        room = self.conference.find_room(footage_room(source.incident_id))
        publishers = room.participants_tagged(source_tag(source.id)) if room is not None else []
        publication = next((p for participant in publishers for p in participant.publications.values()), None)
        if room is None or publication is None or source.ended_at is not None:
            raise NotFound("footage.whep_not_live", id=source_id)
        if len(self.viewings) >= MAX_VIEWINGS or sum(
                v.account_id == who.id for v in self.viewings.values()) >= MAX_VIEWINGS_PER_ACCOUNT:
            raise TooMany("footage.too_many_viewings", max=MAX_VIEWINGS_PER_ACCOUNT)
        viewing_id = secrets.token_urlsafe(18)
        participant = room.join(who.name, lambda message: self._notified(viewing_id, message),
                                identity={"kind": "whep", "account_id": who.id},
                                tag=f"whep_viewer:{viewing_id}")
        try:
            subscription, answer = await room.subscribe(participant, publication.id, offer)
        except BaseException:
            await room.leave(participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            raise
        now = self.clock()
        viewing = Viewing(viewing_id, who.id, who.name, source.incident_id, source.id, participant, subscription, now)
        self.viewings[viewing_id] = viewing
        async with self.sessionmaker.begin() as db:
            db.add(access_row(who, source.incident_id, "watched_live", address, source_id=source.id, at=now))
        logger.info("WHEP viewing %s: account %s watching source %s", viewing_id[:6], who.id, source.id)
        return viewing, answer

    def _notified(self, viewing_id: str, message: dict[str, Any]) -> None:
        """What the room tells the viewer's participant: the end of its subscription or room."""
        viewing = self.viewings.get(viewing_id)
        if viewing is None:
            return
        if message.get("type") == "subscription_closed":
            reason = message.get("reason")
            self._spawn(self._end(viewing, END_REASONS.get(str(reason), str(reason))))
        elif message.get("type") == "room_closed":
            self._spawn(self._end(viewing, "room_closed"))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, who: Principal, viewing_id: str) -> None:
        """The player ends its viewing (DELETE on the Location): only the account that started it."""
        viewing = self.viewings.get(viewing_id)
        if viewing is None or who.kind != "account" or viewing.account_id != who.id:
            raise NotFound("footage.whep_session_not_found")
        await self._end(viewing, "deleted")

    async def _end(self, viewing: Viewing, reason: str) -> None:
        """End a viewing once (a second caller waits for the first) and put it on the timeline."""
        if self.viewings.get(viewing.id) is not viewing:
            await viewing.ended.wait()
            return
        del self.viewings[viewing.id]
        try:
            room = viewing.participant.room
            await room.leave(viewing.participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            now = self.clock()
            async with self.sessionmaker.begin() as db:
                db.add(IncidentEvent(incident_id=viewing.incident_id, at=now, kind="footage_watched", actor=viewing.who,
                                     detail={"source_id": viewing.source_id, "via": "whep", "reason": reason,
                                             "account_id": viewing.account_id,
                                             "started_at": as_utc(viewing.started_at).isoformat(),
                                             "seconds": round((now - viewing.started_at).total_seconds(), 1)}))
            logger.info("WHEP viewing %s ended: %s", viewing.id[:6], reason)
        finally:
            viewing.ended.set()

    async def close(self) -> None:
        """Server stop: every viewing ends (on the timeline), then pending ends finish."""
        for viewing in list(self.viewings.values()):
            try:
                await self._end(viewing, "server_stopped")
            except Exception:
                logger.exception("ending WHEP viewing %s at stop failed", viewing.id[:6])
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
