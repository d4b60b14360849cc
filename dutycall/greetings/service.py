"""Greetings: create (now or at a set time), start, end, cancel; who watches; the reply floor.

A greeting's leader and the consoles of its target duty rooms meet in its conference room
(:mod:`.naming`). Consoles are found by their conference tag (``duty_room:<id>``, see
``rollcall/presence.py``) through the conference's public queries; a console on standby is
pulled in with ``greeting_invite`` when the greeting goes live, or when it connects while the
greeting is live. Receipts follow the conference's join and leave hooks: a room's stay starts
when its first console joins the greeting's room and ends when its last one leaves; every stay
is summed, and a room that never joined is offline. Each change is committed in order (one
lock per greeting) in a task of its own: the hooks are synchronous.

The reply floor: every console holds a subscription to the greeting's sources (never moved,
so the leader stays heard by all) and one floor subscription, which carries the room brought up
to reply (nobody's between replies). Only that room publishes full quality; the rest stay on the
small publishing profile.

Sources: what a console subscribes to is named by the server, never guessed (not "whoever is not
a console"): ``room_info.sources`` at join, then ``greeting_source`` events, each a list of
publications (``publication_id``, ``participant_id``, ``kinds``, ``source`` "media" or "leader").
The leader's (or the creating host's) own publications in the room are sources; a pre-recorded
greeting (``media_id``) adds its playout (``media/playout.py``), published into the room when the
greeting starts. A console joining after the video began gets, by ``late_join``, the one shared
playout where it is ("live") or a playout of its own from the beginning ("start": the prepared
file's packets read again, never re-encoded; consoles arriving together share one). When every
playout of a greeting has played out, the greeting ends by itself, unless its leader (or creator)
is in the room: then it stays live for replies until they end it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import errors
from ..conference import Conference, Participant, Publication
from ..directory.models import Account, DutyRoom, Role, Unit, as_utc, utcnow
from ..directory.principal import Principal
from ..media.models import GreetingMedia
from ..media.playout import Playout, Playouts
from ..rollcall.naming import RoomKind, parse_room
from ..rollcall.presence import console_tag, duty_room_of
from ..text import unsafe_reason
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Greeting, GreetingReceipt
from .naming import greeting_room, parse_greeting_room

logger = logging.getLogger(__name__)

TITLE_MAX = 128
#: The most leaders the picker lists (a city has a few dozen).
LEADERS_MAX = 500
#: How long the room that replied keeps full quality while the floor returns (its keyframe).
FLOOR_HANDOVER = 2.0
#: How far in the past a scheduled time may lie (a clock a little behind, a slow form).
SCHEDULE_SLACK = dt.timedelta(minutes=1)
#: How far ahead a greeting may be scheduled (a year: the calendar's arithmetic stays in range).
SCHEDULE_HORIZON = dt.timedelta(days=366)
#: What a console joining a pre-recorded greeting late sees: the shared playout where it is, or
#: a playout of its own from the beginning.
LATE_JOIN = ("live", "start")
#: Seconds between a pre-recorded greeting's publication and its first packet: the consoles
#: pulled in subscribe meanwhile (a console later than that is a late joiner).
MEDIA_LEAD = 3.0
#: The same for a late joiner's own playout ("start"): it subscribes before the first keyframe.
LATE_LEAD = 1.5
#: Seconds a live greeting may go with no video playing and no presenter (its leader, its
#: creator) in its room before it ends by itself (config: greeting_unattended_seconds).
UNATTENDED_AFTER = 300.0


@dataclass
class LiveGreeting:
    """A live greeting in memory: its target rooms, how many consoles of each watch, the floor."""

    id: int
    title: str
    leader: str
    targets: set[int]
    watching: dict[int, int] = field(default_factory=dict)
    floor: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: The accounts whose publications in the room are sources: the leader and the creator.
    presenters: frozenset[int] = frozenset()
    #: A pre-recorded greeting: the video, its late-join mode, the shared playout (None before it
    #: is published, and for a live-only greeting).
    media_id: int | None = None
    late_join: str = "live"
    #: The greeting's unit path (its creator's): the video plays only if it is of this subtree.
    scope: str = ""
    playout: Playout | None = None
    #: Late joiners' own playouts ("start"), by the console participant's id; those still coming.
    copies: dict[str, Playout] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    copy_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The playouts whose end this greeting hears (by playout id).
    heard: set[str] = field(default_factory=set)
    #: Set while nobody leads it (no video playing, no presenter in the room): it ends when due.
    unattended: asyncio.TimerHandle | None = None

    @property
    def room(self) -> str:
        return greeting_room(self.id)

    def watching_rooms(self) -> int:
        return sum(1 for count in self.watching.values() if count > 0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(at: dt.datetime | None) -> str | None:
    return as_utc(at).isoformat() if at is not None else None


class Greetings:
    """Greetings in a principal's scope, their live state and receipts."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference,
                 clock: Callable[[], dt.datetime] = utcnow, playouts: Playouts | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        #: Where pre-recorded greetings are played (None: this server plays none).
        self.playouts = playouts
        self.media_lead, self.late_lead = MEDIA_LEAD, LATE_LEAD
        self.unattended_after = UNATTENDED_AFTER
        #: The instants receipts record (tests move it on).
        self.clock = clock
        self._live: dict[int, LiveGreeting] = {}
        self._closed = False  # close() ran: no more timers or ends
        self._tasks: set[asyncio.Task[Any]] = set()
        conference.on_participant_joined.append(self._joined)
        conference.on_participant_left.append(lambda participant, _reason: self._left(participant))
        conference.on_published.append(lambda publication: self._sources_changed(publication))
        conference.on_unpublished.append(lambda publication, _reason: self._sources_changed(publication))

    # -- lifecycle ---------------------------------------------------------------------------

    async def recover(self) -> list[int]:
        """At start: greetings left live by a stopped server stay live (the leader ends them, or
        they end unattended);
        a stay left open is closed where it was last counted (nobody watched while it was down).
        A pre-recorded one ends: its video cannot go on where it was (start it again as a new one)."""
        async with self.sessionmaker() as db:
            records = (await db.execute(select(Greeting).where(Greeting.status == "live"))).scalars().all()
            for receipt in (await db.execute(select(GreetingReceipt).where(
                    GreetingReceipt.greeting_id.in_([r.id for r in records]),
                    GreetingReceipt.open_since.is_not(None)))).scalars():
                receipt.open_since = None
            for record in records:
                if record.media_id is not None:
                    record.status, record.ended_at = "ended", self.clock()
            records = [r for r in records if r.status == "live"]
            await db.commit()
            for record in records:
                self._attend(await self._hold(db, record))
        return [r.id for r in records]

    async def run(self, interval: float = 5.0) -> None:
        """Start scheduled greetings when their time comes."""
        while True:
            try:
                await self.start_due()
            except Exception:
                logger.exception("greetings: the scheduler's pass failed")
            await asyncio.sleep(interval)

    async def start_due(self) -> list[int]:
        now = self.clock()
        async with self.sessionmaker() as db:
            due = [g.id for g in (await db.execute(select(Greeting).where(
                Greeting.status == "scheduled", Greeting.scheduled_at.is_not(None)))).scalars()
                if g.scheduled_at is not None and as_utc(g.scheduled_at) <= now]
        started = []
        for greeting_id in due:
            try:
                await self._start(greeting_id)
            except (Conflict, NotFound):
                continue  # started by hand (or cancelled) meanwhile: that one won
            started.append(greeting_id)
        return started

    async def close(self) -> None:
        self._closed = True
        for live in self._live.values():
            if live.unattended is not None:
                live.unattended.cancel()
        tasks = [t for live in self._live.values() for t in live.tasks] + list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    # -- commands ----------------------------------------------------------------------------

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/greetings``: title, leader_account_id (a host's, on a leader's behalf),
        unit_ids ([]: every room in scope), scheduled_at (absent: started by hand), media_id (a
        ready pre-recorded video in scope: played to every room) and late_join ("live" | "start")."""
        self._require_starter(who)
        title = data.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX or unsafe_reason(title):
            raise Invalid("greetings.title", field="title", max=TITLE_MAX)
        unit_ids = data.get("unit_ids", [])
        if not isinstance(unit_ids, list) or len(unit_ids) > 1000 or not all(_is_int(u) for u in unit_ids):
            raise Invalid("greetings.unit_ids", field="unit_ids")
        leader_id = data.get("leader_account_id", who.id if who.role is Role.leader else None)
        if not _is_int(leader_id):
            raise Invalid("greetings.leader_account_id", field="leader_account_id")
        scheduled_at = self._parse_time(data.get("scheduled_at"))
        media_id = data.get("media_id")
        if media_id is not None and not _is_int(media_id):
            raise Invalid("greetings.media_id", field="media_id")
        late_join = data.get("late_join", "live")
        if late_join not in LATE_JOIN:
            raise Invalid("greetings.late_join", field="late_join")
        async with self.sessionmaker() as db:
            if media_id is not None:
                media = await db.get(GreetingMedia, media_id)
                # Ready, and the creator's to play (its unit's subtree); anything else is refused
                # alike, so a district cannot learn of another's videos.
                if media is None or media.status != "ready" or not who.covers(media.unit_path):
                    raise Invalid("greetings.media_not_ready", field="media_id", id=media_id)
            leader = (await db.execute(self._leaders_of(who).where(Account.id == leader_id))).scalars().first()
            if leader is None:
                raise NotFound("greetings.leader_not_found", field="leader_account_id", id=leader_id)
            paths = await self._target_paths(db, who, list(dict.fromkeys(unit_ids)))
            room_ids = await self._rooms_under(db, paths)
            if not room_ids:
                raise Invalid("greetings.no_rooms", field="unit_ids")
            record = Greeting(title=title.strip(), leader_account_id=leader.id, created_by=who.id,
                              unit_path=who.unit_path, target_unit_ids=list(dict.fromkeys(unit_ids)),
                              status="scheduled", scheduled_at=scheduled_at, media_id=media_id,
                              late_join=late_join)
            db.add(record)
            await db.flush()
            db.add_all(GreetingReceipt(greeting_id=record.id, duty_room_id=r) for r in room_ids)
            await db.commit()
            greeting_id = record.id
        return await self.detail(who, greeting_id)

    async def command(self, who: Principal, greeting_id: int, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """start, end, cancel, reply (``duty_room_id``; null: the floor returns to the leader)."""
        self._require_starter(who)
        await self._in_scope(who, greeting_id)
        if action == "start":
            await self._start(greeting_id)
        elif action == "end":
            await self._end(greeting_id, "ended")
        elif action == "cancel":
            await self._end(greeting_id, "cancelled")
        elif action == "reply":
            room_id = data.get("duty_room_id")
            if room_id is not None and not _is_int(room_id):
                raise Invalid("greetings.duty_room_id", field="duty_room_id")
            self._reply(greeting_id, room_id)
        else:
            raise NotFound("greetings.no_such_action", action=action[:64])
        return await self.detail(who, greeting_id)

    # -- reads -------------------------------------------------------------------------------

    async def list_greetings(self, who: Principal) -> list[dict[str, Any]]:
        self._require_reader(who)
        async with self.sessionmaker() as db:
            records = (await db.execute(select(Greeting).where(
                Greeting.unit_path.startswith(who.unit_path, autoescape=True)).order_by(
                Greeting.id.desc()).limit(200))).scalars().all()
            names = await self._leader_names(db, records)
            counts: dict[int, int] = {}
            for receipt in (await db.execute(select(GreetingReceipt.greeting_id).where(
                    GreetingReceipt.greeting_id.in_([r.id for r in records])))).scalars():
                counts[receipt] = counts.get(receipt, 0) + 1
        return [self._describe(r, names.get(r.leader_account_id, ""), counts.get(r.id, 0)) for r in records]

    async def detail(self, who: Principal, greeting_id: int) -> dict[str, Any]:
        """The greeting, its receipts so far, and how many rooms watch now."""
        record = await self._in_scope(who, greeting_id)
        rows = await self.receipts(who, greeting_id)
        async with self.sessionmaker() as db:
            names = await self._leader_names(db, [record])
        described = self._describe(record, names.get(record.leader_account_id, ""), len(rows))
        described["receipts"] = rows
        return described

    async def receipts(self, who: Principal, greeting_id: int) -> list[dict[str, Any]]:
        """One row per target room: unit, room, first joined, seconds watched (an open stay
        counted up to now), joins, whether it watches now; offline if it never joined."""
        record = await self._in_scope(who, greeting_id)
        now = self.clock()
        live = self._live.get(greeting_id)
        async with self.sessionmaker() as db:
            found = (await db.execute(select(GreetingReceipt, DutyRoom, Unit).join(
                DutyRoom, DutyRoom.id == GreetingReceipt.duty_room_id).join(Unit, Unit.id == DutyRoom.unit_id).where(
                GreetingReceipt.greeting_id == record.id).order_by(Unit.path, DutyRoom.id))).all()
        rows = []
        for receipt, room, unit in found:
            watched = receipt.watched_seconds
            if receipt.open_since is not None:
                watched += max(0.0, (now - as_utc(receipt.open_since)).total_seconds())
            rows.append({"duty_room_id": room.id, "room": room.name, "unit": unit.name,
                         "first_joined_at": _iso(receipt.first_joined_at), "watched_seconds": round(watched, 1),
                         "joins": receipt.joins, "offline": receipt.first_joined_at is None,
                         "watching": bool(live and live.watching.get(room.id, 0) > 0)})
        return rows

    async def upcoming(self, who: Principal) -> list[dict[str, Any]]:
        """Scheduled and live greetings: a console's of its own room, an account's in its scope."""
        async with self.sessionmaker() as db:
            query = select(Greeting).where(Greeting.status.in_(("scheduled", "live"))).order_by(Greeting.id)
            if who.kind == "device":
                query = query.join(GreetingReceipt, GreetingReceipt.greeting_id == Greeting.id).where(
                    GreetingReceipt.duty_room_id == who.duty_room_id)
            else:
                self._require_reader(who)
                query = query.where(Greeting.unit_path.startswith(who.unit_path, autoescape=True))
            records = (await db.execute(query.limit(100))).scalars().all()
            names = await self._leader_names(db, records)
        return [{**self._describe(r, names.get(r.leader_account_id, ""), None), "room": greeting_room(r.id)}
                for r in records]

    async def leaders(self, who: Principal) -> list[dict[str, Any]]:
        """The leaders ``who`` may greet on behalf of (``GET /api/greetings/leaders``, the page's
        picker): a leader only themselves; a host or admin every active leader account of its own
        scope, never one above it (as :meth:`create` checks), by unit then name."""
        self._require_starter(who)
        async with self.sessionmaker() as db:
            query = self._leaders_of(who).order_by(Unit.path, Account.display_name, Account.id).limit(LEADERS_MAX)
            rows = (await db.execute(query)).all()
        return [{"id": account.id, "name": account.display_name, "unit": unit.name} for account, unit in rows]

    @staticmethod
    def _leaders_of(who: Principal) -> Any:
        """The one rule for whom ``who`` may greet on behalf of (:meth:`create`, :meth:`leaders`):
        a leader greets in their own name; a host or admin on behalf of an active leader account
        of its own scope, never one above it (a district's greeting must not appear as the
        mayor's). Selects (Account, Unit)."""
        query = (select(Account, Unit).join(Unit, Unit.id == Account.unit_id)
                 .where(Account.role == Role.leader, Account.active.is_(True),
                        Unit.path.startswith(who.unit_path, autoescape=True)))
        return query.where(Account.id == who.id) if who.role is Role.leader else query

    async def room_calendar(self, who: Principal, room_id: int) -> bytes:
        """A duty room's scheduled greetings as iCalendar (RFC 5545): a console's own room; for an
        account, a room in its scope (else 404) and only the greetings it may read (as
        :meth:`upcoming`: never one run from above its scope)."""
        if who.kind != "device":
            self._require_reader(who)
        async with self.sessionmaker() as db:
            room = await db.get(DutyRoom, room_id)
            unit = await db.get(Unit, room.unit_id) if room is not None else None
            if room is None or unit is None or not who.covers(unit.path) or (
                    who.kind == "device" and who.duty_room_id != room_id):
                raise NotFound("greetings.room_not_found", id=room_id)
            query = select(Greeting).join(GreetingReceipt, GreetingReceipt.greeting_id == Greeting.id).where(
                GreetingReceipt.duty_room_id == room_id, Greeting.status.in_(("scheduled", "live")),
                Greeting.scheduled_at.is_not(None))
            if who.kind != "device":
                query = query.where(Greeting.unit_path.startswith(who.unit_path, autoescape=True))
            records = (await db.execute(query.order_by(Greeting.id).limit(1000))).scalars().all()
            events = [(r.id, r.title, as_utc(r.scheduled_at)) for r in records if r.scheduled_at is not None]
        return await asyncio.to_thread(_calendar, room.name, events)

    async def may_join(self, who: Principal, greeting_id: int) -> bool:
        """A live greeting's room: its target consoles, the leader it is from and whoever created it
        (in scope, with ``greetings.start``). Nobody else: whoever is in the room may publish, and
        every console shows a publication that is not a console's as the leader's picture."""
        live = self._live.get(greeting_id)
        if live is None:
            return False
        if who.kind == "device":
            return who.duty_room_id in live.targets
        async with self.sessionmaker() as db:
            record = await db.get(Greeting, greeting_id)
        return (record is not None and who.may("greetings.start") and who.covers(record.unit_path)
                and who.id in (record.leader_account_id, record.created_by))

    def room_info(self, name: str, participant: Participant | None = None) -> dict[str, Any] | None:
        """What a client is told of a greeting's room when it joins it (``participant``: the one
        joining, whose sources are named: a late joiner's own playout is its alone)."""
        greeting_id = parse_greeting_room(name)
        if greeting_id is None:
            return None
        live = self._live.get(greeting_id)
        return {"kind": "greeting", "greeting_id": greeting_id, "title": live.title if live else "",
                "leader": live.leader if live else "", "floor_room_id": live.floor if live else None,
                "media": bool(live and live.media_id is not None), "late_join": live.late_join if live else "live",
                "sources": self._sources(live, participant.id if participant is not None else None) if live else []}

    # -- sources -----------------------------------------------------------------------------

    def _sources(self, live: LiveGreeting, participant_id: str | None,
                 presenters: list[Participant] | None = None) -> list[dict[str, Any]]:
        """The publications a participant of the greeting's room watches: its video (the shared
        playout, or its own from the start; none while that is being made) and the presenters'."""
        found: list[dict[str, Any]] = []
        media = live.copies.get(participant_id or "")
        if media is None and participant_id not in live.pending:
            media = live.playout
        if media is not None and media.publication is not None and not media.ended.is_set():
            found.append({**media.publication.describe(), "source": "media"})
        for participant in self._presenters(live) if presenters is None else presenters:
            publication = participant.first_publication()
            if publication is not None:
                found.append({**publication.describe(), "source": "leader"})
        return found

    def _presenters(self, live: LiveGreeting) -> list[Participant]:
        """The greeting's leader and creator in its room (their accounts, by identity)."""
        return [p for p in self.conference.participants_where(
            lambda identity: identity.get("kind") == "account" and identity.get("account_id") in live.presenters)
            if p.room_name == live.room and not p.closed]

    def _send_sources(self, live: LiveGreeting, participant: Participant | None = None) -> None:
        """Tell ``participant`` (or every console and presenter in the room) what to watch now."""
        presenters = self._presenters(live)
        everyone = [p for room_id in live.targets for p in self.conference.participants_tagged(
            console_tag(room_id), live.room)] + presenters
        for other in [participant] if participant is not None else everyone:
            if not other.closed:
                other.notify({"type": "greeting_source", "greeting_id": live.id,
                              "sources": self._sources(live, other.id, presenters)})

    def _sources_changed(self, publication: Publication) -> None:
        """A publication came or went: a presenter's (or a playout's) changes the sources."""
        greeting_id = parse_greeting_room(publication.participant.room_name)
        live = self._live.get(greeting_id) if greeting_id is not None else None
        if live is not None and duty_room_of(publication.participant.tag) is None:
            self._send_sources(live)

    # -- the live greeting -------------------------------------------------------------------

    async def _start(self, greeting_id: int) -> None:
        now = self.clock()
        async with self.sessionmaker() as db:
            # Only from "scheduled", in one conditional UPDATE: of a start and a cancel (or the
            # scheduler and a host) at the same moment exactly one wins; the other is 409.
            await self._transition(db, greeting_id, "scheduled", "greetings.not_startable",
                                   status="live", started_at=now)
            await db.commit()
            record = await db.get(Greeting, greeting_id, populate_existing=True)
            assert record is not None
            live = await self._hold(db, record)
        if live.media_id is not None:
            await self._play(live)
        self._invite(live, live.targets)
        self._attend(live)

    async def _play(self, live: LiveGreeting) -> None:
        """Publish the greeting's video into its room (packets begin after ``media_lead``, while
        the consoles pulled in subscribe). A video that cannot play (deleted, or this server
        plays none) leaves the greeting to its leader."""
        assert live.media_id is not None
        if self.playouts is None:
            logger.warning("greeting %s: no playouts on this server; its video is not played", live.id)
            return
        try:
            playout = await self.playouts.start(live.room, live.media_id,
                                                "from_start" if live.late_join == "start" else "live",
                                                scope=live.scope, name=live.leader or "领导慰问",
                                                lead=self.media_lead)
        except Exception:
            logger.exception("greeting %s: its video %s does not play", live.id, live.media_id)
            return
        if self._live.get(live.id) is not live:  # ended meanwhile
            await playout.stop()
            return
        live.playout = playout
        self._hear(live, playout)
        self._send_sources(live)

    def _hear(self, live: LiveGreeting, playout: Playout) -> None:
        if playout.id not in live.heard:
            live.heard.add(playout.id)
            playout.on_ended.append(lambda played, reason: self._played(live, played, reason))

    async def _late_copy(self, live: LiveGreeting, participant: Participant) -> None:
        """A console joined a "start" greeting after its video began: its own playout from the
        beginning (shared with consoles arriving within its lead), named to it alone."""
        copy = None
        try:
            assert self.playouts is not None and live.playout is not None
            async with live.copy_lock:  # one at a time: a console right after shares the copy
                copy = await self.playouts.for_late_joiner(live.playout, lead=self.late_lead)
                self._hear(live, copy)
        except errors.TooMany:
            # The server plays as many copies as it can (MAX_PLAYOUTS); past that a late console
            # watches the shared playout where it is, as in "live" mode, rather than nothing.
            logger.warning("greeting %s: no playout left for a late console; it joins the shared one", live.id)
        except Exception:
            logger.exception("greeting %s: no playout for a late console", live.id)
        finally:
            live.pending.discard(participant.id)
        if copy is not None and self._live.get(live.id) is live and not participant.closed:
            live.copies[participant.id] = copy
        elif copy is not None and copy is not live.playout and copy not in live.copies.values():
            await copy.stop()  # the console or the greeting went meanwhile
        if not participant.closed:
            self._send_sources(live, participant)
        self._settle(live)  # a copy that could not be made may have been all that kept it going

    def _played(self, live: LiveGreeting, played: Playout, reason: str) -> None:
        """A playout of the greeting ended: its consoles are told; the last one ends the greeting
        unless a presenter (its leader, its creator) is in the room."""
        if self._live.get(live.id) is not live:
            return
        if reason != "stopped":  # "stopped": a copy whose console left (nobody to tell)
            for participant_id, copy in list(live.copies.items()):
                if copy is played:
                    del live.copies[participant_id]
            self._send_sources(live)
        self._settle(live)

    def _settle(self, live: LiveGreeting) -> None:
        """Once none of a recorded greeting's playouts plays and no late copy is being made, the
        greeting ends, unless a presenter is in the room (then it waits for them, unattended)."""
        if self._closed or self._live.get(live.id) is not live:
            return
        if any(not p.ended.is_set() for p in [live.playout, *live.copies.values()] if p is not None) or live.pending:
            return
        if self._presenters(live):
            logger.info("greeting %s: its video played out; it stays live for its leader", live.id)
            self._attend(live)
            return
        self._spawn(live, self._end_played(live.id))

    async def _end_played(self, greeting_id: int) -> None:
        try:
            await self._end(greeting_id, "ended")
        except Conflict:
            return  # ended by hand meanwhile
        logger.info("greeting %s ended by itself: its video played out", greeting_id)

    async def _end(self, greeting_id: int, status: str) -> None:
        now = self.clock()
        live = self._live.get(greeting_id)
        lock = live.lock if live is not None else asyncio.Lock()
        async with lock, self.sessionmaker() as db:
            if status == "cancelled":
                await self._transition(db, greeting_id, "scheduled", "greetings.not_cancellable",
                                       status=status, ended_at=now)
            else:
                await self._transition(db, greeting_id, "live", "greetings.not_live", status=status, ended_at=now)
            # Every stay still open ends with the greeting.
            for receipt in (await db.execute(select(GreetingReceipt).where(
                    GreetingReceipt.greeting_id == greeting_id, GreetingReceipt.open_since.is_not(None)))).scalars():
                since = as_utc(receipt.open_since) or now
                receipt.watched_seconds += max(0.0, (now - since).total_seconds())
                receipt.open_since, receipt.last_left_at = None, now
            await db.commit()
            self._live.pop(greeting_id, None)
        if live is not None:
            if live.unattended is not None:
                live.unattended.cancel()
                live.unattended = None
            self.conference.broadcast(live.room, {"type": "greeting_ended", "greeting_id": greeting_id})
            playing = {p.id: p for p in [live.playout, *live.copies.values()] if p is not None}
            live.copies.clear()
            await asyncio.gather(*(p.stop() for p in playing.values() if not p.ended.is_set()),
                                 return_exceptions=True)

    @staticmethod
    async def _transition(db: AsyncSession, greeting_id: int, expected: str, refusal: str, **values: Any) -> None:
        """Set ``values`` only if the greeting is still ``expected`` (UPDATE ... WHERE status =);
        NotFound, or Conflict (``refusal``, with the status it has now) if another change won."""
        changed: CursorResult[Any] = await db.execute(update(Greeting).where(  # type: ignore[assignment]
            Greeting.id == greeting_id, Greeting.status == expected).values(**values))
        if changed.rowcount != 1:
            now = (await db.execute(select(Greeting.status).where(Greeting.id == greeting_id))).scalar_one_or_none()
            await db.rollback()
            if now is None:
                raise NotFound("greetings.not_found", id=greeting_id)
            raise Conflict(refusal, status=now)

    async def _hold(self, db: AsyncSession, record: Greeting) -> LiveGreeting:
        targets = set((await db.execute(select(GreetingReceipt.duty_room_id).where(
            GreetingReceipt.greeting_id == record.id))).scalars())
        names = await self._leader_names(db, [record])
        live = self._live[record.id] = LiveGreeting(record.id, record.title, names.get(record.leader_account_id, ""),
                                                    targets, presenters=frozenset({record.leader_account_id,
                                                                                   record.created_by}),
                                                    media_id=record.media_id, late_join=record.late_join,
                                                    scope=record.unit_path)
        # Consoles already in the room (a restart, a start after an end): counted as joining now.
        for room_id in targets:
            for _ in self.conference.participants_tagged(console_tag(room_id), live.room):
                self._count(live, room_id, +1)
        return live

    def _invite(self, live: LiveGreeting, room_ids: set[int]) -> int:
        invited = 0
        for room_id in room_ids:
            for participant in self.conference.participants_tagged(console_tag(room_id)):
                if participant.room_name != live.room:
                    participant.notify({"type": "greeting_invite", "greeting_id": live.id, "room": live.room,
                                        "title": live.title, "leader": live.leader})
                    invited += 1
        return invited

    def _joined(self, participant: Participant) -> None:
        room_id = duty_room_of(participant.tag)
        if room_id is None:
            self._presence_of_presenters(participant)
            return
        greeting_id = parse_greeting_room(participant.room_name)
        if greeting_id is None:
            # A console that comes on standby while a greeting of its room is live is pulled in.
            managed = parse_room(participant.room_name)
            if managed is not None and managed.kind is RoomKind.STANDBY:
                for held in self._live.values():
                    if room_id in held.targets:
                        self._invite(held, {room_id})
                        break
            return
        live = self._live.get(greeting_id)
        if live is not None and room_id in live.targets:
            self._count(live, room_id, +1)
            shared = live.playout
            if (live.late_join == "start" and shared is not None and self.playouts is not None
                    and (shared.sending or shared.ended.is_set())):
                # Late: its own playout from the beginning (room_info names none until it exists).
                live.pending.add(participant.id)
                self._spawn(live, self._late_copy(live, participant))

    def _left(self, participant: Participant) -> None:
        room_id = duty_room_of(participant.tag)
        greeting_id = parse_greeting_room(participant.room_name)
        if room_id is None:
            self._presence_of_presenters(participant)
        if room_id is None or greeting_id is None:
            return
        live = self._live.get(greeting_id)
        copy = live.copies.pop(participant.id, None) if live is not None else None
        if live is not None and copy is not None and copy not in live.copies.values() and not copy.ended.is_set():
            self._spawn(live, copy.stop())  # nobody else watches it
        if live is not None and room_id in live.targets:
            if live.floor == room_id and live.watching.get(room_id, 0) <= 1:
                self._reply(greeting_id, None)  # the replying room went: the floor returns
            self._count(live, room_id, -1)

    def _presence_of_presenters(self, participant: Participant) -> None:
        """Someone not a console came into or left a greeting's room: whether anyone still leads
        it is decided once the conference has settled the change (the next loop turn)."""
        greeting_id = parse_greeting_room(participant.room_name)
        live = self._live.get(greeting_id) if greeting_id is not None else None
        if live is not None:
            asyncio.get_running_loop().call_soon(self._attend, live)

    def _led(self, live: LiveGreeting) -> bool:
        """Its video is playing (or a late console's copy is being made), or a presenter is there."""
        playing = any(p is not None and not p.ended.is_set() for p in [live.playout, *live.copies.values()])
        return playing or bool(live.pending) or bool(self._presenters(live))

    def _attend(self, live: LiveGreeting) -> None:
        """Start the unattended timer when nobody leads the greeting; stop it when someone does."""
        if self._closed or self._live.get(live.id) is not live or self._led(live):
            if live.unattended is not None:
                live.unattended.cancel()
                live.unattended = None
            return
        if live.unattended is None:
            live.unattended = asyncio.get_running_loop().call_later(self.unattended_after, self._unattended, live)

    def _unattended(self, live: LiveGreeting) -> None:
        live.unattended = None
        if self._live.get(live.id) is live and not self._led(live):
            self._spawn(live, self._end_unattended(live.id))

    async def _end_unattended(self, greeting_id: int) -> None:
        try:
            await self._end(greeting_id, "ended")
        except Conflict:
            return  # ended by hand meanwhile
        logger.warning("greeting %s ended by itself: no video and nobody leading it for %.0f s",
                       greeting_id, self.unattended_after)

    def _count(self, live: LiveGreeting, room_id: int, step: int) -> None:
        before = live.watching.get(room_id, 0)
        after = max(0, before + step)
        live.watching[room_id] = after
        if (before == 0) != (after == 0):
            self._spawn(live, self._record_stay(live, room_id, joined=after > 0, at=self.clock()))
            self.conference.broadcast(live.room, {"type": "greeting_watching", "greeting_id": live.id,
                                                  "watching": live.watching_rooms(), "targets": len(live.targets)})

    async def _record_stay(self, live: LiveGreeting, room_id: int, joined: bool, at: dt.datetime) -> None:
        async with live.lock:
            if self._live.get(live.id) is not live:
                return  # ended meanwhile: its end closed every stay
            async with self.sessionmaker() as db:
                receipt = (await db.execute(select(GreetingReceipt).where(
                    GreetingReceipt.greeting_id == live.id, GreetingReceipt.duty_room_id == room_id))).scalar_one()
                if joined and receipt.open_since is None:
                    receipt.open_since = at
                    receipt.joins += 1
                    if receipt.first_joined_at is None:
                        receipt.first_joined_at = at
                elif not joined and (since := receipt.open_since) is not None:
                    receipt.watched_seconds += max(0.0, (at - as_utc(since)).total_seconds())
                    receipt.open_since, receipt.last_left_at = None, at
                await db.commit()

    def _reply(self, greeting_id: int, room_id: int | None) -> None:
        """Bring ``room_id`` up (seen and heard by all on the floor), or return (None)."""
        live = self._live.get(greeting_id)
        if live is None:
            raise Conflict("greetings.not_live", status="-")
        publication: Publication | None = None
        if room_id is not None:
            if room_id not in live.targets:
                raise NotFound("greetings.room_not_target", field="duty_room_id", id=room_id)
            publication = self.conference.publication_of(console_tag(room_id), live.room)
            if publication is None:
                raise Conflict("greetings.room_not_watching", id=room_id)
        self.conference.set_floor(live.room, publication)
        previous, live.floor = live.floor, room_id
        if room_id is not None:
            self.conference.notify_tagged(console_tag(room_id), {"type": "publish_quality", "profile": "full"},
                                          live.room)
        self.conference.broadcast(live.room, {"type": "greeting_floor", "greeting_id": greeting_id,
                                              "duty_room_id": room_id})
        if previous is not None and previous != room_id:
            self._spawn(live, self._demote(live, previous, publication))

    async def _demote(self, live: LiveGreeting, room_id: int, handover: Publication | None) -> None:
        """The room that replied publishes small again once the floor's next picture is here."""
        if handover is not None:
            await handover.next_keyframe(FLOOR_HANDOVER)
        if live.floor != room_id:
            self.conference.notify_tagged(console_tag(room_id), {"type": "publish_quality", "profile": "idle"},
                                          live.room)

    def _spawn(self, live: LiveGreeting, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        live.tasks.add(task)
        self._tasks.add(task)
        task.add_done_callback(live.tasks.discard)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def settled(self) -> None:
        """Wait until every receipt write started so far is committed (tests, reports)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- helpers -----------------------------------------------------------------------------

    async def _in_scope(self, who: Principal, greeting_id: int) -> Greeting:
        if who.kind == "device":
            raise Forbidden("greetings.console_no_report")
        self._require_reader(who)
        async with self.sessionmaker() as db:
            record = await db.get(Greeting, greeting_id)
        if record is None or not who.covers(record.unit_path):
            raise NotFound("greetings.not_found", id=greeting_id)
        return record

    async def _target_paths(self, db: AsyncSession, who: Principal, unit_ids: list[int]) -> list[str]:
        if not unit_ids:
            return [who.unit_path]
        units = {u.id: u for u in (await db.execute(select(Unit).where(Unit.id.in_(unit_ids)))).scalars()}
        missing = [u for u in unit_ids if u not in units or not who.covers(units[u].path) or not units[u].active]
        if missing:
            raise NotFound("greetings.units_not_in_scope", field="unit_ids", ids=", ".join(map(str, missing)))
        return [units[u].path for u in unit_ids]

    @staticmethod
    async def _rooms_under(db: AsyncSession, paths: list[str]) -> list[int]:
        found: dict[int, None] = {}
        for path in paths:
            for room_id in (await db.execute(select(DutyRoom.id).join(Unit, Unit.id == DutyRoom.unit_id).where(
                    DutyRoom.active.is_(True), Unit.active.is_(True),
                    Unit.path.startswith(path, autoescape=True)).order_by(Unit.path, DutyRoom.id))).scalars():
                found[room_id] = None
        return list(found)

    @staticmethod
    async def _leader_names(db: AsyncSession, records: Any) -> dict[int, str]:
        ids = {r.leader_account_id for r in records}
        if not ids:
            return {}
        return {a.id: a.display_name for a in (await db.execute(select(Account).where(Account.id.in_(ids)))).scalars()}

    def _describe(self, record: Greeting, leader: str, targets: int | None) -> dict[str, Any]:
        live = self._live.get(record.id)
        described: dict[str, Any] = {
            "id": record.id, "title": record.title, "leader_account_id": record.leader_account_id,
            "leader": leader, "status": record.status, "unit_ids": list(record.target_unit_ids or []),
            "scheduled_at": _iso(record.scheduled_at), "started_at": _iso(record.started_at),
            "ended_at": _iso(record.ended_at), "room": greeting_room(record.id),
            "watching": live.watching_rooms() if live else 0, "floor_room_id": live.floor if live else None,
            "media_id": record.media_id, "late_join": record.late_join,
            "media_playing": bool(live and live.playout is not None and not live.playout.ended.is_set())}
        if targets is not None:
            described["targets"] = targets
        return described

    def _parse_time(self, value: Any) -> dt.datetime | None:
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
        except ValueError:
            parsed = None
        try:
            at = parsed.astimezone(dt.UTC) if parsed is not None and parsed.tzinfo is not None else None
        except OverflowError:  # year 9999 with a negative offset
            at = None
        now = self.clock()
        if at is None or at < now - SCHEDULE_SLACK or at > now + SCHEDULE_HORIZON:
            raise Invalid("greetings.scheduled_at", field="scheduled_at")
        return at

    @staticmethod
    def _require_starter(who: Principal) -> None:
        if not who.may("greetings.start"):
            raise Forbidden("greetings.start_forbidden")

    @staticmethod
    def _require_reader(who: Principal) -> None:
        if not who.may("greetings.read"):
            raise Forbidden("greetings.read_forbidden")


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("greetings: a background write failed", exc_info=task.exception())


def _calendar(room_name: str, events: list[tuple[int, str, dt.datetime]]) -> bytes:
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//dutycall//greetings//ZH")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{room_name} 领导慰问")
    for greeting_id, title, at in events:
        event = Event()
        event.add("uid", f"greeting-{greeting_id}@dutycall")
        event.add("summary", f"领导慰问：{title}")
        event.add("dtstart", at)
        event.add("dtend", at + dt.timedelta(minutes=30))
        event.add("dtstamp", at)
        calendar.add_component(event)
    return calendar.to_ical()
