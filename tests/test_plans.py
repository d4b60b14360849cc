"""Roll-call plans: RFC 5545 recurrence, firing once across restarts, calendars, validation."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from icalendar import Calendar
from sqlalchemy import select

from dutycall.rollcall.errors import Invalid
from dutycall.rollcall.models import RollCallPlan, RollCallRecord
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR, PLANS

from .conftest import ADMIN_PASSWORD, make_config

CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
async def planner(plan_server):
    return plan_server[1:]


@pytest.fixture
async def plan_server(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/plans.sqlite3", scheduler_interval=3600))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    district = await directory.create_unit(admin, {"code": "D1", "name": "一区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    rooms = []
    for code, kind in (("S1", "street"), ("S2", "street"), ("G1", "agency")):
        unit = await directory.create_unit(admin, {"code": code, "name": f"{code}单位", "kind": kind,
                                                   "parent_id": district["id"]})
        rooms.append((await directory.create_room(admin, {"unit_id": unit["id"], "name": f"{code}值班室"}))["id"])
    return server, app, admin, district, rooms


async def test_weekly_plan_upcoming_and_room_calendar(planner):
    app, admin, district, rooms = planner
    plans = app[PLANS]
    plan = await plans.create(admin, {
        "title": "每周一点名", "target_unit_id": district["id"], "target_kinds": ["street"],
        "dtstart": "2026-01-05T09:00:00+08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO", "focus_points": "检查值班记录"})
    upcoming = [dt.datetime.fromisoformat(t) for t in await plans.upcoming(admin, plan["id"])]
    assert len(upcoming) == 10 and all(t.astimezone(CST).weekday() == 0 and t.astimezone(CST).hour == 9
                                       for t in upcoming)
    # Street rooms are in the plan, the agency's is not.
    cal = Calendar.from_ical(await plans.room_calendar(admin, rooms[0]))
    events = list(cal.walk("VEVENT"))
    assert events and "每周一点名" in str(events[0]["summary"])
    assert list(Calendar.from_ical(await plans.room_calendar(admin, rooms[2])).walk("VEVENT")) == []


async def test_a_due_plan_fires_once_and_a_missed_one_is_skipped(planner):
    app, admin, district, rooms = planner
    plans = app[PLANS]
    now = dt.datetime.now(dt.UTC)
    soon = (now + dt.timedelta(seconds=30)).isoformat()
    plan = await plans.create(admin, {"title": "节日加点", "target_unit_id": district["id"], "dtstart": soon,
                                      "custom_order": [rooms[2], rooms[0]]})
    assert await plans.fire_due(now) == []
    started = await plans.fire_due(now + dt.timedelta(seconds=31))
    assert len(started) == 1
    board = await app[COORDINATOR].board(admin, started[0])
    assert board["phase"] == "running" and board["kind"] == "plan"
    assert [r["duty_room_id"] for r in board["rooms"]] == [rooms[2], rooms[0], rooms[1]]  # custom order first
    # The same occurrence never fires again, even after a restart (last_fired_at is committed).
    assert await plans.fire_due(now + dt.timedelta(seconds=40)) == []
    async with app[DIRECTORY].sessionmaker() as db:
        assert (await db.get(RollCallPlan, plan["id"])).last_fired_at is not None
        assert len((await db.execute(select(RollCallRecord))).scalars().all()) == 1

    # An occurrence long past (the server was down) is skipped, not fired hours late.
    await plans.create(admin, {"title": "错过", "target_unit_id": district["id"],
                                      "dtstart": (now + dt.timedelta(seconds=5)).isoformat()})
    assert await plans.fire_due(now + dt.timedelta(hours=2)) == []


async def test_plan_validation(planner):
    app, admin, district, _ = planner
    plans = app[PLANS]
    base = {"title": "x", "target_unit_id": district["id"], "dtstart": "2027-01-01T09:00:00+08:00"}
    for bad in ({"rrule": "FREQ=SOMETIMES"}, {"dtstart": "2027-01-01T09:00:00"}, {"dtstart": "tomorrow"},
                {"target_kinds": ["planet"]}, {"answer_window": 10, "late_after": 20}, {"dates": ["not a date"]}):
        with pytest.raises(Invalid):
            await plans.create(admin, {**base, **bad})
    directory = app[DIRECTORY]
    await directory.create_account(admin, {"username": "viewer1", "display_name": "v", "password": "password-1",
                                           "role": "viewer", "unit_id": district["id"]})
    _, viewer = await directory.sign_in("viewer1", "password-1")
    from dutycall.errors import Forbidden

    with pytest.raises(Forbidden):
        await plans.create(viewer, base)


async def _drive(app, admin, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[dt.datetime]:
    """Run the scheduler at chosen instants from start to end; the instants at which it started a roll-call."""
    fired = []
    now = start
    while now <= end:
        for rollcall_id in await app[PLANS].fire_due(now):
            fired.append(now)
            await app[COORDINATOR].command(admin, rollcall_id, "cancel", {})
        now += step
    return fired


@pytest.mark.parametrize("offset", [8, -5])
async def test_an_hourly_plan_fires_once_per_occurrence_in_its_own_utc_offset(planner, offset):
    """Audit item 4: last_fired_at was stored as local wall time and read back as UTC (+08:00 fired
    once in 135 s, -05:00 fired again every tick)."""
    app, admin, district, _ = planner
    zone = dt.timezone(dt.timedelta(hours=offset))
    first = (dt.datetime.now(zone) + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    await app[PLANS].create(admin, {"title": f"每小时 {offset:+d}", "target_unit_id": district["id"],
                                    "dtstart": first.isoformat(), "rrule": "FREQ=HOURLY"})
    step = dt.timedelta(minutes=7)
    fired = await _drive(app, admin, first - dt.timedelta(minutes=20), first + dt.timedelta(hours=3, minutes=5), step)
    # Each of first, +1 h, +2 h, +3 h exactly once, at the first tick at or after it.
    assert len(fired) == 4, fired
    for hour, when in enumerate(fired):
        occurrence = first + dt.timedelta(hours=hour)
        assert dt.timedelta(0) <= when - occurrence < step, (hour, when, occurrence)
    async with app[DIRECTORY].sessionmaker() as db:
        plan = (await db.execute(select(RollCallPlan))).scalars().one()
        stored = plan.last_fired_at.replace(tzinfo=dt.UTC) if plan.last_fired_at.tzinfo is None \
            else plan.last_fired_at
        assert stored == first + dt.timedelta(hours=3)  # the instant, in UTC


@pytest.mark.parametrize("offset", [-5, 8])
async def test_a_one_off_plan_fires_once(planner, offset):
    app, admin, district, _ = planner
    zone = dt.timezone(dt.timedelta(hours=offset))
    when = (dt.datetime.now(zone) + dt.timedelta(minutes=5)).replace(microsecond=0)
    await app[PLANS].create(admin, {"title": "一次", "target_unit_id": district["id"], "dtstart": when.isoformat(),
                                    "dates": [(when + dt.timedelta(hours=2)).isoformat()]})
    fired = await _drive(app, admin, when - dt.timedelta(minutes=3), when + dt.timedelta(hours=6),
                         dt.timedelta(minutes=3))
    assert len(fired) == 2 and when <= fired[0] < when + dt.timedelta(minutes=3), fired
    assert when + dt.timedelta(hours=2) <= fired[1] < when + dt.timedelta(hours=2, minutes=3), fired


async def test_rules_more_often_than_hourly_or_that_never_match_are_refused(planner):
    app, admin, district, _ = planner
    plans = app[PLANS]
    base = {"title": "x", "target_unit_id": district["id"], "dtstart": "2027-01-01T09:00:00+08:00"}
    for rule in ("FREQ=MINUTELY", "FREQ=SECONDLY", "FREQ=HOURLY;BYMINUTE=0,30", "FREQ=DAILY;BYMINUTE=0,1",
                 "FREQ=HOURLY;BYMINUTE=30"):  # the last: 09:00 (DTSTART) then 09:30
        with pytest.raises(Invalid) as caught:
            await plans.create(admin, {**base, "rrule": rule})
        assert "每小时" in caught.value.message(), (rule, caught.value.message())  # Chinese by default
        assert caught.value.message("en").startswith("A plan may fire at most hourly"), rule
    with pytest.raises(Invalid):
        await plans.create(admin, {**base, "dates": ["2027-01-02T09:00:00+08:00", "2027-01-02T09:20:00+08:00"]})
    # Rules dateutil would follow to the year 9999 looking for a match: refused at once.
    started = asyncio.get_running_loop().time()
    for rule in ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
                 "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;BYHOUR=25", "FREQ=WEEKLY;COUNT=100000",
                 "FREQ=WEEKLY;BYDAY=MO\nEXDATE:20270104T010000Z"):
        with pytest.raises(Invalid):
            await plans.create(admin, {**base, "rrule": rule})
    assert asyncio.get_running_loop().time() - started < 15
    for rule in ("FREQ=HOURLY", "FREQ=HOURLY;INTERVAL=2", "FREQ=DAILY;BYHOUR=9,15;BYMINUTE=0",
                 "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"):
        await plans.create(admin, {**base, "rrule": rule})


async def test_a_rooms_calendar_and_upcoming_are_bounded(planner):
    """Audit item 4: a minutely plan made one .ics take 14 s and 19 MiB."""
    app, admin, district, rooms = planner
    plans = app[PLANS]
    for i in range(8):
        await plans.create(admin, {"title": f"每小时{i}", "target_unit_id": district["id"],
                                   "dtstart": "2026-01-01T00:30:00+08:00", "rrule": "FREQ=HOURLY"})
    # A minutely plan stored before rules were checked: its rule no longer counts.
    legacy = await plans.create(admin, {"title": "旧", "target_unit_id": district["id"],
                                        "dtstart": "2026-01-01T00:00:00+08:00"})
    async with app[DIRECTORY].sessionmaker() as db:
        (await db.get(RollCallPlan, legacy["id"])).rrule = "FREQ=MINUTELY"
        await db.commit()
    loop = asyncio.get_running_loop()
    started = loop.time()
    body = await plans.room_calendar(admin, rooms[0])
    assert loop.time() - started < 10
    events = list(Calendar.from_ical(body).walk("VEVENT"))
    assert 0 < len(events) <= 1000 and len(body) < 1024 * 1024, (len(events), len(body))
    starts = [e["dtstart"].dt for e in events]
    now = dt.datetime.now(dt.UTC)
    assert all(now - dt.timedelta(minutes=1) < t <= now + dt.timedelta(days=90) for t in starts)
    assert len(await plans.upcoming(admin, legacy["id"], 50)) == 0
    assert len(await plans.upcoming(admin, legacy["id"] - 1, 1000)) == 100


async def _host_signed_in(server, aiohttp_client, directory, admin, username, unit_id):
    """A new host account of ``unit_id``, signed in over HTTP: (client, CSRF header)."""
    await directory.create_account(admin, {"username": username, "display_name": username, "role": "host",
                                           "password": "password-123", "unit_id": unit_id})
    client = await aiohttp_client(server)
    resp = await client.post("/api/session", json={"username": username, "password": "password-123"})
    assert resp.status == 200, await resp.text()
    return client, {"X-CSRF-Token": (await resp.json())["csrf_token"]}


async def test_plans_are_edited_paused_and_deleted_in_scope_and_audited(plan_server, aiohttp_client):
    server, app, admin, district, rooms = plan_server
    directory = app[DIRECTORY]
    other = await directory.create_unit(admin, {"code": "D2", "name": "二区", "kind": "district",
                                                "parent_id": admin.unit_id})
    host, csrf = await _host_signed_in(server, aiohttp_client, directory, admin, "host1", district["id"])
    stranger, stranger_csrf = await _host_signed_in(server, aiohttp_client, directory, admin, "host2", other["id"])
    when = (dt.datetime.now(CST) + dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
    resp = await host.post("/api/plans", headers=csrf, json={
        "title": "每日点名", "target_unit_id": district["id"], "dtstart": when.isoformat(), "rrule": "FREQ=DAILY"})
    assert resp.status == 201, await resp.text()
    plan = await resp.json()
    url = f"/api/plans/{plan['id']}"

    # Another district's host cannot even learn that it exists.
    assert (await stranger.patch(url, headers=stranger_csrf, json={"title": "改"})).status == 404
    assert (await stranger.delete(url, headers=stranger_csrf)).status == 404
    assert (await host.patch(url, json={"title": "无令牌"})).status == 403  # CSRF

    resp = await host.patch(url, headers=csrf, json={"rrule": "FREQ=MINUTELY"})
    assert resp.status == 422 and "每小时" in (await resp.json())["error"]["message"]
    resp = await host.patch(url, headers=csrf, json={"title": "每日早点名", "active": False, "target_kinds": ["street"]})
    assert resp.status == 200, await resp.text()
    edited = await resp.json()
    assert edited["title"] == "每日早点名" and edited["active"] is False and edited["target_kinds"] == ["street"]
    assert edited["rrule"] == "FREQ=DAILY"  # untouched fields stay
    # Paused: its occurrence passes without a roll-call. (The scheduler's clock is driven from here.)
    clock = [when + dt.timedelta(minutes=1)]
    app[PLANS].clock = lambda: clock[0]
    assert await app[PLANS].fire_due() == []
    clock[0] = when + dt.timedelta(minutes=2)
    resp = await host.patch(url, headers=csrf, json={"active": True})
    assert resp.status == 200 and (await resp.json())["active"] is True
    # Resumed from now: the occurrence that fell while paused is not fired late; the next one is.
    assert await app[PLANS].fire_due() == []
    clock[0] = when + dt.timedelta(days=1, minutes=1)
    fired = await app[PLANS].fire_due()
    assert len(fired) == 1
    await app[COORDINATOR].command(admin, fired[0], "cancel", {})

    resp = await host.delete(url, headers=csrf)
    assert resp.status == 200, await resp.text()
    assert (await host.patch(url, headers=csrf, json={"title": "x"})).status == 404
    assert plan["id"] not in [p["id"] for p in await (await host.get("/api/plans")).json()]
    # The roll-call it fired keeps its record.
    board = await app[COORDINATOR].board(admin, fired[0])
    assert board["title"] == "每日早点名" and board["kind"] == "plan"
    clock[0] = when + dt.timedelta(days=2, minutes=1)
    assert await app[PLANS].fire_due() == []
    actions = [e["action"] for e in await directory.audit_log(admin) if e["target_type"] == "plan"]
    assert actions[:4] == ["delete_plan", "update_plan", "update_plan", "create_plan"], actions


async def test_migration_0005_restarts_plans_from_now_and_pauses_sub_hourly_ones(planner, tmp_path):
    """Marks written before the fix are local wall times read as UTC: every plan restarts from now."""
    from dutycall import db as database

    app, admin, district, _ = planner
    hourly = await app[PLANS].create(admin, {"title": "每小时", "target_unit_id": district["id"],
                                             "dtstart": "2026-01-01T00:00:00+08:00", "rrule": "FREQ=HOURLY"})
    minutely = await app[PLANS].create(admin, {"title": "每分钟", "target_unit_id": district["id"],
                                               "dtstart": "2026-01-01T00:00:00+08:00"})
    wrong = dt.datetime(2030, 1, 1)  # a +08:00 wall time, 8 hours "late": nothing would fire till then
    async with app[DIRECTORY].sessionmaker() as session:
        for plan in (await session.execute(select(RollCallPlan))).scalars():
            plan.last_fired_at = wrong
            if plan.id == minutely["id"]:
                plan.rrule = "FREQ=MINUTELY"
        await session.commit()
    url = f"sqlite:///{tmp_path}/plans.sqlite3"
    before = dt.datetime.now(dt.UTC)
    await asyncio.to_thread(database.downgrade_sync, url, "0004")
    await asyncio.to_thread(database.upgrade_sync, url)
    async with app[DIRECTORY].sessionmaker() as session:
        plans = {p.id: p for p in (await session.execute(select(RollCallPlan))).scalars()}
        marks = [p.last_fired_at.replace(tzinfo=dt.UTC) for p in plans.values()]
        assert all(before - dt.timedelta(seconds=1) <= m <= dt.datetime.now(dt.UTC) for m in marks), marks
        assert plans[hourly["id"]].active is True and plans[minutely["id"]].active is False


async def test_the_supervised_unit_cannot_switch_off_its_own_plan(plan_server, aiohttp_client):
    """A district's plan for one of its streets: that street's host sees it but may not pause,
    edit or delete it, nor run the roll-calls it fires (they run in the district host's scope)."""
    server, app, admin, district, rooms = plan_server
    directory = app[DIRECTORY]
    street = next(u for u in await directory.list_units(admin) if u["code"] == "S1")
    boss, boss_csrf = await _host_signed_in(server, aiohttp_client, directory, admin, "district-host", district["id"])
    supervised, csrf = await _host_signed_in(server, aiohttp_client, directory, admin, "street-host", street["id"])
    when = (dt.datetime.now(CST) + dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
    resp = await boss.post("/api/plans", headers=boss_csrf, json={
        "title": "街道抽查", "target_unit_id": street["id"], "dtstart": when.isoformat(), "rrule": "FREQ=DAILY"})
    assert resp.status == 201, await resp.text()
    url = f"/api/plans/{(await resp.json())['id']}"
    assert url.rsplit("/", 1)[1] in [str(p["id"]) for p in await (await supervised.get("/api/plans")).json()]
    assert (await supervised.patch(url, headers=csrf, json={"active": False})).status == 403
    assert (await supervised.delete(url, headers=csrf)).status == 403
    assert (await (await boss.get("/api/plans")).json())[0]["active"] is True
    # Its roll-call runs in the district host's scope: the street's host cannot cancel it.
    clock = [when + dt.timedelta(minutes=1)]
    app[PLANS].clock = lambda: clock[0]
    fired = await app[PLANS].fire_due()
    assert len(fired) == 1
    resp = await supervised.post(f"/api/rollcalls/{fired[0]}/cancel", headers=csrf, json={})
    assert resp.status == 404
    resp = await boss.post(f"/api/rollcalls/{fired[0]}/cancel", headers=boss_csrf, json={})
    assert resp.status == 200, await resp.text()
    # The plan's own host (and those above it) still manage it.
    assert (await boss.patch(url, headers=boss_csrf, json={"active": False})).status == 200
