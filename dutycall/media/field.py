"""Field streaming: a responder's phone streams an incident's scene through a one-time link.

A host makes a link for an incident (scope as ingest tokens: an account with ``incidents.manage``
whose subtree holds the incident). Its secret (256 bits) is shown once, with a QR code (SVG,
``segno``), and stored as SHA-256 only. The first page that opens it claims it: the server keeps
the SHA-256 of a claim secret that page holds; any other device is refused (409). The claiming
page publishes over a WHIP-like exchange (an SDP offer, answered by a publication in the
incident's footage room, ``naming.footage_room``), archived at once as a ``field`` source with
``footage_started`` / ``footage_stopped`` on the timeline, exactly as ``ingest.py`` does for WHIP.
It may publish again at any time (a dropped network): the new publication replaces the old one.

An expired or revoked link is refused (410) and its live stream ends: at once on revocation and
when its incident is closed or merged (``incident_ended``, hooked on the Incidents service),
within a sweep's interval on expiry (the sweep checks revocation and the incident too). A publish
that raced one of these is checked again once its session is registered, and ends then. A closed
or merged incident takes no footage. In-flight publishes count against the caps (``MAX_SESSIONS``,
``MAX_SESSIONS_PER_INCIDENT``).

The phone sees the incident's title and level, nothing else of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import io
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import errors
from ..conference import CloseReason, Conference, Offer, Participant, Publication, parse_offer
from ..directory.base import DirectoryBase
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from ..messages import CATALOGUE, EN, ZH
from ..text import unsafe_reason
from .errors import Forbidden, Invalid, MediaError, NotFound, TooMany
from .ingest import END_REASONS, token_problem
from .models import FieldLink
from .naming import footage_room
from .recording import Archive
from .scope import incident_in_scope, require_host

logger = logging.getLogger(__name__)

MAX_LABEL = 64
#: How long a link may be valid: 5 minutes to a day (default: two hours).
LINK_MINUTES = (5, 24 * 60)
DEFAULT_LINK_MINUTES = 120
MAX_SESSIONS = 32
#: Live field streams of one incident (so one district cannot use up the server's ``MAX_SESSIONS``).
MAX_SESSIONS_PER_INCIDENT = 8
#: How often live streams are checked against their links (expiry, revocation) and incidents.
SWEEP_SECONDS = 2.0
#: What a link's secret is appended to: the fragment, which browsers never send to a server.
PAGE_PATH = "/field#"

MESSAGES: dict[str, dict[str, str]] = {
    "field.no_right": {ZH: "您的角色不能为事件生成或撤销现场视频链接",
                       EN: "Your role cannot make or revoke field video links for incidents"},
    "field.link_not_found": {ZH: "没有编号为 {id} 的现场视频链接", EN: "There is no field video link {id}"},
    "field.unknown": {ZH: "链接无效：请向值班室索取新的现场视频链接",
                      EN: "This link is not valid: ask the duty office for a new field video link"},
    "field.expired": {ZH: "链接已过期：请向值班室索取新的现场视频链接",
                      EN: "This link has expired: ask the duty office for a new field video link"},
    "field.revoked": {ZH: "链接已被值班室撤销，直播已结束",
                      EN: "The duty office revoked this link: the live stream has ended"},
    "field.closed": {ZH: "事件已结束或已合并，不再接收现场视频",
                     EN: "The incident is closed or merged: it takes no more field video"},
    "field.claimed": {ZH: "此链接已在另一台设备上打开，只能由第一台打开它的设备使用",
                      EN: "This link was already opened on another device: only the first device that opened it "
                          "may use it"},
    "field.label": {ZH: "名称应为 1 至 {max} 个字符，且不含控制字符",
                    EN: "The label must be 1 to {max} characters without control characters"},
    "field.minutes": {ZH: "有效期应为 {low} 至 {high} 分钟的整数",
                      EN: "The validity must be {low} to {high} whole minutes"},
    "field.not_live": {ZH: "当前没有直播", EN: "Nothing is being streamed now"},
    "field.too_many": {ZH: "同时推流的会话已达上限（{max} 个）", EN: "Too many live streams at once (at most {max})"},
    "field.too_many_incident": {ZH: "该事件同时推流的现场视频已达上限（{max} 个）",
                                EN: "Too many live field streams at once for this incident (at most {max})"},
}
CATALOGUE.update(MESSAGES)


class LinkGone(MediaError, errors.Forbidden):
    """An expired or revoked link, or one whose incident is closed: the web edge answers 410."""

    code = "link_gone"

    def __init__(self, key: str, link_id: int, reason: str) -> None:
        super().__init__(key)
        self.link_id, self.reason = link_id, reason


#: The refusal a phone gets, by why its link may no longer stream.
GONE_KEYS = {"revoked": "field.revoked", "expired": "field.expired", "incident_closed": "field.closed"}


class LinkClaimed(MediaError, errors.Conflict):
    """Another device opened the link first (409)."""

    code = "link_claimed"


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def qr_svg_data_uri(url: str) -> str:
    """The QR code of ``url`` as an SVG ``data:`` URI (segno: pure Python, no Pillow)."""
    import segno

    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=4, border=2, xmldecl=False,
                                                 svgns=True, title=None, desc=None)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")


@dataclass
class FieldSession:
    """One live publication of a field link."""

    link_id: int
    incident_id: int
    source_id: int
    label: str
    participant: Participant
    publication: Publication
    started_at: dt.datetime
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class FieldLinks:
    """Field links (hosts) and the phones' publications through them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference, archive: Archive,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        self.archive = archive
        self.clock = clock
        #: The live publication of each link, by link id.
        self.sessions: dict[int, FieldSession] = {}
        self._ending: set[asyncio.Task[None]] = set()
        #: One publish at a time per link (by link id), and how many wait on each lock.
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}
        #: Publishes under way (not yet in ``sessions``): their incident ids, counted against the caps.
        self._starting: dict[object, int] = {}
        conference.on_unpublished.append(self._unpublished)

    # -- links (hosts) -------------------------------------------------------------------------------

    @staticmethod
    def _host(who: Principal) -> None:
        require_host(who, "field.no_right")

    _incident = staticmethod(incident_in_scope)

    def _link_json(self, link: FieldLink, now: dt.datetime) -> dict[str, Any]:
        expires = as_utc(link.expires_at)
        live = self.sessions.get(link.id)
        return {"id": link.id, "incident_id": link.incident_id, "label": link.label,
                "created_at": as_utc(link.created_at).isoformat(), "expires_at": expires.isoformat(),
                "revoked_at": as_utc(link.revoked_at).isoformat() if link.revoked_at else None,
                "claimed_at": as_utc(link.claimed_at).isoformat() if link.claimed_at else None,
                "last_published_at": as_utc(link.last_published_at).isoformat() if link.last_published_at else None,
                "live": live is not None,
                "live_since": live.started_at.isoformat() if live is not None else None,
                "valid": link.revoked_at is None and expires > now}

    async def issue(self, who: Principal, incident_id: int, data: dict[str, Any], origin: str) -> dict[str, Any]:
        """A new link for the incident: its URL (``origin`` + ``/field#<secret>``) and QR code are
        in this answer only."""
        self._host(who)
        label = data.get("label", "")
        if not isinstance(label, str) or not label.strip() or len(label.strip()) > MAX_LABEL \
                or unsafe_reason(label, multiline=False):
            raise Invalid("field.label", field="label", max=MAX_LABEL)
        minutes = data.get("minutes", DEFAULT_LINK_MINUTES)
        low, high = LINK_MINUTES
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not low <= minutes <= high:
            raise Invalid("field.minutes", field="minutes", low=low, high=high)
        value = secrets.token_urlsafe(32)  # 256 bits
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id)
            if incident.status in ("closed", "merged"):
                raise Forbidden("footage.incident_closed")
            link = FieldLink(incident_id=incident.id, unit_path=incident.unit_path, secret_sha256=secret_hash(value),
                             label=label.strip(), created_by=who.id, created_at=now,
                             expires_at=now + dt.timedelta(minutes=minutes))
            db.add(link)
            await db.flush()
            DirectoryBase.audit(db, who, "issue", "field_link", link.id, incident.unit_path,
                                incident_id=incident.id, label=link.label, minutes=minutes)
            found = self._link_json(link, now)
        url = origin.rstrip("/") + PAGE_PATH + value
        qr = await asyncio.to_thread(qr_svg_data_uri, url)
        return {**found, "url": url, "qr_svg": qr}

    async def links(self, who: Principal, incident_id: int) -> list[dict[str, Any]]:
        self._host(who)
        now = self.clock()
        async with self.sessionmaker() as db:
            await self._incident(db, who, incident_id)
            rows = (await db.execute(select(FieldLink).where(FieldLink.incident_id == incident_id)
                                     .order_by(FieldLink.id))).scalars()
            return [self._link_json(link, now) for link in rows]

    async def revoke(self, who: Principal, link_id: int) -> dict[str, Any]:
        """Revoke a link; its live stream ends now."""
        self._host(who)
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            link = await db.get(FieldLink, link_id)
            if link is None or not who.covers(link.unit_path):
                raise NotFound("field.link_not_found", id=link_id)
            if link.revoked_at is None:
                link.revoked_at, link.revoked_by = now, who.id
                DirectoryBase.audit(db, who, "revoke", "field_link", link.id, link.unit_path,
                                    incident_id=link.incident_id)
        session = self.sessions.get(link_id)
        if session is not None:
            await self._end(session, "revoked")
        async with self.sessionmaker() as db:
            link = await db.get(FieldLink, link_id)
            assert link is not None
            return self._link_json(link, now)

    # -- the phone -----------------------------------------------------------------------------------

    async def _usable(self, db: AsyncSession, secret: str | None) -> tuple[FieldLink, Incident]:
        """The link ``secret`` names and its incident, if it may still stream; NotFound (unknown),
        LinkGone (revoked, expired, incident closed) otherwise."""
        link = None
        if secret:
            link = (await db.execute(select(FieldLink).where(
                FieldLink.secret_sha256 == secret_hash(secret)))).scalar_one_or_none()
        if link is None:
            raise NotFound("field.unknown")
        if link.revoked_at is not None:
            raise LinkGone("field.revoked", link.id, "revoked")
        if as_utc(link.expires_at) <= self.clock():
            raise LinkGone("field.expired", link.id, "expired")
        incident = await db.get(Incident, link.incident_id)
        if incident is None or incident.status in ("closed", "merged"):
            raise LinkGone("field.closed", link.id, "incident_closed")
        return link, incident

    @staticmethod
    def _check_claim(link: FieldLink, claim: str | None) -> None:
        if link.claim_sha256 is None or not claim or not secrets.compare_digest(secret_hash(claim), link.claim_sha256):
            raise LinkClaimed("field.claimed")

    def _phone_json(self, link: FieldLink, incident: Incident) -> dict[str, Any]:
        """What the phone is told: the incident's title and level, the link's label and expiry,
        whether it is live. Nothing else of the incident."""
        live = self.sessions.get(link.id)
        return {"incident": {"title": incident.title, "level": incident.level}, "label": link.label,
                "expires_at": as_utc(link.expires_at).isoformat(), "live": live is not None,
                "live_since": live.started_at.isoformat() if live is not None else None}

    async def _ending_if_gone(self, exc: LinkGone) -> None:
        """A phone found its link gone: its stream (if any) ends now, not at the next sweep."""
        session = self.sessions.get(exc.link_id)
        if session is not None:
            await self._end(session, exc.reason)

    async def claim(self, secret: str | None, claim: str | None) -> dict[str, Any]:
        try:
            return await self._claim(secret, claim)
        except LinkGone as exc:
            await self._ending_if_gone(exc)
            raise

    async def _claim(self, secret: str | None, claim: str | None) -> dict[str, Any]:
        """The page opens the link: the first one claims it (its claim secret is returned, once);
        the page holding that claim may come back; any other is refused (LinkClaimed)."""
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            link, incident = await self._usable(db, secret)
            new: str | None = None
            if link.claim_sha256 is None:
                new = secrets.token_urlsafe(32)
                # Only if still unclaimed: of two phones opening it at once, one wins.
                claimed: CursorResult[Any] = await db.execute(update(FieldLink).where(  # type: ignore[assignment]
                    FieldLink.id == link.id, FieldLink.claim_sha256.is_(None)).values(
                    claim_sha256=secret_hash(new), claimed_at=now))
                if claimed.rowcount != 1:
                    raise LinkClaimed("field.claimed")
            else:
                self._check_claim(link, claim)
            found = self._phone_json(link, incident)
        if new is not None:
            logger.info("field link %s claimed", link.id)
            found["claim"] = new
        return found

    async def phone_status(self, secret: str | None, claim: str | None) -> dict[str, Any]:
        """The claiming page's view of its link (it polls this while open)."""
        try:
            async with self.sessionmaker() as db:
                link, incident = await self._usable(db, secret)
                self._check_claim(link, claim)
                return self._phone_json(link, incident)
        except LinkGone as exc:
            await self._ending_if_gone(exc)
            raise

    async def admit(self, secret: str | None, claim: str | None) -> tuple[int, int, str]:
        """The link's id, incident id and label if the page holding ``claim`` may stream through it
        now; NotFound, LinkClaimed or LinkGone (its stream, if any, ends) otherwise."""
        try:
            async with self.sessionmaker() as db:
                link, incident = await self._usable(db, secret)
                self._check_claim(link, claim)
                return link.id, incident.id, link.label
        except LinkGone as exc:
            await self._ending_if_gone(exc)
            raise

    @contextlib.asynccontextmanager
    async def _serial(self, link_id: int) -> AsyncIterator[None]:
        """Hold the link's lock (its publishes one after another); forget it when unused."""
        lock = self._locks.setdefault(link_id, asyncio.Lock())
        self._lock_users[link_id] = self._lock_users.get(link_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[link_id] -= 1
            if not self._lock_users[link_id]:
                del self._lock_users[link_id], self._locks[link_id]

    def _reserve(self, incident_id: int) -> object:
        """Take a slot for a publish under way, synchronously (no await between the count and the
        reservation), or raise TooMany. ``_starting.pop(key)`` gives it back."""
        if len(self.sessions) + len(self._starting) >= MAX_SESSIONS:
            raise TooMany("field.too_many", max=MAX_SESSIONS)
        if sum(s.incident_id == incident_id for s in self.sessions.values()) + sum(
                i == incident_id for i in self._starting.values()) >= MAX_SESSIONS_PER_INCIDENT:
            raise TooMany("field.too_many_incident", max=MAX_SESSIONS_PER_INCIDENT)
        key = object()
        self._starting[key] = incident_id
        return key

    async def publish(self, secret: str | None, claim: str | None, sdp: str) -> tuple[FieldSession, str]:
        """Answer the claiming page's offer with a publication in the incident's footage room,
        archived; a previous publication of the same link ends ("replaced")."""
        link_id, incident_id, label = await self.admit(secret, claim)
        offer = parse_offer(sdp, "publish")
        async with self._serial(link_id):
            await self.admit(secret, claim)  # it may have been revoked while this one waited
            previous = self.sessions.get(link_id)
            if previous is not None:
                await self._end(previous, "replaced")  # the phone reconnected
            key = self._reserve(incident_id)
            try:
                await self.archive.ensure_space(incident_id, label)  # a refusal goes on the timeline
                session, answer = await self._start(link_id, incident_id, label, offer)
            finally:
                self._starting.pop(key, None)
            # Revoked, expired or its incident closed while it was set up: whoever did that found no
            # session to end (it was not registered yet), so it ends here.
            problem = await self._registered(session)
            if problem is not None:
                await self._end(session, problem)
                raise LinkGone(GONE_KEYS[problem], link_id, problem)
        logger.info("field link %s publishing for incident %s (source %s)", link_id, incident_id, session.source_id)
        return session, answer

    async def _start(self, link_id: int, incident_id: int, label: str, offer: Offer) -> tuple[FieldSession, str]:
        """The publication, its archive and the session (in ``sessions`` when this returns)."""
        room_name = footage_room(incident_id)
        source_id = await self.archive.new_source(incident_id, "field", label, room_name)
        room = self.conference.room(room_name)
        participant = room.join(label, lambda message: None, identity={"kind": "field", "field_link_id": link_id},
                                tag=f"footage_source:{source_id}", shown={"footage_source_id": source_id})
        try:
            publication, answer = await room.publish(participant, offer, label, None)
            await self.archive.start(publication, source_id, incident_id)
        except BaseException:
            await room.leave(participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            await self.archive.end_source(source_id, "failed")
            raise
        session = FieldSession(link_id, incident_id, source_id, label, participant, publication, self.clock())
        self.sessions[link_id] = session
        return session, answer

    async def _registered(self, session: FieldSession) -> str | None:
        """Put the start on the timeline and read the link and incident again (after the session is
        in ``sessions``): why it must end now, or None."""
        now = session.started_at
        async with self.sessionmaker.begin() as db:
            row = await db.get(FieldLink, session.link_id)
            incident = await db.get(Incident, session.incident_id)
            if row is not None:
                row.last_published_at = now
            db.add(IncidentEvent(incident_id=session.incident_id, at=now, kind="footage_started", actor=session.label,
                                 detail={"source_id": session.source_id, "source_kind": "field",
                                         "field_link_id": session.link_id,
                                         "video": session.publication.codec_name("video"),
                                         "audio": session.publication.codec_name("audio")}))
        if row is None:
            return "revoked"
        return token_problem(row.revoked_at, row.expires_at, incident.status if incident else None, self.clock())

    async def stop(self, secret: str | None, claim: str | None) -> None:
        """The claiming page stops streaming (停止直播)."""
        async with self.sessionmaker() as db:
            link, _ = await self._usable(db, secret)
            self._check_claim(link, claim)
        session = self.sessions.get(link.id)
        if session is None:
            raise NotFound("field.not_live")
        await self._end(session, "deleted")

    # -- ends ----------------------------------------------------------------------------------------

    def _unpublished(self, publication: Publication, reason: CloseReason) -> None:
        """A phone's publication ended by itself (its network dropped, its media stopped)."""
        for session in list(self.sessions.values()):
            if session.publication is publication:
                task = asyncio.ensure_future(self._end(session, END_REASONS.get(reason, str(reason))))
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)

    async def _end(self, session: FieldSession, reason: str) -> None:
        """End a session once: stop its recording, leave the room, close the source and put it on
        the timeline. A second caller waits for the first."""
        if self.sessions.get(session.link_id) is not session:
            await session.ended.wait()
            return
        del self.sessions[session.link_id]
        try:
            await self.archive.end_source(session.source_id, reason)
            room = session.participant.room
            await room.leave(session.participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            now = self.clock()
            async with self.sessionmaker.begin() as db:
                db.add(IncidentEvent(incident_id=session.incident_id, at=now, kind="footage_stopped",
                                     actor=session.label, detail={
                                         "source_id": session.source_id, "source_kind": "field",
                                         "field_link_id": session.link_id, "reason": reason,
                                         "seconds": round((now - session.started_at).total_seconds(), 1)}))
            logger.info("field link %s stream ended: %s", session.link_id, reason)
        finally:
            session.ended.set()

    async def incident_ended(self, incident_id: int) -> None:
        """The incident closed or merged (an ``Incidents.on_ended`` hook): its streams end now."""
        for session in [s for s in self.sessions.values() if s.incident_id == incident_id]:
            await self._end(session, "incident_closed")

    async def sweep(self) -> None:
        """End the live streams whose links expired or were revoked, or whose incidents closed."""
        if not self.sessions:
            return
        async with self.sessionmaker() as db:
            rows = (await db.execute(
                select(FieldLink.id, FieldLink.revoked_at, FieldLink.expires_at, Incident.status)
                .outerjoin(Incident, Incident.id == FieldLink.incident_id)
                .where(FieldLink.id.in_(list(self.sessions))))).all()
        now = self.clock()
        problems = {link_id: token_problem(revoked_at, expires_at, status, now)
                    for link_id, revoked_at, expires_at, status in rows}
        for session in list(self.sessions.values()):
            problem = problems.get(session.link_id, "revoked")  # a link that is gone
            if problem is not None:
                await self._end(session, problem)

    async def run(self, interval: float = SWEEP_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                logger.exception("field link sweep failed")

    async def close(self) -> None:
        """Server stop: every stream ends (its segment closed and hashed); the archive stays (the
        footage routes close it after)."""
        for session in list(self.sessions.values()):
            try:
                await self._end(session, "server_stopped")
            except Exception:
                logger.exception("ending field stream of link %s at stop failed", session.link_id)
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
