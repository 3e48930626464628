"""The fetcher service: polls every configured feed and publishes each new item once.

Per feed, forever:

    wait until due → conditional GET (ETag / Last-Modified) → 304: nothing
    → 200: same body hash as last time: nothing; else parse → decide (core)
    → produce the new items → await the broker's acks → store the new state

State advances only after the acks, so a crash re-fetches and re-decides; the
items' deterministic ids make the replay harmless downstream.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
from dohawatch.shared.codec import encode
from dohawatch.shared.errors import FeedError
from dohawatch.shared.ids import content_hash
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import package_version
from dohawatch.shared.pipeline import produce_and_wait
from dohawatch.shared.runtime import ServiceContext
from dohawatch.shared.settings import FeedConfig, Settings
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .core import FeedState, decide, next_interval
from .parse import parse_feed
from .state import FeedStateStore

__all__ = ["FetcherMetrics", "poll_once", "run_fetcher"]

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


def _user_agent(settings: Settings) -> str:
    return f"dohawatch/{package_version()} (+{settings.fetch_contact_url})"


@dataclass(frozen=True, slots=True)
class _Response:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str


async def _get(client: httpx.AsyncClient, state: FeedState, limit: int) -> _Response:
    """A conditional GET whose body is read only up to ``limit`` bytes."""
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with client.stream("GET", state.url, headers=headers) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FeedError("too-large", f"body over {limit} bytes", retriable=False)
                chunks.append(chunk)
            return _Response(
                response.status_code, response.headers, b"".join(chunks), str(response.url)
            )
    except httpx.TimeoutException as exc:
        raise FeedError("timeout", str(exc) or "timed out") from exc
    except httpx.TooManyRedirects as exc:
        raise FeedError("redirects", str(exc), retriable=False) from exc
    except httpx.HTTPError as exc:
        raise FeedError("refused", str(exc) or type(exc).__name__) from exc


async def poll_once(
    ctx: ServiceContext,
    client: httpx.AsyncClient,
    store: FeedStateStore,
    feed: FeedConfig,
    metrics: FetcherMetrics,
) -> FeedState:
    """Poll one feed once, publish what is new, store and return the new state."""
    state = store.get(feed.url)
    settings = ctx.settings
    started = time.perf_counter()
    now = datetime.now(UTC)
    outcome, published, hint = "200", 0, None
    try:
        response = await _get(client, state, settings.fetch_max_body_bytes)
        metrics.bytes.labels(feed.name).inc(len(response.content))
        if response.status_code == 304:
            outcome = "304"
            state = replace(state, failures=0, last_success=now)
        elif response.status_code != 200:
            outcome = f"{response.status_code // 100}xx"
            raise FeedError(outcome, f"HTTP {response.status_code}")
        else:
            body_hash = content_hash(response.content)
            if body_hash == state.body_hash:
                outcome = "unchanged"
                state = replace(state, failures=0, last_success=now)
            else:
                parsed = parse_feed(
                    response.content,
                    base_url=response.url,
                    content_type=response.headers.get("content-type"),
                    fetched_at=now,
                )
                hint = parsed.ttl_seconds
                decision = decide(
                    state,
                    feed,
                    parsed,
                    body_hash=body_hash,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    fetched_at=now,
                )
                await produce_and_wait(
                    ctx.producer, [encode(i, ctx.topics.raw) for i in decision.items]
                )
                published = len(decision.items)
                state = decision.state
    except FeedError as exc:
        outcome = exc.outcome
        state = replace(state, failures=state.failures + 1)
        log_event(
            log,
            "fetched",
            level=logging.WARNING,
            status=outcome,
            feed=feed.name,
            failures=state.failures,
            error=str(exc),
        )
    else:
        metrics.last_success.labels(feed.name).set(now.timestamp())
        metrics.items.labels(feed.name).inc(published)
        log_event(
            log,
            "fetched",
            status=outcome,
            feed=feed.name,
            new_items=published,
            duration_seconds=round(time.perf_counter() - started, 4),
        )
    interval = next_interval(
        feed,
        settings.fetch_interval_seconds,
        settings.fetch_min_interval_seconds,
        settings.fetch_max_interval_seconds,
        state.failures,
        hint,
    )
    state = replace(state, next_poll=now + timedelta(seconds=interval))
    store.put(state)
    metrics.requests.labels(feed.name, outcome).inc()
    metrics.failures.labels(feed.name).set(state.failures)
    metrics.duration.labels(feed.name).observe(time.perf_counter() - started)
    return state


async def _feed_loop(
    ctx: ServiceContext,
    client: httpx.AsyncClient,
    store: FeedStateStore,
    feed: FeedConfig,
    metrics: FetcherMetrics,
) -> None:
    state = store.get(feed.url)
    # Jitter the first poll so a thousand feeds do not fire in the same second.
    delay = (
        0.0 if state.next_poll is None else (state.next_poll - datetime.now(UTC)).total_seconds()
    )
    delay = max(0.0, delay) + random.uniform(0, min(1.0, ctx.settings.fetch_min_interval_seconds))
    while not ctx.stop.is_set():
        try:
            await asyncio.wait_for(ctx.stop.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        state = await poll_once(ctx, client, store, feed, metrics)
        assert state.next_poll is not None
        delay = max(0.0, (state.next_poll - datetime.now(UTC)).total_seconds())


async def run_fetcher(ctx: ServiceContext, feeds: tuple[FeedConfig, ...]) -> None:
    """Poll ``feeds`` until ``ctx.stop`` is set."""
    settings = ctx.settings
    metrics = FetcherMetrics(ctx.registry)
    store = FeedStateStore(settings.state_dir / "fetcher.sqlite3")
    timeout = httpx.Timeout(settings.fetch_timeout_seconds, connect=10.0)
    async with httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=5,
        headers={"User-Agent": _user_agent(settings)},
    ) as client:
        ctx.readiness.set("kafka")
        try:
            await asyncio.gather(*(_feed_loop(ctx, client, store, f, metrics) for f in feeds))
        finally:
            store.close()
