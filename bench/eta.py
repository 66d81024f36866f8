"""ETA accuracy simulator: simulated OPD days driven through the real SQL functions on a fake clock.

    .venv/bin/python -m bench.eta [--days 10] [--seed 1] [--dsn postgresql://.../postgres]

Each simulated doctor has a true pace (log-normal consultations around a mean of 2-8 minutes)
that the hospital's configuration does not know (10 + 2, 10 + 5, 15 + 5 minutes). Days bring late
starts, breaks, no-shows, patients who leave, emergencies and seniors, and a morning peak. Every
minute each waiting patient's published ETA (doctor_queue) is recorded and later compared with
the minute they were really called. The same snapshots are scored for the seed design's formula
and for an oracle that knows each doctor's true mean. Figures go in docs/eta.md.

Scenarios: `standard` (as above), `slow_afternoon` (one doctor twice as slow after 12:00),
`surprise` (a doctor called away for 40 minutes without pausing), `shared` (a department of two
doctors whose tokens go to the shorter queue).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.db.migrate import upgrade
from bench.hospital import create_database, drop_database

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
FIRST_DAY = dt.date(2027, 1, 4)          # a fixed calendar: the figures do not depend on today
SHIFT_START, SHIFT_END = dt.time(9, 0), dt.time(14, 0)
STEP_MIN = 0.5                           # simulated minutes per step
CONFIGS = [(10, 2), (10, 5), (15, 5)]    # department consult + buffer, as hospitals configure them


@dataclass
class Patient:
    token_id: uuid.UUID
    priority: int
    no_show: bool
    leaves_at: float | None              # minute of day they give up, if they do
    called_at: float | None = None
    left: bool = False


@dataclass
class SimDoctor:
    doctor_id: uuid.UUID
    dept: int
    true_mean: float                     # minutes of consultation
    late: float                          # minutes late today
    break_at: float | None = None
    break_len: float = 0.0
    away_at: float | None = None         # surprise: called away without pausing
    slow_after: float | None = None      # minute of day after which consults take twice as long
    started: bool = False
    busy_until: float = 0.0
    current: Patient | None = None
    current_phase: str = ""
    paused_until: float | None = None
    consult_end: float = 0.0


@dataclass
class Snapshot:
    token_id: uuid.UUID
    minute: float
    position: int
    eta: float
    low: float
    high: float
    seed: float
    oracle: float
    first_day: bool
    doctor_id: uuid.UUID
    doctor_started: bool                 # the doctor had made today's first call


@dataclass
class Result:
    snapshots: list[Snapshot] = field(default_factory=list)
    called: dict[uuid.UUID, float] = field(default_factory=dict)
    shown_later_jumps: int = 0
    shown_pairs: int = 0
    delayed_messages: int = 0
    delayed_patients: int = 0
    delayed_after_median: int = 0        # ... called after the median first shown to them
    delayed_called_later: int = 0        # ... called after the upper end first quoted to them
    delayed_first_day: int = 0           # ... on their doctor's first day
    very_late: tuple[int, int] = (0, 0)  # (patients called > 20 min after the first quote, told)


def minute_to_instant(day: dt.date, minute: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), IST) + dt.timedelta(minutes=minute)


class Simulation:
    def __init__(self, conn: asyncpg.Connection, rng: random.Random, scenario: str) -> None:
        self.conn = conn
        self.rng = rng
        self.scenario = scenario
        self.result = Result()
        self.seen_days: dict[uuid.UUID, int] = {}

    async def set_clock(self, day: dt.date, minute: float) -> None:
        await self.conn.execute("SELECT set_config('opd.fake_now', $1, false)",
                                minute_to_instant(day, minute).isoformat())

    async def build(self) -> tuple[uuid.UUID, list[tuple[uuid.UUID, list[SimDoctor]]]]:
        code = "SIM" + uuid.uuid4().hex[:6].upper()
        hospital_id = await self.conn.fetchval(
            """INSERT INTO hospitals (code, name, address, latitude, longitude, geofence_radius, timezone)
               VALUES ($1, 'Simulated OPD', 'x', 26.8, 80.9, 300, 'Asia/Kolkata') RETURNING hospital_id""", code)
        departments = []
        n_doctors = 2 if self.scenario == "shared" else 1
        for i, (consult, buffer) in enumerate(CONFIGS):
            dept_id = await self.conn.fetchval(
                """INSERT INTO departments (hospital_id, name, code, avg_consultation_time, buffer_time,
                                            max_tokens_per_day) VALUES ($1, $2, $3, $4, $5, 1000) RETURNING dept_id""",
                hospital_id, f"Dept {i}", f"D{i}", consult, buffer)
            doctors = []
            for n in range(n_doctors):
                cabin_id = await self.conn.fetchval(
                    "INSERT INTO cabins (dept_id, cabin_number) VALUES ($1, $2) RETURNING cabin_id",
                    dept_id, f"{i}-{n}")
                doctor_id = await self.conn.fetchval(
                    """INSERT INTO doctors (hospital_id, emp_code, name, specialization, primary_dept_id, phone,
                                            max_tokens_per_session)
                       VALUES ($1, $2, $3, 'x', $4, '9000000000', 1000) RETURNING doctor_id""",
                    hospital_id, f"E{i}{n}", f"Dr {i}{n}", dept_id)
                doctors.append(SimDoctor(doctor_id, i, true_mean=self.rng.uniform(2, 8), late=0))
                # Opted in: DELAYED and T_MINUS_3 are decided on, and counted, only for such patients.
                await self.conn.execute(
                    """INSERT INTO patients (hospital_id, uhid, name, phone, sms_opt_in)
                       VALUES ($1, $2, 'P', '9876543210', true)""",
                    hospital_id, f"U{i}{n}")
                doctors[-1].cabin_id = cabin_id  # type: ignore[attr-defined]
            departments.append((dept_id, doctors))
        self.patient_id = await self.conn.fetchval("SELECT patient_id FROM patients WHERE hospital_id = $1 LIMIT 1",
                                                   hospital_id)
        return hospital_id, departments

    async def run_day(self, hospital_id: uuid.UUID, departments: list[tuple[uuid.UUID, list[SimDoctor]]],
                      day: dt.date, day_index: int) -> None:
        rng = self.rng
        start_min = SHIFT_START.hour * 60
        end_min = SHIFT_END.hour * 60
        await self.set_clock(day, start_min - 60)
        patients: dict[uuid.UUID, Patient] = {}
        for _dept_id, doctors in departments:
            for d in doctors:
                d.late = rng.uniform(5, 45) if rng.random() < 1 / 3 else rng.uniform(-3, 3)
                d.started, d.current, d.paused_until = False, None, None
                d.break_at = start_min + rng.uniform(90, 200) if rng.random() < 0.5 else None
                d.break_len = rng.uniform(10, 15)
                surprise = self.scenario == "surprise" and d is doctors[0] and day_index % 2
                d.away_at = start_min + 150 if surprise else None
                d.slow_after = 12 * 60 if self.scenario == "slow_afternoon" and d is doctors[0] else None
                await self.conn.execute(
                    """INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time)
                       VALUES ($1, $2, $3, $4, $5)""", d.cabin_id, d.doctor_id, day, SHIFT_START, SHIFT_END)  # type: ignore[attr-defined]
        # Arrivals: a morning peak (a third of the day's patients before the doctor starts), then
        # a steady flow sized to keep each doctor busy until near the shift's end.
        arrivals: list[tuple[float, uuid.UUID, SimDoctor | None]] = []
        for dept_id, doctors in departments:
            for d in doctors:
                no_show_share = rng.uniform(0.2, 0.3)
                per_call = (1 - no_show_share) * (d.true_mean + 0.8) + no_show_share * 2.2
                capacity = (end_min - start_min - d.late - 15) / per_call
                total = int(capacity * rng.uniform(0.85, 1.0))
                d.no_show_share = no_show_share  # type: ignore[attr-defined]
                for k in range(total):
                    at = (start_min - rng.uniform(0, 50) if k < total / 3
                          else rng.uniform(start_min, end_min - 60))
                    arrivals.append((at, dept_id, d if self.scenario != "shared" else None))
        arrivals.sort(key=lambda a: a[0])
        doctor_of: dict[uuid.UUID, SimDoctor] = {d.doctor_id: d for _, ds in departments for d in ds}
        first_day = {d.doctor_id: self.seen_days.get(d.doctor_id, 0) == 0 for d in doctor_of.values()}

        minute = start_min - 60
        next_snapshot = minute
        i_arrival = 0
        last_shown: dict[uuid.UUID, float] = {}
        while minute <= end_min + 90:
            await self.set_clock(day, minute)
            while i_arrival < len(arrivals) and arrivals[i_arrival][0] <= minute:
                _, dept_id, d = arrivals[i_arrival]
                i_arrival += 1
                roll = rng.random()
                booking, priority = ("EMERGENCY", 3) if roll < 0.03 else ("WALK_IN", 2 if roll < 0.13 else 1)
                row = await self.conn.fetchrow(
                    "SELECT token_id, doctor_id FROM issue_token($1, $2, $3, $4, $5, $6, NULL, 'sim')",
                    hospital_id, self.patient_id, d.doctor_id if d else None, dept_id, booking, priority)
                owner = doctor_of[row["doctor_id"]]
                leaves = minute + rng.uniform(20, 120) if rng.random() < 0.05 else None
                patients[row["token_id"]] = Patient(row["token_id"], priority,
                                                    rng.random() < owner.no_show_share, leaves)  # type: ignore[attr-defined]
            for p in patients.values():  # patients who give up before being called
                if p.leaves_at is not None and p.called_at is None and not p.left and minute >= p.leaves_at:
                    p.left = True
                    await self.conn.execute("SELECT 1 FROM set_token_status($1, 'CANCELLED', NULL, 'left')", p.token_id)
            for d in doctor_of.values():
                await self.step_doctor(d, minute, patients, start_min, end_min)
            if minute >= next_snapshot:
                next_snapshot += 1
                await self.snapshot(day, minute, doctor_of, patients, first_day, last_shown)
            minute += STEP_MIN
        for d in doctor_of.values():
            self.seen_days[d.doctor_id] = self.seen_days.get(d.doctor_id, 0) + 1
        for p in patients.values():
            if p.called_at is not None:
                self.result.called[p.token_id] = p.called_at + day_index * 1440
        # Close the day: whoever is left is cancelled (the OPD closed).
        await self.conn.execute(
            """UPDATE tokens SET status = 'CANCELLED' WHERE hospital_id = $1 AND visit_date = $2
               AND status IN ('CHECKED_IN', 'BOOKED')""", hospital_id, day)
        await self.conn.execute(
            """UPDATE tokens SET status = 'COMPLETED' WHERE hospital_id = $1 AND visit_date = $2
               AND status IN ('IN_CONSULTATION')""", hospital_id, day)
        await self.conn.execute(
            """UPDATE tokens SET status = 'NO_SHOW' WHERE hospital_id = $1 AND visit_date = $2
               AND status IN ('WAITING')""", hospital_id, day)
        self.day_offset = day_index

    async def step_doctor(self, d: SimDoctor, minute: float, patients: dict[uuid.UUID, Patient],
                          start_min: int, end_min: int) -> None:
        rng = self.rng
        if not d.started:
            if minute < start_min + d.late:
                return
            d.started = True
            d.busy_until = minute
        if d.paused_until is not None:
            if minute < d.paused_until:
                return
            await self.conn.execute("SELECT 1 FROM set_doctor_paused($1, false)", d.doctor_id)
            d.paused_until = None
        if minute < d.busy_until:
            return
        if d.current is not None:
            p = d.current
            if d.current_phase == "called":
                if p.no_show:
                    await self.conn.execute("SELECT 1 FROM set_token_status($1, 'NO_SHOW', NULL)", p.token_id)
                    d.current, d.busy_until = None, minute + 0.2
                else:
                    await self.conn.execute("SELECT 1 FROM set_token_status($1, 'IN_CONSULTATION', NULL)", p.token_id)
                    mean = d.true_mean * (2 if d.slow_after and minute >= d.slow_after else 1)
                    consult = rng.lognormvariate(math.log(mean) - 0.125, 0.5)
                    d.current_phase, d.busy_until = "consult", minute + consult
                return
            await self.conn.execute("SELECT 1 FROM set_token_status($1, 'COMPLETED', NULL)", p.token_id)
            d.current, d.busy_until = None, minute + rng.uniform(0.2, 0.8)
            return
        if d.away_at is not None and minute >= d.away_at:
            d.away_at, d.busy_until = None, minute + 40   # called away, no pause pressed
            return
        if d.break_at is not None and minute >= d.break_at:
            d.break_at = None
            await self.conn.execute("SELECT 1 FROM set_doctor_paused($1, true)", d.doctor_id)
            d.paused_until = minute + d.break_len
            return
        if minute >= end_min + 60:
            return
        try:
            row = await self.conn.fetchrow("SELECT token_id FROM call_next_token($1, NULL)", d.doctor_id)
        except asyncpg.PostgresError:
            return  # nobody waiting
        p = patients[row["token_id"]]
        p.called_at = minute
        d.current, d.current_phase = p, "called"
        d.busy_until = minute + (2.0 if p.no_show else rng.uniform(0.3, 1.0))

    async def snapshot(self, day: dt.date, minute: float, doctors: dict[uuid.UUID, SimDoctor],
                       patients: dict[uuid.UUID, Patient], first_day: dict[uuid.UUID, bool],
                       last_shown: dict[uuid.UUID, float]) -> None:
        for d in doctors.values():
            # As the engine does: the queue is computed, then written back, which records what
            # patients are told (eta_told) and decides the T_MINUS_3 and DELAYED messages.
            queue = json.loads(await self.conn.fetchval(
                "SELECT COALESCE(json_agg(q), '[]')::text FROM doctor_queue($1, $2) q", d.doctor_id, day))
            await self.conn.execute("SELECT write_back_queue($1, $2, $3::json)", d.doctor_id, day,
                                    json.dumps(queue))
            rows = [{**r, "token_id": uuid.UUID(r["token_id"])} for r in queue if r["queue_position"] > 0]
            configured = CONFIGS[d.dept][0] + CONFIGS[d.dept][1]
            for r in rows:
                pos = r["queue_position"]
                absolute = minute + (self.day_offset_for(day)) * 1440
                seed = (pos - 1) * configured + configured   # the design's calculate_token_eta
                oracle = self.oracle(d, pos, minute, r["token_id"], patients)
                self.result.snapshots.append(Snapshot(
                    r["token_id"], absolute, pos, r["eta_minutes"], r["eta_low_minutes"], r["eta_high_minutes"],
                    seed, oracle, first_day[d.doctor_id], d.doctor_id, d.started))
                shown = absolute + r["eta_minutes"]
                if r["token_id"] in last_shown:
                    self.result.shown_pairs += 1
                    if shown - last_shown[r["token_id"]] > 5:
                        self.result.shown_later_jumps += 1
                last_shown[r["token_id"]] = shown

    def day_offset_for(self, day: dt.date) -> int:
        return (day - FIRST_DAY).days

    def oracle(self, d: SimDoctor, pos: int, minute: float, token_id: uuid.UUID,
               patients: dict[uuid.UUID, Patient]) -> float:
        """Knows the doctor's true mean consultation, no-show share and today's start."""
        p_ns = d.no_show_share  # type: ignore[attr-defined]
        mean = d.true_mean * (2 if d.slow_after and minute >= d.slow_after else 1)
        # The simulation moves in half-minute steps: each change of state waits for the next
        # step (a quarter minute on average; three per attended call, two per no-show).
        per_call = (1 - p_ns) * (mean + 1.15 + 0.75) + p_ns * (2.2 + 0.5)
        free = max(d.busy_until - minute, 0) if d.current else 0.0
        if not d.started:
            free = max(SHIFT_START.hour * 60 + d.late - minute, 0)
        if d.paused_until is not None:
            free += max(d.paused_until - minute, 0)
        return free + (pos - 1) * 0.97 * per_call


async def count_delayed(conn: asyncpg.Connection, hospital_id: uuid.UUID, result: Result) -> None:
    """DELAYED messages (one channel): how many of their patients were then really called later
    than first told (the median first shown, and the upper end first quoted), and how many of the
    patients called over 20 minutes after the first quoted upper end had a DELAYED message."""
    rows = await conn.fetch(
        """WITH called AS (
               SELECT t.token_id, t.visit_date = $2 AS first_day,
                      (SELECT e.told_at + make_interval(mins => e.eta_minutes) FROM eta_told e
                       WHERE e.token_id = t.token_id ORDER BY e.told_at LIMIT 1) AS first_median,
                      (SELECT e.told_at + make_interval(mins => e.eta_high_minutes) FROM eta_told e
                       WHERE e.token_id = t.token_id ORDER BY e.told_at LIMIT 1) AS first_quoted,
                      (SELECT min(h.changed_at) FROM token_history h WHERE h.token_id = t.token_id
                         AND h.previous_status = 'CHECKED_IN' AND h.new_status = 'WAITING') AS called_at,
                      (SELECT count(*) FROM notifications_log n WHERE n.token_id = t.token_id
                         AND n.event_type = 'DELAYED' AND n.channel = 'SMS') AS messages
               FROM tokens t WHERE t.hospital_id = $1)
           SELECT * FROM called WHERE called_at IS NOT NULL AND first_quoted IS NOT NULL""",
        hospital_id, FIRST_DAY)
    told = [r for r in rows if r["messages"]]
    result.delayed_messages = sum(r["messages"] for r in told)
    result.delayed_patients = len(told)
    result.delayed_after_median = sum(r["called_at"] > r["first_median"] for r in told)
    result.delayed_called_later = sum(r["called_at"] > r["first_quoted"] for r in told)
    result.delayed_first_day = sum(r["first_day"] for r in told)
    very_late = [r for r in rows if r["called_at"] > r["first_quoted"] + dt.timedelta(minutes=20)]
    result.very_late = (len(very_late), sum(bool(r["messages"]) for r in very_late))


def score(result: Result, pick: str, only: Any = None) -> dict[str, float]:
    errors, inside, before = [], 0, 0
    for s in result.snapshots:
        if s.position >= 30 or s.token_id not in result.called or (only and not only(s)):
            continue
        actual = result.called[s.token_id] - s.minute
        told = getattr(s, pick)
        errors.append(told - actual)
        if pick == "eta":
            inside += s.low <= actual <= s.high
            before += actual <= s.high
    if not errors:
        return {}
    absolute = sorted(abs(e) for e in errors)
    figures = {"n": len(errors), "mae": statistics.fmean(absolute), "median": statistics.median(absolute),
               "p90": absolute[int(0.9 * (len(absolute) - 1))], "bias": statistics.fmean(errors)}
    if pick == "eta":
        figures["in_range"] = inside / len(errors)
        figures["before_end"] = before / len(errors)
    return figures


def line(name: str, f: dict[str, float]) -> str:
    if not f:
        return f"  {name:<28} (no data)"
    text = (f"  {name:<28} MAE {f['mae']:6.1f}  median {f['median']:5.1f}  p90 {f['p90']:6.1f}  "
            f"bias {f['bias']:+6.1f}  n {int(f['n'])}")
    if "in_range" in f:
        text += f"  in range {100 * f['in_range']:.0f}%  before end {100 * f['before_end']:.0f}%"
    return text


async def simulate(dsn: str, scenario: str, days: int, seed: int) -> Result:
    conn = await asyncpg.connect(dsn)
    sim = Simulation(conn, random.Random(seed), scenario)
    try:
        hospital_id, departments = await sim.build()
        for k in range(days):
            day = FIRST_DAY + dt.timedelta(days=k)
            await sim.run_day(hospital_id, departments, day, k)
        await count_delayed(conn, hospital_id, sim.result)
    finally:
        await conn.close()
    # Absolute minutes: day index x 1440 + minute of day.
    return sim.result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="an admin DSN: a scratch database is created there and dropped")
    parser.add_argument("--days", type=int, default=10, help="days per scenario (each department one doctor-day)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", default="standard,slow_afternoon,surprise,shared")
    parser.add_argument("--tune", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of eta_tuning()'s constants in the scratch database")
    parser.add_argument("--by-position", action="store_true",
                        help="also split each position band into later days and the oracle")
    args = parser.parse_args()
    name, dsn = await create_database(args.dsn)
    started = time.monotonic()
    try:
        await upgrade(dsn)
        if args.tune:
            overrides = dict(item.split("=", 1) for item in args.tune)
            conn = await asyncpg.connect(dsn)
            current = json.loads(await conn.fetchval("SELECT eta_tuning()::text"))
            current.update({k: float(v) for k, v in overrides.items()})
            await conn.execute(f"CREATE OR REPLACE FUNCTION eta_tuning() RETURNS JSONB LANGUAGE sql IMMUTABLE "
                               f"AS $$ SELECT '{json.dumps(current)}'::jsonb $$")
            await conn.close()
            print("tuning:", current)
        everything = Result()
        for scenario in args.scenarios.split(","):
            result = await simulate(dsn, scenario, args.days, args.seed)
            print(f"{scenario}: {len({s.doctor_id for s in result.snapshots})} doctors x {args.days} days, "
                  f"{len(result.called)} calls")
            for pick, label in (("eta", "our ETA (median)"), ("seed", "seed formula"), ("oracle", "oracle")):
                print(line(label, score(result, pick)))
            print(line("our ETA, first day", score(result, "eta", lambda s: s.first_day)))
            print(line("  before the doctor started",
                       score(result, "eta", lambda s: s.first_day and not s.doctor_started)))
            print(line("our ETA, later days", score(result, "eta", lambda s: not s.first_day)))
            print(line("oracle, later days", score(result, "oracle", lambda s: not s.first_day)))
            for low, high in ((1, 5), (5, 10), (10, 20), (20, 30)):
                print(line(f"our ETA, positions {low}-{high - 1}",
                           score(result, "eta", lambda s, a=low, b=high: a <= s.position < b)))
                if args.by_position:
                    print(line("  later days", score(result, "eta", lambda s, a=low, b=high: not s.first_day
                                                                      and a <= s.position < b)))
                    print(line("  oracle", score(result, "oracle", lambda s, a=low, b=high: a <= s.position < b)))
            jumps = result.shown_later_jumps / max(result.shown_pairs, 1)
            print(f"  expected time moved later by > 5 min between minutes: {100 * jumps:.2f}% of "
                  f"{result.shown_pairs} pairs")
            told = max(result.delayed_patients, 1)
            print(f"  DELAYED: {result.delayed_messages} messages to {result.delayed_patients} patients "
                  f"({result.delayed_first_day} on a first day); then called later than the median first "
                  f"shown: {100 * result.delayed_after_median / told:.0f}%, than the upper end first quoted: "
                  f"{100 * result.delayed_called_later / told:.0f}%; of {result.very_late[0]} patients called "
                  f"> 20 min after the first quoted upper end, {result.very_late[1]} had a DELAYED message")
            everything.snapshots += result.snapshots
            everything.called.update(result.called)
            everything.shown_pairs += result.shown_pairs
            everything.shown_later_jumps += result.shown_later_jumps
        print("all scenarios:")
        for pick, label in (("eta", "our ETA (median)"), ("seed", "seed formula"), ("oracle", "oracle")):
            print(line(label, score(everything, pick)))
        print(f"({time.monotonic() - started:.0f} s)")
    finally:
        await drop_database(args.dsn, name)


if __name__ == "__main__":
    asyncio.run(main())
