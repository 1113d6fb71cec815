"""Alert delivery: evaluates rules on every published snapshot and delivers new firings as an
``alert`` event on ``/api/events``, a log line, and webhook POSTs.

Each webhook has its own bounded queue drained by its own task (retries with exponential
backoff, a short timeout): a dead or slow receiver never slows the scan, the API, the event
stream or another webhook; when a queue is full its oldest undelivered alert is dropped,
counted and logged. Conditions found at start-up are summarised in one log line, not delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from clawstats import __version__
from clawstats.api.events import Hub
from clawstats.core.alerts import Alert, AlertBook, AlertRules
from clawstats.core.snapshot import Snapshot
from clawstats.watch.alert_state import AlertStateFile

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("clawstats")
_encoder = msgspec.json.Encoder()
QUEUE_SIZE = 100
ATTEMPTS = 4
BACKOFF_S = 0.5
TIMEOUT_S = 5.0


class WebhookSender:
    """One webhook URL: its queue, its task, its counters."""

    def __init__(self, url: str, queue_size: int = QUEUE_SIZE) -> None:
        self.url = url
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def submit(self, alert: Alert) -> None:
        if self.queue.full():
            lost = self.queue.get_nowait()  # the oldest undelivered alert gives way
            self.dropped += 1
            log.warning(
                "alert webhook %s is behind: dropped alert %s (%d dropped so far)", self.url, lost.id, self.dropped
            )
        self.queue.put_nowait(alert)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        # Imported here: only a server with a webhook pays for it (~3-5 MiB of modules otherwise
        # resident for the process's life).
        import httpx

        headers = {"Content-Type": "application/json", "User-Agent": f"clawstats/{__version__}"}
        async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers) as client:
            while True:
                alert = await self.queue.get()
                await self._post(client, _encoder.encode(alert))

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> None:
        import httpx  # loaded by _run already: a dict lookup

        url = self.url
        for attempt in range(ATTEMPTS):
            try:
                response = await client.post(url, content=body)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        log.warning("alert webhook %s refused it: HTTP %d", url, response.status_code)
                        self.failed += 1
                    else:
                        self.delivered += 1
                    return
            except httpx.HTTPError as exc:
                log.info("alert webhook %s: %s (attempt %d)", url, exc, attempt + 1)
            await asyncio.sleep(BACKOFF_S * 2**attempt)
        self.failed += 1
        log.warning("alert webhook %s failed after %d attempts", url, ATTEMPTS)


class Webhooks:
    """Every configured webhook, each delivered independently of the others."""

    def __init__(self, urls: Sequence[str], queue_size: int = QUEUE_SIZE) -> None:
        self.senders = [WebhookSender(url, queue_size) for url in urls]

    def submit(self, alert: Alert) -> None:
        for sender in self.senders:
            sender.submit(alert)

    def start(self) -> None:
        for sender in self.senders:
            sender.start()

    async def stop(self) -> None:
        for sender in self.senders:
            await sender.stop()

    def counts(self) -> dict[str, int]:
        senders = self.senders
        return {
            "configured": len(senders),
            "delivered": sum(s.delivered for s in senders),
            "failed": sum(s.failed for s in senders),
            "dropped": sum(s.dropped for s in senders),
            "queued": sum(s.queue.qsize() for s in senders),
        }


class AlertManager:
    """A hub listener: one ``AlertBook`` (hysteresis), persisted, and the deliveries."""

    def __init__(self, hub: Hub, rules: AlertRules, state: AlertStateFile | None = None) -> None:
        self.hub = hub
        self.book = AlertBook(rules)
        self.state = state
        if state is not None:
            self.book.fired = state.load()
        self.sender = Webhooks(rules.webhooks)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        before = set(self.book.fired)
        first = not self.book.started
        new = self.book.update(snapshot, time.time() * 1000.0)
        if first and self.book.at_startup:
            by_rule = Counter(alert.rule for alert in self.book.at_startup)
            log.warning(
                "%d alert condition(s) already held at start-up (listed in /api/alerts, not delivered): %s",
                len(self.book.at_startup),
                ", ".join(f"{rule} x{n}" for rule, n in sorted(by_rule.items())),
            )
        for alert in new:
            log.warning("alert %s: %s", alert.severity, alert.message)
            self.hub.broadcast(self.hub.alert_event(snapshot.revision, _encoder.encode(alert)))
            self.sender.submit(alert)
        if self.state is not None and self.book.fired != before:
            self.state.save(self.book.fired)

    def listing(self) -> dict[str, object]:
        return {
            "active": sorted(self.book.active.values(), key=lambda a: a.fired_at, reverse=True),
            "recent": list(self.book.recent),
            "rules": self.book.rules,
            "webhooks": self.sender.counts(),
        }
