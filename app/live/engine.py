"""The queue engine: after a change, recompute the doctor's queue in one read-only SQL round
trip, derive the boards, and publish each topic whose visible content changed; the positions
reach the tokens table later (write_back.py).

Only the elected leader runs an engine (see leader.py); every process fans out (hub.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from typing import Any

import asyncpg

from app import jsonutil, metrics
from app.live import views
from app.live.bus import Bus, Deposed
from app.live.changes import ChangeNotice
from app.live.design_keys import DesignKeys
from app.live.frames import Frame
from app.live.shard_hash import shard_of
from app.live.write_back import PositionWriteBack
from app.settings import Settings

log = logging.getLogger(__name__)

# Doctors recomputed at once (8 and 16 measured worse at 100 changes/s); leaves pool connections
# for the API.
RECOMPUTE_CONCURRENCY = 12
REFRESH = 1  # recompute every queue with someone in it (safety timer)
REBUILD = 2  # recompute every doctor, every token of the day (after a reconnect)
SWEEP_CONCURRENCY = 2  # of the recompute slots, at most this many serve a refresh or rebuild
SWEEP_HOSPITALS_SLICE = 8  # hospitals whose boards and alerts are redone per round
SWEEP_HOSPITALS_INTERVAL_S = 0.02  # ... and how often such a round may run
RETRY_AFTER_ERROR_S = 1.0
BOARD_INTERVAL_S = 0.05  # a hospital-wide board is rebuilt at most this often (it covers every doctor)
OPERATIONS_INTERVAL_S = 1.0  # the operations dashboard is rebuilt at most this often per hospital
# What a waiting patient's view takes from the computed queue (doctor_queue; docs/eta.md).
ESTIMATE_KEYS = ("position", "eta_minutes", "eta_low_minutes", "eta_high_minutes", "eta_beyond_shift")
OPERATIONS_QUERY_INTERVAL_S = 5.0  # ... and its doctors' statuses and alerts read at most this often


class PerKeyInterval:
    """At most one run per key every interval_s (boards and dashboards of one hospital)."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}

    def wait_s(self, key: str) -> float:
        """0 if key may run now (and counts it as run); else the seconds until it may."""
        now = time.monotonic()
        wait = self._last.get(key, -self._interval_s) + self._interval_s - now
        if wait > 0:
            return wait
        self._last[key] = now
        return 0.0


