"""The audit log and contacts search (name, pinyin initials or full, phone)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from .base import DirectoryBase
from .models import Account, AuditEntry, DutyRoom, Unit, as_utc
from .principal import Principal
from .scope import within


class AuditAndContacts(DirectoryBase):
    """The audit log and contacts search (name, pinyin initials or full, phone)."""

    # -- audit and contacts ------------------------------------------------------------------

    async def audit_log(self, who: Principal, limit: int = 200) -> list[dict[str, Any]]:
        who.require("audit.read")
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(AuditEntry).where(within(AuditEntry.unit_path, who))
                                     .order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000))))).scalars()
            return [{"id": e.id, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action,
                     "target_type": e.target_type, "target_id": e.target_id, "detail": e.detail} for e in rows]

    async def search_contacts(self, who: Principal, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Units, duty rooms and people by name, pinyin (initials or full) or phone number."""
        who.require("contacts.read")
        q = q.strip().lower()
        if not q:
            return []
        like = f"%{q}%"
        results: list[dict[str, Any]] = []
        async with self.sessionmaker() as db:
            units = (await db.execute(select(Unit).where(
                within(Unit.path, who), Unit.active.is_(True),
                or_(Unit.name.contains(q), Unit.name_pinyin.like(like), Unit.code.ilike(like)),
            ).limit(limit))).scalars()
            results += [{"type": "unit", "id": u.id, "name": u.name, "phone": "", "unit_id": u.id} for u in units]
            rooms = (await db.execute(select(DutyRoom, Unit).join(Unit).where(
                within(Unit.path, who), DutyRoom.active.is_(True),
                or_(DutyRoom.name.contains(q), DutyRoom.name_pinyin.like(like), DutyRoom.phone.contains(q)),
            ).limit(limit))).all()
            results += [{"type": "duty_room", "id": r.id, "name": r.name, "phone": r.phone, "unit_id": r.unit_id,
                         "unit_name": u.name} for r, u in rooms]
            people = (await db.execute(select(Account, Unit).join(Unit).where(
                within(Unit.path, who), Account.active.is_(True),
                or_(Account.display_name.contains(q), Account.name_pinyin.like(like), Account.phone.contains(q)),
            ).limit(limit))).all()
            results += [{"type": "person", "id": a.id, "name": a.display_name, "phone": a.phone,
                         "unit_id": a.unit_id, "unit_name": u.name} for a, u in people]
        return results[:limit]
