"""Limits of the WebSocket protocol (docs/protocol.md) that the live pipe enforces (app/live/ws.py)
and the pages plan for (a whole-hospital board subscribes to each department's topic)."""

from __future__ import annotations

MAX_TOPICS_PER_CONNECTION = 64
