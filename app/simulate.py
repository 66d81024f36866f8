"""`python -m app simulate`: drives the demo hospital through the HTTP API like an OPD morning.

Walk-ins arrive with a morning peak, a few online bookings check in from their phones, seniors
and emergencies mix in; every doctor calls, consults for a log-normal time around their
department's average, and completes; some patients never come when called; one doctor is late.
`--speed 60` runs an hour of the hospital in a minute of real time, until stopped (Ctrl+C) or
for `--minutes`. Every refusal the API gives (4xx) is counted by its code and handled as staff
would: a doctor who finds a patient still called from before marks them absent and goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import random
from collections import Counter
from typing import Any

import httpx

from app import clock

NO_SHOW_RATE = 0.05           # called patients who never come in
WALK_TO_CABIN_MIN = 1.0       # a called patient takes this long to reach the cabin
NO_SHOW_WAIT_MIN = 3.0        # the doctor waits this long before marking a no-show
LATE_DOCTOR_DELAY_MIN = 30.0  # the late doctor starts calling this much later
CONSULT_SIGMA = 0.35          # spread of the log-normal consultation time
PEAK_ARRIVALS_PER_HOUR = 14   # per department, at the morning peak


class Simulation:
    def __init__(self, client: httpx.AsyncClient, speed: float, minutes: float, seed: int) -> None:
        self.client = client
        self.speed = speed
        self.minutes = minutes    # math.inf: until stopped
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not security
        self.start = asyncio.get_running_loop().time()
        self.counts = {"issued": 0, "called": 0, "completed": 0, "no_show": 0, "errors": 0}
        self.refused: Counter[str] = Counter()   # 4xx answers by error code: expected, but counted
        # Patients who booked online and come later: stopped with the rest at the end (left
        # running, they once met the closed HTTP client and counted as errors).
        self.online: set[asyncio.Task[None]] = set()

    def summary(self) -> str:
        refused = ", ".join(f"{code} {n}" for code, n in sorted(self.refused.items())) or "none"
        return f"{self.counts}; refused (4xx): {refused}"

    def elapsed_min(self) -> float:
        return (asyncio.get_running_loop().time() - self.start) * self.speed / 60

    async def wait(self, minutes: float) -> None:
        await asyncio.sleep(max(0.0, minutes) * 60 / self.speed)

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, JSON body); a 5xx or a broken connection counts as an error, a 4xx by its code."""
        try:
            response = await self.client.request(method, path, json=body if method == "POST" else None)
        except httpx.HTTPError:
            self.counts["errors"] += 1
            return 0, None
        if response.status_code >= 500:
            self.counts["errors"] += 1
            return response.status_code, None
        try:
            result = response.json()
        except ValueError:
            result = None
        if response.status_code >= 400:
            code = (result or {}).get("error", {}).get("code", str(response.status_code))
            self.refused[code] += 1
        return response.status_code, result

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        status, result = await self.request("POST", path, body or {})
        return result if 200 <= status < 300 else None

    async def clear_desk(self, doctor_id: str) -> None:
        """The doctor's call was refused because somebody is still called or in consultation
        (left from before the simulation, or from another screen): finish with them as staff
        would — complete a consultation, mark a called patient who never came absent."""
        status, queue = await self.request("GET", f"/api/v1/queues/doctors/{doctor_id}")
        serving = (queue or {}).get("now_serving") if status == 200 else None
        if not serving:
            return
        if serving["status"] == "IN_CONSULTATION":
            if await self.post(f"/api/v1/tokens/{serving['token_id']}/complete"):
                self.counts["completed"] += 1
        elif await self.post(f"/api/v1/tokens/{serving['token_id']}/no-show"):
            self.counts["no_show"] += 1

    def arrival_rate(self, minute: float) -> float:
        """Arrivals per minute per department: a peak in the first two hours, then a tail."""
        peak = math.exp(-((minute - 60) / 50) ** 2)
        return PEAK_ARRIVALS_PER_HOUR / 60 * (0.25 + 0.75 * peak)

    async def arrivals(self, dept: dict[str, Any], hospital: dict[str, Any]) -> None:
        while self.elapsed_min() < self.minutes:
            gap = self.rng.expovariate(self.arrival_rate(self.elapsed_min()))
            await self.wait(gap)
            roll = self.rng.random()
            if roll < 0.10:
                task = asyncio.create_task(self.online_patient(dept, hospital))
                self.online.add(task)
                task.add_done_callback(self.online.discard)
                continue
            booking, priority = ("EMERGENCY", 3) if roll < 0.12 else ("WALK_IN", 2 if roll < 0.25 else 1)
            token = await self.post("/api/v1/tokens", {
                "dept_id": dept["dept_id"], "booking_type": booking, "priority": priority,
                "patient": {"name": f"Sim Patient {self.rng.randrange(10**6)}",
                            "phone": f"7{self.rng.randrange(10**8, 10**9)}"}})
            if token:
                self.counts["issued"] += 1

    async def online_patient(self, dept: dict[str, Any], hospital: dict[str, Any]) -> None:
        """Books for a slot soon, then checks in from the phone on arrival, inside the geofence."""
        slot = clock.now() + dt.timedelta(minutes=self.rng.uniform(20, 60) / self.speed)
        token = await self.post("/api/v1/tokens", {
            "dept_id": dept["dept_id"], "booking_type": "ONLINE", "scheduled_time": slot.isoformat(),
            "patient": {"name": f"Sim Online {self.rng.randrange(10**6)}",
                        "phone": f"8{self.rng.randrange(10**8, 10**9)}"}})
        if not token:
            return
        self.counts["issued"] += 1
        await self.wait(self.rng.uniform(10, 40))
        await self.client.post(f"/api/v1/track/{token['tracking_code']}/check-in", json={
            "latitude": float(hospital["latitude"]) + 0.0003, "longitude": float(hospital["longitude"])})

    async def doctor(self, doctor: dict[str, Any], mean_minutes: float, late: bool) -> None:
        if late:
            await self.wait(LATE_DOCTOR_DELAY_MIN)
        doctor_id = doctor["doctor_id"]
        while self.elapsed_min() < self.minutes:
            status, token = await self.request("POST", f"/api/v1/doctors/{doctor_id}/call-next",
                                               {"complete_current": True})
            if status != 200:
                code = (token or {}).get("error", {}).get("code")
                if code == "illegal_transition":      # somebody still called: deal with them first
                    await self.clear_desk(doctor_id)
                elif code == "doctor_unavailable":    # on a break: resume, as the doctor would
                    await self.post(f"/api/v1/doctors/{doctor_id}/resume")
                await self.wait(2)                    # nobody waiting (queue_empty): look again shortly
                continue
            self.counts["called"] += 1
            if self.rng.random() < NO_SHOW_RATE:
                await self.wait(NO_SHOW_WAIT_MIN)
                if await self.post(f"/api/v1/tokens/{token['token_id']}/no-show"):
                    self.counts["no_show"] += 1
                continue
            await self.wait(WALK_TO_CABIN_MIN)
            await self.post(f"/api/v1/tokens/{token['token_id']}/start")
            await self.wait(self.rng.lognormvariate(math.log(mean_minutes), CONSULT_SIGMA))
            if await self.post(f"/api/v1/tokens/{token['token_id']}/complete"):
                self.counts["completed"] += 1


