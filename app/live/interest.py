"""Which patients' views and whole-hospital topics anyone is watching, so that the engine
publishes only those.

Most patients of a day never open their tracking link, or close it; yet every call moves the
position of everyone behind, and publishing each of their views cost a frame on the bus, a
stored snapshot and a look in every web process. The same holds for a hospital's two
whole-hospital topics: `hospital:` (every department's board in one frame, 187 KB for 49
departments, once a second) is read by integrations and boards of very large hospitals only,
and `operations:` (the dashboard and reception's doctor list, which costs a query of every
doctor's status) by staff screens that are closed at night. With hundreds of hospitals on one
deployment, building and sending them for every hospital, watched or not, cost engine CPU,
database time and bus bytes for nobody.

So the web processes announce the topics of these kinds they have subscribers for (hub.py): a
topic at its first subscriber, and all of them every refresh_s. The engine keeps each announced
topic watched for WATCHED_FOR_REFRESHES refreshes (so one lost announcement changes nothing),
publishes the watched ones, and withdraws the stored snapshot of the others rather than leave
it outdated (publisher.py). An announced topic whose snapshot is not stored is published at
once (engine.py); a subscriber who finds no stored snapshot waits for it (ws.py), and a
patient's view the engine does not hold is read from the database.

It fails open: until a full refresh has passed since the engine started listening, or since
its subscription to the announcements came back after a gap, every topic counts as watched,
because announcements may have been missed.

Pure: the engine feeds it announcements and the time.
"""

from __future__ import annotations

WATCHED_KINDS = ("token:", "hospital:", "operations:")  # announced; the others always go out
WATCHED_FOR_REFRESHES = 3            # an announced topic stays watched this many refreshes
OPEN_FOR_REFRESHES = 1.5             # every topic counts as watched this long after a gap


def is_announced(topic: str) -> bool:
    return topic.startswith(WATCHED_KINDS)


class WatchedTopics:
    def __init__(self, refresh_s: float, now: float) -> None:
        self._watched_for_s = WATCHED_FOR_REFRESHES * refresh_s
        self._open_for_s = OPEN_FOR_REFRESHES * refresh_s
        self._until: dict[str, float] = {}   # topic -> when it stops counting as watched
        self._open_until = now + self._open_for_s
        self._next_prune = now + self._watched_for_s

    def reopen(self, now: float) -> None:
        """The announcements may have had a gap: count everything as watched for a while."""
        self._open_until = now + self._open_for_s

    def note(self, topics: list[str], now: float) -> None:
        """Record an announcement."""
        until = now + self._watched_for_s
        for topic in topics:
            self._until[topic] = until
        if now >= self._next_prune:
            self._next_prune = now + self._watched_for_s
            self._until = {t: u for t, u in self._until.items() if u > now}

    def watched(self, topic: str, now: float) -> bool:
        return now < self._open_until or self._until.get(topic, 0.0) > now

    def __len__(self) -> int:
        return len(self._until)
