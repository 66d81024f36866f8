"""Sends the notifications outbox: PENDING rows -> provider -> SENT, retried or FAILED.

Every process runs one dispatcher. They share the work safely because a batch is claimed in one
short statement (FOR UPDATE SKIP LOCKED) that also pushes the rows' next_attempt_at past a lease:
a row is sent by whoever claimed it, and by someone else only after that lease ran out without a
result (the claimer died). That makes delivery at-least-once, and a repeated send carries the same
idempotency key (the notification_id) so the provider can drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import NamedTuple

import asyncpg
import httpx

from app import metrics
from app.abdm.gateway import gateway_from_settings
from app.abdm.on_share import run_on_share_sender
from app.db.queries import query
from app.notify.providers import (
    Message,
    PermanentFailure,
    Provider,
    ProviderRouter,
    RetryableFailure,
    check_settings,
)
from app.notify.web_push import WebPushProvider, load_vapid_key, vapid_subject
from app.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 20          # rows claimed at once; they are sent concurrently, so also the fan-out
BACKOFF_MAX_S = 3600.0   # a retry is never put off longer than an hour, however many came before
ERROR_BACKOFF_MAX_S = 30.0  # ceiling of the pause after the database itself failed


class Outcome(NamedTuple):
    """What happened to one message; the columns of record_notification_results."""
    notification_id: uuid.UUID
    result: str                 # SENT, RETRY or FAILED
    external_id: str | None     # the provider's message id, when SENT
    reason: str | None          # why not, when RETRY or FAILED
    retry_in_s: float           # when RETRY


def retry_delay_s(base_s: float, retry_number: int) -> float:
    """Seconds before retry number retry_number (1, 2, ...): base, 2 x base, 4 x base, ..."""
    return min(base_s * 2 ** (retry_number - 1), BACKOFF_MAX_S)


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, router: ProviderRouter, *, max_retries: int,
                 retry_base_s: float, lease_s: float, poll_s: float) -> None:
        self._pool = pool
        self._router = router
        self._max_retries = max_retries
        self._retry_base_s = retry_base_s
        self._lease_s = lease_s
        self._poll_s = poll_s

    @classmethod
    async def from_settings(cls, pool: asyncpg.Pool, settings: Settings, client: httpx.AsyncClient) -> Dispatcher:
        async def drop_gone(endpoints: list[str]) -> None:
            await pool.execute(query("drop_push_subscriptions"), endpoints)

        web_push = WebPushProvider(client, await load_vapid_key(pool, settings), vapid_subject(settings), drop_gone)
        return cls(pool, ProviderRouter(settings, client, web_push), max_retries=settings.notify_max_retries,
                   retry_base_s=settings.notify_retry_base_s, lease_s=settings.notify_lease_s,
                   poll_s=settings.notify_poll_s)

    async def run(self) -> None:
        """Send due messages until cancelled."""
        error_delay = self._poll_s
        while True:
            try:
                sent = await self.run_batch()
                error_delay = self._poll_s
            except Exception as exc:  # database away (or a bug): keep the dispatcher alive, try later
                log.warning("notification dispatcher: %r; retrying in %.1fs", exc, error_delay)
                await asyncio.sleep(error_delay)
                error_delay = min(error_delay * 2, ERROR_BACKOFF_MAX_S)
                continue
            if sent < BATCH_SIZE:  # a full batch means more may be waiting: go straight on
                await asyncio.sleep(self._poll_s)

    async def run_batch(self) -> int:
        """Claim due messages, send them concurrently, and record every result in one statement:
        one commit per batch, not one per message (each commit waits for the WAL flush, and at
        a busy OPD's rate those flushes held up the clicks committing beside them)."""
        rows = await self._pool.fetch(query("claim_due_notifications"), BATCH_SIZE, self._lease_s)
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._send(Message(**dict(row.items()))) for row in rows))
        try:
            await self._pool.execute(query("record_notification_results"),
                                     *(list(column) for column in zip(*outcomes, strict=True)))
        except Exception as exc:  # not recorded: the batch is sent again after the lease, same keys
            log.warning("notifications %s: could not record the results: %r",
                        ", ".join(str(r["notification_id"]) for r in rows), exc)
        return len(rows)

    async def _send(self, message: Message) -> Outcome:
        provider = self._router.for_message(message)
        started = time.perf_counter()
        outcome = await self._attempt(provider, message)
        metrics.NOTIFY_SECONDS.labels(provider.name).observe(time.perf_counter() - started)
        return outcome

    async def _attempt(self, provider: Provider, message: Message) -> Outcome:
        try:
            external_id = await provider.send(message)
        except PermanentFailure as exc:
            metrics.NOTIFICATIONS.labels(provider.name, "failed", "refused").inc()
            return self._failed(message, f"{provider.name}: {exc}")
        except RetryableFailure as exc:
            outcome = self._retry_or_fail(message, f"{provider.name}: {exc}")
            metrics.NOTIFICATIONS.labels(provider.name, outcome.result.lower(), "unavailable").inc()
            return outcome
        except Exception as exc:  # a bug in a provider must not stop the others; retried like an outage
            log.exception("notification %s: %s provider raised", message.notification_id, provider.name)
            outcome = self._retry_or_fail(message, f"{provider.name}: unexpected {exc.__class__.__name__}")
            metrics.NOTIFICATIONS.labels(provider.name, outcome.result.lower(), "error").inc()
            return outcome
        metrics.NOTIFICATIONS.labels(provider.name, "sent", "").inc()
        return Outcome(message.notification_id, "SENT", external_id, None, 0.0)

    def _retry_or_fail(self, message: Message, reason: str) -> Outcome:
        if message.retry_count >= self._max_retries:
            return self._failed(message, f"gave up after {message.retry_count} retries; last: {reason}")
        delay = retry_delay_s(self._retry_base_s, message.retry_count + 1)
        log.info("notification %s: %s; retry in %.0fs", message.notification_id, reason, delay)
        return Outcome(message.notification_id, "RETRY", None, reason, delay)

    @staticmethod
    def _failed(message: Message, reason: str) -> Outcome:
        log.warning("notification %s failed: %s", message.notification_id, reason)
        return Outcome(message.notification_id, "FAILED", None, reason, 0.0)


