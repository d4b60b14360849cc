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
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import Conference
from ..directory.errors import Forbidden, Invalid, NotFound
from ..directory.models import DutyRoom, RosterShift, Unit
from ..directory.principal import Principal
from ..media import evidence
from ..text import unsafe_reason
from . import machine
from .machine import IllegalEvent
from .models import AttendanceRecord, RollCallRecord

logger = logging.getLogger(__name__)

#: The longest the room that had the floor keeps publishing full quality while the floor
#: moves on and the new room's first keyframe is awaited.
FLOOR_HANDOVER = 2.0
#: The most rostered people a ringing console is offered as one-click answers.
MAX_ROSTERED = 20
OFFICER_MAX = 64


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

        Its attendance so far stays as recorded; the host may start it again to resume. An
        answer whose evidence was still being taken when the server stopped is marked
        ``lost``: a picture taken now would not show who was there when the room answered.
        """
        async with self.sessionmaker() as db:
            ids = [r.id for r in (await db.execute(
                select(RollCallRecord).where(RollCallRecord.phase == "running"))).scalars()]
            # Nothing is gathering evidence yet in this process, so every blank is a lost one.
            await db.execute(update(AttendanceRecord).where(
                AttendanceRecord.outcome.in_((machine.ON_TIME, machine.LATE)),
                AttendanceRecord.evidence.is_(None)).values(evidence=evidence.LOST))
            await db.commit()
        for roll_call_id in ids:
            await self.dispatch(roll_call_id, machine.Interrupt(at=time.time()))
        return ids

    async def close(self) -> None:
        """Stop every timer and task (evidence, handovers) and wait for them to unwind."""
        tasks: list[asyncio.Task[Any]] = []
        for live in self._live.values():
            for timer in live.timers.values():
                timer.cancel()
            for task in list(live.tasks):
                task.cancel()
                tasks.append(task)
        self._live.clear()
        # A task cancelled inside a commit still rolls back through the database: let it, before
        # the engine is disposed under it (it would wait forever on a connection that is gone).
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    # -- commands ------------------------------------------------------------------------------

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        self._require_host(who)
        title = data.get("title") or "视频点名"
        room_ids = data.get("room_ids")
        if not isinstance(title, str) or len(title) > 128 or unsafe_reason(title):
            raise Invalid("点名标题应为不超过 128 个字符的文本，且不含控制字符", [{"field": "title"}])
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
        event_of: machine.Event | Callable[[machine.RollCall], machine.Event]
        if action == "start":
            event_of = machine.Start(at=now)
        elif action == "call":
            room_id = data.get("room_id")
            if room_id is not None and (not isinstance(room_id, int) or isinstance(room_id, bool)):
                raise Invalid("room_id must be an integer")
            # Which room, and whether it is connected, are decided under the roll-call's lock
            # with the state the call applies to: a skip or poll step in between changes both.
            event_of = self._call_event(roll_call_id, room_id, now)
        elif action == "skip":
            event_of = machine.Skip(at=now)
        elif action == "excuse":
            reason = data.get("reason")
            if not isinstance(reason, str) or not isinstance(data.get("room_id"), int):
                raise Invalid("excuse needs room_id and reason")
            if unsafe_reason(reason, multiline=True):
                raise Invalid("请假原因含有不允许的控制字符", [{"field": "reason"}])
            event_of = machine.Excuse(room_id=data["room_id"], reason=reason[:256], at=now)
        elif action == "poll":
            dwell = data.get("dwell", 10)
            if not isinstance(dwell, (int, float)) or isinstance(dwell, bool):
                raise Invalid("dwell is seconds")
            event_of = machine.StartPolling(dwell=float(dwell), at=now)
        elif action == "stop_poll":
            event_of = machine.StopPolling(at=now)
        elif action == "finish":
            event_of = machine.Finish(at=now)
        elif action == "cancel":
            event_of = machine.Cancel(at=now)
        else:
            raise NotFound(f"no roll-call action {action!r}")
        await self.dispatch(roll_call_id, event_of)
        if action == "start":
            self.invite(roll_call_id)
        return await self.board(who, roll_call_id)

    def _call_event(self, roll_call_id: int, room_id: int | None,
                    at: float) -> Callable[[machine.RollCall], machine.Event]:
        """A call of ``room_id`` (None: the next pending room), made from the state it applies to."""
        def make(state: machine.RollCall) -> machine.Event:
            target = room_id if room_id is not None else state.next_pending()
            return machine.Call(at=at, room_id=target,
                                connected=target is not None and self.is_connected(roll_call_id, target))

        return make

    async def answer(self, roll_call_id: int, duty_room_id: int, officer: Any) -> None:
        """A console answered "到" for the person ``officer`` (one of the rostered, or another named)."""
        name = officer.strip() if isinstance(officer, str) else ""
        if not name:
            raise Invalid("请选择或填写应答人", [{"field": "officer"}])
        if len(name) > OFFICER_MAX:
            raise Invalid(f"应答人姓名不能超过 {OFFICER_MAX} 个字符", [{"field": "officer"}])
        problem = unsafe_reason(name)
        if problem:
            raise Invalid(f"应答人姓名{problem}", [{"field": "officer"}])
        await self.dispatch(roll_call_id, machine.Answer(room_id=duty_room_id, at=time.time(), officer=name))

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

    async def dispatch(self, roll_call_id: int,
                       event: machine.Event | Callable[[machine.RollCall], machine.Event]) -> machine.RollCall:
        """Apply one event: commit the result, then carry out its effects.

        ``event`` may be a function of the current state, called under the lock, for events
        that depend on it (a call of the next room, and whether that room is connected).
        """
        live = await self._load(roll_call_id)
        async with live.lock:
            step = machine.apply(live.state, event(live.state) if callable(event) else event)  # IllegalEvent: no change
            rostered = await self._commit(roll_call_id, step)
            live.state = step.state
            for effect in step.effects:
                self._carry_out(roll_call_id, live, effect, rostered)
        return step.state

    async def _commit(self, roll_call_id: int, step: machine.Step) -> dict[int, list[dict[str, str]]]:
        """Commit the step; returns who is rostered in each room it rings (read in the same session)."""
        rostered: dict[int, list[dict[str, str]]] = {}
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
                elif isinstance(effect, machine.Ring):
                    call = step.state.room(effect.room_id)
                    shift = await _shift(db, effect.room_id, _duty_day(call.called_at or time.time()))
                    rostered[effect.room_id] = _rostered(shift)[:MAX_ROSTERED]
            await db.commit()
        return rostered

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
            # The roster of the day the room was called (the one its console was offered).
            called_at = state.room(e.room_id).called_at
            shift = await _shift(db, e.room_id, _duty_day(called_at if called_at is not None else e.at))
            row.on_roster = _on_roster(shift, e.officer)
            row.evidence = row.evidence_sha256 = None
            row.snapshot = None
        if e.reason is not None:
            row.reason = e.reason

    def _carry_out(self, roll_call_id: int, live: _Live, effect: Any,
                   rostered: dict[int, list[dict[str, str]]] | None = None) -> None:
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
            # Who is rostered goes to the rung console only: it offers them as one-click answers.
            self._notify_room(roll_call_id, effect.room_id, {
                "type": "rollcall_ring", "roll_call_id": roll_call_id, "duty_room_id": effect.room_id,
                "answer_window": live.state.answer_window, "rostered": (rostered or {}).get(effect.room_id, [])})
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
            # Keyed by attempt: a re-call answered while this is still recording gets its own.
            attempt = live.state.room(effect.room_id).attempts
            self._spawn(live, self._evidence(roll_call_id, effect.room_id, attempt))
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
            else:
                asyncio.get_running_loop().call_soon(self._forget_if_done, live)

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
        task.add_done_callback(lambda _: self._forget_if_done(live))

    def _forget_if_done(self, live: _Live) -> None:
        """An ended roll-call leaves memory once its last task (evidence, notices) is done; a
        resumed one is loaded again from its record (it was committed before any effect)."""
        if live.state.phase != "running" and not live.tasks and not live.timers:
            for roll_call_id, held in list(self._live.items()):
                if held is live:
                    del self._live[roll_call_id]

    async def _expire(self, roll_call_id: int, room_id: int, deadline: float) -> None:
        try:
            await self.dispatch(roll_call_id, machine.WindowExpired(room_id=room_id, at=deadline))
        except IllegalEvent:
            pass  # answered (or skipped, excused) meanwhile: a stale timer

    async def _poll_next(self, roll_call_id: int) -> None:
        call = self._call_event(roll_call_id, None, time.time())

        def step(state: machine.RollCall) -> machine.Event:
            # Decided under the lock, on the state the step applies to (see _call_event).
            if state.phase != "running" or not state.polling or state.current is not None:
                raise IllegalEvent("polling was stopped, or a room is being called")
            return machine.Finish(at=time.time()) if state.next_pending() is None else call(state)

        try:
            await self.dispatch(roll_call_id, step)
        except IllegalEvent as exc:
            logger.info("roll-call %s: polling step refused: %s", roll_call_id, exc)

    async def _evidence(self, roll_call_id: int, room_id: int, attempt: int) -> None:
        """Snapshot the answering room's own stream and keep the verdict with that attempt's answer."""
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
            if row is None or row.attempts != attempt or row.outcome not in (machine.ON_TIME, machine.LATE):
                # Re-called meanwhile: this picture is of an answer the row no longer holds.
                logger.info("roll-call %s: evidence of room %s attempt %s dropped (row is attempt %s)",
                            roll_call_id, room_id, attempt, row.attempts if row else None)
                return
            row.evidence = result.verdict
            row.evidence_sha256 = result.sha256
            row.snapshot = result.jpeg
            await db.commit()
        self._broadcast(roll_call_id, {"type": "rollcall_evidence", "roll_call_id": roll_call_id,
                                       "duty_room_id": room_id, "attempt": attempt, "evidence": result.verdict})

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
        if who.kind == "device":
            # A console answers on its own screen; the board and pre-check show other rooms'
            # people and evidence, which a shared, unattended duty-room PC must not read.
            raise Forbidden("值班室终端不能查看点名看板")
        if record is None or not who.covers(record.unit_path):
            raise NotFound(f"no roll-call {roll_call_id} in your scope")
        return record

    @staticmethod
    def _require_host(who: Principal) -> None:
        if not who.may("rollcall.host"):
            raise Forbidden("only hosts and administrators run roll-calls")


def _when(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, tz=dt.timezone.utc)


def _duty_day(at: float) -> dt.date:
    """The duty day of an instant: the server's local date (at 03:00 in Beijing, UTC is still
    yesterday), so run the server in the deployment's time zone (README: TZ)."""
    return dt.datetime.fromtimestamp(at).date()


async def _shift(db: AsyncSession, room_id: int, day: dt.date) -> RosterShift | None:
    return (await db.execute(select(RosterShift).where(
        RosterShift.duty_room_id == room_id, RosterShift.date == day))).scalar_one_or_none()


def _rostered(shift: RosterShift | None) -> list[dict[str, str]]:
    """The people rostered on a shift, officers first, then the leading leader (带班领导)."""
    if shift is None:
        return []
    people: list[dict[str, str]] = []
    seen: set[str] = set()
    named = [(o.get("name"), "officer") for o in shift.officers or [] if isinstance(o, dict)]
    for name, role in named + [(shift.leader_name, "leader")]:
        name = name.strip() if isinstance(name, str) else ""
        if name and name not in seen:
            seen.add(name)
            people.append({"name": name, "role": role})
    return people


def _on_roster(shift: RosterShift | None, officer: str | None) -> bool | None:
    """Whether the person who answered is rostered in that room that day, as an officer or
    the leader (None: no name, or no roster for that room and day)."""
    if not officer or shift is None:
        return None
    return officer.strip() in {p["name"] for p in _rostered(shift)}

