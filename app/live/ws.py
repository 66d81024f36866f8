"""The WebSocket endpoint /ws (protocol: docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app import jsonutil, metrics
from app.errors import ApiError
from app.live.access import TopicDenied
from app.live.frames import Frame
from app.live.hub import Client
from app.live.interest import is_announced
from app.security.identity import Principal, optional_principal
from app.ws_limits import MAX_TOPICS_PER_CONNECTION

log = logging.getLogger(__name__)

# How long a subscriber to a topic the engine publishes only while watched (app/live/interest.py)
# waits for it when no snapshot is stored, before a patient's view is read from the database
# (see _subscribe).
WATCHED_FRAME_WAIT_S = 1.0


def _error(message: str, topic: str | None = None) -> str:
    body: dict[str, Any] = {"type": "error", "message": message}
    if topic is not None:
        body["topic"] = topic
    return jsonutil.dumps(body)


async def live_socket(websocket: WebSocket) -> None:
    runtime = websocket.app.state.live
    settings = websocket.app.state.settings
    try:
        principal = await optional_principal(websocket)
    except ApiError as exc:
        await _refuse(websocket, 4401, exc.message)
        return
    except Exception as exc:  # the database is away: say so, do not drop the connection unexplained
        log.warning("could not check a WebSocket credential (%r)", exc)
        await _refuse(websocket, 1013, "the service is briefly unavailable; try again shortly")
        return
    if principal is not None and principal.via != "key" and not same_origin(websocket):
        # A cookie rides along on any site's WebSocket: only our own pages may use it.
        await _refuse(websocket, 4403, "cross-origin WebSocket refused")
        return
    await websocket.accept()
    client = Client(websocket.send_text, websocket.close, settings.ws_send_timeout_s)
    runtime.hub.connections += 1
    credential = CredentialCheck(websocket, principal)
    watcher = asyncio.create_task(credential.watch(client), name="ws-credential") if principal else None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            if len(text) > settings.ws_max_message_bytes:
                client.reply(_error(f"message larger than {settings.ws_max_message_bytes} bytes"))
                continue
            if principal is not None and not await credential.still_valid():
                await credential.refuse(client, _topic_of(text))
                break
            try:
                await _handle(runtime, client, principal, text)
            except Exception as exc:  # the bus or the database is away: this message fails, not the socket
                log.warning("WebSocket message failed (%r)", exc)
                client.reply(_error("the service is briefly unavailable; try again shortly", _topic_of(text)))
    except WebSocketDisconnect:
        pass
    finally:
        if watcher is not None:
            watcher.cancel()
        runtime.hub.remove(client)
        runtime.hub.connections -= 1
        await client.stop()


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Refuse with a close code the page can read. Closing before the handshake is accepted
    reaches the browser as HTTP 403 and close code 1006, whatever code is given; so the socket
    is accepted, told why in an error frame, and closed with the code (docs/protocol.md)."""
    await websocket.accept()
    with contextlib.suppress(Exception):
        await websocket.send_text(_error(reason))
        await websocket.close(code=code, reason=reason[:120])


class CredentialCheck:
    """A revoked key, display or session stops working on sockets that are already open too."""

    WATCH_S = 30.0     # an idle socket is checked this often; a busy one at each message

    def __init__(self, websocket: WebSocket, principal: Principal | None) -> None:
        self._websocket = websocket
        self._principal = principal

    async def still_valid(self) -> bool:
        if self._principal is None:
            return True
        self._websocket.scope.pop("opd.principal", None)
        try:
            current = await optional_principal(self._websocket)
        except ApiError:
            current = None
        except Exception as exc:
            # The database is away: the credential cannot be checked now, which is not a reason
            # to drop a working screen; the next message or the watch checks it again.
            log.warning("could not recheck a WebSocket credential (%r)", exc)
            self._websocket.scope["opd.principal"] = self._principal
            return True
        return current is not None and current.actor_id == self._principal.actor_id

    async def refuse(self, client: Client, topic: str | None = None) -> None:
        metrics.WS_SUBSCRIBE_ERRORS.labels("credential").inc()
        client.reply(_error("your credential was revoked or has expired; sign in again", topic))
        await asyncio.sleep(0.1)  # let the writer send the explanation first
        with contextlib.suppress(Exception):
            await self._websocket.close(code=4401, reason="credential revoked")

    async def watch(self, client: Client) -> None:
        # The first check at a random point of the interval, then every WATCH_S: screens that
        # connected together (every screen of a hospital after a restart) were otherwise checked
        # together, a burst of hundreds of queries every 30 s (docs/performance.md).
        delay = random.uniform(0.0, self.WATCH_S)  # noqa: S311 -- spreading load, not a secret
        while True:
            await asyncio.sleep(delay)
            delay = self.WATCH_S
            if not await self.still_valid():
                await self.refuse(client)
                return


