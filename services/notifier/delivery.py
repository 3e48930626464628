"""Delivery: one worker per route draining its queue in the ledger.

    offer (after the alerts topic acknowledged) → route filter → notify_reason
    → ledger row ``pending`` (due now, after quiet hours, or at the digest boundary)
    → the route's worker: rate limit → sink → ``done``
      ↳ the sink refuses the content (a 4xx but 429): ``dead`` at once, and a copy
        of the alert on the dead-letter topic; the route goes on
      ↳ the sink is unavailable (5xx, 429, a timeout, a refused connection): retry
        with backoff and jitter (``Retry-After`` honoured) until the revision has
        waited ``give_up_after_seconds`` (a day), then ``dead`` as above

A revision waiting out its retry holds back none of the others that are due:
the worker takes the oldest due one. Two failures in a row on different
revisions mean the sink is down rather than one message bad, and the route
then waits out the backoff before it probes again with one revision; the
backoff is capped (30 s), so a recovered sink is found within that.

A route delivers its revisions in order; a later revision of the same alert
waiting behind one that has not gone out yet replaces it, so a Slack outage ends
with one message saying where the story stands, not a burst of stale ones. A
route that is down holds only its own queue: the alerts topic and the other
routes go on.

Each change to the ledger is also written to the ``notifier.ledger`` changelog
(when the dispatcher has one): a queued revision before its input is
committed (``log_changes``, which fails the batch if the broker does not
acknowledge), a closed or postponed one as soon as it is decided (a failure
there is logged and counted, and written again with the next change). When a
partition is revoked, ``drain`` waits for the deliveries in flight from it and
writes their outcome before the partition's next owner reads the changelog.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dohawatch.shared.at_least_once import produce_and_wait
from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.errors import BrokerError, SinkError
from dohawatch.shared.events import Alert
from dohawatch.shared.logs import log_event
from dohawatch.shared.tables import REPLICA_HEADER, Claims

from .ledger import DeliveryLedger, Pending, ledger_key
from .routes import due_at, matches, notify_reason, retry_delay
from .wiring import Route

__all__ = ["DeliveryMetrics", "DeliveryPolicy", "Dispatcher"]

log = logging.getLogger("dohawatch.notifier")

# Seconds, from a fast webhook to an alert held by quiet hours or a digest.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)


class DeliveryMetrics:
    """Alert revisions, and deliveries, retries, queue depth and latency per route."""

    def __init__(self, registry: CollectorRegistry) -> None:
        counter = partial(Counter, registry=registry)
        gauge = partial(Gauge, registry=registry)
        histogram = partial(Histogram, registry=registry)
        self.alerts = counter(
            "dohawatch_alerts_total",
            "Alert revisions produced to the alerts topic.",
            ["event_type", "severity"],
        )
        self.deliveries = counter(
            "dohawatch_deliveries_total",
            "Delivery attempts by route, sink and outcome (ok, or the failure's kind).",
            ["route", "sink", "outcome"],
        )
        self.retries = counter(
            "dohawatch_delivery_retries_total",
            "Failed deliveries scheduled for another attempt.",
            ["route", "sink"],
        )
        self.dead = counter(
            "dohawatch_delivery_deadletters_total",
            "Revisions given up on and sent to the dead-letter topic.",
            ["route", "sink"],
        )
        self.queue = gauge(
            "dohawatch_delivery_queue_depth",
            "Revisions waiting for a route (held, retrying or due).",
            ["route"],
        )
        self.latency = histogram(
            "dohawatch_delivery_latency_seconds",
            "Time from a revision's queueing to its delivery.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
        )
        self.changelog_failures = counter(
            "dohawatch_notifier_changelog_failures_total",
            "Ledger changes the changelog did not acknowledge (written again with the "
            "alert's next change, or replayed from the input).",
        )
        self.superseded = counter(
            "dohawatch_notifier_partitions_superseded_total",
            "Partitions given up because another replica claimed them while this one "
            "still wrote there (their batch is replayed by the new owner).",
        )
        self.pipeline = histogram(
            "dohawatch_pipeline_latency_seconds",
            "Time from the fetch of the item that made a revision to its delivery; "
            "route=kafka is the alerts topic.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
        )


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard to try."""

    give_up_after_seconds: float = 86400.0
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 30.0


