"""The phases of a run: end-to-end load, replay into both fan-out servers, idle connections."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.gc_policy import PauseMeter
from bench import replay, report, statements
from bench.cpu_probe import CpuProbe
from bench.driver import Driver
from bench.gc_pauses import summary as gc_summary
from bench.hospital import BenchHospital
from bench.monitor import Monitor, by_pids
from bench.servers import AppProcess, NodeProcess
from bench.swarm import ClientSpec, Swarm, WindowStats

RECEPTION_DESKS = 2  # staff screens on the operations topic (the desk's doctor list)

DRAIN_S = 3.0          # after the last change, frames still on their way are counted
STATS_FLUSH_S = 11.0   # PostgreSQL 15 backends flush their counters within 10 s of going idle
SETTLE_S = 3.0
QUIET_S = 2.0          # the engine has caught up when it publishes nothing for this long ...
QUIET_MAX_S = 60.0     # ... or we stop waiting (an overloaded run says so)
FUNCTIONS = ("doctor_live_views", "hospital_layout", "call_next_token", "issue_token",
             "set_token_status")


@dataclass
class Context:
    args: argparse.Namespace
    hospital: BenchHospital
    app: AppProcess
    monitor: Monitor
    namespace: str
    layout: dict[str, int]
    probe: CpuProbe | None = None


def client_specs(ctx: Context) -> list[ClientSpec]:
    """Phones on the tail tokens, a console per doctor, two TVs per department board, two
    whole-hospital boards (each, like the board page, on every department's topic) and two
    reception desks (their doctor list is the operations topic, which the engine publishes only
    while watched). Nobody watches the hospital topic, as in a hospital without integrations."""
    h = ctx.hospital
    specs = []
    if ctx.args.idle:
        codes = h.all_codes
        return [ClientSpec(f"token:{codes[i % len(codes)]}") for i in range(ctx.args.idle)]
    phones = ctx.layout["phones"]
    per_doctor = [h.tail_codes[d] for d in h.doctor_ids]
    i = 0
    while len(specs) < phones:
        codes = per_doctor[i % len(per_doctor)]
        k = i // len(per_doctor)
        if k < len(codes):
            specs.append(ClientSpec(f"token:{codes[k]}"))
        i += 1
    specs += [ClientSpec(f"doctor:{d}", staff=True) for d in h.doctor_ids]
    departments = [f"department:{d}" for d in h.dept_ids]
    specs += [ClientSpec(t, staff=True) for t in departments for _ in range(2)]
    specs += [ClientSpec(departments[0], staff=True, more_topics=tuple(departments[1:])) for _ in range(2)]
    specs += [ClientSpec(f"operations:{h.hospital_id}", staff=True, paced=True) for _ in range(RECEPTION_DESKS)]
    return specs


async def db_counters(dsn: str, database: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        xacts = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database)
        rows = await conn.fetch("SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions")
    finally:
        await conn.close()
    return {"transactions": int(xacts), **{r["funcname"]: int(r["calls"]) for r in rows},
            **{f"{r['funcname']}.total_ms": float(r["total_time"]) for r in rows},
            **{f"{r['funcname']}.self_ms": float(r["self_time"]) for r in rows}}


async def sample_backends(dsn: str, database: str, stop: asyncio.Event) -> dict[str, Any]:
    """What the app's connections do during the drive: pool use, lock waits, engine lanes; and
    the seconds (since the sampling started) at which autovacuum worked in the database, to line
    up with the slow seconds."""
    conn = await asyncpg.connect(dsn)
    rows: list[asyncpg.Record] = []
    started = time.time()
    autovacuum_at: list[int] = []
    try:
        while not stop.is_set():
            row = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
                          count(*) FILTER (WHERE backend_type = 'client backend'
                                             AND state <> 'idle') AS busy,
                          count(*) FILTER (WHERE backend_type = 'client backend'
                                             AND wait_event_type = 'Lock') AS lock_waits,
                          count(*) FILTER (WHERE backend_type = 'client backend'
                                             AND query LIKE '%doctor_live_views%'
                                             AND state = 'active') AS recomputing,
                          count(*) FILTER (WHERE backend_type = 'autovacuum worker') AS autovacuum
                   FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()""", database)
            rows.append(row)
            if row["autovacuum"] and int(time.time() - started) not in autovacuum_at:
                autovacuum_at.append(int(time.time() - started))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    finally:
        await conn.close()
    if not rows:
        return {}
    return {**{f"{k}_{agg}": round(fn([r[k] for r in rows]), 2)
               for k in ("connections", "busy", "lock_waits", "recomputing")
               for agg, fn in (("avg", lambda v: sum(v) / len(v)), ("max", max))},
            "autovacuum_at_s": autovacuum_at}


