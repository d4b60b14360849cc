"""Incidents as the duty offices work them: reports up the chain, deadlines, supervision, instructions.

One unit of work per command (``sessionmaker.begin()``): the change, its timeline line, its
audit entry and any timeliness finding or supervision notice it draws commit together.

Scope: an account sees the incidents of its subtree (a district its own and its streets'; the
city all), plus those on which an instruction addresses its unit. Out of scope answers 404.
Consoles (shared, unattended devices) neither file nor read incident reports: a report names
the person who made it.

Timeliness: after every report, and every ``interval`` seconds in :meth:`run`, the incident's
deadlines (``deadlines.py``) are compared with its reports. Each late one becomes a flag
(迟报, counted against the responsible unit) and a supervision notice to that unit, issued by
the unit above it. An incident first recorded by a unit above the responsible one is 漏报:
the responsible unit never reported it; the recording unit issues that notice. Its own first
and written-report deadlines are not assessed (the higher unit made that report).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from .. import timezone
from ..directory.models import Unit, as_utc, utcnow
from ..directory.principal import Principal
from ..directory.scope import within
from ..directory.service import Directory
from ..supervision.models import Notice, NoticeKind
from ..supervision.service import NOTICE_DAYS, Supervision, new_notice
from ..text import unsafe_reason
from . import rules
from .alerting import Alerting
from .catalog import (
    CATEGORY_LABELS,
    LEVEL_LABELS,
    STAGE_LABELS,
    Category,
    Channel,
    FlagKind,
    Level,
    Stage,
    Status,
    VerifyChannel,
)
from .deadlines import DEFAULT_DEADLINES, Deadlines, ReportTime, overdue
from .errors import Forbidden, Invalid, NotFound, WrongStage
from .models import Incident, IncidentEvent, IncidentFlag, IncidentReport, Instruction, InstructionTarget

logger = logging.getLogger(__name__)

MAX_INSTRUCTION = 2000
MAX_FEEDBACK = 4000
MAX_NOTE = 1000
MAX_NOTICE_TEXT = 2000
MAX_TARGETS = 100
MAX_MERGE = 50
LIST_LIMIT = 500
#: Reasons a host may give for a supervision notice of their own (督办事由).
NOTICE_REASONS = ("late", "missed", "wrong", "other")


def parent_path(path: str) -> str:
    """The unit path one level up ("/1/4/17/" → "/1/4/"); the top unit is its own parent."""
    parts = [p for p in path.split("/") if p]
    return "/" + "".join(f"{p}/" for p in parts[:-1]) if len(parts) > 1 else path


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _text(value: object, limit: int, key: str, field: str, multiline: bool = True) -> str:
    """A required free text (instruction, feedback, notice): stripped, bounded, no control characters."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit or unsafe_reason(
            value, multiline=multiline):
        raise Invalid(key, field=field, max=limit)
    return value.strip()


