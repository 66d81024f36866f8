"""Sends the on-share replies from their outbox (abdm_shares; sql: abdm_claim_on_shares). The
share and its reply commit together, so a reply is never lost: if the gateway is down it is
tried again, sooner first (1, 2, 4 … 60 s), for about an hour — the token's validity — and
then given up with its last error. Each reply carries one REQUEST-ID on every attempt, and a
claim holds it for CLAIM_S, longer than one attempt can take, so two processes never send it
at once (a process that dies between the gateway's 202 and marking it sent leaves a repeat of
the same REQUEST-ID, which the gateway treats as the same request)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from app.abdm.gateway import Gateway, GatewayError

log = logging.getLogger(__name__)

POLL_S = 0.5          # replies written by another process are found this soon
CLAIM_S = 30          # a claimed reply is held this long (an attempt times out after 10 s)
BATCH = 10
RETRY_MAX_S = 60.0
MAX_ATTEMPTS = 70     # with the back-off above, about an hour

# Set by the share endpoint of this process: send at once rather than at the next poll.
wake = asyncio.Event()


def retry_in_s(attempts: int) -> float:
    return min(2.0 ** max(attempts - 1, 0), RETRY_MAX_S)


async def send_due(pool: asyncpg.Pool, gateway: Gateway) -> int:
    """Claim and send the replies that are due; returns how many were claimed."""
    rows = await pool.fetch("SELECT * FROM abdm_claim_on_shares($1, $2)", BATCH, CLAIM_S)
    for row in rows:
        error = None
        try:
            status = await gateway.send_on_share(row["on_share"], str(row["on_share_request_id"]))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except GatewayError as exc:
            error = str(exc)
        give_up = error is not None and row["attempts"] >= MAX_ATTEMPTS
        if error is not None:
            log.warning("on-share of ABDM request %s failed (attempt %d): %s%s", row["request_id"],
                        row["attempts"], error, "; giving up" if give_up else "")
        await pool.execute("SELECT abdm_on_share_done($1, $2, $3, $4, $5)", row["share_id"],
                           error is None, error, retry_in_s(row["attempts"]), give_up)
    return len(rows)


async def run_on_share_sender(pool: asyncpg.Pool, gateway: Gateway) -> None:
    """Until cancelled."""
    while True:
        try:
            if await send_due(pool, gateway):
                continue
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("on-share sender: %r; trying again", exc)
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_S)