def window_figures(stats: WindowStats, seconds: float) -> dict[str, Any]:
    return {"frames": stats.frames, "frames_per_s": round(stats.frames / seconds, 1) if seconds else 0,
            "latency_ms": report.percentiles(stats.latencies), "errors": stats.errors,
            "closed": stats.closed, "other_messages": stats.other, "paced_frames": stats.paced_frames}


async def _connect(swarm: Swarm, label: str) -> dict[str, Any]:
    result = await swarm.connect()
    print(f"{label}: {result['ready']} clients ready, {result['failed']} failed, "
          f"in {result['seconds']:.1f}s", flush=True)
    return result


async def _replays(ctx: Context, swarm: Swarm, frames: list[replay.Captured],
                   send: replay.Send, wait_for_room: Any, server: str) -> dict[str, Any]:
    """Timed replay of the captured frames, then flat out; measured at the clients."""
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    await swarm.start()
    seconds = await replay.replay_timed(frames, send)
    await asyncio.sleep(DRAIN_S)
    out["timed"] = window_figures(await swarm.stop(), seconds)
    out["timed"]["usage"] = report.usage_dict(ctx.monitor.usage(t0, time.monotonic()))
    print(f"{server} timed replay: {out['timed']['frames_per_s']} frames/s, "
          f"{report.fmt_latency(out['timed']['latency_ms'])}", flush=True)
    if ctx.args.flat_out_seconds > 0:
        topics = {t for s in client_specs(ctx) for t in s.topics}
        watched = [f for f in frames if f.topic in topics]
        t0 = time.monotonic()
        start_at = await swarm.start()
        sent = await replay.replay_flat_out(watched, send, ctx.args.flat_out_seconds, wait_for_room)
        await asyncio.sleep(DRAIN_S)
        stats = await swarm.stop()
        busy = max(ctx.args.flat_out_seconds, (stats.last_at or start_at) - start_at)
        out["flat_out"] = window_figures(stats, busy)
        out["flat_out"]["sent"] = sent
        out["flat_out"]["usage"] = report.usage_dict(ctx.monitor.usage(t0, time.monotonic()))
        print(f"{server} flat out: sent {sent}, delivered {out['flat_out']['frames_per_s']} "
              f"frames/s, {report.fmt_latency(out['flat_out']['latency_ms'])}", flush=True)
    return out


