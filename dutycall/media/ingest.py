"""Device ingest over WHIP (RFC 9725): an encoder or drone publishes an incident's footage.

A host issues a bearer token for an incident (stored as SHA-256 only, with an expiry; it can be
revoked, which ends its live sessions). A device POSTs its SDP offer with the token; the offer
is answered by a publication in the incident's footage room (``naming.footage_room``), which the
archive records at once (``recording.py``), and the session's resource is returned for the
DELETE that ends it. One live session per token: a device that reconnects replaces its previous
session. Each source's start and stop go on the incident's timeline (``footage_started``,
``footage_stopped``) in the same transaction as its row.

The answer carries every candidate (aiortc gathers before answering), so no trickle: PATCH is
refused (405), as RFC 9725 allows. The answer takes the DTLS client role (``setup:active``); an
encoder whose certificate is RSA (GStreamer's webrtcbin) gets through because
``aiortc_compat`` lets aiortc offer ECDHE-RSA suites (tests/test_gst_whip.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import CloseReason, Conference, Participant, Publication, parse_offer
from ..directory.base import DirectoryBase
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from ..text import unsafe_reason
from .errors import BadToken, Forbidden, Invalid, NotFound, TooMany
from .models import IngestToken
from .naming import footage_room, parse_footage_room
from .recording import Archive

logger = logging.getLogger(__name__)

MAX_LABEL = 64
#: How long a token may be valid: 5 minutes to 7 days (default: a day).
TOKEN_MINUTES = (5, 7 * 24 * 60)
DEFAULT_TOKEN_MINUTES = 24 * 60
MAX_SESSIONS = 32
#: What an ending publication's reason becomes on the source row and the timeline.
END_REASONS = {CloseReason.MEDIA_TIMEOUT: "media_timeout", CloseReason.NO_MEDIA: "no_media",
               CloseReason.PEER_FAILED: "connection_failed", CloseReason.PEER_CLOSED: "connection_closed"}


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
        conference.on_unpublished.append(self._unpublished)

    # -- tokens --------------------------------------------------------------------------------------

    @staticmethod
    def _host(who: Principal) -> None:
        if who.kind != "account":
            raise Forbidden("footage.consoles_no")
        if not who.may("incidents.manage"):
            raise Forbidden("footage.no_ingest_right")

    @staticmethod
    async def _incident(db: AsyncSession, who: Principal, incident_id: int) -> Incident:
        incident = await db.get(Incident, incident_id)
        if incident is None or not who.covers(incident.unit_path):
            raise NotFound("footage.incident_not_found", id=incident_id)
        return incident

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

    async def publish(self, bearer: str | None, sdp: str) -> tuple[IngestSession, str]:
        """Answer a device's offer: a publication in the incident's footage room, archived.

        Raises BadToken (401), Forbidden (a closed incident), the conference's SdpError for a bad
        offer, NoSpace (503) when the recordings disk is below its minimum."""
        token = await self.check_token(bearer)
        offer = parse_offer(sdp, "publish")
        await asyncio.to_thread(self.archive.check_space)
        for previous in [s for s in self.sessions.values() if s.token_id == token.id]:
            await self._end(previous, "replaced")  # the device reconnected
        if len(self.sessions) >= MAX_SESSIONS:
            raise TooMany("footage.too_many_sessions", max=MAX_SESSIONS)
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
        now = self.clock()
        session = IngestSession(secrets.token_urlsafe(18), token.id, token.token_sha256, token.incident_id,
                                source_id, token.label, participant, publication, now)
        self.sessions[session.id] = session
        async with self.sessionmaker.begin() as db:
            row = await db.get(IngestToken, token.id)
            if row is not None:
                row.last_used_at = now
            db.add(IncidentEvent(incident_id=token.incident_id, at=now, kind="footage_started", actor=token.label,
                                 detail={"source_id": source_id, "source_kind": "whip",
                                         "video": publication.codec_name("video"),
                                         "audio": publication.codec_name("audio")}))
        logger.info("WHIP session %s: %s publishing for incident %s (source %s)", session.id[:6],
                    token.label, token.incident_id, source_id)
        return session, answer

    async def delete(self, session_id: str, bearer: str | None) -> None:
        """The device ends its session (DELETE on the Location): with the token it published with."""
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound("footage.session_not_found")
        if not bearer or token_hash(bearer) != session.token_sha256:
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
