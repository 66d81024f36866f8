"""A real HTTP server standing in for SMS/WhatsApp/webhook providers: it records every request and
answers as each test scripts it (a status, or hold the request until released)."""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

HOLD_MAX_S = 30.0  # a held request is answered anyway after this, so no thread outlives a test run


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._script: collections.deque[int | str] = collections.deque()
        self._hold_when: str | None = None
        self.release = threading.Event()
        self.held = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status = owner._answer(seen)
                # Each provider's success shape: webhook, Twilio, WhatsApp, MSG91, Exotel, Gupshup.
                reply = json.dumps({"id": f"ext-{seen.key}", "sid": f"SM-{seen.key}",
                                    "messages": [{"id": f"wamid-{seen.key}"}],
                                    "type": "success", "message": f"req-{seen.key}",
                                    "SMSMessage": {"Sid": f"exo-{seen.key}", "Status": "queued"},
                                    "response": {"status": "success", "id": f"gs-{seen.key}",
                                                 "phone": "", "details": ""}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout, killed dispatcher)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog (5) refuses a batch sent all at once
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, *answers: int | str) -> None:
        """The next requests get these answers in order: an HTTP status, or "hold" (wait for
        release, then 200). Requests after the script get 200."""
        self._script.extend(answers)

    def hold_when(self, text: str) -> None:
        """Hold any request whose body contains text until release is set."""
        self._hold_when = text

    def keys(self) -> list[str | None]:
        return [seen.key for seen in self.requests]

    def _answer(self, seen: Seen) -> int:
        with self._lock:
            self.requests.append(seen)
            answer: int | str = self._script.popleft() if self._script else 200
        if answer == "hold" or (self._hold_when is not None and self._hold_when.encode() in seen.body):
            self.held.set()
            self.release.wait(HOLD_MAX_S)
            return 200
        assert isinstance(answer, int)
        return answer


async def eventually(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    """Poll check (sync or async) until it returns something truthy, and return that; a bounded
    wait for an expected state, not a timing claim."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
