"""Who may manage an incident's footage sources (WHIP tokens, field links, RTSP cameras): one rule.

An account (never a console) with ``incidents.manage`` whose scope holds the incident's unit; an
incident out of scope is "not found", as on every incident route.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..directory.principal import Principal
from ..incidents.models import Incident
from .errors import Forbidden, NotFound


def require_host(who: Principal, no_right: str) -> None:
    """Refuse consoles, and accounts without ``incidents.manage`` (``no_right``: the message key)."""
    if who.kind != "account":
        raise Forbidden("footage.consoles_no")
    if not who.may("incidents.manage"):
        raise Forbidden(no_right)


async def incident_in_scope(db: AsyncSession, who: Principal, incident_id: int) -> Incident:
    """The incident, if ``who``'s scope holds its unit; NotFound otherwise."""
    incident = await db.get(Incident, incident_id)
    if incident is None or not who.covers(incident.unit_path):
        raise NotFound("footage.incident_not_found", id=incident_id)
    return incident
