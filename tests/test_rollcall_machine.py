"""The roll-call state machine: every transition, and every illegal event changing nothing."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from dutycall.rollcall import machine as m
from dutycall.rollcall.machine import (
    Answer,
    Call,
    Cancel,
    Excuse,
    Finish,
    IllegalEvent,
    Interrupt,
    Skip,
    Start,
    StartPolling,
    StopPolling,
    WindowExpired,
    apply,
    new_roll_call,
)


def running(rooms=(1, 2, 3), window=60.0, late=30.0):
    return apply(new_roll_call(list(rooms), window, late), Start(at=0)).state


def effects_of(step, kind):
    return [e for e in step.effects if isinstance(e, kind)]


def test_start_then_call_next_rings_gives_floor_and_times_the_answer():
    s = running()
    step = apply(s, Call(at=10))
    assert step.state.current == 1 and step.state.room(1).status == m.CALLING
    assert step.effects == (m.GiveFloor(1), m.Ring(1), m.StartAnswerTimer(1, 70.0))


def test_answer_within_threshold_is_on_time_and_takes_evidence():
    s = apply(running(), Call(at=10)).state
    step = apply(s, Answer(room_id=1, at=25, officer="张三"))
    assert step.state.room(1).status == m.ON_TIME and step.state.current is None
    assert m.Record(1, m.ON_TIME, 25, officer="张三") in step.effects
    assert m.TakeEvidence(1) in step.effects and m.StopRinging(1) in step.effects
    assert m.CancelAnswerTimer(1) in step.effects


def test_answer_after_threshold_is_late():
    s = apply(running(), Call(at=10)).state
    step = apply(s, Answer(room_id=1, at=45))
    assert step.state.room(1).status == m.LATE
    assert m.Record(1, m.LATE, 45) in step.effects


def test_window_passing_makes_the_room_absent():
    s = apply(running(), Call(at=10)).state
    step = apply(s, WindowExpired(room_id=1, at=70))
    assert step.state.room(1).status == m.ABSENT and step.state.current is None
    assert m.Record(1, m.ABSENT, 70) in step.effects and m.GiveFloor(None) in step.effects


def test_calling_a_disconnected_console_records_offline_at_once():
    step = apply(running(), Call(at=10, room_id=2, connected=False))
    assert step.state.room(2).status == m.OFFLINE and step.state.current is None
    assert step.effects == (m.Record(2, m.OFFLINE, 10),)


def test_excuse_the_room_being_called_and_another():
    s = apply(running(), Call(at=10)).state
    step = apply(s, Excuse(room_id=1, reason="设备检修", at=12))
    assert step.state.room(1).status == m.EXCUSED and step.state.current is None
    assert m.Record(1, m.EXCUSED, 12, reason="设备检修") in step.effects and m.StopRinging(1) in step.effects
    step = apply(step.state, Excuse(room_id=3, reason="停电", at=13))
    assert step.state.room(3).status == m.EXCUSED
    assert step.effects == (m.Record(3, m.EXCUSED, 13, reason="停电"),)


def test_skip_puts_the_room_back_at_the_end_of_the_queue():
    s = apply(running(), Call(at=10)).state
    step = apply(s, Skip(at=15))
    assert [c.room_id for c in step.state.rooms] == [2, 3, 1]
    assert step.state.room(1).status == m.PENDING and step.state.next_pending() == 2
    assert not effects_of(step, m.Record)


def test_recall_an_absent_room_and_its_new_answer_replaces_the_outcome():
    s = apply(apply(running(), Call(at=10)).state, WindowExpired(room_id=1, at=70)).state
    step = apply(s, Call(at=100, room_id=1))
    assert step.state.room(1).status == m.CALLING and step.state.room(1).attempts == 2
    step = apply(step.state, Answer(room_id=1, at=105))
    assert step.state.room(1).status == m.ON_TIME
    assert m.Record(1, m.ON_TIME, 105) in step.effects


def test_polling_schedules_the_next_call_after_each_outcome():
    s = running()
    step = apply(s, StartPolling(dwell=8, at=0))
    assert step.effects == (m.ScheduleNextCall(0),)
    s = apply(step.state, Call(at=0)).state
    step = apply(s, Answer(room_id=1, at=5))
    assert m.ScheduleNextCall(13) in step.effects
    s = apply(step.state, Call(at=13)).state
    step = apply(s, WindowExpired(room_id=2, at=73))
    assert m.ScheduleNextCall(81) in step.effects
    step = apply(step.state, StopPolling(at=74))
    assert not step.state.polling
    s = apply(step.state, Call(at=80)).state
    assert not effects_of(apply(s, Answer(room_id=3, at=81)), m.ScheduleNextCall)


def test_finish_marks_the_uncalled_rooms():
    s = apply(apply(running(), Call(at=10)).state, Answer(room_id=1, at=12)).state
    step = apply(s, Finish(at=20))
    assert step.state.phase == "finished" and step.state.ended_at == 20
    assert [c.status for c in step.state.rooms] == [m.ON_TIME, m.NOT_CALLED, m.NOT_CALLED]
    assert m.Ended("finished") in step.effects
    # A late excuse still corrects the record after the end.
    step = apply(step.state, Excuse(room_id=2, reason="请假", at=30))
    assert step.state.room(2).status == m.EXCUSED


def test_cancel_before_start_and_during():
    assert apply(new_roll_call([1]), Cancel(at=0)).state.phase == "cancelled"
    s = apply(running(), Call(at=10)).state
    step = apply(s, Cancel(at=11))
    assert step.state.phase == "cancelled" and m.StopRinging(1) in step.effects


def test_interrupted_mid_call_then_resumed_loses_and_duplicates_nothing():
    s = apply(apply(running(), Call(at=10)).state, Answer(room_id=1, at=12)).state
    s = apply(s, Call(at=20)).state
    step = apply(s, Interrupt(at=25))
    assert step.state.phase == "interrupted" and step.state.current is None
    assert step.state.room(1).status == m.ON_TIME  # what was recorded stays
    assert step.state.room(2).status == m.PENDING  # the call in flight will be made again
    resumed = apply(step.state, Start(at=100)).state
    assert resumed.phase == "running" and resumed.started_at == 0 and resumed.next_pending() == 2


@pytest.mark.parametrize("make,event", [
    (lambda: running(), Answer(room_id=1, at=1)),                      # nobody is being called
    (lambda: apply(running(), Call(at=1)).state, Call(at=2)),          # one call at a time
    (lambda: apply(running(), Call(at=1)).state, Answer(room_id=2, at=2)),  # wrong room answers
    (lambda: apply(running(), Call(at=1)).state, Finish(at=2)),        # finish mid-call
    (lambda: apply(running(), Call(at=1)).state, WindowExpired(room_id=2, at=61)),
    (lambda: apply(apply(running(), Call(at=1)).state, Answer(room_id=1, at=2)).state,
     WindowExpired(room_id=1, at=61)),                                 # a stale timer
    (lambda: running(), Skip(at=1)),
    (lambda: running(), Call(at=1, room_id=99)),                       # not in this roll-call
    (lambda: running(), Excuse(room_id=1, reason="  ", at=1)),         # an excuse needs a reason
    (lambda: running(), StopPolling(at=1)),
    (lambda: running(), StartPolling(dwell=0, at=1)),
    (lambda: apply(running(), StartPolling(dwell=5, at=0)).state, StartPolling(dwell=5, at=1)),
    (lambda: running(rooms=(1,)), Start(at=1)),
])
def test_illegal_events_are_rejected_and_change_nothing(make, event):
    state = make()
    with pytest.raises(IllegalEvent):
        apply(state, event)
    # "Changes nothing" holds because a state cannot be changed at all: it is a frozen value,
    # rooms included (a mutable state would let a rejected event leave half its work behind).
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.phase = "finished"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.rooms[0].status = "absent"  # type: ignore[misc]
    assert isinstance(state.rooms, tuple)


def test_every_event_outside_the_table_is_illegal_in_every_phase():
    samples = [Start(at=1), Call(at=1), Answer(room_id=1, at=1), WindowExpired(room_id=1, at=1), Skip(at=1),
               Excuse(room_id=1, reason="r", at=1), StartPolling(dwell=1, at=1), StopPolling(at=1), Finish(at=1),
               Cancel(at=1), Interrupt(at=1)]
    phases = ["scheduled", "running", "finished", "cancelled", "interrupted"]
    base = new_roll_call([1, 2])
    for phase, event in itertools.product(phases, samples):
        state = m.replace(base, phase=phase)
        if (phase, type(event)) in m.TRANSITIONS:
            continue
        with pytest.raises(IllegalEvent):
            apply(state, event)
    # every phase that can end has some way out, and the end states only take excuses or a resume
    assert {p for p, _ in m.TRANSITIONS} == {"scheduled", "running", "finished", "interrupted"}


def test_a_roll_call_needs_distinct_rooms_and_a_sane_threshold():
    for args in (([],), ([1, 1],), ([1], 60, 0), ([1], 60, 90)):
        with pytest.raises(IllegalEvent):
            new_roll_call(*args)