async def run_dispatcher(pool: asyncpg.Pool, settings: Settings) -> None:
    """The dispatcher of one process, with its own HTTP client, until cancelled; beside it, the
    ABDM on-share replies when Scan & Share is set up (app/abdm/on_share.py)."""
    gateway = gateway_from_settings(settings)
    async with httpx.AsyncClient(timeout=settings.notify_timeout_s) as client:
        dispatcher = await Dispatcher.from_settings(pool, settings, client)
        try:
            if gateway is None:
                await dispatcher.run()
            else:
                await asyncio.gather(dispatcher.run(), run_on_share_sender(pool, gateway))
        finally:
            if gateway is not None:
                await gateway.close()


async def prepare_dispatcher(pool: asyncpg.Pool, settings: Settings) -> None:
    """Check the provider settings and publish the public URL used in message links; a
    misconfiguration stops start-up here, before anything runs."""
    check_settings(settings)
    await pool.execute(query("publish_public_url"), settings.base_url())
    # Registered texts that no longer pass (the public URL changed, say) are said at start-up;
    # their messages fail with the reason rather than be refused by a gateway.
    for row in await pool.fetch(query("registration_problems")):
        log.warning("message registration %s %s %s of hospital %s: %s", row["event_type"], row["language"],
                    row["channel"], row["code"], "; ".join(row["problems"]))


async def run_dispatcher_process(settings: Settings, dsn: str) -> None:
    """`python -m app dispatcher`: only the outbox, until SIGTERM or SIGINT (web processes then
    set OPD_DISPATCHER=off). Several may run: claims never overlap (see the module's docstring)."""
    import signal

    from app.db.migrate import upgrade
    from app.db.pool import create_pool

    await upgrade(dsn)
    pool = await create_pool(dsn, max_size=4)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await prepare_dispatcher(pool, settings)
        sending = asyncio.create_task(run_dispatcher(pool, settings), name="notify-dispatcher")
        log.info("dispatcher process started")
        await asyncio.wait([sending, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    finally:
        await pool.close()
        metrics.process_exited()
