"""Supervision notices (督办通知): one model for every kind of matter that draws one."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..directory.models import utcnow

Timestamp = DateTime(timezone=True)


class NoticeKind(enum.StrEnum):
    rollcall = "rollcall"  # a room absent, offline or late at a roll-call
    incident = "incident"  # an incident reported late, missed or wrongly


class NoticeStatus(enum.StrEnum):
    open = "open"
    responded = "responded"
    closed = "closed"


class Notice(Base):
    """A notice to a unit: it answers in writing before the deadline; the issuing side closes it."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("roll_call_id", "duty_room_id", name="uq_notice_call_room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=NoticeKind.rollcall.value, index=True)
    roll_call_id: Mapped[int | None] = mapped_column(ForeignKey("roll_calls.id"), index=True)
    duty_room_id: Mapped[int | None] = mapped_column(ForeignKey("duty_rooms.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: The timeliness finding that drew it (one notice per finding).
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("incident_flags.id"), unique=True)
    #: The notified unit's path.
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    #: The issuing side's unit path: a host whose scope covers it (and who is not of the notified
    #: unit) closes the notice.
    issuer_unit_path: Mapped[str | None] = mapped_column(String(512))
    #: What it is about: absent / offline / late (roll-calls), a flag kind or "wrong" (incidents).
    outcome: Mapped[str] = mapped_column(String(16))
    #: The notice's own words, when a person wrote it (a host's 督办 on an incident).
    text: Mapped[str | None] = mapped_column(String(2000))
    deadline: Mapped[dt.datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.open.value)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    response: Mapped[str | None] = mapped_column(String(4000))
    responded_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
