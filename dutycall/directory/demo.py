"""``dutycall demo``: a realistic demo city to try everything at once.

One city duty office, 10 districts, 74 streets, 20 agencies and enterprises, each with a
duty room; hosts, leaders, viewers and duty officers; a month of roster from today, and the month
of incidents before it (``incidents/demo.py``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from . import security
from .models import (
    Account,
    DeviceCredential,
    DutyRoom,
    Role,
    RosterShift,
    RosterSubmission,
    Unit,
    UnitKind,
)
from .service import Directory, pinyin_key

DEMO_PASSWORD = "demo-2027"
DISTRICTS = [("福田区", 10), ("罗湖区", 10), ("南山区", 8), ("盐田区", 4), ("宝安区", 10),
             ("龙岗区", 11), ("龙华区", 6), ("坪山区", 6), ("光明区", 6), ("大鹏新区", 3)]
STREETS = [
    "园岭", "南园", "沙头", "香蜜湖", "莲花", "华富", "梅林", "华强北", "福保", "上步",
    "东门", "南湖", "桂园", "黄贝", "翠竹", "笋岗", "清水河", "莲塘", "东晓", "东湖",
    "招商", "蛇口", "粤海", "南头", "南山", "沙河", "西丽", "桃源",
    "海山", "沙头角", "梅沙", "盐田",
    "新安", "西乡", "航城", "福永", "沙井", "松岗", "石岩", "新桥", "燕罗", "福海",
    "龙城", "坪地", "横岗", "布吉", "南湾", "平湖", "坂田", "吉华", "龙岗", "宝龙", "园山",
    "观湖", "民治", "大浪", "福城", "观澜", "龙华",
    "坪山", "马峦", "碧岭", "石井", "坑梓", "龙田",
    "光明", "公明", "新湖", "凤凰", "玉塘", "马田",
    "葵涌", "大鹏", "南澳",
]
AGENCIES = [
    ("市应急管理局", UnitKind.agency), ("市公安局", UnitKind.agency), ("市消防救援支队", UnitKind.agency),
    ("市卫生健康委员会", UnitKind.agency), ("市交通运输局", UnitKind.agency), ("市水务局", UnitKind.agency),
    ("市气象局", UnitKind.agency), ("市住房和建设局", UnitKind.agency), ("市生态环境局", UnitKind.agency),
    ("市规划和自然资源局", UnitKind.agency), ("市城市管理和综合执法局", UnitKind.agency),
    ("市市场监督管理局", UnitKind.agency), ("市民政局", UnitKind.agency), ("市教育局", UnitKind.agency),
    ("市地铁集团", UnitKind.enterprise), ("市燃气集团", UnitKind.enterprise), ("市水务集团", UnitKind.enterprise),
    ("市供电局", UnitKind.enterprise), ("市机场集团", UnitKind.enterprise), ("市港务集团", UnitKind.enterprise),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰海燕斌宇浩凯晨欣怡子轩梓涵"

assert len(STREETS) == sum(n for _, n in DISTRICTS) == 74
#: The holiday roster period the directory page opens on (its defaults), with data in the demo.
HOLIDAY_PERIOD = "2027春节"
HOLIDAY_START, HOLIDAY_END = dt.date(2027, 2, 10), dt.date(2027, 2, 16)


@dataclass
class DemoSummary:
    units: int
    rooms: int
    accounts: int
    shifts: int
    console_token: str
    console_room: str
    incidents: int = 0
    rollcalls: int = 0

    @property
    def console_link(self) -> str:
        """The link a duty-room PC opens once: signed in as that room, it waits on standby
        (never in a free-form room, where others could watch it)."""
        return f"/?device={self.console_token}"


class DemoExists(Exception):
    """The demo city is already loaded."""


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))


async def load_demo(sessionmaker: async_sessionmaker[AsyncSession], days: int = 30,
                    today: dt.date | None = None, incidents: bool = True, rollcalls: bool = True) -> DemoSummary:
    """Load the demo city under the root unit; refuses if it is already there. With ``incidents``,
    also the month of incidents before ``today`` (``incidents/demo.py``), filed through the real
    service so that their deadlines, flags and notices follow the real rules."""
    rng = random.Random(2027)
    today = today or timezone.today()
    async with sessionmaker() as db:
        if (await db.execute(select(Unit.id).where(Unit.code == "D01"))).first():
            raise DemoExists("the demo city is already loaded")
        root = (await db.execute(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id))).scalars().first()
        if root is None:
            root = Unit(code="city", name="市总值班室", kind=UnitKind.city, path="/",
                        name_pinyin=pinyin_key("市总值班室"))
            db.add(root)
            await db.flush()
            root.path = f"/{root.id}/"
        password_hash = security.hash_password(DEMO_PASSWORD)
        units: list[Unit] = []
        rooms: list[DutyRoom] = []
        accounts: list[Account] = []

        async def add_unit(code: str, name: str, kind: UnitKind, parent: Unit, order: int) -> Unit:
            unit = Unit(code=code, name=name, kind=kind, parent_id=parent.id, path=parent.path, sort_order=order,
                        name_pinyin=pinyin_key(name))
            db.add(unit)
            await db.flush()
            unit.path = f"{parent.path}{unit.id}/"
            units.append(unit)
            room_name = f"{name}值班室"
            room = DutyRoom(unit_id=unit.id, name=room_name, phone=f"0755-{rng.randint(20000000, 89999999)}",
                            location=f"{name}办公楼", name_pinyin=pinyin_key(room_name))
            db.add(room)
            rooms.append(room)
            return unit

        def add_account(username: str, name: str, role: Role, unit: Unit) -> None:
            accounts.append(Account(username=username, display_name=name, phone=_phone(rng), role=role,
                                    unit_id=unit.id, password_hash=password_hash, name_pinyin=pinyin_key(name)))

        city_room = DutyRoom(unit_id=root.id, name="市总值班室", phone="0755-12345678", location="市政府大楼",
                             name_pinyin=pinyin_key("市总值班室"))
        if not (await db.execute(select(DutyRoom.id).where(DutyRoom.unit_id == root.id))).first():
            db.add(city_room)
            rooms.append(city_room)
        add_account("city-host", "市值班主任", Role.host, root)
        add_account("city-leader", "市值班领导", Role.leader, root)
        add_account("city-viewer", "市值班查看员", Role.viewer, root)
        streets = iter(STREETS)
        for d, (district_name, count) in enumerate(DISTRICTS, start=1):
            district = await add_unit(f"D{d:02d}", district_name, UnitKind.district, root, d)
            add_account(f"d{d:02d}-admin", f"{district_name}管理员", Role.admin, district)
            add_account(f"d{d:02d}-host", f"{district_name}值班主任", Role.host, district)
            for s in range(1, count + 1):
                street = await add_unit(f"D{d:02d}S{s:02d}", f"{next(streets)}街道", UnitKind.street, district, s)
                add_account(f"d{d:02d}s{s:02d}", f"{street.name}值班员", Role.duty_officer, street)
        for a, (name, kind) in enumerate(AGENCIES, start=1):
            agency = await add_unit(f"A{a:02d}", name, kind, root, 100 + a)
            add_account(f"a{a:02d}", f"{name}值班员", Role.duty_officer, agency)
        db.add_all(accounts)
        await db.flush()

        # Thousands of shifts: one executemany (a row at a time through the ORM was most of the load).
        shifts: list[dict[str, Any]] = []
        for room in rooms:
            for offset in range(days):
                shifts.append({
                    "duty_room_id": room.id, "date": today + dt.timedelta(days=offset),
                    "leader_name": _person(rng), "leader_phone": _phone(rng),
                    "officers": [{"name": _person(rng), "phone": _phone(rng)} for _ in range(2)]})
        # The holiday roster the directory page opens on (2027春节): most units have submitted
        # theirs, a few have not (报送情况 shows both), and the handbook has pages to print.
        holiday = [HOLIDAY_START + dt.timedelta(days=n) for n in range((HOLIDAY_END - HOLIDAY_START).days + 1)
                   if HOLIDAY_START + dt.timedelta(days=n) >= today + dt.timedelta(days=days)]  # not rostered above
        submitted = [u for u in [root, *units] if rng.random() < 0.85]
        by_unit = {room.unit_id: room for room in rooms}
        for unit in submitted:
            holiday_room = by_unit.get(unit.id)
            if holiday_room is None:
                continue
            for day in holiday:
                shifts.append({"duty_room_id": holiday_room.id, "date": day, "leader_name": _person(rng),
                               "leader_phone": _phone(rng),
                               "officers": [{"name": _person(rng), "phone": _phone(rng)} for _ in range(2)]})
            db.add(RosterSubmission(unit_id=unit.id, period=HOLIDAY_PERIOD, rows=len(holiday)))
        await db.execute(insert(RosterShift), shifts)
        console_token = security.new_token()
        console_room = rooms[1]
        db.add(DeviceCredential(duty_room_id=console_room.id, token_hash=security.token_hash(console_token),
                                label="demo console"))
        Directory.audit(db, None, "load_demo", "unit", root.id, root.path, units=len(units), rooms=len(rooms))
        await db.commit()
        summary = DemoSummary(len(units), len(rooms), len(accounts), len(shifts), console_token, console_room.name)
    if incidents:
        from ..incidents.demo import load_incidents  # incidents build on the directory, not the reverse

        summary.incidents = await load_incidents(sessionmaker, today)
    if rollcalls:
        from ..rollcall.demo import load_rollcalls  # roll-calls build on the directory, not the reverse

        summary.rollcalls = await load_rollcalls(sessionmaker, today)
    return summary
