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
A viewing ends by DELETE, when its source stops, when its connection fails, at server stop, and
when its account may no longer read the incident: sign-out, a disabled account or unit, a changed
role or unit (the directory's ``on_access_changed`` calls ``revalidate_soon``; every
``REVALIDATE_SECONDS`` as well, which catches sessions that simply expired). In-flight viewings
count against the caps (``MAX_VIEWINGS``, ``MAX_VIEWINGS_PER_ACCOUNT``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..conference import CloseReason, Conference, Participant, Subscription, parse_offer
from ..directory.errors import DirectoryError
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
#: How often every viewing's session is checked again regardless of access changes.
REVALIDATE_SECONDS = 60.0
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
    #: The session cookie it was started with (checked again when access changes).
    session_token: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Whep:
    """WHEP viewings of live footage sources."""

    def __init__(self, sessionmaker: Any, conference: Conference, directory: Any = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        #: ``principal(session_token)`` of the directory: who a viewing's session is now.
        self.directory = directory
        self.clock = clock
        self.viewings: dict[str, Viewing] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Viewings under way (not yet in ``viewings``): their account ids, counted against the caps.
        self._starting: dict[object, int] = {}
        #: Bumped by every access change: a viewing started across one is checked once registered.
        self._generation = 0
        self._revalidating: asyncio.Task[None] | None = None
        self._again = False

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

    def _reserve(self, account_id: int) -> object:
        """Take a slot for a viewing under way, synchronously, or raise TooMany; ``_starting.pop(key)``
        gives it back."""
        starting = list(self._starting.values())
        if len(self.viewings) + len(starting) >= MAX_VIEWINGS or sum(
                v.account_id == account_id for v in self.viewings.values()) + starting.count(account_id) \
                >= MAX_VIEWINGS_PER_ACCOUNT:
            raise TooMany("footage.too_many_viewings", max=MAX_VIEWINGS_PER_ACCOUNT)
        key = object()
        self._starting[key] = account_id
        return key

    async def watch(self, who: Principal, source_id: int, sdp: str, address: str | None,
                    session_token: str | None = None) -> tuple[Viewing, str]:
        """Answer a player's recvonly offer with the live source's tracks.

        Raises Forbidden / NotFound (above; NotFound too when the source is not live), the
        conference's SdpError for a bad offer, TooMany past the limits."""
        generation = self._generation
        key = self._reserve(who.id)
        try:
            viewing, answer = await self._watch(who, source_id, sdp, address, session_token)
        finally:
            self._starting.pop(key, None)
        if self._generation != generation:  # access changed while it was set up: the check missed it
            await self._revalidate([viewing])
            if viewing.id not in self.viewings:
                raise NotFound("footage.whep_session_not_found")
        return viewing, answer

    async def _watch(self, who: Principal, source_id: int, sdp: str, address: str | None,
                     session_token: str | None) -> tuple[Viewing, str]:
        source = await self._source(who, source_id)
        offer = parse_offer(sdp, "subscribe")
        room = self.conference.find_room(footage_room(source.incident_id))
        publication = self.conference.publication_of(source_tag(source.id), room.name) if room is not None else None
        if room is None or publication is None or source.ended_at is not None:
            raise NotFound("footage.whep_not_live", id=source_id)
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
        viewing = Viewing(viewing_id, who.id, who.name, source.incident_id, source.id, participant, subscription, now,
                          session_token)
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

    # -- access ------------------------------------------------------------------------------------

    def revalidate_soon(self) -> None:
        """Access changed somewhere (sign-out, disabled, role or unit changed): check every viewing
        again (coalesced, never blocks)."""
        self._generation += 1
        if self._revalidating is not None and not self._revalidating.done():
            self._again = True
            return
        self._revalidating = asyncio.ensure_future(self._revalidate_all())

    async def _revalidate_all(self) -> None:
        while True:
            self._again = False
            await self._revalidate(list(self.viewings.values()))
            if not self._again:
                return

    async def _still_allowed(self, viewing: Viewing) -> bool | None:
        """Whether the viewing's session still yields its account, allowed to read its incident
        (None: could not tell, a database hiccup)."""
        if self.directory is None or viewing.session_token is None:
            return True
        try:
            now = await self.directory.principal(viewing.session_token)
        except DirectoryError:
            return False
        except Exception:  # a database hiccup must not end everyone's viewing
            logger.exception("could not re-check WHEP viewing %s's session", viewing.id[:6])
            return None
        if now.kind != "account" or now.id != viewing.account_id or not now.may("incidents.read"):
            return False
        async with self.sessionmaker() as db:
            incident = await db.get(Incident, viewing.incident_id)
            return incident is not None and bool(now.covers(incident.unit_path))

    async def _revalidate(self, viewings: list[Viewing]) -> None:
        for viewing in viewings:
            if self.viewings.get(viewing.id) is not viewing:
                continue
            try:
                allowed = await self._still_allowed(viewing)
            except Exception:
                logger.exception("could not re-check WHEP viewing %s", viewing.id[:6])
                continue
            if allowed is False:
                logger.info("WHEP viewing %s: access of account %s ended or changed", viewing.id[:6],
                            viewing.account_id)
                await self._end(viewing, "access_ended")

    async def run(self, interval: float = REVALIDATE_SECONDS) -> None:
        """Check every viewing again every ``interval`` seconds (sessions that expired by themselves)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self._revalidate(list(self.viewings.values()))
            except Exception:
                logger.exception("WHEP viewing sweep failed")

    async def close(self) -> None:
        """Server stop: every viewing ends (on the timeline), then pending ends finish."""
        for viewing in list(self.viewings.values()):
            try:
                await self._end(viewing, "server_stopped")
            except Exception:
                logger.exception("ending WHEP viewing %s at stop failed", viewing.id[:6])
        if self._revalidating is not None:
            self._revalidating.cancel()
            await asyncio.gather(self._revalidating, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