async def load_mode(ctx: Context) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    args, h, app = ctx.args, ctx.hospital, ctx.app
    specs = client_specs(ctx)
    deflate = not args.no_deflate
    capture = replay.Capture(args.redis_url, ctx.namespace)
    await capture.start()
    bench_gc = PauseMeter().install()  # the driver's and the capture's process
    swarm = Swarm(app.ws_url, h.key, specs, workers=args.workers, deflate=deflate,
                  nofile=65536, address_block=1)
    ctx.monitor.watch("swarm", by_pids(lambda: swarm.pids))
    data: dict[str, Any] = {}
    try:
        data["connect"] = await _connect(swarm, "app")
        await asyncio.sleep(STATS_FLUSH_S)  # settle; also measures the idle cost of N clients
        t_idle = time.monotonic()
        data["idle_with_clients"] = report.usage_dict(
            ctx.monitor.usage(t_idle - STATS_FLUSH_S + 1, t_idle))
        before = await db_counters(h.dsn, h.database)
        if args.statement_log:
            await statements.mark(h.dsn, "drive-start")
        capture.recording = True
        await swarm.start()
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_backends(h.dsn, h.database, stop_sampling))
        # One continuous drive; its first warmup_seconds are reported apart: every pooled
        # connection plans each statement of the SQL functions on first use.
        warmup = args.warmup_seconds
        ramp = 0.0 if args.lockstep else 2 * len(h.doctor_ids) / args.rate
        if warmup < ramp:
            print(f"WARNING: the staggered doctors reach the full rate only after {ramp:.1f}s; "
                  f"--warmup-seconds {warmup:g} leaves part of the ramp in the measured window",
                  flush=True)
        # The driver stamps every click and the capture every frame: a collection of this
        # process's garbage would read as server latency (one of 48 ms, with 143 small ones, in a
        # run before this). Nothing here collects while it measures; the swarm's workers made no
        # collection in that run (bench/gc_pauses.py says so in every run).
        gc.collect()
        gc.freeze()
        gc.disable()
        t_drive = time.monotonic()
        drive_all = await Driver(app.base_url, h.key, h.doctor_ids, args.rate,
                                 warmup + args.seconds, lockstep=args.lockstep).run()
        drive_end = time.time()
        cutoff = drive_all.started + warmup
        drive = drive_all.changed_between(cutoff, drive_all.started + drive_all.seconds)
        stop_sampling.set()
        backends = await sampler
        # ... its seconds counted, like the slow seconds', from the end of the warm-up
        backends["autovacuum_at_s"] = [int(s - warmup) for s in backends.get("autovacuum_at_s", [])]
        caught_up = await _wait_quiet(capture)
        if args.statement_log:
            await statements.mark(h.dsn, "drive-end")
        await asyncio.sleep(DRAIN_S)
        stats_all = await swarm.stop()
        gc.enable()
        gc.unfreeze()
        stats = stats_all.changed_between(cutoff)
        t1 = time.monotonic()
        capture.recording = False
        usage = ctx.monitor.usage(t_drive + warmup, t1)
        await asyncio.sleep(STATS_FLUSH_S)
        after = await db_counters(h.dsn, h.database)
        # Frames caused by the drive keep coming while the engine works off a backlog.
        e2e = window_figures(stats, drive.seconds + max(0.0, stats.last_at - drive_end))
        e2e["tail_after_last_change_s"] = round(max(0.0, stats.last_at - drive_end), 2)
        e2e["engine_caught_up"] = caught_up
        e2e["backends"] = backends
        # Database counters cover the whole drive (backends flush them only when idle).
        changes = max(1, drive_all.changes)
        delta = {k: round(after.get(k, 0) - before.get(k, 0), 1) for k in after}
        data["e2e"] = {**e2e, "changes": drive.changes, "changes_per_s": round(drive.rate, 1),
                       "by_step": drive.by_step, "failures": drive.failures,
                       "api_ms": report.percentiles(_seconds(drive.api_ms)),
                       "usage": report.usage_dict(usage),
                       "published": len(capture.frames),
                       "db": {"delta": delta, "changes": changes,
                              "transactions_per_change": round(delta["transactions"] / changes, 2),
                              **{f"{f}_per_change": round(delta.get(f, 0) / changes, 3)
                                 for f in FUNCTIONS}}}
        if args.statement_log:
            logged = statements.count(args.statement_log, h.database, "drive-start", "drive-end")
            data["e2e"]["db"]["logged"] = {
                "transactions_per_change": round(logged["transactions"] / changes, 2),
                "by_kind_per_change": {k: round(v / changes, 3) for k, v in logged["by_kind"].items()}}
        frames = sorted(capture.frames, key=lambda f: f.at)
        if warmup > 0:
            warm = stats_all.changed_between(0.0, cutoff)
            warm_drive = drive_all.changed_between(drive_all.started, cutoff)
            data["warmup"] = {"seconds": warmup, "changes": warm_drive.changes,
                              "latency_ms": report.percentiles(warm.latencies),
                              "to_bus_ms": to_bus_latency(frames, 0.0, cutoff)["all"],
                              "api_ms": report.percentiles(_seconds(warm_drive.api_ms))}
            print(f"warm-up: {warm_drive.changes} changes, "
                  f"{report.fmt_latency(data['warmup']['latency_ms'])}", flush=True)
        print(f"e2e: {drive.changes} changes ({drive.rate:.1f}/s), {e2e['frames_per_s']} frames/s, "
              f"{report.fmt_latency(e2e['latency_ms'])}", flush=True)
        data["e2e"]["to_bus_ms"] = to_bus_latency(frames, cutoff)
        data["e2e"]["by_second"] = by_second(frames, cutoff)
        data["e2e"]["cpu_probe"] = ctx.probe.figures(cutoff, drive_end) if ctx.probe else {}
        data["e2e"]["bench_gc"] = {
            "bench": gc_summary(bench_gc.take(), cutoff, drive_end),
            **{f"swarm {n + 1}": gc_summary(pauses, cutoff, drive_end)
               for n, pauses in enumerate(stats_all.gc_pauses)}}
        bench_gc.uninstall()
        await capture.close()
        target = replay.AppTarget(args.redis_url, ctx.namespace,
                                  max((f.version for f in frames), default=0) + 10**9)
        target.remember_epochs(frames)
        try:
            data["app_replay"] = await _replays(ctx, swarm, frames, target.send,
                                                target.wait_for_room, "app")
        finally:
            await target.close()
    finally:
        await swarm.close()
    if not args.skip_node:
        data["node_replay"] = await _node_load(ctx, specs, frames, deflate)
    return _load_lines(ctx, data), data


