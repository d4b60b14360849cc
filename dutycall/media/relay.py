"""Live relay of incident footage to chosen consoles and leaders.

A host (scope like incident writes) sends one live source of an incident to chosen duty rooms
(their consoles) and leaders (accounts): ``Relays.start``. Each chosen console or leader that is
connected is sent ``footage_relay`` over its signalling socket at once (consoles found by their
conference tag ``duty_room:<id>``, as alerts are; accounts by the identity their socket joined
with); one that connects later asks ``GET /api/relays``. The event carries the incident's title
and level and what to watch.

Watching does not join the footage room: the room stays open only to accounts whose scope holds
the incident (``Ingest.may_watch``), so a relay grants nothing beyond itself. A relayed console
asks ``relay_watch`` {relay_id, sdp} on its own signalling socket; the server checks that the
relay is live and names this console (or account), and subscribes a participant of its own in
the footage room, on the console's behalf, to that one source's publication, nothing else
(:class:`RelayWatching`). Several relays at once: one watch each. A watch ends when the console
asks (``relay_unwatch``), its connection ends, its socket closes, or the relay stops
(``DELETE /api/relays/{id}``, or its source ending): consoles are sent ``footage_relay_ended``.

On the incident's timeline: ``relay_started``, ``relay_stopped``, ``relay_watch_joined`` and
``relay_watch_left`` (who watched, for how long). The audit (``audit.py``) gets ``relayed`` and
``watched_live``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from ..conference import CloseReason, Conference, Participant, Publication, Subscription, identity_of, parse_offer
from ..directory.models import Account, DutyRoom, Role, as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident, IncidentEvent
from ..rollcall.presence import console_tag
from .audit import access_row
from .errors import Forbidden, Invalid, NotFound, TooMany
from .models import FootageRelay, FootageRelayTarget, FootageSource
from .naming import footage_room, parse_footage_room

logger = logging.getLogger(__name__)

#: At most this many duty rooms and accounts per relay; relays live at once.
MAX_TARGETS = 64
MAX_RELAYS = 64
#: Roles a relay may be sent to besides duty rooms' consoles.
LEADER_ROLES = (Role.leader, Role.host, Role.admin)

Send = Callable[[dict[str, Any]], None]


def source_tag(source_id: int) -> str:
    """The conference tag ingest gives a source's publisher (``ingest.py``)."""
    return f"footage_source:{source_id}"


@dataclass
class LiveRelay:
    """A relay that is on: who it is for and what they are told."""

    id: int
    incident_id: int
    source_id: int
    unit_path: str
    duty_room_ids: frozenset[int]
    account_ids: frozenset[int]
    message: dict[str, Any]
    watches: set[Watch] = field(default_factory=set)

    def is_for(self, who: Principal) -> bool:
        if who.kind == "device":
            return who.duty_room_id in self.duty_room_ids
        return who.id in self.account_ids


@dataclass(eq=False)
class Watch:
    """One console's (or leader's) watch of one relay: a participant of ours in the footage room
    subscribed to the relay's source only."""

    relay: LiveRelay
    who: Principal
    address: str | None
    participant: Participant
    subscription: Subscription | None = None
    started_at: dt.datetime = field(default_factory=utcnow)
    on_end: Send | None = None
    ended: bool = False


