"""``dutycall demo`` loads a usable city, once; sign-in works afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from dutycall import db
from dutycall.directory.demo import HOLIDAY_PERIOD, HOLIDAY_START
from dutycall.directory.models import Account, DutyRoom, RosterShift, RosterSubmission, Unit, UnitKind
from dutycall.incidents.models import Incident, NotificationGroup
from dutycall.rollcall.models import AttendanceRecord, Notice, RollCallRecord

pytestmark = pytest.mark.slow

async def test_demo_city_loads_once_and_signs_in(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.sqlite3"
    run = [sys.executable, "-m", "dutycall.server", "demo", "--database-url", url]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "administrator: admin, password in " in first.stdout and "demo city loaded" in first.stdout
    # The generated password is in a file only its owner can read, not on the terminal or in a log.
    secret = tmp_path / "initial-admin-password"
    assert secret.stat().st_mode & 0o777 == 0o600
    admin_password = secret.read_text().strip()
    assert admin_password and admin_password not in first.stdout + first.stderr
    # The console link leads to the duty room's standby, never into a free-form room.
    link = next(line for line in first.stdout.splitlines() if "/?device=" in line)
    assert "room=" not in link
    # The second load (refused: already there) runs while the city loaded is checked below.
    second = await asyncio.create_subprocess_exec(*run, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    engine = db.make_engine(url)
    async with db.make_sessionmaker(engine)() as session:
        kinds = dict((await session.execute(select(Unit.kind, func.count()).group_by(Unit.kind))).all())
        assert kinds[UnitKind.city] == 1 and kinds[UnitKind.district] == 10 and kinds[UnitKind.street] == 74
        assert kinds[UnitKind.agency] + kinds[UnitKind.enterprise] == 20
        assert (await session.execute(select(func.count(DutyRoom.id)))).scalar_one() == 105
        # A month of roster from today, and the holiday period the directory page opens on (most units).
        assert (await session.execute(select(func.count(RosterShift.id)).where(
            RosterShift.date < HOLIDAY_START))).scalar_one() == 105 * 30
        submitted = (await session.execute(select(func.count(RosterSubmission.id)).where(
            RosterSubmission.period == HOLIDAY_PERIOD))).scalar_one()
        assert 60 < submitted < 105
        # A month of past roll-calls, with every kind of outcome and their notices, some answered.
        assert (await session.execute(select(func.count(RollCallRecord.id)).where(
            RollCallRecord.phase == "finished"))).scalar_one() >= 6
        outcomes = dict((await session.execute(select(AttendanceRecord.outcome, func.count())
                                               .group_by(AttendanceRecord.outcome))).all())
        assert {"on_time", "late", "absent", "offline", "excused"} <= set(outcomes)
        statuses = dict((await session.execute(select(Notice.status, func.count()).group_by(Notice.status))).all())
        assert {"open", "responded", "closed"} <= set(statuses)
        assert (await session.execute(select(func.count(Account.id)))).scalar_one() > 100
        assert (await session.execute(select(func.count(Incident.id)))).scalar_one() == 19  # incidents/demo.py
        groups = (await session.execute(select(NotificationGroup.name, NotificationGroup.categories)
                                        .order_by(NotificationGroup.id))).all()
        assert [(name, categories) for name, categories in groups][:2] == [("自然灾害短信组", ["natural"]),
                                                                          ("事故灾难短信组", ["accident"])]
        assert len(groups) == 5
    await engine.dispose()

    from dutycall.directory.demo import DEMO_PASSWORD
    from dutycall.directory.service import Directory

    engine = db.make_engine(url)
    directory = Directory(db.make_sessionmaker(engine))
    _, admin = await directory.sign_in("admin", admin_password)
    _, host = await directory.sign_in("d01-host", DEMO_PASSWORD)
    results = await directory.search_contacts(host, "ylj")
    assert "园岭街道" in [r["name"] for r in results]
    units = await directory.list_units(host)
    assert len(units) == 11  # 福田区 and its ten streets
    await engine.dispose()

    out, err = await asyncio.wait_for(second.communicate(), timeout=120)
    assert second.returncode == 0 and "already loaded" in out.decode(), err.decode()
