"""The queue engine: after a change, recompute the doctor's queue in one read-only SQL round
trip, derive the boards, and publish each topic whose visible content changed; the positions
reach the tokens table later (write_back.py).

The engine is the loop that wires three parts: which doctors to recompute next (schedule.py),
what it holds between recomputes — queues, layouts, open patient views (engine_state.py) — and
what it has published (publisher.py). Only an elected leader runs an engine, one per shard of
hospitals (leader.py, shards.py); every process fans out (hub.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg

from app import metrics
from app.live import views
from app.live.bus import Bus, Deposed
from app.live.changes import ChangeNotice
from app.live.design_keys import DesignKeys
from app.live.engine_state import EngineState
from app.live.interest import WatchedTopics
from app.live.publisher import Publisher
from app.live.schedule import Launch, RecomputeSchedule
from app.live.shapes import DoctorQueue, Layout, LayoutDepartment
from app.live.shard_hash import shard_of
from app.live.write_back import PositionWriteBack
from app.settings import Settings

log = logging.getLogger(__name__)

REFRESH = 1  # recompute every queue with someone in it (safety timer)
REBUILD = 2  # recompute every doctor, every token of the day (after a reconnect)
SWEEP_HOSPITALS_SLICE = 8  # hospitals whose boards and alerts are redone per round
SWEEP_HOSPITALS_INTERVAL_S = 0.02  # ... and how often such a round may run
RETRY_AFTER_ERROR_S = 1.0
# The hospital topic (every department's board in one frame) is rebuilt at most this often. No
# page of ours waits on it: a whole-hospital TV follows each department's topic, which goes out
# with the doctor's recompute. It carries every department, 187 KB for a hospital of 49; rebuilt
# every 50 ms it was a third of the bytes on the bus at 100 changes/s (docs/performance.md).
HOSPITAL_BOARD_INTERVAL_S = 1.0
OPERATIONS_INTERVAL_S = 1.0  # the operations dashboard is rebuilt at most this often per hospital
OPERATIONS_QUERY_INTERVAL_S = 5.0  # ... and its doctors' statuses and alerts read at most this often


class PerKeyInterval:
    """At most one run per key every interval_s (boards and dashboards of one hospital)."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}

    def wait_s(self, key: str) -> float:
        """0 if key may run now (and counts it as run); else the seconds until it may."""
        wait = self.due_in_s(key)
        if wait > 0:
            return wait
        self._last[key] = time.monotonic()
        return 0.0

    def due_in_s(self, key: str) -> float:
        """The seconds until key may run (0: now), without counting a run."""
        return max(0.0, self._last.get(key, -self._interval_s) + self._interval_s - time.monotonic())