def _ids(value: object, name: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TARGETS or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise Invalid("footage.relay_targets", field=name, max=MAX_TARGETS)
    return list(dict.fromkeys(value))


class Relays:
    """Every live relay and watch of the server."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        self.clock = clock
        self.live: dict[int, LiveRelay] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        conference.on_unpublished.append(self._unpublished)
        conference.on_participant_joined.append(self._joined)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- hosts ---------------------------------------------------------------------------------------

    @staticmethod
    def _host(who: Principal) -> None:
        if who.kind != "account":
            raise Forbidden("footage.consoles_no")
        if not who.may("incidents.manage"):
            raise Forbidden("footage.no_relay_right")

    async def start(self, who: Principal, incident_id: int, data: dict[str, Any],
                    address: str | None = None) -> dict[str, Any]:
        """Relay a live source of the incident to the chosen duty rooms and leaders."""
        self._host(who)
        source_id = data.get("source_id")
        if not isinstance(source_id, int) or isinstance(source_id, bool):
            raise Invalid("footage.relay_source", field="source_id")
        room_ids, account_ids = _ids(data.get("rooms"), "rooms"), _ids(data.get("accounts"), "accounts")
        if not room_ids and not account_ids:
            raise Invalid("footage.relay_targets", field="rooms", max=MAX_TARGETS)
        if len(self.live) >= MAX_RELAYS:
            raise TooMany("footage.too_many_relays", max=MAX_RELAYS)
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await db.get(Incident, incident_id)
            if incident is None or not who.covers(incident.unit_path):
                raise NotFound("footage.incident_not_found", id=incident_id)
            source = await db.get(FootageSource, source_id)
            if source is None or source.incident_id != incident.id:
                raise NotFound("footage.source_not_found", id=source_id)
            publication = self.conference.publication_of(source_tag(source.id), footage_room(incident.id))
            if source.ended_at is not None or publication is None:
                raise Invalid("footage.source_not_live", field="source_id")
            rooms = await self._rooms(db, who, incident, room_ids)
            accounts = await self._accounts(db, who, incident, account_ids)
            relay = FootageRelay(incident_id=incident.id, source_id=source.id, unit_path=incident.unit_path,
                                 started_by=who.id, started_at=now)
            db.add(relay)
            await db.flush()
            db.add_all([FootageRelayTarget(relay_id=relay.id, duty_room_id=r.id) for r in rooms]
                       + [FootageRelayTarget(relay_id=relay.id, account_id=a.id) for a in accounts])
            db.add(IncidentEvent(incident_id=incident.id, at=now, kind="relay_started", actor=who.name, detail={
                "relay_id": relay.id, "source_id": source.id, "source": source.label,
                "rooms": [r.name for r in rooms], "accounts": [a.display_name for a in accounts]}))
            db.add(access_row(who, incident.id, "relayed", address, source_id=source.id, relay_id=relay.id, at=now))
            message = {"type": "footage_relay", "relay_id": relay.id, "incident_id": incident.id,
                       "title": incident.title, "level": incident.level, "category": incident.category,
                       "source_id": source.id, "source_label": source.label, "publication_id": publication.id,
                       "started_at": as_utc(now).isoformat()}
            live = LiveRelay(relay.id, incident.id, source.id, incident.unit_path,
                             frozenset(r.id for r in rooms), frozenset(a.id for a in accounts), message)
            described = self._json(relay, rooms, accounts)
        self.live[live.id] = live
        reached = self._push(live, live.message)
        logger.info("relay %s of source %s (incident %s) to %s consoles and leaders, %s connected",
                    live.id, live.source_id, live.incident_id, len(rooms) + len(accounts), reached)
        return {**described, "reached": reached}

    @staticmethod
    async def _rooms(db: AsyncSession, who: Principal, incident: Incident, ids: list[int]) -> list[DutyRoom]:
        """Duty rooms in the host's scope, or up the incident's chain (they see it anyway)."""
        found = []
        for room_id in ids:
            room = (await db.execute(select(DutyRoom).where(DutyRoom.id == room_id)
                                     .options(selectinload(DutyRoom.unit)))).scalar_one_or_none()
            if room is None or not room.active or not (who.covers(room.unit.path)
                                                       or incident.unit_path.startswith(room.unit.path)):
                raise NotFound("footage.relay_room_not_found", id=room_id)
            found.append(room)
        return found

    @staticmethod
    async def _accounts(db: AsyncSession, who: Principal, incident: Incident, ids: list[int]) -> list[Account]:
        found = []
        for account_id in ids:
            account = (await db.execute(select(Account).where(Account.id == account_id)
                                        .options(selectinload(Account.unit)))).scalar_one_or_none()
            if account is None or not account.active or account.role not in LEADER_ROLES or not (
                    who.covers(account.unit.path) or incident.unit_path.startswith(account.unit.path)):
                raise NotFound("footage.relay_account_not_found", id=account_id)
            found.append(account)
        return found

    @staticmethod
    def _json(relay: FootageRelay, rooms: list[DutyRoom], accounts: list[Account]) -> dict[str, Any]:
        return {"id": relay.id, "incident_id": relay.incident_id, "source_id": relay.source_id,
                "started_at": as_utc(relay.started_at).isoformat(),
                "ended_at": as_utc(relay.ended_at).isoformat() if relay.ended_at else None,
                "end_reason": relay.end_reason,
                "rooms": [{"id": r.id, "name": r.name} for r in rooms],
                "accounts": [{"id": a.id, "name": a.display_name} for a in accounts]}

    async def stop(self, who: Principal, relay_id: int) -> dict[str, Any]:
        """A host stops a relay: the consoles close its panel."""
        self._host(who)
        async with self.sessionmaker() as db:
            relay = await db.get(FootageRelay, relay_id)
            if relay is None or not who.covers(relay.unit_path):
                raise NotFound("footage.relay_not_found", id=relay_id)
        await self._end(relay_id, "stopped", who)
        return (await self._described(relay_id))[0]

    async def listing(self, who: Principal, incident_id: int) -> list[dict[str, Any]]:
        """The incident's relays (live and past): accounts whose scope holds the incident."""
        if who.kind != "account" or not who.may("incidents.read"):
            raise Forbidden("footage.consoles_no")
        async with self.sessionmaker() as db:
            incident = await db.get(Incident, incident_id)
            if incident is None or not who.covers(incident.unit_path):
                raise NotFound("footage.incident_not_found", id=incident_id)
            ids = list((await db.execute(select(FootageRelay.id).where(FootageRelay.incident_id == incident_id)
                                         .order_by(FootageRelay.id))).scalars())
        return await self._described(*ids)

    async def _described(self, *ids: int) -> list[dict[str, Any]]:
        found = []
        async with self.sessionmaker() as db:
            for relay_id in ids:
                relay = await db.get(FootageRelay, relay_id)
                if relay is None:
                    continue
                targets = list((await db.execute(select(FootageRelayTarget).where(
                    FootageRelayTarget.relay_id == relay_id).order_by(FootageRelayTarget.id))).scalars())
                rooms = [r for t in targets if t.duty_room_id and (r := await db.get(DutyRoom, t.duty_room_id))]
                accounts = [a for t in targets if t.account_id and (a := await db.get(Account, t.account_id))]
                live = self.live.get(relay_id)
                found.append({**self._json(relay, rooms, accounts), "live": live is not None,
                              "watching": sorted(w.who.name for w in live.watches) if live else []})
        return found

    def mine(self, who: Principal) -> list[dict[str, Any]]:
        """The live relays sent to this console or leader (asked when it connects)."""
        return [relay.message for relay in self.live.values() if relay.is_for(who)]

    # -- ending --------------------------------------------------------------------------------------

    async def _end(self, relay_id: int, reason: str, who: Principal | None = None) -> None:
        live = self.live.pop(relay_id, None)
        if live is not None:  # its watches end first: the timeline reads in order
            for watch in list(live.watches):
                await self.end_watch(watch, "relay_ended")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            relay = await db.get(FootageRelay, relay_id)
            if relay is None or relay.ended_at is not None:
                return
            relay.ended_at, relay.end_reason, relay.ended_by = now, reason, who.id if who else None
            db.add(IncidentEvent(incident_id=relay.incident_id, at=now, kind="relay_stopped",
                                 actor=who.name if who else "", detail={
                                     "relay_id": relay.id, "source_id": relay.source_id, "reason": reason,
                                     "seconds": round((now - as_utc(relay.started_at)).total_seconds(), 1)}))
        if live is not None:
            self._push(live, {"type": "footage_relay_ended", "relay_id": live.id, "incident_id": live.incident_id,
                              "reason": reason})

    def _unpublished(self, publication: Publication, reason: CloseReason) -> None:
        """A relayed source stopped publishing: its relays end."""
        tag = publication.participant.tag or ""
        for relay in list(self.live.values()):
            if tag == source_tag(relay.source_id):
                self._spawn(self._end(relay.id, "source_ended"))

    def _joined(self, participant: Participant) -> None:
        """An account entered a footage room to watch (the room's own rule let it): audited."""
        room = parse_footage_room(participant.room_name)
        identity = identity_of(participant)
        if room is None or identity.get("kind") != "account":
            return
        identity["name"] = participant.name
        self._spawn(self._audit_join(identity, room.incident_id))

    async def _audit_join(self, identity: dict[str, Any], incident_id: int) -> None:
        async with self.sessionmaker.begin() as db:
            db.add(access_row(identity, incident_id, "watched_live", None))

    async def recover(self) -> list[int]:
        """At start: relays a stopped server left on are closed (their sources ended with it)."""
        async with self.sessionmaker() as db:
            ids = list((await db.execute(select(FootageRelay.id).where(FootageRelay.ended_at.is_(None)))).scalars())
        for relay_id in ids:
            await self._end(relay_id, "server_stopped")
        return ids

    async def close(self) -> None:
        for relay_id in list(self.live):
            try:
                await self._end(relay_id, "server_stopped")
            except Exception:
                logger.exception("ending relay %s at stop failed", relay_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- consoles ------------------------------------------------------------------------------------

    def _push(self, relay: LiveRelay, message: dict[str, Any]) -> int:
        """Send ``message`` to the relay's connected consoles and leaders; how many were reached."""
        reached = sum(self.conference.notify_tagged(console_tag(room_id), message) for room_id in relay.duty_room_ids)
        for participant in self.conference.participants_where(
                lambda identity: identity.get("kind") == "account" and identity.get("account_id") in relay.account_ids):
            participant.notify(message)
            reached += 1
        return reached

    async def watch(self, who: Principal, relay_id: object, sdp: object, address: str | None,
                    on_end: Send) -> tuple[Watch, str]:
        """Subscribe, on behalf of ``who``, to the source of a live relay sent to it."""
        relay = self.live.get(relay_id) if isinstance(relay_id, int) and not isinstance(relay_id, bool) else None
        if relay is None or not relay.is_for(who):
            raise NotFound("footage.relay_not_found", id=str(relay_id)[:20])
        publication = self.conference.publication_of(source_tag(relay.source_id), footage_room(relay.incident_id))
        if publication is None:
            raise NotFound("footage.relay_not_found", id=relay.id)
        offer = parse_offer(sdp, "subscribe")
        room = publication.participant.room
        participant = room.join(who.name, lambda message: self._watch_event(watch, message),
                                identity={"kind": "relay_watch", "relay_id": relay.id},
                                shown={"relay_id": relay.id})
        watch = Watch(relay, who, address, participant, on_end=on_end)
        try:
            subscription, answer = await room.subscribe(participant, publication.id, offer)
        except BaseException:
            await room.leave(participant, CloseReason.LEFT)
            self.conference.forget_if_empty(room)
            raise
        watch.subscription = subscription
        if self.live.get(relay.id) is not relay:  # stopped while we negotiated
            await self.end_watch(watch, "relay_ended")
            raise NotFound("footage.relay_not_found", id=relay.id)
        relay.watches.add(watch)
        now = self.clock()
        watch.started_at = now
        async with self.sessionmaker.begin() as db:
            db.add(IncidentEvent(incident_id=relay.incident_id, at=now, kind="relay_watch_joined", actor=who.name,
                                 detail={"relay_id": relay.id, "source_id": relay.source_id,
                                         "principal_kind": str(who.kind)}))
            db.add(access_row(who, relay.incident_id, "watched_live", address, source_id=relay.source_id,
                              relay_id=relay.id, at=now))
        return watch, answer

    def _watch_event(self, watch: Watch, message: dict[str, Any]) -> None:
        """What the footage room tells our participant: only its subscription's end matters."""
        if message.get("type") in ("subscription_closed", "room_closed"):
            self._spawn(self.end_watch(watch, str(message.get("reason") or message.get("type"))))

    async def end_watch(self, watch: Watch, reason: str) -> None:
        """End a watch once: leave the footage room, tell the console, put it on the timeline."""
        if watch.ended:
            return
        watch.ended = True
        watch.relay.watches.discard(watch)
        room = watch.participant.room
        await room.leave(watch.participant, CloseReason.LEFT)
        self.conference.forget_if_empty(room)
        if watch.on_end is not None:
            watch.on_end({"type": "footage_relay_watch_ended", "relay_id": watch.relay.id, "reason": reason})
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            db.add(IncidentEvent(incident_id=watch.relay.incident_id, at=now, kind="relay_watch_left",
                                 actor=watch.who.name, detail={
                                     "relay_id": watch.relay.id, "source_id": watch.relay.source_id,
                                     "reason": reason,
                                     "seconds": round((now - watch.started_at).total_seconds(), 1)}))


class RelayWatching:
    """One signalling socket's watches (``relay_watch``, ``relay_unwatch``); they end with it."""

    def __init__(self, relays: Relays, who: Principal, send: Send, address: str | None) -> None:
        self.relays = relays
        self.who = who
        self.send = send
        self.address = address
        self.watches: dict[int, Watch] = {}

    async def watch(self, relay_id: object, sdp: object) -> dict[str, Any]:
        if isinstance(relay_id, int) and relay_id in self.watches:
            await self.relays.end_watch(self.watches.pop(relay_id), "replaced")
        watch, answer = await self.relays.watch(self.who, relay_id, sdp, self.address, self._ended)
        self.watches[watch.relay.id] = watch
        return {"type": "relay_watching", "relay_id": watch.relay.id, "sdp": answer,
                "subscription_id": watch.subscription.id if watch.subscription else None}

    async def unwatch(self, relay_id: object) -> dict[str, Any]:
        watch = self.watches.pop(relay_id, None) if isinstance(relay_id, int) else None
        if watch is None:
            raise NotFound("footage.relay_not_found", id=str(relay_id)[:20])
        watch.on_end = None  # it asked: no event
        await self.relays.end_watch(watch, "unwatched")
        return {"type": "relay_unwatched", "relay_id": watch.relay.id}

    def _ended(self, message: dict[str, Any]) -> None:
        self.watches.pop(message["relay_id"], None)
        self.send(message)

    def close(self) -> None:
        """The socket closed: every watch ends (in the background)."""
        for watch in list(self.watches.values()):
            watch.on_end = None
            self.relays._spawn(self.relays.end_watch(watch, "disconnected"))
        self.watches.clear()
