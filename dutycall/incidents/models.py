"""Incident records: the incident, its reports (never edited), timeliness flags, leader
instructions with each addressed unit's acknowledgement and feedback, and the timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from ..directory.models import Unit, utcnow

Timestamp = DateTime(timezone=True)


class Incident(Base):
    """One event. The headline columns repeat the latest reports' values, for lists and filters;
    the reports themselves are the record."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The responsible unit: where it happened, whose duty it is to report it.
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    #: The unit whose account first recorded it (above ``unit_id``: the responsible unit missed it).
    recorded_by_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    title: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(16), index=True)
    subtype: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(Timestamp, index=True)
    learned_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    place: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    #: A higher unit's incident of the same event that this one was merged into.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    last_report_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    final_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], lazy="raise")
    reports: Mapped[list[IncidentReport]] = relationship(
        back_populates="incident", order_by="IncidentReport.id", lazy="raise")


class IncidentReport(Base):
    """One report as submitted (初报, 续报 n, 终报). Never edited: a follow-up adds a row."""

    __tablename__ = "incident_reports"
    __table_args__ = (UniqueConstraint("incident_id", "number", name="uq_incident_report_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    #: 0 for the first report, 1, 2, ... for follow-ups, the next number for the final report.
    number: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    #: The elements given in this report, checked (see ``rules``), instants as UTC ISO strings.
    elements: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The unit the report was made for and the account that submitted it.
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    #: 核报: whether the report was checked through another channel, which, by whom, when.
    verified: Mapped[bool] = mapped_column(default=False)
    verify_channel: Mapped[str | None] = mapped_column(String(16))
    verify_note: Mapped[str | None] = mapped_column(String(1000))
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    verified_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    incident: Mapped[Incident] = relationship(back_populates="reports", lazy="raise")


class IncidentFlag(Base):
    """A timeliness finding (迟报, 漏报) against the responsible unit: counted in its bulletin."""

    __tablename__ = "incident_flags"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "due_at", name="uq_incident_flag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    due_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    detected_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    #: When the overdue report finally came (None: still missing).
    met_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Instruction(Base):
    """A leader's instruction (领导批示) on an incident, addressed to units."""

    __tablename__ = "incident_instructions"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    author_name: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    targets: Mapped[list[InstructionTarget]] = relationship(order_by="InstructionTarget.id", lazy="raise")


class InstructionTarget(Base):
    """One addressed unit: when it acknowledged the instruction, and what it reported back (反馈)."""

    __tablename__ = "incident_instruction_targets"
    __table_args__ = (UniqueConstraint("instruction_id", "unit_id", name="uq_instruction_unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instruction_id: Mapped[int] = mapped_column(ForeignKey("incident_instructions.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    feedback: Mapped[str | None] = mapped_column(String(4000))
    feedback_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    feedback_by: Mapped[str | None] = mapped_column(String(64))


class IncidentEvent(Base):
    """One line of the incident's timeline, written in the same transaction as what it records."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(Timestamp)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    #: What the line refers to (report id and number, instruction id, unit, notice id...).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
