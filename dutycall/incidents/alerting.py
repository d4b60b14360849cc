"""Live alerting: a new report or instruction on an incident reaches the duty rooms concerned
at once, and the site's SMS gateway through a signed webhook.

- **Consoles.** Raising an alert (in the same transaction as the report or instruction it is
  about) writes one :class:`AlertReceipt` per active duty room of the units concerned. After
  the commit each console that is connected is sent ``incident_alert`` over its signalling
  socket (found by its conference tag); one that is not asks ``GET /api/alerts`` when it
  connects. The console shows the alert and sounds a tone until someone clicks 确认收到; the
  click is recorded (time and console credential) and goes on the incident's timeline.
  Who is concerned: for a report, every unit above the incident's unit (the chain that
  receives it) and the unit itself when someone above filed it; for an instruction, the
  addressed units.
- **Notification groups** (by category and level, within the owning unit's subtree) each get
  one webhook delivery per alert, with the group's members and its template filled in
  (``string.Template``: no attribute access, no formatting language a hostile title could
  reach).
- **Webhook.** Deliveries are rows: the sender (:meth:`Alerting.run`) posts each as JSON with
  ``X-Dutycall-Delivery``, ``X-Dutycall-Timestamp`` and ``X-Dutycall-Signature`` (``sha256=``
  HMAC-SHA256 of ``timestamp + "." + body`` under the site's secret), retries a failure after
  ``backoff`` seconds, doubling up to an hour, and gives up after ``max_attempts``. Every
  attempt is a :class:`WebhookAttempt` row (status code or error, duration). A restart loses
  nothing: pending deliveries are picked up again. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from ..conference import Conference
from ..directory.models import DutyRoom, Unit, as_utc, utcnow
from ..directory.principal import Principal
from ..directory.scope import within
from ..directory.service import Directory
from ..rollcall.presence import console_tag
from ..text import unsafe_reason
from .catalog import Category, Level
from .errors import Forbidden, Invalid, NotFound
from .models import Alert, AlertReceipt, Incident, IncidentEvent, NotificationGroup, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

#: What a group's template may use.
TEMPLATE_FIELDS = ("title", "level", "category", "unit", "stage", "time", "place", "deaths", "injured",
                   "missing", "text")
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{2,19}$")
MAX_MEMBERS = 200
MAX_TEMPLATE = 1000
BACKOFF_CAP = 3600.0
#: Alerts a console is shown when it connects: the unacknowledged ones of the last days.
PENDING_DAYS = 7
PENDING_LIMIT = 50


@dataclass(frozen=True)
class WebhookSettings:
    """Where the webhook posts (empty: no webhook), the shared secret it signs with, and its retry policy."""

    url: str = ""
    secret: str = ""
    backoff: float = 5.0
    max_attempts: int = 8
    timeout: float = 10.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: what a receiver recomputes to trust a delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def render_template(template: str, fields: Mapping[str, object]) -> str:
    """A group's message: ``$name`` placeholders filled, anything else left as written."""
    return string.Template(template).safe_substitute({k: "" if v is None else str(v) for k, v in fields.items()})


def check_template(template: object) -> str:
    if not isinstance(template, str) or not template.strip() or len(template) > MAX_TEMPLATE or unsafe_reason(
            template, multiline=True):
        raise Invalid("alert.template_text", field="template", max=MAX_TEMPLATE)
    try:
        string.Template(template).substitute(dict.fromkeys(TEMPLATE_FIELDS, ""))
    except (KeyError, ValueError) as exc:
        raise Invalid("alert.template_field", field="template", fields=" ".join(
            f"${f}" for f in TEMPLATE_FIELDS), bad=str(exc)[:40]) from None
    return template.strip()