def chain_above(path: str) -> list[str]:
    """The paths of every unit above ``path`` ("/1/4/17/" → ["/1/", "/1/4/"])."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "".join(f"{p}/" for p in parts[:n]) for n in range(1, len(parts))]


def _id_list(value: object, limit: int, key: str, field: str) -> list[int]:
    if (not isinstance(value, list) or not 1 <= len(value) <= limit
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise Invalid(key, field=field, max=limit)
    return list(dict.fromkeys(value))


class Incidents:
    """Incident records, their reports and timelines, scoped like everything else."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], supervision: Supervision,
                 deadlines: Mapping[Level, Deadlines] | None = None,
                 clock: Callable[[], dt.datetime] = utcnow, alerting: Alerting | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.supervision = supervision
        #: Live alerts to the consoles concerned and the notification groups' webhook (alerting.py).
        self.alerting = alerting
        self.deadlines = dict(deadlines or DEFAULT_DEADLINES)
        self.clock = clock
        #: Awaited with an incident's id after it is closed or merged into another, once committed
        #: (its live footage ends then: WHIP, field streams); one that fails is logged, not raised.
        self.on_ended: list[Callable[[int], Awaitable[None]]] = []

    # -- who may ------------------------------------------------------------------------------

    @staticmethod
    def _account(who: Principal, permission: str, refusal: str) -> None:
        if who.kind != "account":
            raise Forbidden("incident.consoles_no")
        if not who.may(permission):
            raise Forbidden(refusal)

    @staticmethod
    def _visible(who: Principal) -> Any:
        """SQL: incidents in ``who``'s subtree, or on which an instruction addresses ``who``'s subtree."""
        addressed = (select(Instruction.incident_id).join(InstructionTarget, InstructionTarget.instruction_id
                                                          == Instruction.id)
                     .where(within(InstructionTarget.unit_path, who)))
        return or_(within(Incident.unit_path, who), Incident.id.in_(addressed))

    async def _incident(self, db: AsyncSession, who: Principal, incident_id: int, *, lock: bool = False) -> Incident:
        query = (select(Incident).where(Incident.id == incident_id, self._visible(who))
                 .options(selectinload(Incident.reports), selectinload(Incident.unit)))
        if lock:
            query = query.with_for_update()
        incident = (await db.execute(query)).scalar_one_or_none()
        if incident is None:
            raise NotFound("incident.not_found", id=incident_id)
        return incident

    @staticmethod
    def _writable(incident: Incident, who: Principal) -> None:
        """Reports and decisions on an incident come from its own unit's side, not from a unit an
        instruction merely addressed."""
        if not who.covers(incident.unit_path):
            raise NotFound("incident.not_found", id=incident.id)

    @staticmethod
    def _open(incident: Incident) -> None:
        if incident.status == Status.merged:
            raise WrongStage("incident.stage_merged", id=incident.merged_into_id)
        if incident.status == Status.closed:
            raise WrongStage("incident.stage_closed")

    # -- reports ---------------------------------------------------------------------------------

    async def create(self, who: Principal, data: Mapping[str, Any]) -> dict[str, Any]:
        """A first report (初报) of a new incident, for the reporter's unit or a unit below it."""
        self._account(who, "incidents.report", "incident.no_report_right")
        fields = dict(data)
        unit_id = fields.pop("unit_id", who.unit_id)
        channel = self._channel(fields.pop("channel", Channel.phone.value))
        now = self.clock()
        elements = rules.check_report(Stage.initial, fields, {}, now)
        async with self.sessionmaker.begin() as db:
            unit = await db.get(Unit, unit_id) if isinstance(unit_id, int) and not isinstance(unit_id, bool) else None
            if unit is None or not who.covers(unit.path):
                raise Invalid("incident.unit_field", field="unit_id")
            head = rules.headline(elements)
            incident = Incident(unit_id=unit.id, unit_path=unit.path, recorded_by_unit_id=who.unit_id,
                                status=Status.open.value, last_report_at=now, created_by=who.id, created_at=now,
                                **self._headline_columns(head))
            db.add(incident)
            await db.flush()
            report = IncidentReport(incident_id=incident.id, stage=Stage.initial.value, number=0,
                                    channel=channel.value, elements=elements, unit_path=who.unit_path,
                                    submitted_by=who.id, submitted_at=now)
            db.add(report)
            await db.flush()
            self._event(db, incident.id, now, "reported", who.name, report_id=report.id, stage=report.stage,
                        number=0, channel=channel.value)
            if unit.path != who.unit_path:
                # Recorded above the responsible unit: the unit never reported it (漏报).
                flag = IncidentFlag(incident_id=incident.id, kind=FlagKind.missed.value, unit_path=unit.path,
                                    due_at=now, detected_at=now)
                db.add(flag)
                await db.flush()
                self._event(db, incident.id, now, "flagged", "system", flag=FlagKind.missed.value,
                            due_at=now.isoformat())
                await self._notify(db, incident, now, FlagKind.missed.value, who.unit_path, flag_id=flag.id)
            Directory.audit(db, who, "report", "incident", incident.id, unit.path, stage="initial")
            await self._assess(db, incident, now, [report])
            incident_id = incident.id
            alert_id = await self._alert_report(db, incident, unit.name, report, elements, who)
        await self._push(alert_id)
        return await self.detail(who, incident_id)

    async def report(self, who: Principal, incident_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """A follow-up (续报 n) or the final report (终报): a new row, the earlier ones untouched."""
        self._account(who, "incidents.report", "incident.no_report_right")
        fields = dict(data)
        stage_value = fields.pop("stage", Stage.followup.value)
        if stage_value == Stage.initial.value:
            raise Invalid("incident.stage_first_report", field="stage")
        if stage_value not in (Stage.followup.value, Stage.final.value):
            raise Invalid("incident.stage_unknown", field="stage")
        stage = Stage(stage_value)
        channel = self._channel(fields.pop("channel", Channel.written.value))
        now = self.clock()
        for attempt in range(2):
            try:
                async with self.sessionmaker.begin() as db:
                    incident = await self._incident(db, who, incident_id, lock=True)
                    self._writable(incident, who)
                    self._open(incident)
                    if incident.status == Status.final:
                        raise WrongStage("incident.stage_final")
                    previous = rules.fold(r.elements for r in incident.reports)
                    elements = rules.check_report(stage, fields, previous, now)
                    number = max(r.number for r in incident.reports) + 1
                    report = IncidentReport(incident_id=incident.id, stage=stage.value, number=number,
                                            channel=channel.value, elements=elements, unit_path=who.unit_path,
                                            submitted_by=who.id, submitted_at=now)
                    db.add(report)
                    await db.flush()
                    reports = [*incident.reports, report]
                    for column, value in self._headline_columns(rules.headline(rules.fold(
                            r.elements for r in reports))).items():
                        setattr(incident, column, value)
                    incident.last_report_at = now
                    if stage is Stage.final:
                        incident.status = Status.final.value
                        incident.final_at = now
                    self._event(db, incident.id, now, "reported", who.name, report_id=report.id, stage=stage.value,
                                number=number, channel=channel.value)
                    Directory.audit(db, who, "report", "incident", incident.id, incident.unit_path, stage=stage.value,
                                    number=number)
                    await self._assess(db, incident, now, reports)
                    alert_id = await self._alert_report(db, incident, incident.unit.name, report,
                                                        rules.fold(r.elements for r in reports), who)
                break
            except IntegrityError:
                # Two reports at once took the same number: the database kept one; try once more.
                if attempt:
                    raise
        await self._push(alert_id)
        return await self.detail(who, incident_id)

    @staticmethod
    def _channel(value: object) -> Channel:
        if value not in (Channel.phone.value, Channel.written.value):
            raise Invalid("incident.channel", field="channel")
        return Channel(str(value))

    @staticmethod
    def _headline_columns(head: Mapping[str, Any]) -> dict[str, Any]:
        return {"title": head["title"], "category": head["category"], "subtype": head.get("subtype"),
                "level": head["level"], "place": head["place"],
                "occurred_at": rules.parse_instant(head["occurred_at"]),
                "learned_at": rules.parse_instant(head["learned_at"])}

    async def verify(self, who: Principal, incident_id: int, report_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """核报: a report checked through another channel (district, police, health, on site)."""
        self._account(who, "incidents.manage", "incident.no_verify_right")
        channel = data.get("channel")
        if not isinstance(channel, str) or channel not in {c.value for c in VerifyChannel}:
            raise Invalid("incident.verify_channel", field="channel")
        verified = data.get("verified", True)
        if not isinstance(verified, bool):
            raise Invalid("incident.verify_channel", field="verified")
        note = data.get("note") or ""
        if not isinstance(note, str) or len(note) > MAX_NOTE or unsafe_reason(note, multiline=True):
            raise Invalid("incident.note", field="note", max=MAX_NOTE)
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id)
            self._writable(incident, who)
            report = next((r for r in incident.reports if r.id == report_id), None)
            if report is None:
                raise NotFound("incident.report_not_found", id=report_id)
            report.verified, report.verify_channel = verified, str(channel)
            report.verify_note, report.verified_by, report.verified_at = note.strip() or None, who.id, now
            self._event(db, incident.id, now, "verified", who.name, report_id=report.id, number=report.number,
                        channel=channel, verified=verified)
            Directory.audit(db, who, "verify", "incident_report", report.id, incident.unit_path, channel=channel)
        return await self.detail(who, incident_id)

    async def close(self, who: Principal, incident_id: int) -> dict[str, Any]:
        self._account(who, "incidents.manage", "incident.no_close_right")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id, lock=True)
            self._writable(incident, who)
            self._open(incident)
            if incident.status != Status.final:
                raise WrongStage("incident.close_before_final")
            incident.status, incident.closed_at, incident.closed_by = Status.closed.value, now, who.id
            self._event(db, incident.id, now, "closed", who.name)
            Directory.audit(db, who, "close", "incident", incident.id, incident.unit_path)
        await self._ended([incident_id])
        return await self.detail(who, incident_id)

    async def merge(self, who: Principal, incident_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """Fold other units' incidents of the same event into this one (a city-level record)."""
        self._account(who, "incidents.manage", "incident.no_close_right")
        sources = _id_list(data.get("incident_ids"), MAX_MERGE, "incident.merge_list", "incident_ids")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            target = await self._incident(db, who, incident_id, lock=True)
            self._writable(target, who)
            self._open(target)
            for source_id in sources:
                if source_id == target.id:
                    raise Invalid("incident.merge_self", field="incident_ids")
                source = await self._incident(db, who, source_id, lock=True)
                self._writable(source, who)
                if source.status == Status.merged:
                    raise Invalid("incident.merge_self", field="incident_ids")
                if not source.unit_path.startswith(target.unit_path):
                    raise Invalid("incident.merge_scope", field="incident_ids", id=source_id)
                source.status, source.merged_into_id = Status.merged.value, target.id
                self._event(db, source.id, now, "merged_into", who.name, target_id=target.id)
                self._event(db, target.id, now, "merged_in", who.name, source_id=source.id, title=source.title)
                Directory.audit(db, who, "merge", "incident", source.id, source.unit_path, into=target.id)
        await self._ended(sources)
        return await self.detail(who, incident_id)

    async def _ended(self, incident_ids: list[int]) -> None:
        """After the commit: tell each ``on_ended`` hook that these incidents closed or merged."""
        for incident_id in incident_ids:
            for hook in list(self.on_ended):
                try:
                    await hook(incident_id)
                except Exception:
                    logger.exception("ending incident %s's live footage failed", incident_id)

    # -- instructions ------------------------------------------------------------------------------

    async def instruct(self, who: Principal, incident_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """领导批示: a leader's instruction on an incident, addressed to units in the leader's scope."""
        self._account(who, "incidents.instruct", "incident.no_instruct_right")
        text = _text(data.get("text"), MAX_INSTRUCTION, "incident.instruction_text", "text")
        unit_ids = _id_list(data.get("unit_ids"), MAX_TARGETS, "incident.instruction_units", "unit_ids")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id)
            self._writable(incident, who)
            self._open(incident)
            units = (await db.execute(select(Unit).where(Unit.id.in_(unit_ids)))).scalars().all()
            found = {u.id: u for u in units if who.covers(u.path)}
            for unit_id in unit_ids:
                if unit_id not in found:
                    raise Invalid("incident.unit_not_found", field="unit_ids", id=unit_id)
            instruction = Instruction(incident_id=incident.id, author_id=who.id, author_name=who.name, text=text,
                                      created_at=now)
            db.add(instruction)
            await db.flush()
            for unit_id in unit_ids:
                db.add(InstructionTarget(instruction_id=instruction.id, unit_id=unit_id, unit_path=found[unit_id].path))
            self._event(db, incident.id, now, "instruction", who.name, instruction_id=instruction.id,
                        units=[found[u].name for u in unit_ids])
            Directory.audit(db, who, "instruct", "incident", incident.id, incident.unit_path, units=unit_ids)
            paths = [found[u].path for u in unit_ids]
            alert_id = None
            if self.alerting is not None:
                summary = {**self._summary(incident, incident.unit.name,
                                           rules.fold(r.elements for r in incident.reports), who), "text": text}
                alert_id = await self.alerting.raise_alert(db, incident, "instruction", instruction.id, paths, summary)
        await self._push(alert_id)
        return await self.detail(who, incident_id)

    async def _own_target(self, db: AsyncSession, who: Principal, instruction_id: int
                          ) -> tuple[Instruction, InstructionTarget]:
        instruction = await db.get(Instruction, instruction_id)
        if instruction is None:
            raise NotFound("incident.instruction_not_found", id=instruction_id)
        await self._incident(db, who, instruction.incident_id)  # visible at all, or 404
        target = (await db.execute(select(InstructionTarget).where(
            InstructionTarget.instruction_id == instruction_id, InstructionTarget.unit_id == who.unit_id))
            ).scalar_one_or_none()
        if target is None:
            raise Forbidden("incident.ack_own_unit")
        return instruction, target

    async def acknowledge(self, who: Principal, instruction_id: int) -> dict[str, Any]:
        """The addressed unit has read the instruction (签收); the first acknowledgement stands."""
        self._account(who, "incidents.respond", "incident.ack_own_unit")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            instruction, target = await self._own_target(db, who, instruction_id)
            if target.acknowledged_at is None:
                target.acknowledged_at, target.acknowledged_by = now, who.name
                unit = await db.get(Unit, target.unit_id)
                self._event(db, instruction.incident_id, now, "acknowledged", who.name, instruction_id=instruction.id,
                            unit=unit.name if unit else "")
            incident_id = instruction.incident_id
        return await self.detail(who, incident_id)

    async def feedback(self, who: Principal, instruction_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """The addressed unit reports back (反馈) on what it did; each feedback is on the timeline."""
        self._account(who, "incidents.respond", "incident.ack_own_unit")
        text = _text(data.get("text"), MAX_FEEDBACK, "incident.feedback_text", "text")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            instruction, target = await self._own_target(db, who, instruction_id)
            if target.acknowledged_at is None:
                target.acknowledged_at, target.acknowledged_by = now, who.name
            target.feedback, target.feedback_at, target.feedback_by = text, now, who.name
            unit = await db.get(Unit, target.unit_id)
            self._event(db, instruction.incident_id, now, "feedback", who.name, instruction_id=instruction.id,
                        unit=unit.name if unit else "", text=text)
            incident_id = instruction.incident_id
        return await self.detail(who, incident_id)

    # -- supervision -----------------------------------------------------------------------------

    async def supervise(self, who: Principal, incident_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """A host's own 督办 to the responsible unit (e.g. a wrong report, 错报), with a deadline."""
        self._account(who, "incidents.manage", "incident.no_supervise_right")
        outcome = data.get("outcome")
        if outcome not in NOTICE_REASONS:
            raise Invalid("incident.notice_outcome", field="outcome")
        text = _text(data.get("text"), MAX_NOTICE_TEXT, "incident.notice_text", "text")
        days = data.get("days", NOTICE_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 30:
            raise Invalid("incident.notice_days", field="days")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            incident = await self._incident(db, who, incident_id)
            self._writable(incident, who)
            if incident.unit_path == who.unit_path:
                raise Forbidden("incident.no_supervise_right")  # supervision goes downwards
            await self._notify(db, incident, now, str(outcome), who.unit_path, text=text, issued_by=who.id, days=days,
                               actor=who.name)
            Directory.audit(db, who, "supervise", "incident", incident.id, incident.unit_path, outcome=outcome)
        return await self.detail(who, incident_id)

    async def _notify(self, db: AsyncSession, incident: Incident, now: dt.datetime, outcome: str, issuer_path: str,
                      *, actor: str = "system", days: int = NOTICE_DAYS, **subject: Any) -> None:
        notice = new_notice(NoticeKind.incident, incident.unit_path, issuer_path, outcome, now=now, days=days,
                            incident_id=incident.id, **subject)
        db.add(notice)
        await db.flush()
        self._event(db, incident.id, now, "notice_issued", actor, notice_id=notice.id, outcome=outcome)

    # -- timeliness ------------------------------------------------------------------------------

    async def _assess(self, db: AsyncSession, incident: Incident, now: dt.datetime,
                      reports: list[IncidentReport] | None = None) -> int:
        """Flag every deadline of ``incident`` that is late at ``now`` (once), with its notice; mark
        flags met when the overdue report has come. Returns the number of new flags."""
        reports = list(incident.reports) if reports is None else reports
        times = [ReportTime(as_utc(r.submitted_at), Channel(r.channel), Stage(r.stage)) for r in reports]
        late = overdue(self.deadlines, incident.level, as_utc(incident.learned_at), times,
                       as_utc(incident.final_at) if incident.final_at else None, now)
        existing = {(f.kind, as_utc(f.due_at)): f for f in (await db.execute(select(IncidentFlag).where(
            IncidentFlag.incident_id == incident.id))).scalars()}
        if any(kind == FlagKind.missed for kind, _ in existing):
            late = [d for d in late if d.kind is FlagKind.late_followup]  # 漏报 already says it
        issuer = parent_path(incident.unit_path)
        new = 0
        for due in late:
            flag = existing.get((due.kind.value, due.due_at))
            if flag is not None:
                if flag.met_at is None and due.met_at is not None:
                    flag.met_at = due.met_at
                continue
            flag = IncidentFlag(incident_id=incident.id, kind=due.kind.value, unit_path=incident.unit_path,
                                due_at=due.due_at, detected_at=now, met_at=due.met_at)
            db.add(flag)
            await db.flush()
            self._event(db, incident.id, now, "flagged", "system", flag=due.kind.value, due_at=due.due_at.isoformat())
            await self._notify(db, incident, now, due.kind.value, issuer, flag_id=flag.id)
            new += 1
        return new

    async def check_deadlines(self) -> int:
        """One pass over the incidents still reporting: flag what has become late. Returns new flags."""
        now = self.clock()
        async with self.sessionmaker() as db:
            ids = list((await db.execute(select(Incident.id).where(
                Incident.status.in_((Status.open.value, Status.final.value))))).scalars())
        flagged = 0
        for incident_id in ids:
            async with self.sessionmaker.begin() as db:
                incident = (await db.execute(select(Incident).where(Incident.id == incident_id).options(
                    selectinload(Incident.reports)).with_for_update())).scalar_one_or_none()
                if incident is None:
                    continue
                new = await self._assess(db, incident, now)
            if new:
                flagged += new
        return flagged

    async def run(self, interval: float = 30.0) -> None:
        """The deadline watch: every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.check_deadlines()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("incident deadline check failed")
            await asyncio.sleep(interval)

    # -- reading ---------------------------------------------------------------------------------

    async def find(self, who: Principal, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        """Incidents in scope, newest first, filtered by status, category, level, unit and dates (local days)."""
        self._account(who, "incidents.read", "incident.consoles_no")
        query = select(Incident, Unit.name).join(Unit, Unit.id == Incident.unit_id).where(self._visible(who))
        status = filters.get("status")
        if status:
            if status not in {s.value for s in Status}:
                raise Invalid("incident.filter", field="status", name="status")
            query = query.where(Incident.status == status)
        else:
            query = query.where(Incident.status != Status.merged.value)
        for name, allowed, column in (("category", Category, Incident.category), ("level", Level, Incident.level)):
            value = filters.get(name)
            if value:
                if value not in {v.value for v in allowed}:
                    raise Invalid("incident.filter", field=name, name=name)
                query = query.where(column == value)
        unit_id = filters.get("unit_id")
        async with self.sessionmaker() as db:
            if unit_id:
                unit = await db.get(Unit, int(unit_id)) if unit_id.isascii() and unit_id.isdigit() else None
                if unit is None or not who.covers(unit.path):
                    raise Invalid("incident.filter", field="unit_id", name="unit_id")
                query = query.where(Incident.unit_path.startswith(unit.path, autoescape=True))
            for name, op in (("from", "ge"), ("to", "lt")):
                value = filters.get(name)
                if value:
                    try:
                        day = dt.date.fromisoformat(value)
                    except ValueError as exc:
                        raise Invalid("incident.filter", field=name, name=name) from exc
                    start = timezone.midnight(day + dt.timedelta(days=1 if op == "lt" else 0))
                    query = query.where(Incident.occurred_at >= start if op == "ge" else Incident.occurred_at < start)
            rows = (await db.execute(query.order_by(Incident.occurred_at.desc(), Incident.id.desc())
                                     .limit(LIST_LIMIT))).all()
            ids = [i.id for i, _ in rows]
            flags: dict[int, list[str]] = {}
            for flag in (await db.execute(select(IncidentFlag).where(IncidentFlag.incident_id.in_(ids)))).scalars():
                flags.setdefault(flag.incident_id, []).append(flag.kind)
            counts: dict[int, int] = {}
            for (incident_id,) in (await db.execute(select(IncidentReport.incident_id).where(
                    IncidentReport.incident_id.in_(ids)))).all():
                counts[incident_id] = counts.get(incident_id, 0) + 1
        return [{"id": i.id, "title": i.title, "category": i.category, "subtype": i.subtype, "level": i.level,
                 "status": i.status, "unit_id": i.unit_id, "unit_name": unit_name, "place": i.place,
                 "occurred_at": _iso(i.occurred_at), "learned_at": _iso(i.learned_at),
                 "last_report_at": _iso(i.last_report_at), "reports": counts.get(i.id, 0),
                 "flags": sorted(set(flags.get(i.id, [])))} for i, unit_name in rows]

    async def detail(self, who: Principal, incident_id: int) -> dict[str, Any]:
        """One incident: where it stands, every report as filed, flags, instructions, notices, timeline."""
        self._account(who, "incidents.read", "incident.consoles_no")
        async with self.sessionmaker() as db:
            incident = await self._incident(db, who, incident_id)
            merged = list((await db.execute(select(Incident).where(Incident.merged_into_id == incident.id)
                                            .options(selectinload(Incident.reports)))).scalars())
            ids = [incident.id, *(m.id for m in merged)]
            unit_ids = {incident.unit_id, incident.recorded_by_unit_id}
            instructions = list((await db.execute(select(Instruction).where(Instruction.incident_id == incident.id)
                                                  .options(selectinload(Instruction.targets))
                                                  .order_by(Instruction.id))).scalars())
            unit_ids |= {t.unit_id for i in instructions for t in i.targets}
            names = {u.id: u.name for u in (await db.execute(select(Unit).where(Unit.id.in_(unit_ids)))).scalars()}
            flags = list((await db.execute(select(IncidentFlag).where(IncidentFlag.incident_id == incident.id)
                                           .order_by(IncidentFlag.due_at))).scalars())
            events = list((await db.execute(select(IncidentEvent).where(IncidentEvent.incident_id.in_(ids))
                                            .order_by(IncidentEvent.at, IncidentEvent.id))).scalars())
            # Which duty rooms were shown each alert and acknowledged it (for the units that see it all).
            alerts = await Alerting.receipts(db, incident.id) if who.covers(incident.unit_path) else []
        writable = who.covers(incident.unit_path)
        live = incident.status in (Status.open.value, Status.final.value)
        reports = [self._report_json(r) for r in incident.reports]
        return {
            "id": incident.id, "title": incident.title, "status": incident.status,
            "category": incident.category, "subtype": incident.subtype, "level": incident.level,
            "place": incident.place, "occurred_at": _iso(incident.occurred_at), "learned_at": _iso(incident.learned_at),
            "unit_id": incident.unit_id, "unit_name": names.get(incident.unit_id, ""),
            "recorded_by_unit": names.get(incident.recorded_by_unit_id, ""),
            "merged_into_id": incident.merged_into_id, "final_at": _iso(incident.final_at),
            "closed_at": _iso(incident.closed_at),
            "current": rules.fold(r.elements for r in incident.reports),
            "reports": reports,
            "merged": [{"id": m.id, "title": m.title, "unit_id": m.unit_id,
                        "reports": [self._report_json(r) for r in m.reports]} for m in merged],
            "flags": [{"kind": f.kind, "due_at": _iso(f.due_at), "detected_at": _iso(f.detected_at),
                       "met_at": _iso(f.met_at)} for f in flags],
            "instructions": [{
                "id": i.id, "author": i.author_name, "text": i.text, "at": _iso(i.created_at),
                "targets": [{"unit_id": t.unit_id, "unit_name": names.get(t.unit_id, ""),
                             "acknowledged_at": _iso(t.acknowledged_at), "acknowledged_by": t.acknowledged_by,
                             "feedback": t.feedback, "feedback_at": _iso(t.feedback_at), "feedback_by": t.feedback_by,
                             "mine": t.unit_id == who.unit_id and who.may("incidents.respond")}
                            for t in i.targets]} for i in instructions],
            "notices": await self.supervision.notices(who, incident_id=incident.id),
            "alerts": alerts,
            "timeline": [{"at": _iso(e.at), "kind": e.kind, "actor": e.actor, "incident_id": e.incident_id,
                          **e.detail} for e in events],
            "may": {
                "report": writable and incident.status == Status.open.value and who.may("incidents.report"),
                "verify": writable and who.may("incidents.manage"),
                "close": writable and incident.status == Status.final.value and who.may("incidents.manage"),
                "merge": writable and live and who.may("incidents.manage"),
                "supervise": writable and incident.unit_path != who.unit_path and who.may("incidents.manage"),
                "instruct": writable and live and who.may("incidents.instruct"),
            },
        }

    @staticmethod
    def _report_json(r: IncidentReport) -> dict[str, Any]:
        return {"id": r.id, "stage": r.stage, "number": r.number, "channel": r.channel, "elements": r.elements,
                "submitted_at": _iso(r.submitted_at), "verified": r.verified, "verify_channel": r.verify_channel,
                "verify_note": r.verify_note, "verified_at": _iso(r.verified_at)}

    # -- plumbing --------------------------------------------------------------------------------

    async def _alert_report(self, db: AsyncSession, incident: Incident, unit_name: str, report: IncidentReport,
                            current: Mapping[str, Any], who: Principal) -> int | None:
        """A report goes up the chain: every unit above the incident's, and the incident's own
        unit when someone above filed it (it learns what is recorded against it); never the
        reporter's own unit."""
        if self.alerting is None:
            return None
        paths = [p for p in [*chain_above(incident.unit_path), incident.unit_path] if p != who.unit_path]
        stage = Stage(report.stage)
        summary = {**self._summary(incident, unit_name, current, who), "stage": STAGE_LABELS[stage][0],
                   "stage_code": stage.value, "number": report.number,
                   "text": str(report.elements.get("changes") or report.elements.get("outcome")
                               or current.get("course") or "")[:200]}
        return await self.alerting.raise_alert(db, incident, "report", report.id, paths, summary)

    @staticmethod
    def _summary(incident: Incident, unit_name: str, current: Mapping[str, Any], who: Principal) -> dict[str, Any]:
        """What an alert shows and a group's template may use (labels in Chinese: the SMS text)."""
        level = Level(incident.level) if incident.level in {v.value for v in Level} else None
        category = Category(incident.category) if incident.category in {c.value for c in Category} else None
        when = incident.occurred_at
        return {
            "title": incident.title, "level": LEVEL_LABELS[level][0] if level else incident.level,
            "level_code": incident.level, "category": CATEGORY_LABELS[category][0] if category else incident.category,
            "category_code": incident.category, "unit": unit_name, "from": who.name, "place": incident.place,
            # Read by people (the SMS text): the deployment's local time, to the minute.
            "time": timezone.local(as_utc(when)).strftime("%Y-%m-%d %H:%M") if when is not None else "",
            "deaths": current.get("deaths", ""), "injured": current.get("injured", ""),
            "missing": current.get("missing", ""), "stage": "", "text": "",
        }

    async def _push(self, alert_id: int | None) -> None:
        """After the commit: the alert to the consoles connected now (a failure here loses nothing:
        the receipts are stored and a console asks for them when it connects)."""
        if self.alerting is None or alert_id is None:
            return
        try:
            await self.alerting.push(alert_id)
        except Exception:
            logger.exception("pushing alert %s to consoles failed", alert_id)

    @staticmethod
    def _event(db: AsyncSession, incident_id: int, at: dt.datetime, kind: str, actor: str, **detail: Any) -> None:
        db.add(IncidentEvent(incident_id=incident_id, at=at, kind=kind, actor=actor, detail=detail))



__all__ = ["Incidents", "Notice", "parent_path"]
