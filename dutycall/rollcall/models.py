"""Roll-call records: each occurrence and each room's attendance, committed as they change."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..directory.models import utcnow

Timestamp = DateTime(timezone=True)


class RollCallRecord(Base):
    """One roll-call (or spot-check): its settings and the machine's state after every event."""

    __tablename__ = "roll_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="adhoc")  # adhoc | spot_check | plan
    host_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    phase: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    answer_window: Mapped[float] = mapped_column(Float, default=60.0)
    late_after: Mapped[float] = mapped_column(Float, default=30.0)
    #: The state machine's value, serialised after every accepted event.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class AttendanceRecord(Base):
    """A duty room's outcome in one roll-call, with the evidence for it."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("roll_call_id", "duty_room_id", name="uq_attendance_call_room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    roll_call_id: Mapped[int] = mapped_column(ForeignKey("roll_calls.id"), index=True)
    duty_room_id: Mapped[int] = mapped_column(ForeignKey("duty_rooms.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    officer: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(256))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    #: Whether the officer who answered is on that room's roster for the day (None: unknown).
    on_roster: Mapped[bool | None] = mapped_column()
    evidence: Mapped[str | None] = mapped_column(String(16))
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    snapshot: Mapped[bytes | None] = mapped_column(LargeBinary)


class RollCallPlan(Base):
    """A recurring (RFC 5545 RRULE) or dated roll-call of the rooms of a unit subtree."""

    __tablename__ = "roll_call_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    host_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    target_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    #: Unit kinds whose rooms are called (empty: every kind).
    target_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The first occurrence as ISO 8601 with its own UTC offset (kept as text: the recurrence
    #: is evaluated in that local time, "Monday 07:00 +08:00" is not Monday in UTC), and the
    #: RRULE, e.g. "FREQ=WEEKLY;BYDAY=MO".
    dtstart: Mapped[str] = mapped_column(String(40))
    rrule: Mapped[str | None] = mapped_column(String(256))
    #: Extra dated occurrences (ISO datetimes), e.g. daily during a festival.
    dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer_window: Mapped[float] = mapped_column(Float, default=60.0)
    late_after: Mapped[float] = mapped_column(Float, default=30.0)
    #: [] for unit-tree order, or the room ids in the order to call them.
    custom_order: Mapped[list[int]] = mapped_column(JSON, default=list)
    focus_points: Mapped[str] = mapped_column(String(2000), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: The last occurrence that was fired (or skipped as missed): never fired twice.
    last_fired_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class RoomGroup(Base):
    """A saved choice of duty rooms for the roll-call picker ("全市街道"): its owner's, or shared
    with everyone at the owner's unit. Its rooms are checked against the saver's scope when
    saved and the reader's when read: a group never hands out a room outside the reader's scope."""

    __tablename__ = "room_groups"
    #: One name per owner (two saves of a new name at once: the second is 409, never a duplicate).
    __table_args__ = (UniqueConstraint("owner_account_id", "name", name="uq_room_groups_owner_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: The owner's unit (a shared group is listed to every account of this unit).
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    shared: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str] = mapped_column(String(64))
    room_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


# Supervision notices are one model for roll-calls and incidents; kept importable from here.
from ..supervision.models import Notice  # noqa: E402, F401
