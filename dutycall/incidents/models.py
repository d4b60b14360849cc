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


class Alert(Base):
    """A live alert: a new report or instruction on an incident, for the consoles of the units
    concerned (see ``alerting.py``). What it says is fixed when it is raised."""

    __tablename__ = "incident_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    #: "report" (a first report, follow-up or final report) or "instruction".
    kind: Mapped[str] = mapped_column(String(16))
    #: The report's or the instruction's id.
    ref_id: Mapped[int] = mapped_column(Integer)
    #: What the consoles show: title, level, category, stage and number, from which unit, the text.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    receipts: Mapped[list[AlertReceipt]] = relationship(order_by="AlertReceipt.id", lazy="raise")


class AlertReceipt(Base):
    """One duty room's copy of an alert: when its console was first shown it, and when (and by
    which console credential) someone there clicked to acknowledge it."""

    __tablename__ = "incident_alert_receipts"
    __table_args__ = (UniqueConstraint("alert_id", "duty_room_id", name="uq_alert_room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("incident_alerts.id"), index=True)
    duty_room_id: Mapped[int] = mapped_column(ForeignKey("duty_rooms.id"), index=True)
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    acknowledged_by_device: Mapped[int | None] = mapped_column(ForeignKey("device_credentials.id"))


class NotificationGroup(Base):
    """A notification group (e.g. the city's 自然灾害 SMS group): which incidents it hears of
    (categories and levels, empty meaning all, within the owning unit's subtree), who is in it,
    and the message template its members get through the site's SMS gateway (the webhook)."""

    __tablename__ = "notification_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    unit_path: Mapped[str] = mapped_column(String(512), index=True)
    name: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: ``string.Template`` text: $title $level $category $unit $stage $time $place $deaths
    #: $injured $missing $text (see alerting.TEMPLATE_FIELDS).
    template: Mapped[str] = mapped_column(String(1000))
    #: [{"name": ..., "phone": ...}, ...]
    members: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class WebhookDelivery(Base):
    """One message for the outgoing webhook (an alert for one notification group), kept until
    delivered or given up on; ``next_attempt_at`` is when the sender tries it next."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("incident_alerts.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("notification_groups.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | delivered | failed
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(Timestamp, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class WebhookAttempt(Base):
    """Every attempt to deliver, as it went: the HTTP status, or the error, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(Timestamp)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(256))
    duration_ms: Mapped[int] = mapped_column(Integer)
