"""The coordinator without media: its units of work, its effect table, its typed commands and clock.

A real database (migrated SQLite), a real Conference with nobody in it; no server, no peers.
"""

from __future__ import annotations

import typing

import pytest
from sqlalchemy import event

from dutycall import db
from dutycall.conference import Conference
from dutycall.directory.bootstrap import ensure_first_admin
from dutycall.directory.service import Directory
from dutycall.rollcall import commands, machine
from dutycall.rollcall.clock import ManualClock, SystemClock, as_clock
from dutycall.rollcall.commands import Call, Excuse, Poll, Start, parse_command, parse_create, parse_officer
from dutycall.rollcall.coordinator import RollCallCoordinator
from dutycall.rollcall.errors import Invalid, NotFound

from .conftest import ADMIN_PASSWORD
from .utils import wait_for


class CountingSessionmaker:
    """The app's sessionmaker, counting the sessions opened through it (plain or ``begin()``)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.opened = 0

    def __call__(self, **kw):
        self.opened += 1
        return self.inner(**kw)

    def begin(self):
        self.opened += 1
        return self.inner.begin()


@pytest.fixture
async def world(tmp_path):
    url = f"sqlite:///{tmp_path}/coordinator.sqlite3"
    await db.upgrade(url)
    engine = db.make_engine(url)
    sessionmaker = db.make_sessionmaker(engine)
    await ensure_first_admin(sessionmaker, "admin", ADMIN_PASSWORD)
    directory = Directory(sessionmaker)
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    rooms = [(await directory.create_room(admin, {"unit_id": admin.unit_id, "name": f"{n}号值班室"}))["id"]
             for n in range(3)]
    # Every statement that reads the roll-call row, on this engine only (nothing else uses it now).
    reads: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if statement.lstrip().upper().startswith("SELECT") and "FROM roll_calls" in statement:
            reads.append(statement)

    counting = CountingSessionmaker(sessionmaker)
    conference = Conference()
    coordinator = RollCallCoordinator(counting, conference, clock=ManualClock())
    yield coordinator, counting, reads, admin, rooms
    await coordinator.close()
    await conference.close()
    await engine.dispose()


async def test_one_host_click_is_one_unit_of_work_reading_the_roll_call_once(world):
    coordinator, counting, reads, admin, rooms = world
    created = await coordinator.create(admin, {"room_ids": rooms, "answer_window": 30})
    rid = created["id"]
    await coordinator.command(admin, rid, "start", {})
    coordinator._live.clear()  # as after a restart: the roll-call is loaded from its row
    for action, data in (("call", {}), ("call", {}), ("call", {"room_id": rooms[0]}),
                         ("excuse", {"room_id": rooms[2], "reason": "停电"}), ("finish", {})):
        counting.opened, reads[:] = 0, []
        board = await coordinator.command(admin, rid, action, data)
        # Before (one session each for scope, load, commit, board scope, board rows): 4-5 and 3 reads.
        assert counting.opened == 1, (action, counting.opened)
        assert len(reads) == 1, (action, reads)
    # Nobody is connected: both calls recorded offline, the third room excused.
    assert [r["status"] for r in board["rooms"]] == ["offline", "offline", "excused"]
    assert board["phase"] == "finished" and board["rooms"][0]["attempts"] == 2
    counting.opened = 0
    await coordinator.board(admin, rid)
    assert counting.opened == 1


async def test_a_refused_command_writes_nothing(world):
    coordinator, counting, reads, admin, rooms = world
    rid = (await coordinator.create(admin, {"room_ids": rooms[:1]}))["id"]
    with pytest.raises(machine.IllegalEvent):
        await coordinator.command(admin, rid, "call", {})  # not started
    with pytest.raises(Invalid):
        await coordinator.command(admin, rid, "excuse", {"room_id": rooms[0], "reason": "\x1b[31m"})
    assert (await coordinator.board(admin, rid))["phase"] == "scheduled"


async def test_the_scheduler_s_typed_commands_need_no_principal(world):
    coordinator, counting, reads, admin, rooms = world
    owner = commands.Owner(admin.id, admin.unit_path)
    created = await coordinator.open(commands.CreateRollCall(tuple(rooms), "计划点名", 60.0, 30.0, "plan"), owner)
    state = await coordinator.execute(created["id"], Start())
    assert state.phase == "running"
    board = await coordinator.board(admin, created["id"])
    assert board["kind"] == "plan" and board["title"] == "计划点名" and board["phase"] == "running"
    # A plan of another scope reaches no room of this one.
    with pytest.raises(NotFound):
        await coordinator.open(commands.CreateRollCall(tuple(rooms)), commands.Owner(None, "/999/"))


def test_every_effect_of_the_machine_has_a_handler():
    coordinator = RollCallCoordinator(None, Conference())  # type: ignore[arg-type]
    assert set(coordinator._effects) == set(typing.get_args(machine.Effect))


def test_host_commands_are_parsed_in_one_place():
    assert parse_command("call", {}) == Call(None)
    assert parse_command("call", {"room_id": 7}) == Call(7)
    assert parse_command("poll", {}) == Poll(10.0)
    assert parse_command("excuse", {"room_id": 3, "reason": "检修" * 200}) == Excuse(3, ("检修" * 200)[:256])
    for action, data in (("call", {"room_id": True}), ("call", {"room_id": "1"}), ("poll", {"dwell": "x"}),
                         ("excuse", {"room_id": 3}), ("excuse", {"room_id": 3, "reason": "a\x00"})):
        with pytest.raises(Invalid):
            parse_command(action, data)
    with pytest.raises(NotFound):
        parse_command("explode", {})
    assert set(commands.ACTIONS) == {"start", "call", "skip", "excuse", "poll", "stop_poll", "finish", "cancel"}


def test_a_new_roll_call_is_parsed_with_the_old_defaults():
    created = parse_create({"room_ids": [1, 2]})
    assert (created.title, created.answer_window, created.late_after, created.kind) == ("视频点名", 60.0, 30.0, "adhoc")
    assert parse_create({"room_ids": [1], "answer_window": 20}).late_after == 20.0
    assert parse_create({"room_ids": [1], "kind": "bogus"}).kind == "adhoc"
    for bad in ({"room_ids": []}, {"room_ids": [True]}, {"room_ids": [1], "title": "a\x07"},
                {"room_ids": [1], "answer_window": True}, {"room_ids": [1, 2], "kind": "spot_check"}):
        with pytest.raises(Invalid):
            parse_create(bad)
    assert parse_officer("  张三 ") == "张三"
    for bad in (None, 7, "", "  ", "名" * 65, "张\n三"):
        with pytest.raises(Invalid):
            parse_officer(bad)


def test_a_manual_clock_runs_the_timers_it_passes_in_order():
    clock = ManualClock(1000.0)
    fired: list[str] = []
    clock.call_at(1010.0, lambda: fired.append("window"))
    clock.call_at(1005.0, lambda: fired.append("poll"))
    cancelled = clock.call_at(1001.0, lambda: fired.append("cancelled"))
    cancelled.cancel()
    clock.advance(4.0)
    assert fired == [] and clock() == 1004.0
    clock.advance(10.0)
    assert fired == ["poll", "window"]
    assert isinstance(as_clock(None), SystemClock) and as_clock(clock) is clock
    assert as_clock(lambda: 5.0)() == 5.0


async def test_followers_are_told_the_board_after_each_committed_command(world):
    coordinator, counting, _reads, admin, rooms = world
    rid = (await coordinator.create(admin, {"room_ids": rooms, "answer_window": 30}))["id"]
    other = (await coordinator.create(admin, {"room_ids": rooms[:1], "answer_window": 30}))["id"]
    # Nobody follows: a command opens its own unit of work and nothing more reads the board.
    counting.opened = 0
    await coordinator.command(admin, other, "start", {})
    await wait_for(lambda: not coordinator.followers._reading, timeout=5)
    assert counting.opened == 1

    seen: list[dict] = []
    unfollow = coordinator.follow(rid, seen.append)
    elsewhere: list[dict] = []
    coordinator.follow(other, elsewhere.append)
    await coordinator.command(admin, rid, "start", {})
    await wait_for(lambda: seen and seen[-1]["phase"] == "running", timeout=5, what="the started board")
    await coordinator.command(admin, rid, "call", {})  # nobody is connected: offline at once
    await wait_for(lambda: seen[-1]["rooms"][0]["status"] == "offline", timeout=5, what="the call pushed")
    # Steps the coordinator takes by itself (polling, on its clock) are pushed too.
    await coordinator.command(admin, rid, "poll", {"dwell": 5})
    coordinator.clock.advance(6)
    await wait_for(lambda: seen[-1]["rooms"][1]["status"] == "offline", timeout=5, what="the polling step")
    await coordinator.command(admin, rid, "stop_poll", {})
    await coordinator.command(admin, rid, "excuse", {"room_id": rooms[2], "reason": "停电"})
    await wait_for(lambda: seen[-1]["rooms"][2]["status"] == "excused", timeout=5, what="the excuse pushed")
    assert all(board["id"] == rid for board in seen) and elsewhere == []  # each board to its own followers

    # Changes close together make one read, not one each.
    await wait_for(lambda: not coordinator.followers._reading, timeout=5)
    counting.opened, before = 0, len(seen)
    for _ in range(5):
        coordinator.followers.changed(rid)
    await wait_for(lambda: not coordinator.followers._reading, timeout=5)
    assert counting.opened == 1 and len(seen) == before + 1

    unfollow()
    unfollow()  # idempotent
    told = len(seen)
    await coordinator.command(admin, rid, "finish", {})
    await wait_for(lambda: not coordinator.followers._reading, timeout=5)
    assert len(seen) == told and coordinator.followers.followed(rid) == 0