def _choices(value: object, allowed: set[str], field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
        raise Invalid("alert.group_choices", field=field, allowed=", ".join(sorted(allowed)))
    return list(dict.fromkeys(value))


def _members(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > MAX_MEMBERS:
        raise Invalid("alert.group_members", field="members", max=MAX_MEMBERS)
    members = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        phone = item.get("phone") if isinstance(item, dict) else None
        if (not isinstance(name, str) or not name.strip() or len(name) > 32 or unsafe_reason(name)
                or not isinstance(phone, str) or not PHONE.match(phone.strip())):
            raise Invalid("alert.group_members", field="members", max=MAX_MEMBERS)
        members.append({"name": name.strip(), "phone": phone.strip()})
    return members


class Alerting:
    """Alerts to consoles, their acknowledgements, notification groups and the webhook sender."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference | None,
                 webhook: WebhookSettings | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.conference = conference
        self.webhook = webhook or WebhookSettings()
        self.clock = clock
        self._wake = asyncio.Event()

    # -- raising, in the caller's transaction ------------------------------------------------------

    async def raise_alert(self, db: AsyncSession, incident: Incident, kind: str, ref_id: int,
                          unit_paths: Sequence[str], summary: dict[str, Any]) -> int:
        """The alert, a receipt per active duty room of ``unit_paths``, a webhook delivery per
        notification group that hears of this incident. Returns the alert's id (for :meth:`push`)."""
        now = self.clock()
        alert = Alert(incident_id=incident.id, kind=kind, ref_id=ref_id, summary=summary, created_at=now)
        db.add(alert)
        await db.flush()
        if unit_paths:
            rooms = (await db.execute(select(DutyRoom.id, Unit.path).join(Unit, Unit.id == DutyRoom.unit_id)
                                      .where(Unit.path.in_(list(unit_paths)), DutyRoom.active, Unit.active)
                                      .order_by(DutyRoom.id))).all()
            for room_id, path in rooms:
                db.add(AlertReceipt(alert_id=alert.id, duty_room_id=room_id, unit_path=path))
        if self.webhook.url:
            groups = (await db.execute(select(NotificationGroup).where(NotificationGroup.active)
                                       .order_by(NotificationGroup.id))).scalars()
            for group in groups:
                if not incident.unit_path.startswith(group.unit_path):
                    continue
                if (group.categories and incident.category not in group.categories) or (
                        group.levels and incident.level not in group.levels):
                    continue
                db.add(WebhookDelivery(alert_id=alert.id, group_id=group.id, next_attempt_at=now, created_at=now,
                                       payload=self._payload(alert, incident, group, summary)))
        await db.flush()
        return alert.id

    @staticmethod
    def _payload(alert: Alert, incident: Incident, group: NotificationGroup, summary: dict[str, Any]
                 ) -> dict[str, Any]:
        return {
            "event": f"incident.{alert.kind}", "alert_id": alert.id,
            "incident": {"id": incident.id, "title": incident.title, "category": incident.category,
                         "level": incident.level, "unit": summary.get("unit", "")},
            "group": {"id": group.id, "name": group.name},
            "recipients": group.members,
            "text": render_template(group.template, summary),
        }

    # -- after the commit: consoles and the sender ---------------------------------------------------

    async def push(self, alert_id: int) -> int:
        """Send the alert to every console of its rooms that is connected now; returns how many
        rooms were reached. Wakes the webhook sender."""
        self._wake.set()
        reached = []
        async with self.sessionmaker() as db:
            alert = (await db.execute(select(Alert).where(Alert.id == alert_id)
                                      .options(selectinload(Alert.receipts)))).scalar_one_or_none()
            if alert is None:
                return 0
            for receipt in alert.receipts:
                message = self._message(alert, receipt)
                tag = console_tag(receipt.duty_room_id)
                if self.conference is not None and self.conference.notify_tagged(tag, message):
                    reached.append(receipt.id)
        if reached:
            await self._delivered(reached)
        return len(reached)

    async def _delivered(self, receipt_ids: list[int]) -> None:
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            for receipt in (await db.execute(select(AlertReceipt).where(
                    AlertReceipt.id.in_(receipt_ids), AlertReceipt.delivered_at.is_(None)))).scalars():
                receipt.delivered_at = now

    @staticmethod
    def _message(alert: Alert, receipt: AlertReceipt) -> dict[str, Any]:
        return {"type": "incident_alert", "receipt_id": receipt.id, "alert_id": alert.id, "kind": alert.kind,
                "incident_id": alert.incident_id, "at": as_utc(alert.created_at).isoformat(),
                "acknowledged_at": (as_utc(receipt.acknowledged_at).isoformat()
                                    if receipt.acknowledged_at else None), **alert.summary}

    # -- consoles: what is pending, acknowledging ------------------------------------------------------

    async def pending(self, who: Principal) -> list[dict[str, Any]]:
        """A console's unacknowledged alerts of the last days, newest first (marked shown)."""
        if who.kind != "device" or who.duty_room_id is None:
            raise Forbidden("alert.consoles_only")
        since = self.clock() - dt.timedelta(days=PENDING_DAYS)
        async with self.sessionmaker() as db:
            rows = (await db.execute(
                select(AlertReceipt, Alert).join(Alert, Alert.id == AlertReceipt.alert_id)
                .where(AlertReceipt.duty_room_id == who.duty_room_id, AlertReceipt.acknowledged_at.is_(None),
                       Alert.created_at >= since)
                .order_by(Alert.created_at.desc(), Alert.id.desc()).limit(PENDING_LIMIT))).all()
        if rows:
            await self._delivered([receipt.id for receipt, _ in rows if receipt.delivered_at is None])
        return [self._message(alert, receipt) for receipt, alert in rows]

    async def acknowledge(self, who: Principal, receipt_id: int) -> dict[str, Any]:
        """确认收到: clicked on the console of the receipt's duty room; the first click stands."""
        if who.kind != "device" or who.duty_room_id is None:
            raise Forbidden("alert.consoles_only")
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            receipt = await db.get(AlertReceipt, receipt_id, with_for_update=True)
            if receipt is None or receipt.duty_room_id != who.duty_room_id:
                raise NotFound("alert.not_found", id=receipt_id)
            alert = await db.get(Alert, receipt.alert_id)
            assert alert is not None
            if receipt.acknowledged_at is None:
                receipt.acknowledged_at, receipt.acknowledged_by_device = now, who.id
                if receipt.delivered_at is None:
                    receipt.delivered_at = now
                db.add(IncidentEvent(incident_id=alert.incident_id, at=now, kind="alert_acknowledged", actor=who.name,
                                     detail={"alert_id": alert.id, "alert_kind": alert.kind, "ref_id": alert.ref_id,
                                             "duty_room_id": receipt.duty_room_id}))
                Directory.audit(db, who, "acknowledge", "incident_alert", alert.id, receipt.unit_path,
                                receipt=receipt.id)
            return self._message(alert, receipt)

    @staticmethod
    async def receipts(db: AsyncSession, incident_id: int) -> list[dict[str, Any]]:
        """An incident's alerts and, for each, which rooms were shown it and who acknowledged (for its page)."""
        alerts = (await db.execute(select(Alert).where(Alert.incident_id == incident_id)
                                   .options(selectinload(Alert.receipts)).order_by(Alert.id))).scalars().all()
        room_ids = {r.duty_room_id for a in alerts for r in a.receipts}
        names = dict((await db.execute(select(DutyRoom.id, DutyRoom.name).where(DutyRoom.id.in_(room_ids)))).all()) \
            if room_ids else {}

        def when(value: dt.datetime | None) -> str | None:
            return as_utc(value).isoformat() if value is not None else None

        return [{"id": a.id, "kind": a.kind, "ref_id": a.ref_id, "at": when(a.created_at), "rooms": [
            {"duty_room_id": r.duty_room_id, "name": names.get(r.duty_room_id, ""),
             "delivered_at": when(r.delivered_at), "acknowledged_at": when(r.acknowledged_at)}
            for r in a.receipts]} for a in alerts]

    # -- notification groups ---------------------------------------------------------------------------

    @staticmethod
    def _manager(who: Principal) -> None:
        if who.kind != "account" or not who.may("incidents.manage"):
            raise Forbidden("alert.no_group_right")

    async def groups(self, who: Principal) -> list[dict[str, Any]]:
        self._manager(who)
        async with self.sessionmaker() as db:
            groups = (await db.execute(select(NotificationGroup).where(within(NotificationGroup.unit_path, who))
                                       .order_by(NotificationGroup.id))).scalars().all()
        return [self._group_json(g) for g in groups]

    async def save_group(self, who: Principal, data: Mapping[str, Any], group_id: int | None = None) -> dict[str, Any]:
        """Create a group for ``who``'s unit (or ``unit_id`` below it), or change one in scope."""
        self._manager(who)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 or unsafe_reason(name):
            raise Invalid("alert.group_name", field="name")
        fields = {
            "name": name.strip(),
            "categories": _choices(data.get("categories"), {c.value for c in Category}, "categories"),
            "levels": _choices(data.get("levels"), {v.value for v in Level}, "levels"),
            "template": check_template(data.get("template")),
            "members": _members(data.get("members", [])),
        }
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise Invalid("alert.group_active", field="active")
        async with self.sessionmaker.begin() as db:
            if group_id is None:
                unit_id = data.get("unit_id", who.unit_id)
                unit = await db.get(Unit, unit_id) if isinstance(unit_id, int) and not isinstance(unit_id, bool) \
                    else None
                if unit is None or not who.covers(unit.path):
                    raise Invalid("alert.group_unit", field="unit_id")
                group = NotificationGroup(unit_id=unit.id, unit_path=unit.path, active=active, **fields)
                db.add(group)
                await db.flush()
                Directory.audit(db, who, "create", "notification_group", group.id, unit.path)
            else:
                found = await db.get(NotificationGroup, group_id)
                if found is None or not who.covers(found.unit_path):
                    raise NotFound("alert.group_not_found", id=group_id)
                group = found
                for key, value in fields.items():
                    setattr(group, key, value)
                group.active = active
                Directory.audit(db, who, "update", "notification_group", group.id, group.unit_path)
            return self._group_json(group)

    @staticmethod
    def _group_json(g: NotificationGroup) -> dict[str, Any]:
        return {"id": g.id, "unit_id": g.unit_id, "name": g.name, "categories": g.categories, "levels": g.levels,
                "template": g.template, "members": g.members, "active": g.active}

    async def deliveries(self, who: Principal, status: str | None = None) -> list[dict[str, Any]]:
        """The webhook's log for groups in ``who``'s scope: each delivery and every attempt."""
        self._manager(who)
        query = (select(WebhookDelivery).join(NotificationGroup, NotificationGroup.id == WebhookDelivery.group_id)
                 .where(within(NotificationGroup.unit_path, who)).order_by(WebhookDelivery.id.desc()).limit(200))
        if status is not None:
            if status not in ("pending", "delivered", "failed"):
                raise Invalid("alert.delivery_status", field="status")
            query = query.where(WebhookDelivery.status == status)
        async with self.sessionmaker() as db:
            deliveries = (await db.execute(query)).scalars().all()
            ids = [d.id for d in deliveries]
            attempts = (await db.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                                         .order_by(WebhookAttempt.id))).scalars().all() if ids else []

        def when(value: dt.datetime | None) -> str | None:
            return as_utc(value).isoformat() if value is not None else None

        by_delivery: dict[int, list[dict[str, Any]]] = {}
        for a in attempts:
            by_delivery.setdefault(a.delivery_id, []).append({
                "number": a.number, "at": when(a.at), "status_code": a.status_code, "error": a.error,
                "duration_ms": a.duration_ms})
        return [{"id": d.id, "alert_id": d.alert_id, "group_id": d.group_id, "status": d.status,
                 "attempts": by_delivery.get(d.id, []), "next_attempt_at": when(d.next_attempt_at),
                 "created_at": when(d.created_at), "finished_at": when(d.finished_at)} for d in deliveries]

    # -- the webhook sender ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver what is due, then sleep until the next is due or a new alert wakes us. Runs until cancelled."""
        if not self.webhook.url:
            return
        timeout = aiohttp.ClientTimeout(total=self.webhook.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                self._wake.clear()
                try:
                    wait = await self.send_due(http)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("webhook sender failed; trying again shortly")
                    wait = self.webhook.backoff
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def send_due(self, http: aiohttp.ClientSession) -> float:
        """Try every delivery that is due; returns seconds until the next one is (at most a minute)."""
        now = self.clock()
        async with self.sessionmaker() as db:
            due = (await db.execute(select(WebhookDelivery.id).where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at).limit(50))).scalars().all()
        for delivery_id in due:
            await self._attempt(http, delivery_id)
        async with self.sessionmaker() as db:
            upcoming = (await db.execute(select(WebhookDelivery.next_attempt_at).where(
                WebhookDelivery.status == "pending").order_by(WebhookDelivery.next_attempt_at).limit(1))
                ).scalar_one_or_none()
        if upcoming is None:
            return 60.0
        return min(60.0, max(0.05, (as_utc(upcoming) - self.clock()).total_seconds()))

    async def _attempt(self, http: aiohttp.ClientSession, delivery_id: int) -> None:
        async with self.sessionmaker() as db:
            delivery = await db.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return
            payload = {"delivery_id": delivery.id, **delivery.payload}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Dutycall-Delivery": str(delivery_id),
                   "X-Dutycall-Timestamp": timestamp,
                   "X-Dutycall-Signature": sign(self.webhook.secret, timestamp, body)}
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            async with http.post(self.webhook.url, data=body, headers=headers, allow_redirects=False) as response:
                status_code = response.status
                await response.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a refused connection, a timeout, a reset: all retried
            error = f"{type(exc).__name__}: {exc}"[:256]
        duration_ms = round((time.perf_counter() - started) * 1000)
        ok = status_code is not None and 200 <= status_code < 300
        now = self.clock()
        async with self.sessionmaker.begin() as db:
            delivery = await db.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                return
            delivery.attempts += 1
            db.add(WebhookAttempt(delivery_id=delivery_id, number=delivery.attempts, at=now, status_code=status_code,
                                  error=error, duration_ms=duration_ms))
            if ok:
                delivery.status, delivery.finished_at = "delivered", now
            elif delivery.attempts >= self.webhook.max_attempts:
                delivery.status, delivery.finished_at = "failed", now
                logger.warning("webhook delivery %d given up after %d attempts", delivery_id, delivery.attempts)
            else:
                delay = min(BACKOFF_CAP, self.webhook.backoff * 2 ** (delivery.attempts - 1))
                delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
        if not ok:
            logger.info("webhook delivery %d attempt failed (%s)", delivery_id, status_code or error)
