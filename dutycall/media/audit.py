"""The audit of footage access: who watched live, relayed, played or downloaded which footage,
when, and from which client address (``FootageAccess`` rows, migration 0010).

A row is written in the transaction of what it records where there is one (a relay's start, a
watch joining), else on its own as the action happens (a segment served, a range downloaded).
Hosts whose scope holds the incident read them (``GET /api/incidents/{id}/footage-access``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident
from .errors import Forbidden, NotFound
from .models import FootageAccess

ACTIONS = ("watched_live", "relayed", "played", "downloaded")
#: At most this many rows are listed (newest first).
LIST_LIMIT = 1000


def access_row(who: Principal | dict[str, Any], incident_id: int, action: str, address: str | None, *,
               source_id: int | None = None, segment_id: int | None = None, relay_id: int | None = None,
               range_from: dt.datetime | None = None, range_to: dt.datetime | None = None,
               at: dt.datetime | None = None) -> FootageAccess:
    """One audit row; ``who`` is a principal, or a participant's identity (kind, account_id, name)."""
    assert action in ACTIONS
    if isinstance(who, Principal):
        kind, name = str(who.kind), who.name
        account_id = who.id if kind == "account" else None
        duty_room_id = who.duty_room_id if kind == "device" else None
    else:
        kind, name = str(who.get("kind") or "account"), str(who.get("name") or "?")
        account_id, duty_room_id = who.get("account_id"), who.get("duty_room_id")
    return FootageAccess(incident_id=incident_id, source_id=source_id, segment_id=segment_id, relay_id=relay_id,
                         action=action, principal_kind=kind[:8], account_id=account_id, duty_room_id=duty_room_id,
                         who=name[:128], range_from=range_from, range_to=range_to,
                         client_address=(address or None) and address[:64], at=at or utcnow())


async def record(sessionmaker: async_sessionmaker[AsyncSession], who: Principal, incident_id: int, action: str,
                 address: str | None, **fields: Any) -> None:
    async with sessionmaker.begin() as db:
        db.add(access_row(who, incident_id, action, address, **fields))


def _json(row: FootageAccess) -> dict[str, Any]:
    return {"id": row.id, "at": as_utc(row.at).isoformat(), "action": row.action, "who": row.who,
            "principal_kind": row.principal_kind, "account_id": row.account_id, "duty_room_id": row.duty_room_id,
            "source_id": row.source_id, "segment_id": row.segment_id, "relay_id": row.relay_id,
            "range_from": as_utc(row.range_from).isoformat() if row.range_from else None,
            "range_to": as_utc(row.range_to).isoformat() if row.range_to else None,
            "client_address": row.client_address}


async def listing(sessionmaker: async_sessionmaker[AsyncSession], who: Principal,
                  incident_id: int) -> list[dict[str, Any]]:
    """The incident's footage access, newest first: hosts (incidents.manage) whose scope holds it."""
    if who.kind != "account":
        raise Forbidden("footage.consoles_no")
    if not who.may("incidents.manage"):
        raise Forbidden("footage.no_audit_right")
    async with sessionmaker() as db:
        incident = await db.get(Incident, incident_id)
        if incident is None or not who.covers(incident.unit_path):
            raise NotFound("footage.incident_not_found", id=incident_id)
        rows = (await db.execute(select(FootageAccess).where(FootageAccess.incident_id == incident_id)
                                 .order_by(FootageAccess.at.desc(), FootageAccess.id.desc())
                                 .limit(LIST_LIMIT))).scalars()
        return [_json(r) for r in rows]