class QueueEngine:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, settings: Settings,
                 design_keys: DesignKeys | None = None, shard: int = 0, shards: int = 1) -> None:
        self._pool = pool
        # This engine computes the hospitals of one shard (shards.py); one of one: all of them.
        self.shard = shard
        self._shards = shards
        self._bus = bus
        self._settings = settings
        self._design_keys = design_keys
        # A new engine rebuilds everything from scratch, hence a new epoch; versions start from
        # the clock in microseconds so they keep growing across engines too.
        self.epoch = secrets.token_hex(6)
        self.term = 0            # the leadership term (leader.py), which fences the bus
        self.deposed = False     # the bus has seen a newer term: this engine must stop
        self._version = time.time_ns() // 1000
        self._dirty: dict[str, float | None] = {}       # doctor_id -> earliest commit time
        self._extra_tokens: dict[str, set[str]] = {}    # doctor_id -> tokens that left its queue
        self._everything = REBUILD
        self._layouts_stale = True
        self._wake = asyncio.Event()
        self._wake.set()
        self._published: dict[str, str] = {}            # topic -> data last published
        self._staged: list[tuple[Frame, str, float | None]] = []  # frames (data, changed_at) for the next _flush
        self._sweep: dict[str, bool] = {}               # doctor_id -> with every token of the day
        self._full_views: set[str] = set()              # doctors whose every patient view is rebuilt
        self._in_flight: dict[str, asyncio.Task[None]] = {}  # doctor_id -> its running recompute
        self._launch_timer: asyncio.TimerHandle | None = None
        self.write_back = PositionWriteBack(pool)      # positions to the tokens table, later
        self._write_back_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sweeping: set[str] = set()                # doctors in flight for the sweep
        self._sweep_started: float | None = None        # when the sweep under way was planned
        self._next_hospital_sweep = 0.0
        self._boards_due: dict[str, float | None] = {}  # hospital_id -> earliest change not on its board
        self._boards_pace = PerKeyInterval(BOARD_INTERVAL_S)
        self._sweep_hospitals: dict[str, None] = {}      # boards and alerts to redo after the sweep, in order
        self.queues: dict[str, dict[str, Any]] = {}     # doctor_id -> latest queue (private)
        # The open patient views as last published, by doctor: as the queue moves the engine
        # brings them up to date itself (_patch_views) instead of reading them again.
        self._views: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}  # doctor -> token -> (code, view)
        self._view_doctor: dict[str, str] = {}          # token_id -> the doctor whose views hold it
        self._by_cabin: dict[str, dict[str, dict[str, Any]]] = {}  # cabin_id -> doctor_id -> queue
        self.layouts: dict[str, dict[str, Any]] = {}    # hospital_id -> layout
        self._department_views: dict[str, dict[str, Any]] = {}  # dept_id -> its board, as last built
        self._doctor_departments: dict[str, list[dict[str, Any]]] = {}  # doctor_id -> departments
        self._cabin_department: dict[str, dict[str, Any]] = {}  # cabin_id -> its department
        self._doctor_hospital: dict[str, str] = {}
        self._layout_changes: dict[str, float | None] = {}  # hospital_id -> when its layout changed
        self._layouts_loaded: dict[str, float | None] = {}  # ... and since then loaded, to publish
        self._operations_pace = PerKeyInterval(OPERATIONS_INTERVAL_S)
        self._operations_late: dict[str, float | None] = {}  # hospitals whose dashboard update waits
        self._operations_read: dict[str, tuple[float, Any]] = {}  # hospital_id -> (when, hospital_operations)
        self.stats = {"recomputes": 0, "queries": 0, "frames": 0, "changes": 0, "batches": 0}

    # Inputs --------------------------------------------------------------------------------
    def note_change(self, payload: ChangeNotice) -> None:
        """A NOTIFY from the database (sql/functions.sql, tokens_after_write and friends)."""
        if self._shards > 1 and shard_of(payload.get("hospital_id") or "", self._shards) != self.shard:
            return  # another shard's hospital: its engine has the same notice
        self.stats["changes"] += 1
        metrics.CHANGES.inc()
        at = payload.get("at")
        if payload.get("kind") == "hospital" and payload.get("hospital_id"):
            # Its name, settings or notices changed: reload the layout, republish its boards.
            self._layout_changes[payload["hospital_id"]] = at
            self._layouts_stale = True
            self._wake.set()
            return
        doctor_id = payload.get("doctor_id")
        if not doctor_id:
            return
        self._mark(doctor_id, at)
        if payload.get("kind") != "token":
            self._full_views.add(doctor_id)  # the doctor, cabin or shift changed: every view shows it
        if payload.get("kind") == "token" and payload.get("token_id"):
            self._extra_tokens.setdefault(doctor_id, set()).add(payload["token_id"])
            old_doctor = payload.get("old_doctor_id")
            if old_doctor:
                # Transferred: the doctor it left reads it too, so that a view of it that this
                # doctor read just before the transfer is not left standing (_recompute_doctor
                # hands it on to the new doctor).
                self._extra_tokens.setdefault(old_doctor, set()).add(payload["token_id"])
                self._mark(old_doctor, at)
        if doctor_id not in self._doctor_hospital:
            self._layouts_stale = True  # a doctor we have not laid out yet
        self._wake.set()
        self._launch_soon()

    def _launch_soon(self) -> None:
        """Start the recomputes a burst asks for once its coalescing window is over, whatever
        the loop is busy with (a board round or a sweep must not hold up a click)."""
        if self._launch_timer is None and not self._stopping:
            self._launch_timer = asyncio.get_running_loop().call_later(
                self._settings.coalesce_ms / 1000, self._launch_due)

    def _launch_due(self) -> None:
        self._launch_timer = None
        # Until the layouts are loaded (a doctor not seen before, or a rebuild), the loop starts
        # them: a doctor's boards need its hospital.
        if not self._stopping and not self._layouts_stale and not self._everything:
            self._start_recomputes()

    def _mark(self, doctor_id: str, at: float | None) -> None:
        previous = self._dirty.get(doctor_id)
        if previous is not None or doctor_id in self._in_flight:
            metrics.COALESCED.inc()
        self._dirty[doctor_id] = at if previous is None else min(previous, at or previous)

    def mark_everything_stale(self) -> None:
        """After a (re)connect: notifications sent meanwhile are lost, so rebuild everything,
        closed tokens included."""
        self._everything = REBUILD
        self._layouts_stale = True
        self._wake.set()

    async def bus_state_survived(self) -> bool:
        return await self._bus.state_survived(self.epoch, self.shard)

    def bus_state_lost(self) -> None:
        """The bus lost its stored snapshots (Redis restarted empty): publish every topic again
        now, not at the next safety refresh, so a screen that opens meanwhile is not blank."""
        self._published.clear()
        self.mark_everything_stale()

    def mark_live_queues_stale(self) -> None:
        """The safety refresh: recompute every queue that has someone in it, and the layouts."""
        self._everything = self._everything or REFRESH
        self._layouts_stale = True
        self._wake.set()

    def mark_active_queues(self) -> None:
        """ETAs drift only while a consultation runs: recompute the queues where one does."""
        for doctor_id, queue in self.queues.items():
            serving = queue.get("now_serving")
            if serving and serving.get("status") == "IN_CONSULTATION" and queue.get("waiting"):
                self._mark(doctor_id, None)
        self._wake.set()

    # The loop ------------------------------------------------------------------------------
    # A pipeline, not batches: each doctor's recompute starts as soon as a slot is free and goes
    # out as soon as it is done, so a click never waits for a batch of other doctors' changes.
    # One doctor is never recomputed twice at once (its publishes stay in order); changes that
    # arrive meanwhile wait for it and are taken together. Boards, built from every doctor's
    # latest queue, follow at most every BOARD_INTERVAL_S per hospital.
    async def run(self) -> None:
        coalesce_s = self._settings.coalesce_ms / 1000
        self._write_back_task = asyncio.create_task(self.write_back.run(), name="write-back")
        try:
            while not self._stopping:
                await self._wake.wait()
                # Gather the burst: 100 changes within this window cost one recompute per doctor.
                await asyncio.sleep(coalesce_s)
                self._wake.clear()
                if self._stopping:
                    break
                try:
                    await self._step()
                except Exception as exc:  # database or bus away: the work stays marked; try again
                    log.warning("queue engine step failed (%r); retrying", exc)
                    await asyncio.sleep(RETRY_AFTER_ERROR_S)
                    self._wake.set()
        finally:
            self.stop()

    def _wake_in(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    def stop(self) -> None:
        """Leadership is gone: stop at the next turn of the loop. The leader cancels the loop too,
        but a cancellation can be swallowed inside a client library (a redis-py retry after a
        timeout that raced the cancellation was seen to), and a stale engine must not go on."""
        self._stopping = True
        self._wake.set()
        if self._launch_timer is not None:
            self._launch_timer.cancel()
            self._launch_timer = None
        for task in [*self._in_flight.values(), *filter(None, [self._write_back_task])]:
            task.cancel()

    def waiting_count(self) -> int:
        """Doctors whose queue waits for a recompute: changed, or due in a sweep (metrics)."""
        return len(self._dirty.keys() | self._sweep.keys())

    async def _step(self) -> None:
        self.stats["batches"] += 1
        everything, self._everything = self._everything, 0
        try:
            if everything and not await self._bus.state_survived(self.epoch, self.shard):
                # The bus lost its stored snapshots (Redis restarted empty): publish everything again.
                self._published.clear()
                everything = REBUILD
            if self._layouts_stale or everything:
                await self._load_layouts()
            if everything:
                await self._plan_sweep(everything)
        except BaseException:
            self._everything = max(self._everything, everything)
            raise
        self._start_recomputes()
        await self._publish_changed_layouts()
        await self._publish_due_boards()
        if self._sweep_hospitals and time.monotonic() >= self._next_hospital_sweep:
            # Alerts and full boards, a few hospitals at a time, beside the doctors' recomputes;
            # a hospital once none of its doctors waits for the sweep, so its boards show them.
            self._next_hospital_sweep = time.monotonic() + SWEEP_HOSPITALS_INTERVAL_S
            self._wake_in(SWEEP_HOSPITALS_INTERVAL_S)
            busy = {self._doctor_hospital.get(d) for d in (*self._sweep, *self._sweeping)}
            swept = set([h for h in self._sweep_hospitals if h not in busy][:SWEEP_HOSPITALS_SLICE])
            for hospital_id in swept:
                del self._sweep_hospitals[hospital_id]
            await self._check_alerts(swept)
            for hospital_id in swept:
                await self._publish_boards(hospital_id, True, None)
        if self._sweep_started is not None and not (self._sweep or self._sweeping or self._sweep_hospitals):
            metrics.SAFETY_SWEEP.observe(time.monotonic() - self._sweep_started)
            self._sweep_started = None

    def _start_recomputes(self) -> None:
        """Changes first (earliest first), then the sweep: a rebuild of a large hospital group
        never holds up the click that is waiting to reach the screens."""
        free = RECOMPUTE_CONCURRENCY - len(self._in_flight)
        # Timer work (no change time: the ETA tick) after every click, which has one.
        # A doctor the layouts do not know yet waits for the read under way: recomputed before
        # it, its boards would have nowhere to go, and nothing would bring them back.
        waiting = sorted((d for d in self._dirty if d not in self._in_flight
                          and (d in self._doctor_hospital or not self._layouts_stale)),
                         key=lambda d: self._dirty[d] or math.inf)
        for doctor_id in waiting[:max(free, 0)]:
            changed_at = self._dirty.pop(doctor_id)
            extras = sorted(self._extra_tokens.pop(doctor_id, ()))
            full = doctor_id in self._full_views or doctor_id in self._sweep
            if doctor_id in self._sweep:
                self._sweeping.add(doctor_id)
            self._full_views.discard(doctor_id)
            all_of_day = self._sweep.pop(doctor_id, False)  # a sweep due anyway is done now
            self._launch(doctor_id, changed_at, extras, all_of_day, full)
            free -= 1
        for doctor_id in list(self._sweep):
            # At most SWEEP_CONCURRENCY at once: a rebuild of a large group paces itself and
            # leaves the database and the other slots to the clicks.
            if free <= 0 or len(self._sweeping) >= SWEEP_CONCURRENCY:
                break
            if doctor_id in self._in_flight:
                continue
            self._sweeping.add(doctor_id)
            all_of_day = self._sweep.pop(doctor_id)
            # The safety net and rebuilds trust nothing they knew: every view.
            self._launch(doctor_id, self._dirty.pop(doctor_id, None),
                         sorted(self._extra_tokens.pop(doctor_id, ())), all_of_day, True)
            self._full_views.discard(doctor_id)
            free -= 1

    def _launch(self, doctor_id: str, changed_at: float | None, extras: list[str],
                all_of_day: bool, full_views: bool) -> None:
        self._in_flight[doctor_id] = asyncio.create_task(
            self._recompute_in_flight(doctor_id, changed_at, extras, all_of_day, full_views),
            name=f"recompute-{doctor_id}")

    async def _recompute_in_flight(self, doctor_id: str, changed_at: float | None,
                                   extras: list[str], all_of_day: bool, full_views: bool) -> None:
        try:
            started = time.perf_counter()
            await self._recompute_doctor(doctor_id, changed_at, extras, all_of_day, full_views)
            metrics.RECOMPUTE.observe(time.perf_counter() - started)
            hospital_id = self._doctor_hospital.get(doctor_id)
            if hospital_id is not None:
                due = self._boards_due.get(hospital_id)
                self._boards_due[hospital_id] = (changed_at if due is None
                                                 else min(due, changed_at or due))
        except Exception as exc:  # database or bus away: keep the work and try again
            log.warning("recompute of doctor %s failed (%r); retrying", doctor_id, exc)
            self._mark(doctor_id, changed_at)
            self._extra_tokens.setdefault(doctor_id, set()).update(extras)
            # Positions may have been written back without their views reaching the bus: the
            # retry must not rely on what the engine thinks it published.
            self._full_views.add(doctor_id)
            if all_of_day:
                self._sweep[doctor_id] = True
            # A doctor that keeps failing must not hold a sweep slot while it waits: the other
            # doctors' sweeps, and the hospitals' alert checks behind them, go on.
            self._sweeping.discard(doctor_id)
            await asyncio.sleep(RETRY_AFTER_ERROR_S)  # the doctor stays in flight meanwhile
        finally:
            self._in_flight.pop(doctor_id, None)
            self._sweeping.discard(doctor_id)
            # The freed slot goes straight to the next waiting doctor: under load, changes need
            # no coalescing window (those to a doctor in flight gather while it is recomputed).
            if not self._stopping:
                self._start_recomputes()
            self._wake.set()  # boards, and anything the loop must look at

    async def _publish_due_boards(self) -> None:
        for hospital_id in list(self._boards_due) + [h for h in self._operations_late
                                                      if h not in self._boards_due]:
            wait = self._boards_pace.wait_s(hospital_id)
            if wait > 0:
                self._wake_in(wait)
                continue
            changed_at = self._boards_due.pop(hospital_id, None)
            if hospital_id in self.layouts:
                await self._publish_boards(hospital_id, False, changed_at)

    async def _publish_changed_layouts(self) -> None:
        """The boards of hospitals whose changed layout has been read, rebuilt in full. (Not
        held back while another change marks the layouts stale again: at a busy moment, new
        doctors somewhere kept the flag up and a notice's removal waited.)"""
        changes, self._layouts_loaded = self._layouts_loaded, {}
        for hospital_id, changed_at in changes.items():
            if hospital_id in self.layouts:
                await self._publish_boards(hospital_id, True, changed_at)

    async def _plan_sweep(self, everything: int) -> None:
        """Queue the doctors a REBUILD (all, with every token of the day) or a REFRESH (those
        with someone in their queue) must recompute, and their hospitals' boards and alerts.
        The doctors whose tokens changed last come first: after an outage, the queues that were
        moving are set right first."""
        if self._sweep_started is None:
            self._sweep_started = time.monotonic()
        recent = await self._pool.fetch("SELECT doctor_id FROM recently_active_doctors()")
        self.stats["queries"] += 1
        order = [str(r["doctor_id"]) for r in recent]
        first = set(order)
        order += [d for d in self._doctor_hospital if d not in first]
        for doctor_id in order:
            hospital_id = self._doctor_hospital.get(doctor_id)
            if hospital_id is None:
                continue
            queue = self.queues.get(doctor_id, {})
            live = queue.get("now_serving") or queue.get("waiting") or queue.get("booked_count")
            if everything == REBUILD or live:
                self._sweep[doctor_id] = self._sweep.get(doctor_id, False) or everything == REBUILD
                self._sweep_hospitals.setdefault(hospital_id)
        if everything == REBUILD:
            for hospital_id in self.layouts:
                self._sweep_hospitals.setdefault(hospital_id)

    async def _load_layouts(self) -> None:
        # The hospitals whose layout changed before this read: it has their change, whatever
        # changes after it (those wait for the next read).
        # The flag goes down before the read, not after it: a change that arrives while the
        # read is under way raises it again and gets a read of its own (cleared after the read,
        # it was lost until some other change came: a notice's removal stayed on the boards).
        loading, self._layout_changes = self._layout_changes, {}
        self._layouts_stale = False
        try:
            rows = await self._pool.fetch(
                "SELECT hospital_layout(hospital_id) AS layout FROM hospitals "
                "WHERE status = 'ACTIVE' AND engine_shard(hospital_id, $1) = $2", self._shards, self.shard)
        except BaseException:
            self._layout_changes = {**loading, **self._layout_changes}
            self._layouts_stale = True
            raise
        for hospital_id, at in loading.items():
            self._layouts_loaded.setdefault(hospital_id, at)
        self.stats["queries"] += 1
        self.layouts = {r["layout"]["hospital_id"]: r["layout"] for r in rows}
        self._department_views.clear()
        known_before = self._doctor_hospital
        self._doctor_hospital = {
            doctor_id: hospital_id
            for hospital_id, layout in self.layouts.items()
            for dept in layout["departments"] for doctor_id in dept["doctor_ids"]
        }
        for doctor_id, hospital_id in self._doctor_hospital.items():
            if doctor_id not in known_before and doctor_id in self.queues:
                # Computed before its hospital was known: its boards go out now.
                self._boards_due.setdefault(hospital_id, None)
        self._doctor_departments = {}
        self._cabin_department = {}
        for layout in self.layouts.values():
            for dept in layout["departments"]:
                for doctor_id in dept["doctor_ids"]:
                    self._doctor_departments.setdefault(doctor_id, []).append(dept)
                for cabin in dept["cabins"]:
                    self._cabin_department[cabin["cabin_id"]] = dept
        if self._design_keys is not None:
            await self._design_keys.write_geofences(self.layouts.values())

    async def _recompute_doctor(self, doctor_id: str, changed_at: float | None,
                                extra_tokens: list[str], all_of_day: bool, full_views: bool) -> None:
        held = self._views.get(doctor_id)
        known = None if full_views or all_of_day or held is None else list(held)
        async with self._pool.acquire() as conn:
            result = await conn.fetchval("SELECT doctor_live_views($1, $2, $3, $4)",
                                         doctor_id, extra_tokens, all_of_day, known)
        self.stats["recomputes"] += 1
        self.stats["queries"] += 1
        if result is None or result["queue"] is None:
            return
        queue = result["queue"]
        self._set_queue(doctor_id, queue)
        await self._publish(f"doctor:{doctor_id}", views.doctor_topic_view(queue), changed_at)
        if known is None:
            self._forget_views(doctor_id)  # every open view comes back from the database
        read = set()
        for token in result["tokens"]:
            owner = token["view"]["doctor_id"]
            if owner != doctor_id:
                # Moved to another doctor: its view goes out with that doctor's queue, which
                # has its position (this one's does not).
                self._extra_tokens.setdefault(owner, set()).add(token["view"]["token_id"])
                self._mark(owner, changed_at)
                self._launch_soon()
                continue
            await self._publish(f"token:{token['code']}", token["view"], changed_at)
            read.add(self._hold_view(token["code"], token["view"]))
        await self._patch_views(doctor_id, queue, read, changed_at)
        await self._publish_doctor_boards(doctor_id, queue, changed_at)
        await self._flush()
        self.write_back.note(doctor_id)
        if self._design_keys is not None:
            self._design_keys.queue_doctor(queue)

    def _forget_views(self, doctor_id: str) -> None:
        for token_id in self._views.pop(doctor_id, {}):
            self._view_doctor.pop(token_id, None)

    def _hold_view(self, code: str, view: dict[str, Any]) -> str:
        """Keep a view read from the database while its visit is open (a closed one no longer
        follows the queue); under its token's doctor, which a transfer changes."""
        token_id = view["token_id"]
        previous = self._view_doctor.pop(token_id, None)
        if previous is not None:
            self._views.get(previous, {}).pop(token_id, None)
        if view["status"] in views.OPEN_STATUSES:
            self._views.setdefault(view["doctor_id"], {})[token_id] = (code, view)
            self._view_doctor[token_id] = view["doctor_id"]
        return token_id

    async def _patch_views(self, doctor_id: str, queue: dict[str, Any], read: set[str],
                           changed_at: float | None) -> None:
        """Bring the doctor's held patient views up to date from the queue just computed: a
        waiting patient's position and ETA, and for every open visit who is being served
        (as token_views in sql/functions.sql would build them)."""
        held = self._views.get(doctor_id)
        if not held:
            return
        serving = (queue.get("now_serving") or {}).get("token_number")
        waiting = {w["token_id"]: w for w in queue.get("waiting") or []}
        for token_id, (code, view) in list(held.items()):
            if token_id in read:
                continue
            if view["visit_date"] != queue["visit_date"]:  # a visit left open at the day's end
                del held[token_id]
                self._view_doctor.pop(token_id, None)
                continue
            estimate = {key: view.get(key) for key in ESTIMATE_KEYS}
            if view["status"] == "CHECKED_IN":
                place = waiting.get(token_id)
                if place is None:  # its own change is not here yet: its NOTIFY brings the view
                    continue
                estimate = {key: place.get(key) for key in ESTIMATE_KEYS}
            if serving == view["now_serving"] and all(view.get(k) == v for k, v in estimate.items()):
                continue
            view = {**view, **estimate, "now_serving": serving}
            held[token_id] = (code, view)
            await self._publish(f"token:{code}", view, changed_at)

    async def _publish_boards(self, hospital_id: str, everything: bool,
                              changed_at: float | None) -> None:
        layout = self.layouts.get(hospital_id)
        if layout is None:
            return
        departments = []
        for dept in layout["departments"]:
            # A department's board and doors go out with its doctors' recomputes; here only in
            # a sweep, or when not built yet.
            if everything or dept["dept_id"] not in self._department_views:
                await self._publish_department(layout, dept, self._by_cabin, changed_at)
            if dept["dept_id"] in self._department_views:
                departments.append(self._department_views[dept["dept_id"]])
        if len(departments) < len(layout["departments"]):
            await self._flush()  # a new engine still loading: the hospital board waits for it
            return
        await self._publish(f"hospital:{hospital_id}", views.hospital_view(layout, departments),
                            changed_at)
        if self._design_keys is not None:
            await self._design_keys.write_department_counts(
                {d["dept_id"]: d["waiting_count"] for d in departments})
        await self._publish_operations(hospital_id, departments, changed_at, everything)
        await self._flush()

    def _set_queue(self, doctor_id: str, queue: dict[str, Any]) -> None:
        """The doctor's latest queue, also filed under its cabin for the door displays."""
        previous = self.queues.get(doctor_id)
        cabin = queue.get("cabin_id") or ""
        if previous is not None and (previous.get("cabin_id") or "") != cabin:
            self._by_cabin.get(previous.get("cabin_id") or "", {}).pop(doctor_id, None)
        self.queues[doctor_id] = queue
        # In place when the cabin is the same: a door display lists its doctors in a stable order.
        self._by_cabin.setdefault(cabin, {})[doctor_id] = queue

    async def _publish_department(self, layout: dict[str, Any], dept: dict[str, Any],
                                  by_cabin: dict[str, dict[str, dict[str, Any]]],
                                  changed_at: float | None) -> None:
        """Stage a department's board and its cabins' door views (kept for the hospital board).
        Not before every doctor of the department is loaded: a new engine's first boards once
        showed a department with one of its two desks for a moment (issue 20)."""
        if not all(doctor_id in self.queues for doctor_id in dept["doctor_ids"]):
            return
        view = self._department_views[dept["dept_id"]] = views.department_view(layout, dept, self.queues)
        await self._publish(f"department:{dept['dept_id']}", view, changed_at)
        for cabin in dept["cabins"]:
            await self._publish(f"cabin:{cabin['cabin_id']}", views.cabin_view(
                layout, dept, cabin, by_cabin.get(cabin["cabin_id"], {})), changed_at)

    async def _publish_doctor_boards(self, doctor_id: str, queue: dict[str, Any],
                                     changed_at: float | None) -> None:
        """The department boards and door displays that show this doctor, in the same flush as
        the doctor's own topics: a TV shows a call as soon as the doctor's console does. (The
        hospital-wide board, built from every department, follows at most every
        BOARD_INTERVAL_S.)"""
        layout = self.layouts.get(self._doctor_hospital.get(doctor_id, ""))
        if layout is None:
            return
        departments = {d["dept_id"]: d for d in self._doctor_departments.get(doctor_id, [])}
        seated = self._cabin_department.get(queue.get("cabin_id") or "")
        if seated is not None:  # the doctor's cabin may belong to another department
            departments.setdefault(seated["dept_id"], seated)
        for dept in departments.values():
            await self._publish_department(layout, dept, self._by_cabin, changed_at)

    async def _publish_operations(self, hospital_id: str, departments: list[dict[str, Any]],
                                  changed_at: float | None, fresh: bool) -> None:
        """The operations dashboard, at most once per OPERATIONS_INTERVAL_S per hospital. A
        skipped update is made when the interval is over (the loop is woken for it). Department
        loads come from the engine's queues; the doctors' statuses and open alerts from a query
        that reads every doctor of the hospital (tens of milliseconds for a large one), at most
        every OPERATIONS_QUERY_INTERVAL_S, and in every sweep (which has just checked alerts)."""
        wait = self._operations_pace.wait_s(hospital_id)
        if wait > 0:
            self._operations_late.setdefault(hospital_id, changed_at)
            self._wake_in(wait)
            return
        changed_at = self._operations_late.pop(hospital_id, changed_at) or changed_at
        layout = self.layouts[hospital_id]
        read = self._operations_read.get(hospital_id)
        if fresh or read is None or time.monotonic() - read[0] >= OPERATIONS_QUERY_INTERVAL_S:
            read = (time.monotonic(),
                    await self._pool.fetchval("SELECT hospital_operations($1)", hospital_id))
            self._operations_read[hospital_id] = read
            self.stats["queries"] += 1
        operations = read[1]
        await self._publish(f"operations:{hospital_id}",
                            views.operations_view(layout, departments, self.queues, operations), changed_at)

    async def _check_alerts(self, hospitals: set[str]) -> None:
        """The periodic bottleneck check (sql: check_hospital_alerts), on the safety timer."""
        for hospital_id in hospitals:
            await self._pool.fetchval("SELECT check_hospital_alerts($1)", hospital_id)
            self.stats["queries"] += 1

    async def _publish(self, topic: str, data: Any, changed_at: float | None) -> None:
        """Stage the topic's new snapshot, unless nothing visible changed (sent by _flush)."""
        if isinstance(data, dict) and "computed_at" in data:
            data = {k: v for k, v in data.items() if k != "computed_at"}
        text = jsonutil.dumps(data)
        if self._published.get(topic) == text:
            return
        self._version += 1
        self._staged.append((Frame.snapshot_of_json(topic, self.epoch, self._version, text, changed_at), text,
                             changed_at))

    async def _flush(self) -> None:
        """Send the staged frames in one bus round trip; only then count them as published."""
        staged, self._staged = self._staged, []
        if not staged:
            return
        try:
            await self._bus.publish_many([frame for frame, _, _ in staged], self.term, self.shard)
        except Deposed:
            # Another process leads now (this one was frozen, or cut off): publish nothing more.
            log.warning("a newer leadership term has published; this engine (term %d) stops", self.term)
            self.deposed = True
            self.stop()
            raise
        except BaseException:
            self._staged = staged + self._staged  # a failed publish is retried with the next batch
            raise
        now = time.time()
        for frame, text, changed_at in staged:
            self._published[frame.topic] = text
            if changed_at is not None:
                metrics.COMMIT_TO_PUBLISH.observe(max(0.0, now - changed_at))
        self.stats["frames"] += len(staged)
