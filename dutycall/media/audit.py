"""The audit of footage access: who watched live, relayed, played or downloaded which footage,
when, and from which client address (``FootageAccess`` rows, migration 0010).

A row is written in the transaction of what it records where there is one (a relay's start, a
watch joining), else on its own as the action happens (a segment served, a range downloaded).
Hosts whose scope holds the incident read them (``GET /api/incidents/{id}/footage-access``),
newest first, a page at a time (``?limit=`` at most :data:`PAGE_MAX`, ``?before=<id>`` the next
page): no row is ever out of reach, however many are written.

A player asks for many byte ranges of one file, so media requests are recorded through a
:class:`Throttle`: one row per account, segment and action ("played" or "downloaded") a minute,
whatever the ``Range`` (a request without one, ``bytes=0-``, ``bytes=1-`` or ``bytes=-N``
alike), so the record cannot be skipped, nor flooded by repeating a request.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..incidents.models import Incident
from .errors import Forbidden, Invalid, NotFound
from .messages import CATALOGUE, EN, ZH
from .models import FootageAccess

ACTIONS = ("watched_live", "relayed", "played", "downloaded")
#: A page of the listing holds at most this many rows (newest first); the default page size.
PAGE_MAX = 1000
#: A media request is recorded once per account, segment, action and this many seconds.
AGAIN_AFTER = 60.0

CATALOGUE.update({
    "footage.access_limit": {ZH: "limit 应为 1 至 {max} 的整数", EN: "limit must be a whole number from 1 to {max}"},
    "footage.access_before": {ZH: "该事件没有编号为 {id} 的影像访问记录",
                              EN: "The incident has no footage access entry {id}"},
})


class Throttle:
    """Whether an access is to be recorded now: once per key (account, segment, action) and
    ``interval`` seconds. Keys older than the interval are dropped as the table grows."""

    def __init__(self, interval: float = AGAIN_AFTER, clock: Callable[[], float] = time.monotonic,
                 prune_at: int = 10_000) -> None:
        self.interval = interval
        self.clock = clock
        self.prune_at = prune_at
        self._last: dict[Hashable, float] = {}

    def due(self, key: Hashable) -> bool:
        """True (and the key is marked) if ``key`` was not recorded in the last ``interval``."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.prune_at:
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        self._last[key] = now
        return True

    def forget(self, key: Hashable) -> None:
        """The row for ``key`` could not be written: record the next request again."""
        self._last.pop(key, None)


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


async def listing(sessionmaker: async_sessionmaker[AsyncSession], who: Principal, incident_id: int, *,
                  before: int | None = None, limit: int = PAGE_MAX) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the incident's footage access, newest first (by time, then id): hosts
    (incidents.manage) whose scope holds it. ``before``: the rows after the entry of that id in
    this order (the previous page's last). Returns the rows and the ``before`` of the next page
    (None on the last)."""
    if who.kind != "account":
        raise Forbidden("footage.consoles_no")
    if not who.may("incidents.manage"):
        raise Forbidden("footage.no_audit_right")
    async with sessionmaker() as db:
        incident = await db.get(Incident, incident_id)
        if incident is None or not who.covers(incident.unit_path):
            raise NotFound("footage.incident_not_found", id=incident_id)
        if not 1 <= limit <= PAGE_MAX:
            raise Invalid("footage.access_limit", field="limit", max=PAGE_MAX)
        query = select(FootageAccess).where(FootageAccess.incident_id == incident_id)
        if before is not None:
            after = await db.get(FootageAccess, before)
            if after is None or after.incident_id != incident_id:
                raise Invalid("footage.access_before", field="before", id=before)
            query = query.where(or_(FootageAccess.at < after.at,
                                    and_(FootageAccess.at == after.at, FootageAccess.id < after.id)))
        rows = list((await db.execute(query.order_by(FootageAccess.at.desc(), FootageAccess.id.desc())
                                      .limit(limit + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return [_json(r) for r in rows], (rows[-1].id if more else None)