async def _wait_quiet(capture: replay.Capture) -> bool:
    """Until the engine stops publishing (False if it is still busy after QUIET_MAX_S)."""
    started = time.monotonic()
    count, since = len(capture.frames), time.monotonic()
    while time.monotonic() - started < QUIET_MAX_S:
        await asyncio.sleep(0.25)
        if len(capture.frames) != count:
            count, since = len(capture.frames), time.monotonic()
        elif time.monotonic() - since >= QUIET_S:
            return True
    return False


def to_bus_latency(frames: list[replay.Captured], start: float = 0.0,
                   end: float = float("inf")) -> dict[str, Any]:
    """Change-to-bus latency (the engine's share of commit-to-client), by topic kind: the
    frames' changed_at against the time the bus delivered them to the capture; changes
    committed in [start, end) only."""
    from array import array

    by_kind: dict[str, array] = {}
    for frame in frames:
        changed_at = replay.changed_at(frame.text)
        if changed_at is not None and start <= changed_at < end:
            by_kind.setdefault(frame.topic.split(":", 1)[0], array("d")).append(frame.at - changed_at)
    every = array("d", (v for values in by_kind.values() for v in values))
    return {"all": report.percentiles(every),
            **{kind: report.percentiles(values) for kind, values in sorted(by_kind.items())}}


def by_second(frames: list[replay.Captured], start: float) -> dict[str, Any]:
    """When in the measured window the engine was slow, and what else it published then: per
    second since `start`, the change-to-bus p99 of the changes committed in that second, and the
    frames that no change caused (the ETA tick, the safety refresh). Lines the worst seconds up
    with the timer work, if that is what they are."""
    from array import array

    latency: dict[int, array] = {}
    timer_frames: dict[int, int] = {}
    for frame in frames:
        changed_at = replay.changed_at(frame.text)
        if changed_at is None:
            if frame.at >= start:
                second = int(frame.at - start)
                timer_frames[second] = timer_frames.get(second, 0) + 1
        elif changed_at >= start:
            latency.setdefault(int(changed_at - start), array("d")).append(frame.at - changed_at)
    p99 = {second: report.percentiles(values)["p99"] for second, values in latency.items()}
    published: dict[str, list[int]] = {}  # topic kind -> [frames, bytes] published in the window
    for frame in frames:
        if frame.at >= start:
            counts = published.setdefault(frame.topic.split(":", 1)[0], [0, 0])
            counts[0] += 1
            counts[1] += len(frame.text)
    worst = sorted(p99, key=lambda second: -(p99[second] or 0))[:5]
    return {"to_bus_p99_ms": {str(s): p99[s] for s in sorted(p99)},
            "timer_frames": {str(s): n for s, n in sorted(timer_frames.items())},
            "published_by_kind": {kind: {"frames": n, "kb": round(size / 1024)}
                                  for kind, (n, size) in sorted(published.items())},
            "worst": [{"second": s, "to_bus_p99_ms": p99[s], "timer_frames": timer_frames.get(s, 0)}
                      for s in worst]}


