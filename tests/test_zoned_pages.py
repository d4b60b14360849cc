"""Pages show and read times in the deployment's zone (``--timezone``), not the browser's: a
Chromium running with TZ=America/New_York against a server on Asia/Shanghai shows Beijing time
on the incident list and page, the roll-call history and plans, in zh-CN and en; and a time typed
into the incident form is read as Beijing time.

Screenshots go to DUTYCALL_SCREENSHOTS, or tests/artifacts/zoned (gitignored).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import async_playwright

from dutycall import timezone
from dutycall.web.app import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import CONFERENCE, INCIDENTS

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config
from .utils import wait_for

pytestmark = pytest.mark.slow

BEIJING = ZoneInfo("Asia/Shanghai")
BROWSER_ZONE = "America/New_York"
SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS") or pathlib.Path(__file__).parent / "artifacts" / "zoned")
WAIT = 20000
PASSWORD = "password-1"
#: When the incident happened: 23:39 in Beijing is 10:39 in New York, the day before's date there too
#: (15:39 UTC).
OCCURRED = dt.datetime(2026, 11, 20, 23, 39, tzinfo=BEIJING)


@pytest.fixture
async def shanghai(aiohttp_server, tmp_path):
    """A server on Asia/Shanghai (the zone is process-wide: put back afterwards)."""
    before = timezone.zone()
    app = create_app(make_config(f"sqlite:///{tmp_path}/zoned.sqlite3", timezone="Asia/Shanghai"))
    srv = await aiohttp_server(app, host="127.0.0.1")
    srv.conference = app[CONFERENCE]
    try:
        yield srv
    finally:
        timezone.set_zone(before)


@pytest.fixture
async def browser(tmp_path):
    async with async_playwright() as pw:
        chromium = await launch(pw, tmp_path / "chromium", tz=BROWSER_ZONE)
        yield chromium
        await chromium.close()


async def open_page(browser, base: str, username: str, path: str, lang: str, ready: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})  # no timezone_id: the process's TZ
    page = await context.new_page()
    page.on("pageerror", lambda exc: print(f"[{username}] page error: {exc}"))
    await page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector(ready, timeout=WAIT)
    return page


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def stamp(at: dt.datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


async def test_pages_show_and_read_the_deployments_time_not_the_browsers(shanghai, browser):
    app = shanghai.app
    base = f"http://127.0.0.1:{shanghai.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    units = {"city": admin.unit_id}
    for code, name, kind, parent in (("D1", "东湖区", "district", "city"), ("S1", "东湖街道", "street", "D1")):
        units[code] = (await directory.create_unit(admin, {"code": code, "name": name, "kind": kind,
                                                           "parent_id": units[parent]}))["id"]
        await directory.create_room(admin, {"unit_id": units[code], "name": f"{name}值班室"})
    for username, name, role, unit in (("officer", "张值班", "duty_officer", "S1"), ("zhuren", "赵主任", "host", "city")):
        await directory.create_account(admin, {"username": username, "display_name": name, "role": role,
                                               "password": PASSWORD, "unit_id": units[unit]})
    _, officer = await directory.sign_in("officer", PASSWORD)
    incident = await app[INCIDENTS].create(officer, {
        "title": "东湖路燃气泄漏", "occurred_at": OCCURRED.isoformat(),
        "learned_at": (OCCURRED + dt.timedelta(minutes=6)).isoformat(), "source": "110 转警",
        "category": "accident", "subtype": "public_facility", "level": "IV", "place": "东湖路 12 号",
        "course": "施工挖断燃气管道。", "measures": "关阀断气。", "contact_name": "王五",
        "contact_phone": "139 0000 0000", "reporter": "张三"})

    # A roll-call and a weekly plan at 09:00 Beijing time, made by the host through the API.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        reply = await (await http.post(f"{base}/api/session", json={"username": "zhuren", "password": PASSWORD})).json()
        headers = {"X-CSRF-Token": reply["csrf_token"]}
        rooms = (await (await http.get(f"{base}/api/rollcall-picker")).json())["rooms"]
        made = await http.post(f"{base}/api/rollcalls", headers=headers, json={
            "title": "周一点名", "room_ids": [r["id"] for r in rooms], "answer_window": 60, "late_after": 30})
        assert made.status in (200, 201), await made.text()
        listed = await (await http.get(f"{base}/api/rollcalls?limit=5")).json()
        rollcall_at = dt.datetime.fromisoformat(listed[0]["at"])
        preview = await (await http.post(f"{base}/api/plans/preview", headers=headers, json={
            "schedule": {"freq": "weekly", "weekdays": ["MO"], "time": "09:00"}})).json()
        plan = await http.post(f"{base}/api/plans", headers=headers, json={
            "title": "每周点名", "target_unit_id": units["D1"], "target_kinds": ["street"],
            "dtstart": preview["dtstart"], "rrule": preview["rrule"], "answer_window": 60, "late_after": 30})
        assert plan.status in (200, 201), await plan.text()
        upcoming = await (await http.get(f"{base}/api/plans/{(await plan.json())['id']}/upcoming")).json()
    next_plan = dt.datetime.fromisoformat(upcoming[0])
    assert next_plan.astimezone(BEIJING).strftime("%H:%M") == "09:00"

    for lang in ("zh-CN", "en"):
        # The incident list and page: 23:39 (Beijing), never 10:39 (New York).
        page = await open_page(browser, base, "officer", "/incidents", lang, "#incidents:not([hidden])")
        assert await page.evaluate("new Date(2026, 11, 1).getTimezoneOffset()") == 300, "the browser is not in New York"
        row = f'#incident-list tr[data-incident-id="{incident["id"]}"]'
        await page.wait_for_selector(row, timeout=WAIT)
        text = await page.text_content(row)
        assert "23:39" in text and "10:39" not in text, text
        assert "20" in text and "11" in text
        await page.goto(f"{base}/incidents?id={incident['id']}&lang={lang}")
        await page.wait_for_selector("#detail-view:not([hidden]) .inc-title", timeout=WAIT)
        details = await page.text_content("#detail-view")
        assert "23:39" in details and "23:45" in details and "10:39" not in details, details
        await shot(page, f"incident-{lang}")

        # The first report's form: "now" is Beijing's wall clock; a typed time is read as Beijing's.
        await page.goto(f"{base}/incidents?new=1&lang={lang}")
        await page.wait_for_selector("#report-form [name=learned_at]", timeout=WAIT)
        shown = dt.datetime.strptime(await page.input_value("#report-form [name=learned_at]"), "%Y-%m-%dT%H:%M")
        now = dt.datetime.now(BEIJING).replace(tzinfo=None)
        assert abs((now - shown).total_seconds()) < 180, (shown, now)
        assert await page.evaluate("zonedIso('2026-11-20T23:39')") == "2026-11-20T23:39:00+08:00"
        assert await page.evaluate("fromZonedInput('2026-11-20T23:39').toISOString()") == "2026-11-20T15:39:00.000Z"
        # Daylight saving is the deployment's business, not the browser's (New York's clocks moved on 1 Nov).
        assert await page.evaluate("zonedInput(Date.UTC(2026, 10, 1, 6, 30))") == "2026-11-01T14:30"
        await page.context.close()

        # The roll-call page: the history's time and the plan's next occurrence, in Beijing time.
        page = await open_page(browser, base, "zhuren", "/rollcall", lang, "#host:not([hidden])")
        history = page.locator("#history tbody tr[data-rollcall-id] td.when").first
        await history.wait_for(timeout=WAIT)
        assert await history.text_content() == stamp(rollcall_at)
        plan_row = page.locator("#plans tbody tr", has_text="每周点名")
        await plan_row.wait_for(timeout=WAIT)
        await wait_for(lambda row=plan_row: row.locator("td.next").text_content(), timeout=20, what="the plan's next time")
        assert await plan_row.locator("td.next").text_content() == stamp(next_plan)
        # The plan form's preview: Mondays at 09:00 Beijing time (Sunday evening in New York).
        await page.fill("#plan-time", "09:00")

        async def preview_shown(page=page):
            items = await page.locator("#plan-next li").all_text_contents()
            return items if len(items) == 5 else None

        items = await wait_for(preview_shown, timeout=20, what="the plan's next five")
        monday = "周一" if lang == "zh-CN" else "Mon"
        assert all(" 09:00" in item and monday in item for item in items), items
        await shot(page, f"rollcall-{lang}")
        await page.context.close()
