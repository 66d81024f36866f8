"""The queue engine's parts on their own (issue 16): the schedule of recomputes, the state it
holds between them, and the publisher. Fast and without subprocesses; the end-to-end tests
beside them (test_coalescing, test_failover, …) hold the engine they make up."""

from __future__ import annotations

import json

import pytest

from app.live.bus import Deposed, MemoryBus, RedisBus
from app.live.engine_state import EngineState
from app.live.publisher import Publisher
from app.live.schedule import Launch, RecomputeSchedule
from tests.support.redis_server import free_port


def always(_doctor: str) -> bool:
    return True


# The schedule -------------------------------------------------------------------------------

def test_clicks_go_earliest_first_timer_work_after_them_and_no_more_than_the_slots() -> None:
    schedule = RecomputeSchedule(concurrency=3)
    schedule.mark("timer", None)
    schedule.mark("late", 20.0)
    schedule.mark("early", 10.0)
    schedule.mark("middle", 15.0)
    assert [launch.doctor_id for launch in schedule.next_launches(always)] == ["early", "middle", "late"]
    assert schedule.next_launches(always) == []          # every slot taken
    schedule.finished("early")
    assert [launch.doctor_id for launch in schedule.next_launches(always)] == ["timer"]


def test_changes_to_a_doctor_in_flight_wait_and_are_taken_together() -> None:
    schedule = RecomputeSchedule()
    assert schedule.mark("d1", 10.0) is False
    schedule.note_token("d1", "t1")
    [first] = schedule.next_launches(always)
    assert (first.changed_at, first.extras) == (10.0, ["t1"])
    # Two more changes while it runs: coalesced, and not launched a second time meanwhile.
    assert schedule.mark("d1", 12.0) is True
    schedule.note_token("d1", "t2")
    assert schedule.mark("d1", 11.0) is True
    schedule.note_token("d1", "t3")
    assert schedule.next_launches(always) == []
    schedule.finished("d1")
    [second] = schedule.next_launches(always)
    assert (second.changed_at, second.extras) == (11.0, ["t2", "t3"])   # the earliest commit of the two


def test_a_sweep_takes_at_most_its_slots_after_the_clicks_and_merges_with_a_change() -> None:
    schedule = RecomputeSchedule(concurrency=5, sweep_concurrency=2)
    for doctor in ("s1", "s2", "s3", "s4"):
        schedule.add_to_sweep(doctor, all_of_day=True)
    schedule.mark("click", 5.0)
    schedule.mark("s4", 6.0)          # changed and due in the sweep: one recompute does both
    launches = schedule.next_launches(always)
    assert [launch.doctor_id for launch in launches] == ["click", "s4", "s1"]
    assert launches[1] == Launch("s4", 6.0, [], True, True)
    assert launches[2] == Launch("s1", None, [], True, True)
    assert schedule.sweeping_doctors() == {"s1", "s2", "s3", "s4"}
    assert schedule.waiting_count() == 2  # s2 and s3 still due
    schedule.finished("s1")
    assert [launch.doctor_id for launch in schedule.next_launches(always)] == ["s2"]


def test_a_doctor_not_laid_out_waits_for_the_layouts() -> None:
    schedule = RecomputeSchedule()
    schedule.mark("unknown", 1.0)
    schedule.mark("known", 2.0)
    assert [launch.doctor_id for launch in schedule.next_launches(lambda d: d == "known")] == ["known"]
    assert [launch.doctor_id for launch in schedule.next_launches(always)] == ["unknown"]


def test_a_failed_recompute_keeps_its_work_reads_every_view_again_and_frees_its_sweep_slot() -> None:
    schedule = RecomputeSchedule(sweep_concurrency=1)
    schedule.add_to_sweep("d1", all_of_day=True)
    schedule.add_to_sweep("d2", all_of_day=True)
    schedule.mark("d1", 3.0)
    schedule.note_token("d1", "t1")
    [launch] = [x for x in schedule.next_launches(always) if x.doctor_id == "d1"]
    schedule.failed(launch)
    assert schedule.sweeping == set()           # d2's sweep may go while d1 waits to retry
    assert [x.doctor_id for x in schedule.next_launches(always)] == ["d2"]
    schedule.finished("d1")
    schedule.finished("d2")
    [retry] = schedule.next_launches(always)
    assert retry == Launch("d1", 3.0, ["t1"], True, True)


# The state ----------------------------------------------------------------------------------

def layout(hospital: str, *departments: tuple[str, list[str], list[str]]) -> dict:
    return {"hospital_id": hospital, "departments": [
        {"dept_id": dept, "doctor_ids": doctors, "cabins": [{"cabin_id": c} for c in cabins]}
        for dept, doctors, cabins in departments]}


def queue(doctor: str, cabin: str, waiting: list[tuple[str, int, int]], serving: str | None = None) -> dict:
    return {"doctor_id": doctor, "cabin_id": cabin, "visit_date": "2027-03-01",
            "now_serving": {"token_number": serving} if serving else None,
            "waiting": [{"token_id": t, "position": p, "eta_minutes": eta, "eta_low_minutes": eta - 5,
                         "eta_high_minutes": eta + 5, "eta_beyond_shift": False} for t, p, eta in waiting]}


