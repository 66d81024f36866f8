"""Snapshot frames: what travels on the bus and over every WebSocket, serialized once per topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import jsonutil

# Separates the frames of one bus message. JSON escapes every control character inside strings,
# and topics, epochs and versions never hold one, so it cannot occur inside a frame.
BATCH_SEPARATOR = "\x1e"

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
        return cls.snapshot_of_json(topic, epoch, version, jsonutil.dumps(data), changed_at)

    @classmethod
    def snapshot_of_json(cls, topic: str, epoch: str, version: int, data_json: str,
                         changed_at: float | None) -> Frame:
        """The same frame from data already serialized (the engine serializes each snapshot
        once, to compare it with the last one published, and reuses that text here)."""
        text = (f'{{"type":"snapshot","topic":{jsonutil.dumps(topic)},"epoch":{jsonutil.dumps(epoch)},'
                f'"version":{int(version)},"changed_at":{jsonutil.dumps(changed_at)},"data":{data_json}}}')
        return cls(topic, epoch, version, text)

    def encode(self) -> str:
        """The bus form: header fields, then the text (which may contain anything)."""
        return f"{self.topic}\n{self.epoch}\n{self.version}\n{self.text}"

    @classmethod
    def decode(cls, raw: str) -> Frame:
        topic, epoch, version, text = raw.split("\n", 3)
        return cls(topic, epoch, int(version), text)


def decode_bus_message(raw: str) -> list[Frame]:
    """One bus message: a frame, or several joined by BATCH_SEPARATOR (one recompute's worth)."""
    return [Frame.decode(part) for part in raw.split(BATCH_SEPARATOR)]


def parse_topic(topic: Any) -> tuple[str, str] | None:
    """('doctor', '<uuid>') for 'doctor:<uuid>', or None when it is not a topic we serve."""
    if not isinstance(topic, str) or len(topic) > 80:
        return None
    kind, sep, ident = topic.partition(":")
    if not sep or kind not in TOPIC_KINDS or not ident:
        return None
    return kind, ident
