"""Prometheus metrics: what an IT team watches (docs/operations.md, "Metrics").

Defined here, counted where things happen (engine, hub, sockets, HTTP, outbox), served by
GET /metrics. Several processes (uvicorn workers, the engine process) add up through the
library's multi-process mode: each writes its figures to files under PROMETHEUS_MULTIPROC_DIR
and whoever is scraped reads them all; `python -m app serve --workers N` and the Procfile set it.
Hot paths count in batches (one call per frame fanned out, not one per client), so the
benchmark's figures do not move (docs/performance.md). Labels are bounded: route templates,
topic kinds, providers, reasons from a fixed list; never a token, patient or doctor id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.live.runtime import LiveRuntime
    from app.live.shards import EngineGroup

log = logging.getLogger(__name__)

# Seconds; the product's promise is ~0.1 s from click to screen, the alert fires at 2 s.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

# The live core.
COMMIT_TO_PUBLISH = Histogram(
    "opd_commit_to_publish_seconds",
    "From the commit of a token change (its NOTIFY's time) to its frames published on the bus",
    buckets=LATENCY_BUCKETS)
RECOMPUTE = Histogram("opd_recompute_seconds", "One doctor's queue recompute: SQL, views and publish",
                      buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
RECOMPUTE_WAITING = Gauge("opd_recompute_waiting_doctors",
                          "Doctors whose queue waits for a recompute (changed, or in a sweep)",
                          multiprocess_mode="livesum")
GC_PAUSE = Histogram("opd_gc_pause_seconds",
                     "One garbage collection of a server process (the process stands still meanwhile)",
                     ["generation"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
CHANGES = Counter("opd_changes_total", "Change notifications (NOTIFY) received by the engine")
COALESCED = Counter("opd_changes_coalesced_total",
                    "Changes folded into a recompute already due for the same doctor")
ENGINE_LEADER = Gauge("opd_engine_leader",
                      "Shards of the queue engine this process leads (1 while it leads the only one)",
                      multiprocess_mode="livesum")
ENGINE_SHARDS = Gauge("opd_engine_shards", "OPD_ENGINE_SHARDS of this engine process (0: takes no part)",
                      multiprocess_mode="livemax")
LEADER_TERMS = Counter("opd_engine_leader_terms_total", "Times a process became the engine leader")
PATIENT_VIEWS_WITHDRAWN = Counter(
    "opd_patient_views_withdrawn_total",
    "Stored patient views deleted rather than republished, because nobody watched them")
LISTEN_LOST = Counter("opd_listen_connection_lost_total",
                      "Times the engine's LISTEN connection to PostgreSQL was lost")
SAFETY_SWEEP = Histogram("opd_safety_sweep_seconds",
                         "From planning a safety refresh or rebuild to its last queue and board done",
                         buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))

# WebSockets.
WS_CONNECTIONS = Gauge("opd_ws_connections", "Open WebSocket connections", multiprocess_mode="livesum")
WS_SUBSCRIPTIONS = Gauge("opd_ws_subscriptions", "Topic subscriptions, by topic kind", ["kind"],
                         multiprocess_mode="livesum")
WS_FRAMES = Counter("opd_ws_frames_sent_total", "Snapshots handed to clients' writers")
WS_SKIPPED = Counter("opd_ws_snapshots_skipped_total",
                     "Snapshots a slow client skipped because a newer one of the topic came")
WS_STUCK = Counter("opd_ws_clients_disconnected_stuck_total",
                   "Clients disconnected because a send blocked past the timeout")
WS_SUBSCRIBE_ERRORS = Counter("opd_ws_subscribe_errors_total", "Refused subscriptions, by reason", ["reason"])
SUBSCRIBE_ERROR_REASONS = ("bad_request", "too_many_topics", "denied", "credential")

# HTTP and the database.
HTTP_REQUESTS = Counter("opd_http_requests_total", "HTTP requests, by route template and status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("opd_http_request_seconds", "HTTP request duration, by route template",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
DB_POOL = Gauge("opd_db_pool_connections", "The process's PostgreSQL pool: size, in use, max",
                ["state"], multiprocess_mode="livesum")
DB_ERRORS = Counter("opd_db_errors_total", "Requests that failed in the database, by kind", ["kind"])

# The outbox.
OUTBOX_PENDING = Gauge("opd_outbox_pending", "Messages waiting to be sent, by channel", ["channel"],
                       multiprocess_mode="mostrecent")
OUTBOX_OLDEST = Gauge("opd_outbox_oldest_pending_seconds", "Age of the oldest message waiting to be sent",
                      multiprocess_mode="mostrecent")
NOTIFICATIONS = Counter("opd_notifications_total", "Send attempts, by provider, result and reason",
                        ["provider", "result", "reason"])
NOTIFY_SECONDS = Histogram("opd_notification_send_seconds", "One provider call", ["provider"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

# ETA accuracy, last 7 days (docs/eta.md), per hospital and department while hospitals are few.
ETA_MAE = Gauge("opd_eta_mae_minutes", "Mean absolute error of the ETAs shown, last 7 days",
                ["hospital", "department"], multiprocess_mode="mostrecent")
ETA_IN_RANGE = Gauge("opd_eta_in_range_ratio", "Share of calls inside the range shown, last 7 days",
                     ["hospital", "department"], multiprocess_mode="mostrecent")
ETA_MAX_HOSPITALS = 10   # above this, per-department accuracy is left to `python -m app eta-report`
ETA_REFRESH_S = 300.0    # the 7-day figures move slowly; read them at most this often

LOCAL_STATE_S = 5.0      # each process writes its own gauges this often
_eta_read_at = 0.0


def topic_kind(topic: str) -> str:
    kind = topic.split(":", 1)[0]
    return kind if kind in ("doctor", "department", "hospital", "cabin", "operations", "token") else "other"


class HttpMetrics:
    """Counts each HTTP request by its route template (never the raw path with its ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_SECONDS.labels(method, template).observe(time.perf_counter() - started)


def record_local_state(runtime: LiveRuntime, pool: Any) -> None:
    """This process's gauges: sockets, subscriptions, pool, leadership, recomputes waiting."""
    hub = runtime.hub
    WS_CONNECTIONS.set(hub.connections)
    # Counted by the hub as clients come and go: walking ten thousand topics here held the
    # process's loop for milliseconds every few seconds.
    kinds = dict.fromkeys(("doctor", "department", "hospital", "cabin", "operations", "token", "other"), 0)
    kinds.update(hub.subscriptions_by_kind)
    for kind, count in kinds.items():
        WS_SUBSCRIPTIONS.labels(kind).set(count)
    DB_POOL.labels("size").set(pool.get_size())
    DB_POOL.labels("in_use").set(pool.get_size() - pool.get_idle_size())
    DB_POOL.labels("max").set(pool.get_max_size())
    record_engine_state(None if runtime.settings.engine == "off" else runtime.leader)


def record_engine_state(group: EngineGroup | None) -> None:
    if group is None:  # OPD_ENGINE=off: an engine process leads
        ENGINE_LEADER.set(0)
        ENGINE_SHARDS.set(0)
        RECOMPUTE_WAITING.set(0)
        return
    ENGINE_LEADER.set(len(group.held_shards))
    ENGINE_SHARDS.set(group.count)
    RECOMPUTE_WAITING.set(sum(engine.waiting_count() for engine in group.engines))


async def keep_local_state(runtime: LiveRuntime, pool: Any) -> None:
    """Until cancelled: this process's gauges, every LOCAL_STATE_S (a scrape may reach any process)."""
    while True:
        with contextlib.suppress(Exception):  # a gauge must never take the process down
            record_local_state(runtime, pool)
        await asyncio.sleep(LOCAL_STATE_S)


async def keep_engine_state(leader: EngineGroup) -> None:
    """The engine process's gauges (`python -m app engine`), every LOCAL_STATE_S."""
    while True:
        with contextlib.suppress(Exception):
            record_engine_state(leader)
        await asyncio.sleep(LOCAL_STATE_S)


async def record_database_state(pool: Any) -> None:
    """Figures read from PostgreSQL at scrape time: the outbox now, ETA accuracy (cached)."""
    global _eta_read_at
    rows = await pool.fetch(
        """SELECT channel, count(*) AS pending,
                  greatest(0, extract(epoch FROM clock_timestamp() - min(created_at)))::float8 AS oldest_s
           FROM notifications_log WHERE delivery_status = 'PENDING' GROUP BY channel""")
    for channel in ("SMS", "WHATSAPP", "PUSH", "EMAIL"):
        OUTBOX_PENDING.labels(channel).set(0)
    for row in rows:
        OUTBOX_PENDING.labels(row["channel"]).set(row["pending"])
    OUTBOX_OLDEST.set(max((row["oldest_s"] for row in rows), default=0.0))
    if time.monotonic() - _eta_read_at < ETA_REFRESH_S:
        return
    _eta_read_at = time.monotonic()
    hospitals = await pool.fetch("SELECT hospital_id, code FROM hospitals WHERE status = 'ACTIVE' "
                                 "ORDER BY code LIMIT $1", ETA_MAX_HOSPITALS + 1)
    if len(hospitals) > ETA_MAX_HOSPITALS:
        return
    for hospital in hospitals:
        for row in await pool.fetch(
                "SELECT * FROM eta_accuracy_by_department($1, hospital_today($1) - 6, hospital_today($1))",
                hospital["hospital_id"]):
            ETA_MAE.labels(hospital["code"], row["dept_code"]).set(float(row["mae"]))
            ETA_IN_RANGE.labels(hospital["code"], row["dept_code"]).set(float(row["in_range"]))


def _allowed(request: Request, token: str | None) -> Response | None:
    """None if this caller may read /metrics; else the refusal."""
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": {"code": "unauthenticated",
                                           "message": "/metrics needs Authorization: Bearer <OPD_METRICS_TOKEN>"}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return None
    host = request.client.host if request.client else ""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return None
    refusal = "/metrics answers only from this machine unless OPD_METRICS_TOKEN is set"
    return JSONResponse({"error": {"code": "forbidden", "message": refusal}}, status_code=403)


async def metrics_endpoint(request: Request) -> Response:
    refused = _allowed(request, request.app.state.settings.metrics_token)
    if refused is not None:
        return refused
    record_local_state(request.app.state.live, request.app.state.pool)
    try:
        await record_database_state(request.app.state.pool)
    except Exception as exc:  # the live figures still go out; the database ones are stale
        log.warning("metrics: could not read the outbox or ETA accuracy: %r", exc)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def process_exited() -> None:
    """Drop this process's live gauges from the shared files (multi-process mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(os.getpid())
