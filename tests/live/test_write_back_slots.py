"""The write-back's rounds (app/live/write_back.py): each doctor recomputed is written once per
cycle, in its own slot, whatever the order of the clicks. Pure: no database is touched until
write() is called, which these tests never do."""

from __future__ import annotations

import uuid

from app.live.write_back import SLOTS, PositionWriteBack, slot_of


def _doctors(count: int) -> list[str]:
    return [str(uuid.UUID(int=n * 7919 + 1)) for n in range(count)]


def test_doctors_noted_together_are_written_over_the_whole_cycle() -> None:
    write_back = PositionWriteBack(pool=None)  # type: ignore[arg-type]
    doctors = _doctors(200)
    for doctor in doctors:  # every doctor recomputed at once (a start, a rush)
        write_back.note(doctor)
    rounds = [write_back.take_due(1000 + n) for n in range(SLOTS)]  # one cycle
    written = [d for batch in rounds for d in batch]
    assert sorted(written) == sorted(doctors)  # every one, once
    assert max(len(batch) for batch in rounds) <= 3 * len(doctors) / SLOTS  # spread, not a burst


def test_a_doctor_is_written_in_its_slot_once_per_recompute() -> None:
    write_back = PositionWriteBack(pool=None)  # type: ignore[arg-type]
    doctor = _doctors(1)[0]
    slot = slot_of(doctor)
    start = 10 * SLOTS
    assert write_back.take_due(start + slot - 1) == []
    write_back.note(doctor)
    write_back.note(doctor)  # recomputed twice: written once
    assert write_back.take_due(start + slot) == [doctor]
    assert write_back.take_due(start + slot + SLOTS) == []  # not recomputed since


def test_a_late_round_catches_up_the_slots_it_missed() -> None:
    write_back = PositionWriteBack(pool=None)  # type: ignore[arg-type]
    doctors = _doctors(50)
    write_back.take_due(0)
    for doctor in doctors:
        write_back.note(doctor)
    due = {d for d in doctors if slot_of(d) != 0}
    assert set(write_back.take_due(5 * SLOTS)) == due | {d for d in doctors if slot_of(d) == 0}
