"""The roll-call coordinator: drives the pure machine, commits every change, carries out effects.

One coordinator per server. For each live roll-call it holds the machine's value, a lock
(events are applied one at a time) and the timers. Every accepted event is committed —
the machine's state and the attendance rows it records — before any effect is carried
out, so a server killed at any moment restarts with everything recorded so far, once.

Consoles take part through the conference room ``rollcall-<id>``: they are rung, and
told who has the floor, by events sent to their participants (matched by duty room).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import Conference
from ..directory.errors import Forbidden, Invalid, NotFound
from ..directory.models import DutyRoom, RosterShift, Unit
from ..directory.principal import Principal
from ..media import evidence
from . import machine
from .machine import IllegalEvent
from .models import AttendanceRecord, RollCallRecord

logger = logging.getLogger(__name__)

#: The longest the room that had the floor keeps publishing full quality while the floor
#: moves on and the new room's first keyframe is awaited.
FLOOR_HANDOVER = 2.0


def conference_room(roll_call_id: int) -> str:
    return f"rollcall-{roll_call_id}"


def to_json(state: machine.RollCall) -> dict[str, Any]:
    return dataclasses.asdict(state)


def from_json(data: dict[str, Any]) -> machine.RollCall:
    rooms = tuple(machine.RoomCall(**r) for r in data["rooms"])
    return machine.RollCall(**{**data, "rooms": rooms})


@dataclass
class _Live:
    state: machine.RollCall
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: The room told to publish full quality (the others publish the small profile).
    full_room: int | None = None


class RollCallCoordinator:
    """Creates roll-calls, applies events to them, and makes their effects happen."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference,
                 evidence_gap: float = 3.0, on_finished: Any = None) -> None:
        self.sessionmaker = sessionmaker
        #: Awaited with the roll-call id once it has finished (e.g. to issue notices).
        self.on_finished = on_finished
        self.conference = conference
        self.evidence_gap = evidence_gap
        self._live: dict[int, _Live] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def recover(self) -> list[int]:
        """At start: a roll-call left running by a stopped server is closed as interrupted.

        Its attendance so far stays as recorded; the host may start it again to resume.
        """
        async with self.sessionmaker() as db:
            ids = [r.id for r in (await db.execute(
                select(RollCallRecord).where(RollCallRecord.phase == "running"))).scalars()]
        for roll_call_id in ids:
            await self.dispatch(roll_call_id, machine.Interrupt(at=time.time()))
        return ids

    async def close(self) -> None:
        for live in self._live.values():
            for timer in live.timers.values():
                timer.cancel()
            for task in list(live.tasks):
                task.cancel()
        self._live.clear()

    # -- commands ------------------------------------------------------------------------------

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        self._require_host(who)
        title = data.get("title") or "视频点名"
        room_ids = data.get("room_ids")
        if not isinstance(title, str) or len(title) > 128:
            raise Invalid("title must be text of at most 128 characters")
        if not isinstance(room_ids, list) or not room_ids or not all(
                isinstance(r, int) and not isinstance(r, bool) for r in room_ids):
            raise Invalid("room_ids must be a non-empty list of duty room ids", [{"field": "room_ids"}])
        window = data.get("answer_window", 60)
        late = data.get("late_after", min(30, window) if isinstance(window, (int, float)) else 30)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (window, late)):
            raise Invalid("answer_window and late_after are seconds")
        kind = data.get("kind") if data.get("kind") in ("spot_check", "plan") else "adhoc"
        if kind == "spot_check" and len(room_ids) != 1:
            raise Invalid("a spot-check calls exactly one room")
        async with self.sessionmaker() as db:
            rooms = (await db.execute(select(DutyRoom, Unit).join(Unit).where(
                DutyRoom.id.in_(room_ids), DutyRoom.active.is_(True)))).all()
            found = {r.id for r, u in rooms if who.covers(u.path)}
            missing = [r for r in room_ids if r not in found]
            if missing:
                raise NotFound(f"duty rooms {missing} are not in your scope")
            try:
                state = machine.new_roll_call(room_ids, float(window), float(late))
            except IllegalEvent as exc:
                raise Invalid(str(exc)) from exc
            record = RollCallRecord(title=title, kind=kind, host_account_id=who.id, unit_path=who.unit_path,
                                    answer_window=float(window), late_after=float(late), state=to_json(state))
            db.add(record)
            await db.commit()
            self._live[record.id] = _Live(state)
            return {"id": record.id, "room": conference_room(record.id), "title": title, "kind": kind}

    async def command(self, who: Principal, roll_call_id: int, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """A host's command: start, call, skip, excuse, poll, stop_poll, finish, cancel."""
        self._require_host(who)
        await self._check_scope(who, roll_call_id)
        now = time.time()
        if action == "start":
            event: machine.Event = machine.Start(at=now)
        elif action == "call":
            live = await self._load(roll_call_id)
            room_id = data.get("room_id")
            if room_id is not None and not isinstance(room_id, int):
                raise Invalid("room_id must be an integer")
            target = room_id if room_id is not None else live.state.next_pending()
            event = machine.Call(at=now, room_id=room_id, connected=target is not None and self.is_connected(
                roll_call_id, target))
        elif action == "skip":
            event = machine.Skip(at=now)
        elif action == "excuse":
            reason = data.get("reason")
            if not isinstance(reason, str) or not isinstance(data.get("room_id"), int):
                raise Invalid("excuse needs room_id and reason")
            event = machine.Excuse(room_id=data["room_id"], reason=reason[:256], at=now)
        elif action == "poll":
            dwell = data.get("dwell", 10)
            if not isinstance(dwell, (int, float)) or isinstance(dwell, bool):
                raise Invalid("dwell is seconds")
            event = machine.StartPolling(dwell=float(dwell), at=now)
        elif action == "stop_poll":
            event = machine.StopPolling(at=now)
        elif action == "finish":
            event = machine.Finish(at=now)
        elif action == "cancel":
            event = machine.Cancel(at=now)
        else:
            raise NotFound(f"no roll-call action {action!r}")
        await self.dispatch(roll_call_id, event)
        if action == "start":
            self.invite(roll_call_id)
        return await self.board(who, roll_call_id)

    async def answer(self, roll_call_id: int, duty_room_id: int, officer: str = "") -> None:
        """A console answered "到"."""
        await self.dispatch(roll_call_id, machine.Answer(room_id=duty_room_id, at=time.time(), officer=officer[:64]))

    async def board(self, who: Principal, roll_call_id: int) -> dict[str, Any]:
        """The live attendance board."""
        record = await self._check_scope(who, roll_call_id)
        async with self.sessionmaker() as db:
            rows = {a.duty_room_id: a for a in (await db.execute(select(AttendanceRecord).where(
                AttendanceRecord.roll_call_id == roll_call_id))).scalars()}
            names = dict((await db.execute(select(DutyRoom.id, DutyRoom.name).where(
                DutyRoom.id.in_([r["room_id"] for r in record.state["rooms"]])))).all())
        live = self._live.get(roll_call_id)
        state = live.state if live else from_json(record.state)
        rooms = []
        for call in state.rooms:
            row = rows.get(call.room_id)
            rooms.append({"duty_room_id": call.room_id, "name": names.get(call.room_id, ""), "status": call.status,
                          "attempts": call.attempts, "connected": self.is_connected(roll_call_id, call.room_id),
                          "officer": row.officer if row else None, "on_roster": row.on_roster if row else None,
                          "reason": row.reason if row else None, "evidence": row.evidence if row else None,
                          "evidence_sha256": row.evidence_sha256 if row else None})
        return {"id": record.id, "title": record.title, "kind": record.kind, "phase": state.phase,
                "current": state.current, "polling": state.polling, "room": conference_room(record.id),
                "rooms": rooms}

    # -- the engine ----------------------------------------------------------------------------

    def readiness(self, room_ids: list[int], fresh: float = 3.0) -> dict[int, list[str]]:
        """For each duty room, what stops it taking part now: [] when ready, else
        "offline" (no console connected), "no_video" / "no_audio" (nothing for ``fresh`` s)."""
        found: dict[int, Any] = {}
        for room in list(self.conference.rooms.values()):
            for participant in list(room.participants.values()):
                duty_room_id = participant.identity.get("duty_room_id")
                if duty_room_id in room_ids and participant.publications:
                    found[duty_room_id] = next(iter(participant.publications.values()))
                elif duty_room_id in room_ids:
                    found.setdefault(duty_room_id, None)
        now = time.monotonic()
        result: dict[int, list[str]] = {}
        for room_id in room_ids:
            if room_id not in found:
                result[room_id] = ["offline"]
                continue
            publication = found[room_id]
            problems = []
            for kind in ("video", "audio"):
                forwarder = publication.forwarders.get(kind) if publication else None
                if forwarder is None or forwarder.last_frame_at is None or now - forwarder.last_frame_at > fresh:
                    problems.append(f"no_{kind}")
            result[room_id] = problems
        return result

    async def precheck(self, who: Principal, roll_call_id: int) -> list[dict[str, Any]]:
        """Which target rooms are ready: connected, camera and microphone delivering."""
        record = await self._check_scope(who, roll_call_id)
        room_ids = [r["room_id"] for r in record.state["rooms"]]
        return await self.describe_readiness(room_ids)

    async def describe_readiness(self, room_ids: list[int]) -> list[dict[str, Any]]:
        readiness = self.readiness(room_ids)
        async with self.sessionmaker() as db:
            names = dict((await db.execute(select(DutyRoom.id, DutyRoom.name).where(DutyRoom.id.in_(room_ids)))).all())
        return [{"duty_room_id": r, "name": names.get(r, ""), "ready": not readiness[r], "problems": readiness[r]}
                for r in room_ids]

    async def may_join(self, who: Principal, roll_call_id: int) -> bool:
        async with self.sessionmaker() as db:
            record = await db.get(RollCallRecord, roll_call_id)
        if record is None:
            return False
        if who.kind == "device":
            return who.duty_room_id in {r["room_id"] for r in record.state["rooms"]}
        return record.unit_path.startswith(who.unit_path)

    def invite(self, roll_call_id: int) -> int:
        """Ask every target console, wherever it is connected, to join the roll-call's room."""
        live = self._live.get(roll_call_id)
        if live is None:
            return 0
        targets = {call.room_id for call in live.state.rooms}
        invited = 0
        for room in list(self.conference.rooms.values()):
            if room.name == conference_room(roll_call_id):
                continue
            for participant in list(room.participants.values()):
                if participant.identity.get("duty_room_id") in targets:
                    participant.notify({"type": "rollcall_invite", "roll_call_id": roll_call_id,
                                        "room": conference_room(roll_call_id)})
                    invited += 1
        return invited

    async def dispatch(self, roll_call_id: int, event: machine.Event) -> machine.RollCall:
        """Apply one event: commit the result, then carry out its effects."""
        live = await self._load(roll_call_id)
        async with live.lock:
            step = machine.apply(live.state, event)  # IllegalEvent: nothing changes
            await self._commit(roll_call_id, step)
            live.state = step.state
            for effect in step.effects:
                self._carry_out(roll_call_id, live, effect)
        return step.state

    async def _commit(self, roll_call_id: int, step: machine.Step) -> None:
        async with self.sessionmaker() as db:
            record = await db.get(RollCallRecord, roll_call_id)
            assert record is not None
            record.state = to_json(step.state)
            record.phase = step.state.phase
            if step.state.started_at and record.started_at is None:
                record.started_at = _when(step.state.started_at)
            if step.state.ended_at:
                record.ended_at = _when(step.state.ended_at)
            for effect in step.effects:
                if isinstance(effect, machine.Record):
                    await self._record(db, roll_call_id, step.state, effect)
            await db.commit()

    async def _record(self, db: AsyncSession, roll_call_id: int, state: machine.RollCall, e: machine.Record) -> None:
        row = (await db.execute(select(AttendanceRecord).where(
            AttendanceRecord.roll_call_id == roll_call_id, AttendanceRecord.duty_room_id == e.room_id))).scalar_one_or_none()
        if row is None:
            row = AttendanceRecord(roll_call_id=roll_call_id, duty_room_id=e.room_id, outcome=e.outcome)
            db.add(row)
        row.outcome = e.outcome
        row.at = _when(e.at)
        row.attempts = state.room(e.room_id).attempts
        if e.outcome in (machine.ON_TIME, machine.LATE):
            row.officer = e.officer
            # The duty day is the server's local date: at 03:00 in Beijing, UTC is still yesterday.
            row.on_roster = await _on_roster(db, e.room_id, e.officer, dt.datetime.fromtimestamp(e.at).date())
            row.evidence = row.evidence_sha256 = None
            row.snapshot = None
        if e.reason is not None:
            row.reason = e.reason

    def _carry_out(self, roll_call_id: int, live: _Live, effect: Any) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(effect, machine.StartAnswerTimer):
            delay = max(0.0, effect.deadline - time.time())
            room_id, deadline = effect.room_id, effect.deadline
            live.timers[f"answer-{room_id}"] = loop.call_later(
                delay, lambda: self._spawn(live, self._expire(roll_call_id, room_id, deadline)))
        elif isinstance(effect, machine.CancelAnswerTimer):
            timer = live.timers.pop(f"answer-{effect.room_id}", None)
            if timer is not None:
                timer.cancel()
        elif isinstance(effect, machine.Ring):
            self._notify_room(roll_call_id, effect.room_id, {
                "type": "rollcall_ring", "roll_call_id": roll_call_id, "duty_room_id": effect.room_id,
                "answer_window": live.state.answer_window})
        elif isinstance(effect, machine.StopRinging):
            self._notify_room(roll_call_id, effect.room_id, {
                "type": "rollcall_ring_stop", "roll_call_id": roll_call_id, "duty_room_id": effect.room_id})
        elif isinstance(effect, machine.GiveFloor):
            self._broadcast(roll_call_id, {"type": "rollcall_floor", "roll_call_id": roll_call_id,
                                           "duty_room_id": effect.room_id})
            # Every console's floor subscription switches to the called room's own stream.
            conference_room_ = self.conference.rooms.get(conference_room(roll_call_id))
            publication = None
            if conference_room_ is not None:
                publication = self._publication_of(roll_call_id, effect.room_id) if effect.room_id else None
                conference_room_.set_floor(publication)
            # Only the room with the floor publishes full quality; the rest stay small. The
            # room that had it keeps full quality until the new room's keyframe is here,
            # since everyone still sees it until then.
            previous, live.full_room = live.full_room, effect.room_id
            if effect.room_id is not None:
                self._notify_room(roll_call_id, effect.room_id, {"type": "publish_quality", "profile": "full"})
            if previous is not None and previous != effect.room_id:
                video = publication.forwarders.get("video") if publication is not None else None
                self._spawn(live, self._demote(roll_call_id, live, previous, video))
        elif isinstance(effect, machine.Record):
            self._broadcast(roll_call_id, {"type": "rollcall_attendance", "roll_call_id": roll_call_id,
                                           "duty_room_id": effect.room_id, "outcome": effect.outcome})
        elif isinstance(effect, machine.TakeEvidence):
            self._spawn(live, self._evidence(roll_call_id, effect.room_id))
        elif isinstance(effect, machine.ScheduleNextCall):
            timer = live.timers.pop("next", None)
            if timer is not None:
                timer.cancel()
            live.timers["next"] = loop.call_later(max(0.0, effect.at - time.time()),
                                                  lambda: self._spawn(live, self._poll_next(roll_call_id)))
        elif isinstance(effect, machine.Ended):
            for timer in live.timers.values():
                timer.cancel()
            live.timers.clear()
            self._broadcast(roll_call_id, {"type": "rollcall_ended", "roll_call_id": roll_call_id,
                                           "phase": effect.phase})
            if effect.phase == "finished" and self.on_finished is not None:
                self._spawn(live, self.on_finished(roll_call_id))

    async def _demote(self, roll_call_id: int, live: _Live, room_id: int, handover: Any) -> None:
        """Tell ``room_id`` to publish small again, once ``handover`` (the new floor's video
        forwarder, if any) has delivered a keyframe, or after FLOOR_HANDOVER seconds."""
        if handover is not None:
            await handover.next_keyframe(FLOOR_HANDOVER)
        if live.full_room != room_id:  # unless it was given the floor back meanwhile
            self._notify_room(roll_call_id, room_id, {"type": "publish_quality", "profile": "idle"})

    def _spawn(self, live: _Live, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        live.tasks.add(task)
        task.add_done_callback(live.tasks.discard)

    async def _expire(self, roll_call_id: int, room_id: int, deadline: float) -> None:
        try:
            await self.dispatch(roll_call_id, machine.WindowExpired(room_id=room_id, at=deadline))
        except IllegalEvent:
            pass  # answered (or skipped, excused) meanwhile: a stale timer

    async def _poll_next(self, roll_call_id: int) -> None:
        live = await self._load(roll_call_id)
        if live.state.phase != "running" or not live.state.polling or live.state.current is not None:
            return
        room = live.state.next_pending()
        try:
            if room is None:
                await self.dispatch(roll_call_id, machine.Finish(at=time.time()))
            else:
                await self.dispatch(roll_call_id, machine.Call(at=time.time(), room_id=room,
                                                               connected=self.is_connected(roll_call_id, room)))
        except IllegalEvent as exc:
            logger.info("roll-call %s: polling step refused: %s", roll_call_id, exc)

    async def _evidence(self, roll_call_id: int, room_id: int) -> None:
        """Snapshot the answering room's own stream and keep the verdict with its attendance."""
        publication = self._publication_of(roll_call_id, room_id)
        if publication is None or "video" not in publication.forwarders:
            result = evidence.Evidence(evidence.NO_VIDEO)
        else:
            codec = publication.codecs["video"].split("/")[1]
            result = await evidence.gather(publication.forwarders["video"], codec, gap=self.evidence_gap)
        async with self.sessionmaker() as db:
            row = (await db.execute(select(AttendanceRecord).where(
                AttendanceRecord.roll_call_id == roll_call_id,
                AttendanceRecord.duty_room_id == room_id))).scalar_one_or_none()
            if row is not None:
                row.evidence = result.verdict
                row.evidence_sha256 = result.sha256
                row.snapshot = result.jpeg
                await db.commit()
        self._broadcast(roll_call_id, {"type": "rollcall_evidence", "roll_call_id": roll_call_id,
                                       "duty_room_id": room_id, "evidence": result.verdict})

    # -- conference glue -------------------------------------------------------------------------

    def _participants(self, roll_call_id: int) -> list[Any]:
        room = self.conference.rooms.get(conference_room(roll_call_id))
        return list(room.participants.values()) if room else []

    def _publication_of(self, roll_call_id: int, duty_room_id: int) -> Any:
        for participant in self._participants(roll_call_id):
            if participant.identity.get("duty_room_id") == duty_room_id and participant.publications:
                return next(iter(participant.publications.values()))
        return None

    def is_connected(self, roll_call_id: int, duty_room_id: int) -> bool:
        """A console of the room is in the roll-call's conference room and publishing."""
        return self._publication_of(roll_call_id, duty_room_id) is not None

    def _notify_room(self, roll_call_id: int, duty_room_id: int, message: dict[str, Any]) -> None:
        for participant in self._participants(roll_call_id):
            if participant.identity.get("duty_room_id") == duty_room_id:
                participant.notify(message)

    def _broadcast(self, roll_call_id: int, message: dict[str, Any]) -> None:
        for participant in self._participants(roll_call_id):
            participant.notify(message)

    # -- helpers ---------------------------------------------------------------------------------

    async def _load(self, roll_call_id: int) -> _Live:
        live = self._live.get(roll_call_id)
        if live is None:
            async with self.sessionmaker() as db:
                record = await db.get(RollCallRecord, roll_call_id)
            if record is None:
                raise NotFound(f"no roll-call {roll_call_id}")
            live = self._live.setdefault(roll_call_id, _Live(from_json(record.state)))
        return live

    async def _check_scope(self, who: Principal, roll_call_id: int) -> RollCallRecord:
        async with self.sessionmaker() as db:
            record = await db.get(RollCallRecord, roll_call_id)
        if record is None or not record.unit_path.startswith(who.unit_path):
            raise NotFound(f"no roll-call {roll_call_id} in your scope")
        return record

    @staticmethod
    def _require_host(who: Principal) -> None:
        if not who.may("rollcall.host"):
            raise Forbidden("only hosts and administrators run roll-calls")


def _when(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, tz=dt.timezone.utc)


async def _on_roster(db: AsyncSession, room_id: int, officer: str | None, day: dt.date) -> bool | None:
    """Whether the answering officer is rostered in that room that day (None: no roster or no name)."""
    if not officer:
        return None
    shift = (await db.execute(select(RosterShift).where(
        RosterShift.duty_room_id == room_id, RosterShift.date == day))).scalar_one_or_none()
    if shift is None:
        return None
    return officer.strip() in {o.get("name", "").strip() for o in shift.officers}