class QueueEngine:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, settings: Settings,
                 design_keys: DesignKeys | None = None, shard: int = 0, shards: int = 1) -> None:
        self._pool = pool
        self._settings = settings
        self._design_keys = design_keys
        # This engine computes the hospitals of one shard (shards.py); one of one: all of them.
        self.shard = shard
        self._shards = shards
        self.publisher = Publisher(bus, shard)      # a new engine rebuilds everything: a new epoch
        self._bus = bus
        self.watching = WatchedTopics(settings.watch_refresh_s, time.monotonic())  # topics watched (interest.py)
        self.schedule = RecomputeSchedule()
        self.state = EngineState()
        self._everything = REBUILD
        self._layouts_stale = True
        self._wake = asyncio.Event()
        self._wake.set()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # doctor_id -> its running recompute
        self._launch_timer: asyncio.TimerHandle | None = None
        self.write_back = PositionWriteBack(pool)      # positions to the tokens table, later
        self._write_back_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sweep_started: float | None = None        # when the sweep under way was planned
        self._next_hospital_sweep = 0.0
        self._boards_due: dict[str, float | None] = {}  # hospital_id -> earliest change not on its board
        self._boards_pace = PerKeyInterval(HOSPITAL_BOARD_INTERVAL_S)
        self._sweep_hospitals: dict[str, None] = {}      # boards and alerts to redo after the sweep, in order
        self._layout_changes: dict[str, float | None] = {}  # hospital_id -> when its layout changed
        self._layouts_loaded: dict[str, float | None] = {}  # ... and since then loaded, to publish
        self._operations_pace = PerKeyInterval(OPERATIONS_INTERVAL_S)
        self._operations_late: dict[str, float | None] = {}  # hospitals whose dashboard update waits
        self._operations_read: dict[str, tuple[float, Any]] = {}  # hospital_id -> (when, hospital_operations)
        self._operations_reread: dict[str, float] = {}  # hospital_id -> when its statuses are read again
        self._boards_wanted: set[str] = set()  # hospitals with a new watcher of an unpublished topic
        self.stats = {"recomputes": 0, "queries": 0, "changes": 0, "batches": 0}

    # The publisher's identity, as the leader and the tests know it.
    @property
    def epoch(self) -> str:
        return self.publisher.epoch

    @property
    def term(self) -> int:
        return self.publisher.term

    @term.setter
    def term(self, term: int) -> None:
        self.publisher.term = term

    @property
    def deposed(self) -> bool:
        return self.publisher.deposed

    @property
    def queues(self) -> dict[str, DoctorQueue]:
        return self.state.queues

    @property
    def layouts(self) -> dict[str, Layout]:
        return self.state.layouts

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
            self.schedule.want_full_views(doctor_id)  # the doctor, cabin or shift changed: every view shows it
        if payload.get("kind") == "token" and payload.get("token_id"):
            self.schedule.note_token(doctor_id, payload["token_id"])
            old_doctor = payload.get("old_doctor_id")
            if old_doctor:
                # Transferred: the doctor it left reads it too, so that a view of it that this
                # doctor read just before the transfer is not left standing (_recompute_doctor
                # hands it on to the new doctor).
                self.schedule.note_token(old_doctor, payload["token_id"])
                self._mark(old_doctor, at)
        if doctor_id not in self.state.doctor_hospital:
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
        if self.schedule.mark(doctor_id, at):
            metrics.COALESCED.inc()

    def mark_everything_stale(self) -> None:
        """After a (re)connect: notifications sent meanwhile are lost, so rebuild everything,
        closed tokens included."""
        self._everything = REBUILD
        self._layouts_stale = True
        self._wake.set()

    async def bus_state_survived(self) -> bool:
        return await self.publisher.bus_state_survived()

    def bus_state_lost(self) -> None:
        """The bus lost its stored snapshots (Redis restarted empty): publish every topic again
        now, not at the next safety refresh, so a screen that opens meanwhile is not blank."""
        self.publisher.forget_published()
        self.mark_everything_stale()

    def mark_live_queues_stale(self) -> None:
        """The safety refresh: recompute every queue that has someone in it, and the layouts."""
        self._everything = self._everything or REFRESH
        self._layouts_stale = True
        self._wake.set()

    def mark_active_queues(self) -> None:
        """ETAs drift only while a consultation runs: recompute the queues where one does."""
        for doctor_id, queue in self.state.queues.items():
            serving = queue.get("now_serving")
            if serving and serving.get("status") == "IN_CONSULTATION" and queue.get("waiting"):
                self._mark(doctor_id, None)
        self._wake.set()

    # The loop ------------------------------------------------------------------------------
    # A pipeline, not batches: each doctor's recompute starts as soon as a slot is free and goes
    # out as soon as it is done, so a click never waits for a batch of other doctors' changes
    # (the order and the limits: schedule.py). A doctor's department boards and doors go out
    # with the doctor's own topics; the hospital topic, built from every department, at most
    # every HOSPITAL_BOARD_INTERVAL_S per hospital.
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
        for task in [*self._tasks.values(), *filter(None, [self._write_back_task])]:
            task.cancel()

    def waiting_count(self) -> int:
        """Doctors whose queue waits for a recompute: changed, or due in a sweep (metrics)."""
        return self.schedule.waiting_count()

    async def _step(self) -> None:
        self.stats["batches"] += 1
        everything, self._everything = self._everything, 0
        try:
            if everything and not await self.publisher.bus_state_survived():
                # The bus lost its stored snapshots (Redis restarted empty): publish everything again.
                self.publisher.forget_published()
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
            busy = {self.state.doctor_hospital.get(d) for d in self.schedule.sweeping_doctors()}
            swept = set([h for h in self._sweep_hospitals if h not in busy][:SWEEP_HOSPITALS_SLICE])
            for hospital_id in swept:
                del self._sweep_hospitals[hospital_id]
            await self._check_alerts(swept)
            for hospital_id in swept:
                await self._publish_boards(hospital_id, True, None)
        if self._sweep_started is not None and not (self.schedule.sweeping_doctors() or self._sweep_hospitals):
            metrics.SAFETY_SWEEP.observe(time.monotonic() - self._sweep_started)
            self._sweep_started = None

    def _start_recomputes(self) -> None:
        # A doctor the layouts do not know yet waits for the read under way: recomputed before
        # it, its boards would have nowhere to go, and nothing would bring them back.
        for launch in self.schedule.next_launches(
                lambda d: d in self.state.doctor_hospital or not self._layouts_stale):
            self._tasks[launch.doctor_id] = asyncio.create_task(
                self._recompute_in_flight(launch), name=f"recompute-{launch.doctor_id}")

    async def _recompute_in_flight(self, launch: Launch) -> None:
        doctor_id, changed_at = launch.doctor_id, launch.changed_at
        try:
            started = time.perf_counter()
            await self._recompute_doctor(doctor_id, changed_at, launch.extras, launch.all_of_day,
                                         launch.full_views)
            metrics.RECOMPUTE.observe(time.perf_counter() - started)
            hospital_id = self.state.doctor_hospital.get(doctor_id)
            if hospital_id is not None:
                due = self._boards_due.get(hospital_id)
                self._boards_due[hospital_id] = (changed_at if due is None
                                                 else min(due, changed_at or due))
        except Exception as exc:  # database or bus away: keep the work and try again
            log.warning("recompute of doctor %s failed (%r); retrying", doctor_id, exc)
            if self.schedule.failed(launch):
                metrics.COALESCED.inc()
            await asyncio.sleep(RETRY_AFTER_ERROR_S)  # the doctor stays in flight meanwhile
        finally:
            self._tasks.pop(doctor_id, None)
            self.schedule.finished(doctor_id)
            # The freed slot goes straight to the next waiting doctor: under load, changes need
            # no coalescing window (those to a doctor in flight gather while it is recomputed).
            if not self._stopping:
                self._start_recomputes()
            self._wake.set()  # boards, and anything the loop must look at

    async def _publish_due_boards(self) -> None:
        # A new watcher of a whole-hospital topic that is not stored (nobody watched it) gets it
        # now, not at the hospital's next turn.
        for hospital_id in list(self._boards_wanted):
            layout = self.state.layouts.get(hospital_id)
            if layout is None:
                self._boards_wanted.discard(hospital_id)  # not this shard's any more
            elif self._department_views(layout) is not None:  # else: once its boards are built
                self._boards_wanted.discard(hospital_id)
                await self._publish_boards(hospital_id, False, self._boards_due.pop(hospital_id, None))
        for hospital_id in list(self._boards_due):
            wait = self._boards_pace.wait_s(hospital_id)
            if wait > 0:
                self._wake_in(wait)
                continue
            changed_at = self._boards_due.pop(hospital_id, None)
            if hospital_id in self.state.layouts:
                await self._publish_boards(hospital_id, False, changed_at)
        # A dashboard update held back by its own pace goes out at its time, not at the hospital
        # topic's next turn as well (two one-second paces out of step made it wait up to 2 s).
        now = time.monotonic()
        for hospital_id, due in list(self._operations_reread.items()):
            if due <= now:
                del self._operations_reread[hospital_id]
                self._operations_late.setdefault(hospital_id, None)
        for hospital_id in list(self._operations_late):
            if self._operations_pace.due_in_s(hospital_id) > 0:
                continue  # the loop is woken when it is due (_publish_operations)
            layout = self.state.layouts.get(hospital_id)
            if layout is None:  # not this shard's any more
                del self._operations_late[hospital_id]
                continue
            departments = self._department_views(layout)
            if departments is not None:
                await self._publish_operations(hospital_id, departments, None, False)
                await self._flush()

    async def _publish_changed_layouts(self) -> None:
        """The boards of hospitals whose changed layout has been read, rebuilt in full. (Not
        held back while another change marks the layouts stale again: at a busy moment, new
        doctors somewhere kept the flag up and a notice's removal waited.)"""
        changes, self._layouts_loaded = self._layouts_loaded, {}
        for hospital_id, changed_at in changes.items():
            if hospital_id in self.state.layouts:
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
        order += [d for d in self.state.doctor_hospital if d not in first]
        for doctor_id in order:
            hospital_id = self.state.doctor_hospital.get(doctor_id)
            if hospital_id is None:
                continue
            queue = self.state.queues.get(doctor_id)
            live = queue is not None and bool(queue["now_serving"] or queue["waiting"] or queue["booked_count"])
            if everything == REBUILD or live:
                self.schedule.add_to_sweep(doctor_id, everything == REBUILD)
                self._sweep_hospitals.setdefault(hospital_id)
        if everything == REBUILD:
            for hospital_id in self.state.layouts:
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
        # Doctors computed before their hospital was known: their boards go out now.
        for hospital_id in self.state.set_layouts([r["layout"] for r in rows]):
            self._boards_due.setdefault(hospital_id, None)
        if self._design_keys is not None:
            await self._design_keys.write_geofences(self.state.layouts.values())

    async def _recompute_doctor(self, doctor_id: str, changed_at: float | None,
                                extra_tokens: list[str], all_of_day: bool, full_views: bool) -> None:
        held = self.state.held_tokens(doctor_id)
        known = None if full_views or all_of_day else held
        async with self._pool.acquire() as conn:
            result = await conn.fetchval("SELECT doctor_live_views($1, $2, $3, $4)",
                                         doctor_id, extra_tokens, all_of_day, known)
        self.stats["recomputes"] += 1
        self.stats["queries"] += 1
        if result is None or result["queue"] is None:
            return
        queue: DoctorQueue = result["queue"]
        self.state.set_queue(doctor_id, queue)
        # The staff view of the queue is the queue as computed, the API's shape: the SQL builds
        # no engine-only fields (walking every waiting patient to drop one, which nothing read,
        # was 6 % of the engine process's profile).
        self.publisher.stage(f"doctor:{doctor_id}", queue, changed_at)
        if known is None:
            self.state.forget_views(doctor_id)  # every open view comes back from the database
        read = set()
        closed = []
        now = time.monotonic()
        for token in result["tokens"]:
            owner = token["view"]["doctor_id"]
            if owner != doctor_id:
                # Moved to another doctor: its view goes out with that doctor's queue, which
                # has its position (this one's does not).
                self.schedule.note_token(owner, token["view"]["token_id"])
                self._mark(owner, changed_at)
                self._launch_soon()
                continue
            self._publish_token_view(token["code"], token["view"], changed_at, now)
            read.add(self.state.hold_view(token["code"], token["view"]))
            if token["view"]["status"] not in views.OPEN_STATUSES:
                closed.append(f"token:{token['code']}")
        for code, view in self.state.patched_views(doctor_id, queue, read):
            self._publish_token_view(code, view, changed_at, now)
        self._publish_doctor_boards(doctor_id, queue, changed_at)
        await self._flush()
        for topic in closed:  # its last view is stored (or withdrawn): nothing to compare again
            self.publisher.forget(topic)
        self.write_back.note(doctor_id)
        if self._design_keys is not None:
            self._design_keys.queue_doctor(queue)

    def _publish_token_view(self, code: str, view: Any, changed_at: float | None, now: float) -> None:
        """A patient's view goes out if someone watches it; otherwise its stored snapshot is
        withdrawn, not left outdated (interest.py)."""
        topic = f"token:{code}"
        if self.watching.watched(topic, now):
            self.publisher.stage(topic, view, changed_at)
        else:
            self.publisher.withdraw(topic)

    async def follow_watching(self) -> None:
        """The web processes' announcements of the patients' views and whole-hospital topics
        they have subscribers for (interest.py). A topic that becomes watched while its snapshot
        is withdrawn goes out at once: a patient's view from the one held, a hospital's topics
        at the loop's next turn."""
        async for topics in self._bus.listen_watching():
            now = time.monotonic()
            if topics is None:
                self.watching.reopen(now)
                continue
            self.watching.note(topics, now)
            for topic in topics:
                if self.publisher.is_published(topic):
                    continue
                kind, _, ident = topic.partition(":")
                if kind == "token":
                    view = self.state.held_view(ident)
                    if view is not None:
                        self.publisher.stage(topic, view, None)
                elif ident in self.state.layouts:  # a whole-hospital topic of this engine's shard
                    self._boards_wanted.add(ident)
                    self._wake.set()
            if self.publisher.pending:
                await self._flush()

    async def _publish_boards(self, hospital_id: str, everything: bool,
                              changed_at: float | None) -> None:
        layout = self.state.layouts.get(hospital_id)
        if layout is None:
            return
        for dept in layout["departments"]:
            # A department's board and doors go out with its doctors' recomputes; here only in
            # a sweep, or when not built yet.
            if everything or dept["dept_id"] not in self.state.department_views:
                self._publish_department(layout, dept, changed_at)
        departments = self._department_views(layout)
        if departments is None:
            await self._flush()  # a new engine still loading: the hospital board waits for it
            return
        hospital_topic = f"hospital:{hospital_id}"
        if self.watching.watched(hospital_topic, time.monotonic()):
            self.publisher.stage(hospital_topic, views.hospital_view(layout, departments), changed_at)
        else:
            self.publisher.withdraw(hospital_topic)
        if self._design_keys is not None:
            await self._design_keys.write_department_counts(
                {d["dept_id"]: d["waiting_count"] for d in departments})
        await self._publish_operations(hospital_id, departments, changed_at, everything)
        await self._flush()

    def _department_views(self, layout: Layout) -> list[dict[str, Any]] | None:
        """Every department board of the hospital, or None while some are not built yet."""
        built = [self.state.department_views[d["dept_id"]] for d in layout["departments"]
                 if d["dept_id"] in self.state.department_views]
        return built if len(built) == len(layout["departments"]) else None

    def _publish_department(self, layout: Layout, dept: LayoutDepartment, changed_at: float | None) -> None:
        """Stage a department's board and its cabins' door views (kept for the hospital board),
        once every doctor of the department is computed."""
        if not self.state.department_ready(dept):
            return
        view = self.state.build_department(layout, dept)
        self.publisher.stage(f"department:{dept['dept_id']}", view, changed_at)
        for cabin in dept["cabins"]:
            self.publisher.stage(f"cabin:{cabin['cabin_id']}", self.state.cabin_view(layout, dept, cabin),
                                 changed_at)

    def _publish_doctor_boards(self, doctor_id: str, queue: DoctorQueue, changed_at: float | None) -> None:
        """The department boards and door displays that show this doctor, in the same flush as
        the doctor's own topics: a TV shows a call as soon as the doctor's console does. (The
        hospital topic, built from every department, follows at most every
        HOSPITAL_BOARD_INTERVAL_S.)"""
        layout = self.state.layout_of_doctor(doctor_id)
        if layout is None:
            return
        for dept in self.state.departments_showing(doctor_id, queue):
            self._publish_department(layout, dept, changed_at)

    async def _publish_operations(self, hospital_id: str, departments: list[dict[str, Any]],
                                  changed_at: float | None, fresh: bool) -> None:
        """The operations dashboard, at most once per OPERATIONS_INTERVAL_S per hospital. A
        skipped update is made when the interval is over (the loop is woken for it). Department
        loads come from the engine's queues; the doctors' statuses and open alerts from a query
        that reads every doctor of the hospital (tens of milliseconds for a large one), at most
        every OPERATIONS_QUERY_INTERVAL_S, and in every sweep (which has just checked alerts).
        Only while someone watches it (interest.py): no query for a dashboard nobody has open."""
        topic = f"operations:{hospital_id}"
        if not self.watching.watched(topic, time.monotonic()):
            self._operations_late.pop(hospital_id, None)
            self._operations_reread.pop(hospital_id, None)
            self.publisher.withdraw(topic)
            return
        if not self.publisher.is_published(topic):
            fresh = True  # not stored (a new watcher): now, read afresh
            wait = 0.0
        else:
            wait = self._operations_pace.wait_s(hospital_id)
        if wait > 0:
            self._operations_late.setdefault(hospital_id, changed_at)
            self._wake_in(wait)
            return
        changed_at = self._operations_late.pop(hospital_id, changed_at) or changed_at
        layout = self.state.layouts[hospital_id]
        read = self._operations_read.get(hospital_id)
        now = time.monotonic()
        if fresh or read is None or now - read[0] >= OPERATIONS_QUERY_INTERVAL_S:
            read = (now, await self._pool.fetchval("SELECT hospital_operations($1)", hospital_id))
            self._operations_read[hospital_id] = read
            self._operations_reread.pop(hospital_id, None)
            self.stats["queries"] += 1
        elif hospital_id not in self._operations_reread:
            # Statuses read before this change: read again once the interval is over, even if
            # nothing changes by then (they stayed behind until the next sweep, up to 30 s).
            self._operations_reread[hospital_id] = read[0] + OPERATIONS_QUERY_INTERVAL_S
            self._wake_in(read[0] + OPERATIONS_QUERY_INTERVAL_S - now)
        operations = read[1]
        self.publisher.stage(topic,
                             views.operations_view(layout, departments, self.state.queues, operations), changed_at)

    async def _check_alerts(self, hospitals: set[str]) -> None:
        """The periodic bottleneck check (sql: check_hospital_alerts), on the safety timer."""
        for hospital_id in hospitals:
            await self._pool.fetchval("SELECT check_hospital_alerts($1)", hospital_id)
            self.stats["queries"] += 1

    async def _flush(self) -> None:
        """Send the staged frames in one bus round trip (publisher.py); a newer term's publish
        stops this engine."""
        try:
            await self.publisher.flush()
        except Deposed:
            # Another process leads now (this one was frozen, or cut off): publish nothing more.
            self.stop()
            raise