class Dispatcher:
    """Queues revisions for the routes that want them and runs a worker per route."""

    def __init__(
        self,
        routes: Sequence[Route],
        ledger: DeliveryLedger,
        producer: AIOKafkaProducer,
        deadletter_topic: str,
        policy: DeliveryPolicy,
        metrics: DeliveryMetrics,
        clock: Callable[[], float] = time.time,
        *,
        changelog_topic: str | None = None,
        replica: str = "",
        claims: Claims | None = None,
    ) -> None:
        self.routes = list(routes)
        self.clock = clock  # Unix time; injectable so digests and quiet hours can be tested
        self.ledger = ledger
        self.producer = producer
        self.deadletter_topic = deadletter_topic
        self.policy = policy
        self.metrics = metrics
        self.changelog_topic = changelog_topic
        self.replica = replica
        self.claims = claims  # the claim each changelog record is written under
        self._wake = {r.name: asyncio.Event() for r in self.routes}
        self._unlogged: set[tuple[str, str]] = set()  # (route, alert id) changed since written
        self._in_flight: dict[str, tuple[frozenset[int], asyncio.Future[None]]] = {}

    def offer(
        self,
        alert: Alert,
        feed_tags: frozenset[str],
        fetched_at: datetime,
        partition: int = 0,
    ) -> None:
        """Queue ``alert`` for every route that should hear about it (call after the
        alerts topic acknowledged it; then ``log_changes``, then commit the input).
        ``partition`` is the input partition of its story."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        self.metrics.pipeline.labels("kafka").observe(max(0.0, (now - fetched_at).total_seconds()))
        for route in self.routes:
            if not matches(route.config, alert, feed_tags):
                continue
            reason = notify_reason(
                route.config, alert, self.ledger.last_notified(route.name, alert.alert_id)
            )
            if reason is None:
                continue
            queued = self.ledger.enqueue(
                route.name,
                alert,
                reason,
                partition=partition,
                fetched_at=fetched_at.timestamp(),
                now=now.timestamp(),
                due=due_at(route.config, alert, now).timestamp(),
            )
            if queued:
                self._unlogged.add((route.name, alert.alert_id))
                self._wake[route.name].set()

    async def log_changes(self) -> None:
        """Write every ledger change not yet on the changelog, and wait for the broker.

        Raises:
            BrokerError: the broker did not acknowledge; the changes stay unwritten.
        """
        if self.changelog_topic is None or not self._unlogged:
            self._unlogged.clear()
            return
        changed, self._unlogged = self._unlogged, set()
        records = []
        for route, alert_id in sorted(changed):
            partition = self.ledger.partition_of(route, alert_id)
            if partition is None:
                continue
            headers = [(REPLICA_HEADER, self.replica.encode())]
            claim = self.claims.header(partition) if self.claims is not None else None
            if claim is not None:
                headers.append(claim)
            records.append(
                Outgoing(
                    self.changelog_topic,
                    ledger_key(route, alert_id).encode(),
                    self.ledger.record(route, alert_id),
                    headers,
                    partition,
                )
            )
        try:
            await produce_and_wait(self.producer, records)
        except BrokerError:
            self._unlogged |= changed
            raise

    async def _log_quietly(self) -> None:
        """``log_changes`` from a worker: a failure is counted and logged, and the
        changes are written with the next ones."""
        try:
            await self.log_changes()
        except BrokerError as exc:
            self.metrics.changelog_failures.inc()
            log_event(
                log, "changelog_failed", level=logging.WARNING, status="error", error=str(exc)
            )

    async def drain(self, partitions: set[int], wait_seconds: float | None = None) -> None:
        """Wait for the deliveries in flight from ``partitions`` (which the ledger no
        longer hands out), up to ``wait_seconds``, then write what changed to the
        changelog. A delivery still in flight after that may be sent again by the
        partition's next owner, with the same delivery id (a lost answer's resend)."""
        waiting = [f for parts, f in self._in_flight.values() if parts & partitions]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=wait_seconds)
            if late:
                log_event(
                    log,
                    "drain_unfinished",
                    level=logging.WARNING,
                    status="timeout",
                    deliveries=len(late),
                    partitions=",".join(map(str, sorted(partitions))),
                )
        await self._log_quietly()

    def wake(self) -> None:
        """Have every route look at its queue now (after the clock moved on)."""
        for event in self._wake.values():
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every route's worker until ``stop``; an unexpected error in one stops all."""
        workers = [
            asyncio.create_task(self._work(route, stop), name=f"deliver-{route.name}")
            for route in self.routes
        ]
        try:
            await asyncio.gather(*workers, stop.wait())
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _pause(
        self, route: str, stop: asyncio.Event, seconds: float | None, wakeable: bool = True
    ) -> None:
        """Sleep until ``stop``, ``seconds`` pass, or (if ``wakeable``) a new revision."""
        wake = self._wake[route]
        waiters = [asyncio.create_task(stop.wait())]
        if wakeable:
            waiters.append(asyncio.create_task(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            wake.clear()

    async def _work(self, route: Route, stop: asyncio.Event) -> None:
        last_send = -route.min_interval
        unavailable = 0  # deliveries in a row that found the sink unavailable
        while not stop.is_set():
            self.metrics.queue.labels(route.name).set(self.ledger.depth(route.name))
            now = self.clock()
            head = self.ledger.head(route.name, now)
            if head is None or head.due_at > now:
                await self._pause(route.name, stop, None if head is None else head.due_at - now)
                continue
            gap = route.min_interval - (time.monotonic() - last_send)
            if gap > 0:  # then choose again: a rebalance meanwhile may have taken it
                await asyncio.sleep(gap)
                continue
            batch = self._batch(route, head, now)
            if not batch:
                continue
            last_send = time.monotonic()
            retry_in = await self._tracked(route, batch)
            unavailable = 0 if retry_in is None else unavailable + 1
            if unavailable >= 2 and retry_in:
                # The sink is down, not one message: wait before probing it again,
                # whatever new revisions arrive meanwhile.
                await self._pause(route.name, stop, retry_in, wakeable=False)
        self.metrics.queue.labels(route.name).set(self.ledger.depth(route.name))

    async def _tracked(self, route: Route, batch: list[Pending]) -> float | None:
        """:meth:`_deliver`, visible to ``drain`` until its outcome is on the changelog."""
        partitions = frozenset(
            p
            for p in (self.ledger.partition_of(route.name, i.alert.alert_id) for i in batch)
            if p is not None
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[route.name] = (partitions, done)
        try:
            retry_in = await self._deliver(route, batch)
            self._unlogged.update((route.name, p.alert.alert_id) for p in batch)
            await self._log_quietly()
            return retry_in
        finally:
            del self._in_flight[route.name]
            done.set_result(None)

    def _batch(self, route: Route, head: Pending, now: float) -> list[Pending]:
        """What goes out next: the head, or for a digest everything due; stale
        revisions with a newer one queued are closed as ``superseded``."""
        if route.config.digest_minutes:
            candidates = self.ledger.due(route.name, now)
        else:
            candidates = self.ledger.pending_for(route.name, head.alert.alert_id)
        latest = {p.alert.alert_id: p for p in candidates}  # ordered by seq: the last wins
        batch = list(latest.values())
        stale = [p for p in candidates if p not in batch]
        if stale:
            self.ledger.finish(stale, "superseded", now)
        # A revision that replaces the story's first, undelivered one is the first
        # the route's readers see: present it as new.
        fresh = {p.alert.alert_id for p in stale if p.reason == "new"}
        return [replace(p, reason="new") if p.alert.alert_id in fresh else p for p in batch]

    async def _deliver(self, route: Route, batch: list[Pending]) -> float | None:
        """Send ``batch``; None when the sink answered (delivered, or refused the
        content for good), else the seconds until its retry (0: given up)."""
        sink = route.sink
        head = batch[0]
        try:
            if route.config.digest_minutes:
                digest_id = f"digest.{route.name}.{int(head.due_at)}.{head.seq}"
                await sink.send_digest([p.alert for p in batch], digest_id)
                thread = None
            else:
                thread = await sink.send(
                    head.alert, head.reason, self.ledger.thread(route.name, head.alert.alert_id)
                )
        except SinkError as exc:
            return await self._failed(route, batch, exc)
        now = self.clock()
        self.ledger.finish(batch, "done", now, thread=thread)
        self.metrics.deliveries.labels(route.name, sink.kind, "ok").inc(len(batch))
        for p in batch:
            self.metrics.latency.labels(route.name).observe(max(0.0, now - p.enqueued_at))
            self.metrics.pipeline.labels(route.name).observe(max(0.0, now - p.fetched_at))
            log_event(
                log,
                "delivered",
                status="ok",
                route=route.name,
                sink=sink.kind,
                alert_id=p.alert.alert_id,
                story_key=p.alert.story_key,
                revision=p.alert.revision,
                reason=p.reason,
                attempts=p.attempts + 1,
                latency_seconds=round(now - p.enqueued_at, 3),
            )
        return None

    async def _failed(self, route: Route, batch: list[Pending], exc: SinkError) -> float | None:
        """Retry ``batch`` later or give it up; as :meth:`_deliver` returns."""
        sink = route.sink
        attempt = max(p.attempts for p in batch) + 1
        self.metrics.deliveries.labels(route.name, sink.kind, exc.outcome).inc(len(batch))
        now = self.clock()
        fields = {
            "route": route.name,
            "sink": sink.kind,
            "alert_id": batch[0].alert.alert_id,
            "revision": batch[0].alert.revision,
            "attempts": attempt,
            "error": str(exc),
        }
        waited = now - min(p.enqueued_at for p in batch)
        if exc.retriable and waited < self.policy.give_up_after_seconds:
            delay = retry_delay(
                attempt,
                self.policy.backoff_seconds,
                self.policy.backoff_max_seconds,
                exc.retry_after,
                random.uniform(0.5, 1.0),
            )
            self.ledger.retry_later(batch, now + delay, str(exc))
            self.metrics.retries.labels(route.name, sink.kind).inc(len(batch))
            log_event(
                log,
                "delivered",
                level=logging.WARNING,
                status="retry",
                retry_in_seconds=round(delay, 2),
                **fields,
            )
            return delay
        self.ledger.finish(batch, "dead", now, error=str(exc))
        self.metrics.dead.labels(route.name, sink.kind).inc(len(batch))
        log_event(log, "delivered", level=logging.ERROR, status="dead", **fields)
        await self._deadletter(route, batch, exc)
        return 0.0 if exc.retriable else None

    async def _deadletter(self, route: Route, batch: list[Pending], exc: SinkError) -> None:
        """A copy of each given-up revision on the dead-letter topic, saying why."""
        messages = []
        for p in batch:
            out = encode(p.alert, self.deadletter_topic)
            headers = [
                *out.headers,
                ("dlq_reason", b"sink-failed"),
                ("dlq_detail", str(exc)[:500].encode()),
                ("dlq_service", b"notifier"),
                ("dlq_route", route.name.encode()),
            ]
            messages.append(Outgoing(self.deadletter_topic, out.key, out.value, headers))
        try:
            await produce_and_wait(self.producer, messages)
        except BrokerError as err:
            # The ledger already says ``dead`` with the reason; only this copy is lost.
            log_event(log, "deadlettered", level=logging.ERROR, status="error", error=str(err))
