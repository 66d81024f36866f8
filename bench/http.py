"""A lean HTTP/1.1 keep-alive client for the load driver.

The driver shares the machine's two cores with the server it measures. httpx spent about a
third of a core on 100 requests a second (its per-request machinery, not the network), CPU the
server under test then lacked. This client does only what the driver needs: JSON POSTs on one
keep-alive connection, Content-Length bodies (what the app's JSON responses carry), and a
reconnect when the server closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


@dataclass
class Response:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class KeepAliveClient:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port base URLs: {base_url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in
                              {"Host": f"{self._host}:{self._port}", **headers}.items())
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, json_body: Any) -> Response:
        body = json.dumps(json_body).encode()
        head = (f"POST {self._prefix}{path} HTTP/1.1\r\n{self._fixed}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        try:
            return await asyncio.wait_for(self._exchange(head + body), self._timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.aclose()  # the next request opens a fresh connection
            raise HttpError(f"{exc.__class__.__name__}: {exc}") from exc

    async def _exchange(self, request: bytes) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError(f"response without Content-Length (status {status})")
        body = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return Response(status, body)

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
