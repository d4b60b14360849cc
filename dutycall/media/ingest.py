"""Device ingest over WHIP (RFC 9725): an encoder or drone publishes an incident's footage.

A host issues a bearer token for an incident (stored as SHA-256 only, with an expiry; it can be
revoked, which ends its live sessions). A device POSTs its SDP offer with the token; the offer
is answered by a publication in the incident's footage room (``naming.footage_room``), which the
archive records at once (``recording.py``), and the session's resource is returned for the
DELETE that ends it. One live session per token: a device that reconnects replaces its previous
session. Each source's start and stop go on the incident's timeline (``footage_started``,
``footage_stopped``) in the same transaction as its row.

A token's session ends when the token is revoked (at once), when it expires (the sweep, every
``SWEEP_SECONDS``) and when its incident is closed or merged (at once, ``incident_ended``, hooked
on the Incidents service; the sweep too). A publish that raced one of these is checked again once
its session is registered, and ends then: a revoke never misses a session being set up.
Publishes of one token are serialised (one live session per token, even with concurrent POSTs),
and in-flight publishes count against the caps (``MAX_SESSIONS``, ``MAX_SESSIONS_PER_INCIDENT``).

The answer carries every candidate (aiortc gathers before answering), so no trickle: PATCH is
refused (405), as RFC 9725 allows. The answer takes the DTLS client role (``setup:active``); an
encoder whose certificate is RSA (GStreamer's webrtcbin) gets through because
``aiortc_compat`` lets aiortc offer ECDHE-RSA suites (tests/test_gst_whip.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import CloseReason, Conference, Offer, Participant, Publication, parse_offer
from ..directory.base import DirectoryBase
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from ..messages import CATALOGUE, EN, ZH
from ..text import unsafe_reason
from .errors import BadToken, Forbidden, Invalid, NotFound, TooMany
from .models import IngestToken
from .naming import footage_room, parse_footage_room
from .recording import Archive
from .scope import incident_in_scope, require_host

logger = logging.getLogger(__name__)

MAX_LABEL = 64
#: How long a token may be valid: 5 minutes to 7 days (default: a day).
TOKEN_MINUTES = (5, 7 * 24 * 60)
DEFAULT_TOKEN_MINUTES = 24 * 60
MAX_SESSIONS = 32
#: Live WHIP sessions of one incident (so one district cannot use up the server's ``MAX_SESSIONS``).
MAX_SESSIONS_PER_INCIDENT = 8
#: How often live sessions are checked against their tokens (expiry, revocation) and incidents.
SWEEP_SECONDS = 2.0
#: Incident statuses that take no footage.
ENDED_STATUSES = ("closed", "merged")
#: What an ending publication's reason becomes on the source row and the timeline.
END_REASONS = {CloseReason.MEDIA_TIMEOUT: "media_timeout", CloseReason.NO_MEDIA: "no_media",
               CloseReason.PEER_FAILED: "connection_failed", CloseReason.PEER_CLOSED: "connection_closed"}

MESSAGES: dict[str, dict[str, str]] = {
    "footage.too_many_incident_sessions": {
        ZH: "该事件同时推流的会话已达上限（{max} 个）",
        EN: "Too many ingest sessions at once for this incident (at most {max})"},
}
CATALOGUE.update(MESSAGES)


def token_problem(revoked_at: dt.datetime | None, expires_at: dt.datetime, incident_status: str | None,
                  now: dt.datetime) -> str | None:
    """Why a token (or link) may no longer stream, as a session's end reason; None if it may."""
    if revoked_at is not None:
        return "revoked"
    if as_utc(expires_at) <= now:
        return "expired"
    if incident_status is None or incident_status in ENDED_STATUSES:
        return "incident_closed"
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class IngestSession:
    """One live WHIP publication (the resource its Location names)."""

    id: str
    token_id: int
    token_sha256: str
    incident_id: int
    source_id: int
    label: str
    participant: Participant
    publication: Publication
    started_at: dt.datetime
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Ingest:
    """Ingest tokens and WHIP sessions; scope like incident writes (a host whose subtree holds the
    incident's unit)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference, archive: Archive,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        self.archive = archive
        self.clock = clock
        self.sessions: dict[str, IngestSession] = {}
        self._ending: set[asyncio.Task[None]] = set()
        #: One publish at a time per token (by token id), and how many wait on each lock.
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}
        #: Publishes under way (not yet in ``sessions``): their incident ids, counted against the caps.
        self._starting: dict[object, int] = {}
        conference.on_unpublished.append(self._unpublished)

    # -- tokens --------------------------------------------------------------------------------------

    @staticmethod
    def _host(who: Principal) -> None:
        require_host(who, "footage.no_ingest_right")

    _incident = staticmethod(incident_in_scope)

    @staticmethod
    def _token_json(token: IngestToken, now: dt.datetime) -> dict[str, Any]:
        expires = as_utc(token.expires_at)
        return {"id": token.id, "incident_id": token.incident_id, "label": token.label,
                "created_at": as_utc(token.created_at).isoformat(), "expires_at": expires.isoformat(),
                "revoked_at": as_utc(token.revoked_at).isoformat() if token.revoked_at else None,
                "last_used_at": as_utc(token.last_used_at).isoformat() if token.last_used_at else None,
                "valid": token.revoked_at is None and expires > now}

    async def issue(self, who: Principal, incident_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """A new token for the incident; the only time its value is shown."""
        self._host(who)
        label = data.get("label", "")
        if not isinstance(label, str) or not label.strip() or len(label.strip()) > MAX_LABEL \
                or unsafe_reason(label, multiline=False):
            raise Invalid("footage.token_label", field="label", max=MAX_LABEL)
        minutes = data.get("minutes", DEFAULT_TOKEN_MINUTES)
        low, high = TOKEN_MINUTES
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not low <= minutes <= high:
            raise Invalid("footage.token_minutes", field="minutes", low=low, high=high)
        value = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id)
            if incident.status in ("closed", "merged"):
                raise Forbidden("footage.incident_closed")
            token = IngestToken(incident_id=incident.id, unit_path=incident.unit_path, token_sha256=token_hash(value),
                                label=label.strip(), created_by=who.id, created_at=now,
                                expires_at=now + dt.timedelta(minutes=minutes))
            db.add(token)
            await db.flush()
            DirectoryBase.audit(db, who, "issue", "ingest_token", token.id, incident.unit_path,
                                incident_id=incident.id, label=token.label, minutes=minutes)
            return {**self._token_json(token, now), "token": value, "whip_url": "/api/whip"}

    async def tokens(self, who: Principal, incident_id: int) -> list[dict[str, Any]]:
        self._host(who)
        now = self.clock()
        async with self.sessionmaker() as db:
            await self._incident(db, who, incident_id)
            rows = (await db.execute(select(IngestToken).where(IngestToken.incident_id == incident_id)
                                     .order_by(IngestToken.id))).scalars()
            return [self._token_json(t, now) for t in rows]

    async def revoke(self, who: Principal, token_id: int) -> dict[str, Any]:
        """Revoke a token; its live session ends now."""
        self._host(who)
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            token = await db.get(IngestToken, token_id)
            if token is None or not who.covers(token.unit_path):
                raise NotFound("footage.token_not_found", id=token_id)
            if token.revoked_at is None:
                token.revoked_at, token.revoked_by = now, who.id
                DirectoryBase.audit(db, who, "revoke", "ingest_token", token.id, token.unit_path,
                                    incident_id=token.incident_id)
            found = self._token_json(token, now)
        for session in [s for s in self.sessions.values() if s.token_id == token_id]:
            await self._end(session, "revoked")
        return found

    async def may_watch(self, who: Principal, room_name: str) -> bool:
        """An account that may read incidents and whose subtree holds the incident (live relay to
        consoles and leaders is the relay's rule, next)."""
        room = parse_footage_room(room_name)
        if room is None or who.kind != "account" or not who.may("incidents.read"):
            return False
        async with self.sessionmaker() as db:
            incident = await db.get(Incident, room.incident_id)
            return incident is not None and who.covers(incident.unit_path)

    # -- WHIP ----------------------------------------------------------------------------------------

    async def check_token(self, bearer: str | None) -> IngestToken:
        """The valid token ``bearer`` names; BadToken (missing, wrong, expired, revoked) or Forbidden
        (its incident is closed) otherwise."""
        if not bearer:
            raise BadToken("footage.no_token")
        now = self.clock()
        async with self.sessionmaker() as db:
            token = (await db.execute(select(IngestToken).where(
                IngestToken.token_sha256 == token_hash(bearer)))).scalar_one_or_none()
            if token is None or token.revoked_at is not None or as_utc(token.expires_at) <= now:
                raise BadToken("footage.bad_token")
            incident = await db.get(Incident, token.incident_id)
            if incident is None or incident.status in ("closed", "merged"):
                raise Forbidden("footage.incident_closed")
        return token

    @contextlib.asynccontextmanager
    async def _serial(self, token_id: int) -> AsyncIterator[None]:
        """Hold the token's lock (publishes of one token one after another); forget it when unused."""
        lock = self._locks.setdefault(token_id, asyncio.Lock())
        self._lock_users[token_id] = self._lock_users.get(token_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[token_id] -= 1
            if not self._lock_users[token_id]:
                del self._lock_users[token_id], self._locks[token_id]

    def _reserve(self, incident_id: int) -> object:
        """Take a slot for a publish under way, synchronously (no await between the count and the
        reservation), or raise TooMany. ``_starting.pop(key)`` gives it back."""
        if len(self.sessions) + len(self._starting) >= MAX_SESSIONS:
            raise TooMany("footage.too_many_sessions", max=MAX_SESSIONS)
        if sum(s.incident_id == incident_id for s in self.sessions.values()) + sum(
                i == incident_id for i in self._starting.values()) >= MAX_SESSIONS_PER_INCIDENT:
            raise TooMany("footage.too_many_incident_sessions", max=MAX_SESSIONS_PER_INCIDENT)
        key = object()
        self._starting[key] = incident_id
        return key

    async def publish(self, bearer: str | None, sdp: str) -> tuple[IngestSession, str]:
        """Answer a device's offer: a publication in the incident's footage room, archived.

        Raises BadToken (401), Forbidden (a closed incident), the conference's SdpError for a bad
        offer, NoSpace (503) when the recordings disk is below its minimum, TooMany past the caps."""
        token = await self.check_token(bearer)
        offer = parse_offer(sdp, "publish")
        async with self._serial(token.id):
            token = await self.check_token(bearer)  # it may have been revoked while this one waited
            for previous in [s for s in self.sessions.values() if s.token_id == token.id]:
                await self._end(previous, "replaced")  # the device reconnected
            key = self._reserve(token.incident_id)
            try:
                await self.archive.ensure_space(token.incident_id, token.label)  # a refusal goes on the timeline
                session, answer = await self._start(token, offer)
            finally:
                self._starting.pop(key, None)
            # Revoked, expired or its incident closed while it was set up: whoever did that found no
            # session to end (it was not registered yet), so it ends here.
            problem = await self._registered(session, token)
            if problem is not None:
                await self._end(session, problem)
                if problem == "incident_closed":
                    raise Forbidden("footage.incident_closed")
                raise BadToken("footage.bad_token")
        logger.info("WHIP session %s: %s publishing for incident %s (source %s)", session.id[:6],
                    token.label, token.incident_id, session.source_id)
        return session, answer

    async def _start(self, token: IngestToken, offer: Offer) -> tuple[IngestSession, str]:
        """The publication, its archive and the session (in ``sessions`` when this returns)."""
        room_name = footage_room(token.incident_id)
        source_id = await self.archive.new_source(token.incident_id, "whip", token.label, room_name, token.id)
        room = self.conference.room(room_name)
        participant = room.join(token.label, lambda message: None,
                                identity={"kind": "ingest", "ingest_token_id": token.id},
                                tag=f"footage_source:{source_id}", shown={"footage_source_id": source_id})
        try:
            publication, answer = await room.publish(participant, offer, token.label, None)
            await self.archive.start(publication, source_id, token.incident_id)
        except BaseException:
            await room.leave(participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            await self.archive.end_source(source_id, "failed")
            raise
        session = IngestSession(secrets.token_urlsafe(18), token.id, token.token_sha256, token.incident_id,
                                source_id, token.label, participant, publication, self.clock())
        self.sessions[session.id] = session
        return session, answer

    async def _registered(self, session: IngestSession, token: IngestToken) -> str | None:
        """Put the start on the timeline and read the token and incident again (after the session is
        in ``sessions``): why it must end now, or None."""
        now = session.started_at
        async with self.sessionmaker.begin() as db:
            row = await db.get(IngestToken, token.id)
            incident = await db.get(Incident, token.incident_id)
            if row is not None:
                row.last_used_at = now
            db.add(IncidentEvent(incident_id=token.incident_id, at=now, kind="footage_started", actor=token.label,
                                 detail={"source_id": session.source_id, "source_kind": "whip",
                                         "video": session.publication.codec_name("video"),
                                         "audio": session.publication.codec_name("audio")}))
        if row is None:
            return "revoked"
        return token_problem(row.revoked_at, row.expires_at, incident.status if incident else None, self.clock())

    async def delete(self, session_id: str, bearer: str | None) -> None:
        """The device ends its session (DELETE on the Location): with the token it published with."""
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound("footage.session_not_found")
        if not bearer or not hmac.compare_digest(token_hash(bearer), session.token_sha256):
            raise BadToken("footage.bad_token")
        await self._end(session, "deleted")

    def _unpublished(self, publication: Publication, reason: CloseReason) -> None:
        """A source's publication ended by itself (its media stopped, its connection failed)."""
        for session in list(self.sessions.values()):
            if session.publication is publication:
                task = asyncio.ensure_future(self._end(session, END_REASONS.get(reason, str(reason))))
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)

    async def _end(self, session: IngestSession, reason: str) -> None:
        """End a session once: stop its recording, leave the room, close the source and put it on the
        timeline. A second caller waits for the first."""
        if self.sessions.get(session.id) is not session:
            await session.ended.wait()
            return
        del self.sessions[session.id]
        try:
            await self.archive.end_source(session.source_id, reason)
            room = session.participant.room
            await room.leave(session.participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            now = self.clock()
            async with self.sessionmaker.begin() as db:
                db.add(IncidentEvent(incident_id=session.incident_id, at=now, kind="footage_stopped",
                                     actor=session.label, detail={
                                         "source_id": session.source_id, "source_kind": "whip", "reason": reason,
                                         "seconds": round((now - session.started_at).total_seconds(), 1)}))
            logger.info("WHIP session %s ended: %s", session.id[:6], reason)
        finally:
            session.ended.set()

    async def incident_ended(self, incident_id: int) -> None:
        """The incident closed or merged (an ``Incidents.on_ended`` hook): its sessions end now."""
        for session in [s for s in self.sessions.values() if s.incident_id == incident_id]:
            await self._end(session, "incident_closed")

    async def sweep(self) -> None:
        """End the live sessions whose tokens expired or were revoked, or whose incidents closed."""
        if not self.sessions:
            return
        token_ids = {s.token_id for s in self.sessions.values()}
        async with self.sessionmaker() as db:
            rows = (await db.execute(
                select(IngestToken.id, IngestToken.revoked_at, IngestToken.expires_at, Incident.status)
                .outerjoin(Incident, Incident.id == IngestToken.incident_id)
                .where(IngestToken.id.in_(token_ids)))).all()
        now = self.clock()
        problems = {token_id: token_problem(revoked_at, expires_at, status, now)
                    for token_id, revoked_at, expires_at, status in rows}
        for session in list(self.sessions.values()):
            problem = problems.get(session.token_id, "revoked")  # a token that is gone
            if problem is not None:
                await self._end(session, problem)

    async def run(self, interval: float = SWEEP_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                logger.exception("WHIP session sweep failed")

    async def close(self) -> None:
        """Server stop: every session ends (its segment closed and hashed), then pending ends finish."""
        for session in list(self.sessions.values()):
            try:
                await self._end(session, "server_stopped")
            except Exception:
                logger.exception("ending WHIP session %s at stop failed", session.id[:6])
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
        await self.archive.close()
