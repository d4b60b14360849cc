"""Times in the deployment's zone (``--timezone``), whatever the process's own zone (TZ) is."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select, update

from dutycall import timezone
from dutycall.config import add_arguments, from_args
from dutycall.rollcall.models import AttendanceRecord, RollCallRecord
from dutycall.rollcall.statistics import month_bounds
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import SERVICES
from dutycall.web.rollcalls import COORDINATOR, RESULTS

from .conftest import ADMIN_PASSWORD, make_config

AT = dt.datetime(2026, 12, 3, 15, 39, 49, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _restore_zone():
    before = timezone.zone()
    yield
    timezone.set_zone(before)


async def _sheet_at(aiohttp_server, tmp_path, zone: str) -> tuple[list[list[str]], str]:
    """A roll-call started and answered at 15:39:49 UTC, under a server configured for ``zone``:
    its CSV rows and its PDF's text."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/{zone.replace('/', '_')}.sqlite3", timezone=zone))
    await aiohttp_server(app, host="127.0.0.1")  # starts it: the database, the first administrator
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    unit = await directory.create_unit(admin, {"code": "D1", "name": "一区", "kind": "district",
                                               "parent_id": admin.unit_id})
    room = await directory.create_room(admin, {"unit_id": unit["id"], "name": "一区值班室"})
    coordinator = app[COORDINATOR]
    rid = (await coordinator.create(admin, {"room_ids": [room["id"]]}))["id"]
    for action in ("start", "call", "finish"):
        await coordinator.command(admin, rid, action, {})
    async with app[SERVICES].sessionmaker() as db:
        await db.execute(update(RollCallRecord).where(RollCallRecord.id == rid).values(started_at=AT))
        await db.execute(update(AttendanceRecord).where(AttendanceRecord.roll_call_id == rid)
                         .values(officer="张三", at=AT))
        await db.commit()
        assert (await db.execute(select(AttendanceRecord.id))).first() is not None
    results = app[RESULTS]
    rows = list(csv.reader(io.StringIO((await results.sheet_csv(admin, rid)).decode("utf-8-sig"))))
    from pypdf import PdfReader

    pdf = PdfReader(io.BytesIO(await results.sheet_pdf(admin, rid)))
    text = "".join(page.extract_text() for page in pdf.pages)
    return rows, text


@pytest.mark.parametrize(("zone", "shown"), [("Asia/Shanghai", "2026-12-03 23:39:49 +0800"),
                                             ("America/New_York", "2026-12-03 10:39:49 -0500")])
async def test_a_sheet_prints_times_in_the_configured_zone(aiohttp_server, tmp_path, monkeypatch, zone, shown):
    monkeypatch.setenv("TZ", "UTC")  # the process's zone must not matter
    rows, text = await _sheet_at(aiohttp_server, tmp_path, zone)
    assert shown in "".join(rows[1]), rows
    assert shown in text.replace("\n", " ")


def test_the_setting_comes_from_the_flag_or_the_environment(monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    monkeypatch.setenv("DUTYCALL_TIMEZONE", "Asia/Shanghai")
    add_arguments(parser)
    assert from_args(parser.parse_args([])).timezone == "Asia/Shanghai"
    assert from_args(parser.parse_args(["--timezone", "Europe/Berlin"])).timezone == "Europe/Berlin"
    with pytest.raises(SystemExit):
        from_args(parser.parse_args(["--timezone", "Mars/Olympus"]))


def test_months_and_days_are_cut_in_the_configured_zone():
    timezone.set_zone("Asia/Shanghai")
    first, following = month_bounds("2026-12")
    assert first.astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
    assert following.astimezone(dt.UTC) == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    timezone.set_zone("America/New_York")
    first, _ = month_bounds("2026-07")  # daylight saving: -04:00 in July
    assert first.astimezone(dt.UTC) == dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
    assert timezone.local(AT).strftime("%H:%M") == "10:39"
    timezone.set_zone("")  # empty: the system's zone, never an error
    assert timezone.zone() is not None


def test_the_duty_day_that_picks_the_rostered_officer_is_the_deployments_date(monkeypatch):
    """At 03:00 in Beijing it is still yesterday in UTC: the roster shift is today's, whatever
    the process's own zone (TZ=UTC, as in a container)."""
    import time

    from dutycall.rollcall.store import duty_day

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        at = dt.datetime(2026, 12, 2, 19, 0, tzinfo=dt.UTC).timestamp()  # 03:00 on the 3rd in Beijing
        timezone.set_zone("Asia/Shanghai")
        assert duty_day(at) == dt.date(2026, 12, 3)
        timezone.set_zone("America/New_York")
        assert duty_day(at) == dt.date(2026, 12, 2)
    finally:
        monkeypatch.undo()
        time.tzset()
