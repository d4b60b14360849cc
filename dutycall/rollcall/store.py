"""The roll-call store: one unit of work per command, over the roll-call and attendance rows.

``async with store.begin() as uow:`` is one ``sessionmaker.begin()`` block: the roll-call
row is read at most once in it, every write of the command goes through it, and the
block commits (or rolls back on an error) as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import DutyRoom, RosterShift, Unit
from ..media import evidence
from . import machine
from .commands import CreateRollCall, Owner
from .models import AttendanceRecord, RollCallRecord, Timestamp

#: The most rostered people a ringing console is offered as one-click answers.
MAX_ROSTERED = 20
ANSWERED = (machine.ON_TIME, machine.LATE)


def to_json(state: machine.RollCall) -> dict[str, Any]:
    return dataclasses.asdict(state)


def from_json(data: dict[str, Any]) -> machine.RollCall:
    rooms = tuple(machine.RoomCall(**r) for r in data["rooms"])
    return machine.RollCall(**{**data, "rooms": rooms})


def room_ids_of(record: RollCallRecord) -> list[int]:
    """The target duty rooms of a stored roll-call, in calling order."""
    return [r["room_id"] for r in record.state["rooms"]]


class RollCallStore:
    """Opens units of work on the database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.sessionmaker.begin() as db:
            yield UnitOfWork(db)


