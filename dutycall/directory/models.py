"""ORM models of the directory: units, duty rooms, accounts, credentials, roster, audit."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class UnitKind(str, enum.Enum):
    """What a unit is; the tree is city → district → street, agencies anywhere."""

    city = "city"
    district = "district"
    street = "street"
    agency = "agency"
    enterprise = "enterprise"


class Role(str, enum.Enum):
    admin = "admin"
    host = "host"
    duty_officer = "duty_officer"
    leader = "leader"
    viewer = "viewer"


Timestamp = DateTime(timezone=True)


class Unit(Base):
    """A node of the unit tree. ``path`` is the chain of ids, "/1/4/17/", for subtree queries."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[UnitKind] = mapped_column(Enum(UnitKind, name="unit_kind", native_enum=False, length=16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    path: Mapped[str] = mapped_column(String(512), index=True, default="/")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    name_pinyin: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    rooms: Mapped[list[DutyRoom]] = relationship(back_populates="unit", order_by="DutyRoom.id")


class DutyRoom(Base):
    """A duty room (值班室) of a unit."""

    __tablename__ = "duty_rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(64), default="")
    location: Mapped[str] = mapped_column(String(256), default="")
    active: Mapped[bool] = mapped_column(default=True)
    name_pinyin: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="rooms")


class Account(Base):
    """A person who signs in; sees and acts on the subtree of ``unit``."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[Role] = mapped_column(Enum(Role, name="role", native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    name_pinyin: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    unit: Mapped[Unit] = relationship()


class DeviceCredential(Base):
    """A long-lived, revocable sign-in of one duty room's console PC."""

    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    duty_room_id: Mapped[int] = mapped_column(ForeignKey("duty_rooms.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    duty_room: Mapped[DutyRoom] = relationship()


class WebSession(Base):
    """A signed-in browser: an account, or a console through a device credential."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device_credentials.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class AuditEntry(Base):
    """Who changed what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64), default="")
    unit_path: Mapped[str] = mapped_column(String(512), default="/", index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RosterShift(Base):
    """Who is on duty in one room on one date, and the leader leading the shift (带班领导)."""

    __tablename__ = "roster_shifts"
    __table_args__ = (UniqueConstraint("duty_room_id", "date", name="uq_roster_room_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    duty_room_id: Mapped[int] = mapped_column(ForeignKey("duty_rooms.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    leader_name: Mapped[str] = mapped_column(String(64), default="")
    leader_phone: Mapped[str] = mapped_column(String(64), default="")
    #: [{"name": ..., "phone": ...}, ...]
    officers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    duty_room: Mapped[DutyRoom] = relationship()


class RosterSubmission(Base):
    """A unit's holiday roster for a period was uploaded (the city tracks who has not)."""

    __tablename__ = "roster_submissions"
    __table_args__ = (UniqueConstraint("unit_id", "period", name="uq_submission_unit_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    period: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    rows: Mapped[int] = mapped_column(Integer, default=0)


Index("ix_roster_date", RosterShift.date)
