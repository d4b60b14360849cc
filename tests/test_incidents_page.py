"""The /incidents page in a real headless Chromium: a duty officer files a first report through
the form (a missing element is named next to its input first), finds it in the list, adds a
follow-up that leaves the first report as filed; a leader's instruction is acknowledged and
answered by the addressed unit; the English page; a phone-sized screen never scrolls sideways.

Set DUTYCALL_SCREENSHOTS to a folder to keep screenshots of each view (desktop and phone, zh and en).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import async_playwright

from dutycall import timezone
from dutycall.incidents.models import Incident
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import INCIDENTS

from .browser import launch
from .conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.slow

BEIJING = dt.timezone(dt.timedelta(hours=8))
ZONE = "Asia/Shanghai"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("DUTYCALL_SCREENSHOTS")
#: Browser waits: generous, for a busy machine.
WAIT = 20000


@dataclass
class City:
    base: str
    app: Any
    ids: dict[str, int]
    who: dict[str, Any]

    async def incident_count(self) -> int:
        async with self.app[INCIDENTS].sessionmaker() as db:
            from sqlalchemy import func, select
            return int((await db.execute(select(func.count()).select_from(Incident))).scalar_one())


@pytest.fixture
async def city(server) -> City:
    """The city, a district D1 and its street S1; a duty officer in S1, a host in D1 and a city leader."""
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {"city": admin.unit_id}
    for code, name, kind, parent in (("D1", "东湖区", "district", "city"), ("S1", "东湖街道", "street", "D1")):
        ids[code] = (await directory.create_unit(admin, {"code": code, "name": name, "kind": kind,
                                                         "parent_id": ids[parent]}))["id"]
    who = {"admin": admin}
    for username, name, role, unit in (("officer", "张值班", "duty_officer", "S1"), ("host", "赵主任", "host", "D1"),
                                       ("leader", "李领导", "leader", "city")):
        await directory.create_account(admin, {"username": username, "display_name": name, "role": role,
                                               "password": "password-1", "unit_id": ids[unit]})
        who[username] = (await directory.sign_in(username, "password-1"))[1]
    return City(f"http://127.0.0.1:{server.port}", server.app, ids, who)


@pytest.fixture
async def browser(tmp_path):
    async with async_playwright() as pw:
        chromium = await launch(pw, tmp_path / "chromium")
        yield chromium
        await chromium.close()


def report(minutes_ago: float = 10, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(BEIJING)
    data = {"title": "东湖路燃气泄漏", "occurred_at": (now - dt.timedelta(minutes=minutes_ago + 5)).isoformat(),
            "learned_at": (now - dt.timedelta(minutes=minutes_ago)).isoformat(), "source": "110 转警",
            "category": "accident", "subtype": "public_facility", "level": "III", "place": "东湖路 12 号",
            "course": "施工挖断燃气管道，周边 200 米已疏散。", "deaths": 0, "injured": 2, "missing": 0, "trapped": 0,
            "measures": "关阀断气，设置警戒。", "contact_name": "王五", "contact_phone": "139 0000 0000", "reporter": "张三"}
    data.update(overrides)
    return data


async def open_page(browser, city: City, username: str, path: str = "/incidents", viewport=DESKTOP):
    """A signed-in page in a context of its own (its own cookies), in Beijing time."""
    context = await browser.new_context(viewport=viewport, timezone_id=ZONE, locale="zh-CN",
                                        is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page = await context.new_page()
    page.on("console", lambda msg: print(f"[{username}] {msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: print(f"[{username}] page error: {exc}"))
    await page.goto(city.base + path)
    await page.fill("#username", username)
    await page.fill("#password", "password-1")
    await page.click("#sign-in")
    await page.wait_for_selector("#incidents:not([hidden])", timeout=WAIT)
    return page


async def shot(page, name: str) -> None:
    if SHOTS:
        pathlib.Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(pathlib.Path(SHOTS) / f"{name}.png"), full_page=True)


#: The elements reaching past the viewport's right edge (to name them when a page scrolls sideways).
WIDE = """[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right >
           document.documentElement.clientWidth + 0.5).slice(-5).map((e) =>
           `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


async def no_sideways_scroll(page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    if widths[0] > widths[1]:
        await shot(page, "sideways")
        raise AssertionError(f"the page scrolls sideways: {widths}, {await page.evaluate(WIDE)}")


def field(name: str) -> str:
    return f'.inc-field[data-field="{name}"]'


def local_input(at: dt.datetime) -> str:
    """A datetime-local value as the page reads it: on the deployment's clock (--timezone), not the browser's."""
    return at.astimezone(timezone.zone()).strftime("%Y-%m-%dT%H:%M")


async def test_an_officer_files_a_first_report_and_a_follow_up_through_the_page(city, browser):
    # Another incident of the street's, first reported 45 minutes after it was learned: 迟报.
    late = await city.app[INCIDENTS].create(city.who["officer"], report(45, title="北街仓库火情", category="accident",
                                                                         subtype="fire", place="北街 3 号"))
    page = await open_page(browser, city, "officer")
    await page.wait_for_selector(f'#incident-list tr[data-incident-id="{late["id"]}"]', timeout=WAIT)
    assert await page.text_content(f'#incident-list tr[data-incident-id="{late["id"]}"] td.flags') == "迟报"
    await page.click("#new-incident")
    await page.wait_for_selector('#report-form fieldset[data-group="contacts"]', timeout=WAIT)
    assert "new=1" in page.url
    legends = await page.locator("#report-form legend").all_text_contents()
    assert legends == ["基本情况", "发生地点", "起因与经过", "人员伤亡与损失", "处置情况", "发展趋势与建议", "联系人与报告人"]
    # The casualty counts become required once the level is 较大.
    assert "required" not in (await page.get_attribute(field("deaths"), "class"))
    now = dt.datetime.now(BEIJING)
    form = "#report-form"
    await page.fill(f"{form} [name=title]", "东湖路燃气泄漏")
    await page.fill(f"{form} [name=occurred_at]", local_input(now - dt.timedelta(minutes=15)))
    await page.fill(f"{form} [name=learned_at]", local_input(now - dt.timedelta(minutes=10)))
    await page.select_option(f"{form} [name=category]", "accident")
    await page.select_option(f"{form} [name=subtype]", "public_facility")
    await page.select_option(f"{form} [name=level]", "III")
    assert "required" in (await page.get_attribute(field("deaths"), "class"))
    await page.fill(f"{form} [name=place]", "东湖路 12 号")
    await page.fill(f"{form} [name=course]", "施工挖断燃气管道，周边 200 米已疏散。")
    for name, value in (("deaths", "0"), ("injured", "2"), ("missing", "0"), ("trapped", "0")):
        await page.fill(f"{form} [name={name}]", value)
    await page.fill(f"{form} [name=measures]", "关阀断气，设置警戒。")
    await page.fill(f"{form} [name=contact_name]", "王五")
    await page.fill(f"{form} [name=contact_phone]", "139 0000 0000")
    assert await page.input_value(f"{form} [name=reporter]") == "张值班"  # the signed-in person, to begin with
    # The information source is left out: the server names it, next to its input.
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_selector(f"{form} {field('source')}.invalid", timeout=WAIT)
    assert await page.text_content(f"{form} {field('source')} .field-error") == "缺少必填项“信息来源”"
    assert (await page.text_content(f"{form} .form-error")).startswith("报告有 1 处需要修改")
    assert await page.locator(f"{form} .inc-field.invalid").count() == 1
    assert await city.incident_count() == 1
    await shot(page, "form-error-desktop-zh")
    await page.fill(f"{form} [name=source]", "110 转警")
    await page.click(f"{form} button[type=submit]")

    # The incident page: the headline and the report as filed.
    await page.wait_for_selector("#detail-view:not([hidden]) .inc-title", timeout=WAIT)
    assert await page.text_content(".inc-title") == "东湖路燃气泄漏"
    iid = int(await page.get_attribute("#detail", "data-incident-id"))
    assert f"id={iid}" in page.url
    first = '.inc-report[data-stage="initial"]'
    assert await page.text_content(f'{first} dd[data-element="course"]') == "施工挖断燃气管道，周边 200 米已疏散。"
    assert await page.text_content(f'{first} dd[data-element="source"]') == "110 转警"
    assert "电话报告" in await page.text_content(f"{first} header")
    assert await page.text_content(".inc-badges .level") == "III级（较大）"
    assert await page.text_content('.inc-timeline li[data-kind="reported"] .what') == "报送初报（电话报告）"

    # The list shows it, with its unit, category, level and one report.
    await page.click("#detail-view a.back")
    row = f'#incident-list tr[data-incident-id="{iid}"]'
    await page.wait_for_selector(row, timeout=WAIT)
    text = await page.text_content(row)
    for expected in ("东湖路燃气泄漏", "东湖街道", "事故灾难", "III级（较大）", "处置中"):
        assert expected in text, expected
    assert await page.text_content(f"{row} td.reports") == "1"
    assert await page.text_content(f"{row} td.flags") == ""
    # Filters (kept in the address): by level, by days (the server's local days; a day either side
    # of today holds the incident whatever the server's zone).
    await page.select_option("#f-level", "IV")
    await page.click("#filters button[type=submit]")
    await page.wait_for_selector("#list-empty:not([hidden])", timeout=WAIT)
    assert "level=IV" in page.url
    await page.select_option("#f-level", "III")
    await page.fill("#f-from", (now + dt.timedelta(days=2)).strftime("%Y-%m-%d"))
    await page.click("#filters button[type=submit]")
    await page.wait_for_selector("#list-empty:not([hidden])", timeout=WAIT)
    await page.fill("#f-from", (now - dt.timedelta(days=1)).strftime("%Y-%m-%d"))
    await page.fill("#f-to", (now + dt.timedelta(days=1)).strftime("%Y-%m-%d"))
    await page.click("#filters button[type=submit]")
    await page.wait_for_selector(row, timeout=WAIT)
    assert await page.locator("#incident-list tbody tr").count() == 2
    await page.select_option("#f-category", "natural")
    await page.click("#filters button[type=submit]")
    await page.wait_for_selector("#list-empty:not([hidden])", timeout=WAIT)
    await page.go_back()  # the previous filters, from the address
    await page.wait_for_selector(row, timeout=WAIT)
    assert await page.input_value("#f-category") == ""
    assert await page.input_value("#f-level") == "III"
    await shot(page, "list-desktop-zh")

    # A follow-up: what changed, and a new casualty figure; the first report stays as filed.
    await page.click(f"{row} a.title")
    await page.wait_for_selector('.inc-actions-bar button[data-action="followup"]', timeout=WAIT)
    await page.click('.inc-actions-bar button[data-action="followup"]')
    followup = '#action-form form[data-form="followup"]'
    await page.fill(f"{followup} [name=changes]", "又发现 1 名伤者，已送医。")
    await page.click(f"{followup} details.inc-more summary")
    # A blank element stays as it is, and says what that is.
    assert await page.text_content(f"{followup} [name=level] option:first-child") == "不变（现为：III级（较大））"
    assert await page.get_attribute(f"{followup} [name=injured]", "placeholder") == "现为：2"
    await page.fill(f"{followup} [name=injured]", "3")
    await page.click(f"{followup} button[type=submit]")
    await page.wait_for_selector('.inc-report[data-stage="followup"]', timeout=WAIT)
    assert await page.locator(".inc-report").count() == 2
    assert await page.text_content(f'{first} dd[data-element="injured"]') == "2"
    assert await page.text_content(f'{first} dd[data-element="course"]') == "施工挖断燃气管道，周边 200 米已疏散。"
    second = '.inc-report[data-stage="followup"]'
    assert await page.text_content(f"{second} header h4") == "续报 1"
    assert await page.text_content(f'{second} dd[data-element="changes"]') == "又发现 1 名伤者，已送医。"
    assert await page.text_content(f'{second} dd[data-element="injured"]') == "3"
    assert await page.locator(f'{second} dd[data-element="course"]').count() == 0  # not repeated
    current = '[data-section="inc_current"]'
    assert await page.text_content(f'{current} dd[data-element="injured"]') == "3"
    assert await page.text_content(f'{current} dd[data-element="course"]') == "施工挖断燃气管道，周边 200 米已疏散。"
    assert await page.locator('.inc-timeline li[data-kind="reported"]').count() == 2
    # A duty officer neither verifies, instructs nor supervises: no such buttons.
    assert await page.locator('.inc-actions-bar button[data-action="instruct"]').count() == 0
    assert await page.locator(".inc-verify").count() == 0
    await shot(page, "incident-desktop-zh")
    await page.context.close()


async def test_a_leader_instructs_and_the_addressed_unit_acknowledges_and_reports_back(city, browser):
    iid = (await city.app[INCIDENTS].create(city.who["officer"], report()))["id"]
    leader = await open_page(browser, city, "leader", f"/incidents?id={iid}")
    await leader.wait_for_selector('.inc-actions-bar button[data-action="instruct"]', timeout=WAIT)
    assert await leader.locator('.inc-actions-bar button[data-action="followup"]').count() == 0  # leaders file nothing
    await leader.click('.inc-actions-bar button[data-action="instruct"]')
    form = '#action-form form[data-form="instruct"]'
    # The incident's own unit is addressed to begin with.
    assert await leader.is_checked(f'{form} input[type=checkbox][value="{city.ids["S1"]}"]')
    await leader.click(f"{form} button[type=submit]")  # no text: refused, and said so next to the field
    await leader.wait_for_selector(f"{form} {field('text')}.invalid", timeout=WAIT)
    assert "批示内容" in await leader.text_content(f"{form} {field('text')} .field-error")
    await shot(leader, "instruct-form-desktop-zh")
    await leader.fill(f"{form} [name=text]", "全力救治伤员，查明原因，及时续报。")
    await leader.click(f"{form} button[type=submit]")
    await leader.wait_for_selector(".inc-instruction", timeout=WAIT)
    target = f'.inc-instruction tr[data-unit-id="{city.ids["S1"]}"]'
    assert await leader.text_content(f"{target} td.ack-state") == "未签收"
    assert await leader.locator(f"{target} button.ack").count() == 0  # not the leader's unit
    assert await leader.text_content(".inc-instruction .inc-text") == "全力救治伤员，查明原因，及时续报。"

    officer = await open_page(browser, city, "officer", f"/incidents?id={iid}")
    mine = f'.inc-instruction tr[data-mine="yes"][data-unit-id="{city.ids["S1"]}"]'
    await officer.wait_for_selector(f"{mine} button.ack", timeout=WAIT)
    await officer.click(f"{mine} button.ack")
    await officer.wait_for_selector(f'{mine}[data-acknowledged="yes"]', timeout=WAIT)
    assert (await officer.text_content(f"{mine} td.ack-state")).startswith("张值班 已签收")
    assert await officer.locator(f"{mine} button.ack").count() == 0
    await officer.fill(f"{mine} [name=text]", "伤员已送医，原因正在调查。")
    await officer.click(f"{mine} .inc-feedback button[type=submit]")
    await officer.wait_for_selector(f"{mine} td.feedback >> text=伤员已送医，原因正在调查。", timeout=WAIT)
    await shot(officer, "instruction-desktop-zh")

    await leader.reload()
    await leader.wait_for_selector(f"{target} td.feedback >> text=伤员已送医，原因正在调查。", timeout=WAIT)
    assert (await leader.text_content(f"{target} td.ack-state")).startswith("张值班 已签收")
    kinds = await leader.eval_on_selector_all(".inc-timeline li", "items => items.map((i) => i.dataset.kind)")
    assert kinds == ["reported", "instruction", "acknowledged", "feedback"]
    assert await leader.text_content('.inc-timeline li[data-kind="acknowledged"] .what') == "东湖街道 签收批示"
    assert await leader.text_content('.inc-timeline li[data-kind="instruction"] .what') == "领导批示（致 东湖街道）"
    await leader.context.close()
    await officer.context.close()


async def test_the_english_page_and_a_phone_sized_screen(city, browser):
    incident = await city.app[INCIDENTS].create(city.who["officer"], report(45))
    await city.app[INCIDENTS].instruct(city.who["leader"], incident["id"], {
        "text": "请及时续报。", "unit_ids": [city.ids["S1"]]})
    for viewport, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        for lang in ("zh", "en"):
            suffix = "?lang=en" if lang == "en" else ""
            page = await open_page(browser, city, "officer", f"/incidents{suffix}", viewport)
            row = f'#incident-list tr[data-incident-id="{incident["id"]}"]'
            await page.wait_for_selector(row, timeout=WAIT)
            if lang == "en":
                assert await page.text_content("header h1") == "Incidents"
                assert await page.text_content("#new-incident") == "New incident (first report)"
                assert await page.text_content("#incident-list th:first-child") == "Occurred"
                assert "Accident" in await page.text_content(row)
                assert await page.text_content(f"{row} td.flags") == "Late"
            await no_sideways_scroll(page)
            await shot(page, f"list-{size}-{lang}")

            await page.click("#new-incident")
            await page.wait_for_selector('#report-form fieldset[data-group="contacts"]', timeout=WAIT)
            if lang == "en":
                legends = await page.locator("#report-form legend").all_text_contents()
                assert legends[0] == "Basics" and legends[-1] == "Contacts and reporter"
                await page.select_option("#report-form [name=level]", "IV")
                await page.click("#report-form button[type=submit]")
                await page.wait_for_selector(f"#report-form {field('title')}.invalid", timeout=WAIT)
                assert await page.text_content(f"#report-form {field('title')} .field-error") == "Title is required"
                assert (await page.text_content("#report-form .form-error")).startswith("The report has")
            await no_sideways_scroll(page)
            await shot(page, f"form-{size}-{lang}")

            await page.goto(f"{city.base}/incidents?id={incident['id']}" + (f"&lang={lang}" if lang == "en" else ""))
            await page.wait_for_selector(".inc-timeline li", timeout=WAIT)
            if lang == "en":
                assert await page.text_content('.inc-report[data-stage="initial"] header h4') == "First report"
                assert await page.text_content('.inc-timeline li[data-kind="reported"] .what') == \
                    "First report filed (By phone)"
                assert await page.text_content('[data-section="inc_instructions"] h3') == "Leaders' instructions"
                assert await page.text_content('.inc-flags li[data-kind="late_first"] strong') == "Late first report"
            else:
                assert await page.text_content('.inc-flags li[data-kind="late_first"] strong') == "迟报（首报超时）"
            await no_sideways_scroll(page)
            await shot(page, f"incident-{size}-{lang}")
            # The follow-up form, every element opened, fits the screen too.
            await page.click('.inc-actions-bar button[data-action="followup"]')
            await page.click('#action-form form[data-form="followup"] details.inc-more summary')
            await page.wait_for_selector('#action-form [name="trend"]', state="visible", timeout=WAIT)
            await no_sideways_scroll(page)
            await shot(page, f"followup-{size}-{lang}")
            await page.context.close()

    # The language button switches a signed-in page in place.
    page = await open_page(browser, city, "officer", f"/incidents?id={incident['id']}")
    await page.wait_for_selector('.inc-report[data-stage="initial"]', timeout=WAIT)
    assert await page.text_content('.inc-report[data-stage="initial"] header h4') == "初报"
    await page.click("#lang")
    # (a selector, not a JS predicate: the page's CSP forbids eval)
    await page.wait_for_selector('.inc-report[data-stage="initial"] header h4:text-is("First report")', timeout=WAIT)
    assert await page.text_content('[data-section="inc_current"] h3') == "Current view (all reports together)"
    await page.context.close()



async def test_a_district_host_verifies_supervises_and_closes_after_the_final_report(city, browser):
    iid = (await city.app[INCIDENTS].create(city.who["officer"], report()))["id"]
    host = await open_page(browser, city, "host", f"/incidents?id={iid}")
    host.on("dialog", lambda dialog: dialog.accept())  # "close this incident?"
    first = '.inc-report[data-stage="initial"]'
    await host.wait_for_selector(f"{first} .inc-verify", state="attached", timeout=WAIT)
    # Hosts verify, supervise and close; the incident is not closed before its final report.
    assert await host.locator('.inc-actions-bar button[data-action="supervise"]').count() == 1
    assert await host.locator('.inc-actions-bar button[data-action="close"]').count() == 0
    assert await host.text_content(f"{first} .badge.unverified") == "未核报"

    # 核报: checked with the police, with a note.
    await host.click(f"{first} details.inc-more summary")
    await host.select_option(f"{first} .inc-verify [name=channel]", "police")
    await host.fill(f"{first} .inc-verify [name=note]", "已与东湖派出所电话核实。")
    await host.click(f"{first} .inc-verify button[type=submit]")
    await host.wait_for_selector(f"{first} .badge.verified", timeout=WAIT)
    assert (await host.text_content(f"{first} .badge.verified")).startswith("已核报：公安核实（")
    assert await host.text_content(f"{first} .inc-note") == "核报说明：已与东湖派出所电话核实。"
    assert await host.text_content('.inc-timeline li[data-kind="verified"] .what') == "初报已核报：公安核实"

    # 督办: a wrong figure, three days to answer.
    await host.click('.inc-actions-bar button[data-action="supervise"]')
    supervise = '#action-form form[data-form="supervise"]'
    await host.select_option(f"{supervise} [name=outcome]", "wrong")
    await host.fill(f"{supervise} [name=text]", "受伤人数与医院通报不一致，请核实后续报。")
    await host.click(f"{supervise} button[type=submit]")
    notice = ".inc-notices tbody tr"
    await host.wait_for_selector(notice, timeout=WAIT)
    assert await host.get_attribute(notice, "data-status") == "open"
    assert await host.locator(f"{notice} button.close").count() == 0  # not before the unit answers
    await shot(host, "host-verified-desktop-zh")

    # The street answers the notice and files its final report (a missing element named first).
    officer = await open_page(browser, city, "officer", f"/incidents?id={iid}")
    await officer.wait_for_selector(f"{notice} .inc-respond", timeout=WAIT)
    await officer.fill(f"{notice} [name=response]", "经核实受伤 3 人，已续报更正。")
    await officer.click(f"{notice} .inc-respond button[type=submit]")
    await officer.wait_for_selector(f'{notice}[data-status="responded"]', timeout=WAIT)
    await officer.click('.inc-actions-bar button[data-action="final"]')
    final = '#action-form form[data-form="final"]'
    await officer.wait_for_selector(final, timeout=WAIT)
    assert await officer.input_value(f"{final} [name=injured]") == "2"  # the current figure, to begin with
    await officer.fill(f"{final} [name=cause]", "施工单位未探明地下管线。")
    await officer.fill(f"{final} [name=outcome]", "管道已修复，恢复供气。")
    await officer.fill(f"{final} [name=aftermath]", "伤员均已出院。")
    await officer.fill(f"{final} [name=injured]", "3")
    await officer.click(f"{final} button[type=submit]")
    await officer.wait_for_selector(f"{final} {field('economic_loss')}.invalid", timeout=WAIT)
    assert await officer.text_content(f"{final} {field('economic_loss')} .field-error") == \
        "缺少必填项“直接经济损失（万元）”"
    await shot(officer, "final-error-desktop-zh")
    await officer.fill(f"{final} [name=economic_loss]", "12.5")
    await officer.click(f"{final} button[type=submit]")
    await officer.wait_for_selector('#detail[data-status="final"] .inc-report[data-stage="final"]', timeout=WAIT)
    assert await officer.locator(".inc-actions-bar button").count() == 0  # nothing more to file
    assert await officer.text_content('[data-section="inc_current"] dd[data-element="injured"]') == "3"
    await officer.context.close()

    # The host closes the notice and then the incident.
    await host.reload()
    await host.wait_for_selector(f'{notice}[data-status="responded"] button.close', timeout=WAIT)
    assert await host.text_content(f"{notice} td.state") == "已回复"
    await host.click(f"{notice} button.close")
    await host.wait_for_selector(f'{notice}[data-status="closed"]', timeout=WAIT)
    await host.click('.inc-actions-bar button[data-action="close"]')
    await host.wait_for_selector('#detail[data-status="closed"]', timeout=WAIT)
    assert await host.text_content(".inc-badges .status") == "已关闭"
    kinds = await host.eval_on_selector_all(".inc-timeline li", "items => items.map((i) => i.dataset.kind)")
    assert kinds == ["reported", "verified", "notice_issued", "notice_responded", "reported", "notice_closed",
                     "closed"]
    await shot(host, "host-closed-desktop-zh")
    # The list, filtered to the street: the closed incident under its status.
    await host.click("#detail-view a.back")
    await host.wait_for_selector(f'#incident-list tr[data-incident-id="{iid}"]', timeout=WAIT)
    await host.select_option("#f-unit", str(city.ids["S1"]))
    await host.select_option("#f-status", "closed")
    await host.click("#filters button[type=submit]")
    await host.wait_for_selector(f'#incident-list tr[data-incident-id="{iid}"] .badge.status[data-status="closed"]',
                                 timeout=WAIT)
    assert f"unit_id={city.ids['S1']}" in host.url
    # A host may record an incident for a street below: the form warns that it counts as the street's 漏报.
    await host.click("#new-incident")
    unit = f"#report-form {field('unit_id')}"
    await host.wait_for_selector(f"{unit} select:enabled", timeout=WAIT)
    assert await host.input_value(f"{unit} select") == str(city.ids["D1"])
    assert await host.locator(f"{unit} .field-note").is_hidden()
    await host.select_option(f"{unit} select", str(city.ids["S1"]))
    await host.wait_for_selector(f"{unit} .field-note", state="visible", timeout=WAIT)
    assert "漏报" in await host.text_content(f"{unit} .field-note")
    await shot(host, "host-form-desktop-zh")
    await host.context.close()

    # The same incident in English on a phone.
    page = await open_page(browser, city, "host", f"/incidents?id={iid}&lang=en", PHONE)
    await page.wait_for_selector(f"{first} .badge.verified", timeout=WAIT)
    assert (await page.text_content(f"{first} .badge.verified")).startswith("Verified: Checked with the police (")
    assert await page.text_content('.inc-report[data-stage="final"] header h4') == "Final report"
    await no_sideways_scroll(page)
    await shot(page, "host-closed-phone-en")
    await page.context.close()
