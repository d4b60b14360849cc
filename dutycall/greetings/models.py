"""Greetings and their receipts (one row per target duty room), committed as they change."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..directory.models import utcnow

Timestamp = DateTime(timezone=True)


class Greeting(Base):
    """One greeting: on whose behalf, who started it, when, and its status."""

    __tablename__ = "greetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    #: The leader (an account with the leader role) the greeting is on behalf of.
    leader_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: Who created it: the leader, or a host (an administrator) on the leader's behalf.
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: The creator's unit path: the greeting is seen and run by accounts whose scope covers it.
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    #: The units whose subtrees' rooms are greeted ([]: every room in the creator's scope).
    target_unit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    #: scheduled | live | ended | cancelled
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    #: A prepared pre-recorded video (``media/playout.py``) played to every room as the greeting's
    #: source (None: the leader live). Migration 0016; a deleted video leaves None.
    media_id: Mapped[int | None] = mapped_column(ForeignKey("greeting_media.id", ondelete="SET NULL"))
    #: What a console joining after the video began sees: "live" (the one shared playout where it
    #: is) or "start" (a playout of its own from the beginning, the packets read again, never re-encoded).
    late_join: Mapped[str] = mapped_column(String(8), default="live", server_default="live")


class GreetingReceipt(Base):
    """Whether, when and how long a target duty room watched a greeting."""

    __tablename__ = "greeting_receipts"
    __table_args__ = (UniqueConstraint("greeting_id", "duty_room_id", name="uq_greeting_receipt_room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    greeting_id: Mapped[int] = mapped_column(ForeignKey("greetings.id"), index=True)
    duty_room_id: Mapped[int] = mapped_column(ForeignKey("duty_rooms.id"))
    #: The first time a console of the room joined the greeting (None: never: offline).
    first_joined_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: Seconds watched, summed over every stay (leaving and joining again counts both stays).
    watched_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    joins: Mapped[int] = mapped_column(Integer, default=0)
    #: While a console of the room is in the greeting: since when (its stay not yet summed).
    open_since: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_left_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