def _seconds(ms: list[float]) -> Any:
    from array import array

    return array("d", (m / 1000 for m in ms))


async def _node_load(ctx: Context, specs: list[ClientSpec], frames: list[replay.Captured],
                     deflate: bool) -> dict[str, Any]:
    node = NodeProcess(deflate)
    ctx.monitor.watch("node", by_pids(lambda: [node.pid]))
    swarm = Swarm(node.ws_url, ctx.hospital.key, specs, workers=ctx.args.workers, deflate=deflate,
                  nofile=65536, address_block=2)
    ctx.monitor.watch("swarm", by_pids(lambda: swarm.pids))
    target = replay.NodeTarget(node.control_url)
    try:
        result: dict[str, Any] = {"connect": await _connect(swarm, "node")}
        await target.connect()
        result.update(await _replays(ctx, swarm, frames, target.send, None, "node"))
        return result
    finally:
        await swarm.close()
        await target.close()
        node.stop()


def _ratio(ours: dict[str, Any], node: dict[str, Any] | None, key: str) -> str:
    if not node or key not in node or not node[key]["frames_per_s"]:
        return "n/a"
    return f"{ours[key]['frames_per_s'] / node[key]['frames_per_s']:.2f}"


def _load_lines(ctx: Context, data: dict[str, Any]) -> list[tuple[str, str]]:
    e2e, db = data["e2e"], data["e2e"]["db"]
    usage = e2e["usage"]
    app_r, node_r = data["app_replay"], data.get("node_replay")
    lines = [
        ("hospital", f"{ctx.layout['doctors']} doctors in {ctx.layout['departments']} departments, "
                     f"{ctx.layout['queue_length']} waiting per doctor"),
        ("clients", f"{data['connect']['ready']} connected ({data['connect']['failed']} failed) in "
                    f"{data['connect']['seconds']:.1f}s; {ctx.args.workers} swarm processes; "
                    f"permessage-deflate {'off' if ctx.args.no_deflate else 'offered'}"),
        ("changes", f"{e2e['changes']} in {ctx.args.seconds:g}s = {e2e['changes_per_s']}/s "
                    f"{e2e['by_step']}; failures {sum(e2e['failures'].values())}"),
        *([(f"warm-up, first {data['warmup']['seconds']:g}s",
            f"{data['warmup']['changes']} changes, not in the figures below: commit-to-client "
            f"{report.fmt_latency(data['warmup']['latency_ms'])}; to bus "
            f"{report.fmt_latency(data['warmup']['to_bus_ms'])}; API "
            f"{report.fmt_latency(data['warmup']['api_ms'])}")] if "warmup" in data else []),
        ("API latency", report.fmt_latency(e2e["api_ms"])),
        ("commit-to-client", report.fmt_latency(e2e["latency_ms"])),
        ("  of which to bus", report.fmt_latency(e2e["to_bus_ms"]["all"])),
        *((f"    {kind}", report.fmt_latency(lat)) for kind, lat in e2e["to_bus_ms"].items()
          if kind != "all"),
        ("worst seconds", "; ".join(
            f"t+{w['second']}s to bus p99 {w['to_bus_p99_ms']} ms, {w['timer_frames']} timer frames"
            for w in e2e["by_second"]["worst"]) + "; timer frames at t+" + ", ".join(
            f"{s}s: {n}" for s, n in e2e["by_second"]["timer_frames"].items() if n >= 100)),
        ("published (window)", ", ".join(
            f"{kind} {v['frames']} frames {v['kb']} KB"
            for kind, v in e2e["by_second"]["published_by_kind"].items())),
        ("frames delivered", f"{e2e['frames']} = {e2e['frames_per_s']}/s "
                             f"(engine published {e2e['published']}; last frame "
                             f"{e2e['tail_after_last_change_s']}s after the last change"
                             f"{'' if e2e['engine_caught_up'] else ', engine still busy: stopped waiting'}); "
                             f"and {e2e['paced_frames']} of the operations topic to the reception desks "
                             "(one a second by design: not in the latencies; its lag is in 'to bus')"),
        ("app server", _usage_text(usage.get("app"))),
        *([("engine process", _usage_text(usage["engine"]))] if "engine" in usage else []),
        ("postgres (all)", _usage_text(usage.get("postgres"), rss=False)),
        ("redis", _usage_text(usage.get("redis"))),
        ("swarm", _usage_text(usage.get("swarm"))),
        ("bench (driver, capture)", _usage_text(usage.get("bench"))),
        ("machine speed (probe)", _probe_text(e2e.get("cpu_probe") or {})),
        ("bench's own GC pauses", _gc_text(e2e.get("bench_gc") or {})),
        *([("contention (hog)", _usage_text(usage["contention"], rss=False))] if "contention" in usage else []),
        ("app idle, clients on", _usage_text(data["idle_with_clients"].get("app"))),
        ("DB per change", f"{db['transactions_per_change']} transactions "
                          f"(whole drive, warm-up included) "
                          f"(pg_stat_database xact_commit+xact_rollback); "
                          f"doctor_live_views {db['doctor_live_views_per_change']}, "
                          f"hospital_layout {db['hospital_layout_per_change']} "
                          "(pg_stat_user_functions)"),
        *([("DB per change, logged", f"{db['logged']['transactions_per_change']} transactions "
                                       "(PostgreSQL's statement log, drive only): " + ", ".join(
            f"{k} {v}" for k, v in list(db["logged"]["by_kind_per_change"].items())[:8]))]
          if "logged" in db else []),
        ("DB time per change", ", ".join(
            f"{k.removesuffix('.total_ms')} {v / db['changes']:.2f} ms"
            for k, v in sorted(db["delta"].items(), key=lambda kv: -kv[1])
            if k.endswith(".total_ms") and v / db["changes"] >= 0.05)),
        ("DB sessions (drive)", ", ".join(f"{k} {v}" for k, v in e2e["backends"].items())),
        ("replay, app hub", _replay_text(app_r.get("timed"))),
    ]
    if node_r:
        lines.append(("replay, node ws", _replay_text(node_r.get("timed"))))
        lines.append(("ratio app/node", f"{_ratio(app_r, node_r, 'timed')} (timed replay)"))
    if "flat_out" in app_r:
        lines.append(("flat out, app hub", _replay_text(app_r["flat_out"])))
        for name in ("app", "redis", "swarm", "bench"):
            lines.append((f"  {name}", _usage_text(app_r["flat_out"]["usage"].get(name))))
        if node_r and "flat_out" in node_r:
            lines.append(("flat out, node ws", _replay_text(node_r["flat_out"])))
            for name in ("node", "swarm", "bench"):
                lines.append((f"  {name} ", _usage_text(node_r["flat_out"]["usage"].get(name))))
            lines.append(("ratio app/node", f"{_ratio(app_r, node_r, 'flat_out')} (flat out: "
                                             "fan-out capacity)"))
    return lines