async def _handle(runtime: Any, client: Client, principal: Principal | None, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        client.reply(_error("message is not valid JSON"))
        return
    if not isinstance(message, dict):
        client.reply(_error("message must be a JSON object with a 'type'"))
        return
    kind = message.get("type")
    topic = message.get("topic")
    if kind == "ping":
        client.reply('{"type":"pong"}')
    elif kind == "subscribe":
        await _subscribe(runtime, client, principal, message)
    elif kind == "unsubscribe":
        if not isinstance(topic, str):
            client.reply(_error("unsubscribe needs a topic"))
            return
        runtime.hub.unsubscribe(client, topic)
        client.reply(jsonutil.dumps({"type": "unsubscribed", "topic": topic}))
    else:
        client.reply(_error("unknown message type; use subscribe, unsubscribe or ping",
                                     topic if isinstance(topic, str) else None))


async def _subscribe(runtime: Any, client: Client, principal: Principal | None,
                     message: dict[str, Any]) -> None:
    topic = message.get("topic")
    if not isinstance(topic, str):
        metrics.WS_SUBSCRIBE_ERRORS.labels("bad_request").inc()
        client.reply(_error("subscribe needs a topic"))
        return
    epoch, version = message.get("epoch"), message.get("version")
    if (epoch is not None and not isinstance(epoch, str)) or \
            (version is not None and (not isinstance(version, int) or isinstance(version, bool))):
        metrics.WS_SUBSCRIBE_ERRORS.labels("bad_request").inc()
        client.reply(_error("epoch must be a string and version an integer", topic))
        return
    if topic not in client.topics and len(client.topics) >= MAX_TOPICS_PER_CONNECTION:
        metrics.WS_SUBSCRIBE_ERRORS.labels("too_many_topics").inc()
        client.reply(_error(f"at most {MAX_TOPICS_PER_CONNECTION} topics per connection", topic))
        return
    try:
        kind, ident = await runtime.access.check(principal, topic)
    except TopicDenied as exc:
        metrics.WS_SUBSCRIBE_ERRORS.labels("denied").inc()
        client.reply(_error(str(exc), topic))
        return
    frame = await runtime.hub.subscribe(client, topic)
    if frame is None and is_announced(topic):
        # No stored snapshot: a patient's view or a whole-hospital topic nobody watched is
        # withdrawn, and the engine publishes it as soon as it hears of this subscriber
        # (app/live/interest.py); the hub then offers it here like any frame.
        if await runtime.hub.first_frame(topic, WATCHED_FRAME_WAIT_S) is not None:
            return
    if frame is None and kind == "token":
        # Only a view the engine does not hold (a closed visit, a later day's booking) is read
        # from the database, after that wait: a thousand phones reconnecting at once must not
        # become a thousand queries.
        frame = await _token_frame_from_database(runtime, topic, ident)
        if runtime.hub.cached(topic) is not None:
            # An engine frame arrived (and was offered) during the read: it is newer than the
            # database's version-0 frame, which must not follow it.
            return
    if frame is None:
        client.reply(jsonutil.dumps({"type": "subscribed", "topic": topic, "pending": True}))
    elif frame.epoch == epoch and version is not None and version >= frame.version:
        client.reply(jsonutil.dumps(
            {"type": "subscribed", "topic": topic, "epoch": frame.epoch, "version": frame.version,
             "current": True}))
    else:
        client.offer(topic, frame.text)


async def _token_frame_from_database(runtime: Any, topic: str, code: str) -> Frame | None:
    """A token the engine has not published (a booking for a later day): read it directly."""
    view = await runtime.pool.fetchval(
        "SELECT token_public_view(token_id) FROM tokens WHERE tracking_code = $1", code)
    if view is None:
        return None
    return Frame.snapshot(topic, "db", 0, view, None)


def _topic_of(text: str) -> str | None:
    """The topic a raw message names, if any (for error frames)."""
    with contextlib.suppress(ValueError, AttributeError):
        topic = json.loads(text).get("topic")
        return topic if isinstance(topic, str) else None
    return None


def same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return False
    host = websocket.headers.get("host", "")
    public = websocket.app.state.settings.public_url
    return origin.split("://", 1)[-1] == host or (public is not None and origin == public.rstrip("/"))


def live_routes() -> list[WebSocketRoute]:
    return [WebSocketRoute("/ws", live_socket)]

