"""Greetings: create (now or at a set time), start, end, cancel; who watches; the reply floor.

A greeting's leader and the consoles of its target duty rooms meet in its conference room
(:mod:`.naming`). Consoles are found by their conference tag (``duty_room:<id>``, see
``rollcall/presence.py``) through the conference's public queries; a console on standby is
pulled in with ``greeting_invite`` when the greeting goes live, or when it connects while the
greeting is live. Receipts follow the conference's join and leave hooks: a room's stay starts
when its first console joins the greeting's room and ends when its last one leaves; every stay
is summed, and a room that never joined is offline. Each change is committed in order (one
lock per greeting) in a task of its own: the hooks are synchronous.

The reply floor: every console holds a subscription to the leader's own stream (never moved,
so the leader stays heard by all) and one floor subscription, which carries the room brought up
to reply (nobody's between replies). Only that room publishes full quality; the rest stay on the
small publishing profile.
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

from ..conference import Conference, Participant, Publication
from ..directory.models import Account, DutyRoom, Role, Unit, as_utc, utcnow
from ..directory.principal import Principal
from ..rollcall.naming import RoomKind, parse_room
from ..rollcall.presence import console_tag, duty_room_of
from ..text import unsafe_reason
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Greeting, GreetingReceipt
from .naming import greeting_room, parse_greeting_room

logger = logging.getLogger(__name__)

TITLE_MAX = 128
#: How long the room that replied keeps full quality while the floor returns (its keyframe).
FLOOR_HANDOVER = 2.0
#: How far in the past a scheduled time may lie (a clock a little behind, a slow form).
SCHEDULE_SLACK = dt.timedelta(minutes=1)
#: How far ahead a greeting may be scheduled (a year: the calendar's arithmetic stays in range).
SCHEDULE_HORIZON = dt.timedelta(days=366)


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
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        #: The instants receipts record (tests move it on).
        self.clock = clock
        self._live: dict[int, LiveGreeting] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        conference.on_participant_joined.append(self._joined)
        conference.on_participant_left.append(lambda participant, _reason: self._left(participant))

    # -- lifecycle ---------------------------------------------------------------------------

    async def recover(self) -> list[int]:
        """At start: greetings left live by a stopped server stay live (the leader ends them);
        a stay left open is closed where it was last counted (nobody watched while it was down)."""
        async with self.sessionmaker() as db:
            records = (await db.execute(select(Greeting).where(Greeting.status == "live"))).scalars().all()
            for receipt in (await db.execute(select(GreetingReceipt).where(
                    GreetingReceipt.greeting_id.in_([r.id for r in records]),
                    GreetingReceipt.open_since.is_not(None)))).scalars():
                receipt.open_since = None
            await db.commit()
            for record in records:
                await self._hold(db, record)
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
        tasks = [t for live in self._live.values() for t in live.tasks] + list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    # -- commands ----------------------------------------------------------------------------

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/greetings``: title, leader_account_id (a host's, on a leader's behalf),
        unit_ids ([]: every room in scope), scheduled_at (absent: started by hand)."""
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
        async with self.sessionmaker() as db:
            leader = await db.get(Account, leader_id)
            leader_unit = await db.get(Unit, leader.unit_id) if leader is not None else None
            if leader is None or leader_unit is None or leader.role is not Role.leader or not leader.active or (
                    who.role is Role.leader and leader.id != who.id) or not who.covers(leader_unit.path):
                # A leader greets in their own name; a host on behalf of a leader in its own scope
                # (never one above it: a district's greeting must not appear as the mayor's).
                raise NotFound("greetings.leader_not_found", field="leader_account_id", id=leader_id)
            paths = await self._target_paths(db, who, list(dict.fromkeys(unit_ids)))
            room_ids = await self._rooms_under(db, paths)
            if not room_ids:
                raise Invalid("greetings.no_rooms", field="unit_ids")
            record = Greeting(title=title.strip(), leader_account_id=leader.id, created_by=who.id,
                              unit_path=who.unit_path, target_unit_ids=list(dict.fromkeys(unit_ids)),
                              status="scheduled", scheduled_at=scheduled_at)
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

    def room_info(self, name: str) -> dict[str, Any] | None:
        """What a client is told of a greeting's room when it joins it."""
        greeting_id = parse_greeting_room(name)
        if greeting_id is None:
            return None
        live = self._live.get(greeting_id)
        return {"kind": "greeting", "greeting_id": greeting_id, "title": live.title if live else "",
                "leader": live.leader if live else "", "floor_room_id": live.floor if live else None}

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
        self._invite(live, live.targets)

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
            self.conference.broadcast(live.room, {"type": "greeting_ended", "greeting_id": greeting_id})

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
                                                    targets)
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

    def _left(self, participant: Participant) -> None:
        room_id = duty_room_of(participant.tag)
        greeting_id = parse_greeting_room(participant.room_name)
        if room_id is None or greeting_id is None:
            return
        live = self._live.get(greeting_id)
        if live is not None and room_id in live.targets:
            if live.floor == room_id and live.watching.get(room_id, 0) <= 1:
                self._reply(greeting_id, None)  # the replying room went: the floor returns
            self._count(live, room_id, -1)

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
            "watching": live.watching_rooms() if live else 0, "floor_room_id": live.floor if live else None}
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
