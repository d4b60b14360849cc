"""Live alerting (incidents/alerting.py): who is alerted by a report and by an instruction, a
console's pending alerts and its acknowledgement on the timeline, notification groups, the
signed webhook retried after a receiver fails twice (a real HTTP receiver on loopback), and a
console in a real Chromium that shows the alert, sounds a tone and is acknowledged by a click."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import async_playwright
from sqlalchemy import select

from dutycall.errors import Forbidden, Invalid, NotFound
from dutycall.incidents.alerting import render_template, sign
from dutycall.incidents.models import AlertReceipt, WebhookAttempt, WebhookDelivery
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import ALERTING, INCIDENTS

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config
from .test_exports import Api
from .test_incidents import first_report
from .utils import wait_for

SECRET = "test-webhook-secret-0123456789"


@dataclass
class Receiver:
    """The site's SMS gateway, as a real HTTP server: fails the first ``failures`` requests."""

    failures: list[int] = field(default_factory=lambda: [500, 503])
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.failures:
            return web.Response(status=self.failures.pop(0), text="gateway busy")
        return web.json_response({"ok": True})


@dataclass
class City:
    app: Any
    base: str
    ids: dict[str, int]
    rooms: dict[str, int]
    tokens: dict[str, str]
    who: dict[str, Any]
    receiver: Receiver

    def clock(self) -> dt.datetime:
        return self.app[INCIDENTS].clock()

    async def receipts(self) -> list[AlertReceipt]:
        async with self.app[INCIDENTS].sessionmaker() as db:
            return list((await db.execute(select(AlertReceipt).order_by(AlertReceipt.id))).scalars())