async def run_simulation(args: argparse.Namespace) -> int:
    base_url = args.url or os.environ.get("OPD_PUBLIC_URL") or "http://127.0.0.1:8000"
    key = args.key
    if not key:
        print("give an admin API key with --key or OPD_API_KEY (python -m app apikey create --hospital DEMO)")
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        hospital = (await client.get("/api/v1/hospital")).raise_for_status().json()
        departments = (await client.get("/api/v1/departments")).raise_for_status().json()
        doctors = (await client.get("/api/v1/doctors")).raise_for_status().json()
        sim = Simulation(client, args.speed, args.minutes if args.minutes else math.inf, args.seed)
        minutes_by_dept = {d["dept_id"]: d["avg_consultation_time"] for d in departments}
        on_shift = [d for d in doctors if d.get("cabin_id") and d["status"] == "ACTIVE"]
        late = sim.rng.choice(on_shift)["doctor_id"] if on_shift else None
        tasks = [asyncio.create_task(sim.arrivals(d, hospital)) for d in departments if d["status"] == "ACTIVE"]
        tasks += [asyncio.create_task(sim.doctor(d, d.get("avg_consultation_time") or minutes_by_dept[d["dept_id"]],
                                                 d["doctor_id"] == late)) for d in on_shift]
        length = "until stopped (Ctrl+C)" if math.isinf(sim.minutes) else f"{sim.minutes:.0f} min"
        print(f"simulating {hospital['name']} at {args.speed:g}x, {length}: "
              f"{len(departments)} departments, {len(on_shift)} doctors on shift")
        try:
            while sim.elapsed_min() < sim.minutes:
                await asyncio.sleep(5)
                print(f"  t+{sim.elapsed_min():5.0f} min  {sim.summary()}", flush=True)
        except (asyncio.CancelledError, KeyboardInterrupt):
            pass
        finally:
            everything = [*tasks, *sim.online]
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
            print(f"done: {sim.summary()}")
    return 0 if sim.counts["errors"] == 0 else 1
