"""The ASGI app: `app.main:app`. One lifespan owns every resource."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import logs, metrics
from app.abdm.gateway import gateway_from_settings
from app.api import (  # noqa: F401  (these imports register the operations)
    abdm,
    admin,
    errors,
    messages,
    notices,
    notifications,
    operations,
    patients,
    provider_callbacks,
    queues,
    setup,
    tokens,
    track,
)
from app.api.openapi import build_openapi
from app.api.registry import api
from app.db.bounded import BoundedPool, DatabaseBusy
from app.db.migrate import upgrade
from app.db.pool import create_pool
from app.gc_policy import run_gc_policy
from app.live.runtime import LiveRuntime
from app.live.ws import live_routes
from app.notify.web_push import load_vapid_key
from app.security.ratelimit import RateLimiter
from app.security.secrets_store import secret_key
from app.security.sessions import SessionSigner
from app.settings import Settings
from app.web.headers import SecurityHeaders
from app.web.login import LOGIN_WINDOW_S
from app.web.routes import web_routes

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from app.db.embedded import embedded_database_url

    return embedded_database_url(settings.var_dir)


async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    ok = True
    try:
        await request.app.state.pool.fetchval("SELECT 1")
        checks["database"] = "ok"
    except (asyncpg.PostgresError, OSError) as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
        ok = False
    live: LiveRuntime = request.app.state.live
    checks.update(await live.health())
    ok = ok and all(v == "ok" or not v.startswith("error") for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks},
                        status_code=200 if ok else 503)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.openapi)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logs.configure(settings.log_level, settings.log_format)
        dsn = resolve_database_url(settings)
        await upgrade(dsn)
        app.state.dsn = dsn
        # The API's connections, plus the engine's recompute slots when this process leads.
        app.state.pool = await create_pool(dsn, max_size=24)
        # API requests wait for a connection at most db_wait_s, then get 503 busy (app/db/bounded.py).
        app.state.api_pool = BoundedPool(app.state.pool, settings.db_wait_s)
        # The tracker's "Notify me" subscribes with this key's public half (app/notify/web_push.py).
        app.state.vapid_public_key = (await load_vapid_key(app.state.pool, settings)).public_key
        # ABDM Scan & Share's gateway (None when not set up): checks the gateway's calls to us.
        app.state.abdm_gateway = gateway_from_settings(settings)
        app.state.live = LiveRuntime(settings, dsn, app.state.pool)
        await app.state.live.start()
        gc_policy = asyncio.create_task(run_gc_policy(settings.gc_freeze_s, settings.gc_full_s),
                                        name="gc-policy")
        gauges = asyncio.create_task(metrics.keep_local_state(app.state.live, app.state.pool),
                                     name="metrics-gauges")
        try:
            yield
        finally:
            for task in (gc_policy, gauges):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.live.stop()
            if app.state.abdm_gateway is not None:
                await app.state.abdm_gateway.close()
            await app.state.pool.close()
            metrics.process_exited()

    routes = [
        Route("/healthz", healthz),
        Route("/openapi.json", openapi),
        Route("/metrics", metrics.metrics_endpoint),
        *api.routes(),
        *live_routes(),
        *web_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            errors.ApiError: errors.handle_api_error,
            DatabaseBusy: errors.handle_busy,
            asyncpg.PostgresError: errors.handle_postgres_error,
            **{cls: errors.handle_unavailable for cls in errors.UNAVAILABLE_CLASSES},
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(metrics.HttpMetrics)
    app.add_middleware(logs.RequestIds)   # outermost: every line of the request has its id
    app.state.settings = settings
    app.state.openapi = build_openapi(api)
    app.state.signer = SessionSigner(secret_key(settings))
    # Tracking pages and patient check-in: per client address, per process (docs/security.md).
    app.state.public_limiter = RateLimiter(limit=120, window_s=60)
    app.state.login_limiter = RateLimiter(limit=settings.login_attempts_per_address, window_s=LOGIN_WINDOW_S)
    return app


def __getattr__(name: str) -> Starlette:
    # `uvicorn app.main:app` builds the app on first access, so importing this module for its
    # helpers (tests, CLI) does not read the environment.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
