"""The demo city's month of past roll-calls, run through the real coordinator on a manual clock.

Every week the city's host calls the district and agency duty rooms (全市值班室周例行点名), and
on some nights 福田区 calls its streets (夜间抽查): most rooms answer on time, some late, a few
not at all (absent), some were offline, one was excused. Attendance, the board, the sheets and
the statistics come from the real state machine and store; the supervision notices for the late,
absent and offline rooms from ``Results.issue_notices``, and some of them are answered and closed
through ``Supervision`` as the units would. Consoles that "were online" are the only thing
pretended: the coordinator's presence is told which rooms were connected.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..conference import Conference, ConferenceSettings
from ..directory.models import Account, DutyRoom, Unit
from ..directory.principal import Principal, PrincipalKind
from ..supervision.service import Supervision
from . import machine
from .clock import ManualClock
from .coordinator import RollCallCoordinator
from .results import Results


@dataclass(frozen=True)
class Series:
    title: str
    host: str  # username
    units: tuple[str, ...]  # unit codes whose duty rooms are called ("D*": every district)
    weekday: int | None  # 0 Monday; None: the nights in ``nights``
    at: str
    nights: tuple[int, ...] = ()  # days before today


SERIES = (
    Series("全市值班室周例行点名", "city-host", ("D*", "A01", "A02", "A03"), 0, "09:00"),
    Series("福田区街道夜间抽查", "d01-host", ("D01S*",), None, "02:30", nights=(3, 11, 24)),
)
#: Outcome weights: on time, late, absent, offline (the rest), as duty rooms really do.
ON_TIME, LATE, ABSENT = 0.80, 0.09, 0.05
EXCUSE = ("A03", "防汛应急演练，值班人员在现场")
#: In the first roll-call, rooms at these positions: late, absent, offline (each kind shows).
FORCED = {1: ON_TIME + LATE / 2, 2: ON_TIME + LATE + ABSENT / 2, 3: 0.99}


def _principal(account: Account, unit: Unit) -> Principal:
    return Principal(kind=PrincipalKind.ACCOUNT, id=account.id, name=account.display_name, role=account.role,
                     unit_id=account.unit_id, unit_path=unit.path)


async def load_rollcalls(sessionmaker: async_sessionmaker[AsyncSession], today: dt.date) -> int:
    """Run :data:`SERIES` over the four weeks before ``today``; returns the number of roll-calls."""
    rng = random.Random(2027)
    async with sessionmaker() as db:
        people = {a.username: _principal(a, u) for a, u in (await db.execute(
            select(Account, Unit).join(Unit, Unit.id == Account.unit_id))).all()}
        rooms = (await db.execute(select(DutyRoom, Unit).join(Unit).where(DutyRoom.active.is_(True))
                                  .order_by(Unit.path, DutyRoom.id))).all()
        officers = {u.id: people[a.username] for a, u in (await db.execute(
            select(Account, Unit).join(Unit, Unit.id == Account.unit_id)
            .where(Account.role == "duty_officer"))).all()}
    clock = ManualClock(timezone.midnight(today - dt.timedelta(days=29)).timestamp())
    conference = Conference(ConferenceSettings())
    coordinator = RollCallCoordinator(sessionmaker, conference, evidence_gap=0.0, clock=clock)
    online: set[int] = set()
    # The one pretence: which consoles were connected when called (there are none in a demo).
    coordinator.presence.is_connected = lambda _rid, room_id: room_id in online  # type: ignore[method-assign,assignment]
    results, supervision = Results(sessionmaker), Supervision(sessionmaker)

    def targets(series: Series) -> list[tuple[DutyRoom, Unit]]:
        def wanted(code: str) -> bool:
            return any(code == p or (p.endswith("*") and code.startswith(p[:-1]) and
                                     (p != "D*" or len(code) == 3)) for p in series.units)
        return [(r, u) for r, u in rooms if wanted(u.code)]

    occasions: list[tuple[dt.datetime, Series]] = []
    for back in range(28, 0, -1):
        day = today - dt.timedelta(days=back)
        for series in SERIES:
            if (series.weekday is not None and day.weekday() == series.weekday) or back in series.nights:
                hour, minute = (int(x) for x in series.at.split(":"))
                occasions.append((timezone.aware(dt.datetime.combine(day, dt.time(hour, minute))), series))
    count = 0
    for when, series in sorted(occasions, key=lambda o: o[0]):
        clock.now = when.timestamp()
        host = people[series.host]
        called = targets(series)
        created = await coordinator.create(host, {"title": f"{series.title}（{when:%m月%d日}）",
                                                  "room_ids": [r.id for r, _ in called],
                                                  "answer_window": 60, "late_after": 30})
        rid = created["id"]
        await coordinator.command(host, rid, "start", {})
        for index, (room, unit) in enumerate(called):
            clock.now += 20
            if unit.code == EXCUSE[0]:
                await coordinator.command(host, rid, "excuse", {"room_id": room.id, "reason": EXCUSE[1]})
                continue
            roll = rng.random()
            if count == 0 and index in FORCED:  # every outcome at least once, whatever the dates
                roll = FORCED[index]
            online.clear()
            if roll < ON_TIME + LATE + ABSENT:
                online.add(room.id)
            await coordinator.command(host, rid, "call", {"room_id": room.id})
            if room.id not in online:
                continue  # recorded offline at once
            name = _person(rng)  # whoever was on duty answers by name
            if roll < ON_TIME:
                clock.now += rng.randint(4, 25)
                await coordinator.answer(rid, room.id, name)
            elif roll < ON_TIME + LATE:
                clock.now += rng.randint(32, 55)
                await coordinator.answer(rid, room.id, name)
            else:
                clock.now += 60
                await coordinator.dispatch(rid, machine.WindowExpired(room_id=room.id, at=clock.now))
        clock.now += 30
        await coordinator.command(host, rid, "finish", {})
        await results.issue_notices(rid)
        count += 1
    # Some notices answered by their units, some of those closed by the host above them: in
    # turn, one left open (待回复), one answered and closed (已办结), one answered (已回复).
    mine = [n for n in sorted(await supervision.notices(people["city-host"]), key=lambda n: n["id"])
            if n.get("roll_call_id") is not None]
    for n, notice in enumerate(mine):
        room_unit = next((u for r, u in rooms if r.id == notice.get("duty_room_id")), None)
        officer = officers.get(room_unit.id) if room_unit is not None else None
        if officer is None or n % 3 == 0:
            continue
        await supervision.respond(officer, notice["id"], "已查明原因：值班电脑网络中断，已更换网线并加强值守检查。")
        if n % 3 == 1:
            await supervision.close(people["city-host"], notice["id"])
    await coordinator.close()
    return count


def _person(rng: random.Random) -> str:
    from ..directory.demo import _person as person  # the same names as the demo's roster

    return person(rng)