def view(token: str, doctor: str, status: str = "CHECKED_IN", position: int = 1, eta: int = 10,
         serving: str | None = None) -> dict:
    return {"token_id": token, "doctor_id": doctor, "status": status, "visit_date": "2027-03-01",
            "position": position, "eta_minutes": eta, "eta_low_minutes": eta - 5, "eta_high_minutes": eta + 5,
            "eta_beyond_shift": False, "now_serving": serving}


def test_layouts_index_doctors_and_a_doctor_computed_before_its_hospital_gets_its_boards() -> None:
    state = EngineState()
    state.set_queue("d2", queue("d2", "c2", []))    # computed before its hospital was read
    due = state.set_layouts([layout("h1", ("dep1", ["d1"], ["c1"]), ("dep2", ["d2"], ["c2"]))])
    assert due == {"h1"} and state.doctor_hospital == {"d1": "h1", "d2": "h1"}
    assert state.set_layouts([layout("h1", ("dep1", ["d1"], ["c1"]), ("dep2", ["d2"], ["c2"]))]) == set()
    # d1 seated in dep2's cabin shows on both departments' boards.
    assert [d["dept_id"] for d in state.departments_showing("d1", queue("d1", "c2", []))] == ["dep1", "dep2"]
    assert not state.department_ready(state.layouts["h1"]["departments"][0])
    state.set_queue("d1", queue("d1", "c1", []))
    assert state.department_ready(state.layouts["h1"]["departments"][0])


def test_a_doctor_moving_cabin_leaves_the_old_cabins_door() -> None:
    state = EngineState()
    state.set_queue("d1", queue("d1", "c1", []))
    state.set_queue("d1", queue("d1", "c2", []))
    assert state.by_cabin["c1"] == {} and list(state.by_cabin["c2"]) == ["d1"]


def test_held_views_follow_the_queue_without_reading_them_again() -> None:
    state = EngineState()
    state.hold_view("A", view("t1", "d1", position=1, eta=10))
    state.hold_view("B", view("t2", "d1", position=2, eta=20))
    state.hold_view("C", view("t3", "d1", status="COMPLETED"))          # closed: not held
    assert sorted(state.held_tokens("d1") or []) == ["t1", "t2"]
    # t1 is called (its own view was read again), t2 moves up.
    moved = queue("d1", "c1", [("t2", 1, 10)], serving="CARD-001")
    changed = state.patched_views("d1", moved, read={"t1"})
    assert [(code, v["position"], v["eta_minutes"], v["now_serving"]) for code, v in changed] == [
        ("B", 1, 10, "CARD-001")]
    assert state.patched_views("d1", moved, read={"t1"}) == []          # nothing new: nothing to send
    # A transfer files the view under its new doctor.
    state.hold_view("B", view("t2", "d2"))
    assert state.held_tokens("d1") == ["t1"] and state.held_tokens("d2") == ["t2"]
    # A view of another day (left open at midnight) is dropped.
    tomorrow = {**moved, "visit_date": "2027-03-02"}
    assert state.patched_views("d1", tomorrow, read=set()) == [] and state.held_tokens("d1") == []


# The publisher --------------------------------------------------------------------------------

async def test_the_publisher_sends_only_what_changed_with_growing_versions() -> None:
    bus = MemoryBus()
    publisher = Publisher(bus)
    publisher.stage("doctor:d1", {"waiting": [1], "computed_at": 1.0}, 100.0)
    publisher.stage("doctor:d2", {"waiting": []}, None)
    await publisher.flush()
    first = await bus.latest(["doctor:d1", "doctor:d2"])
    publisher.stage("doctor:d1", {"waiting": [1], "computed_at": 2.0}, 101.0)   # only the time moved
    assert publisher.pending == 0
    publisher.stage("doctor:d1", {"waiting": [1, 2]}, 102.0)
    await publisher.flush()
    latest = await bus.latest(["doctor:d1"])
    assert latest["doctor:d1"].version > first["doctor:d1"].version > 0
    assert {f.epoch for f in (*first.values(), *latest.values())} == {publisher.epoch}
    assert json.loads(latest["doctor:d1"].text)["data"] == {"waiting": [1, 2]}
    assert publisher.frames == 3


async def test_a_publisher_of_an_older_term_is_deposed() -> None:
    bus = MemoryBus()
    old, new = Publisher(bus), Publisher(bus)
    old.term, new.term = 1, 2
    new.stage("doctor:d1", {"v": "new"}, None)
    await new.flush()
    old.stage("doctor:d1", {"v": "old"}, None)
    with pytest.raises(Deposed):
        await old.flush()
    assert old.deposed and json.loads((await bus.latest(["doctor:d1"]))["doctor:d1"].text)["data"] == {"v": "new"}


async def test_frames_that_could_not_be_sent_stay_staged() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0", "opdnowhere")   # nothing listens there
    publisher = Publisher(bus)
    publisher.stage("doctor:d1", {"v": 1}, None)
    with pytest.raises(Exception):  # noqa: B017  (redis-py's ConnectionError)
        await publisher.flush()
    assert publisher.pending == 1 and not publisher.deposed
    await bus.close()