def _gc_text(pauses: dict[str, dict[str, Any]]) -> str:
    """The measuring processes' own stops, which read as latency (bench/gc_pauses.py)."""
    if not pauses:
        return "n/a"
    return "; ".join(
        f"{name} {p['collections']} collections, {p['total_ms']} ms in all, longest {p['longest_ms']} ms "
        f"({p['full']} full, longest {p['full_longest_ms']} ms"
        + (f", at t+{', '.join(f'{t:g}' for t in p['full_at_s'])} s" if p["full_at_s"] else "") + ")"
        for name, p in pauses.items())


def _probe_text(probe: dict[str, Any]) -> str:
    if not probe:
        return "n/a"
    return (f"fixed arithmetic took {probe['cpu_ms_p50']} ms of CPU (p50; max {probe['cpu_ms_max']}; "
            f"{probe['cpu_ms_best_of_run']} at best in the whole run) and {probe['wall_ms_p50']} ms "
            f"of wall time (max {probe['wall_ms_max']}); a fixed walk through memory "
            f"{probe['memory_ms_p50']} ms of CPU (max {probe['memory_ms_max']}; "
            f"{probe['memory_ms_best_of_run']} at best) during the window (bench/cpu_probe.py)")


def _usage_text(usage: dict[str, float] | None, rss: bool = True) -> str:
    # PostgreSQL's RSS counts shared buffers once per backend: a sum of it means nothing.
    if not usage:
        return "n/a"
    text = f"CPU {usage['cpu_percent']:.0f}% avg, {usage['cpu_peak']:.0f}% peak (100% = one core)"
    return text + (f"; RSS peak {usage['rss_peak_mb']:.0f} MB" if rss else "")


