"""Snapshot frames: what travels on the bus and over every WebSocket, serialized once per topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import jsonutil

TOPIC_KINDS = ("doctor", "department", "hospital", "cabin", "token", "operations")
BOARD_KINDS = ("department", "hospital", "cabin")


@dataclass(frozen=True)
class Frame:
    topic: str
    epoch: str
    version: int
    text: str  # the complete WebSocket message, JSON

    @classmethod
    def snapshot(cls, topic: str, epoch: str, version: int, data: Any,
                 changed_at: float | None) -> Frame:
        message = {"type": "snapshot", "topic": topic, "epoch": epoch, "version": version,
                   "changed_at": changed_at, "data": data}
        return cls(topic, epoch, version, jsonutil.dumps(message))

    def encode(self) -> str:
        """The bus form: header fields, then the text (which may contain anything)."""
        return f"{self.topic}\n{self.epoch}\n{self.version}\n{self.text}"

    @classmethod
    def decode(cls, raw: str) -> Frame:
        topic, epoch, version, text = raw.split("\n", 3)
        return cls(topic, epoch, int(version), text)


def parse_topic(topic: Any) -> tuple[str, str] | None:
    """('doctor', '<uuid>') for 'doctor:<uuid>', or None when it is not a topic we serve."""
    if not isinstance(topic, str) or len(topic) > 80:
        return None
    kind, sep, ident = topic.partition(":")
    if not sep or kind not in TOPIC_KINDS or not ident:
        return None
    return kind, ident
