"""``Hub``: fans snapshots out to Server-Sent-Event subscribers; the ``/api/events`` stream.

Each publish with a new revision becomes one ``sessions`` event carrying only the rows that
changed (plus removed keys and the totals), encoded once for every subscriber. Subscribers
have bounded queues: one that falls ``queue_size`` events behind is dropped (it reconnects
with ``Last-Event-ID`` and gets the missed events or a fresh snapshot), so a slow client
never blocks the others or grows memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
from sse_starlette import ServerSentEvent

from clawstats.core.session import SessionRow, iso_ms
from clawstats.core.snapshot import Snapshot

log = logging.getLogger("clawstats")
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    name: str
    data: str


class Subscriber:
    __slots__ = ("queue", "dropped")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.dropped = False


def snapshot_event(snapshot: Snapshot) -> Event:
    body = {
        "revision": snapshot.revision,
        "sessions": snapshot.rows,
        "totals": snapshot.totals,
        "generatedAt": iso_ms(snapshot.generated_ms),
    }
    return Event(snapshot.revision, "snapshot", _encoder.encode(body).decode())


class Hub:
    """Holds the current snapshot; the poller publishes, handlers read ``current``."""

    def __init__(self, queue_size: int = 256, history: int = 256) -> None:
        self.current: Snapshot | None = None
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.history: deque[Event] = deque(maxlen=history)
        self.dropped_total = 0
        self.ready = asyncio.Event()
        #: called with every published snapshot (e.g. the OTLP export); errors are logged
        self.listeners: list[Callable[[Snapshot], None]] = []

    def publish(self, snapshot: Snapshot) -> None:
        previous = self.current
        self.current = snapshot
        self.ready.set()
        for listener in self.listeners:
            try:
                listener(snapshot)
            except Exception:  # an exporter's bug must not stop the event stream
                log.exception("snapshot listener failed")
        if previous is None or previous.revision == snapshot.revision:
            return
        event = self._delta(previous, snapshot)
        self.history.append(event)
        self.broadcast(event)

    def broadcast(self, event: Event) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        sub.dropped = True
        self.subscribers.discard(sub)
        self.dropped_total += 1
        log.info("dropped a slow event-stream client (%d events behind)", sub.queue.qsize())
        # Make room for the end marker so its generator finishes promptly.
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    @staticmethod
    def _delta(previous: Snapshot, snapshot: Snapshot) -> Event:
        if previous.revision + 1 == snapshot.revision:
            # The store names what changed: the delta costs what changed, not every row.
            by_key = snapshot.by_key
            changed: list[SessionRow] = [by_key[key] for key in sorted(snapshot.changed) if key in by_key]
            removed = sorted(snapshot.removed)
        else:  # revisions skipped (a publisher other than the store): compare
            old = previous.by_key
            changed = [row for row in snapshot.rows if old.get(row.key) != row]
            removed = [key for key in old if key not in snapshot.by_key]
        body = {
            "revision": snapshot.revision,
            "sessions": changed,
            "removed": removed,
            "totals": snapshot.totals,
            "generatedAt": iso_ms(snapshot.generated_ms),
        }
        return Event(snapshot.revision, "sessions", _encoder.encode(body).decode())

    def close_all(self) -> None:
        """End every stream (shutdown): each generator sees its end marker and returns."""
        for sub in list(self.subscribers):
            self._drop(sub)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.queue_size)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def replay_after(self, last_id: int) -> list[Event] | None:
        """Events after ``last_id`` if the history still holds them all, else None."""
        if self.current is not None and last_id == self.current.revision:
            return []
        events = [e for e in self.history if e.name == "sessions"]
        # Revisions are contiguous (one event per revision), so the history covers
        # every id from just before its oldest event up to the current revision.
        if not events or not events[0].id - 1 <= last_id < events[-1].id:
            return None
        return [e for e in events if e.id > last_id]

    async def stream(self, last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
        """The event stream of one client: snapshot or replay first, then live events."""
        await self.ready.wait()
        sub = self.subscribe()
        try:
            replay = None
            if last_event_id and last_event_id.isdigit():
                replay = self.replay_after(int(last_event_id))
            if replay is None:
                assert self.current is not None
                first = snapshot_event(self.current)
                yield ServerSentEvent(first.data, event=first.name, id=str(first.id))
                seen = first.id
            else:
                seen = int(last_event_id or 0)
                for event in replay:
                    yield ServerSentEvent(event.data, event=event.name, id=str(event.id))
                    seen = event.id
            while True:
                queued = await sub.queue.get()
                if queued is None:
                    return
                if queued.name == "sessions" and queued.id <= seen:
                    continue  # already sent in the snapshot or the replay
                yield ServerSentEvent(queued.data, event=queued.name, id=str(queued.id))
        finally:
            self.unsubscribe(sub)
