"""The incident page's 设备接入 section (static/incident-devices.js), in Chromium as a host: issue a
WHIP token (shown once) that an encoder then publishes with, see it used, revoke it (its stream
ends); add an RTSP camera whose password never reaches the page, see it retrying while the
camera is unreachable, stop it. Screenshot: /tmp/incident-devices.png (or DUTYCALL_SCREENSHOTS)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket

import pytest
from aiortc import RTCSessionDescription
from playwright.async_api import async_playwright

from dutycall.media.naming import footage_room
from dutycall.media.rtsp import AllowPolicy
from dutycall.web.keys import CONFERENCE
from dutycall.web.rtsp import RTSP

from .browser import launch
from .conftest import ADMIN_PASSWORD
from .test_whip import issue, publisher, whip, whip_post  # noqa: F401  (whip: the fixture)
from .utils import wait_for

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", "/tmp"))
WAIT = 30000


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def chromium(tmp_path):
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        yield browser
        await browser.close()


async def test_a_host_connects_an_encoder_and_a_camera_from_the_incident_page(whip, chromium):  # noqa: F811
    base, iid, app, http = whip["base"], whip["incident_id"], whip["app"], whip["http"]
    app[RTSP].policy = AllowPolicy("127.0.0.0/8:*")  # the test's unreachable "camera" is on loopback
    context = await chromium.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Shanghai",
                                         locale="zh-CN")
    page = await context.new_page()
    page.on("pageerror", lambda exc: print(f"page error: {exc}"))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{base}/incidents?id={iid}")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    devices = page.locator('section[data-section="inc_devices"]')
    await devices.wait_for(timeout=WAIT)
    assert await devices.locator(".inc-whip-tokens .inc-empty").inner_text() == "暂无接入令牌"

    # A token for the drone: shown once, with the endpoint to enter in the device.
    await devices.locator(".inc-whip-form input[name=label]").fill("无人机一号")
    await devices.locator(".inc-whip-form input[name=hours]").fill("2")
    await devices.locator(".inc-whip-form button[type=submit]").click()
    await devices.locator(".inc-whip-token").wait_for(timeout=WAIT)
    token = await devices.locator(".inc-whip-token").input_value()
    assert await devices.locator(".inc-whip-endpoint").input_value() == f"{base}/api/whip"
    await page.locator(".inc-whip-tokens li[data-state=valid]").wait_for(timeout=WAIT)

    # The drone publishes with it.
    pc, _ = publisher()
    await pc.setLocalDescription(await pc.createOffer())
    resp = await whip_post(http, base, token, pc.localDescription.sdp)
    assert resp.status == 201
    await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
    conference = app[CONFERENCE]
    room = footage_room(iid)
    await wait_for(lambda: room in conference.rooms and conference.rooms[room].publications, timeout=30,
                   what="the drone's publication")

    # An RTSP camera that cannot be reached yet: its password never comes back to the page.
    port = unused_port()
    form = devices.locator(".inc-rtsp-form")
    await form.locator("input[name=label]").fill("路口监控 3 号")
    await form.locator("input[name=url]").fill(f"rtsp://cam:s3cret-pw@127.0.0.1:{port}/live")
    await form.locator("button[type=submit]").click()
    await page.locator(".inc-rtsp-sources li[data-state]").wait_for(timeout=WAIT)
    assert await form.locator("input[name=url]").input_value() == ""  # cleared: it held the password
    await page.reload()
    devices = page.locator('section[data-section="inc_devices"]')
    await page.locator(".inc-whip-tokens li[data-state=valid]").wait_for(timeout=WAIT)
    await page.locator(".inc-rtsp-sources li[data-state=retrying]").wait_for(timeout=WAIT)
    camera = devices.locator(".inc-rtsp-sources li").first
    text = await camera.inner_text()
    assert "路口监控 3 号" in text and "重试" in text and f"rtsp://***@127.0.0.1:{port}/live" in text, text
    assert "s3cret-pw" not in await page.content()
    assert "最近推流" in await devices.locator(".inc-whip-tokens li").first.inner_text()
    await devices.scroll_into_view_if_needed()
    await page.screenshot(path=str(SHOTS / "incident-devices.png"), full_page=False)

    # Stop the camera; revoke the token: the drone's stream ends.
    await camera.locator("button.stop").click()
    await page.locator(".inc-rtsp-sources li[data-state=stopped]").wait_for(timeout=WAIT)
    await devices.locator(".inc-whip-tokens li button.revoke").click()
    await page.locator(".inc-whip-tokens li[data-state=revoked]").wait_for(timeout=WAIT)
    await wait_for(lambda: room not in conference.rooms or not conference.rooms[room].publications, timeout=30,
                   what="the drone's stream ended")

    # English, the same section.
    await page.click("#lang")
    await page.locator("section[data-section=inc_devices] h4", has_text="IP cameras (RTSP)").wait_for(timeout=WAIT)
    await pc.close()
    await context.close()