class UnitOfWork:
    """The reads and writes of one command, in one session."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self._records: dict[int, RollCallRecord | None] = {}

    async def commit(self) -> None:
        """Commit now (effects are carried out only after); the block then has nothing left to do."""
        await self.db.commit()

    async def roll_call(self, roll_call_id: int) -> RollCallRecord | None:
        """The roll-call row, read once however often asked."""
        if roll_call_id not in self._records:
            self._records[roll_call_id] = await self.db.get(RollCallRecord, roll_call_id)
        return self._records[roll_call_id]

    async def rooms_in_scope(self, room_ids: tuple[int, ...], unit_path: str) -> set[int]:
        """Which of ``room_ids`` are active duty rooms of units under ``unit_path``."""
        # The scope rule of directory.scope.within, for an owner that may be a plan, not a principal.
        return set((await self.db.execute(select(DutyRoom.id).join(Unit).where(
            DutyRoom.id.in_(room_ids), DutyRoom.active.is_(True),
            Unit.path.startswith(unit_path, autoescape=True)))).scalars())

    async def add(self, owner: Owner, command: CreateRollCall, state: machine.RollCall) -> RollCallRecord:
        record = RollCallRecord(title=command.title, kind=command.kind, host_account_id=owner.account_id,
                                unit_path=owner.unit_path, answer_window=command.answer_window,
                                late_after=command.late_after, state=to_json(state))
        self.db.add(record)
        await self.db.flush()  # for its id
        self._records[record.id] = record
        return record

    async def save(self, roll_call_id: int, step: machine.Step, now: float) -> dict[int, list[dict[str, str]]]:
        """Write the step: the machine's value and the attendance it records. Returns who is
        rostered in each room it rings (the rung console offers them as one-click answers)."""
        state = step.state
        values: dict[str, Any] = {"state": to_json(state), "phase": state.phase}
        if state.started_at:
            # The first start stays the start: a resumed roll-call keeps it.
            values["started_at"] = func.coalesce(RollCallRecord.started_at,
                                                 literal(_when(state.started_at), type_=Timestamp))
        if state.ended_at:
            values["ended_at"] = _when(state.ended_at)
        # An UPDATE, not the loaded row's attributes: that row may have been read before the
        # roll-call's lock was taken, and a command queued ahead of this one changed it since.
        await self.db.execute(update(RollCallRecord).where(RollCallRecord.id == roll_call_id).values(values)
                              .execution_options(synchronize_session=False))
        rostered: dict[int, list[dict[str, str]]] = {}
        for effect in step.effects:
            if isinstance(effect, machine.Record):
                await self._record(roll_call_id, state, effect)
            elif isinstance(effect, machine.Ring):
                call = state.room(effect.room_id)
                shift = await self._shift(effect.room_id, duty_day(call.called_at or now))
                rostered[effect.room_id] = rostered_on(shift)[:MAX_ROSTERED]
        return rostered

    async def _record(self, roll_call_id: int, state: machine.RollCall, e: machine.Record) -> None:
        row = (await self.db.execute(select(AttendanceRecord).where(
            AttendanceRecord.roll_call_id == roll_call_id,
            AttendanceRecord.duty_room_id == e.room_id))).scalar_one_or_none()
        if row is None:
            row = AttendanceRecord(roll_call_id=roll_call_id, duty_room_id=e.room_id, outcome=e.outcome)
            self.db.add(row)
        row.outcome = e.outcome
        row.at = _when(e.at)
        row.attempts = state.room(e.room_id).attempts
        if e.outcome in ANSWERED:
            row.officer = e.officer
            # The roster of the day the room was called (the one its console was offered).
            called_at = state.room(e.room_id).called_at
            shift = await self._shift(e.room_id, duty_day(called_at if called_at is not None else e.at))
            row.on_roster = on_roster(shift, e.officer)
            row.evidence = row.evidence_sha256 = None
            row.snapshot = None
        if e.reason is not None:
            row.reason = e.reason

    async def _shift(self, room_id: int, day: dt.date) -> RosterShift | None:
        return (await self.db.execute(select(RosterShift).where(
            RosterShift.duty_room_id == room_id, RosterShift.date == day))).scalar_one_or_none()

    async def attendance(self, roll_call_id: int) -> dict[int, AttendanceRecord]:
        """The roll-call's attendance rows by duty room (this unit's own writes included)."""
        return {a.duty_room_id: a for a in (await self.db.execute(select(AttendanceRecord).where(
            AttendanceRecord.roll_call_id == roll_call_id))).scalars()}

    async def room_names(self, room_ids: list[int]) -> dict[int, str]:
        return dict((await self.db.execute(select(DutyRoom.id, DutyRoom.name).where(
            DutyRoom.id.in_(room_ids)))).all())

    async def keep_evidence(self, roll_call_id: int, room_id: int, attempt: int, result: evidence.Evidence) -> bool:
        """Store the verdict with the answer of ``attempt``; False (nothing written) if the
        row holds another attempt's answer by now, or no answer."""
        row = (await self.db.execute(select(AttendanceRecord).where(
            AttendanceRecord.roll_call_id == roll_call_id,
            AttendanceRecord.duty_room_id == room_id))).scalar_one_or_none()
        if row is None or row.attempts != attempt or row.outcome not in ANSWERED:
            return False
        row.evidence = result.verdict
        row.evidence_sha256 = result.sha256
        row.snapshot = result.jpeg
        return True

    async def running(self) -> list[int]:
        """The roll-calls stored as running."""
        return list((await self.db.execute(select(RollCallRecord.id).where(
            RollCallRecord.phase == "running"))).scalars())

    async def mark_evidence_lost(self) -> None:
        """Every answer without evidence gets ``lost``: call only while no evidence is being taken."""
        await self.db.execute(update(AttendanceRecord).where(
            AttendanceRecord.outcome.in_(ANSWERED),
            AttendanceRecord.evidence.is_(None)).values(evidence=evidence.LOST))


def _when(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC)


def duty_day(at: float) -> dt.date:
    """The duty day of an instant: its date in the deployment's zone (``--timezone``; at 03:00 in
    Beijing, UTC is still yesterday), whatever the process's own zone."""
    return timezone.local(dt.datetime.fromtimestamp(at, tz=dt.UTC)).date()


def rostered_on(shift: RosterShift | None) -> list[dict[str, str]]:
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


def on_roster(shift: RosterShift | None, officer: str | None) -> bool | None:
    """Whether the person who answered is rostered in that room that day, as an officer or
    the leader (None: no name, or no roster for that room and day)."""
    if not officer or shift is None:
        return None
    return officer.strip() in {p["name"] for p in rostered_on(shift)}
