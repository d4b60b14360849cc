"""Supervision notices (督办通知): listed in scope, answered by the notified unit, closed by the issuer.

A notice goes to a unit: a room that was absent, offline or late at a roll-call (issued by
``rollcall.results`` when it finishes), or an incident reported late or never reported by its
responsible unit (issued by ``incidents``), or a host's own 督办 on an incident. The unit
answers in writing before the deadline; the issuing side closes it.

Who may do what (separation of duties, so that nobody both answers and signs off):

- respond: an account with ``notices.respond`` whose own unit *is* the notified unit. A host of a
  higher unit sees the notice but cannot write the unit's answer. A duty-room console cannot
  respond: it is a shared, unattended device with a year-long session, and a written answer to
  a supervision notice must name the person who gave it (``responded_by``).
- close: a host (``rollcall.host``) whose scope covers the issuing side's unit
  (``issuer_unit_path``: the roll-call's unit, or the unit above the incident's) and whose own
  unit is *not* the notified unit, once the unit has responded. A notice to the top unit itself
  therefore has nobody above to close it, by design.
- see: accounts see the notices of their subtree; a console sees its own room's only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.models import DutyRoom, as_utc, utcnow
from ..directory.principal import Principal
from ..directory.scope import within
from ..directory.service import Directory
from ..text import unsafe_reason
from .errors import Forbidden, Invalid, NotFound
from .models import Notice, NoticeKind, NoticeStatus

#: Days a unit has to answer a notice.
NOTICE_DAYS = 3
MAX_RESPONSE = 4000


def may_respond(who: Principal, notice: Notice) -> bool:
    """Only the notified unit itself answers: an account of that very unit, never one above it."""
    return who.kind == "account" and who.may("notices.respond") and who.unit_path == notice.unit_path


def may_close(who: Principal, notice: Notice) -> bool:
    """A host of the issuing side closes, and never the notified unit itself."""
    return (who.kind == "account" and who.may("rollcall.host") and who.unit_path != notice.unit_path
            and notice.issuer_unit_path is not None and who.covers(notice.issuer_unit_path))


def notice_json(notice: Notice, room_name: str = "", subject: str = "", who: Principal | None = None,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """A notice as the API shows it; with ``who``, also what that principal may do with it now."""
    actions = {} if who is None else {
        "may_respond": notice.status != NoticeStatus.closed and may_respond(who, notice),
        "may_close": notice.status == NoticeStatus.responded and may_close(who, notice)}
    return {**actions, "id": notice.id, "kind": notice.kind, "roll_call_id": notice.roll_call_id,
            "incident_id": notice.incident_id, "duty_room_id": notice.duty_room_id, "room_name": room_name,
            "subject": subject, "outcome": notice.outcome, "text": notice.text, "status": notice.status,
            "deadline": as_utc(notice.deadline).isoformat(), "response": notice.response,
            "responded_at": as_utc(notice.responded_at).isoformat() if notice.responded_at else None,
            "overdue": notice.status == NoticeStatus.open and as_utc(notice.deadline) < (now or utcnow())}


def new_notice(kind: NoticeKind, unit_path: str, issuer_unit_path: str, outcome: str, *,
               now: dt.datetime | None = None, days: int = NOTICE_DAYS, **subject: Any) -> Notice:
    """A notice to add in the caller's unit of work (the roll-call or incident that drew it)."""
    return Notice(kind=kind.value, unit_path=unit_path, issuer_unit_path=issuer_unit_path, outcome=outcome,
                  deadline=(now or utcnow()) + dt.timedelta(days=days), status=NoticeStatus.open.value,
                  **subject)


class Supervision:
    """The notices of every kind, scoped like everything else."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def notices(self, who: Principal, kind: str | None = None,
                      incident_id: int | None = None) -> list[dict[str, Any]]:
        """The notices in scope, each with what ``who`` may do with it (the page shows only those buttons)."""
        from ..incidents.models import Incident
        from ..rollcall.models import RollCallRecord

        query = (select(Notice, DutyRoom.name, RollCallRecord.title, Incident.title)
                 .join(DutyRoom, DutyRoom.id == Notice.duty_room_id, isouter=True)
                 .join(RollCallRecord, RollCallRecord.id == Notice.roll_call_id, isouter=True)
                 .join(Incident, Incident.id == Notice.incident_id, isouter=True)
                 .where(within(Notice.unit_path, who)).order_by(Notice.id))
        if who.kind == "device":
            query = query.where(Notice.duty_room_id == who.duty_room_id)
        if kind is not None:
            query = query.where(Notice.kind == kind)
        if incident_id is not None:
            query = query.where(Notice.incident_id == incident_id)
        async with self.sessionmaker() as db:
            rows = (await db.execute(query)).all()
        now = utcnow()
        return [notice_json(n, room or "", call_title or incident_title or "", who, now)
                for n, room, call_title, incident_title in rows]

    async def _notice(self, db: AsyncSession, who: Principal, notice_id: int) -> Notice:
        notice = await db.get(Notice, notice_id)
        if notice is None or not who.covers(notice.unit_path) or (
                who.kind == "device" and notice.duty_room_id != who.duty_room_id):
            raise NotFound("supervision.not_found", id=notice_id)
        return notice

    async def respond(self, who: Principal, notice_id: int, response: object) -> dict[str, Any]:
        who.require("notices.respond")
        if (not isinstance(response, str) or not response.strip() or len(response) > MAX_RESPONSE
                or unsafe_reason(response, multiline=True)):
            raise Invalid("supervision.response_text", field="response", max=MAX_RESPONSE)
        async with self.sessionmaker() as db:
            notice = await self._notice(db, who, notice_id)
            if not may_respond(who, notice):
                raise Forbidden("supervision.respond_own_unit")
            if notice.status == NoticeStatus.closed:
                raise Invalid("supervision.closed")
            notice.response = response.strip()
            notice.responded_at = utcnow()
            notice.responded_by = who.id
            notice.status = NoticeStatus.responded.value
            Directory.audit(db, who, "respond", "notice", notice.id, notice.unit_path)
            await self._record(db, who, notice, "notice_responded")
            await db.commit()
            return notice_json(notice)

    async def close(self, who: Principal, notice_id: int) -> dict[str, Any]:
        who.require("rollcall.host")
        async with self.sessionmaker() as db:
            notice = await self._notice(db, who, notice_id)
            if not may_close(who, notice):
                raise Forbidden("supervision.close_issuer_only")
            if notice.status != NoticeStatus.responded:
                raise Invalid("supervision.close_after_response")
            notice.status = NoticeStatus.closed.value
            notice.closed_at = utcnow()
            notice.closed_by = who.id
            Directory.audit(db, who, "close", "notice", notice.id, notice.unit_path)
            await self._record(db, who, notice, "notice_closed")
            await db.commit()
            return notice_json(notice)

    @staticmethod
    async def _record(db: AsyncSession, who: Principal, notice: Notice, kind: str) -> None:
        """An incident's notice is on its timeline, with every step of it."""
        if notice.incident_id is None:
            return
        from ..incidents.models import IncidentEvent

        db.add(IncidentEvent(incident_id=notice.incident_id, at=utcnow(), kind=kind, actor=who.name,
                             detail={"notice_id": notice.id, "outcome": notice.outcome}))