@pytest.fixture
async def city(aiohttp_server, database_url) -> City:
    """City → D1 → S1 and city → D2, each with a duty room and its console; a duty officer in S1,
    a host in D1, a city leader; the webhook pointed at a receiver on loopback."""
    receiver = Receiver()
    gateway = web.Application()
    gateway.router.add_post("/sms", receiver.handle)
    gateway_server = await aiohttp_server(gateway, host="127.0.0.1")
    app = create_app(make_config(database_url, incident_interval=3600,
                                 alert_webhook_url=f"http://127.0.0.1:{gateway_server.port}/sms",
                                 alert_webhook_secret=SECRET, alert_webhook_backoff=0.2))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {"city": admin.unit_id}
    for code, name, parent in (("D1", "东湖区", "city"), ("S1", "东湖街道", "D1"), ("D2", "西山区", "city")):
        ids[code] = (await directory.create_unit(admin, {"code": code, "name": name, "parent_id": ids[parent],
                                                         "kind": "street" if code[0] == "S" else "district"}))["id"]
    rooms, tokens = {}, {}
    for code in ("city", "D1", "S1", "D2"):
        room = await directory.create_room(admin, {"unit_id": ids[code], "name": f"{code}值班室"})
        rooms[code] = room["id"]
        tokens[code] = (await directory.create_device_credential(admin, room["id"], "console"))["token"]
    who = {"admin": admin}
    for username, role, unit in (("officerS1", "duty_officer", "S1"), ("hostD1", "host", "D1"),
                                 ("leader", "leader", "city")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": ids[unit]})
        who[username] = (await directory.sign_in(username, "password-1"))[1]
    for code in rooms:
        who[f"console{code}"] = (await directory.device_sign_in(tokens[code]))[1]
    return City(app, f"http://127.0.0.1:{server.port}", ids, rooms, tokens, who, receiver)


async def test_a_report_alerts_the_units_above_and_an_instruction_the_addressed_units(city):
    incidents, alerting = city.app[INCIDENTS], city.app[ALERTING]
    created = await incidents.create(city.who["officerS1"], first_report(city))
    receipts = await city.receipts()
    # Up the chain (district and city), never the reporting street itself nor another district.
    assert sorted(r.duty_room_id for r in receipts) == sorted([city.rooms["D1"], city.rooms["city"]])
    assert all(r.delivered_at is None for r in receipts)  # no console was connected

    pending = await alerting.pending(city.who["consoleD1"])
    assert [(p["kind"], p["title"], p["stage_code"], p["level"], p["unit"]) for p in pending] == [
        ("report", "东湖路燃气泄漏", "initial", "III级（较大）", "东湖街道")]
    assert await alerting.pending(city.who["consoleS1"]) == []
    assert await alerting.pending(city.who["consoleD2"]) == []
    with pytest.raises(Forbidden):
        await alerting.pending(city.who["hostD1"])  # a person's account: the consoles are alerted

    receipt_id = pending[0]["receipt_id"]
    with pytest.raises(NotFound):  # another room's copy
        await alerting.acknowledge(city.who["consoleD2"], receipt_id)
    acknowledged = await alerting.acknowledge(city.who["consoleD1"], receipt_id)
    first_time = acknowledged["acknowledged_at"]
    assert first_time is not None
    again = await alerting.acknowledge(city.who["consoleD1"], receipt_id)
    assert again["acknowledged_at"] == first_time  # the first click stands
    assert await alerting.pending(city.who["consoleD1"]) == []

    detail = await incidents.detail(city.who["hostD1"], created["id"])
    acks = [e for e in detail["timeline"] if e["kind"] == "alert_acknowledged"]
    assert len(acks) == 1 and acks[0]["actor"] == "D1值班室"
    rooms = {r["name"]: r for r in detail["alerts"][0]["rooms"]}
    assert rooms["D1值班室"]["acknowledged_at"] == first_time and rooms["city值班室"]["acknowledged_at"] is None

    # A follow-up goes up the same chain; an instruction only to the units it addresses.
    await incidents.report(city.who["officerS1"], created["id"], {"changes": "两名伤员已送医。", "course": "管道已关闭。",
                                                                 "reporter": "张三"})
    followup = (await alerting.pending(city.who["consoleD1"]))[0]
    assert (followup["stage_code"], followup["number"], followup["text"]) == ("followup", 1, "两名伤员已送医。")
    await incidents.instruct(city.who["leader"], created["id"], {"text": "全力救治伤员，查明原因。",
                                                                 "unit_ids": [city.ids["S1"]]})
    instruction = (await alerting.pending(city.who["consoleS1"]))[0]
    assert (instruction["kind"], instruction["text"], instruction["from"]) == ("instruction", "全力救治伤员，查明原因。",
                                                                             "leader")
    assert [p["kind"] for p in await alerting.pending(city.who["consoleD2"])] == []


async def test_the_webhook_is_signed_retried_after_the_receiver_fails_twice_and_logged(city):
    alerting = city.app[ALERTING]
    api = await Api.account(city.base, "admin", ADMIN_PASSWORD)
    try:
        status, group = await api.call("POST", "/api/notification-groups", {
            "name": "事故灾难短信组", "categories": ["accident"], "levels": [],
            "template": "【$unit】$category $level：$title，$place。伤 $injured 人。",
            "members": [{"name": "应急局值班", "phone": "+86 139 0000 0001"}]})
        assert status == 201, group
        status, other = await api.call("POST", "/api/notification-groups", {
            "name": "自然灾害短信组", "categories": ["natural"], "template": "$title", "members": []})
        assert status == 201
        for bad, field_name in (({"template": "${title.__class__}"}, "template"), ({"template": "$secret"}, "template"),
                                ({"categories": ["alien"]}, "categories"), ({"levels": "III"}, "levels"),
                                ({"members": [{"name": "x", "phone": "call me"}]}, "members"), ({"name": ""}, "name")):
            status, body = await api.call("POST", "/api/notification-groups",
                                          {"name": "组", "template": "$title", **bad})
            assert status == 422 and body["error"]["errors"][0]["field"] == field_name, (bad, body)
        status, groups = await api.call("GET", "/api/notification-groups")
        assert [g["name"] for g in groups] == ["事故灾难短信组", "自然灾害短信组"]
    finally:
        await api.close()

    # A hostile title is only ever text: no placeholder in it is expanded.
    await city.app[INCIDENTS].create(city.who["officerS1"], first_report(city, title="燃气泄漏 $secret ${unit}"))

    async def delivered() -> WebhookDelivery | None:
        async with alerting.sessionmaker() as db:
            return (await db.execute(select(WebhookDelivery).where(WebhookDelivery.status == "delivered"))
                    ).scalar_one_or_none()

    delivery = await wait_for(delivered, timeout=30, what="the webhook delivery")
    assert len(city.receiver.requests) == 3  # two failures, then delivered; the natural group got nothing
    ids = {r["headers"]["X-Dutycall-Delivery"] for r in city.receiver.requests}
    assert ids == {str(delivery.id)}  # the same delivery each time: the gateway can drop repeats
    for request in city.receiver.requests:
        timestamp = request["headers"]["X-Dutycall-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + request["body"],
                                        hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request["headers"]["X-Dutycall-Signature"], expected)
        assert request["headers"]["X-Dutycall-Signature"] == sign(SECRET, timestamp, request["body"])
    payload = json.loads(city.receiver.requests[-1]["body"])
    assert payload["group"] == {"id": group["id"], "name": "事故灾难短信组"}
    assert payload["recipients"] == [{"name": "应急局值班", "phone": "+86 139 0000 0001"}]
    assert payload["text"] == "【东湖街道】事故灾难 III级（较大）：燃气泄漏 $secret ${unit}，东湖路 12 号。伤 2 人。"
    assert render_template("$a$b", {"a": "$b", "b": "x"}) == "$bx"  # one pass, never recursive

    async with alerting.sessionmaker() as db:
        attempts = list((await db.execute(select(WebhookAttempt).order_by(WebhookAttempt.id))).scalars())
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert attempts[1].at - attempts[0].at >= dt.timedelta(seconds=0.2)  # backed off
    assert attempts[2].at - attempts[1].at >= dt.timedelta(seconds=0.4)  # doubled

    log = await alerting.deliveries(city.who["admin"])
    assert [(d["status"], [a["status_code"] for a in d["attempts"]]) for d in log] == [("delivered", [500, 503, 200])]
    with pytest.raises(Forbidden):
        await alerting.deliveries(city.who["officerS1"])
    with pytest.raises(Invalid):
        await alerting.deliveries(city.who["admin"], "nonsense")


TONES_JS = """
window.__tones = 0;
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__tones += 1; return original.call(this); };
"""


async def test_a_console_in_chromium_shows_the_alert_with_a_tone_and_it_is_acknowledged_by_a_click(city, tmp_path):
    incidents = city.app[INCIDENTS]
    # Raised while the console is away: shown when it connects.
    await incidents.create(city.who["officerS1"], first_report(city, title="东湖路燃气泄漏"))
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        try:
            page = await browser.new_page()
            await page.add_init_script(TONES_JS)
            await page.goto(f"{city.base}/?device={city.tokens['D1']}")
            card = page.locator(".alert", has_text="突发事件初报")
            await card.wait_for(timeout=30000)
            assert "东湖路燃气泄漏" in await card.inner_text()
            # Raised while it is connected: arrives over the socket at once.
            await wait_for(lambda: page.evaluate("() => !!(window.dutyConsole && dutyConsole.signalling.ws)"),
                           timeout=30, what="the console's socket")
            await incidents.instruct(city.who["leader"], (await incidents.find(city.who["leader"], {}))[0]["id"],
                                     {"text": "<b>立即</b>核实伤亡情况", "unit_ids": [city.ids["D1"]]})
            live = page.locator(".alert", has_text="<b>立即</b>核实伤亡情况")  # shown as text, never markup
            await live.wait_for(timeout=30000)
            assert await page.locator(".alert b").count() == 0
            assert await wait_for(lambda: page.evaluate("() => window.__tones > 0"), what="a tone")
            receipts = [r for r in await city.receipts() if r.duty_room_id == city.rooms["D1"]]
            assert len(receipts) == 2 and all(r.delivered_at is not None for r in receipts)

            await card.get_by_role("button", name="确认收到").click()
            await live.get_by_role("button", name="确认收到").click()
            await page.locator(".alert").first.wait_for(state="detached", timeout=30000)

            async def all_acknowledged() -> bool:
                mine = [r for r in await city.receipts() if r.duty_room_id == city.rooms["D1"]]
                return all(r.acknowledged_at is not None for r in mine)

            await wait_for(all_acknowledged, what="both acknowledgements recorded")
            assert await page.locator("#alerts").is_hidden()
            assert await page.evaluate("() => alerts.beeper === null")  # the tone stopped with the last one

            # The district host's incident page says which rooms were shown each alert and acknowledged it.
            host = await (await browser.new_context(timezone_id="Asia/Shanghai")).new_page()
            errors: list[str] = []
            host.on("pageerror", lambda exc: errors.append(str(exc)))
            iid = (await incidents.find(city.who["hostD1"], {}))[0]["id"]
            await host.goto(f"{city.base}/incidents?id={iid}")
            await host.fill("#username", "hostD1")
            await host.fill("#password", "password-1")
            await host.click("#sign-in")
            acked = host.locator(".inc-alerts li.acked", has_text="D1值班室")
            await acked.first.wait_for(timeout=30000)
            assert await acked.count() == 2 and "已确认" in await acked.first.inner_text()
            assert await host.locator(".inc-alerts li.pending", has_text="city值班室").count() == 1
            timeline = await host.locator(".inc-timeline").inner_text()
            assert "值班室终端确认收到报告提醒" in timeline and "值班室终端确认收到批示提醒" in timeline
            assert errors == []
        finally:
            await browser.close()
