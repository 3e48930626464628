"""The fetcher service: polls every configured feed and publishes each new item once.

Per feed, forever:

    wait until due → per-host gate → address check → conditional GET
    (ETag / Last-Modified; redirects checked hop by hop) → 304: nothing
    → 200: same body hash as last time: nothing; else parse → decide (core) →
      encode (reading.py; an unreadable body or entry fails this poll only)
    → produce the new items → await the broker's acks → store the new state
    → next poll from the feed's interval, the server's hints (Retry-After,
      Cache-Control max-age, RSS <ttl>) and the failures in a row

A permanent redirect (301/308) moves the feed's URL in its state; 410 Gone
disables the feed (it is logged and stays in ``dohawatch feeds list``).

State advances only after the acks, so a crash re-fetches and re-decides; the
items' deterministic ids make the replay harmless downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dohawatch.shared.at_least_once import BROKER_TIMEOUT_SECONDS, produce_and_wait
from dohawatch.shared.config_file import FeedConfig, load_file_config
from dohawatch.shared.errors import BrokerError, ConfigError, FeedError
from dohawatch.shared.kafka import make_consumer, positions, read_from_start
from dohawatch.shared.logs import log_event
from dohawatch.shared.membership import kept_membership
from dohawatch.shared.metrics import package_version
from dohawatch.shared.runtime import ServiceContext, revoke_wait_seconds, stop_within, waits_in
from dohawatch.shared.settings import Settings
from dohawatch.shared.tables import REPLICA_HEADER, read_table, replica_name
from dohawatch.shared.tasks import first_failure

from .core import (
    FeedState,
    PollDecision,
    Schedule,
    after_failure,
    after_response,
    first_poll_offsets,
    moved,
    needs_body,
)
from .feed_table import GROUP_ID, decode_feed, decode_state, encode_state, sync_feeds
from .http import FetchResult, HostGate, fetch
from .reading import read_body
from .state import FeedStateStore
from .transport import AddressPolicy, feed_client

__all__ = ["FetcherMetrics", "Poller", "poll_once", "run_fetcher"]

log = logging.getLogger("dohawatch.fetcher")


class FetcherMetrics:
    """Per-feed fetch metrics; the ``feed`` label is the configured feed name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "dohawatch_fetch_requests_total",
            "Feed polls by outcome.",
            ["feed", "outcome"],
            registry=registry,
        )
        self.bytes = Counter(
            "dohawatch_fetch_bytes_total", "Feed body bytes read.", ["feed"], registry=registry
        )
        self.duration = Histogram(
            "dohawatch_fetch_duration_seconds",
            "Time of one poll.",
            ["feed"],
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.items = Counter(
            "dohawatch_fetch_items_total", "New items published.", ["feed"], registry=registry
        )
        self.last_success = Gauge(
            "dohawatch_fetch_last_success_timestamp_seconds",
            "When the feed was last polled successfully.",
            ["feed"],
            registry=registry,
        )
        self.failures = Gauge(
            "dohawatch_fetch_consecutive_failures",
            "Polls failed in a row.",
            ["feed"],
            registry=registry,
        )
        self.malformed = Counter(
            "dohawatch_fetch_malformed_total",
            "Bodies the parser had to recover (bad XML, a wrong declared encoding...) "
            "whose entries were still used.",
            ["feed"],
            registry=registry,
        )
        self.rejected = Counter(
            "dohawatch_fetch_entries_rejected_total",
            "Entries left out of a poll because the contract refuses them (a link that "
            "is no URL); the feed's other entries were published.",
            ["feed"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "dohawatch_fetch_in_flight_requests", "Feed requests in flight.", registry=registry
        )
        self.schedule_lag = Histogram(
            "dohawatch_fetch_schedule_lag_seconds",
            "How late polls start against their plan (per-host gaps, a busy loop).",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.partitions = Gauge(
            "dohawatch_fetch_partitions_assigned",
            "Partitions of the feeds topic this replica polls the feeds of.",
            registry=registry,
        )
        self.feeds_owned = Gauge(
            "dohawatch_fetch_feeds_owned", "Feeds this replica polls.", registry=registry
        )
        self.rebalances = Counter(
            "dohawatch_fetch_rebalances_total",
            "Partitions of the feeds topic assigned to or revoked from this replica.",
            ["change"],
            registry=registry,
        )
        self.changelog_failures = Counter(
            "dohawatch_fetch_changelog_failures_total",
            "Feed states not written to the changelog (the local cache has them; a "
            "next owner polls with the state before).",
            registry=registry,
        )
        self._feeds: dict[str, FeedMetrics] = {}

    def feed(self, name: str) -> FeedMetrics:
        """The series of one feed, looked up once (a label lookup costs as much as
        a quarter of a 304 poll's own work)."""
        if (found := self._feeds.get(name)) is None:
            found = self._feeds[name] = FeedMetrics(
                {},
                self.requests,
                self.bytes.labels(name),
                self.duration.labels(name),
                self.items.labels(name),
                self.last_success.labels(name),
                self.failures.labels(name),
                self.malformed.labels(name),
                self.rejected.labels(name),
                name,
            )
        return found


@dataclass(frozen=True, slots=True)
class FeedMetrics:
    """One feed's series of :class:`FetcherMetrics`."""

    _by_outcome: dict[str, Counter]
    _requests: Counter
    bytes: Counter
    duration: Histogram
    items: Counter
    last_success: Gauge
    failures: Gauge
    malformed: Counter
    rejected: Counter
    name: str

    def requests(self, outcome: str) -> Counter:
        """The feed's poll counter for ``outcome``."""
        if (found := self._by_outcome.get(outcome)) is None:
            found = self._by_outcome[outcome] = self._requests.labels(self.name, outcome)
        return found


PUBLISH_BATCH = 200  # messages sent before awaiting their acks
INLINE_BODY_BYTES = 32 * 1024
"""Bodies up to this size are read on the event loop (a millisecond on the fast
path, some tens on feedparser's); larger ones in a worker thread, so a huge body
never holds up the other feeds' schedules. A thread costs more than a small read."""


def _user_agent(settings: Settings) -> str:
    return f"dohawatch/{package_version()} (+{settings.fetch_contact_url})"


@dataclass(frozen=True, slots=True)
class Poller:
    """What every poll shares: the client, the guards, the store and the metrics."""

    client: httpx.AsyncClient
    store: FeedStateStore
    metrics: FetcherMetrics
    gate: HostGate
    schedule: Schedule
    changelog: str | None = None  # the state changelog topic, when feeds are owned by partition
    replica: str = ""  # this replica's name, on its changelog records


async def poll_once(ctx: ServiceContext, poller: Poller, feed: FeedConfig) -> FeedState:
    """Poll one feed once, publish what is new, store and return the new state."""
    state = poller.store.get(feed.url)
    started, now = time.perf_counter(), datetime.now(UTC)
    settings = ctx.settings
    try:
        result = await fetch(
            poller.client,
            state,
            limit=settings.fetch_max_body_bytes,
            gate=poller.gate,
            total=settings.fetch_total_timeout_seconds,
        )
    except FeedError as exc:
        decision = after_failure(state, feed, exc, now=now, schedule=poller.schedule)
    else:
        poller.metrics.feed(feed.name).bytes.inc(len(result.content))
        decision = await _answered(ctx, poller, feed, state, result, now)
    poller.store.put(decision.state, seen=decision.outcome == "200")
    if poller.changelog is not None:
        await _log_state(ctx, poller, decision.state)
    _report(poller.metrics.feed(feed.name), state, decision, time.perf_counter() - started)
    return decision.state


async def _log_state(ctx: ServiceContext, poller: Poller, state: FeedState) -> None:
    """Send ``state`` to the changelog, keyed like the feed; the write is flushed
    when the feed's partition is revoked or the fetcher stops. A broker that does
    not take it costs the next owner a poll with an older state, never this
    feed's loop."""
    assert poller.changelog is not None
    try:
        async with asyncio.timeout(BROKER_TIMEOUT_SECONDS):  # cancellable, unlike 3.11's wait_for
            await ctx.producer.send(
                poller.changelog,
                encode_state(state),
                key=state.feed_key.encode(),
                headers=[(REPLICA_HEADER, poller.replica.encode())],
            )
    except (KafkaError, TimeoutError) as exc:
        poller.metrics.changelog_failures.inc()
        log_event(log, "changelog_failed", level=logging.WARNING, status="error", error=repr(exc))


async def _answered(
    ctx: ServiceContext,
    poller: Poller,
    feed: FeedConfig,
    state: FeedState,
    result: FetchResult,
    now: datetime,
) -> PollDecision:
    """The decision on an HTTP answer, once a changed body's new items are acknowledged."""
    reply = result.reply()
    if not needs_body(state, reply):
        return after_response(state, feed, reply, now=now, schedule=poller.schedule)
    reading = functools.partial(
        read_body,
        result.content,
        reply,
        state=state,
        feed=feed,
        now=now,
        schedule=poller.schedule,
        topic=ctx.topics.raw,
        max_entries=ctx.settings.fetch_max_entries,
    )
    try:
        if len(result.content) <= INLINE_BODY_BYTES:
            read = reading()
        else:
            read = await asyncio.to_thread(reading)
    except FeedError as exc:  # the answer is no feed: a failed poll, at the URL it moved to
        return after_failure(moved(state, reply), feed, exc, now=now, schedule=poller.schedule)
    # In bounded batches, so one huge poll never holds all its sends at once.
    for start in range(0, len(read.messages), PUBLISH_BATCH):
        await produce_and_wait(
            ctx.producer,
            read.messages[start : start + PUBLISH_BATCH],
            deadletter_topic=ctx.topics.deadletter,
            service="fetcher",
        )
    return read.decision


def _report(
    metrics: FeedMetrics, before: FeedState, decision: PollDecision, seconds: float
) -> None:
    """Count and log one poll's decision: a poll with news or a failure at INFO or
    above, a routine one with nothing new at DEBUG (the metrics count those)."""
    state, name = decision.state, metrics.name
    metrics.requests(decision.outcome).inc()
    metrics.failures.set(state.failures)
    metrics.duration.observe(seconds)
    if state.url != before.url:
        log_event(log, "moved", status="ok", feed=name, url=state.url)
    if decision.malformed:
        metrics.malformed.inc()
    if decision.rejected:
        metrics.rejected.inc(decision.rejected)
        log_event(
            log,
            "entries_rejected",
            level=logging.WARNING,
            status="rejected",
            feed=name,
            entries=decision.rejected,
        )
    if decision.error is None:
        assert state.last_success is not None
        metrics.last_success.set(state.last_success.timestamp())
        metrics.items.inc(len(decision.items))
        log_event(
            log,
            "fetched",
            level=logging.INFO if decision.items else logging.DEBUG,
            status=decision.outcome,
            feed=name,
            new_items=len(decision.items),
            duration_seconds=round(seconds, 4),
        )
        return
    log_event(
        log,
        "fetched",
        level=logging.WARNING,
        status=decision.outcome,
        feed=name,
        failures=state.failures,
        error=decision.error,
    )
    if decision.alarm:
        log_event(
            log,
            decision.alarm,
            level=logging.ERROR,
            status=decision.outcome,
            feed=name,
            failures=state.failures,
            url=state.url,
        )


async def _feed_loop(ctx: ServiceContext, poller: Poller, feed: FeedConfig, offset: float) -> None:
    state = poller.store.get(feed.url)
    now = datetime.now(UTC)
    if state.next_poll is None or state.next_poll < now:
        planned = now + timedelta(seconds=offset)  # spread over its host's feeds
    else:
        planned = state.next_poll
    # Jitter too, so a thousand hosts' first feeds do not fire in the same second.
    planned += timedelta(
        seconds=random.uniform(0, min(1.0, ctx.settings.fetch_min_interval_seconds))
    )
    task = asyncio.current_task()
    while not ctx.stop.is_set() and not state.disabled:
        if task is not None and task.cancelling():
            # A cancel that an await swallowed: Python 3.11's asyncio.wait_for returns
            # its result when it completes as the cancel arrives. The loop was seen
            # polling on after its partition was revoked (docs/kafka.md).
            raise asyncio.CancelledError
        delay = max(0.0, (planned - datetime.now(UTC)).total_seconds())
        try:
            async with asyncio.timeout(delay):
                await ctx.stop.wait()
            return
        except TimeoutError:
            pass
        lateness = (datetime.now(UTC) - planned).total_seconds()
        poller.metrics.schedule_lag.observe(max(0.0, lateness))
        state = await poll_once(ctx, poller, feed)
        assert state.next_poll is not None
        planned = state.next_poll


def _reload_on_sighup() -> asyncio.Event:
    """An event set on SIGHUP (where the platform and the thread allow a handler)."""
    reload = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload.set)
    return reload


class _Owned(ConsumerRebalanceListener):  # type: ignore[misc]
    """The feeds of the ``feeds`` partitions assigned to this replica, each polled
    by a loop of its own (see :mod:`.feed_table`)."""

    def __init__(self, ctx: ServiceContext, poller: Poller, consumer: AIOKafkaConsumer) -> None:
        self._ctx = ctx
        self._poller = poller
        self._consumer = consumer
        self.loops: dict[str, tuple[int, FeedConfig, asyncio.Task[None]]] = {}
        self.partitions: set[int] = set()
        self._starting: dict[str, tuple[int, FeedConfig]] = {}

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Stop the revoked partitions' loops and flush their last states, within
        ``revoke_wait_seconds``: the group's rebalance waits for this callback, and
        on the embedded broker a member late past the rebalance timeout held the
        whole group for minutes (docs/kafka.md). A flush cut short costs the next
        owner a poll with an older state (see :func:`_log_state`)."""
        started = time.monotonic()
        bound = revoke_wait_seconds(self._ctx.settings)
        gone = {tp.partition for tp in revoked}
        await self.stop(
            [url for url, (p, _, _) in self.loops.items() if p in gone], wait_seconds=bound
        )
        for url in [u for u, (p, _) in self._starting.items() if p in gone]:
            del self._starting[url]
        # The stopped feeds' last states reach the changelog before their next owner reads it.
        flushed = True
        try:
            async with asyncio.timeout(max(0.0, started + bound - time.monotonic())):
                await self._ctx.producer.flush()
        except (KafkaError, TimeoutError):
            flushed = False
        self.partitions -= gone
        self._counted(
            "revoked",
            gone,
            flushed=flushed,
            duration_seconds=round(time.monotonic() - started, 3),
        )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        new = {tp.partition for tp in assigned} - self.partitions
        restored = 0
        if new:  # the state their previous owner last wrote, before any of their polls
            try:
                changelog = await read_table(
                    self._ctx.settings, self._ctx.bootstrap, self._ctx.topics.fetcher_state, new
                )
            except BrokerError as exc:
                # Their feeds are polled with the state this replica has (none, or
                # older): an item seen before may be published again, under its id;
                # waiting for the state would leave them unpolled until a rebalance.
                changelog = {}
                log_event(
                    log,
                    "state_restore_failed",
                    level=logging.ERROR,
                    status="polled-without",
                    partitions=",".join(map(str, sorted(new))),
                    error=str(exc),
                )
            for row in changelog.values():
                state = decode_state(row.value) if row.value is not None else None
                if state is not None:
                    self._poller.store.put(state)
                    restored += 1
            self._poller.store.flush()
        self.partitions = {tp.partition for tp in assigned}
        if assigned:
            await self._consumer.seek_to_beginning(*assigned)  # the whole table, every time
        self._counted("assigned", new, states_restored=restored)

    def _counted(self, change: str, partitions: set[int], **fields: Any) -> None:
        metrics = self._poller.metrics
        metrics.rebalances.labels(change).inc(len(partitions))
        metrics.partitions.set(len(self.partitions))
        log_event(
            log,
            f"partitions_{change}",
            status="ok",
            partitions=",".join(map(str, sorted(partitions))),
            owned=",".join(map(str, sorted(self.partitions))),
            **fields,
        )

    def apply(self, partition: int, url: str, value: bytes | None) -> None:
        """Follow one record of the table: a feed to start, restart or stop."""
        feed = decode_feed(value) if value is not None else None
        if value is not None and feed is None:
            log_event(log, "feed_record_invalid", level=logging.ERROR, status="rejected", url=url)
        self._starting.pop(url, None)
        current = self.loops.get(url)
        if current is not None and (current[0], current[1]) == (partition, feed):
            return
        if current is not None:
            current[2].cancel()
            del self.loops[url]
        if feed is not None and partition in self.partitions:
            self._starting[url] = (partition, feed)

    def start_pending(self) -> None:
        """Start the loops of the feeds read since the last call, their first polls
        spread over each host's feeds."""
        if not self._starting:
            return
        owned = [f for _, f, _ in self.loops.values()] + [f for _, f in self._starting.values()]
        offsets = first_poll_offsets(owned, self._ctx.settings.fetch_interval_seconds)
        for url, (partition, feed) in self._starting.items():
            task = asyncio.create_task(
                _feed_loop(self._ctx, self._poller, feed, offsets[url]), name=feed.name
            )
            self.loops[url] = (partition, feed, task)
        self._starting.clear()
        self._poller.metrics.feeds_owned.set(len(self.loops))

    def failure(self) -> BaseException | None:
        """The first exception a feed loop ended with (a bug: polls catch their own)."""
        return first_failure([t for _, _, t in self.loops.values() if t.done()])

    async def stop(self, urls: list[str] | None = None, wait_seconds: float | None = None) -> None:
        """Stop the loops of ``urls`` (all when None): cancel them and wait until they
        have ended, or for ``wait_seconds``; a loop still running then is logged
        (``feed_loop_stop_slow``, with where it waits) and left to end cancelled."""
        chosen = list(self.loops) if urls is None else urls
        tasks = [self.loops.pop(url)[2] for url in chosen]
        for task in tasks:
            task.cancel()
        self._poller.metrics.feeds_owned.set(len(self.loops))
        if not tasks:
            return
        ended, running = await asyncio.wait(tasks, timeout=wait_seconds)
        for task in ended:
            if not task.cancelled():
                task.exception()  # retrieved: a loop that failed did so before it was stopped
        for task in running:
            log_event(
                log,
                "feed_loop_stop_slow",
                level=logging.WARNING,
                status="waiting",
                feed=task.get_name(),
                waits_in=waits_in(task),
            )


async def _past_log_end(consumer: AIOKafkaConsumer) -> bool:
    """Whether a partition of the table is read past its log's end (the broker lost
    its data); those partitions are read again from the start."""
    lost = False
    for tp, position, high in await positions(consumer):
        if position > high:
            await read_from_start(consumer, tp, position, high)
            lost = True
    return lost


async def _sync(ctx: ServiceContext, feeds: tuple[FeedConfig, ...] | None) -> None:
    """Write the configuration file's feeds to the table, when the fetcher has a file."""
    if feeds is None:
        return
    try:
        done = await sync_feeds(ctx.settings, ctx.bootstrap, ctx.topics, feeds)
    except BrokerError as exc:
        log_event(log, "feeds_synced", level=logging.ERROR, status="error", error=str(exc))
        return
    log_event(
        log,
        "feeds_synced",
        status="ok",
        written=len(done.written),
        removed=len(done.removed),
        unchanged=done.unchanged,
    )


async def _supervise(
    ctx: ServiceContext, poller: Poller, feeds: tuple[FeedConfig, ...] | None
) -> None:
    """Poll the feeds of the partitions the group assigns this replica; on SIGHUP,
    write the file's feeds to the table again (the table's records then start,
    change or stop the loops of every replica)."""
    reload = _reload_on_sighup()
    await _sync(ctx, feeds)
    named = ctx.settings.model_copy(
        update={"kafka_client_id": replica_name(ctx.settings, "fetcher")}
    )
    consumer = make_consumer(named, ctx.bootstrap, GROUP_ID)
    owned = _Owned(ctx, poller, consumer)
    # Started before it subscribes, the consumer's start ends once the broker
    # answers, not at its first assignment, which waits for the whole group to
    # rebalance (docs/kafka.md, "the embedded broker"); the loop below reads
    # nothing until the assignment arrives.
    await asyncio.wait_for(consumer.start(), BROKER_TIMEOUT_SECONDS)
    consumer.subscribe([ctx.topics.feeds], listener=owned)
    ctx.readiness.set("kafka")
    try:
        async with kept_membership(consumer, named, ctx.bootstrap, GROUP_ID):
            while not ctx.stop.is_set():
                try:
                    batches = await consumer.getmany(timeout_ms=500)
                except KafkaError as exc:
                    log_event(
                        log,
                        "feeds_read_failed",
                        level=logging.WARNING,
                        status="error",
                        error=repr(exc),
                    )
                    await asyncio.sleep(1.0)
                    continue
                for tp, records in batches.items():
                    for record in records:
                        if record.key is not None:
                            owned.apply(tp.partition, record.key.decode(), record.value)
                owned.start_pending()
                if failure := owned.failure():
                    raise failure
                if reload.is_set():
                    reload.clear()
                    if ctx.settings.config_file is not None:
                        await _sync(ctx, _reloaded(ctx, feeds or ()))
                if not batches and await _past_log_end(consumer):
                    await _sync(ctx, feeds)  # the broker lost the table: write it again
    finally:
        ctx.readiness.set("kafka", False)
        await owned.stop()
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(ctx.producer.flush(), BROKER_TIMEOUT_SECONDS)
        await stop_within(consumer.stop(), "fetcher consumer")


def _reloaded(ctx: ServiceContext, current: tuple[FeedConfig, ...]) -> tuple[FeedConfig, ...]:
    """The feeds of the configuration file as it is now; the current ones if it is broken."""
    try:
        feeds = load_file_config(ctx.settings.config_file).feeds
    except ConfigError as exc:
        log_event(log, "reloaded", level=logging.ERROR, status="error", error=str(exc))
        return current
    log_event(log, "reloaded", status="ok", feeds=len(feeds))
    return feeds


async def run_fetcher(ctx: ServiceContext, feeds: tuple[FeedConfig, ...]) -> None:
    """Write ``feeds`` (when there are any) to the feeds table, then poll the feeds of
    the partitions this replica is assigned until ``ctx.stop`` is set; SIGHUP writes
    the file's feeds to the table again."""
    settings = ctx.settings
    metrics = FetcherMetrics(ctx.registry)
    store = FeedStateStore(settings.state_dir / "fetcher.sqlite3")
    timeout = httpx.Timeout(settings.fetch_timeout_seconds, connect=10.0)
    gate = HostGate(
        settings.fetch_per_host, settings.fetch_host_min_gap_seconds, settings.fetch_max_in_flight
    )
    metrics.in_flight.set_function(lambda: gate.in_flight)
    client = feed_client(
        AddressPolicy.parse(settings.fetch_allowed_networks),
        timeout=timeout,
        max_connections=settings.fetch_max_in_flight,
        user_agent=_user_agent(settings),
    )
    async with client:
        schedule = Schedule.of(settings)
        poller = Poller(
            client,
            store,
            metrics,
            gate,
            schedule,
            ctx.topics.fetcher_state,
            replica_name(settings, "fetcher"),
        )
        try:
            # Given no feeds (no configuration file), the replica follows the table only.
            await _supervise(ctx, poller, feeds or None)
        finally:
            store.close()
