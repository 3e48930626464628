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

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dohawatch.shared.at_least_once import produce_and_wait
from dohawatch.shared.config_file import FeedConfig, load_file_config
from dohawatch.shared.errors import ConfigError, FeedError
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import package_version
from dohawatch.shared.runtime import ServiceContext
from dohawatch.shared.settings import Settings
from dohawatch.shared.tasks import first_failure, until_first

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
    _report(poller.metrics.feed(feed.name), state, decision, time.perf_counter() - started)
    return decision.state


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
    while not ctx.stop.is_set() and not state.disabled:
        delay = max(0.0, (planned - datetime.now(UTC)).total_seconds())
        try:
            await asyncio.wait_for(ctx.stop.wait(), timeout=delay)
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


def _reloaded(ctx: ServiceContext, current: tuple[FeedConfig, ...]) -> tuple[FeedConfig, ...]:
    """The feeds of the configuration file as it is now; the current ones if it is broken."""
    try:
        feeds = load_file_config(ctx.settings.config_file).feeds
    except ConfigError as exc:
        log_event(log, "reloaded", level=logging.ERROR, status="error", error=str(exc))
        return current
    log_event(log, "reloaded", status="ok", feeds=len(feeds))
    return feeds


async def _supervise(ctx: ServiceContext, poller: Poller, feeds: tuple[FeedConfig, ...]) -> None:
    """One loop per feed; on SIGHUP, re-read the file: start added or changed feeds,
    stop removed ones, leave the rest polling on their schedule."""
    reload = _reload_on_sighup()
    loops: dict[FeedConfig, asyncio.Task[None]] = {}
    try:
        while True:
            for gone in set(loops) - set(feeds):
                loops.pop(gone).cancel()
            offsets = first_poll_offsets(feeds, ctx.settings.fetch_interval_seconds)
            for new in set(feeds) - set(loops):
                loops[new] = asyncio.create_task(
                    _feed_loop(ctx, poller, new, offsets[new.url]), name=new.name
                )
            running = [t for t in loops.values() if not t.done()]  # a gone (410) feed ends
            if failure := first_failure(await until_first(running, reload, ctx.stop)):
                raise failure
            if ctx.stop.is_set():
                return
            if reload.is_set():
                reload.clear()
                feeds = _reloaded(ctx, feeds)
    finally:
        for task in loops.values():
            task.cancel()
        await asyncio.gather(*loops.values(), return_exceptions=True)


async def run_fetcher(ctx: ServiceContext, feeds: tuple[FeedConfig, ...]) -> None:
    """Poll ``feeds`` until ``ctx.stop`` is set; SIGHUP reloads them from the file."""
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
        poller = Poller(client, store, metrics, gate, Schedule.of(settings))
        ctx.readiness.set("kafka")
        try:
            await _supervise(ctx, poller, feeds)
        finally:
            store.close()