def _replay_text(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "n/a"
    extra = f", sent {figures['sent']}" if "sent" in figures else ""
    return (f"{figures['frames_per_s']} frames/s delivered ({figures['frames']}{extra}); "
            f"send-to-client {report.fmt_latency(figures['latency_ms'])}")


async def idle_mode(ctx: Context) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    args, h, app = ctx.args, ctx.hospital, ctx.app
    specs = client_specs(ctx)
    deflate = not args.no_deflate
    data: dict[str, Any] = {}
    await asyncio.sleep(SETTLE_S)
    data["app_rss_before_mb"] = round(ctx.monitor.rss_now_mb("app"), 1)
    swarm = Swarm(app.ws_url, h.key, specs, workers=args.workers, deflate=deflate,
                  nofile=65536, address_block=1)
    ctx.monitor.watch("swarm", by_pids(lambda: swarm.pids))
    try:
        data["connect"] = await _connect(swarm, "app")
        await asyncio.sleep(STATS_FLUSH_S)
        t = time.monotonic()
        data["app_rss_after_mb"] = round(ctx.monitor.rss_now_mb("app"), 1)
        data["idle_usage"] = report.usage_dict(ctx.monitor.usage(t - STATS_FLUSH_S + 1, t))
    finally:
        await swarm.close()
    if not args.skip_node:
        node = NodeProcess(deflate)
        ctx.monitor.watch("node", by_pids(lambda: [node.pid]))
        await asyncio.sleep(1)
        data["node_rss_before_mb"] = round(ctx.monitor.rss_now_mb("node"), 1)
        swarm = Swarm(node.ws_url, h.key, specs, workers=args.workers, deflate=deflate,
                      nofile=65536, address_block=2)
        try:
            data["node_connect"] = await _connect(swarm, "node")
            await asyncio.sleep(SETTLE_S)
            data["node_rss_after_mb"] = round(ctx.monitor.rss_now_mb("node"), 1)
        finally:
            await swarm.close()
            node.stop()
    ready = max(1, data["connect"]["ready"])
    per_conn = (data["app_rss_after_mb"] - data["app_rss_before_mb"]) * 1024 / ready
    lines = [
        ("connections", f"{data['connect']['ready']} on token topics ({data['connect']['failed']} "
                        f"failed), opened in {data['connect']['seconds']:.1f}s; permessage-deflate "
                        f"{'off' if args.no_deflate else 'offered'}"),
        ("app RSS", f"{data['app_rss_before_mb']} MB before, {data['app_rss_after_mb']} MB with "
                    f"the connections = {per_conn:.1f} KB per connection"),
        ("app idle CPU", _usage_text(data["idle_usage"].get("app"))),
    ]
    if "node_connect" in data:
        node_ready = max(1, data["node_connect"]["ready"])
        node_per = (data["node_rss_after_mb"] - data["node_rss_before_mb"]) * 1024 / node_ready
        lines.append(("node ws RSS", f"{data['node_rss_before_mb']} MB before, "
                                     f"{data['node_rss_after_mb']} MB with {node_ready} connections "
                                     f"= {node_per:.1f} KB per connection"))
    return lines, data
