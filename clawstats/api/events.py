"""``Hub``: fans snapshots out to Server-Sent-Event subscribers; the ``/api/events`` stream.

Each publish with a new revision becomes one ``sessions`` event carrying only the rows that
changed (plus removed keys and the totals), encoded once for every subscriber. Subscribers
have bounded queues: one that falls ``queue_size`` events behind is dropped (it reconnects
with ``Last-Event-ID`` and gets the missed events or a fresh snapshot), so a slow client
never blocks the others or grows memory.

Event ids are ``<epoch>-<revision>``: ``epoch`` is unique to this process (its start time and
pid), because revisions restart at 1 in every process. A ``Last-Event-ID`` from another process
(a page open across a restart) therefore never matches and gets a fresh snapshot instead of an
empty replay. Alert events get ``<epoch>-<revision>-a<n>``, never a delta's id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio
import msgspec

from clawstats.api.bodies import HEAP_TRIM
from clawstats.core.session import SessionRow, iso_ms
from clawstats.core.snapshot import Snapshot

log = logging.getLogger("clawstats")
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Event:
    revision: int  # the snapshot revision it belongs to (replay order)
    name: str
    id: str  # the SSE id: "<epoch>-<revision>" (alerts: "<epoch>-<revision>-a<n>")
    #: The whole SSE frame, encoded once for every subscriber and sent as it is. (Through
    #: ``ServerSentEvent`` each subscriber's copy went through a str, a line split and a
    #: StringIO: at 50,000 rows a first snapshot held ~5 copies of its 49 MB at once.)
    frame: bytes


_END = b"\r\n\r\n"


def make_event(revision: int, name: str, event_id: str, data: bytes) -> Event:
    """An event whose data is one JSON document: msgspec's JSON holds no raw line break (they
    are escaped inside strings), so it is one ``data:`` line as it is."""
    head = f"id: {event_id}\r\nevent: {name}\r\ndata: ".encode()
    return Event(revision, name, event_id, b"".join((head, data, _END)))


def process_epoch() -> str:
    """A prefix no other clawstats process uses: start time in ms and the pid, in hex."""
    return f"{time.time_ns() // 1_000_000:x}{os.getpid() & 0xFFFF:04x}"


class Subscriber:
    __slots__ = ("queue", "dropped")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.dropped = False


#: Rows per piece of a first snapshot (~1 MB of JSON at ~1 KB a row).
SNAPSHOT_PIECE_ROWS = 1000
#: A comment line: EventSource clients ignore it; proxies see the connection is alive.
KEEP_ALIVE = b": ping\r\n\r\n"


def snapshot_frame(snapshot: Snapshot, epoch: str) -> Iterator[bytes]:
    """The ``snapshot`` event a new client gets first, as the pieces of one frame: the rows are
    encoded ``SNAPSHOT_PIECE_ROWS`` at a time, so 50,000 rows never sit in memory as one 49 MB
    document (nor in the copies the HTTP layer makes of each chunk it sends). The pieces joined
    are byte for byte the frame of the whole body encoded at once."""
    rows = snapshot.rows
    head = f"id: {epoch}-{snapshot.revision}\r\nevent: snapshot\r\ndata: "
    yield (head + f'{{"revision":{snapshot.revision},"sessions":[').encode()
    for start in range(0, len(rows), SNAPSHOT_PIECE_ROWS):
        piece = _encoder.encode(rows[start : start + SNAPSHOT_PIECE_ROWS])[1:-1]
        yield b"," + piece if start else piece
    tail = b'],"totals":' + _encoder.encode(snapshot.totals)
    yield tail + b',"generatedAt":' + _encoder.encode(iso_ms(snapshot.generated_ms)) + b"}" + _END


class Hub:
    """Holds the current snapshot; the poller publishes, handlers read ``current``."""

    def __init__(self, queue_size: int = 256, history: int = 256, epoch: str | None = None) -> None:
        self.epoch = epoch or process_epoch()
        self.alerts_sent = 0
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
        if previous is not None and previous.revision != snapshot.revision:
            # The delta first: an alert a listener raises on this snapshot comes after it.
            event = self._delta(previous, snapshot)
            self.history.append(event)
            self.broadcast(event)
            HEAP_TRIM.after_change()
        for listener in self.listeners:
            try:
                listener(snapshot)
            except Exception:  # an exporter's bug must not stop the event stream
                log.exception("snapshot listener failed")

    def alert_event(self, revision: int, data: bytes) -> Event:
        """An ``alert`` event with an id of its own (``<epoch>-<revision>-a<n>``)."""
        self.alerts_sent += 1
        return make_event(revision, "alert", f"{self.epoch}-{revision}-a{self.alerts_sent}", data)

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
        _end(sub)

    def _delta(self, previous: Snapshot, snapshot: Snapshot) -> Event:
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
        return make_event(snapshot.revision, "sessions", f"{self.epoch}-{snapshot.revision}", _encoder.encode(body))

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

    def revision_of(self, last_event_id: str | None) -> int | None:
        """The revision a ``Last-Event-ID`` of this process names; None for any other id."""
        epoch, _, rest = (last_event_id or "").partition("-")
        revision = rest.split("-", 1)[0]
        if epoch != self.epoch or not revision.isdigit():
            return None
        return int(revision)

    def replay_after(self, last_revision: int) -> list[Event] | None:
        """Events after ``last_revision`` if the history still holds them all, else None."""
        if self.current is not None and last_revision == self.current.revision:
            return []
        events = [e for e in self.history if e.name == "sessions"]
        # Revisions are contiguous (one event per revision), so the history covers
        # every revision from just before its oldest event up to the current one.
        if not events or not events[0].revision - 1 <= last_revision < events[-1].revision:
            return None
        return [e for e in events if e.revision > last_revision]

    async def stream(
        self, last_event_id: str | None, shutdown: anyio.Event | None = None, keep_alive_s: float = 15.0
    ) -> AsyncIterator[bytes]:
        """The event stream of one client, as the bytes to send: snapshot or replay first, then
        live events, and a comment after ``keep_alive_s`` without one. It is the response's only
        writer (the SSE library's own pings are off), so a snapshot sent in pieces is never cut
        by a ping. When ``shutdown`` is set (the server stops) the stream ends cleanly: its
        response completes instead of being cut off mid-stream."""
        await self.ready.wait()
        sub = self.subscribe()
        watcher = asyncio.create_task(self._end_on(shutdown, sub)) if shutdown is not None else None
        try:
            last_revision = self.revision_of(last_event_id)
            replay = self.replay_after(last_revision) if last_revision is not None else None
            if replay is None or last_revision is None:
                current = self.current
                assert current is not None
                seen = current.revision
                for piece in snapshot_frame(current, self.epoch):
                    yield piece
                del current, piece
                # The response loop holds the last chunk it sent until the next one comes: an
                # empty one (nothing is written) so an idle client does not pin the snapshot.
                yield b""
                HEAP_TRIM.soon()  # its pieces (~1 MB each) came from the C heap: its pages back
            else:
                seen = last_revision
                for event in replay:
                    yield event.frame
                    seen = event.revision
            while True:
                try:
                    queued = await asyncio.wait_for(sub.queue.get(), keep_alive_s)
                except TimeoutError:
                    yield KEEP_ALIVE
                    continue
                if queued is None:
                    return
                if queued.name == "sessions" and queued.revision <= seen:
                    continue  # already sent in the snapshot or the replay
                yield queued.frame
        finally:
            if watcher is not None:
                watcher.cancel()
            self.unsubscribe(sub)

    async def _end_on(self, shutdown: anyio.Event, sub: Subscriber) -> None:
        await shutdown.wait()
        _end(sub)


def _end(sub: Subscriber) -> None:
    """Queue the end marker (making room for it) so the client's generator finishes promptly."""
    while not sub.queue.empty():
        sub.queue.get_nowait()
    sub.queue.put_nowait(None)
