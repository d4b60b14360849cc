"""Field streaming (media/field.py, web/field.py, static/field.*): a host makes a one-time link on
the incident page; a phone-sized Chromium opens it, presses 开始直播 and its rear camera reaches
the incident's footage room and the archive; a second device is refused; the page publishes
again by itself after its publication is cut server-side; revoking ends the stream; an expired
link is refused and its live stream ends. API: scope, validation, hashes only, zh/en refusals.

Screenshots go to /tmp/field-*.png (or DUTYCALL_SCREENSHOTS).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import pathlib
import re
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from playwright.async_api import async_playwright

from dutycall.directory.models import utcnow
from dutycall.media.models import FieldLink, FootageSegment, FootageSource
from dutycall.media.naming import footage_room
from dutycall.web.field import FIELD
from dutycall.web.footage import ARCHIVE
from dutycall.web.keys import DIRECTORY, INCIDENTS

from .browser import launch
from .conftest import ADMIN_PASSWORD
from .test_recording import ffprobe, incident_report
from .test_whip import Api, rows, timeline
from .utils import wait_for

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
ZONE = "Asia/Shanghai"
SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", "/tmp"))
#: Browser waits (ms): generous, for a busy machine.
WAIT = 30000


@pytest.fixture
async def field(server):
    app = server.app
    base = f"http://127.0.0.1:{server.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    district = await directory.create_unit(admin, {"code": "D2", "name": "西区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    for username, role, unit in (("hostD2", "host", district["id"]), ("officer", "duty_officer", admin.unit_id)):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": unit})
    incident = await app[INCIDENTS].create(admin, incident_report())
    host = await Api(base).sign_in("admin", ADMIN_PASSWORD)
    http = aiohttp.ClientSession()
    yield {"app": app, "base": base, "incident_id": incident["id"], "host": host, "http": http}
    app[FIELD].clock = utcnow
    await http.close()
    await host.close()


async def make(api: Api, incident_id: int, label: str = "消防一组手机", **extra: Any) -> dict[str, Any]:
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/field-links", {"label": label, **extra})
    assert status == 201, body
    return body


async def phone_call(http: aiohttp.ClientSession, base: str, method: str, path: str, secret: str,
                     claim: str | None = None, lang: str = "zh-CN", **kwargs: Any) -> tuple[int, Any]:
    headers = {"X-Field-Link": secret, "X-Dutycall-Lang": lang, **kwargs.pop("headers", {})}
    if claim:
        headers["X-Field-Claim"] = claim
    resp = await http.request(method, f"{base}{path}", headers=headers, **kwargs)
    body = await resp.read()
    return resp.status, (await resp.json() if resp.content_type == "application/json" else body)


def secret_of(url: str) -> str:
    return url.split("#", 1)[1]


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"field-{name}.png"), full_page=True)


# -- the API ---------------------------------------------------------------------------------------


async def test_links_are_made_by_hosts_in_scope_shown_once_and_stored_hashed(field):
    base, iid, host, http, app = field["base"], field["incident_id"], field["host"], field["http"], field["app"]
    made = await make(host, iid, minutes=30)
    assert re.fullmatch(rf"{re.escape(base)}/field#[A-Za-z0-9_-]{{43}}", made["url"]), made["url"]  # 256 bits
    assert made["valid"] and not made["live"] and made["claimed_at"] is None
    svg = base64.b64decode(made["qr_svg"].removeprefix("data:image/svg+xml;base64,"))
    assert made["qr_svg"].startswith("data:image/svg+xml;base64,") and b"<svg" in svg and b"<path" in svg
    expires = dt.datetime.fromisoformat(made["expires_at"]) - dt.datetime.fromisoformat(made["created_at"])
    assert expires == dt.timedelta(minutes=30)
    secret = secret_of(made["url"])
    stored = (await rows(app, FieldLink, id=made["id"]))[0]
    assert stored.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str({c.name: getattr(stored, c.name) for c in FieldLink.__table__.columns})
    status, listed = await host.call("GET", f"/api/incidents/{iid}/field-links")
    assert status == 200 and [link["id"] for link in listed] == [made["id"]]
    assert "url" not in listed[0] and "qr_svg" not in listed[0] and secret not in str(listed)

    other_district = await Api(base).sign_in("hostD2", "password-1")
    officer = await Api(base).sign_in("officer", "password-1")
    try:
        assert (await other_district.call("POST", f"/api/incidents/{iid}/field-links", {"label": "x"}))[0] == 404
        assert (await other_district.call("GET", f"/api/incidents/{iid}/field-links"))[0] == 404
        assert (await other_district.call("DELETE", f"/api/field-links/{made['id']}"))[0] == 404
        assert (await officer.call("POST", f"/api/incidents/{iid}/field-links", {"label": "x"}))[0] == 403
        assert (await officer.call("DELETE", f"/api/field-links/{made['id']}"))[0] == 403
    finally:
        await other_district.close()
        await officer.close()
    for bad in ({"label": ""}, {"label": "a\u202eb"}, {"label": "x" * 65}, {"label": "x", "minutes": 4},
                {"label": "x", "minutes": True}, {"label": "x", "minutes": 1441}, {"label": "x", "minutes": "60"}):
        status, body = await host.call("POST", f"/api/incidents/{iid}/field-links", bad)
        assert status == 422, bad
    assert (await host.call("POST", "/api/incidents/99999/field-links", {"label": "x"}))[0] == 404

    # The page is served without the secret (it stays in the fragment) and with no Referer.
    page = await http.get(f"{base}/field")
    assert page.status == 200 and "no-referrer" in page.headers["Referrer-Policy"]
    assert "开始直播" in await page.text()


async def test_one_device_claims_a_link_and_others_are_refused_in_their_language(field):
    base, iid, host, http, app = field["base"], field["incident_id"], field["host"], field["http"], field["app"]
    secret = secret_of((await make(host, iid))["url"])
    status, first = await phone_call(http, base, "POST", "/api/field/claim", secret)
    assert status == 200 and first["claim"] and len(first["claim"]) >= 43
    # The phone sees the title and level, nothing else of the incident.
    assert first["incident"] == {"title": "东湖路燃气泄漏", "level": "III"}
    assert "王五" not in str(first) and "东湖路 12 号" not in str(first)
    status, again = await phone_call(http, base, "POST", "/api/field/claim", secret, first["claim"])
    assert status == 200 and "claim" not in again
    status, other = await phone_call(http, base, "POST", "/api/field/claim", secret)
    assert status == 409 and "另一台设备" in other["error"]["message"]
    status, other = await phone_call(http, base, "POST", "/api/field/claim", secret, "forged", lang="en")
    assert status == 409 and "another device" in other["error"]["message"]
    offer = "v=0\r\n"
    status, other = await phone_call(http, base, "POST", "/api/field/publish", secret, "forged", data=offer.encode(),
                                     headers={"Content-Type": "application/sdp"})
    assert status == 409
    status, state = await phone_call(http, base, "GET", "/api/field/state", secret, first["claim"])
    assert status == 200 and state["live"] is False
    # The claiming phone's mistakes: not an offer, not SDP, nothing to stop.
    for body, kind, expected in ((b"v=0\r\nnot sdp", "application/sdp", 400), (b"{}", "application/json", 415),
                                 (b"\xff\xfe", "application/sdp", 400)):
        status, answer = await phone_call(http, base, "POST", "/api/field/publish", secret, first["claim"], data=body,
                                          headers={"Content-Type": kind})
        assert status == expected, (body, answer)
    assert (await phone_call(http, base, "DELETE", "/api/field/publish", secret, first["claim"]))[0] == 404
    assert not app[FIELD].sessions and await rows(app, FootageSource, incident_id=iid) == []
    stored = (await rows(app, FieldLink, incident_id=iid))[0]
    assert stored.claim_sha256 == hashlib.sha256(first["claim"].encode()).hexdigest()
    # Two phones opening a fresh link at the same moment: one claims it.
    racing = secret_of((await make(host, iid, label="另一部手机"))["url"])
    answers = await asyncio.gather(*(phone_call(http, base, "POST", "/api/field/claim", racing) for _ in range(4)))
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409]
    # Unknown links: 404; expired and revoked: 410, each saying why.
    assert (await phone_call(http, base, "POST", "/api/field/claim", "nope"))[0] == 404
    assert (await phone_call(http, base, "POST", "/api/field/claim", ""))[0] == 404
    app[FIELD].clock = lambda: utcnow() + dt.timedelta(minutes=121)
    status, body = await phone_call(http, base, "POST", "/api/field/claim", secret, first["claim"])
    assert status == 410 and "已过期" in body["error"]["message"]
    status, body = await phone_call(http, base, "GET", "/api/field/state", secret, first["claim"], lang="en")
    assert status == 410 and "expired" in body["error"]["message"]
    app[FIELD].clock = utcnow
    link_id = stored.id
    assert (await host.call("DELETE", f"/api/field-links/{link_id}"))[0] == 200
    status, body = await phone_call(http, base, "POST", "/api/field/publish", secret, first["claim"],
                                    data=offer.encode(), headers={"Content-Type": "application/sdp"})
    assert status == 410 and "撤销" in body["error"]["message"]
    status, listed = await host.call("GET", f"/api/incidents/{iid}/field-links")
    assert listed[0]["valid"] is False and listed[0]["revoked_at"] and listed[0]["claimed_at"]


# -- the phone page in Chromium ------------------------------------------------------------------


@pytest.fixture
async def chromium(tmp_path):
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        yield browser
        await browser.close()


async def phone(browser, url: str, name: str):
    context = await browser.new_context(viewport=PHONE, timezone_id=ZONE, locale="zh-CN", is_mobile=True,
                                        has_touch=True)
    page = await context.new_page()
    page.on("console", lambda msg: print(f"[{name}] {msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: print(f"[{name}] page error: {exc}"))
    await page.goto(url)
    return context, page


async def host_page(browser, base: str, incident_id: int):
    context = await browser.new_context(viewport=DESKTOP, timezone_id=ZONE, locale="zh-CN")
    page = await context.new_page()
    page.on("console", lambda msg: print(f"[host] {msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: print(f"[host] page error: {exc}"))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{base}/incidents?id={incident_id}")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector('section[data-section="inc_field"]', timeout=WAIT)
    return context, page


def live_session(app: Any, previous_source: int | None = None):
    def find():
        for session in app[FIELD].sessions.values():
            if session.source_id != previous_source:
                recorder = app[ARCHIVE].recorders.get(session.source_id)
                if recorder is not None and recorder.writer.written > 30:
                    return session
        return None
    return find


async def elapsed_at_least(page, text: str) -> bool:
    return (await page.text_content("#elapsed") or "") >= text


async def no_sideways_scroll(page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


async def test_a_phone_streams_through_a_link_made_on_the_incident_page(field, chromium):
    app, base, iid = field["app"], field["base"], field["incident_id"]
    host_context, host = await host_page(chromium, base, iid)
    section = 'section[data-section="inc_field"]'
    assert await host.text_content(f"{section} h3") == "现场视频链接"
    await host.fill(f'{section} [data-field="label"] input', "消防一组手机")
    await host.fill(f'{section} [data-field="minutes"] input', "30")
    await host.click(f"{section} button[type=submit]")
    await host.wait_for_selector(f"{section} img.inc-field-qr", timeout=WAIT)
    url = await host.input_value(f"{section} input.inc-field-url")
    assert "/field#" in url
    # The QR code on the page reads back as the link.
    png = await host.locator(f"{section} img.inc-field-qr").screenshot()
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert cv2.QRCodeDetector().detectAndDecode(image)[0] == url
    await host.wait_for_selector(f'{section} li[data-state="open"]', timeout=WAIT)
    await shot(host, "incident-section")

    # The phone: the incident's title and level, then 开始直播 → live, its frames archived.
    context, page = await phone(chromium, url, "phone")
    await page.wait_for_selector("#start:not([hidden])", timeout=WAIT)
    assert await page.text_content("#incident-title") == "东湖路燃气泄漏"
    assert await page.text_content("#level") == "III级（较大）"
    await page.click("#start")
    await page.wait_for_selector("#live:not([hidden])", timeout=WAIT)
    session = await wait_for(live_session(app), timeout=30, what="the phone's publication archived")
    first_source = session.source_id
    assert app[FIELD].conference.find_room(footage_room(iid)) is not None
    assert session.publication.codec_name("video")
    await wait_for(lambda: elapsed_at_least(page, "00:02"), timeout=30, what="the elapsed time counting")
    await no_sideways_scroll(page)
    await shot(page, "live")
    # The other camera: the same publication goes on (the track is replaced, nothing renegotiated).
    written = app[ARCHIVE].recorders[first_source].writer.written
    await page.click("#switch")
    await wait_for(lambda: app[ARCHIVE].recorders[first_source].writer.written > written + 30,
                   what="media after switching cameras")
    assert app[FIELD].sessions[session.link_id] is session
    await host.reload()
    await host.wait_for_selector(f'{section} li[data-state="live"]', timeout=WAIT)

    # A second device on the same link is refused, in words.
    other_context, other = await phone(chromium, url, "other")
    await other.wait_for_selector("#refused:not([hidden])", timeout=WAIT)
    assert "另一台设备" in await other.text_content("#refused")
    assert await other.is_hidden("#start")
    await shot(other, "refused-claimed")
    await other_context.close()

    # A brief drop: the server loses the publication; the page publishes again by itself.
    await session.publication.pc.close()
    again = await wait_for(live_session(app, first_source), timeout=30, what="the page published again")
    await page.wait_for_selector("#live:not([hidden])", timeout=WAIT)
    first = (await rows(app, FootageSource, id=first_source))[0]
    dropped = ("ended", "connection_closed", "connection_failed")  # the recorder may see its tracks end first
    assert first.kind == "field" and first.end_reason in dropped

    # Revoked on the incident page: the stream ends at once and the phone says so.
    await host.click(f'{section} li[data-state="live"] button.revoke')
    await wait_for(lambda: not app[FIELD].sessions, what="the revoked link's stream ended")
    await wait_for(lambda: app[FIELD].conference.find_room(footage_room(iid)) is None, what="the footage room closed")
    await page.wait_for_selector("#refused:not([hidden])", timeout=WAIT)
    assert "撤销" in await page.text_content("#refused")
    assert await page.is_hidden("#live")
    await shot(page, "revoked")
    await host.wait_for_selector(f'{section} li[data-state="revoked"]', timeout=WAIT)
    await context.close()
    await host_context.close()

    second = (await rows(app, FootageSource, id=again.source_id))[0]
    assert second.end_reason == "revoked"
    for source in (first, second):
        segments = await rows(app, FootageSegment, source_id=source.id)
        assert segments and all(s.status == "complete" for s in segments)
        probe = await asyncio.to_thread(ffprobe, app[ARCHIVE].settings.directory / segments[0].path)
        video = probe["streams"]["video"]
        assert probe["errors"] == "" and int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 10
    events = [(e["kind"], e.get("source_kind"), e.get("reason")) for e in await timeline(field["host"], iid)]
    assert [e[:2] for e in events] == [("footage_started", "field"), ("footage_stopped", "field")] * 2
    assert events[1][2] in dropped and events[3][2] == "revoked"


async def test_an_expired_link_ends_its_stream_and_is_refused(field, chromium):
    app, iid = field["app"], field["incident_id"]
    made = await make(field["host"], iid, minutes=5)
    context, page = await phone(chromium, made["url"], "phone")
    await page.click("#start", timeout=WAIT)
    session = await wait_for(live_session(app), timeout=30, what="the phone's publication archived")
    app[FIELD].clock = lambda: utcnow() + dt.timedelta(minutes=5, seconds=1)
    await wait_for(lambda: not app[FIELD].sessions, what="the sweep ended the expired link's stream")
    await page.wait_for_selector("#refused:not([hidden])", timeout=WAIT)
    assert "已过期" in await page.text_content("#refused")
    source = (await rows(app, FootageSource, id=session.source_id))[0]
    assert source.end_reason == "expired"
    # Opened again (the same phone): still refused, in English when asked.
    await page.goto(made["url"].replace("/field#", "/field?lang=en#"))
    await page.wait_for_selector("#refused:not([hidden])", timeout=WAIT)
    assert "expired" in await page.text_content("#refused")
    await no_sideways_scroll(page)
    await shot(page, "refused-expired")
    await context.close()
